//! A message's life after it is posted: the events that change it (`edited`, `reaction`,
//! `deleted`) and a reply, which only refers to it.
//!
//! Each log decides whether such an event may be recorded against the message as it holds
//! it, at the very point where it gives the event its seq (inside its write transaction,
//! its lock, or its compare-and-set in Redis), so that two steps on one message, however
//! close, are never both taken against the same old state. It then stores the message
//! anew, changed by [`apply`]; every node's window applies the same function to its copy
//! when the recorded event arrives, so history and the live view agree to the byte.

use chat_shared::limits::{MAX_REACTION_NAMES, MAX_REACTIONS};
use chat_shared::{ErrorCode, Frame, ServerFrame, apply_reaction, decode_line, fold};
use serde::{Deserialize, Serialize};

use super::{Body, Seq};

/// What an event asks of the message it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    /// A reply: the message must be there and not deleted; nothing changes.
    Refer,
    /// Its author changes its text.
    Edit {
        /// Who asks (as spelled; compared case-folded with the author).
        from: &'a str,
        /// The text from now on.
        text: &'a str,
    },
    /// A reaction added (`on`) or taken back.
    React {
        /// Who (as spelled; one is known by the case-folded name).
        from: &'a str,
        /// The emoji.
        emoji: &'a str,
        /// Added or taken back.
        on: bool,
    },
    /// The message is deleted.
    Erase,
}

/// The message an event is about, and what it asks of it.
pub fn change_of(body: &Body) -> Option<(Seq, Change<'_>)> {
    match body {
        Body::Message {
            reply_to: Some(target),
            ..
        } => Some((*target, Change::Refer)),
        Body::Edited { from, target, text } => Some((*target, Change::Edit { from, text })),
        Body::Reaction {
            from,
            target,
            emoji,
            on,
        } => Some((
            *target,
            Change::React {
                from,
                emoji,
                on: *on,
            },
        )),
        Body::Deleted { target, .. } => Some((*target, Change::Erase)),
        _ => None,
    }
}

/// The change a recorded event made to the message it targets (for a window that holds
/// the message): its target, the change and the event's time, or `None` for any other
/// event.
pub fn recorded_change(frame: &ServerFrame) -> Option<(Seq, Change<'_>, u64)> {
    match frame {
        ServerFrame::Edited {
            target,
            from,
            text,
            time,
            ..
        } => Some((*target, Change::Edit { from, text }, *time)),
        ServerFrame::Reaction {
            target,
            from,
            emoji,
            on,
            time,
            ..
        } => Some((
            *target,
            Change::React {
                from,
                emoji,
                on: *on,
            },
            *time,
        )),
        ServerFrame::Deleted { target, time, .. } => Some((*target, Change::Erase, *time)),
        _ => None,
    }
}

/// Why an event about a message is not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its target is not a message there, or is deleted.
    NoSuchMessage,
    /// An edit by someone else than the author.
    NotAuthor,
    /// A 21st distinct emoji.
    TooManyReactions,
    /// A reaction one has already, or the taking back of one one has not: nothing to do,
    /// and nothing said.
    Nothing,
}

impl Refusal {
    /// The `error` the author of `event` gets (none for [`Refusal::Nothing`]).
    pub fn answer_to(self, event: &super::NewEvent) -> Option<Frame> {
        let seq = change_of(&event.body).map_or(0, |(target, _)| target);
        let room = event.direct.is_none().then_some(&*event.room);
        let id = match &event.body {
            Body::Message { id, .. } => id.clone(),
            _ => None,
        };
        self.answer(seq, room, id)
    }

    /// The `error` its author gets (none for [`Refusal::Nothing`]), about `room` (absent
    /// for a direct conversation), with the `id` of the post it answers.
    fn answer(self, seq: Seq, room: Option<&str>, id: Option<String>) -> Option<Frame> {
        let (code, message) = match self {
            Self::NoSuchMessage => (
                ErrorCode::NoSuchMessage,
                format!("{seq} is not a message there, or it is deleted"),
            ),
            Self::NotAuthor => (
                ErrorCode::NotPermitted,
                "only its author can edit a message".to_string(),
            ),
            Self::TooManyReactions => (
                ErrorCode::TooManyReactions,
                format!("a message holds at most {MAX_REACTIONS} different emoji"),
            ),
            Self::Nothing => return None,
        };
        Some(Frame::encode(&ServerFrame::Error {
            code,
            message,
            id,
            room: room.map(str::to_string),
            retry_after: None,
            until: None,
        }))
    }
}

/// What a log keeps beside a message, never shown: who reacted beyond the names the
/// message lists (so that a reaction stays one per person however many there are), and
/// the seqs of its edits (whose texts go when it is deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aside {
    /// (emoji, case-folded name) of the reactions the message does not list by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beyond: Vec<(String, String)>,
    /// The seqs of its `edited` events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<Seq>,
}

impl Aside {
    /// Reads one as stored (an empty or unreadable value is an empty one).
    pub fn decode(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// As stored; `None` when there is nothing to keep.
    pub fn encode(&self) -> Option<Vec<u8>> {
        if self.beyond.is_empty() && self.edits.is_empty() {
            None
        } else {
            serde_json::to_vec(self).ok()
        }
    }
}

/// Decides whether an event (at `seq`, recorded at `time`) may change the message `current`
/// as asked, against what is kept beside it; if so, returns the message as it is then
/// (`None` for a reply, which changes nothing) and updates `aside`.
pub fn decide(
    current: &Frame,
    aside: &mut Aside,
    change: &Change<'_>,
    seq: Seq,
    time: u64,
) -> Result<Option<Frame>, Refusal> {
    let Ok(ServerFrame::Message {
        from,
        deleted: false,
        reactions,
        ..
    }) = decode_line::<ServerFrame>(current.as_bytes().trim_ascii_end())
    else {
        return Err(Refusal::NoSuchMessage);
    };
    match change {
        Change::Refer => return Ok(None),
        Change::Edit { from: editor, .. } => {
            if fold(editor) != fold(&from) {
                return Err(Refusal::NotAuthor);
            }
            aside.edits.push(seq);
        }
        Change::React {
            from: who,
            emoji,
            on,
        } => {
            let key = fold(who);
            let entry = reactions.iter().find(|r| r.emoji == *emoji);
            let listed = entry.is_some_and(|r| r.names.iter().any(|n| fold(n) == key));
            let at_beyond = aside
                .beyond
                .iter()
                .position(|(e, k)| e == emoji && *k == key);
            if *on == (listed || at_beyond.is_some()) {
                return Err(Refusal::Nothing);
            }
            if *on && entry.is_none() && reactions.len() >= MAX_REACTIONS {
                return Err(Refusal::TooManyReactions);
            }
            let shown = entry.map_or(0, |r| r.names.len());
            match (on, at_beyond) {
                (true, _) if shown >= MAX_REACTION_NAMES => {
                    aside.beyond.push(((*emoji).to_string(), key));
                }
                (false, Some(at)) => {
                    aside.beyond.remove(at);
                }
                _ => {}
            }
        }
        Change::Erase => aside.beyond.clear(),
    }
    Ok(apply(current, change, time))
}

/// The message `current` once changed as a recorded event says (`time`: the event's, the
/// time of an edit); `None` when it is not a message or the change is no change.
pub fn apply(current: &Frame, change: &Change<'_>, time: u64) -> Option<Frame> {
    let Ok(ServerFrame::Message {
        room,
        with,
        seq,
        time: posted,
        from,
        text,
        id,
        me,
        deleted: false,
        reply_to,
        edited,
        mut reactions,
    }) = decode_line::<ServerFrame>(current.as_bytes().trim_ascii_end())
    else {
        return None;
    };
    let (text, edited) = match change {
        Change::Refer => return None,
        Change::Erase => return Some(erased(current)),
        Change::Edit { text, .. } => ((*text).to_string(), Some(time)),
        Change::React {
            from: who,
            emoji,
            on,
        } => {
            if !*on && !reactions.iter().any(|r| r.emoji == *emoji) {
                return None;
            }
            apply_reaction(&mut reactions, who, emoji, *on);
            (text, edited)
        }
    };
    Some(Frame::encode(&ServerFrame::Message {
        room,
        with,
        seq,
        time: posted,
        from,
        text,
        id,
        me,
        deleted: false,
        reply_to,
        edited,
        reactions,
    }))
}

/// A message's frame once it is deleted: its seq, time, sender, place, post id and what it
/// answered kept (the id still acknowledges a post sent again), its text, edit time and
/// reactions gone, `deleted: true`. An `edited` event loses its text. Any other frame is
/// returned as it is.
pub fn erased(frame: &Frame) -> Frame {
    match decode_line::<ServerFrame>(frame.as_bytes().trim_ascii_end()) {
        Ok(ServerFrame::Message {
            room,
            with,
            seq,
            time,
            from,
            id,
            me,
            reply_to,
            ..
        }) => Frame::encode(&ServerFrame::Message {
            room,
            with,
            seq,
            time,
            from,
            text: String::new(),
            id,
            me,
            deleted: true,
            reply_to,
            edited: None,
            reactions: Vec::new(),
        }),
        Ok(ServerFrame::Edited {
            room,
            with,
            seq,
            time,
            from,
            target,
            ..
        }) => Frame::encode(&ServerFrame::Edited {
            room,
            with,
            seq,
            time,
            from,
            target,
            text: String::new(),
        }),
        _ => frame.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Frame {
        Frame::encode(&ServerFrame::Message {
            room: Some("rust".into()),
            with: None,
            seq: 7,
            time: 1,
            from: "Bob".into(),
            text: text.into(),
            id: Some("a1".into()),
            me: false,
            deleted: false,
            reply_to: Some(3),
            edited: None,
            reactions: Vec::new(),
        })
    }

    /// The message as a step that must change it leaves it.
    fn changed(result: Result<Option<Frame>, Refusal>) -> Frame {
        result.expect("allowed").expect("a change")
    }

    fn react<'a>(from: &'a str, emoji: &'a str, on: bool) -> Change<'a> {
        Change::React { from, emoji, on }
    }

    fn reactions_of(frame: &Frame) -> Vec<chat_shared::Reaction> {
        match decode_line::<ServerFrame>(frame.as_bytes().trim_ascii_end()) {
            Ok(ServerFrame::Message { reactions, .. }) => reactions,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn only_the_author_edits_and_the_edit_is_kept_aside() {
        let mut aside = Aside::default();
        let edit = |from| Change::Edit {
            from,
            text: "fixed",
        };
        assert_eq!(
            decide(&message("tpyo"), &mut aside, &edit("carol"), 9, 50),
            Err(Refusal::NotAuthor)
        );
        let edited = changed(decide(&message("tpyo"), &mut aside, &edit("BOB"), 9, 50));
        let ServerFrame::Message {
            text,
            edited: Some(50),
            reply_to: Some(3),
            ..
        } = decode_line(edited.as_bytes().trim_ascii_end()).expect("a frame")
        else {
            panic!("not edited: {edited:?}");
        };
        assert_eq!(text, "fixed");
        assert_eq!(aside.edits, [9]);
    }

    #[test]
    fn reactions_count_once_per_person_and_stop_at_twenty_emoji() {
        let mut aside = Aside::default();
        let mut frame = message("hi");
        frame = changed(decide(&frame, &mut aside, &react("Ann", "👍", true), 8, 2));
        assert_eq!(
            decide(&frame, &mut aside, &react("ann", "👍", true), 9, 2),
            Err(Refusal::Nothing)
        );
        assert_eq!(
            decide(&frame, &mut aside, &react("Cy", "👍", false), 9, 2),
            Err(Refusal::Nothing)
        );
        let emoji: Vec<String> = ('\u{1F600}'..='\u{1F618}').map(String::from).collect();
        for e in emoji.iter().take(19) {
            frame = changed(decide(&frame, &mut aside, &react("Cy", e, true), 9, 2));
        }
        assert_eq!(reactions_of(&frame).len(), 20);
        assert_eq!(
            decide(&frame, &mut aside, &react("Cy", &emoji[20], true), 9, 2),
            Err(Refusal::TooManyReactions)
        );
        frame = changed(decide(&frame, &mut aside, &react("ANN", "👍", false), 9, 2));
        assert_eq!(reactions_of(&frame).len(), 19, "its last one taken back");
    }

    #[test]
    fn beyond_fifty_names_the_count_goes_on_and_each_counts_once() {
        let mut aside = Aside::default();
        let mut frame = message("hi");
        for n in 0..60 {
            frame = changed(decide(
                &frame,
                &mut aside,
                &react(&format!("u{n}"), "🎉", true),
                9,
                2,
            ));
        }
        let [reaction] = &reactions_of(&frame)[..] else {
            panic!()
        };
        assert_eq!((reaction.count, reaction.names.len()), (60, 50));
        assert_eq!(aside.beyond.len(), 10);
        assert_eq!(
            decide(&frame, &mut aside, &react("u55", "🎉", true), 9, 2),
            Err(Refusal::Nothing)
        );
        frame = changed(decide(&frame, &mut aside, &react("u55", "🎉", false), 9, 2));
        assert_eq!(reactions_of(&frame)[0].count, 59);
        assert_eq!(aside.beyond.len(), 9);
        // A window that only applies recorded events ends with the same bytes.
        let applied = apply(&message("hi"), &react("x", "🎉", true), 2).expect("applied");
        assert_eq!(
            applied,
            changed(decide(
                &message("hi"),
                &mut Aside::default(),
                &react("x", "🎉", true),
                1,
                2
            ))
        );
    }

    #[test]
    fn a_deleted_message_takes_nothing_more() {
        let mut aside = Aside {
            beyond: vec![("🎉".into(), "u".into())],
            edits: vec![9],
        };
        let gone = changed(decide(&message("hi"), &mut aside, &Change::Erase, 10, 2));
        assert!(aside.beyond.is_empty());
        assert_eq!(aside.edits, [9], "the edits' texts are the log's to erase");
        assert!(!String::from_utf8_lossy(gone.as_bytes()).contains("hi"));
        for change in [Change::Refer, Change::Erase, react("a", "👍", true)] {
            assert_eq!(
                decide(&gone, &mut aside, &change, 11, 2),
                Err(Refusal::NoSuchMessage)
            );
        }
    }

    #[test]
    fn an_erased_edit_keeps_its_place_without_its_text() {
        let edit = Frame::encode(&ServerFrame::Edited {
            room: Some("r".into()),
            with: None,
            seq: 9,
            time: 5,
            from: "Bob".into(),
            target: 7,
            text: "secret".into(),
        });
        let gone = erased(&edit);
        assert!(!String::from_utf8_lossy(gone.as_bytes()).contains("secret"));
        assert!(matches!(
            decode_line::<ServerFrame>(gone.as_bytes().trim_ascii_end()),
            Ok(ServerFrame::Edited {
                seq: 9,
                target: 7,
                ..
            })
        ));
    }
}
