//! Search: the hub says who asks and what they may find; the index answers on the
//! blocking pool, never on the hub's task.

use chat_shared::{ErrorCode, Frame, ServerFrame};

use super::Hub;
use super::command::Asked;
use crate::log::recorder::{Recorded, append_measured};
use crate::log::{Event, NewEvent, StreamId};
use crate::registry::ConnId;
use crate::search::{Request, SearchError, Viewer};

impl Hub {
    /// Runs a search for `conn`.
    pub(super) fn search(&mut self, conn: ConnId, asked: Asked) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let queue = member.queue.clone();
        let viewer = Viewer {
            account: member.account.then(|| member.keys.folded.clone()),
            rooms: member.rooms.clone(),
            admin: self.is_admin(member),
        };
        let mut only: Vec<StreamId> = asked.rooms.iter().map(|key| StreamId::new(key)).collect();
        if let Some(with) = &asked.with {
            match self.account_named(conn, with) {
                Ok((me, other)) => {
                    only.push(StreamId::direct(&me.keys.folded, &other.keys.folded));
                }
                Err(code) => return self.account_error(conn, code, with, None),
            }
        }
        let Some(search) = &self.search else {
            return queue.push_unmetered(Frame::encode(&ServerFrame::Error {
                room: None,
                code: ErrorCode::Unavailable,
                message: "this server keeps no search index".into(),
                id: None,
                retry_after: None,
                until: None,
            }));
        };
        let index = search.index.clone();
        let request = Request {
            query: asked.query,
            only,
            limit: asked.limit,
            cursor: asked.cursor,
            viewer,
        };
        let text = asked.text;
        smol::unblock(move || {
            let answer = match index.find(&request) {
                Ok(found) => Frame::encode(&ServerFrame::SearchResults {
                    query: text,
                    results: found.results,
                    cursor: found.cursor,
                }),
                Err(SearchError::Building(wait)) => unavailable(Some(wait)),
                Err(err @ (SearchError::BadCursor | SearchError::NoWords)) => {
                    Frame::encode(&ServerFrame::Error {
                        room: None,
                        code: ErrorCode::BadQuery,
                        message: err.to_string(),
                        id: None,
                        retry_after: None,
                        until: None,
                    })
                }
                Err(err @ SearchError::Index(_)) => {
                    tracing::error!(%err, "a search failed");
                    unavailable(None)
                }
            };
            queue.push_unmetered(answer);
        })
        .detach();
    }

    /// Appends to a log that records on this task (`--memory`), and hands what it
    /// committed to the search index.
    pub(super) fn append_here(&self, events: &[NewEvent]) -> Recorded {
        let recorded: Result<Vec<Event>, _> = append_measured(&*self.log, events);
        if let (Ok(committed), Some(feed)) = (
            &recorded,
            self.search.as_ref().and_then(|s| s.feed.as_ref()),
        ) {
            feed.committed(events, committed);
        }
        recorded
    }
}

/// The answer to a search that cannot run now (`retry_after`: while the index is built).
fn unavailable(retry_after: Option<u64>) -> Frame {
    let message = match retry_after {
        Some(_) => "the search index is being built; try again shortly",
        None => "search is not available now; try again later",
    };
    Frame::encode(&ServerFrame::Error {
        room: None,
        code: ErrorCode::Unavailable,
        message: message.into(),
        id: None,
        retry_after,
        until: None,
    })
}
