//! strato's controller (being written).
