//! The desktop chat client. [`connection`] holds everything about talking to the server and
//! [`model`] what the client knows of the chat, neither with GUI types, so both are tested
//! (and reused by the end-to-end tests) without a window; [`app`], [`screen`] and
//! [`widget`] are the iced part.

pub mod app;
pub mod connection;
pub mod fonts;
pub mod model;
pub mod remember;
pub mod screen;
pub mod settings;
pub mod tls;
pub mod widget;

#[cfg(test)]
mod testing;
