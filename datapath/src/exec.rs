//! Action execution on packet buffers (being written).
