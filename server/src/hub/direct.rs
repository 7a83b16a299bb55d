//! Direct messages between accounts.

use std::sync::Arc;
use std::time::Instant;

use chat_shared::{ErrorCode, Frame, Name, ServerFrame};

use crate::accounts::Account;
use crate::log::recorder::Recorded;
use crate::log::{Body, Direct, NewEvent, Reach, Seq, StreamId, for_reader};
use crate::queue::Batch;
use crate::registry::ConnId;
use crate::wire::now_millis;

use super::Hub;
use super::command::{Command, Said};
use super::history::{Read, Target};

/// An event of the conversation of `from` and `to`, from `from`, now.
pub(super) fn direct_event(from: &Account, to: &Account, body: Body) -> NewEvent {
    NewEvent {
        stream: StreamId::direct(&from.keys.folded, &to.keys.folded),
        room: Arc::from(""),
        direct: Some(Box::new(Direct {
            from_key: from.keys.folded.clone(),
            to_key: to.keys.folded.clone(),
            to: to.name.to_string(),
        })),
        time: now_millis(),
        body,
        poster: None,
        holder: None,
        base: None,
    }
}

impl Hub {
    /// The account a direct message or a conversation names, or the error to answer. A
    /// deleted account is named still (its conversations can be read, and one's own
    /// messages there deleted); [`Hub::direct`] refuses to write to it.
    pub(super) fn account_named(
        &self,
        conn: ConnId,
        named: &str,
    ) -> Result<(Account, Account), ErrorCode> {
        let me = self
            .registry
            .get(conn)
            .filter(|m| m.online && m.account)
            .and_then(|m| self.accounts.get(&m.keys.folded))
            .ok_or(ErrorCode::AccountRequired)?;
        let other = Name::parse(named)
            .ok()
            .and_then(|name| self.accounts.get_any(&name.keys().folded))
            .ok_or(ErrorCode::NoAccount)?;
        Ok((me.clone(), other.clone()))
    }

    pub(super) fn account_error(
        &self,
        conn: ConnId,
        code: ErrorCode,
        named: &str,
        id: Option<String>,
    ) {
        let message = match code {
            ErrorCode::AccountRequired => "only an account can have direct messages".into(),
            _ => format!("there is no account {named}"),
        };
        self.error(conn, code, message, id, None);
    }

    /// A direct message: recorded in the pair's conversation, then sent to both parties.
    pub(super) fn direct(&mut self, conn: ConnId, to: &str, said: Said) {
        let id = said.id;
        if self.registry.get(conn).is_none_or(|m| !m.online) {
            return;
        }
        let (sender, recipient) = match self.account_named(conn, to) {
            Ok((_, recipient)) if recipient.hash.is_deleted() => {
                let message = format!("the account {} was deleted", recipient.name);
                return self.error(conn, ErrorCode::NoAccount, message, id, None);
            }
            Ok(pair) => pair,
            Err(code) => return self.account_error(conn, code, to, id),
        };
        let folded = sender.keys.folded.clone();
        if let Some(id) = &id {
            if let Some(original) = self.posts.original(&folded, id) {
                // A re-sent post: the sender gets the original back.
                if let Some(member) = self.registry.get(conn) {
                    member.queue.push_unmetered(original.clone());
                }
                return;
            }
            if !self.direct_pending.insert((folded.clone(), id.clone())) {
                // The original is on its way to the log.
                return;
            }
            self.posts.posted(&folded, Instant::now());
        }
        let body = Body::Message {
            from: sender.name.to_string(),
            text: said.text,
            id: id.clone(),
            me: said.me,
            reply_to: said.reply_to,
        };
        let mut event = direct_event(&sender, &recipient, body);
        event.poster = id.is_some().then_some(folded);
        self.record_direct(event, conn);
    }

    /// Records an event of a direct conversation (for `conn`); it goes to its parties
    /// once it is recorded (see [`Hub::direct_recorded`]).
    pub(super) fn record_direct(&mut self, event: NewEvent, conn: ConnId) {
        if let Some(recorder) = &self.recorder {
            let inbox = self.inbox.clone();
            let copy = Box::new(event.clone());
            recorder.record(
                vec![event],
                Box::new(move |result| {
                    let _ = inbox.try_send(Command::DirectRecorded {
                        event: copy,
                        conn,
                        result,
                    });
                }),
            );
        } else {
            let result = self.append_here(std::slice::from_ref(&event));
            self.direct_recorded(&event, conn, result);
        }
    }

    /// The log answered for a direct event: the sender gets its echo, the recipient (if
    /// online over protocol 2) the event.
    pub(super) fn direct_recorded(&mut self, event: &NewEvent, conn: ConnId, result: Recorded) {
        let Some(direct) = &event.direct else {
            return;
        };
        let id = match &event.body {
            Body::Message { id, .. } => id,
            _ => &None,
        };
        if let Some(id) = id {
            self.direct_pending
                .remove(&(direct.from_key.clone(), id.clone()));
        }
        let recorded = match result {
            // Refused (what it asked of a message could not be done): its author hears why.
            Ok(mut events) if events.first().is_some_and(|e| e.seq == 0) => {
                let answer = events.swap_remove(0).frame;
                if !answer.is_empty() {
                    self.tell_frame(conn, &answer);
                }
                return;
            }
            Ok(mut events) if !events.is_empty() => events.swap_remove(0),
            Ok(_) => return,
            Err(err) => {
                tracing::error!(%err, "the log could not record a direct event");
                return self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "that could not be recorded; send it again".into(),
                    id.clone(),
                    None,
                );
            }
        };
        if let Some(id) = id {
            self.posts
                .remember(&direct.from_key, id, recorded.frame.clone());
        }
        // In a cluster the parties may be on any node: every node's tail delivers it.
        if !self.peers.tails() {
            self.deliver_direct(&direct.from_key, &direct.to_key, &recorded.frame);
        }
    }

    /// A direct event a cluster's tail brought, to its parties online here. A post's id
    /// is remembered for its author here at once: the tail may bring the echo before the
    /// log's answer to this node does (see [`Hub::direct_recorded`]), and a copy sent
    /// again in between is then answered with the original rather than not at all.
    pub(super) fn direct_arrived(&mut self, from_key: &str, to_key: &str, frame: &Frame) {
        if self.registry.online_conn(from_key).is_some()
            && let Some(id) = post_id(frame)
        {
            self.posts.remember(from_key, &id, frame.clone());
        }
        self.deliver_direct(from_key, to_key, frame);
    }

    /// A recorded direct event to its sender (the echo) and its recipient (over protocol
    /// 2), if they are online here.
    pub(super) fn deliver_direct(&mut self, from_key: &str, to_key: &str, frame: &Frame) {
        if let Some((seq, author, with)) = parties(frame) {
            let now = Instant::now();
            self.recent_direct.note(from_key, to_key, &with, seq, now);
            if to_key != from_key {
                self.recent_direct.note(to_key, from_key, &author, seq, now);
            }
        }
        let mut slow = Vec::new();
        if let Some(sender) = self.registry.online_conn(from_key)
            && let Some(member) = self.registry.get(sender)
            && member.queue.push(&Batch::new(frame.clone(), 1)).is_err()
        {
            slow.push(sender);
        }
        if to_key != from_key
            && let Some(recipient) = self.registry.online_conn(to_key)
            && let Some(member) = self.registry.get(recipient)
            && member.protocol >= 2
        {
            let frame = for_reader(frame, to_key);
            if member.queue.push(&Batch::new(frame, 1)).is_err() {
                slow.push(recipient);
            }
        }
        for conn in slow {
            self.evict(conn);
        }
    }

    /// Events of a direct conversation, read on the blocking pool, as this member sees
    /// them.
    pub(super) fn direct_history(
        &mut self,
        conn: ConnId,
        with: &str,
        reach: Option<Reach>,
        limit: usize,
    ) {
        let Some(queue) = self.online_queue(conn) else {
            return;
        };
        let (me, other) = match self.account_named(conn, with) {
            Ok(pair) => pair,
            Err(code) => return self.account_error(conn, code, with, None),
        };
        let read = Read {
            stream: StreamId::direct(&me.keys.folded, &other.keys.folded),
            reach,
            limit,
            target: Target::Direct {
                with: other.name.to_string(),
                reader: me.keys.folded,
            },
            members_only: false,
        };
        read.answer_from(self.log.clone(), queue);
    }
}

/// The id its poster gave a direct message, if any.
fn post_id(frame: &Frame) -> Option<String> {
    match chat_shared::decode_line::<ServerFrame>(frame.as_bytes().trim_ascii_end()).ok()? {
        ServerFrame::Message { id, .. } => id,
        _ => None,
    }
}

/// A recorded direct event's seq, its author and the other party (`with` as stored).
fn parties(frame: &Frame) -> Option<(Seq, String, String)> {
    let event = chat_shared::decode_line::<ServerFrame>(frame.as_bytes().trim_ascii_end()).ok()?;
    let seq = event.seq()?;
    let with = event.with()?.to_owned();
    let author = match &event {
        ServerFrame::Message { from, .. }
        | ServerFrame::Edited { from, .. }
        | ServerFrame::Reaction { from, .. } => from,
        ServerFrame::Deleted { by, .. } => by,
        _ => return None,
    };
    Some((seq, author.clone(), with))
}
