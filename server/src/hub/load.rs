//! Reading a room back from the log: on the blocking pool, never on the hub's task; what
//! was read comes back to the hub as [`Loaded`].

use std::sync::Arc;

use crate::log::{Event, EventLog, LogError, Snapshot, Span, StreamId};
use crate::room::Room;

use super::peers::Peers;

/// A room's stream as read back: see [`read_room`].
pub(super) type RoomRead = (Snapshot, Vec<Event>);

/// A room read back from the log: where its stream stands and its newest events.
pub(super) struct Loaded {
    /// The room.
    pub(super) key: Arc<str>,
    /// What was read.
    pub(super) result: Result<RoomRead, LogError>,
}

/// A room's stream as read back: where it stands (in a cluster, with its name and members
/// on every node) and its newest events. Blocks.
pub(super) fn read_room(
    log: &dyn EventLog,
    stream: &StreamId,
    history: usize,
) -> Result<RoomRead, LogError> {
    let snapshot = log.snapshot(stream)?;
    let recent = log.read(stream, Span::Before(snapshot.head.newest + 1), history)?;
    Ok((snapshot, recent))
}

/// A room from what [`read_room`] read, followed by the peers from its newest event.
pub(super) fn build_room(
    key: &Arc<str>,
    name: Arc<str>,
    (snapshot, recent): RoomRead,
    history: usize,
    peers: &dyn Peers,
) -> Room {
    peers.follow(key, snapshot.head.newest);
    Room::new(StreamId::new(key), name, snapshot, recent, history)
}
