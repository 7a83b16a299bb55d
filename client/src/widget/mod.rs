//! Widgets the chat needs that iced does not have: selectable text with links, a list
//! that stays on what is being read, and a line of text that ends in "…".

pub mod ellipsis;
pub mod selectable;
pub mod viewport;

use iced::Color;

/// `color`, made unique to `content` in a way no eye can see.
///
/// iced's software renderer repaints only what changed between frames, and decides
/// whether a paragraph changed from its size, font and colour, not its text: a line
/// replaced by another of the same width (a countdown, a count, the next message of a
/// burst) would stay on screen. Nudging the alpha by a hash of the text, within the last
/// of its 256 levels, makes every different text a different paragraph.
pub fn unique(color: Color, content: &str) -> Color {
    let hash = content.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    Color {
        a: color.a * (1.0 - (hash % 1024) as f32 * 2.0e-6),
        ..color
    }
}
