//! What a connection asks for, as its reader hands it to the session: the protocol's
//! frames, and what only the IRC port asks.

use chat_shared::{ClientFrame, DecodeError};

use crate::hub::command::TargetsReply;
use crate::log::Reach;

/// What a client asks for.
#[derive(Debug)]
pub enum Request {
    /// One of the protocol's frames.
    Frame(ClientFrame),
    /// A page of history from a time (`CHATHISTORY` with a `timestamp=`), where the
    /// protocol's `history` counts in seqs.
    HistoryAt {
        room: Option<String>,
        with: Option<String>,
        reach: Reach,
        limit: u32,
    },
    /// The places with messages between two times (`CHATHISTORY TARGETS`), for `reply`.
    Targets {
        from: u64,
        to: u64,
        limit: usize,
        reply: TargetsReply,
    },
}

/// A request read, or why it could not be.
pub type Decoded = Result<Request, DecodeError>;
