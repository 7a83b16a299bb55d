//! What the client knows of the chat, with no GUI types: rooms with their timelines and
//! members, pending posts, what is new and what mentions you, what a typed line means.
//! Server frames go in, domain changes come out; the screens only render this and send
//! commands.

pub mod command;
pub mod members;
pub mod room;
pub mod rooms;
pub mod text;
pub mod timeline;

pub use command::Input;
pub use members::Members;
pub use room::{Pending, Room, Seen};
pub use rooms::{Joined, Notify, Rooms, room_key};
pub use timeline::{
    Change, ChangeKind, Entry, EventEntry, Message, Notice, Older, Pos, Presence, Timeline, Tone,
};
