//! What the client knows of the chat, with no GUI types: rooms with their timelines and
//! members, pending posts, what is new and what mentions you, what a typed line means.
//! Server frames go in, domain changes come out; the screens only render this and send
//! commands.

pub mod command;
pub mod key;
pub mod members;
pub mod moderation;
pub mod room;
pub mod rooms;
pub mod session;
pub mod text;
pub mod timeline;

pub use command::Input;
pub use key::{DIRECT, direct_with, room_key};
pub use members::Members;
pub use moderation::{Moderation, Power};
pub use room::{Pending, Room, Seen};
pub use rooms::{Joined, Notify, Rooms};
pub use session::Session;
pub use timeline::{
    ChangeKind, ChatMessage, Entry, EventEntry, Notice, Older, Pos, Presence, PresenceChange, Step,
    Timeline, Tone,
};
