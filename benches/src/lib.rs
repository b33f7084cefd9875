//! strato packet-rate harness (being written).
