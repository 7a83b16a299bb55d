//! The message log of the Chat screen: which part of the timeline is rendered, whether it
//! follows the newest line or stays on what is being read, and how each entry looks.
//!
//! Only a window of the timeline is rendered, so the cost of a frame does not grow with
//! the history. While following, the window is the newest [`FOLLOW_WINDOW`] entries;
//! while reading back it is frozen, grows by [`PAGE`] entries when the reader nears one
//! of its ends, and asks the server for older history when the reader reaches the oldest
//! entry held.
//!
//! What is not rendered still takes its room: a space above and below the window, each
//! as tall as its entries are estimated to be (from the rows rendered), so the scrollbar's
//! thumb is as long as the window is a part of everything held, and stands where the
//! window stands in it: it moves up as the reader goes up, and keeps its size from page
//! to page. A jump of the thumb into one of the spaces renders the entries found there.

use std::collections::HashSet;
use std::ops::Range;

use chrono::Local;
use iced::widget::{
    Column, button, column, container, mouse_area, row, rule, scrollable, space, text, tooltip,
};
use iced::{Center, Element, Fill, Shrink, Task, Theme};

use super::Message;
use super::life;
use super::moderation::Message as MenuMessage;
use crate::model::{
    ChatMessage, Entry, Older, Pending, Pos, Presence, Room, Timeline, Tone, timeline,
};
use crate::screen::style::{self, bold, italic, muted, unique_style};
use crate::widget::selectable::{Piece, Selectable, selectable};
use crate::widget::viewport::{self, Mode, RowKey, Scroll, keep_in_view};

/// The id of the log's scrollable.
pub const LIST: &str = "chat-list";
/// Entries rendered while following the newest.
pub const FOLLOW_WINDOW: Pos = 100;
/// Entries added to the window when the reader nears one of its ends.
pub const PAGE: Pos = 100;
/// The most entries rendered at once.
pub const MAX_WINDOW: Pos = 400;
/// Events asked for in one history request.
pub const HISTORY_PAGE: u32 = 100;
/// Messages the log wants to hold before it stops fetching older history by itself.
pub const ENOUGH_CONVERSATION: usize = 30;
/// The height an entry is taken to have before any is measured: one line and the space
/// between rows.
const FIRST_ROW_HEIGHT: f32 = 26.0;

/// What the log needs the connection to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Fetch the events before this seq.
    History(u64),
}

/// The log's own state.
#[derive(Debug, Clone)]
pub struct Log {
    mode: Mode,
    /// The rendered range while reading back.
    window: Range<Pos>,
    /// The first position that arrived after the reader left the newest line.
    unseen_from: Option<Pos>,
    /// Runs of joins and leaves shown line by line.
    expanded: HashSet<Pos>,
    /// The mean height of a rendered entry (with what comes between entries), for the
    /// spaces that stand for the entries not rendered.
    row_height: f32,
    /// The last place of the list: how far its top is above the viewport's, the height
    /// of everything, and of the viewport.
    place: Option<Place>,
    /// The entry just shown on request (a reply's quote was clicked), and when: it stands
    /// out for a moment.
    flash: Option<(Pos, std::time::Instant)>,
}

/// How long an entry shown on request stands out.
const FLASH: std::time::Duration = std::time::Duration::from_secs(2);

/// Where the list stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    /// How far the viewport's top is below the top of the list.
    pub from_top: f32,
    /// The height of the whole list, the spaces included.
    pub height: f32,
    /// The height of the viewport.
    pub page: f32,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            mode: Mode::Follow,
            window: 0..0,
            unseen_from: None,
            expanded: HashSet::new(),
            row_height: FIRST_ROW_HEIGHT,
            place: None,
            flash: None,
        }
    }
}

/// What the log's look depends on beyond the room.
pub struct Looks<'a> {
    /// The theme, for colours chosen per name.
    pub theme: &'a Theme,
    /// Whether the connection is up (pending posts say so).
    pub online: bool,
    /// Joins and leaves are hidden in rooms with more members than this.
    pub hide_presence_above: usize,
    /// Whether the user may delete a message (its actions show for those).
    pub deletable: &'a dyn Fn(&ChatMessage) -> bool,
    /// The message under the pointer.
    pub hovered: Option<u64>,
    /// The message whose actions are open.
    pub menu: Option<u64>,
    /// A "New messages" line before this entry.
    pub left_off: Option<Pos>,
    /// Whether the user is an account (it may edit its messages).
    pub account: bool,
    /// The message whose emoji picker is open, and the emoji it offers.
    pub picker: Option<(u64, Vec<String>)>,
    /// The timeline is the events around a message found, not the room's history: it
    /// has no more to fetch.
    pub excerpt: bool,
}

impl Log {
    /// Whether the log follows the newest line.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The range of the timeline rendered now.
    pub fn window(&self, timeline: &Timeline) -> Range<Pos> {
        match self.mode {
            Mode::Follow => (timeline.end() - FOLLOW_WINDOW).max(timeline.start())..timeline.end(),
            Mode::Read => {
                let start = self.window.start.clamp(timeline.start(), timeline.end());
                start..self.window.end.clamp(start, timeline.end())
            }
        }
    }

    /// Where the list stood when it last moved.
    pub fn place(&self) -> Option<Place> {
        self.place
    }

    /// The heights of the spaces that stand for what is held above and below the window.
    fn spaces(&self, timeline: &Timeline, window: &Range<Pos>) -> (f32, f32) {
        // Whole pixels: what is below a space is not drawn between two.
        let height = |entries: Pos| (entries.max(0) as f32 * self.row_height).round();
        (
            height(window.start - timeline.start()),
            height(timeline.end() - window.end),
        )
    }

    /// Messages that arrived since the reader left the newest line.
    pub fn unseen(&self, timeline: &Timeline) -> usize {
        self.unseen_from
            .map_or(0, |from| timeline.messages_since(from))
    }

    /// Back to the newest line, following.
    pub fn jump_to_latest(&mut self) {
        self.mode = Mode::Follow;
        self.unseen_from = None;
    }

    /// To the oldest entry held, reading.
    pub fn jump_to_oldest(&mut self, timeline: &Timeline) {
        self.read(timeline);
        self.window = timeline.start()..(timeline.start() + FOLLOW_WINDOW).min(timeline.end());
    }

    /// Holds what is rendered where it is (the log stops following the newest line):
    /// a menu opened on a message must not scroll away under the pointer in a busy room.
    pub fn hold(&mut self, timeline: &Timeline) {
        self.read(timeline);
    }

    /// Starts reading back from what is rendered now.
    fn read(&mut self, timeline: &Timeline) {
        if self.mode == Mode::Follow {
            self.window = self.window(timeline);
            self.mode = Mode::Read;
            self.unseen_from = Some(timeline.end());
        }
    }

    /// The list moved (by the reader or by the log itself); `built` is the mode the list
    /// was built in. The reader's first turns of the wheel come in one batch, all from a
    /// list still held at the bottom, whose offsets count from there, before the list is
    /// built anew for reading.
    pub fn scrolled(
        &mut self,
        viewport: &scrollable::Viewport,
        built: Mode,
        timeline: &mut Timeline,
    ) -> Option<Request> {
        let built_reading = built == Mode::Read;
        let offset = viewport.absolute_offset().y;
        let page = viewport.bounds().height;
        let height = viewport.content_bounds().height;
        let max = (height - page).max(0.0);
        let window = self.window(timeline);
        let (above, below) = self.spaces(timeline, &window);
        let from_top = if built_reading { offset } else { max - offset };
        self.place = Some(Place {
            from_top,
            height,
            page,
        });
        // What the rendered rows measure teaches the spaces their height (slowly, so that
        // the thumb does not jump with one tall message), while following: there the
        // list is held at the bottom and a space above that changes moves nothing read.
        let rendered = window.end - window.start;
        if !built_reading && rendered >= 20 {
            let mean = ((height - above - below) / rendered as f32).clamp(16.0, 400.0);
            self.row_height += (mean - self.row_height) * 0.25;
        }
        match self.mode {
            // Anchored at the bottom: the offset is the distance from the newest line.
            Mode::Follow => {
                if offset > 4.0 {
                    self.read(timeline);
                }
                if above == 0.0 && max - offset < page {
                    return fetch_older(timeline);
                }
                None
            }
            // Offsets from the bottom still: wait for the list held at the top.
            Mode::Read if !built_reading => None,
            Mode::Read => {
                // Measured from the rendered rows, not from the spaces.
                let (top, bottom) = (offset - above, max - offset - below);
                let shown = height - above - below;
                if top + page < 0.0 || top > shown {
                    // The thumb jumped into a space: render what is held there.
                    let at = timeline.start() + (offset / self.row_height) as Pos;
                    self.window.start = (at - PAGE / 2).clamp(timeline.start(), timeline.end());
                    self.window.end = (self.window.start + 2 * PAGE).min(timeline.end());
                } else if top < page {
                    if window.start > timeline.start() {
                        self.window.start = (window.start - PAGE).max(timeline.start());
                        self.window.end = window.end.min(self.window.start + MAX_WINDOW);
                    } else {
                        return fetch_older(timeline);
                    }
                } else if bottom < page && window.end < timeline.end() {
                    self.window.end = (window.end + PAGE).min(timeline.end());
                    self.window.start = window.start.max(self.window.end - MAX_WINDOW);
                } else if bottom < 2.0 && window.end >= timeline.end() {
                    self.jump_to_latest();
                }
                None
            }
        }
    }

    /// The reader asked for older messages ("Show older", or the top of the list).
    pub fn show_older(&mut self, timeline: &mut Timeline) -> Option<Request> {
        self.read(timeline);
        let window = self.window(timeline);
        if window.start > timeline.start() {
            self.window.start = (window.start - PAGE).max(timeline.start());
            self.window.end = window.end.min(self.window.start + MAX_WINDOW);
            None
        } else {
            fetch_older(timeline)
        }
    }

    /// Whether the log should fetch older history by itself: the room holds too little
    /// conversation to fill a screen.
    pub fn wants_more(&mut self, timeline: &mut Timeline) -> Option<Request> {
        if timeline.message_count() < ENOUGH_CONVERSATION {
            fetch_older(timeline)
        } else {
            None
        }
    }

    /// Older history arrived in front of the timeline: a reader at the top sees it.
    pub fn history_arrived(&mut self, timeline: &Timeline, added: usize) {
        if self.mode == Mode::Read
            && added > 0
            && self.window.start <= timeline.start() + timeline::span(added)
        {
            self.window.start = (self.window.start - PAGE).max(timeline.start());
            self.window.end = self.window.end.min(self.window.start + MAX_WINDOW);
        }
    }

    /// Shows the entry at `pos` near the top of the log, reading from there.
    pub fn show<T: Send + 'static>(&mut self, pos: Pos, timeline: &Timeline) -> Task<T> {
        self.read(timeline);
        self.window.start = (pos - 2).clamp(timeline.start(), timeline.end());
        self.window.end = (self.window.start + 2 * PAGE).min(timeline.end());
        let (above, _) = self.spaces(timeline, &self.window(timeline));
        self.flash = Some((pos, std::time::Instant::now()));
        viewport::scroll(LIST.into(), Scroll::To(above), Mode::Read)
    }

    /// The entry standing out now, if one was just shown on request.
    pub fn flashing(&self) -> Option<Pos> {
        self.flash
            .filter(|(_, at)| at.elapsed() < FLASH)
            .map(|(pos, _)| pos)
    }

    /// Shows a run of joins and leaves line by line, or folds it again.
    pub fn toggle(&mut self, pos: Pos) {
        if !self.expanded.remove(&pos) {
            self.expanded.insert(pos);
        }
    }

    /// The log of `room`; `list` tells rooms apart (each keeps its place on screen).
    pub fn view<'a>(
        &'a self,
        room: &'a Room,
        looks: &Looks<'_>,
        list: u64,
    ) -> Element<'a, Message> {
        let timeline = &room.timeline;
        let window = self.window(timeline);
        let hide_presence = room.members.len() > looks.hide_presence_above;
        let today = Local::now().date_naive();
        let (above, below) = self.spaces(timeline, &window);
        let mut rows: Vec<(RowKey, Element<'a, Message>)> = Vec::new();
        if above > 0.0 {
            rows.push(((Pos::MIN, 2), space().height(above).into()));
        }
        rows.push((
            (Pos::MIN, 0),
            top_of_window(timeline, &window, looks.excerpt),
        ));
        let mut last_day = None;
        for (pos, entry) in timeline.range(window.clone()) {
            if hide_presence && matches!(entry, Entry::Presence(_)) {
                continue;
            }
            let day = entry.time().and_then(style::local).map(|t| t.date_naive());
            if let Some(day) = day
                && last_day != Some(day)
            {
                last_day = Some(day);
                rows.push(((pos, 1), day_separator(&style::day_label(day, today))));
            }
            if looks.left_off == Some(pos) {
                rows.push(((pos, 2), new_messages_line()));
            }
            let row = match entry {
                Entry::Message(message) => with_actions(
                    message,
                    message_block(message, timeline, looks.theme),
                    looks,
                ),
                Entry::Presence(run) => presence_row(pos, run, self.expanded.contains(&pos)),
                Entry::Notice(notice) => notice_row(notice.time, &notice.text, notice.tone),
                Entry::Step(step) => notice_row(Some(step.time), &step.text, Tone::Info),
            };
            let row = if self.flashing() == Some(pos) {
                container(row)
                    .width(Fill)
                    .style(|theme: &Theme| container::Style {
                        background: Some(
                            theme
                                .extended_palette()
                                .primary
                                .weak
                                .color
                                .scale_alpha(0.35)
                                .into(),
                        ),
                        border: iced::Border::default().rounded(4),
                        ..container::Style::default()
                    })
                    .into()
            } else {
                row
            };
            rows.push(((pos, 0), row));
        }
        if window.end >= timeline.end() {
            for (i, post) in room.pending.iter().enumerate() {
                rows.push(((Pos::MAX, i as u8), pending_row(post, looks.online)));
            }
        } else if below > 0.0 {
            rows.push(((Pos::MAX - 1, 1), space().height(below).into()));
        }
        // Entries (and pending posts) are what is read and held in place; the control at
        // the top, the spaces, the day separators (which come and go as older days are
        // fetched) and the "New messages" line are not.
        let list_key = list;
        let list = rows
            .into_iter()
            .fold(viewport::rows(), |list, (key, row)| {
                if key.0 == Pos::MIN || (key.0 != Pos::MAX && key.1 >= 1) {
                    list.push_control(key, row)
                } else {
                    list.push(key, row)
                }
            })
            .spacing(4)
            .padding([8, 12]);
        // The list shrinks to its content and sits at the bottom, so a short log reads
        // from the input up, as a long one does.
        let list = scrollable(list)
            .id(LIST)
            .anchor_y(match self.mode {
                Mode::Follow => scrollable::Anchor::End,
                Mode::Read => scrollable::Anchor::Start,
            })
            .on_scroll({
                let mode = self.mode;
                move |viewport| Message::Scrolled(viewport, mode)
            })
            .height(Shrink)
            .width(Fill);
        container(keep_in_view(list, LIST.into(), self.mode, list_key))
            .height(Fill)
            .align_bottom(Fill)
            .into()
    }
}

/// Asks for the page before the oldest event held, unless one is on its way or there is
/// none.
pub(super) fn fetch_older(timeline: &mut Timeline) -> Option<Request> {
    match timeline.older() {
        Older::Before(seq) => {
            timeline.loading(seq);
            Some(Request::History(seq))
        }
        Older::Loading(_) | Older::None | Older::Unknown => None,
    }
}

/// What stands above the oldest rendered entry: a way to older messages, or the beginning
/// of the history.
fn top_of_window<'a>(
    timeline: &Timeline,
    window: &Range<Pos>,
    excerpt: bool,
) -> Element<'a, Message> {
    let more_here = window.start > timeline.start();
    let older = if excerpt {
        Older::Unknown
    } else {
        timeline.older()
    };
    let label = match (more_here, older) {
        (false, _) if excerpt => "The messages around the one found",
        (true, _) | (false, Older::Before(_)) => "Show older messages",
        (false, Older::Loading(_)) => "Loading older messages…",
        (false, Older::None) => "Beginning of the history",
        (false, Older::Unknown) => "",
    };
    let line = text(label)
        .size(13)
        .style(unique_style(text::default, label));
    let content: Element<'a, Message> = if more_here || matches!(older, Older::Before(_)) {
        button(line)
            .on_press(Message::ShowOlder)
            .style(button::text)
            .into()
    } else {
        line.style(unique_style(muted, label)).into()
    };
    container(content).center_x(Fill).padding([2, 0]).into()
}

fn time_cell<'a>(time: Option<u64>) -> Element<'a, Message> {
    let Some(time) = time else {
        return space().width(36).into();
    };
    // A little lower than the top, so the small time sits on the line of the message.
    tooltip(
        container(selectable(style::clock(time)).size(12))
            .width(36)
            .padding(iced::Padding::ZERO.top(2)),
        container(text(style::full_time(time)).size(12))
            .padding(6)
            .style(container::bordered_box),
        tooltip::Position::Top,
    )
    .into()
}

/// A message's row with its actions: "…" while the pointer is over it, a right click,
/// and the actions under it once opened (Reply, React; Edit for one's own, from an
/// account; Delete where the user may); the emoji picker under it when open.
fn with_actions<'a>(
    message: &'a ChatMessage,
    line: Element<'a, Message>,
    looks: &Looks<'_>,
) -> Element<'a, Message> {
    let seq = message.seq;
    let act = Message::Moderation;
    let open = looks.menu == Some(seq);
    let mut head = row![container(line).width(Fill)].align_y(Center);
    if !message.deleted && (open || looks.hovered == Some(seq)) {
        head = head.push(
            button(text("…").size(13))
                .on_press(act(MenuMessage::MessageMenu((!open).then_some(seq))))
                .style(button::text)
                .padding([0, 6]),
        );
    }
    let head = mouse_area(head)
        .on_enter(act(MenuMessage::Hover(seq)))
        .on_exit(act(MenuMessage::Unhover(seq)))
        .on_right_press(act(MenuMessage::MessageMenu(
            (!message.deleted).then_some(seq),
        )));
    let picker = match &looks.picker {
        Some((at, offered)) if *at == seq => Some(life::picker(seq, offered.clone())),
        _ => None,
    };
    if !open && picker.is_none() {
        return head.into();
    }
    let mut block = column![head].spacing(2);
    if open {
        let life_action = |label: &'static str, message: life::Message| {
            button(text(label).size(12))
                .on_press(Message::Life(message))
                .style(button::secondary)
                .padding([2, 8])
        };
        let mut actions = row![
            life_action("Reply", life::Message::Reply(seq)),
            life_action("React", life::Message::Picker(Some(seq))),
        ]
        .spacing(6)
        .padding(iced::Padding::ZERO.left(44));
        if message.mine && looks.account {
            actions = actions.push(life_action("Edit", life::Message::StartEdit(seq)));
        }
        if (looks.deletable)(message) {
            actions = actions.push(
                button(text("Delete").size(12))
                    .on_press(act(MenuMessage::AskDelete(seq)))
                    .style(button::danger)
                    .padding([2, 8]),
            );
        }
        actions = actions.push(
            button(text("Cancel").size(12))
                .on_press(act(MenuMessage::MessageMenu(None)))
                .style(button::text)
                .padding([2, 8]),
        );
        block = block.push(actions);
    }
    if let Some(picker) = picker {
        block = block.push(container(picker).padding(iced::Padding::ZERO.left(44)));
    }
    block.into()
}

/// A message with what it became: the quote of the message it answers above it,
/// "(edited)" after it, its reactions under it.
fn message_block<'a>(
    message: &'a ChatMessage,
    timeline: &'a Timeline,
    theme: &Theme,
) -> Element<'a, Message> {
    let line = message_row(message, theme);
    let quote = message.reply_to.map(|target| {
        let words = match timeline.message(target) {
            Some((_, answered)) if answered.deleted => {
                format!("↪ {}: message deleted", answered.from)
            }
            Some((_, answered)) => {
                format!("↪ {}: {}", answered.from, life::first_line(&answered.text))
            }
            None => "↪ an earlier message".to_string(),
        };
        button(
            text(words.clone())
                .size(12)
                .style(unique_style(muted, "reply-quote")),
        )
        .on_press(Message::Life(life::Message::JumpTo(target)))
        .style(button::text)
        .padding(iced::Padding::ZERO.left(44))
    });
    let reactions = life::reactions_row(message.seq, &message.reactions, timeline.me());
    if quote.is_none() && reactions.is_none() {
        return line;
    }
    let mut block = column![].spacing(0);
    if let Some(quote) = quote {
        block = block.push(quote);
    }
    block = block.push(line);
    if let Some(reactions) = reactions {
        block = block.push(reactions);
    }
    block.into()
}

fn message_row<'a>(message: &'a ChatMessage, theme: &Theme) -> Element<'a, Message> {
    // An action reads as a sentence: "* alice waves", in italics.
    let mut name = vec![
        Piece::new(message.from.as_str())
            .font(bold())
            .color(style::name_color(&message.from, theme)),
    ];
    if message.action {
        name.insert(0, Piece::new("* ").font(italic()));
    }
    let name = Selectable::new(name).size(14);
    let body_font = |piece: Piece<'a>| {
        if message.action {
            piece.font(italic())
        } else {
            piece
        }
    };
    if message.deleted {
        let gone = "message deleted";
        let line = row![
            time_cell(Some(message.time)),
            name,
            text(gone)
                .size(14)
                .font(italic())
                .style(unique_style(muted, gone))
                .width(Fill)
        ]
        .spacing(8)
        .width(Fill);
        return container(line).padding([2, 4]).into();
    }
    let link_color = style::link_color(theme);
    let mut pieces = Vec::new();
    let mut at = 0;
    for (range, target) in &message.links {
        if range.start > at {
            pieces.push(body_font(Piece::new(&message.text[at..range.start])));
        }
        pieces.push(body_font(
            Piece::new(&message.text[range.clone()])
                .color(link_color)
                .link(target.as_str()),
        ));
        at = range.end;
    }
    if at < message.text.len() || pieces.is_empty() {
        pieces.push(body_font(Piece::new(&message.text[at..])));
    }
    let body = Selectable::new(pieces)
        .size(14)
        .width(Fill)
        .on_link(Message::OpenLink);
    let mut line = row![time_cell(Some(message.time)), name, body]
        .spacing(8)
        .width(Fill);
    if let Some(edited) = message.edited {
        line = line.push(tooltip(
            text("(edited)")
                .size(12)
                .style(unique_style(muted, "(edited)")),
            container(text(format!("Edited {}", style::full_time(edited))).size(12))
                .padding(6)
                .style(container::bordered_box),
            tooltip::Position::Top,
        ));
    }
    if message.mention {
        container(line)
            .width(Fill)
            .padding([2, 4])
            .style(|theme: &Theme| {
                let palette = theme.extended_palette();
                container::Style {
                    background: Some(palette.warning.weak.color.scale_alpha(0.45).into()),
                    border: iced::Border {
                        color: palette.warning.strong.color,
                        width: 1.0,
                        radius: 4.0.into(),
                    },
                    ..container::Style::default()
                }
            })
            .into()
    } else {
        container(line).padding([2, 4]).into()
    }
}

fn presence_row<'a>(pos: Pos, run: &'a Presence, expanded: bool) -> Element<'a, Message> {
    let summary = run.summary();
    // Room on the right for the slant of the last italic letter, which would be cut.
    let summary = container(
        text(summary.clone())
            .size(13)
            .font(italic())
            .style(unique_style(muted, &summary)),
    )
    .padding(iced::Padding::ZERO.right(3));
    let head: Element<'a, Message> = if run.changes.len() > 1 {
        button(
            row![
                text(if expanded { "▾" } else { "▸" }).size(12).style(muted),
                summary
            ]
            .spacing(6),
        )
        .padding(0)
        .style(button::text)
        .on_press(Message::TogglePresence(pos))
        .into()
    } else {
        summary.into()
    };
    let first = row![time_cell(run.changes.last().map(|c| c.time)), head]
        .spacing(8)
        .align_y(Center);
    if !expanded {
        return container(first).padding([0, 4]).into();
    }
    let mut lines = Column::new().push(first).spacing(2);
    for change in &run.changes {
        let words = change.describe();
        lines = lines.push(
            row![
                time_cell(Some(change.time)),
                text(words.clone())
                    .size(13)
                    .font(italic())
                    .style(unique_style(muted, &words))
                    .width(Fill)
            ]
            .spacing(8),
        );
    }
    container(lines).padding([0, 4]).into()
}

fn notice_row(time: Option<u64>, words: &str, tone: Tone) -> Element<'_, Message> {
    let line = text(words).size(13).font(italic()).width(Fill);
    let line = match tone {
        Tone::Info => line.style(unique_style(muted, words)),
        Tone::Problem => line.style(unique_style(text::danger, words)),
    };
    container(row![time_cell(time), line].spacing(8))
        .padding([0, 4])
        .into()
}

fn pending_row(post: &Pending, online: bool) -> Element<'_, Message> {
    let words = if post.me {
        format!("* {}", post.text)
    } else {
        post.text.clone()
    };
    let status = match (&post.failed, online) {
        (Some(why), _) => format!("not sent: {why}"),
        (None, true) => "sending…".into(),
        (None, false) => "waiting for the connection…".into(),
    };
    // The state goes under the text, not beside it: beside it, in a narrow log, the text
    // was left a column a word wide.
    let mut state = row![text(status.clone()).size(12).style(unique_style(
        if post.failed.is_some() {
            text::danger
        } else {
            muted
        },
        &status,
    ))]
    .spacing(8)
    .align_y(Center);
    if post.failed.is_some() {
        state = state.push(
            button(text("Dismiss").size(12))
                .padding([0, 4])
                .on_press(Message::Dismiss(post.id.clone()))
                .style(button::text),
        );
    }
    let line = row![
        container(text("…").size(12).style(muted)).width(36),
        column![
            text(words.clone())
                .size(14)
                .style(unique_style(muted, &words))
                .width(Fill),
            state,
        ]
        .spacing(2),
    ]
    .spacing(8);
    container(line).padding([2, 4]).into()
}

fn day_separator<'a>(label: &str) -> Element<'a, Message> {
    row![
        container(rule::horizontal(1)).width(Fill),
        text(label.to_string())
            .size(12)
            .font(bold())
            .style(unique_style(muted, label)),
        container(rule::horizontal(1)).width(Fill),
    ]
    .spacing(8)
    .align_y(Center)
    .padding([6, 0])
    .into()
}

/// The line before the first message that arrived while the room was not shown.
fn new_messages_line<'a>() -> Element<'a, Message> {
    let red = |theme: &Theme| theme.extended_palette().danger.strong.color;
    row![
        container(rule::horizontal(1).style(move |theme: &Theme| rule::Style {
            color: red(theme),
            ..rule::default(theme)
        }))
        .width(Fill),
        text("New messages")
            .size(12)
            .font(bold())
            .style(move |theme: &Theme| text::Style {
                color: Some(red(theme)),
            }),
    ]
    .spacing(8)
    .align_y(Center)
    .into()
}
