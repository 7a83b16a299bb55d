//! `server` binary.
fn main() {}
