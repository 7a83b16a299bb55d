//! The end of a chaos run: every stream's whole `history`, read back from the server and
//! held against what the clients received and what the server acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_shared::limits::MAX_SERVER_FRAME;
use chat_shared::{
    ClientFrame, Frame, FrameReader, Password, Reaction, Reader, ServerFrame, Writer,
    apply_reaction,
};
use futures_lite::AsyncWriteExt;
use serde::Serialize;
use smol::Timer;

use super::ledger::{Breach, Ledger, Seen, Stream, canonical, erased_since};

/// What the check went through.
#[derive(Serialize, Default)]
pub(crate) struct Checked {
    pub(crate) streams: usize,
    pub(crate) events_in_history: usize,
    pub(crate) events_received_compared: usize,
    pub(crate) messages_state_compared: usize,
    pub(crate) acknowledged_posts: usize,
}

struct Session {
    writer: Writer,
    frames: FrameReader<Reader, ServerFrame>,
    /// When it last asked: it asks at most [`ASKS_PER_SECOND`] times a second, as the
    /// server's flood control lets a client do for ever.
    asked: Option<Instant>,
}

const ASKS_PER_SECOND: u32 = 10;

impl Session {
    /// Logs in as `name` (with `password` for an account) and leaves the default room, so
    /// that nothing but the answers comes.
    async fn open(
        addr: SocketAddr,
        name: &str,
        password: Option<&str>,
        general: &str,
    ) -> Result<Self, String> {
        let (_, reader, writer) = chat_tests::open(addr, None, None).await?;
        let mut session = Self {
            writer,
            frames: FrameReader::new(reader, MAX_SERVER_FRAME),
            asked: None,
        };
        session
            .send(&ClientFrame::Hello {
                protocol: chat_shared::PROTOCOL_VERSION,
                name: name.to_owned(),
                since: None,
                epoch: None,
                token: None,
                password: password.map(Password::new),
                register: false,
            })
            .await?;
        match session.frames.next().await {
            Some(Ok(ServerFrame::Welcome { .. })) => {}
            other => return Err(format!("{name} could not log in to check: {other:?}")),
        }
        session
            .send(&ClientFrame::Part {
                room: general.to_owned(),
            })
            .await?;
        // Until its own `left` comes, live events of the default room come too.
        loop {
            match session.frames.next().await {
                Some(Ok(ServerFrame::Left {
                    name: left,
                    room: Some(room),
                    ..
                })) if left == name && room == general => {
                    return Ok(session);
                }
                Some(Ok(_)) => {}
                other => {
                    return Err(format!(
                        "{name} could not leave {general} to check: {other:?}"
                    ));
                }
            }
        }
    }

    async fn send(&mut self, frame: &ClientFrame) -> Result<(), String> {
        self.writer
            .write_all(Frame::encode(frame).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        self.writer.flush().await.map_err(|e| e.to_string())
    }

    /// A stream's whole history, page after page.
    async fn history(
        &mut self,
        room: Option<&str>,
        with: Option<&str>,
    ) -> Result<BTreeMap<u64, ServerFrame>, String> {
        let mut events = BTreeMap::new();
        let mut after = 0;
        loop {
            let gap = Duration::from_secs(1) / ASKS_PER_SECOND;
            if let Some(asked) = self.asked {
                Timer::at(asked + gap).await;
            }
            self.asked = Some(Instant::now());
            self.send(&ClientFrame::History {
                room: room.map(str::to_owned),
                with: with.map(str::to_owned),
                before: None,
                after: Some(after),
                limit: Some(200),
            })
            .await?;
            let count = loop {
                match self.frames.next().await {
                    Some(Ok(ServerFrame::HistoryEnd { count, .. })) => break count,
                    // The replay after `welcome` and anything else of other streams
                    // may come in between.
                    Some(Ok(frame))
                        if frame.with() == with && (with.is_some() || frame.room() == room) =>
                    {
                        if let Some(seq) = frame.seq() {
                            after = after.max(seq);
                            events.insert(seq, frame);
                        }
                    }
                    Some(Ok(ServerFrame::Closing { code, message })) => {
                        return Err(format!("the server closed the check: {code:?}: {message}"));
                    }
                    Some(Ok(_)) => {}
                    other => return Err(format!("history broke off: {other:?}")),
                }
            };
            if count < 200 {
                return Ok(events);
            }
        }
    }
}

/// Reads every stream the clients saw back from the server and compares.
pub(crate) async fn check(
    addr: SocketAddr,
    ledger: &Ledger,
    passwords: &HashMap<String, String>,
    general: &str,
) -> Result<Checked, String> {
    let (seen, acked) = ledger.take();
    let mut checked = Checked {
        streams: seen.len(),
        acknowledged_posts: acked.len(),
        ..Checked::default()
    };
    let mut rooms = Session::open(addr, "chaos-checker", None, general).await?;
    let mut sessions: HashMap<String, Session> = HashMap::new();
    let mut histories: HashMap<Stream, BTreeMap<u64, ServerFrame>> = HashMap::new();
    for stream in seen.keys() {
        let history = match stream {
            Stream::Room(room) => rooms.history(Some(room), None).await?,
            Stream::Direct(a, b) => {
                let password = passwords
                    .get(a)
                    .ok_or_else(|| format!("no password for {a}"))?;
                if !sessions.contains_key(a) {
                    sessions.insert(
                        a.clone(),
                        Session::open(addr, a, Some(password), general).await?,
                    );
                }
                let session = sessions.get_mut(a).ok_or("a session")?;
                session.history(None, Some(b)).await?
            }
        };
        histories.insert(stream.clone(), history);
    }
    for (stream, events) in &seen {
        let history = &histories[stream];
        checked.events_in_history += history.len();
        holes(stream, history, ledger);
        for (seq, seen) in events {
            checked.events_received_compared += 1;
            checked.messages_state_compared +=
                usize::from(compare(stream, *seq, seen, history, ledger));
        }
    }
    acknowledged(&acked, &histories, ledger);
    Ok(checked)
}

/// `history` must hold every seq from its first to its last.
fn holes(stream: &Stream, history: &BTreeMap<u64, ServerFrame>, ledger: &Ledger) {
    let mut expected = 1;
    for seq in history.keys() {
        if *seq != expected {
            ledger.breach(Breach::HistoryHole, || {
                let around = |seq: u64| history.get(&seq).map(canonical);
                format!(
                    "{stream}: history skips {expected}..{seq}: {:?} then {:?}",
                    around(expected - 1),
                    around(*seq)
                )
            });
        }
        expected = seq + 1;
    }
}

/// One received event against `history`; whether it was a message whose state was
/// compared.
fn compare(
    stream: &Stream,
    seq: u64,
    seen: &Seen,
    history: &BTreeMap<u64, ServerFrame>,
    ledger: &Ledger,
) -> bool {
    let Some(kept) = history.get(&seq) else {
        ledger.breach(Breach::NotInHistory, || {
            format!("{stream} seq {seq} is not in history: {}", seen.canon)
        });
        return false;
    };
    let canon = canonical(kept);
    if canon != seen.canon && !erased_since(&seen.canon, &canon) {
        ledger.breach(Breach::NotInHistory, || {
            format!(
                "{stream} seq {seq}: received {} but history has {canon}",
                seen.canon
            )
        });
    }
    let ServerFrame::Message {
        text,
        deleted,
        reactions,
        ..
    } = kept
    else {
        return false;
    };
    let mut last_edit = None;
    let mut was_deleted = false;
    let mut expected: Vec<Reaction> = Vec::new();
    for event in history.range(seq + 1..).map(|(_, event)| event) {
        match event {
            ServerFrame::Edited { target, text, .. } if *target == seq => last_edit = Some(text),
            ServerFrame::Deleted { target, .. } if *target == seq => was_deleted = true,
            ServerFrame::Reaction {
                target,
                from,
                emoji,
                on,
                ..
            } if *target == seq => {
                apply_reaction(&mut expected, from, emoji, *on);
            }
            _ => {}
        }
    }
    let wrong = if was_deleted || *deleted {
        (was_deleted != *deleted || !text.is_empty() || !reactions.is_empty()).then(|| {
            format!("deleted {was_deleted} by its events, {deleted} in history, text {text:?}")
        })
    } else if let Some(edit) = last_edit.filter(|edit| text != *edit) {
        Some(format!("text {text:?}, last edited to {edit:?}"))
    } else if last_edit.is_some() {
        (*reactions != expected)
            .then(|| format!("reactions {reactions:?}, by its events {expected:?}"))
    } else if let Some(live) = seen.live_text.as_ref().filter(|live| text != *live) {
        Some(format!("text {text:?}, received as {live:?}"))
    } else {
        (*reactions != expected)
            .then(|| format!("reactions {reactions:?}, by its events {expected:?}"))
    };
    if let Some(what) = wrong {
        ledger.breach(Breach::WrongState, || {
            format!("{stream} message {seq}: {what}")
        });
    }
    true
}

/// Every acknowledged post is in `history` once, at the seq its echo had.
fn acknowledged(
    acked: &[(Stream, String, u64)],
    histories: &HashMap<Stream, BTreeMap<u64, ServerFrame>>,
    ledger: &Ledger,
) {
    let mut ids: HashMap<(&Stream, &str), Vec<u64>> = HashMap::new();
    for (stream, history) in histories {
        for (seq, frame) in history {
            if let ServerFrame::Message { id: Some(id), .. } = frame {
                ids.entry((stream, id.as_str())).or_default().push(*seq);
            }
        }
    }
    for (stream, id, seq) in acked {
        let found = ids
            .get(&(stream, id.as_str()))
            .map_or(&[][..], Vec::as_slice);
        if found != [*seq] {
            ledger.breach(Breach::AckedPost, || {
                format!("{stream}: post {id} acknowledged at {seq}, in history at {found:?}")
            });
        }
    }
}
