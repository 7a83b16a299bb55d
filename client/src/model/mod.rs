//! What the client knows of the chat, with no GUI types: rooms with their timelines and
//! members, pending posts, what is new and what mentions you. Server frames go in, domain
//! changes come out; the screens only render this and send commands.

pub mod members;
pub mod room;
pub mod text;
pub mod timeline;

pub use members::Members;
pub use room::{Pending, Room};
pub use timeline::{
    Change, ChangeKind, Entry, EventEntry, Message, Notice, Older, Pos, Presence, Timeline, Tone,
};
