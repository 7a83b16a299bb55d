//! Widgets the chat needs that iced does not have: selectable text with links, a list
//! that stays on what is being read, and a line of text that ends in "…".

pub mod ellipsis;
pub mod selectable;
pub mod viewport;
