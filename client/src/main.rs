//! `client` binary.
fn main() {}
