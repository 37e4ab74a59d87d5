//! Throughput benches (issue 5).
fn main() {}
