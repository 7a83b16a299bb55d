//! End-to-end tests and the load generator.
