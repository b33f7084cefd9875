//! Integration scenarios live in tests/tests/.
