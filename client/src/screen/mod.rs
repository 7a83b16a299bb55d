//! The two screens. Each has its own `Message`, an `update` that may hand an `Action` to the
//! app, and a `view`.

pub mod chat;
pub mod login;
pub mod style;
