//! What an IRC client is sent: the frames the hub queues for the connection, rendered as
//! IRC lines when they are written, and the lines the reader queued itself, as they are.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use async_channel::Sender;
use chat_shared::{
    ErrorCode, LeaveReason, RejectCode, Role, RoomName, ServerFrame, decode_line, fold,
};

use super::label::Taken;
use super::line::{MAX_LINE, Out, escape, pieces};
use super::time::write_time;
use super::{
    ACCOUNT_TAG, BATCH, Channel, ECHO_MESSAGE, EXTENDED_JOIN, HOST, LABELED_RESPONSE, MESSAGE_TAGS,
    READ_MARKER, REDACTION, SERVER_TIME, Shared, USERHOST_IN_NAMES, View, channel, key, name_of,
    nick, place, prefix, source,
};
use crate::accounts::AccountNames;
use crate::hub::command::Command;
use crate::log::recorded_at;
use crate::queue::Prepared;
use crate::registry::ConnId;

/// The reader's word to the renderer that `CAP END` came: a welcome held back for it
/// (a login through SASL) may go. Never written to the client.
pub const RELEASE: &str = "\0\n";

/// Renders what is queued for one IRC connection.
pub struct Renderer {
    shared: Arc<Shared>,
    /// To ask for the rooms a welcome names (their members and topics come as answers).
    hub: Sender<Command>,
    conn: ConnId,
    /// Lines held back until `CAP END`: a login through SASL is welcomed after it.
    held: Option<Out>,
    /// Whether `CAP END` came.
    released: bool,
    /// The ISUPPORT tokens.
    isupport: Vec<String>,
    /// The accounts' keys: an account's lines are tagged with its name.
    accounts: Arc<AccountNames>,
}

/// A queued item as every IRC connection that writes it shares it.
struct Pieces {
    pieces: Vec<Piece>,
    /// Whether it is a page of history (it ends with `history_end`).
    history: bool,
}

/// One line of a queued item.
enum Piece {
    /// Lines of the reader's own (or its word to release a welcome): written as they are.
    Raw(Range<usize>),
    /// A message of a room, rendered once for all.
    Message(Box<RoomMessage>),
    /// Any other frame: each connection renders it, as its own state says.
    Frame(Range<usize>),
}

/// A message of a room in IRC form, but for its tags, which each connection picks.
struct RoomMessage {
    /// The room's key (its folded name).
    room: String,
    seq: u64,
    /// The author's key.
    from: String,
    /// `account=…` if the author is an account.
    account: Option<String>,
    /// `time=…`.
    time: String,
    /// `msgid=…` and `+draft/reply=…`.
    ids: String,
    /// The poster's id for it, if it gave one.
    id: Option<String>,
    /// Its time, in milliseconds since the Unix epoch.
    at: u64,
    /// Its lines, untagged: `:source PRIVMSG #room :text` and CR-LF.
    lines: String,
}

impl Pieces {
    /// Takes a queued item apart, rendering its room messages (whose authors are looked
    /// up in `accounts` once for all).
    fn of(bytes: &[u8], accounts: &AccountNames) -> Self {
        let mut pieces = Vec::new();
        let mut at = 0;
        for line in bytes.split_inclusive(|byte| *byte == b'\n') {
            let range = at..at + line.len();
            at += line.len();
            if line.first() != Some(&b'{') {
                pieces.push(Piece::Raw(range));
                continue;
            }
            match decode_line::<ServerFrame>(line) {
                Ok(ServerFrame::Message {
                    room: Some(room),
                    seq,
                    time,
                    from,
                    text,
                    me,
                    deleted: false,
                    reply_to,
                    id,
                    ..
                }) => {
                    let msgid = format!("{room}/{seq}");
                    let reply = reply_to.map(|seq| format!("{room}/{seq}"));
                    let mut lines = Out::new(&HOST.into());
                    privmsg(&mut lines, "", &from, &channel(&room), &text, me, "PRIVMSG");
                    pieces.push(Piece::Message(Box::new(RoomMessage {
                        room: fold(&room),
                        seq,
                        account: accounts.contains(&fold(&from)).then(|| account_tag(&from)),
                        from: fold(&from),
                        time: tags(SERVER_TIME, time, None, None),
                        ids: tags(MESSAGE_TAGS, 0, Some(&msgid), reply.as_deref()),
                        id,
                        at: time,
                        lines: lines.into_string(),
                    })));
                }
                Ok(ServerFrame::HistoryEnd { .. }) if at == bytes.len() => {
                    pieces.push(Piece::Frame(range));
                    return Self {
                        pieces,
                        history: true,
                    };
                }
                _ => pieces.push(Piece::Frame(range)),
            }
        }
        Self {
            pieces,
            history: false,
        }
    }
}

impl Renderer {
    /// A renderer for connection `conn`, whose `welcome` asks `hub` for its rooms.
    pub fn new(
        shared: Arc<Shared>,
        hub: Sender<Command>,
        conn: ConnId,
        max_text: usize,
        accounts: Arc<AccountNames>,
    ) -> Self {
        let isupport = vec![
            "CASEMAPPING=rfc8265".into(),
            "CHANMODES=b,,,i".into(),
            format!("CHATHISTORY={}", chat_shared::limits::MAX_HISTORY_LIMIT),
            "MSGREFTYPES=msgid,timestamp".into(),
            "CHANNELLEN=33".into(),
            "CHANTYPES=#".into(),
            format!("NICKLEN={}", chat_shared::limits::MAX_NAME),
            "PREFIX=(qo)~@".into(),
            "NETWORK=chat".into(),
            format!("TOPICLEN={}", chat_shared::limits::MAX_TOPIC),
            format!("LINELEN={MAX_LINE}"),
            format!("MAXTEXT={max_text}"),
            "UTF8ONLY".into(),
        ];
        Self {
            shared,
            hub,
            conn,
            held: None,
            released: false,
            isupport,
            accounts,
        }
    }

    /// Renders `bytes` (one queued item: frames, or lines of the reader's) onto `out`;
    /// `prepared` keeps what every IRC connection writing the item shares.
    pub fn render(&mut self, bytes: &[u8], prepared: &Prepared, out: &mut String) {
        let shared = prepared
            .get_or_init(|| Box::new(Pieces::of(bytes, &self.accounts)))
            .downcast_ref::<Pieces>();
        // Only this module prepares for IRC, so `shared` is always its own kind.
        let own;
        let pieces = if let Some(pieces) = shared {
            pieces
        } else {
            own = Pieces::of(bytes, &self.accounts);
            &own
        };
        let mut lines = Out::after(&self.shared.server, std::mem::take(out));
        if pieces.history {
            let mut page = Out::new(&self.shared.server);
            let key = self.history(pieces, bytes, &mut page);
            match key.and_then(|key| self.shared.view().labels.take_history(&key)) {
                Some(taken) => self.fill(taken, &page, &mut lines),
                None => lines.push_str(page.as_str()),
            }
            *out = lines.into_string();
            return;
        }
        // What follows a welcome in its item is the replay of its rooms: history, which
        // IRC does not show.
        let mut replay = false;
        // Answers to labeled commands are looked for only once a client asked for labels.
        let labeled = self.shared.caps() & LABELED_RESPONSE != 0;
        for piece in &pieces.pieces {
            let frame = match piece {
                Piece::Raw(range) if bytes[range.start] == b'\0' => {
                    self.released = true;
                    if let Some(held) = self.held.take() {
                        lines.push_str(held.as_str());
                    }
                    continue;
                }
                Piece::Message(_) if replay => continue,
                Piece::Frame(range) => match decode_line::<ServerFrame>(&bytes[range.clone()]) {
                    Ok(frame) if replay && frame.seq().is_some() => continue,
                    Ok(frame) => Some(frame),
                    Err(err) => {
                        tracing::warn!(%err, "a frame the IRC port cannot read");
                        continue;
                    }
                },
                _ => None,
            };
            replay |= matches!(frame, Some(ServerFrame::Welcome { .. }));
            // Lines go after what is held back while a welcome waits for `CAP END`; the
            // welcome's own first lines (900, 903) do not wait, and what comes after them
            // goes to the lines it holds back.
            let mut held = self.held.take();
            let sink = held.as_mut().unwrap_or(&mut lines);
            match (piece, frame) {
                (_, Some(frame)) => {
                    let read_time = match &frame {
                        ServerFrame::Room { read, .. } if self.shared.caps() & READ_MARKER != 0 => {
                            time_in(pieces, bytes, *read)
                        }
                        _ => None,
                    };
                    let taken = labeled.then(|| {
                        let mut view = self.shared.view();
                        let View { labels, me, .. } = &mut *view;
                        labels.take(&frame, me)
                    });
                    self.labeled(taken.flatten(), sink, |this, out| {
                        this.frame(frame, read_time, out);
                    });
                }
                (Piece::Raw(range), None) => sink.push_bytes(&bytes[range.clone()]),
                (Piece::Message(message), None) => {
                    let taken = message.id.as_deref().filter(|_| labeled).and_then(|id| {
                        let mut view = self.shared.view();
                        (message.from == view.me)
                            .then(|| view.labels.take_post(id))
                            .flatten()
                    });
                    self.labeled(taken, sink, |this, out| this.message(message, out));
                }
                (Piece::Frame(_), None) => {}
            }
            if held.is_some() {
                self.held = held;
            }
        }
        *out = lines.into_string();
    }

    /// Renders onto `out` with `render`; if what it renders was `taken` as an answer to a
    /// labeled command, it goes with the command's other answers instead (see
    /// [`Renderer::fill`]).
    fn labeled(
        &mut self,
        taken: Option<Taken>,
        out: &mut Out,
        render: impl FnOnce(&mut Self, &mut Out),
    ) {
        let Some(taken) = taken else {
            return render(self, out);
        };
        let mut part = Out::new(&self.shared.server);
        render(self, &mut part);
        self.fill(taken, &part, out);
    }

    /// Adds `part`, the lines of an answer `taken` for a labeled command, to the
    /// command's answers; once all have come, writes them with their label.
    fn fill(&self, taken: Taken, part: &Out, out: &mut Out) {
        let caps = self.shared.caps();
        let mut view = self.shared.view();
        if let Some(answered) = view.labels.fill(taken, part.as_str()) {
            answered.write(|| (caps & BATCH != 0).then(|| view.batch()), out);
        }
    }

    /// A page of history, asked with `CHATHISTORY`: its messages, in a batch for a
    /// client that takes batches. Returns the key of the room or conversation it was of.
    fn history(&mut self, pieces: &Pieces, bytes: &[u8], out: &mut Out) -> Option<String> {
        let Some((Piece::Frame(end), events)) = pieces.pieces.split_last() else {
            return None;
        };
        let Ok(ServerFrame::HistoryEnd { room, with, .. }) = decode_line(&bytes[end.clone()])
        else {
            return None;
        };
        let key = place(room.as_deref(), with.as_deref())?;
        let target = match (&room, &with) {
            (Some(room), _) => channel(room),
            (_, with) => nick(with.as_deref().unwrap_or_default()).into_owned(),
        };
        let caps = self.shared.caps();
        let mut view = self.shared.view();
        // Asks answered with an error instead (an invite-only room's) are passed over.
        let ask = loop {
            match view.asks.pop_front() {
                Some(ask) if ask.key == key => break ask,
                Some(_) => {}
                None => return None,
            }
        };
        let batch = (caps & BATCH != 0).then(|| view.batch());
        let (me, me_key) = (view.nick.clone().unwrap_or_default(), view.me.clone());
        drop(view);
        if let Some(id) = &batch {
            out.server("BATCH")
                .params(&[&format!("+{id}"), "chathistory", &target]);
        }
        let batched = |tags: &str| match &batch {
            Some(id) if tags.is_empty() => format!("batch={id}"),
            Some(id) => format!("batch={id};{tags}"),
            None => tags.to_string(),
        };
        let mut seen = Vec::new();
        for piece in events {
            match piece {
                Piece::Message(message) if ask.keeps(message.seq, message.at) => {
                    seen.push((message.seq, message.at));
                    let tags = batched(&message_tags(caps, message));
                    for line in message.lines.split_inclusive('\n') {
                        out.push_tagged(&tags, line);
                    }
                }
                Piece::Frame(range) => {
                    if let Ok(frame) = decode_line::<ServerFrame>(&bytes[range.clone()])
                        && frame.seq().is_some_and(|seq| {
                            ask.keeps(seq, recorded_at(&bytes[range.clone()]).unwrap_or_default())
                        })
                    {
                        if caps & READ_MARKER != 0 {
                            saw_direct(&mut self.shared.view(), &frame);
                        }
                        direct(out, caps, (&me, &me_key), frame, &batched);
                    }
                }
                _ => {}
            }
        }
        if let Some(id) = &batch {
            out.server("BATCH").params(&[&format!("-{id}")]);
        }
        if caps & READ_MARKER != 0
            && let Some(channel) = self.shared.view().channels.get_mut(&key)
        {
            for (seq, at) in seen {
                channel.marker.saw(seq, at);
            }
        }
        Some(key)
    }

    /// A room's message, with the tags this connection asked for.
    fn message(&self, message: &RoomMessage, out: &mut Out) {
        let caps = self.shared.caps();
        let mut view = self.shared.view();
        let mine = message.from == view.me;
        let Some(channel) = view.channels.get_mut(&message.room) else {
            return;
        };
        if message.seq <= channel.shown {
            return;
        }
        channel.shown = message.seq;
        if caps & READ_MARKER != 0 {
            channel.marker.saw(message.seq, message.at);
        }
        if mine && caps & ECHO_MESSAGE == 0 {
            return;
        }
        let tags = message_tags(caps, message);
        if tags.is_empty() {
            out.push_str(&message.lines);
            return;
        }
        for line in message.lines.split_inclusive('\n') {
            out.push_tagged(&tags, line);
        }
    }

    /// Any frame but a room's message, rendered for this connection alone; `read_time`
    /// is, for a room answer, the time of the event its read marker names (if known).
    fn frame(&mut self, frame: ServerFrame, read_time: Option<u64>, out: &mut Out) {
        let caps = self.shared.caps();
        if caps & (ACCOUNT_TAG | EXTENDED_JOIN) == 0 || matches!(frame, ServerFrame::Message { .. })
        {
            return self.lines(frame, read_time, out);
        }
        let mut lines = Out::new(&self.shared.server);
        self.lines(frame, read_time, &mut lines);
        for line in lines.as_str().split_inclusive('\n') {
            self.with_account(caps, line, out);
        }
    }

    /// A line with a member as its source, as the capabilities asked for say of an
    /// account's: its `account` tag (`account-tag`), and for a `JOIN` the account's name,
    /// or `*` for a guest, and the real name, which is the name here (`extended-join`).
    fn with_account(&self, caps: u32, line: &str, out: &mut Out) {
        let (tags, rest) = match line.strip_prefix('@') {
            Some(tagged) => tagged.split_once(' ').unwrap_or((tagged, "")),
            None => ("", line),
        };
        let Some((nick, command)) = rest
            .strip_prefix(':')
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(source, command)| Some((source.split_once("!~u@")?.0, command)))
        else {
            return out.push_str(line);
        };
        let name = name_of(nick);
        let account = self.accounts.contains(&fold(&name));
        let mut rest = Cow::Borrowed(rest);
        if caps & EXTENDED_JOIN != 0
            && let Some(target) = command.strip_prefix("JOIN ")
        {
            let target = target.trim_end();
            let source = &rest[..rest.len() - command.len()];
            rest = Cow::Owned(format!(
                "{source}JOIN {target} {} :{name}\r\n",
                if account { nick } else { "*" }
            ));
        }
        let mut tags = Cow::Borrowed(tags);
        if caps & ACCOUNT_TAG != 0 && account {
            let account = account_tag(&name);
            tags = Cow::Owned(if tags.is_empty() {
                account
            } else {
                format!("{account};{tags}")
            });
        }
        out.push_tagged(&tags, &rest);
    }

    /// The lines of [`Renderer::frame`], before what is added for accounts.
    fn lines(&mut self, frame: ServerFrame, read_time: Option<u64>, out: &mut Out) {
        let caps = self.shared.caps();
        let mut view = self.shared.view();
        let me = view.nick.clone().unwrap_or_else(|| "*".into());
        match frame {
            ServerFrame::Welcome { .. } => {
                drop(view);
                self.welcome(frame, out);
            }
            ServerFrame::Rejected { code, message, .. } => {
                rejected(&view, &me, code, &message, out);
            }
            frame @ ServerFrame::Room { .. } => {
                answer(&mut view, (&me, caps, read_time), frame, out);
            }
            frame @ ServerFrame::Message { room: None, .. } => {
                if caps & READ_MARKER != 0 {
                    saw_direct(&mut view, &frame);
                }
                let mine =
                    matches!(&frame, ServerFrame::Message { from, .. } if fold(from) == view.me);
                if mine && caps & ECHO_MESSAGE == 0 {
                    return;
                }
                direct(out, caps, (&me, &view.me), frame, &str::to_owned);
            }
            frame @ (ServerFrame::Joined { .. } | ServerFrame::Left { .. }) => {
                membership(&mut view, caps, frame, out);
            }
            frame @ (ServerFrame::Topic { .. }
            | ServerFrame::Role { .. }
            | ServerFrame::Ban { .. }
            | ServerFrame::Unban { .. }
            | ServerFrame::Mute { .. }
            | ServerFrame::Unmute { .. }
            | ServerFrame::Settings { .. }
            | ServerFrame::Invite { .. }) => moderation(&mut view, &me, caps, frame, out),
            frame @ (ServerFrame::Deleted { .. }
            | ServerFrame::Edited { .. }
            | ServerFrame::Reaction { .. }
            | ServerFrame::Typing { .. }) => life(&mut view, &me, caps, frame, out),
            frame => plain(&mut view, &me, frame, out),
        }
    }

    /// The welcome: 001 to 005, then each room the connection is in, whose members and
    /// topic the hub is asked for. A login through SASL says so first, and the rest waits
    /// for `CAP END`.
    fn welcome(&mut self, frame: ServerFrame, out: &mut Out) {
        let ServerFrame::Welcome {
            name,
            rooms,
            epoch,
            conversations,
            ..
        } = frame
        else {
            return;
        };
        let me = nick(&name).into_owned();
        let mut view = self.shared.view();
        view.me = fold(&name);
        // Where an account's conversations were read to, for `MARKREAD`.
        for conversation in conversations.unwrap_or_default() {
            if conversation.read > 0 {
                view.direct_marker(&fold(&conversation.with)).read.0 = conversation.read;
            }
        }
        if let Some(asked) = view.nick.replace(me.clone())
            && asked != me
        {
            out.start("", &format!("{asked}!~u@{HOST}"), "NICK")
                .params(&[&me]);
        }
        let sasl = view.sasl;
        let out = if sasl {
            let mask = source(&name);
            out.numeric(
                900,
                &me,
                &[&mask, &name, &format!("You are now logged in as {name}")],
            );
            out.numeric(903, &me, &["SASL authentication successful"]);
            if self.released {
                out
            } else {
                self.held.insert(Out::new(&self.shared.server))
            }
        } else {
            out
        };
        let version = env!("CARGO_PKG_VERSION");
        let server = self.shared.server.clone();
        out.numeric(1, &me, &[&format!("Welcome to the chat, {me}")]);
        out.numeric(
            2,
            &me,
            &[&format!(
                "Your host is {server}, running chat-server {version}"
            )],
        );
        out.numeric(3, &me, &[&format!("This chat's history is epoch {epoch}")]);
        out.server("004")
            .params(&[&me, &server, version, "i", "biqo", "bqo"]);
        for tokens in self.isupport.chunks(12) {
            let mut params: Vec<&str> = tokens.iter().map(String::as_str).collect();
            params.push("are supported by this server");
            out.numeric(5, &me, &params);
        }
        out.numeric(422, &me, &["MOTD File is missing"]);
        for room in &rooms {
            let target = channel(room);
            out.start("", &source(&name), "JOIN").params(&[&target]);
            // What it shows starts where the answer asked for below says.
            view.channels.insert(
                fold(room),
                Channel {
                    name: room.clone(),
                    ..Channel::default()
                },
            );
            if let Ok(room) = RoomName::parse(room) {
                let _ = self.hub.try_send(Command::Join {
                    conn: self.conn,
                    room,
                    since: None,
                });
            }
        }
    }
}

/// The channel for events of `room`, if the connection is in it and has not been shown
/// `seq` yet; marks it shown.
fn shown<'a>(view: &'a mut View, room: &str, seq: u64) -> Option<&'a mut Channel> {
    let channel = view.channels.get_mut(&fold(room))?;
    if seq <= channel.shown {
        return None;
    }
    channel.shown = seq;
    Some(channel)
}

fn channel_name(channel: &Channel) -> String {
    super::channel(&channel.name)
}

/// The tags of a room's message this connection asked for.
fn message_tags(caps: u32, message: &RoomMessage) -> String {
    let mut tags = String::new();
    let account = message
        .account
        .as_deref()
        .filter(|_| caps & ACCOUNT_TAG != 0);
    let time = Some(message.time.as_str()).filter(|_| caps & SERVER_TIME != 0);
    let ids = Some(message.ids.as_str()).filter(|ids| caps & MESSAGE_TAGS != 0 && !ids.is_empty());
    for tag in [account, time, ids].into_iter().flatten() {
        if !tags.is_empty() {
            tags.push(';');
        }
        tags.push_str(tag);
    }
    tags
}

/// `account=…`: the tag of what account `name` says.
fn account_tag(name: &str) -> String {
    let mut tag = String::from("account=");
    escape(&nick(name), &mut tag);
    tag
}

/// A direct message (not deleted) as `PRIVMSG`s to `me` (a nick, and its name's key), or
/// from `me` to the other account; `batched` adds what tags the page it is in needs.
fn direct(
    out: &mut Out,
    caps: u32,
    me: (&str, &str),
    frame: ServerFrame,
    batched: &dyn Fn(&str) -> String,
) {
    let ServerFrame::Message {
        with: Some(with),
        seq,
        time,
        from,
        text,
        me: action,
        deleted: false,
        reply_to,
        ..
    } = frame
    else {
        return;
    };
    let (msgid, reply) = direct_ids(&with, seq, reply_to);
    let mut tags = tags(caps, time, Some(&msgid), reply.as_deref());
    if caps & ACCOUNT_TAG != 0 {
        // Direct messages are between accounts only.
        let account = account_tag(&from);
        tags = if tags.is_empty() {
            account
        } else {
            format!("{account};{tags}")
        };
    }
    let tags = batched(&tags);
    let to = if fold(&from) == me.1 {
        nick(&with).into_owned()
    } else {
        me.0.to_string()
    };
    privmsg(out, &tags, &from, &to, &text, action, "PRIVMSG");
}

/// Keeps a direct message's time, for `MARKREAD` of its conversation.
fn saw_direct(view: &mut View, frame: &ServerFrame) {
    if let ServerFrame::Message {
        with: Some(with),
        seq,
        time,
        deleted: false,
        ..
    } = frame
    {
        view.direct_marker(&fold(with)).saw(*seq, *time);
    }
}

/// The message id of a direct message (`@account/seq`, the other account's key), and of
/// the message it answers.
fn direct_ids(with: &str, seq: u64, reply_to: Option<u64>) -> (String, Option<String>) {
    let key = fold(with);
    (
        format!("@{key}/{seq}"),
        reply_to.map(|seq| format!("@{key}/{seq}")),
    )
}

/// The tags of an event, as far as the capabilities agreed allow.
fn tags(caps: u32, time: u64, msgid: Option<&str>, reply: Option<&str>) -> String {
    let mut tags = String::new();
    if caps & SERVER_TIME != 0 && time > 0 {
        tags.push_str("time=");
        write_time(time, &mut tags);
    }
    if caps & MESSAGE_TAGS != 0 {
        for (key, value) in [("msgid", msgid), ("+draft/reply", reply)] {
            if let Some(value) = value {
                if !tags.is_empty() {
                    tags.push(';');
                }
                tags.push_str(key);
                tags.push('=');
                escape(value, &mut tags);
            }
        }
    }
    tags
}

/// A message as one `PRIVMSG` (or `NOTICE`) a line of its text, each short enough for
/// IRC's 512 bytes; `action`: a `/me`, as CTCP ACTION.
fn privmsg(
    out: &mut Out,
    tags: &str,
    from: &str,
    target: &str,
    text: &str,
    action: bool,
    command: &str,
) {
    let source = source(from);
    // ":source COMMAND target :" and CR-LF, and the ACTION's wrapping.
    let room = MAX_LINE.saturating_sub(source.len() + command.len() + target.len() + 8 + 9);
    for piece in pieces(text, room) {
        let line = out.start(tags, &source, command);
        if action {
            line.trailing(&[target], &format!("\x01ACTION {piece}\x01"));
        } else {
            line.trailing(&[target], piece);
        }
    }
}

/// The answer to a join: `JOIN` (if new), then with `draft/read-marker` where the read
/// marker stands (`read_time`: the time of the event it names, if known), the topic and
/// the names.
fn answer(
    view: &mut View,
    (me, caps, read_time): (&str, u32, Option<u64>),
    frame: ServerFrame,
    out: &mut Out,
) {
    let ServerFrame::Room {
        room,
        users,
        seq,
        state,
        read,
        ..
    } = frame
    else {
        return;
    };
    let target = channel(&room);
    view.joining.remove(&fold(&room));
    let mut joined = false;
    let channel = view.channels.entry(fold(&room)).or_insert_with(|| {
        out.start("", &source(me), "JOIN").params(&[&target]);
        joined = true;
        Channel {
            name: room.clone(),
            ..Channel::default()
        }
    });
    let read_time = read_time.filter(|_| read > 0);
    let marker = &mut channel.marker;
    if read >= marker.read.0 {
        marker.read = (
            read,
            read_time.or(marker.read.1.filter(|_| read == marker.read.0)),
        );
    }
    if joined && caps & READ_MARKER != 0 {
        out.server("MARKREAD")
            .params(&[&target, &self::marker(marker.read.1)]);
    }
    channel.shown = channel.shown.max(seq);
    channel.topic = state.topic;
    channel.invite_only = state.invite_only;
    channel.roles = state
        .roles
        .into_iter()
        .map(|(name, role)| (fold(&name), role))
        .collect();
    channel.bans = state.bans.into_iter().map(|ban| ban.name).collect();
    channel.mutes = state.mutes.into_iter().map(|mute| mute.name).collect();
    channel.members = users
        .into_iter()
        .map(|name| {
            let role = channel.role_of(&name);
            (fold(&name), (name, role))
        })
        .collect();
    if let Some(topic) = channel.topic.as_deref().filter(|topic| !topic.is_empty()) {
        out.numeric(332, me, &[&target, topic]);
    }
    names(me, channel, caps & USERHOST_IN_NAMES != 0, out);
}

/// The time of event `seq` if the item (a room answer and its replay) holds it.
fn time_in(pieces: &Pieces, bytes: &[u8], seq: u64) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Stamp {
        seq: u64,
        time: u64,
    }
    pieces.pieces.iter().find_map(|piece| match piece {
        Piece::Message(message) if message.seq == seq => Some(message.at),
        Piece::Frame(range) => serde_json::from_slice::<Stamp>(&bytes[range.clone()])
            .ok()
            .filter(|stamp| stamp.seq == seq)
            .map(|stamp| stamp.time),
        _ => None,
    })
}

/// A read marker's time as `MARKREAD` gives it: `timestamp=…`, or `*` if unknown.
pub fn marker(time: Option<u64>) -> String {
    match time {
        Some(time) => {
            let mut stamp = String::from("timestamp=");
            write_time(time, &mut stamp);
            stamp
        }
        None => "*".into(),
    }
}

/// `NAMES` of a channel: 353 lines short enough for IRC, then 366; `full`: each member
/// as `nick!user@host` (`userhost-in-names`).
pub fn names(me: &str, channel: &Channel, full: bool, out: &mut Out) {
    let target = super::channel(&channel.name);
    let mut listed = String::new();
    let room = MAX_LINE.saturating_sub(out.name().len() + me.len() + target.len() + 16);
    for (name, role) in channel.members.values() {
        let entry = if full {
            format!("{}{}", prefix(*role), source(name))
        } else {
            format!("{}{}", prefix(*role), nick(name))
        };
        if !listed.is_empty() && listed.len() + entry.len() + 1 > room {
            out.numeric(353, me, &["=", &target, &listed]);
            listed.clear();
        }
        if !listed.is_empty() {
            listed.push(' ');
        }
        listed.push_str(&entry);
    }
    if !listed.is_empty() {
        out.numeric(353, me, &["=", &target, &listed]);
    }
    out.numeric(366, me, &[&target, "End of /NAMES list"]);
}

/// Joins and departures: `JOIN`, `PART`, and `KICK` for a removal or a ban.
fn membership(view: &mut View, caps: u32, frame: ServerFrame, out: &mut Out) {
    let me = view.me.clone();
    let (Some(room), Some(seq)) = (frame.room().map(str::to_owned), frame.seq()) else {
        return;
    };
    let Some(channel) = shown(view, &room, seq) else {
        return;
    };
    let target = channel_name(channel);
    match frame {
        ServerFrame::Joined { time, name, .. } => {
            let role = channel.role_of(&name);
            channel.members.insert(fold(&name), (name.clone(), role));
            // One's own join was shown with the answer to it.
            if fold(&name) != me {
                out.start(&tags(caps, time, None, None), &source(&name), "JOIN")
                    .params(&[&target]);
            }
        }
        ServerFrame::Left {
            time,
            name,
            reason,
            by,
            message,
            ..
        } => {
            let key = fold(&name);
            let was_here = channel.members.remove(&key).is_some();
            let tags = tags(caps, time, None, None);
            match (reason, by) {
                (LeaveReason::Removed | LeaveReason::Banned | LeaveReason::Kicked, Some(by)) => {
                    let why = message.unwrap_or_else(|| reason.describe().into());
                    out.start(&tags, &source(&by), "KICK")
                        .params(&[&target, &nick(&name), &why]);
                }
                (LeaveReason::Part, _) => {
                    out.start(&tags, &source(&name), "PART")
                        .params(&[&target, reason.describe()]);
                }
                // Gone from the chat: IRC says it once, with QUIT, for every channel
                // shared; its departures from the others are not shown again.
                _ if key != me && was_here => {
                    out.start(&tags, &source(&name), "QUIT")
                        .params(&[reason.describe()]);
                    for channel in view.channels.values_mut() {
                        channel.members.remove(&key);
                    }
                }
                _ => {}
            }
            if key == me {
                view.channels.remove(&fold(&room));
            }
        }
        _ => {}
    }
}

/// When a room's state changed, and who changed it.
fn when_by(frame: &ServerFrame) -> Option<(u64, &str)> {
    match frame {
        ServerFrame::Topic { time, by, .. }
        | ServerFrame::Role { time, by, .. }
        | ServerFrame::Ban { time, by, .. }
        | ServerFrame::Unban { time, by, .. }
        | ServerFrame::Mute { time, by, .. }
        | ServerFrame::Unmute { time, by, .. }
        | ServerFrame::Settings { time, by, .. }
        | ServerFrame::Invite { time, by, .. } => Some((*time, by)),
        _ => None,
    }
}

/// A room's state: its topic, and roles, bans, mutes and settings as channel modes.
fn moderation(view: &mut View, me: &str, caps: u32, frame: ServerFrame, out: &mut Out) {
    let Some((time, by)) = when_by(&frame) else {
        return;
    };
    let (time, by) = (time, by.to_string());
    let (Some(room), Some(seq)) = (frame.room().map(str::to_owned), frame.seq()) else {
        // A ban from the whole server.
        if let ServerFrame::Ban { name, .. } = &frame {
            out.server("NOTICE")
                .params(&[me, &format!("{by} banned {name} from the server")]);
        }
        return;
    };
    let Some(channel) = shown(view, &room, seq) else {
        return;
    };
    let target = channel_name(channel);
    let tags = tags(caps, time, None, None);
    let mask = |name: &str| format!("{}!*@*", nick(name));
    let (modes, arg) = match frame {
        ServerFrame::Topic { text, .. } => {
            channel.topic = Some(text.clone());
            out.start(&tags, &source(&by), "TOPIC")
                .params(&[&target, &text]);
            return;
        }
        ServerFrame::Invite { name, .. } => {
            if fold(&by) == fold(&super::name_of(me)) {
                out.numeric(341, me, &[&nick(&name), &target]);
            }
            return;
        }
        ServerFrame::Role { name, role, .. } => {
            let before = channel.role_of(&name);
            channel.roles.insert(fold(&name), role);
            if let Some(member) = channel.members.get_mut(&fold(&name)) {
                member.1 = role;
            }
            let modes = match (before, role) {
                (_, Role::Owner) => "+q",
                (_, Role::Op) => "+o",
                (Role::Owner, _) => "-q",
                _ => "-o",
            };
            (modes, Some(nick(&name).into_owned()))
        }
        ServerFrame::Ban { name, .. } => {
            channel.bans.push(name.clone());
            ("+b", Some(mask(&name)))
        }
        ServerFrame::Unban { name, .. } => {
            channel.bans.retain(|banned| fold(banned) != fold(&name));
            ("-b", Some(mask(&name)))
        }
        ServerFrame::Mute { name, .. } => {
            channel.mutes.push(name.clone());
            ("+b", Some(format!("m:{}", mask(&name))))
        }
        ServerFrame::Unmute { name, .. } => {
            channel.mutes.retain(|muted| fold(muted) != fold(&name));
            ("-b", Some(format!("m:{}", mask(&name))))
        }
        ServerFrame::Settings { invite_only, .. } => {
            if channel.invite_only == invite_only {
                return;
            }
            channel.invite_only = invite_only;
            (if invite_only { "+i" } else { "-i" }, None)
        }
        _ => return,
    };
    let line = out.start(&tags, &source(&by), "MODE");
    match &arg {
        Some(arg) => line.params(&[&target, modes, arg]),
        None => line.params(&[&target, modes]),
    }
}

/// What is not about a room's events: invitations, the room list, errors, pings, the
/// last word before a close.
fn plain(view: &mut View, me: &str, frame: ServerFrame, out: &mut Out) {
    match frame {
        ServerFrame::Invited { room, by } => {
            out.start("", &source(&by), "INVITE")
                .params(&[me, &channel(&room)]);
        }
        ServerFrame::RoomList { rooms } => {
            out.numeric(321, me, &["Channel", "Users  Name"]);
            let asked = view.listing.take();
            let wanted = |room: &str| {
                asked
                    .as_ref()
                    .is_none_or(|asked| asked.contains(&fold(room)))
            };
            for listed in rooms.into_iter().filter(|listed| wanted(&listed.room)) {
                let count = listed.users.to_string();
                out.numeric(322, me, &[&channel(&listed.room), &count, ""]);
            }
            out.numeric(323, me, &["End of /LIST"]);
        }
        ServerFrame::Error {
            code,
            message,
            room,
            ..
        } => error(view, me, code, &message, room.as_deref(), out),
        ServerFrame::Closing { message, .. } => {
            out.server("ERROR")
                .params(&[&format!("Closing link: {message}")]);
        }
        ServerFrame::Ping { .. } => {
            let server = out.name();
            out.server("PING").params(&[&server]);
        }
        ServerFrame::Pong { token } => {
            let server = out.name();
            out.server("PONG")
                .params(&[&server, token.as_deref().unwrap_or("")]);
        }
        ServerFrame::PasswordChanged => {
            out.server("NOTICE")
                .params(&[me, "Your password was changed"]);
        }
        // Replays and history ends, deleted messages in a replay: nothing IRC shows.
        _ => {}
    }
}

/// A message's later life: deletions and edits as notices, reactions and typing as
/// `TAGMSG` to clients that take tags.
fn life(view: &mut View, me: &str, caps: u32, frame: ServerFrame, out: &mut Out) {
    let me_key = view.me.clone();
    let (room, with) = match &frame {
        ServerFrame::Deleted { room, with, .. }
        | ServerFrame::Edited { room, with, .. }
        | ServerFrame::Reaction { room, with, .. }
        | ServerFrame::Typing { room, with, .. } => (room.clone(), with.clone()),
        _ => return,
    };
    let seq = match &frame {
        ServerFrame::Deleted { seq, .. }
        | ServerFrame::Edited { seq, .. }
        | ServerFrame::Reaction { seq, .. } => Some(*seq),
        _ => None,
    };
    // Where it happened, as IRC names it, and the prefix of its message ids.
    let (target, ids) = match (&room, &with) {
        (Some(room), _) => {
            let Some(channel) = view.channels.get_mut(&fold(room)) else {
                return;
            };
            if let Some(seq) = seq {
                if seq <= channel.shown {
                    return;
                }
                channel.shown = seq;
            }
            (channel_name(channel), room.clone())
        }
        (None, Some(with)) => (String::new(), format!("@{}", fold(with))),
        (None, None) => return,
    };
    let to = |from: &str, with: &Option<String>| -> String {
        match with {
            Some(with) if fold(from) == me_key => nick(with).into_owned(),
            Some(_) => me.to_string(),
            None => target.clone(),
        }
    };
    let tagged = caps & MESSAGE_TAGS != 0;
    match frame {
        ServerFrame::Deleted {
            by,
            target: msg,
            time,
            ..
        } => {
            if fold(&by) == me_key
                && let Some(place) = place(room.as_deref(), with.as_deref())
            {
                view.redacted(&place);
            }
            let msgid = format!("{ids}/{msg}");
            if caps & REDACTION != 0 {
                out.start(&tags(caps, time, None, None), &source(&by), "REDACT")
                    .params(&[&to(&by, &with), &msgid]);
            } else {
                let text = format!("deleted a message ({msgid})");
                let tags = tags(caps, time, None, Some(&msgid));
                privmsg(out, &tags, &by, &to(&by, &with), &text, false, "NOTICE");
            }
        }
        ServerFrame::Edited {
            from,
            target: msg,
            text,
            time,
            ..
        } => {
            let tags = tags(caps, time, None, Some(&format!("{ids}/{msg}")));
            let text = format!("(edited) {text}");
            privmsg(out, &tags, &from, &to(&from, &with), &text, false, "NOTICE");
        }
        ServerFrame::Reaction {
            from,
            target: msg,
            emoji,
            on,
            time,
            ..
        } if tagged => {
            let mut tags = tags(caps, time, None, Some(&format!("{ids}/{msg}")));
            tags.push_str(if on {
                ";+draft/react="
            } else {
                ";+draft/unreact="
            });
            escape(&emoji, &mut tags);
            out.start(&tags, &source(&from), "TAGMSG")
                .params(&[&to(&from, &with)]);
        }
        ServerFrame::Typing { name, .. } if tagged && fold(&name) != me_key => {
            out.start("+typing=active", &source(&name), "TAGMSG")
                .params(&[&to(&name, &with)]);
        }
        _ => {}
    }
}

/// A refused login: what the client can answer (another nick, another password) as its
/// numeric; anything else as `ERROR` (the connection closes).
fn rejected(view: &View, me: &str, code: RejectCode, message: &str, out: &mut Out) {
    match code {
        RejectCode::NameTaken | RejectCode::NameRegistered => {
            out.numeric(433, "*", &[me, message]);
        }
        RejectCode::InvalidName => out.numeric(432, "*", &[me, message]),
        RejectCode::BadPassword | RejectCode::NoAccount if view.sasl => {
            out.numeric(904, me, &[message]);
        }
        RejectCode::BadPassword | RejectCode::NoAccount => {
            out.numeric(464, me, &[message]);
        }
        RejectCode::Banned => {
            out.numeric(465, me, &[message]);
            out.server("ERROR").params(&[message]);
        }
        _ => out.server("ERROR").params(&[message]),
    }
}

/// An `error` as the numeric IRC has for it, or as a notice from the server.
fn error(
    view: &mut View,
    me: &str,
    code: ErrorCode,
    message: &str,
    room: Option<&str>,
    out: &mut Out,
) {
    if let Some(room) = room {
        // A join refused (banned, invite-only, too many rooms, a bad name) is not on its
        // way any more.
        view.joining.remove(&key(room));
        // A deletion refused is the `REDACT` it came from refused.
        let fail = match code {
            ErrorCode::NotPermitted | ErrorCode::AccountRequired | ErrorCode::NotMember => {
                "REDACT_FORBIDDEN"
            }
            ErrorCode::NoSuchMessage => "UNKNOWN_MSGID",
            _ => "",
        };
        if !fail.is_empty()
            && let Some(redact) = view.redacted(&key(room))
        {
            out.server("FAIL")
                .params(&["REDACT", fail, &redact.target, &redact.msgid, message]);
            return;
        }
    }
    // An invalid room is named as the client wrote it.
    let target = room.map(|room| match code {
        ErrorCode::InvalidRoom => room.to_string(),
        _ => channel(room),
    });
    let numeric = match code {
        ErrorCode::NotMember => 442,
        ErrorCode::InvalidRoom => 403,
        ErrorCode::TooManyRooms => 405,
        ErrorCode::NotPermitted => 482,
        ErrorCode::Banned => 474,
        ErrorCode::InviteOnly => 473,
        ErrorCode::Muted => 404,
        _ => 0,
    };
    match target {
        Some(target) if numeric > 0 => out.numeric(numeric, me, &[&target, message]),
        _ => {
            out.server("NOTICE").params(&[me, message]);
        }
    }
}
