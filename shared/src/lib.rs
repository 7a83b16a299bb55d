//! The chat's wire protocol (documented in shared/README.md): frame types, the NDJSON codec, the name
//! rules and the default limits. No async runtime and no sockets: the server, the client
//! and the tests all build on this.

pub mod codec;
pub mod limits;
pub mod name;
pub mod password;
pub mod protocol;
pub mod retain;
pub mod search;
pub mod text;

/// A certificate fingerprint as people compare it: the digest's bytes as uppercase hex
/// pairs joined by colons (`AB:CD:…`), as the server logs it and the client shows it.
pub fn format_fingerprint(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub use codec::{
    DecodeError, Decoder, Frame, FrameReader, FrameWriter, ReadError, Reader, WireFrame, Writer,
    decode_line,
};
pub use name::{Name, NameError, NameKeys, RoomName, fold};
pub use password::{WeakPassword, check_password};
pub use protocol::{
    ClientFrame, CloseCode, Conversation, ErrorCode, Invitation, LeaveReason, Limits,
    PROTOCOL_VERSION, PROTOCOL_VERSIONS, Password, Reaction, RejectCode, Restriction, Role,
    RoomState, RoomUsers, ServerFrame, apply_reaction,
};
pub use retain::Days;
pub use text::{TextError, check_emoji, check_line, check_text};
