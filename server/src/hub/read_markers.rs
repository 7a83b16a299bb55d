//! Read markers on their way to the log: gathered for a moment, then kept in one write.

use std::collections::HashMap;
use std::time::Duration;

use crate::log::{ReadMark, Seq, StreamId};

/// How long read markers gather before they are kept together (one commit for all).
pub const READ_MARKERS_EVERY: Duration = Duration::from_secs(1);

/// Read markers on their way to the log.
#[derive(Debug, Default)]
pub struct ReadMarkers {
    /// Gathered since the last were sent: (account, stream) to seq.
    pub gathered: HashMap<(String, StreamId), Seq>,
    /// Sent to the log and not yet kept there.
    pub in_flight: Vec<ReadMark>,
    /// Whether a keeping is due or under way.
    pub scheduled: bool,
}

impl ReadMarkers {
    /// The highest marker not yet kept for an account in a stream (0: none).
    pub fn pending(&self, account: &str, stream: &StreamId) -> Seq {
        let gathered = self
            .gathered
            .get(&(account.to_string(), stream.clone()))
            .copied()
            .unwrap_or(0);
        self.in_flight
            .iter()
            .filter(|m| m.account == account && m.stream == *stream)
            .map(|m| m.seq)
            .fold(gathered, Seq::max)
    }

    /// Everything not yet kept, for a last write as the server stops.
    pub fn take_all(&mut self) -> Vec<ReadMark> {
        let mut all = std::mem::take(&mut self.in_flight);
        all.extend(self.drain());
        all
    }

    pub fn drain(&mut self) -> impl Iterator<Item = ReadMark> + use<> {
        std::mem::take(&mut self.gathered)
            .into_iter()
            .map(|((account, stream), seq)| ReadMark {
                account,
                stream,
                seq,
            })
    }
}
