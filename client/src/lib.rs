//! The desktop chat client. [`connection`] holds everything about talking to the server and
//! no GUI types, so it is tested (and reused by the end-to-end tests) without a window.

pub mod connection;
