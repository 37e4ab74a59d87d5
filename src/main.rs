//! The logstore command line.
fn main() {}
