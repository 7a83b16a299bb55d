//! What an IRC client sends: its lines cut out of the stream (512 bytes each, with up to
//! 4,096 more of tags), its registration (`CAP`, `NICK`, `USER`, `PASS`, `AUTHENTICATE`)
//! turned into one `hello`, and its commands turned into the protocol's client frames. What
//! IRC asks of the connection itself is answered here, from [`View`](super::View).

use std::sync::Arc;

use base64::Engine as _;
use chat_shared::limits::MAX_HISTORY_LIMIT;
use chat_shared::{ClientFrame, Frame, Name, PROTOCOL_VERSIONS, Password, RejectCode, Role, fold};

use super::label::{Answered, Awaits};
use super::line::{Line, MAX_LINE, MAX_TAGS, Out, strip_formatting};
use super::render::{RELEASE, marker};
use super::time::{parse_time, write_time};
use super::{
    Ask, BATCH, CAPS, HOST, LABELED_RESPONSE, Reference, SASL, Shared, channel, key, name_of, nick,
    place, prefix,
};
use crate::accounts::AccountNames;
use crate::hub::command::{Latest, TargetsReply};
use crate::log::{LogError, Reach, Span};
use crate::queue::SendQueue;
use crate::request::{Decoded, Request};

/// Where the registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Gathering `NICK`, `USER`, `PASS` and capabilities.
    Registering,
    /// The `hello` went to the hub; its answer is awaited.
    LoggingIn,
    /// Logged in.
    Registered,
    /// `QUIT` before registration: the connection ends.
    Quitting,
}

/// Where a SASL exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sasl {
    Idle,
    /// `AUTHENTICATE PLAIN` was answered with `+`; the credentials come next, in pieces
    /// of 400 bytes.
    Awaiting(String),
}

/// The reading side of an IRC connection.
pub struct Reader {
    shared: Arc<Shared>,
    queue: SendQueue,
    /// Bytes of a line not ended yet.
    partial: Vec<u8>,
    /// Whether the rest of a line too long is being dropped.
    skipping: bool,
    stage: Stage,
    nick: Option<String>,
    /// The real name `USER` gave (only `WHOIS` of oneself shows it).
    realname: Option<String>,
    password: Option<Password>,
    /// Between `CAP LS`/`CAP REQ` and `CAP END`: registration waits.
    negotiating: bool,
    sasl: Sasl,
    /// Lines answered here, for flood control.
    answered: usize,
    /// The ids given to labeled posts: a random prefix of this connection's, and the
    /// number of the last one.
    ids: Option<(String, u64)>,
    /// The label of the command being read, for what answers it later by itself.
    label: Option<String>,
    /// The accounts' keys (`WHOIS` says who is logged in to one).
    accounts: Arc<AccountNames>,
}

/// What 417 says of a line over the limit.
const TOO_LONG: &str = "Input line was too long";

impl Reader {
    /// A reader that queues what it answers on `queue`.
    pub fn new(shared: Arc<Shared>, queue: SendQueue, accounts: Arc<AccountNames>) -> Self {
        Self {
            shared,
            queue,
            partial: Vec::new(),
            skipping: false,
            stage: Stage::Registering,
            nick: None,
            realname: None,
            password: None,
            negotiating: false,
            sasl: Sasl::Idle,
            answered: 0,
            ids: None,
            label: None,
            accounts,
        }
    }

    /// The frames in what was read, in order.
    pub fn decode(&mut self, input: &[u8]) -> Vec<Decoded> {
        let mut frames = Vec::new();
        let mut out = Out::new(&self.shared.server);
        let mut rest = input;
        while !rest.is_empty() {
            let Some(end) = memchr::memchr(b'\n', rest) else {
                if !self.skipping {
                    self.partial.extend_from_slice(rest);
                    if self.partial.len() > MAX_LINE + MAX_TAGS {
                        self.partial = Vec::new();
                        self.skipping = true;
                    }
                }
                break;
            };
            let (piece, after) = rest.split_at(end);
            rest = &after[1..];
            if std::mem::take(&mut self.skipping) {
                self.too_long(&mut out);
                continue;
            }
            let mut bytes = std::mem::take(&mut self.partial);
            bytes.extend_from_slice(piece);
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            self.line(&bytes, &mut out, &mut frames);
        }
        self.send(out);
        frames
    }

    /// How many lines were answered here since last asked (flood control counts them).
    pub fn take_answered(&mut self) -> usize {
        std::mem::take(&mut self.answered)
    }

    /// Whether the client said `QUIT` before it was registered.
    pub fn quit(&self) -> bool {
        self.stage == Stage::Quitting
    }

    /// The hub took the login: commands are frames from now on. The nick is the name as
    /// the welcome spells it (an account's, whatever case it was asked in), which the
    /// renderer keeps in the view; until it has, the name asked for.
    pub fn logged_in(&mut self, name: &str) {
        self.stage = Stage::Registered;
        let mut view = self.shared.view();
        if view.me.is_empty() {
            view.nick = Some(nick(name).into_owned());
        }
        self.nick.clone_from(&view.nick);
    }

    /// The hub refused the login: a refusal a client can answer (another nick, another
    /// password) lets it try again; any other ends the connection.
    pub fn refused(&mut self, code: RejectCode) -> bool {
        self.stage = Stage::Registering;
        self.password = None;
        self.sasl = Sasl::Idle;
        match code {
            RejectCode::NameTaken | RejectCode::NameRegistered | RejectCode::InvalidName => {
                self.nick = None;
                true
            }
            RejectCode::BadPassword | RejectCode::NoAccount => true,
            _ => false,
        }
    }

    fn send(&self, out: Out) {
        if !out.is_empty() {
            self.queue.push_unmetered(Frame::raw(out.into_bytes()));
        }
    }

    /// The nick to address numerics to: once registered, the welcome's.
    fn me(&self) -> String {
        let nick = match self.stage {
            Stage::Registered => self.shared.view().nick.clone(),
            _ => self.nick.clone(),
        };
        nick.unwrap_or_else(|| "*".into())
    }

    fn too_long(&mut self, out: &mut Out) {
        self.answered += 1;
        out.numeric(417, &self.me(), &[TOO_LONG]);
    }

    fn line(&mut self, bytes: &[u8], out: &mut Out, frames: &mut Vec<Decoded>) {
        let tags = if bytes.first() == Some(&b'@') {
            memchr::memchr(b' ', bytes).map_or(bytes.len(), |space| space + 1)
        } else {
            0
        };
        if tags > MAX_TAGS || bytes.len() - tags + 2 > MAX_LINE {
            return self.too_long(out);
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.answered += 1;
            out.server("FAIL").params(&[
                "*",
                "INVALID_UTF8",
                "Lines must be UTF-8; this one was dropped",
            ]);
            return;
        };
        let Some(line) = Line::parse(text) else {
            return;
        };
        match self.stage {
            Stage::Registered => self.command(&line, out, frames),
            Stage::Registering | Stage::LoggingIn => self.register(&line, out, frames),
            Stage::Quitting => {}
        }
    }

    /// A line before the welcome.
    fn register(&mut self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        self.answered += 1;
        match line.command.as_str() {
            "CAP" => self.cap(line, out),
            "NICK" => match line.params.first().filter(|nick| !nick.is_empty()) {
                Some(wanted) => match Name::parse(&name_of(wanted)) {
                    Ok(_) => self.nick = Some(wanted.clone()),
                    Err(err) => {
                        out.numeric(432, &self.me(), &[wanted, &err.to_string()]);
                    }
                },
                None => out.numeric(431, &self.me(), &["No nickname given"]),
            },
            "USER" if line.params.len() < 4 || line.param(3).is_empty() => {
                out.numeric(461, &self.me(), &["USER", "Not enough parameters"]);
            }
            "USER" => self.realname = Some(line.param(3).to_string()),
            "PASS" => self.password = line.params.first().map(Password::new),
            "AUTHENTICATE" => self.authenticate(line, out, frames),
            "PING" => {
                out.server("PONG")
                    .params(&[&self.shared.server, line.param(0)]);
            }
            "PONG" => {}
            "QUIT" => self.stage = Stage::Quitting,
            _ => out.numeric(451, &self.me(), &["You have not registered"]),
        }
        if self.stage == Stage::Registering
            && self.realname.is_some()
            && !self.negotiating
            && let Some(wanted) = &self.nick
        {
            let hello = hello(name_of(wanted), self.password.take());
            let mut view = self.shared.view();
            (view.sasl, view.nick) = (false, Some(wanted.clone()));
            drop(view);
            self.stage = Stage::LoggingIn;
            frames.push(Ok(Request::Frame(hello)));
        }
    }

    fn cap(&mut self, line: &Line, out: &mut Out) {
        let me = self.me();
        match line.param(0).to_ascii_uppercase().as_str() {
            "LS" => {
                if self.stage != Stage::Registered {
                    self.negotiating = true;
                }
                let listed: Vec<String> = CAPS
                    .iter()
                    .map(|(name, bit)| {
                        if *bit == SASL && line.param(1) >= "302" {
                            "sasl=PLAIN".to_string()
                        } else {
                            (*name).to_string()
                        }
                    })
                    .collect();
                out.server("CAP").params(&[&me, "LS", &listed.join(" ")]);
            }
            "LIST" => {
                let caps = self.shared.caps();
                let on: Vec<&str> = CAPS
                    .iter()
                    .filter(|(_, bit)| caps & bit != 0)
                    .map(|(name, _)| *name)
                    .collect();
                out.server("CAP").params(&[&me, "LIST", &on.join(" ")]);
            }
            "REQ" => {
                if self.stage != Stage::Registered {
                    self.negotiating = true;
                }
                let asked = line.param(1);
                let mut caps = self.shared.caps();
                for wanted in asked.split_whitespace() {
                    let (off, name) = match wanted.strip_prefix('-') {
                        Some(name) => (true, name),
                        None => (false, wanted),
                    };
                    match CAPS.iter().find(|(known, _)| *known == name) {
                        Some((_, bit)) if off => caps &= !bit,
                        Some((_, bit)) => caps |= bit,
                        None => {
                            // All or nothing (`IRCv3` capability negotiation).
                            out.server("CAP").params(&[&me, "NAK", asked]);
                            return;
                        }
                    }
                }
                self.shared.set_caps(caps);
                out.server("CAP").params(&[&me, "ACK", asked]);
            }
            "END" => {
                self.negotiating = false;
                if self.stage != Stage::Registering {
                    // A login through SASL is under way or done: its welcome waits for
                    // this.
                    out.push_bytes(RELEASE.as_bytes());
                }
            }
            other => out.numeric(410, &me, &[other, "Invalid CAP command"]),
        }
    }

    fn authenticate(&mut self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let me = self.me();
        let param = line.param(0);
        if self.stage != Stage::Registering {
            out.numeric(907, &me, &["You have already authenticated"]);
            return;
        }
        if param == "*" {
            self.sasl = Sasl::Idle;
            out.numeric(906, &me, &["SASL authentication aborted"]);
            return;
        }
        let Sasl::Awaiting(mut gathered) = std::mem::replace(&mut self.sasl, Sasl::Idle) else {
            if param.eq_ignore_ascii_case("PLAIN") {
                self.sasl = Sasl::Awaiting(String::new());
                out.server("AUTHENTICATE").params(&["+"]);
            } else {
                out.numeric(908, &me, &["PLAIN", "are available SASL mechanisms"]);
                out.numeric(904, &me, &["SASL authentication failed"]);
            }
            return;
        };
        if param != "+" {
            gathered.push_str(param);
        }
        if param.len() == 400 && gathered.len() < 4000 {
            self.sasl = Sasl::Awaiting(gathered);
            return;
        }
        let plain = base64::engine::general_purpose::STANDARD
            .decode(gathered.as_bytes())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some((account, password)) = plain.as_deref().and_then(|plain| {
            let mut parts = plain.split('\0');
            let (_authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
            Some((authcid.to_string(), password.to_string()))
        }) else {
            out.numeric(904, &me, &["SASL authentication failed: not PLAIN"]);
            return;
        };
        let mut view = self.shared.view();
        (view.sasl, view.nick) = (true, self.nick.clone());
        drop(view);
        self.stage = Stage::LoggingIn;
        frames.push(Ok(Request::Frame(hello(
            name_of(&account),
            Some(Password::new(password)),
        ))));
    }

    /// A line from a registered client; with a `label` (and `labeled-response`), its
    /// answers are labeled: at once if they are the reader's own, else once the hub's
    /// have all come (the renderer sees to those).
    fn command(&mut self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let caps = self.shared.caps();
        let label = line
            .tag("label")
            .filter(|label| !label.is_empty() && caps & LABELED_RESPONSE != 0);
        let Some(label) = label else {
            return self.dispatch(line, out, frames);
        };
        let before = frames.len();
        let mut own = Out::new(&self.shared.server);
        self.label = Some(label.to_string());
        self.dispatch(line, &mut own, frames);
        if self.label.take().is_none() {
            // Taken by what answers the command itself, later (`CHATHISTORY TARGETS`).
            return;
        }
        let awaits: Vec<Awaits> = frames[before..]
            .iter_mut()
            .filter_map(|request| match request.as_mut().ok()? {
                Request::Frame(frame) => {
                    if let ClientFrame::Say { id: id @ None, .. } = frame {
                        *id = self.post_id();
                    }
                    Awaits::of(frame)
                }
                Request::HistoryAt { room, with, .. } => {
                    place(room.as_deref(), with.as_deref()).map(Awaits::History)
                }
                Request::Targets { .. } => None,
            })
            .collect();
        if awaits.is_empty() {
            let batch = || (caps & BATCH != 0).then(|| self.shared.view().batch());
            Answered::now(label.to_string(), own.into_string()).write(batch, out);
        } else {
            let mut view = self.shared.view();
            view.labels
                .wait(label.to_string(), awaits, own.into_string());
        }
    }

    /// An id for a labeled post, by which its echo (or error) is known; none if there is
    /// no randomness to make one (the post then goes unlabeled).
    fn post_id(&mut self) -> Option<String> {
        if self.ids.is_none() {
            self.ids = Some((crate::wire::random_hex(8).ok()?, 0));
        }
        let (prefix, n) = self.ids.as_mut()?;
        *n += 1;
        Some(format!("irc-{prefix}-{n}"))
    }

    /// What a command becomes: frames for the hub, or lines answered here.
    fn dispatch(&mut self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let before = frames.len();
        match line.command.as_str() {
            "PRIVMSG" | "NOTICE" => self.privmsg(line, out, frames),
            "TAGMSG" => tagmsg(line, frames),
            "JOIN" => {
                for room in line.param(0).split(',').filter(|room| !room.is_empty()) {
                    self.shared.view().joining(key(room));
                    frames.push(Ok(Request::Frame(ClientFrame::Join {
                        room: room_of(room),
                        since: None,
                    })));
                }
            }
            "PART" => {
                for room in line.param(0).split(',').filter(|room| !room.is_empty()) {
                    frames.push(Ok(Request::Frame(ClientFrame::Part {
                        room: room_of(room),
                    })));
                }
            }
            "TOPIC" if line.params.len() >= 2 => {
                frames.push(Ok(Request::Frame(ClientFrame::Topic {
                    room: room_of(line.param(0)),
                    text: strip_formatting(line.param(1)),
                })));
            }
            "TOPIC" => self.topic(line.param(0), out),
            "NAMES" => self.names_of(line.params.first().map(String::as_str), out),
            "LIST" => {
                // `LIST #a,#b` lists those only; the renderer filters the room list.
                self.shared.view().listing = line
                    .params
                    .first()
                    .map(|rooms| rooms.split(',').map(key).collect());
                frames.push(Ok(Request::Frame(ClientFrame::Rooms)));
            }
            "TIME" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_millis() as u64);
                let mut time = String::new();
                super::time::write_time(now, &mut time);
                out.numeric(391, &self.me(), &[&self.shared.server, &time]);
            }
            "REDACT" => self.redact(line, out, frames),
            "MARKREAD" => self.markread(line, out, frames),
            "KICK" => frames.push(Ok(Request::Frame(ClientFrame::Remove {
                room: room_of(line.param(0)),
                name: name_of(line.param(1)),
                message: line.params.get(2).map(|reason| strip_formatting(reason)),
            }))),
            "INVITE" => frames.push(Ok(Request::Frame(ClientFrame::Invite {
                room: room_of(line.param(1)),
                name: name_of(line.param(0)),
            }))),
            "MODE" => self.mode(line, out, frames),
            "CHATHISTORY" => self.chathistory(line, out, frames),
            "WHO" => self.who(line.param(0), out),
            "WHOIS" => self.whois(line.params.last().map_or("", String::as_str), out),
            "PING" if line.params.is_empty() => {
                out.numeric(461, &self.me(), &["PING", "Not enough parameters"]);
            }
            "PING" => frames.push(Ok(Request::Frame(ClientFrame::Ping {
                token: Some(line.param(0).to_string()),
            }))),
            "PONG" => frames.push(Ok(Request::Frame(ClientFrame::Pong { token: None }))),
            "QUIT" => frames.push(Ok(Request::Frame(ClientFrame::Bye))),
            "CAP" => self.cap(line, out),
            "NICK" => {
                let me = self.me();
                if fold(&name_of(line.param(0))) != fold(&name_of(&me)) {
                    out.numeric(
                        447,
                        &me,
                        &["Your nick is the name you logged in with; reconnect to change it"],
                    );
                }
            }
            "USER" | "PASS" | "AUTHENTICATE" => {
                out.numeric(462, &self.me(), &["You may not reregister"]);
            }
            "MOTD" => out.numeric(422, &self.me(), &["MOTD File is missing"]),
            other => {
                out.numeric(421, &self.me(), &[other, "Unknown command"]);
            }
        }
        if frames.len() == before {
            self.answered += 1;
        }
    }

    fn privmsg(&mut self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let notice = line.command == "NOTICE";
        let (targets, raw) = (line.param(0), line.param(1));
        if line.params.len() < 2 || raw.is_empty() {
            if !notice {
                out.numeric(412, &self.me(), &["No text to send"]);
            }
            return;
        }
        let (text, me) = match raw.strip_prefix('\x01') {
            Some(ctcp) => {
                let ctcp = ctcp.strip_suffix('\x01').unwrap_or(ctcp);
                match ctcp.strip_prefix("ACTION") {
                    Some(action) => (action.trim_start().to_string(), true),
                    // Other CTCP requests (VERSION, PING, …) have no place in a chat of
                    // recorded messages.
                    None => return,
                }
            }
            None => (raw.to_string(), false),
        };
        let text = strip_formatting(&text);
        let reply_to = line
            .tag("+draft/reply")
            .and_then(|msgid| msgid.rsplit_once('/'))
            .and_then(|(_, seq)| seq.parse().ok());
        for target in targets.split(',').filter(|target| !target.is_empty()) {
            let (room, to) = target_of(target);
            if room.is_some() && !self.shared.view().is_in(&key(target)) {
                // IRC answers this at once; a notice is never answered.
                if !notice {
                    out.numeric(
                        404,
                        &self.me(),
                        &[target, "Cannot send to channel: join it first"],
                    );
                }
                continue;
            }
            frames.push(Ok(Request::Frame(ClientFrame::Say {
                room,
                to,
                text: text.clone(),
                id: None,
                me,
                reply_to,
            })));
        }
    }

    /// `CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN target ref [ref] limit`, as a
    /// `history` (references are message ids, `room/seq`, or times, which the hub looks
    /// up); `CHATHISTORY TARGETS` is answered here, from the log.
    fn chathistory(&mut self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let sub = line.param(0).to_ascii_uppercase();
        let target = line.param(1);
        let fail = |out: &mut Out, code: &str, text: &str| {
            out.server("FAIL")
                .params(&["CHATHISTORY", code, &sub, text]);
        };
        if sub == "TARGETS" {
            return self.targets(line, out, frames);
        }
        let wanted = match sub.as_str() {
            "LATEST" | "BEFORE" | "AFTER" | "AROUND" => 4,
            "BETWEEN" => 5,
            _ => return fail(out, "INVALID_PARAMS", "unknown subcommand"),
        };
        if line.params.len() < wanted {
            return fail(out, "INVALID_PARAMS", "not enough parameters");
        }
        let limit = match line.param(wanted - 1).parse::<u32>() {
            Ok(limit) if limit > 0 => limit.min(MAX_HISTORY_LIMIT),
            _ => return fail(out, "INVALID_PARAMS", "the limit is a number above 0"),
        };
        let refs: Result<Vec<Option<Reference>>, &str> =
            (2..wanted - 1).map(|i| reference(line.param(i))).collect();
        let refs = match refs {
            Ok(refs) => refs,
            Err(why) => return fail(out, "INVALID_PARAMS", why),
        };
        let (room, with) = target_of(target);
        let key = place(room.as_deref(), with.as_deref()).unwrap_or_default();
        let at = refs.first().copied().flatten();
        let mut ask = Ask {
            key,
            after: None,
            before: None,
        };
        let back = u64::from(limit / 2);
        let reach = match (sub.as_str(), at) {
            // The newest page, of what is after `at` if given.
            ("LATEST", at) => {
                ask.after = at;
                None
            }
            ("BEFORE", Some(at)) => Some(at.before()),
            ("AFTER", Some(at)) => Some(at.after()),
            ("AROUND", Some(Reference::Seq(at))) => {
                Some(Reach::Seqs(Span::After(at.saturating_sub(back + 1))))
            }
            ("AROUND", Some(Reference::Time(time))) => Some(Reach::AroundTime { time, back }),
            // From the first reference towards the second: forwards the oldest page after
            // it, backwards the newest page before it.
            ("BETWEEN", Some(at)) => match (at, refs.get(1).copied().flatten()) {
                (_, None) => return fail(out, "INVALID_PARAMS", "BETWEEN takes two references"),
                (Reference::Seq(_), Some(Reference::Time(_)))
                | (Reference::Time(_), Some(Reference::Seq(_))) => {
                    return fail(
                        out,
                        "INVALID_PARAMS",
                        "BETWEEN takes two msgids or two timestamps",
                    );
                }
                (_, Some(end)) if at <= end => {
                    ask.before = Some(end);
                    Some(at.after())
                }
                (_, Some(end)) => {
                    ask.after = Some(end);
                    Some(at.before())
                }
            },
            _ => {
                return fail(
                    out,
                    "INVALID_PARAMS",
                    "refer to a message by msgid or timestamp",
                );
            }
        };
        self.shared.view().ask(ask);
        frames.push(Ok(history(room, with, reach, limit)));
    }

    /// `CHATHISTORY TARGETS timestamp=… timestamp=… limit`: the channels one is in and
    /// the accounts one has direct messages with whose newest message is between the two
    /// times (in either order, both left out), the `limit` oldest of them, oldest first,
    /// each with that message's time: the hub reads them, and its reply is written here in
    /// a `draft/chathistory-targets` batch (labeled, if the command was).
    fn targets(&mut self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let fail = |out: &mut Out, text: &str| {
            out.server("FAIL")
                .params(&["CHATHISTORY", "INVALID_PARAMS", "TARGETS", text]);
        };
        let (Ok(Some(Reference::Time(a))), Ok(Some(Reference::Time(b)))) =
            (reference(line.param(1)), reference(line.param(2)))
        else {
            return fail(out, "TARGETS takes two timestamps");
        };
        let limit = match line.param(3).parse::<usize>() {
            Ok(limit) if limit > 0 => limit.min(MAX_HISTORY_LIMIT as usize),
            _ => return fail(out, "the limit is a number above 0"),
        };
        let (shared, queue, label) = (self.shared.clone(), self.queue.clone(), self.label.take());
        let reply = move |found: Result<Vec<Latest>, LogError>| {
            let caps = shared.caps();
            let batch = || (caps & BATCH != 0).then(|| shared.view().batch());
            let mut lines = Out::new(&shared.server);
            match found {
                Ok(found) => {
                    let id = batch();
                    if let Some(id) = &id {
                        lines
                            .server("BATCH")
                            .params(&[&format!("+{id}"), "draft/chathistory-targets"]);
                    }
                    let tags = id
                        .as_ref()
                        .map(|id| format!("batch={id}"))
                        .unwrap_or_default();
                    for place in found {
                        let target = match (place.room, place.with) {
                            (Some(room), _) => channel(&room),
                            (None, with) => nick(&with.unwrap_or_default()).into_owned(),
                        };
                        let mut time = String::new();
                        write_time(place.time, &mut time);
                        lines
                            .server_tagged(&tags, "CHATHISTORY")
                            .params(&["TARGETS", &target, &time]);
                    }
                    if let Some(id) = &id {
                        lines.server("BATCH").params(&[&format!("-{id}")]);
                    }
                }
                Err(err) => {
                    tracing::error!(%err, "cannot read the targets of CHATHISTORY");
                    lines.server("FAIL").params(&[
                        "CHATHISTORY",
                        "MESSAGE_ERROR",
                        "TARGETS",
                        "the history cannot be read now; try again later",
                    ]);
                }
            }
            let lines = match label {
                Some(label) => {
                    let mut labeled = Out::new(&shared.server);
                    Answered::now(label, lines.into_string()).write(batch, &mut labeled);
                    labeled
                }
                None => lines,
            };
            queue.push_unmetered(Frame::raw(lines.into_bytes()));
        };
        frames.push(Ok(Request::Targets {
            from: a.min(b),
            to: a.max(b),
            limit,
            reply: TargetsReply(Box::new(reply)),
        }));
    }

    /// `MARKREAD target [timestamp=…]` of a channel or (for an account) a direct
    /// conversation: moves the read marker forward to that time (never back), and to the
    /// newest message shown at or before it (a `read`), and answers where it stands.
    /// Where no marker is kept (a channel one is not in, a guest's conversation) a get
    /// answers `*` and a set fails.
    fn markread(&self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let target = line.param(0);
        let fail = |out: &mut Out, code: &str, text: &str| {
            out.server("FAIL").params(&["MARKREAD", code, target, text]);
        };
        if target.is_empty() {
            return out.server("FAIL").params(&[
                "MARKREAD",
                "NEED_MORE_PARAMS",
                "Missing parameters",
            ]);
        }
        let time = match line.params.get(1) {
            None => None,
            Some(stamp) => match stamp.strip_prefix("timestamp=").and_then(parse_time) {
                Some(time) => Some(time),
                None => {
                    return fail(out, "INVALID_PARAMS", "timestamp=YYYY-MM-DDThh:mm:ss.sssZ");
                }
            },
        };
        let mut view = self.shared.view();
        let account = self.accounts.contains(&view.me);
        let (mark, room, with) = if target.starts_with('#') {
            match view.channels.get_mut(&key(target)) {
                Some(channel) => (&mut channel.marker, Some(channel.name.clone()), None),
                None => return unmarked(target, time, out),
            }
        } else if account {
            let with = name_of(target);
            (view.direct_marker(&fold(&with)), None, Some(with))
        } else {
            return unmarked(target, time, out);
        };
        if let Some(seq) = time.and_then(|time| mark.mark(time)) {
            frames.push(Ok(Request::Frame(ClientFrame::Read { room, with, seq })));
        }
        out.server("MARKREAD")
            .params(&[target, &marker(mark.read.1)]);
    }

    /// `REDACT target msgid`: a `delete`; remembered, so that a refusal can name it.
    fn redact(&self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let Some(Ok(seq)) = line
            .param(1)
            .rsplit_once('/')
            .map(|(_, seq)| seq.parse::<u64>())
        else {
            return unknown_msgid(line, out);
        };
        let (room, with) = target_of(line.param(0));
        let key = place(room.as_deref(), with.as_deref()).unwrap_or_default();
        self.shared.view().redacting(super::Redacting {
            key,
            target: line.param(0).to_string(),
            msgid: line.param(1).to_string(),
        });
        frames.push(Ok(Request::Frame(ClientFrame::Delete { room, with, seq })));
    }

    fn topic(&self, target: &str, out: &mut Out) {
        let me = self.me();
        let view = self.shared.view();
        match view.channels.get(&key(target)) {
            Some(channel) => match &channel.topic {
                Some(topic) if !topic.is_empty() => {
                    out.numeric(332, &me, &[target, topic]);
                }
                _ => out.numeric(331, &me, &[target, "No topic is set"]),
            },
            None => out.numeric(442, &me, &[target, "You're not on that channel"]),
        }
    }

    /// `NAMES #a,#b`, or of every channel the connection is in.
    fn names_of(&self, targets: Option<&str>, out: &mut Out) {
        let Some(targets) = targets else {
            let me = self.me();
            let full = self.shared.caps() & super::USERHOST_IN_NAMES != 0;
            for channel in self.shared.view().channels.values() {
                super::render::names(&me, channel, full, out);
            }
            out.numeric(366, &me, &["*", "End of /NAMES list"]);
            return;
        };
        for room in targets.split(',').filter(|room| !room.is_empty()) {
            self.names(room, out);
        }
    }

    fn names(&self, target: &str, out: &mut Out) {
        let me = self.me();
        if let Some(channel) = self.shared.view().channels.get(&key(target)) {
            let full = self.shared.caps() & super::USERHOST_IN_NAMES != 0;
            super::render::names(&me, channel, full, out);
            return;
        }
        out.numeric(366, &me, &[target, "End of /NAMES list"]);
    }

    fn who(&self, target: &str, out: &mut Out) {
        let me = self.me();
        let view = self.shared.view();
        if let Some(channel) = view.channels.get(&key(target)) {
            for (name, role) in channel.members.values() {
                let flags = format!("H{}", prefix(*role));
                out.numeric(
                    352,
                    &me,
                    &[
                        target,
                        "~u",
                        HOST,
                        &self.shared.server,
                        &nick(name),
                        &flags,
                        &format!("0 {name}"),
                    ],
                );
            }
        } else if let Some((name, _)) = find_member(&view, target) {
            out.numeric(
                352,
                &me,
                &[
                    "*",
                    "~u",
                    HOST,
                    &self.shared.server,
                    &nick(&name),
                    "H",
                    &format!("0 {name}"),
                ],
            );
        }
        out.numeric(315, &me, &[target, "End of /WHO list"]);
    }

    fn whois(&self, target: &str, out: &mut Out) {
        let me = self.me();
        let view = self.shared.view();
        let myself = fold(&name_of(target)) == view.me;
        let found =
            find_member(&view, target).or_else(|| myself.then(|| (name_of(&me), Vec::new())));
        match found {
            Some((name, channels)) => {
                let nick = nick(&name);
                let real = match &self.realname {
                    Some(real) if myself => real.as_str(),
                    _ => &name,
                };
                out.numeric(311, &me, &[&nick, "~u", HOST, "*", real]);
                out.numeric(319, &me, &[&nick, &channels.join(" ")]);
                out.numeric(312, &me, &[&nick, &self.shared.server, "chat"]);
                if self.accounts.contains(&fold(&name)) {
                    out.numeric(330, &me, &[&nick, &nick, "is logged in as"]);
                }
            }
            None => out.numeric(401, &me, &[target, "No such nick/channel"]),
        }
        out.numeric(318, &me, &[target, "End of /WHOIS list"]);
    }

    /// `MODE`: the channel's modes, its ban list, or changes (`+i`, `+o`, `+q`, `+b`, and
    /// `+b m:nick` for a mute).
    fn mode(&mut self, line: &Line, out: &mut Out, frames: &mut Vec<Decoded>) {
        let me = self.me();
        let target = line.param(0);
        if !target.starts_with('#') {
            // A user's own modes: there are none to set.
            out.numeric(221, &me, &["+"]);
            return;
        }
        let room = room_of(target);
        let Some(changes) = line.params.get(1) else {
            let invite_only = self
                .shared
                .view()
                .channels
                .get(&key(target))
                .is_some_and(|channel| channel.invite_only);
            let modes = if invite_only { "+i" } else { "+" };
            out.numeric(324, &me, &[target, modes]);
            return;
        };
        let mut args = line.params[2..].iter();
        let mut on = true;
        for mode in changes.chars() {
            match mode {
                '+' => on = true,
                '-' => on = false,
                'i' => frames.push(Ok(Request::Frame(ClientFrame::Settings {
                    room: room.clone(),
                    invite_only: on,
                    retain_days: None,
                }))),
                'o' | 'q' => {
                    let Some(who) = args.next() else { continue };
                    let role = match (on, mode) {
                        (true, 'q') => Role::Owner,
                        (true, _) => Role::Op,
                        (false, _) => Role::Member,
                    };
                    frames.push(Ok(Request::Frame(ClientFrame::Role {
                        room: room.clone(),
                        name: name_of(who),
                        role,
                    })));
                }
                'b' => match args.next() {
                    None => self.ban_list(target, out),
                    Some(mask) => frames.push(Ok(Request::Frame(ban(room.clone(), mask, on)))),
                },
                other => {
                    out.numeric(
                        472,
                        &me,
                        &[&other.to_string(), "is not a mode of this server"],
                    );
                }
            }
        }
    }

    fn ban_list(&self, target: &str, out: &mut Out) {
        let me = self.me();
        if let Some(channel) = self.shared.view().channels.get(&key(target)) {
            let listed = channel
                .bans
                .iter()
                .map(|name| format!("{}!*@*", nick(name)))
                .chain(
                    channel
                        .mutes
                        .iter()
                        .map(|name| format!("m:{}!*@*", nick(name))),
                );
            for mask in listed {
                out.numeric(367, &me, &[target, &mask]);
            }
        }
        out.numeric(368, &me, &[target, "End of channel ban list"]);
    }
}

/// The `hello` an IRC registration comes to.
fn hello(name: String, password: Option<Password>) -> ClientFrame {
    ClientFrame::Hello {
        protocol: *PROTOCOL_VERSIONS.end(),
        name,
        since: None,
        epoch: None,
        token: None,
        password,
        register: false,
    }
}

/// The room a channel names: `#room` as it stands (the room name rules drop the `#`).
fn room_of(channel: &str) -> String {
    channel.to_string()
}

/// A `history` of a room or a conversation: a frame where it reaches seqs (or the newest),
/// else a request the hub looks its times up for.
fn history(
    room: Option<String>,
    with: Option<String>,
    reach: Option<Reach>,
    limit: u32,
) -> Request {
    let (before, after) = match reach {
        None => (None, None),
        Some(Reach::Seqs(Span::Before(seq))) => (Some(seq), None),
        Some(Reach::Seqs(Span::After(seq))) => (None, Some(seq)),
        Some(reach) => {
            return Request::HistoryAt {
                room,
                with,
                reach,
                limit,
            };
        }
    };
    Request::Frame(ClientFrame::History {
        room,
        with,
        before,
        after,
        limit: Some(limit),
    })
}

/// A `CHATHISTORY` reference: `*` (none), `msgid=room/seq`, or `timestamp=…`.
fn reference(text: &str) -> Result<Option<Reference>, &'static str> {
    if text == "*" {
        return Ok(None);
    }
    if let Some(stamp) = text.strip_prefix("timestamp=") {
        return parse_time(stamp)
            .map(|time| Some(Reference::Time(time)))
            .ok_or("timestamp=YYYY-MM-DDThh:mm:ss.sssZ");
    }
    text.strip_prefix("msgid=")
        .and_then(|msgid| msgid.rsplit_once('/'))
        .and_then(|(_, seq)| seq.parse().ok())
        .map(|seq| Some(Reference::Seq(seq)))
        .ok_or("not a message id of this server")
}

/// Where a target is: a room (`#room`), or a conversation with an account (a nick).
fn target_of(target: &str) -> (Option<String>, Option<String>) {
    if target.starts_with('#') {
        (Some(room_of(target)), None)
    } else {
        (None, Some(name_of(target)))
    }
}

/// A ban or mute from a mask: `nick`, `nick!*@*`, or `m:nick` for a mute.
fn ban(room: String, mask: &str, on: bool) -> ClientFrame {
    let (mute, mask) = match mask.strip_prefix("m:") {
        Some(rest) => (true, rest),
        None => (false, mask),
    };
    let name = name_of(mask.split('!').next().unwrap_or(mask));
    match (mute, on) {
        (true, true) => ClientFrame::Mute {
            room,
            name,
            minutes: None,
        },
        (true, false) => ClientFrame::Unmute { room, name },
        (false, true) => ClientFrame::Ban {
            room: Some(room),
            name,
            message: None,
            minutes: None,
            address: false,
        },
        (false, false) => ClientFrame::Unban {
            room: Some(room),
            name,
        },
    }
}

/// `FAIL REDACT UNKNOWN_MSGID`: what `REDACT` names is no message id of ours.
/// `MARKREAD` of a target whose marker is not kept here (a channel one is not in, a
/// guest's conversation): a get answers `*`, a set fails.
fn unmarked(target: &str, time: Option<u64>, out: &mut Out) {
    if time.is_some() {
        out.server("FAIL").params(&[
            "MARKREAD",
            "INVALID_PARAMS",
            target,
            "read markers are kept for the channels one is in and an account's conversations",
        ]);
    } else {
        out.server("MARKREAD").params(&[target, "*"]);
    }
}

fn unknown_msgid(line: &Line, out: &mut Out) {
    out.server("FAIL").params(&[
        "REDACT",
        "UNKNOWN_MSGID",
        line.param(0),
        line.param(1),
        "not a message id of this server",
    ]);
}

/// `TAGMSG`: typing (`+typing=active`) and reactions (`+draft/react` on `+draft/reply`).
fn tagmsg(line: &Line, frames: &mut Vec<Decoded>) {
    let (room, to) = target_of(line.param(0));
    if line.tag("+typing") == Some("active") {
        frames.push(Ok(Request::Frame(ClientFrame::Typing {
            room: room.clone(),
            to: to.clone(),
        })));
    }
    let target_seq = line
        .tag("+draft/reply")
        .and_then(|msgid| msgid.rsplit_once('/'))
        .and_then(|(_, seq)| seq.parse().ok());
    for (tag, on) in [("+draft/react", true), ("+draft/unreact", false)] {
        if let (Some(emoji), Some(seq)) = (line.tag(tag), target_seq) {
            frames.push(Ok(Request::Frame(ClientFrame::React {
                room: room.clone(),
                with: to.clone(),
                seq,
                emoji: emoji.to_string(),
                on,
            })));
        }
    }
}

/// A member of one of the connection's channels named `target`: their name and channels.
fn find_member(view: &super::View, target: &str) -> Option<(String, Vec<String>)> {
    let wanted = fold(&name_of(target));
    let mut found = None;
    let mut channels = Vec::new();
    for channel in view.channels.values() {
        if let Some((name, role)) = channel.members.get(&wanted) {
            found = Some(name.clone());
            channels.push(format!(
                "{}{}",
                prefix(*role),
                super::channel(&channel.name)
            ));
        }
    }
    found.map(|name| (name, channels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{QueueLimits, QueueReceiver, send_queue};

    fn reader() -> (Reader, QueueReceiver) {
        let (queue, receiver) = send_queue(QueueLimits {
            frames: 100,
            bytes: 1 << 20,
        });
        let shared = Arc::new(Shared::new("chat".into()));
        (Reader::new(shared, queue, Arc::default()), receiver)
    }

    /// The lines the reader answered itself.
    fn answered(receiver: &QueueReceiver) -> String {
        receiver.queued().concat()
    }

    #[test]
    fn a_registration_waits_for_cap_end_and_comes_to_one_hello() {
        let (mut reader, receiver) = reader();
        let frames = reader.decode(b"CAP LS 302\r\nNICK ann\r\nUSER u 0 * :Ann\r\n");
        assert!(frames.is_empty(), "negotiating: no hello yet");
        let frames =
            reader.decode(b"CAP REQ :server-time nonsense\r\nCAP REQ :server-time\r\nCAP END\r\n");
        assert!(
            matches!(&frames[..], [Ok(Request::Frame(ClientFrame::Hello { name, password: None, .. }))] if name == "ann"),
            "{frames:?}"
        );
        let lines = answered(&receiver);
        assert!(
            lines.contains("CAP ann NAK :server-time nonsense"),
            "all or nothing: {lines}"
        );
        assert!(lines.contains("CAP ann ACK server-time"), "{lines}");
        assert_eq!(reader.shared.caps(), super::super::SERVER_TIME);
    }

    #[test]
    fn a_refused_nick_lets_the_client_try_another() {
        let (mut reader, _receiver) = reader();
        let frames = reader.decode(b"PASS secret-words\r\nNICK ann\r\nUSER u 0 * :Ann\r\n");
        assert!(matches!(
            &frames[..],
            [Ok(Request::Frame(ClientFrame::Hello {
                password: Some(_),
                ..
            }))]
        ));
        assert!(reader.refused(RejectCode::NameTaken), "433 is answerable");
        let frames = reader.decode(b"NICK ann2\r\n");
        assert!(
            matches!(&frames[..], [Ok(Request::Frame(ClientFrame::Hello { name, password: None, .. }))] if name == "ann2"),
            "{frames:?}"
        );
        assert!(
            !reader.refused(RejectCode::Banned),
            "a ban ends the connection"
        );
    }

    #[test]
    fn commands_become_frames() {
        let (mut reader, _receiver) = reader();
        reader.decode(b"NICK ann\r\nUSER u 0 * :Ann\r\n");
        reader.logged_in("ann");
        let frames = reader.decode(
            b"JOIN #a,#b\r\nPRIVMSG #a :\x02hi\x02 there\r\nMODE #a +io-b bob m:carol!*@*\r\nKICK #a bob :bye\r\n",
        );
        let frames: Vec<ClientFrame> = frames
            .into_iter()
            .map(|f| match f.expect("a frame") {
                Request::Frame(frame) => frame,
                other => panic!("not a frame: {other:?}"),
            })
            .collect();
        assert!(matches!(&frames[0], ClientFrame::Join { room, .. } if room == "#a"));
        assert!(matches!(&frames[1], ClientFrame::Join { room, .. } if room == "#b"));
        assert!(
            matches!(&frames[2], ClientFrame::Say { text, room: Some(_), .. } if text == "hi there")
        );
        assert!(matches!(
            &frames[3],
            ClientFrame::Settings {
                invite_only: true,
                ..
            }
        ));
        assert!(
            matches!(&frames[4], ClientFrame::Role { name, role: Role::Op, .. } if name == "bob")
        );
        assert!(matches!(&frames[5], ClientFrame::Unmute { name, .. } if name == "carol"));
        assert!(matches!(&frames[6], ClientFrame::Remove { message: Some(m), .. } if m == "bye"));
    }

    #[test]
    fn a_line_too_long_is_refused_and_the_next_one_read() {
        let (mut reader, receiver) = reader();
        let mut input = b"NICK ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 600));
        input.extend(b"\r\nNICK ann\r\n");
        // In pieces, as a socket gives them.
        for piece in input.chunks(100) {
            reader.decode(piece);
        }
        assert!(answered(&receiver).contains(" 417 * :Input line was too long"));
        assert_eq!(reader.nick.as_deref(), Some("ann"));
        let mut endless = vec![b'y'; MAX_LINE + MAX_TAGS + 10];
        endless.extend(b"\r\n");
        reader.decode(&endless);
        assert!(
            reader.partial.is_empty(),
            "nothing kept of a line past the limit"
        );
    }
}
