//! The `strato` command (being written).
fn main() {}
