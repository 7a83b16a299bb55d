//! The desktop chat client. [`connection`] holds everything about talking to the server and
//! no GUI types, so it is tested (and reused by the end-to-end tests) without a window;
//! [`app`] and [`screen`] are the iced part.

pub mod app;
pub mod connection;
pub mod screen;
