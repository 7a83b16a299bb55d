//! One connection: login, the read loop with its timeouts and flood control, and the writer
//! that drains the connection's send queue. Reader and writer run in one task and share the
//! socket by reference, so a connection costs one task.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use chat_shared::limits::{
    self, DEFAULT_HISTORY_LIMIT, MAX_BAD_FRAMES, MAX_HISTORY_LIMIT, MAX_ID, WELCOME_CONVERSATIONS,
};
use chat_shared::search::Query;
use chat_shared::{
    ClientFrame, CloseCode, DecodeError, Decoder, ErrorCode, Frame, LeaveReason, Name,
    PROTOCOL_VERSIONS, Password, RejectCode, RoomName, ServerFrame, check_emoji, check_text,
};
use futures_lite::future;
use smol::Timer;

use crate::context::Context;
use crate::hub::command::{Asked, Auth, Command, Life, Login, Place, Said, Step};
use crate::irc::reader::Reader;
use crate::irc::render::Renderer;
use crate::limits::{FloodMeter, TokenBucket};
use crate::log::{Reach, Remembered, Span};
use crate::queue::{Batch, QueueLimits, SendQueue, send_queue};
use crate::registry::ConnId;
use crate::request::{Decoded, Request};
use crate::transport::Transport;
use crate::wire::{closing, rejected};

/// What a connection speaks, and the state of reading it.
enum Input {
    /// The protocol's NDJSON frames.
    Ndjson(Decoder<ClientFrame>),
    /// IRC lines (the IRC port), turned into frames by the reader.
    Irc(Box<Reader>),
}

impl Input {
    /// Decodes what was read; NDJSON stops at a frame that is too long (the connection
    /// closes).
    fn decode(&mut self, mut input: &[u8]) -> Vec<Decoded> {
        match self {
            Self::Ndjson(decoder) => {
                let mut items = Vec::new();
                while let Some(item) = decoder.next_frame(&mut input) {
                    let too_long = matches!(item, Err(DecodeError::TooLong { .. }));
                    items.push(item.map(Request::Frame));
                    if too_long {
                        break;
                    }
                }
                items
            }
            Self::Irc(reader) => reader.decode(input),
        }
    }

    fn irc(&mut self) -> Option<&mut Reader> {
        match self {
            Self::Ndjson(_) => None,
            Self::Irc(reader) => Some(reader),
        }
    }
}

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The protocol's NDJSON.
    Ndjson,
    /// IRC.
    Irc,
}

/// Whether a password may come over this connection: encrypted, or from this machine.
fn password_allowed(secure: bool, peer: IpAddr) -> bool {
    secure || peer.is_loopback()
}

/// How a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The peer went away.
    Lost,
    /// The peer said `bye`.
    Quit,
    /// The login was refused; the rejection is queued.
    Rejected,
    /// The server closes the connection with this code.
    Close(CloseCode),
}

/// What woke the reader.
enum Wake {
    Readable(io::Result<Option<Vec<Decoded>>>),
    Deadline,
    Shutdown,
}

/// Runs a connection to its end. Every log line about it is in the span `conn`, with its
/// id and, once it is logged in, its `user` name.
pub(crate) async fn run(
    context: Arc<Context>,
    stream: Transport,
    conn: ConnId,
    peer: IpAddr,
    dialect: Dialect,
) {
    let span = tracing::info_span!("conn", id = conn, user = tracing::field::Empty);
    tracing::Instrument::instrument(serve(context, stream, conn, peer, dialect), span).await;
}

async fn serve(
    context: Arc<Context>,
    stream: Transport,
    conn: ConnId,
    peer: IpAddr,
    dialect: Dialect,
) {
    let config = &context.config;
    tracing::info!(%peer, tls = stream.is_tls(), ?dialect, "connected");
    let _open = crate::metrics::OpenConnection::new(stream.is_tls());
    let (queue, receiver) = send_queue(QueueLimits {
        frames: config.send_queue,
        bytes: config.send_queue_bytes,
    });
    let (input, mut renderer) = match dialect {
        Dialect::Ndjson => (Input::Ndjson(Decoder::new(config.max_frame)), None),
        Dialect::Irc => {
            let shared = Arc::new(crate::irc::Shared::new(config.irc_name.as_str().into()));
            let reader = Reader::new(shared.clone(), queue.clone(), context.accounts.clone());
            let renderer = Renderer::new(
                shared,
                context.hub.clone(),
                conn,
                config.max_text,
                context.accounts.clone(),
            );
            (Input::Irc(Box::new(reader)), Some(renderer))
        }
    };
    let mut session = Session::new(&context, conn, queue, peer, stream.is_tls(), input);
    let reader = async {
        let end = session.read_loop(&stream).await;
        session.finish(end);
        // The writer now drains the queue, which `finish` closed.
        future::pending::<bool>().await
    };
    // Ends once the queue is closed (by `finish`, or by the hub: replaced, too slow) and
    // written out, or when the peer has not taken it within `linger` of the close.
    let writer = async {
        let mut irc = renderer.as_mut().map(|renderer| {
            move |bytes: &[u8], prepared: &crate::queue::Prepared, out: &mut String| {
                renderer.render(bytes, prepared, out);
            }
        });
        let rendering = irc.as_mut().map(|irc| irc as &mut crate::queue::Render<'_>);
        match receiver
            .write_rendered(stream.writer(), config.linger, rendering)
            .await
        {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!(conn, %err, "write failed");
                false
            }
        }
    };
    let flushed = future::or(reader, writer).await;
    // If the writer failed first, the reader never told the hub; the hub ignores a
    // second Leave for a connection it no longer holds, so one more is always safe. On
    // shutdown nobody is told that anybody left.
    if !context.shutdown.is_raised() {
        let _ = context.hub.try_send(Command::Leave {
            conn,
            reason: LeaveReason::Lost,
        });
    }
    if flushed {
        // A lingering close: closing a socket with unread input resets the connection,
        // and the peer could lose our last frame. Send FIN (after TLS's close_notify),
        // then drop its input until it closes too, for a bounded time.
        future::or(
            async {
                stream.close_write().await;
                while stream.read_with(|_| ()).await.is_ok() {}
            },
            async {
                Timer::after(config.linger).await;
            },
        )
        .await;
    }
    stream.shutdown();
}

struct Session<'a> {
    context: &'a Context,
    conn: ConnId,
    queue: SendQueue,
    input: Input,
    accepted: Instant,
    last_heard: Instant,
    pinged: bool,
    logged_in: bool,
    bad_in_row: u32,
    posts: Option<TokenBucket>,
    flood: Option<FloodMeter>,
    /// When the welcome came.
    welcomed: Option<Instant>,
    /// `join`s and `history`s still allowed beyond the rate while catching up.
    catch_up_left: u32,
    /// The peer's address.
    peer: IpAddr,
    /// Whether the connection is TLS.
    secure: bool,
}

/// How long after its welcome a client may catch up beyond its allowance.
const CATCH_UP_TIME: std::time::Duration = std::time::Duration::from_secs(10);

impl<'a> Session<'a> {
    fn new(
        context: &'a Context,
        conn: ConnId,
        queue: SendQueue,
        peer: IpAddr,
        secure: bool,
        input: Input,
    ) -> Self {
        let config = &context.config;
        let now = Instant::now();
        let metered = config.rate > 0;
        Self {
            context,
            conn,
            queue,
            input,
            accepted: now,
            last_heard: now,
            pinged: false,
            logged_in: false,
            bad_in_row: 0,
            posts: metered.then(|| TokenBucket::new(config.rate, config.burst, now)),
            flood: metered.then(|| FloodMeter::new(config.rate, config.burst, now)),
            welcomed: None,
            catch_up_left: u32::try_from(config.max_joined * 2).unwrap_or(u32::MAX),
            peer,
            secure,
        }
    }

    /// When the reader must act if nothing arrives: the login deadline, then the idle one.
    fn deadline(&self) -> Instant {
        let config = &self.context.config;
        if self.logged_in {
            self.last_heard + config.idle_timeout * if self.pinged { 2 } else { 1 }
        } else {
            self.accepted + config.login_timeout
        }
    }

    async fn read_loop(&mut self, stream: &Transport) -> End {
        // Every frame read moves the deadline later. Moving the reactor's timer each time
        // would cost a timer operation and a reactor wake-up per frame, so the timer stays
        // where it was armed; when it fires before the deadline it is moved then. `armed`
        // is `None` once it has fired.
        let mut armed = Some(self.deadline());
        let mut timer = Timer::at(self.deadline());
        loop {
            let deadline = self.deadline();
            if armed.is_none_or(|at| deadline < at) {
                timer.set_at(deadline);
                armed = Some(deadline);
            }
            let context = self.context;
            let (input, last_heard, pinged) =
                (&mut self.input, &mut self.last_heard, &mut self.pinged);
            let wake = future::or(
                future::or(
                    async {
                        Wake::Readable(
                            stream
                                .read_with(|bytes| {
                                    *last_heard = Instant::now();
                                    *pinged = false;
                                    input.decode(bytes)
                                })
                                .await,
                        )
                    },
                    async {
                        (&mut timer).await;
                        Wake::Deadline
                    },
                ),
                async {
                    context.shutdown.wait().await;
                    Wake::Shutdown
                },
            )
            .await;
            if matches!(wake, Wake::Deadline) {
                armed = None;
                if Instant::now() < self.deadline() {
                    // Heard from since the timer was set: not due yet.
                    continue;
                }
            }
            match wake {
                Wake::Shutdown => return End::Close(CloseCode::Shutdown),
                Wake::Deadline if !self.logged_in => return End::Close(CloseCode::LoginTimeout),
                Wake::Deadline if self.pinged => return End::Close(CloseCode::IdleTimeout),
                Wake::Deadline => {
                    self.pinged = true;
                    if self.reply(&ServerFrame::Ping { token: None }).is_err() {
                        return End::Close(CloseCode::SendQueueFull);
                    }
                }
                Wake::Readable(Err(_)) => return End::Lost,
                Wake::Readable(Ok(None)) => continue,
                Wake::Readable(Ok(Some(items))) => {
                    if let Err(end) = self.irc_lines() {
                        return end;
                    }
                    for item in items {
                        let request = match self.screen(item) {
                            Ok(Some(request)) => request,
                            Ok(None) => continue,
                            Err(end) => return end,
                        };
                        if let Err(end) = self.act(request).await {
                            return end;
                        }
                    }
                }
            }
            if self.queue.replies_overflowed() {
                // It asked for more than it read.
                return End::Close(CloseCode::SendQueueFull);
            }
            if self.queue.is_closed() {
                // The room closed us (replaced, or too slow to read).
                return End::Lost;
            }
        }
    }

    /// Acts on a request: a frame (before the login, the login), or what only the IRC
    /// reader asks.
    async fn act(&mut self, request: Request) -> Result<(), End> {
        match request {
            Request::Frame(frame) if self.logged_in => self.handle(frame),
            // Boxed: the login runs once, and its state should not stay in every
            // connection's task for the rest of its life.
            Request::Frame(frame) => Box::pin(self.login(frame)).await,
            // The IRC reader asks for these only once registered.
            _ if !self.logged_in => Ok(()),
            Request::HistoryAt {
                room,
                with,
                reach,
                limit,
            } => self.history(room, with, Some(reach), Some(limit)),
            Request::Targets {
                from,
                to,
                limit,
                reply,
            } => {
                self.to_hub(Command::Targets {
                    conn: self.conn,
                    from,
                    to,
                    limit,
                    reply,
                });
                Ok(())
            }
        }
    }

    /// What the IRC reader did beside frames: a `QUIT` before registration ends the
    /// session; the lines it answered itself count against flood control as frames do.
    fn irc_lines(&mut self) -> Result<(), End> {
        let Some(irc) = self.input.irc() else {
            return Ok(());
        };
        if irc.quit() {
            return Err(End::Quit);
        }
        let answered = irc.take_answered();
        if self.logged_in
            && let Some(flood) = &mut self.flood
        {
            let now = Instant::now();
            for _ in 0..answered {
                if flood.record(now) {
                    return Err(End::Close(CloseCode::Flood));
                }
            }
        }
        Ok(())
    }

    /// Queues a reply to this connection alone.
    fn reply(&self, frame: &ServerFrame) -> Result<(), End> {
        self.queue
            .push(&Batch::new(Frame::encode(frame), 1))
            .map_err(|_| End::Close(CloseCode::SendQueueFull))
    }

    fn error(&self, code: ErrorCode, message: String, id: Option<String>) -> Result<(), End> {
        self.reply(&ServerFrame::Error {
            room: None,
            code,
            message,
            id,
            retry_after: None,
            until: None,
        })
    }

    /// An `error` for a frame that named `room` (so a client knows which one failed).
    fn error_in(&self, code: ErrorCode, message: String, room: Option<String>) -> Result<(), End> {
        self.reply(&ServerFrame::Error {
            room,
            code,
            message,
            id: None,
            retry_after: None,
            until: None,
        })
    }

    fn reject(&self, code: RejectCode, message: String) -> End {
        tracing::info!(?code, message, "login refused");
        self.queue
            .push_unmetered(rejected(code, message, code.is_transient().then_some(2000)));
        End::Rejected
    }

    fn to_hub(&self, command: Command) {
        // The hub outlives every session; an error means the server is going down.
        let _ = self.context.hub.try_send(command);
    }

    /// Meters a frame read and answers what could not be decoded; returns the frame to
    /// act on, if any.
    fn screen(&mut self, item: Decoded) -> Result<Option<Request>, End> {
        let now = Instant::now();
        if self.logged_in
            && !self.catching_up(&item, now)
            && let Some(flood) = &mut self.flood
            && flood.record(now)
        {
            return Err(End::Close(CloseCode::Flood));
        }
        match item {
            Ok(frame) => Ok(Some(frame)),
            Err(DecodeError::TooLong { .. }) => Err(End::Close(CloseCode::FrameTooLong)),
            Err(DecodeError::UnknownType(kind)) if self.logged_in => {
                self.bad_in_row = 0;
                self.error(
                    ErrorCode::UnknownType,
                    format!("unknown frame type {kind:?}"),
                    None,
                )
                .map(|()| None)
            }
            Err(DecodeError::UnknownType(kind)) => Err(self.reject(
                RejectCode::ExpectedHello,
                format!("expected hello, got {kind:?}"),
            )),
            Err(err) => self.bad_frame(err.to_string()).map(|()| None),
        }
    }

    /// Acts on a frame from a logged-in client. Not async: nothing it does waits, and an
    /// async one would keep its frame's room in every connection's task for good.
    fn handle(&mut self, frame: ClientFrame) -> Result<(), End> {
        let now = Instant::now();
        if let ClientFrame::Hello { .. } = frame {
            return self.bad_frame("already logged in: hello comes once".into());
        }
        self.bad_in_row = 0;
        match frame {
            ClientFrame::Say {
                room,
                to,
                text,
                id,
                me,
                reply_to,
            } => self.say(
                room,
                to,
                Said {
                    text,
                    id,
                    me,
                    reply_to,
                },
                now,
            ),
            ClientFrame::History {
                room,
                with,
                before,
                after,
                limit,
            } => self.history_frame(room, with, before, after, limit),
            ClientFrame::Join { room, since } => {
                if let Ok(room) = self.room_name(&room, None) {
                    self.to_hub(Command::Join {
                        conn: self.conn,
                        room,
                        since,
                    });
                }
                Ok(())
            }
            ClientFrame::Part { room } => {
                if let Ok(room) = self.room_name(&room, None) {
                    self.to_hub(Command::Part {
                        conn: self.conn,
                        room,
                    });
                }
                Ok(())
            }
            ClientFrame::Rooms => {
                self.to_hub(Command::Rooms { conn: self.conn });
                Ok(())
            }
            ClientFrame::SetPassword {
                password,
                new_password,
            } => {
                self.to_hub(Command::SetPassword {
                    conn: self.conn,
                    password,
                    new_password,
                });
                Ok(())
            }
            ClientFrame::Search {
                query,
                room,
                with,
                limit,
                cursor,
            } => self.search(query, room.as_deref(), with, limit, cursor, now),
            ClientFrame::Ping { token } => self.reply(&ServerFrame::Pong { token }),
            ClientFrame::Pong { .. } | ClientFrame::Hello { .. } => Ok(()),
            ClientFrame::Bye => Err(End::Quit),
            frame @ (ClientFrame::Delete { .. }
            | ClientFrame::Edit { .. }
            | ClientFrame::React { .. }
            | ClientFrame::Typing { .. }
            | ClientFrame::Read { .. }) => self.life(frame, now),
            frame => match Step::from_frame(frame) {
                Ok(step) => {
                    self.to_hub(Command::Moderate {
                        conn: self.conn,
                        step,
                    });
                    Ok(())
                }
                Err(refused) => self.reply(&ServerFrame::Error {
                    room: refused.room,
                    code: refused.code,
                    message: refused.message,
                    id: None,
                    retry_after: None,
                    until: None,
                }),
            },
        }
    }

    /// The frames of a message's life: deletions, edits and reactions (counted as posts),
    /// typing and read markers.
    fn life(&mut self, frame: ClientFrame, now: Instant) -> Result<(), End> {
        match frame {
            ClientFrame::Delete { room, with, seq } => {
                let Some(place) = self.place("delete", room, with)? else {
                    return Ok(());
                };
                self.to_hub(Command::Delete {
                    conn: self.conn,
                    place,
                    seq,
                });
                Ok(())
            }
            ClientFrame::Edit {
                room,
                with,
                seq,
                text,
            } => {
                if let Err(problem) = check_text(&text, self.context.config.max_text) {
                    return self.error_in(problem.code(), problem.to_string(), room);
                }
                self.amend(room, with, seq, Life::Edit(text), now)
            }
            ClientFrame::React {
                room,
                with,
                seq,
                emoji,
                on,
            } => {
                if let Err(problem) = check_emoji(&emoji) {
                    return self.error_in(problem.code(), problem.to_string(), room);
                }
                self.amend(room, with, seq, Life::React(emoji, on), now)
            }
            ClientFrame::Typing { room, to } => {
                if let Some(place) = self.place("typing", room, to)? {
                    self.to_hub(Command::Typing {
                        conn: self.conn,
                        place,
                    });
                }
                Ok(())
            }
            ClientFrame::Read { room, with, seq } => {
                if let Some(place) = self.place("read", room, with)? {
                    self.to_hub(Command::Read {
                        conn: self.conn,
                        place,
                        seq,
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The room or conversation a frame names (`kind`: its type); `None` when a bad room
    /// name was answered already.
    fn place(
        &mut self,
        kind: &str,
        room: Option<String>,
        with: Option<String>,
    ) -> Result<Option<Place>, End> {
        Ok(Some(match (room, with) {
            (Some(_), Some(_)) => {
                self.bad_frame(format!("{kind} names a room or a conversation, not both"))?;
                return Ok(None);
            }
            (None, Some(with)) => Place::With(with),
            (room, None) => {
                let Ok(room) = room.map(|r| self.room_name(&r, None)).transpose() else {
                    return Ok(None);
                };
                Place::Room(room.unwrap_or_else(|| self.context.config.room.clone()))
            }
        }))
    }

    /// Takes a post from the rate (posts, edits, reactions and searches count): `None`
    /// while within it, else the `rate_limited` refusal to answer with.
    fn over_rate(
        &mut self,
        now: Instant,
        room: Option<String>,
        id: Option<String>,
        message: &str,
    ) -> Option<ServerFrame> {
        let wait = self.posts.as_mut()?.take(now).err()?;
        Some(ServerFrame::Error {
            room,
            code: ErrorCode::RateLimited,
            message: message.into(),
            id,
            retry_after: Some(wait.as_millis() as u64 + 1),
            until: None,
        })
    }

    /// A search: counted as a post against the rate (it costs the server more than one).
    fn search(
        &mut self,
        text: String,
        room: Option<&str>,
        with: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
        now: Instant,
    ) -> Result<(), End> {
        if room.is_some() && with.is_some() {
            return self.bad_frame("search names a room or a conversation, not both".into());
        }
        if let Some(refusal) = self.over_rate(now, None, None, "too fast; wait a moment") {
            return self.reply(&refusal);
        }
        let query = match Query::parse(&text) {
            Ok(query) => query,
            Err(err) => return self.error(ErrorCode::BadQuery, err.to_string(), None),
        };
        let mut rooms = Vec::new();
        if let Some(room) = room {
            let Ok(room) = self.room_name(room, None) else {
                return Ok(());
            };
            rooms.push(room.keys().folded);
        }
        if let Some(named) = &query.room {
            match RoomName::parse(named) {
                Ok(room) => rooms.push(room.keys().folded),
                Err(err) => {
                    return self.error(ErrorCode::BadQuery, format!("in:{named}: {err}"), None);
                }
            }
        }
        let limit = limit
            .unwrap_or(limits::SEARCH_RESULTS)
            .clamp(1, limits::MAX_SEARCH_RESULTS);
        self.to_hub(Command::Search {
            conn: self.conn,
            asked: Box::new(Asked {
                text,
                query,
                rooms,
                with,
                limit: limit as usize,
                cursor,
            }),
        });
        Ok(())
    }

    /// An edit or a reaction: counted as a post against the rate.
    fn amend(
        &mut self,
        room: Option<String>,
        with: Option<String>,
        seq: u64,
        change: Life,
        now: Instant,
    ) -> Result<(), End> {
        if let Some(refusal) = self.over_rate(now, room.clone(), None, "too fast; wait a moment") {
            return self.reply(&refusal);
        }
        if let Some(place) = self.place("that", room, with)? {
            self.to_hub(Command::Amend {
                conn: self.conn,
                place,
                seq,
                change,
            });
        }
        Ok(())
    }

    /// A `history` frame: before or after a seq (not both), or the newest.
    fn history_frame(
        &mut self,
        room: Option<String>,
        with: Option<String>,
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<(), End> {
        let span = match (before, after) {
            (Some(_), Some(_)) => {
                return self.bad_frame("history takes before or after, not both".into());
            }
            (Some(before), None) => Some(Span::Before(before)),
            (None, Some(after)) => Some(Span::After(after)),
            (None, None) => None,
        };
        self.history(room, with, span.map(Reach::Seqs), limit)
    }

    fn history(
        &mut self,
        room: Option<String>,
        with: Option<String>,
        reach: Option<Reach>,
        limit: Option<u32>,
    ) -> Result<(), End> {
        if room.is_some() && with.is_some() {
            return self.bad_frame("history names a room or a conversation, not both".into());
        }
        let limit = limit
            .unwrap_or(DEFAULT_HISTORY_LIMIT)
            .min(MAX_HISTORY_LIMIT);
        if let Some(with) = with {
            self.to_hub(Command::DirectHistory {
                conn: self.conn,
                with,
                reach,
                limit: limit as usize,
            });
            return Ok(());
        }
        let Ok(room) = room.map(|r| self.room_name(&r, None)).transpose() else {
            return Ok(());
        };
        self.to_hub(Command::History {
            conn: self.conn,
            room,
            reach,
            limit: limit as usize,
        });
        Ok(())
    }

    /// A room name from a frame; a bad one is answered `invalid_room` here (with the `id`
    /// of the `say` it came in, if any).
    fn room_name(&self, raw: &str, id: Option<String>) -> Result<RoomName, ()> {
        RoomName::parse(raw).map_err(|err| {
            let _ = self.reply(&ServerFrame::Error {
                code: ErrorCode::InvalidRoom,
                message: format!("{raw:?}: {err}"),
                id,
                room: Some(raw.to_string()),
                retry_after: None,
                until: None,
            });
        })
    }

    /// Whether a frame is one of the `join`s and `history`s a client may send beyond its
    /// allowance in its first ten seconds, to re-join its rooms and catch up (at most
    /// twice `--max-joined` of them).
    fn catching_up(&mut self, item: &Decoded, now: Instant) -> bool {
        let catch_up = matches!(
            item,
            Ok(
                Request::Frame(ClientFrame::Join { .. } | ClientFrame::History { .. })
                    | Request::HistoryAt { .. }
            )
        );
        if catch_up
            && self.catch_up_left > 0
            && self
                .welcomed
                .is_some_and(|at| now.duration_since(at) < CATCH_UP_TIME)
        {
            self.catch_up_left -= 1;
            return true;
        }
        false
    }

    fn bad_frame(&mut self, message: String) -> Result<(), End> {
        self.bad_in_row += 1;
        if self.bad_in_row >= MAX_BAD_FRAMES {
            return Err(End::Close(CloseCode::BadFrame));
        }
        self.error(ErrorCode::BadFrame, message, None)
    }

    async fn login(&mut self, frame: ClientFrame) -> Result<(), End> {
        let ClientFrame::Hello {
            protocol,
            name,
            since,
            epoch,
            token,
            password,
            register,
        } = frame
        else {
            return Err(self.reject(
                RejectCode::ExpectedHello,
                "the first frame must be a hello".into(),
            ));
        };
        // A password crosses the network only encrypted: checked before anything else
        // about such a hello, and the password is not looked at.
        if (password.is_some() || register) && !password_allowed(self.secure, self.peer) {
            return Err(self.reject(
                RejectCode::TlsRequired,
                "passwords are accepted only over TLS; connect with tls://".into(),
            ));
        }
        if !PROTOCOL_VERSIONS.contains(&protocol) {
            return Err(self.reject(
                RejectCode::UnsupportedProtocol,
                format!(
                    "this server speaks protocol {} to {}, not {protocol}",
                    PROTOCOL_VERSIONS.start(),
                    PROTOCOL_VERSIONS.end()
                ),
            ));
        }
        if register && !self.context.config.registration {
            return Err(self.reject(
                RejectCode::RegistrationClosed,
                "this server does not take new accounts".into(),
            ));
        }
        let name = match Name::parse(&name) {
            Ok(name) => name,
            Err(err) => return Err(self.reject(RejectCode::InvalidName, err.to_string())),
        };
        let auth = match (password, register) {
            // `register` without `password` is a password of 0 bytes (weak).
            (password, true) => Auth::Register(password.unwrap_or_else(|| Password::new(""))),
            (Some(password), false) => Auth::Password(password),
            (None, false) => Auth::Guest,
        };
        let remembered = self
            .context
            .log
            .clone()
            .remembered(name.keys().folded, WELCOME_CONVERSATIONS)
            .await;
        let Remembered {
            posts: recent,
            conversations,
            invites,
            read,
        } = match remembered {
            Ok(remembered) => remembered,
            Err(err) => {
                tracing::error!(%err, "cannot read remembered posts");
                return Err(self.reject(
                    RejectCode::Unavailable,
                    "the server cannot read its store now; try again".into(),
                ));
            }
        };
        let (reply, answer) = async_channel::bounded(1);
        let user = name.as_str().to_owned();
        let account = !matches!(auth, Auth::Guest);
        self.to_hub(Command::Login(Login {
            conn: self.conn,
            protocol,
            name,
            since,
            epoch,
            token,
            queue: self.queue.clone(),
            reply,
            recent,
            auth,
            ip: self.peer,
            conversations,
            session: None,
            invites,
            read,
            joins_default: !matches!(self.input, Input::Irc(_)),
        }));
        self.settled(answer.recv().await.ok(), &user, protocol, account)
    }

    /// What the hub answered a login (`None`: nothing, the server is going down).
    fn settled(
        &mut self,
        answer: Option<Result<(), RejectCode>>,
        user: &str,
        protocol: u32,
        account: bool,
    ) -> Result<(), End> {
        match answer {
            Some(Ok(())) => {
                tracing::Span::current().record("user", user);
                tracing::info!(protocol, account, "logged in");
                self.logged_in = true;
                self.welcomed = Some(Instant::now());
                self.bad_in_row = 0;
                if let Some(irc) = self.input.irc() {
                    irc.logged_in(user);
                }
                Ok(())
            }
            // IRC lets a client answer some refusals (433: another nick) and try again.
            Some(Err(code)) if self.input.irc().is_some_and(|irc| irc.refused(code)) => {
                tracing::info!(
                    name = user,
                    ?code,
                    "login refused; the IRC client may retry"
                );
                Ok(())
            }
            _ => {
                tracing::info!(name = user, "login refused");
                Err(End::Rejected)
            }
        }
    }

    fn say(
        &mut self,
        room: Option<String>,
        to: Option<String>,
        said: Said,
        now: Instant,
    ) -> Result<(), End> {
        let max_text = self.context.config.max_text;
        let (text, id) = (&said.text, &said.id);
        if id.as_ref().is_some_and(|id| id.len() > MAX_ID) {
            return self.bad_frame(format!("id longer than {MAX_ID} bytes"));
        }
        if room.is_some() && to.is_some() {
            return self.bad_frame("say goes to a room or to an account, not both".into());
        }
        if let Err(problem) = check_text(text, max_text) {
            return self.error(problem.code(), problem.to_string(), id.clone());
        }
        if let Some(refusal) = self.over_rate(
            now,
            None,
            said.id.clone(),
            "posting too fast; wait a moment",
        ) {
            return self.reply(&refusal);
        }
        if let Some(to) = to {
            self.to_hub(Command::Direct {
                conn: self.conn,
                to,
                said,
            });
            return Ok(());
        }
        let Ok(room) = room
            .map(|r| self.room_name(&r, said.id.clone()))
            .transpose()
        else {
            return Ok(());
        };
        self.to_hub(Command::Post {
            conn: self.conn,
            room,
            said,
        });
        Ok(())
    }

    /// Tells the room and the peer how the session ended, and closes the send queue so the
    /// writer flushes and stops.
    fn finish(&mut self, end: End) {
        let leave = |reason| {
            if self.logged_in {
                self.to_hub(Command::Leave {
                    conn: self.conn,
                    reason,
                });
            }
        };
        match end {
            End::Lost => leave(LeaveReason::Lost),
            End::Quit => leave(LeaveReason::Quit),
            // On shutdown nobody is told that anybody left.
            End::Rejected | End::Close(CloseCode::Shutdown) => {}
            End::Close(code) => leave(code.leave_reason()),
        }
        tracing::info!(?end, "disconnected");
        match end {
            End::Close(CloseCode::SendQueueFull) => {
                self.queue.abort_with(closing(CloseCode::SendQueueFull));
            }
            End::Close(code) => self.queue.close_with(Some(closing(code))),
            // IRC answers a `QUIT` with `ERROR` before it closes.
            End::Quit if self.input.irc().is_some() => self.queue.close_with(Some(Frame::raw(
                b"ERROR :Closing link: goodbye\r\n".to_vec(),
            ))),
            End::Lost | End::Quit | End::Rejected => self.queue.close_with(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_comes_only_encrypted_or_from_this_machine() {
        let remote: IpAddr = [192, 0, 2, 7].into();
        assert!(
            !password_allowed(false, remote),
            "plain from elsewhere: tls_required"
        );
        assert!(password_allowed(true, remote));
        assert!(password_allowed(false, [127, 0, 0, 1].into()));
        assert!(password_allowed(
            false,
            std::net::Ipv6Addr::LOCALHOST.into()
        ));
    }
}
