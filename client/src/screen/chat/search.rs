//! Search on the Chat screen: the box (Ctrl+K or Ctrl+F, or "Search" in the header) with
//! `from:` and `in:` completion; the results, best first, each with its room or
//! conversation, its sender in their colour, its time and its text with the words found
//! highlighted, and "Load more"; and opening a result: its room, with the message shown
//! where the room's log holds it, or else in its context (the events around it, fetched
//! with `history` `after`), apart from the live log until "Jump to latest".

use std::time::Duration;

use chat_shared::search::Query;
use chat_shared::{ClientFrame, ErrorCode, ServerFrame, limits};
use iced::widget::text::Span;
use iced::widget::{
    Column, button, column, container, operation, rich_text, row, scrollable, space, span, text,
    text_input,
};
use iced::{Center, Element, Fill, Font, Task, Theme};

use super::{Chat, Message as ChatMessage, Status, log};
use crate::model::text::capitalized;
use crate::model::{DIRECT, Entry, Room, direct_with, room_key};
use crate::screen::style::{self, bold, muted, name_color, unique_style};

/// The id of the search field.
pub const FIELD: &str = "search-field";
/// Names or rooms offered at most to complete a filter.
const SUGGESTIONS: usize = 6;
/// The entries of each room whose senders are offered to complete `from:`.
const SPEAKERS_FROM: crate::model::Pos = 500;
/// The most height the results take in the box.
const RESULTS_HEIGHT: f32 = 380.0;
/// How long to wait before asking again when the server did not say.
const RETRY: Duration = Duration::from_secs(2);

/// What the user did with search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Opened the search box (Ctrl+K, Ctrl+F, the header's button).
    Open,
    /// Closed it.
    Close,
    /// Typed in the field.
    Query(String),
    /// Typed while the field did not have the focus: it goes there.
    TypeAhead(String),
    /// Enter in the field: search.
    Submit,
    /// Tab in the field: complete the filter being typed with the first name offered.
    Complete,
    /// Chose a name or room offered for the filter being typed.
    Choose(String),
    /// "Load more".
    More,
    /// Clicked the result at this index.
    Show(usize),
    /// The index was being built: time to ask again.
    Retry,
}

/// What the screen keeps of search.
#[derive(Debug, Default)]
pub struct State {
    /// The box is open.
    open: bool,
    /// What is typed in the field.
    query: String,
    /// A search sent and not answered yet.
    asked: Option<Asked>,
    /// The results shown.
    page: Option<Page>,
    /// Why the last search found nothing to show (refused, not connected).
    problem: Option<String>,
    /// A result being opened.
    jump: Option<Jump>,
    /// Ask again after this (the index was being built, or searches came too fast).
    retry: Option<Duration>,
    /// The search to ask again then (the page it was), unless another is asked first.
    again: Option<Asked>,
}

#[derive(Debug, Clone)]
struct Asked {
    text: String,
    cursor: Option<String>,
}

#[derive(Debug)]
struct Page {
    text: String,
    query: Query,
    results: Vec<Found>,
    cursor: Option<String>,
}

/// A message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its room, or `@name` for a direct conversation.
    pub place: String,
    /// Its seq there.
    pub seq: u64,
    /// When it was posted.
    pub time: u64,
    /// Who posted it.
    pub from: String,
    /// Its text (as edited).
    pub text: String,
    /// An action (`/me`).
    pub me: bool,
    /// It was edited.
    pub edited: bool,
}

impl Found {
    fn of(frame: ServerFrame) -> Option<Self> {
        let ServerFrame::Message {
            room,
            with,
            seq,
            time,
            from,
            text,
            me,
            edited,
            ..
        } = frame
        else {
            return None;
        };
        let place = match (with, room) {
            (Some(with), _) => format!("{DIRECT}{with}"),
            (None, Some(room)) => room,
            (None, None) => return None,
        };
        Some(Self {
            place,
            seq,
            time,
            from,
            text,
            me,
            edited: edited.is_some(),
        })
    }
}

/// A result being opened: its room (or `@name`) and seq.
#[derive(Debug, Clone)]
struct Jump {
    place: String,
    seq: u64,
    /// Its context was asked for.
    asked: bool,
}

/// A message shown in its context, apart from the room's live log: the events around it
/// as history had them, kept up to date with edits, reactions and deletions.
#[derive(Debug, Clone)]
pub struct Context {
    /// The events around it, in a room of their own.
    pub room: Room,
    /// How they are shown.
    pub log: log::Log,
    /// The message found.
    pub seq: u64,
}

impl State {
    /// Whether the box is open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// What is typed in the field.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The results shown (none before the first answer).
    pub fn results(&self) -> &[Found] {
        self.page.as_ref().map_or(&[], |page| &page.results)
    }
}

impl Chat {
    /// Handles a message of search.
    pub(super) fn search(&mut self, message: Message) -> Task<ChatMessage> {
        match message {
            Message::Open => {
                self.search.open = true;
                self.dialog = None;
                return Task::batch([operation::focus(FIELD), operation::select_all(FIELD)]);
            }
            Message::Close => {
                self.search.open = false;
                return operation::focus(super::INPUT);
            }
            Message::Query(query) => {
                let last = |query: &str| {
                    let word = query.rsplit(char::is_whitespace).next().unwrap_or("");
                    filter_typed(word).is_some_and(|f| f.eq_ignore_ascii_case("in:"))
                };
                if last(&query) && !last(&self.search.query) && self.status == Status::Online {
                    // `in:` begun: the rooms to offer, fresh (who is where changes).
                    self.handle.rooms();
                }
                self.search.query = query;
            }
            Message::TypeAhead(typed) => {
                self.search.query.push_str(&typed);
                return Task::batch([
                    operation::focus(FIELD),
                    operation::move_cursor_to_end(FIELD),
                ]);
            }
            Message::Submit => {
                let text = self.search.query.trim().to_string();
                self.ask(text, None);
            }
            Message::Retry => {
                if let Some(again) = self.search.again.take() {
                    self.ask(again.text, again.cursor);
                }
            }
            Message::Complete => {
                if let Some(first) = self.suggestions().into_iter().next() {
                    self.complete_with(&first);
                }
                return operation::move_cursor_to_end(FIELD);
            }
            Message::Choose(value) => {
                self.complete_with(&value);
                return Task::batch([
                    operation::focus(FIELD),
                    operation::move_cursor_to_end(FIELD),
                ]);
            }
            Message::More => {
                if let Some(page) = &self.search.page
                    && let Some(cursor) = page.cursor.clone()
                {
                    let text = page.text.clone();
                    self.ask(text, Some(cursor));
                }
            }
            Message::Show(index) => return self.open_result(index),
        }
        Task::none()
    }

    /// Sends a search (the next page with `cursor`), if the query is one.
    fn ask(&mut self, text: String, cursor: Option<String>) {
        self.search.retry = None;
        self.search.again = None;
        if text.is_empty() {
            return;
        }
        if let Err(err) = Query::parse(&text) {
            self.search.problem = Some(sentence(&err.to_string()));
            return;
        }
        if self.status != Status::Online {
            self.search.problem = Some("Not connected; search again once reconnected.".into());
            return;
        }
        self.search.problem = None;
        self.handle.send(ClientFrame::Search {
            query: text.clone(),
            room: None,
            with: None,
            limit: Some(limits::SEARCH_RESULTS),
            cursor: cursor.clone(),
        });
        self.search.asked = Some(Asked { text, cursor });
    }

    /// Logged in again: a search, or the context of a result being opened, that the last
    /// connection left unanswered is asked for again.
    pub(super) fn search_again(&mut self) {
        if let Some(asked) = self.search.asked.take() {
            self.ask(asked.text, asked.cursor);
        }
        if let Some(jump) = &mut self.search.jump {
            jump.asked = false;
        }
    }

    /// A frame that answers a search: its results, or why there are none. Returns whether
    /// it was one (and is taken).
    pub(super) fn search_answered(&mut self, frame: &ServerFrame) -> bool {
        match frame {
            ServerFrame::SearchResults {
                query,
                results,
                cursor,
            } => {
                let asked = self.search.asked.take_if(|asked| asked.text == *query);
                let Some(asked) = asked else {
                    return true; // an answer to a search asked before this one
                };
                let found = results.iter().cloned().filter_map(Found::of);
                match &mut self.search.page {
                    Some(page) if asked.cursor.is_some() && page.text == asked.text => {
                        page.results.extend(found);
                        page.cursor.clone_from(cursor);
                    }
                    _ => {
                        self.search.page = Some(Page {
                            query: Query::parse(query).unwrap_or_default(),
                            text: query.clone(),
                            results: found.collect(),
                            cursor: cursor.clone(),
                        });
                    }
                }
                true
            }
            ServerFrame::Error {
                code,
                message,
                id: None,
                room: None,
                retry_after,
                ..
            } if self.search.asked.is_some() && refuses_a_search(*code) => {
                let refused = self.search.asked.take();
                self.search.problem = Some(match code {
                    ErrorCode::Unavailable if retry_after.is_some() => {
                        "The server is still building its search index; searching again shortly…"
                            .into()
                    }
                    ErrorCode::RateLimited => {
                        "Too many searches at once; searching again shortly…".into()
                    }
                    _ => sentence(message),
                });
                // Asked again by itself only when the server says it is worth it (without
                // `retry_after`, `unavailable` means no search here).
                let wait = match code {
                    ErrorCode::RateLimited => {
                        Some(retry_after.map_or(RETRY, Duration::from_millis))
                    }
                    ErrorCode::Unavailable => retry_after.map(Duration::from_millis),
                    _ => None,
                };
                self.search.retry = wait;
                self.search.again = refused.filter(|_| wait.is_some());
                true
            }
            _ => false,
        }
    }

    /// What comes after a frame or a history answer: a search to ask again later, and
    /// the next step of opening a result (once its room is in, the message is shown or
    /// its context asked for).
    pub fn follow_up(&mut self) -> Task<ChatMessage> {
        let retry = match self.search.retry.take() {
            Some(wait) => Task::perform(smol::Timer::after(wait), |_| {
                ChatMessage::Search(Message::Retry)
            }),
            None => Task::none(),
        };
        Task::batch([retry, self.go_on_opening()])
    }

    /// Opens the result at `index`: its room (joined if the user is not in it) or
    /// conversation, then the message in it.
    fn open_result(&mut self, index: usize) -> Task<ChatMessage> {
        let Some(found) = self
            .search
            .page
            .as_ref()
            .and_then(|page| page.results.get(index))
            .cloned()
        else {
            return Task::none();
        };
        self.search.open = false;
        self.drawer = None;
        let before = self.shown_key();
        match direct_with(&found.place) {
            Some(with) => {
                self.rooms.open_direct(with);
                self.shown_changed(before);
            }
            None if self.rooms.get(&found.place).is_some() => self.switch(&found.place),
            None => self.join(&found.place),
        }
        if let Some((_, view)) = self.active_mut() {
            view.context = None;
        }
        self.search.jump = Some(Jump {
            place: found.place,
            seq: found.seq,
            asked: false,
        });
        Task::batch([self.go_on_opening(), operation::focus(super::INPUT)])
    }

    /// The next step of opening a result, if one is under way.
    fn go_on_opening(&mut self) -> Task<ChatMessage> {
        let Some(jump) = self.search.jump.clone() else {
            return Task::none();
        };
        let shown = self.shown_key();
        let Some(joined) = self.rooms.get(&jump.place) else {
            self.search.jump = None; // the join was refused
            return Task::none();
        };
        if shown.as_deref() != Some(joined.key.as_str()) {
            self.search.jump = None; // the user went elsewhere meanwhile
            return Task::none();
        }
        if jump.asked || !joined.room.replayed() {
            return Task::none();
        }
        if let Some((pos, _)) = joined.room.timeline.message(jump.seq) {
            self.search.jump = None;
            let Some((joined, view)) = self.active_mut() else {
                return Task::none();
            };
            return view.log.show(pos, &joined.room.timeline);
        }
        if joined
            .room
            .timeline
            .first_seq()
            .is_some_and(|first| first <= jump.seq)
        {
            self.search.jump = None;
            self.banner = Some("That message is no longer there.".into());
            return Task::none();
        }
        self.handle.context(&joined.room.name, jump.seq);
        if let Some(jump) = &mut self.search.jump {
            jump.asked = true;
        }
        Task::none()
    }

    /// The events around a result came: the room shows them apart from its live log,
    /// with the message standing out.
    pub fn context(
        &mut self,
        place: &str,
        seq: u64,
        frames: Vec<ServerFrame>,
    ) -> Task<ChatMessage> {
        let key = room_key(place);
        let wanted = self
            .search
            .jump
            .as_ref()
            .is_some_and(|jump| room_key(&jump.place) == key && jump.seq == seq);
        if !wanted || self.shown_key().as_deref() != Some(key.as_str()) {
            return Task::none();
        }
        self.search.jump = None;
        let Some((joined, view)) = self.active_mut() else {
            return Task::none();
        };
        let mut room = Room::new(joined.room.timeline.me(), &joined.room.name, 0);
        room.members = joined.room.members.clone();
        room.moderation = joined.room.moderation.clone();
        for frame in frames {
            let changed = room.timeline.change(&frame);
            if !changed && let Some(entry) = room.timeline.entry_of(frame) {
                room.timeline.push_event(entry);
            }
        }
        let Some((pos, _)) = room.timeline.message(seq) else {
            self.banner = Some("That message is no longer there.".into());
            return Task::none();
        };
        let mut log = log::Log::default();
        let task = log.show(pos, &room.timeline);
        view.context = Some(Context { room, log, seq });
        task
    }

    /// Completes the filter being typed (the query's last word) with `value`.
    fn complete_with(&mut self, value: &str) {
        let query = &self.search.query;
        let start = query.rfind(char::is_whitespace).map_or(0, |at| at + 1);
        let Some(filter) = filter_typed(&query[start..]) else {
            return;
        };
        self.search.query = format!("{}{filter}{value} ", &query[..start]);
    }

    /// What the filter being typed may be completed with: the names of people in the
    /// user's rooms and conversations (`from:`), or rooms (`in:`).
    fn suggestions(&self) -> Vec<String> {
        let query = &self.search.query;
        let last = query.rsplit(char::is_whitespace).next().unwrap_or("");
        let Some(filter) = filter_typed(last) else {
            return Vec::new();
        };
        let typed = chat_shared::fold(last[filter.len()..].trim_start_matches('#'));
        let mut offered: Vec<String> = if filter.eq_ignore_ascii_case("from:") {
            // Who is in the user's rooms, whom the user talks with, and who spoke lately
            // in what the rooms hold (people who have left are searched for too).
            self.rooms
                .iter()
                .flat_map(|joined| {
                    let timeline = &joined.room.timeline;
                    let lately = timeline
                        .end()
                        .saturating_sub(SPEAKERS_FROM)
                        .max(timeline.start());
                    let speakers = timeline.range(lately..timeline.end()).filter_map(
                        |(_, entry)| match entry {
                            Entry::Message(message) => Some(message.from.clone()),
                            _ => None,
                        },
                    );
                    joined
                        .room
                        .members
                        .iter()
                        .map(str::to_string)
                        .chain(joined.with().map(str::to_string))
                        .chain(speakers)
                })
                .collect()
        } else {
            self.rooms
                .iter()
                .filter(|joined| !joined.is_direct())
                .map(|joined| joined.room.name.clone())
                .chain(
                    self.rooms
                        .directory()
                        .unwrap_or_default()
                        .iter()
                        .map(|entry| entry.room.clone()),
                )
                .chain(
                    self.search
                        .results()
                        .iter()
                        .filter(|found| direct_with(&found.place).is_none())
                        .map(|found| found.place.clone()),
                )
                .collect()
        };
        offered.retain(|name| chat_shared::fold(name).starts_with(&typed));
        offered.sort_by_key(|name| chat_shared::fold(name));
        offered.dedup_by_key(|name| chat_shared::fold(name));
        offered.truncate(SUGGESTIONS);
        offered
    }

    /// The search box over the screen.
    pub(super) fn search_dialog<'a>(&'a self, theme: &'a Theme) -> Element<'a, Message> {
        let field = text_input(
            "Search all rooms: words, \"a phrase\", from:name, in:room",
            &self.search.query,
        )
        .id(FIELD)
        .on_input(Message::Query)
        .on_submit(Message::Submit)
        .size(14)
        .padding(6);
        let mut card = column![text("Search").size(16).font(bold()), field].spacing(10);
        let suggestions = self.suggestions();
        if !suggestions.is_empty() {
            let chips = suggestions
                .into_iter()
                .fold(row![].spacing(4), |chips, name| {
                    chips.push(
                        button(text(name.clone()).size(13))
                            .on_press(Message::Choose(name))
                            .padding([2, 8])
                            .style(button::secondary),
                    )
                });
            card = card.push(chips.wrap());
        }
        let state = if self.search.asked.is_some() {
            Some("Searching…".to_string())
        } else {
            self.search.problem.clone()
        };
        if let Some(words) = state {
            card = card.push(
                text(words.clone())
                    .size(13)
                    .style(unique_style(muted, &words)),
            );
        }
        card = card.push(self.results(theme));
        card.push(row![
            text("Enter searches · Tab completes from: and in: · Esc closes")
                .size(12)
                .style(muted),
            space::horizontal(),
            button(text("Close").size(13))
                .on_press(Message::Close)
                .style(button::secondary),
        ])
        .width(560)
        .into()
    }

    /// The results shown, with "Load more".
    fn results<'a>(&'a self, theme: &'a Theme) -> Element<'a, Message> {
        let Some(page) = &self.search.page else {
            return space().height(0).into();
        };
        let mut list = Column::new().spacing(2);
        if page.results.is_empty() {
            list = list.push(text("Nothing found.").size(13).style(muted));
        }
        for (index, found) in page.results.iter().enumerate() {
            list = list.push(result_row(index, found, &page.query, theme));
        }
        if page.cursor.is_some() {
            let more = button(text("Load more").size(13)).style(button::secondary);
            let more = if self.search.asked.is_some() {
                more
            } else {
                more.on_press(Message::More)
            };
            list = list.push(container(more).center_x(Fill).padding(4));
        }
        // As tall as the results, up to what leaves the field and the buttons in view.
        container(scrollable(list).spacing(4))
            .max_height(RESULTS_HEIGHT)
            .into()
    }

    /// The bar over a message shown in its context.
    pub(super) fn context_bar(context: &Context) -> Element<'_, ChatMessage> {
        let time = context
            .room
            .timeline
            .message(context.seq)
            .map(|(_, message)| when(message.time))
            .unwrap_or_default();
        let words = format!("Found, from {time}: the messages around it");
        container(
            row![
                text(words.clone())
                    .size(13)
                    .width(Fill)
                    .style(unique_style(muted, &words)),
                button(text("Jump to latest").size(13))
                    .on_press(ChatMessage::JumpToLatest)
                    .padding([2, 10])
                    .style(button::primary),
            ]
            .spacing(8)
            .align_y(Center),
        )
        .padding([4, 12])
        .width(Fill)
        .style(|theme: &Theme| {
            container::Style::default().background(theme.extended_palette().background.weak.color)
        })
        .into()
    }
}

/// Words as a sentence: a capital first, a full stop last.
fn sentence(words: &str) -> String {
    format!("{}.", capitalized(words.trim().trim_end_matches('.')))
}

/// Whether an error without a room or post is an answer to a search.
fn refuses_a_search(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BadQuery
            | ErrorCode::Unavailable
            | ErrorCode::RateLimited
            | ErrorCode::InvalidRoom
            | ErrorCode::NoAccount
            | ErrorCode::AccountRequired
    )
}

/// The filter a word starts (`from:` or `in:`, as typed), if it is one.
fn filter_typed(word: &str) -> Option<&str> {
    ["from:", "in:"].into_iter().find_map(|filter| {
        let head = word.get(..filter.len())?;
        head.eq_ignore_ascii_case(filter).then_some(head)
    })
}

/// One result: where, who (in their colour), when, and the text with the words found
/// highlighted.
fn result_row<'a>(
    index: usize,
    found: &'a Found,
    query: &Query,
    theme: &Theme,
) -> Element<'a, Message> {
    let place = match direct_with(&found.place) {
        Some(with) => format!("{DIRECT}{with}"),
        None => format!("#{}", found.place),
    };
    let when = when(found.time);
    let head = row![
        text(place.clone())
            .size(12)
            .font(bold())
            .style(unique_style(muted, &place)),
        text(found.from.clone())
            .size(13)
            .font(bold())
            .color(name_color(&found.from, theme)),
        space::horizontal(),
        text(when.clone())
            .size(12)
            .style(unique_style(muted, &when)),
    ]
    .spacing(8)
    .align_y(Center);
    let body = rich_text(highlighted(found, query, theme)).size(14);
    button(column![head, body].spacing(2))
        .on_press(Message::Show(index))
        .width(Fill)
        .padding([4, 8])
        .style(button::text)
        .into()
}

/// When a message was posted, in words: its day and time.
fn when(time: u64) -> String {
    style::local(time).map_or_else(String::new, |t| {
        let today = chrono::Local::now().date_naive();
        format!(
            "{} {}",
            style::day_label(t.date_naive(), today),
            style::clock(time)
        )
    })
}

/// A result's text in spans, the words found on a highlight.
fn highlighted<'a>(found: &'a Found, query: &Query, theme: &Theme) -> Vec<Span<'a, (), Font>> {
    let text = found.text.as_str();
    let mark = theme.extended_palette().primary.weak.color.scale_alpha(0.6);
    let mut spans = Vec::new();
    if found.me {
        spans.push(span(format!("{} ", found.from)).font(style::italic()));
    }
    let mut at = 0;
    for range in query.highlights(text) {
        if range.start > at {
            spans.push(span(&text[at..range.start]));
        }
        spans.push(span(&text[range.clone()]).background(mark));
        at = range.end;
    }
    if at < text.len() {
        spans.push(span(&text[at..]));
    }
    if found.edited {
        spans.push(span(" (edited)").color(style::muted_color(theme)).size(12));
    }
    spans
}
