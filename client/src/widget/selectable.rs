//! Text that can be selected with the mouse, across many such texts at once, and whose
//! links can be clicked.
//!
//! Every [`Selectable`] in a view sees the same drag (press, moves, release) and works out
//! which part of itself lies between its two ends, in reading order; so a drag from one
//! message into the next selects the end of the first and the start of the second, as in
//! a browser. [`copy_selection`] gathers what is selected everywhere, in reading order.

use std::any::Any;
use std::borrow::Cow;

use iced::advanced::graphics::text::cosmic_text;
use iced::advanced::layout::{self, Layout};
use iced::advanced::renderer::{self, Quad};
use iced::advanced::text::{self, Paragraph as _, Span};
use iced::advanced::widget::{Operation, Tree, tree};
use iced::advanced::{Clipboard, Shell, Widget, mouse};
use iced::{
    Color, Element, Event, Font, Length, Pixels, Point, Rectangle, Renderer, Size, Task, Theme,
};

/// A piece of a [`Selectable`]: some text, perhaps in its own colour or font, perhaps a
/// link.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece<'a> {
    text: Cow<'a, str>,
    color: Option<Color>,
    font: Option<Font>,
    link: Option<&'a str>,
}

impl<'a> Piece<'a> {
    /// Plain text.
    pub fn new(text: impl Into<Cow<'a, str>>) -> Self {
        Self {
            text: text.into(),
            color: None,
            font: None,
            link: None,
        }
    }

    /// In this colour.
    #[must_use]
    pub fn color(mut self, color: Color) -> Self {
        self.color = Some(color);
        self
    }

    /// In this font.
    #[must_use]
    pub fn font(mut self, font: Font) -> Self {
        self.font = Some(font);
        self
    }

    /// A link that opens `target`.
    #[must_use]
    pub fn link(mut self, target: &'a str) -> Self {
        self.link = Some(target);
        self
    }
}

/// Selectable text made of [`Piece`]s.
pub struct Selectable<'a, Message> {
    pieces: Vec<Piece<'a>>,
    size: Option<Pixels>,
    font: Option<Font>,
    color: Option<Color>,
    width: Length,
    on_link: Option<Box<dyn Fn(String) -> Message + 'a>>,
}

/// Selectable text of one piece.
pub fn selectable<'a, Message>(text: impl Into<Cow<'a, str>>) -> Selectable<'a, Message> {
    Selectable::new(vec![Piece::new(text)])
}

impl<'a, Message> Selectable<'a, Message> {
    /// Selectable text made of `pieces`.
    pub fn new(pieces: Vec<Piece<'a>>) -> Self {
        Self {
            pieces,
            size: None,
            font: None,
            color: None,
            width: Length::Shrink,
            on_link: None,
        }
    }

    /// The text size.
    #[must_use]
    pub fn size(mut self, size: impl Into<Pixels>) -> Self {
        self.size = Some(size.into());
        self
    }

    /// The font of pieces that name none.
    #[must_use]
    pub fn font(mut self, font: Font) -> Self {
        self.font = Some(font);
        self
    }

    /// The colour of pieces that name none.
    #[must_use]
    pub fn color(mut self, color: Color) -> Self {
        self.color = Some(color);
        self
    }

    /// The width.
    #[must_use]
    pub fn width(mut self, width: impl Into<Length>) -> Self {
        self.width = width.into();
        self
    }

    /// What a click on a link produces.
    #[must_use]
    pub fn on_link(mut self, on_link: impl Fn(String) -> Message + 'a) -> Self {
        self.on_link = Some(Box::new(on_link));
        self
    }

    fn spans(&self) -> Vec<Span<'_, usize, Font>> {
        let mut link = 0;
        self.pieces
            .iter()
            .map(|piece| {
                let mut span = text::Span::new(piece.text.as_ref());
                span.color = piece.color.or(self.color);
                span.font = piece.font;
                if piece.link.is_some() {
                    span.link = Some(link);
                    span.underline = true;
                    link += 1;
                }
                span
            })
            .collect()
    }

    fn full_text(&self) -> String {
        self.pieces.iter().map(|p| p.text.as_ref()).collect()
    }

    fn link_target(&self, index: usize) -> Option<&'a str> {
        self.pieces.iter().filter_map(|p| p.link).nth(index)
    }
}

/// What a press and a drag have marked, in the coordinates of the content the widgets
/// share.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Drag {
    from: Point,
    to: Point,
}

impl Drag {
    /// The ends in reading order: top to bottom, then left to right.
    fn ordered(self) -> (Point, Point) {
        let (a, b) = (self.from, self.to);
        if (a.y, a.x) <= (b.y, b.x) {
            (a, b)
        } else {
            (b, a)
        }
    }
}

struct State {
    paragraph: <Renderer as text::Renderer>::Paragraph,
    spans: Vec<Span<'static, usize, Font>>,
    drag: Option<Drag>,
    dragging: bool,
    /// The selected part: from and to, as cosmic-text cursors.
    selection: Option<(cosmic_text::Cursor, cosmic_text::Cursor)>,
    hovered_link: Option<usize>,
    pressed_link: Option<(usize, Point)>,
}

impl<Message> Widget<Message, Theme, Renderer> for Selectable<'_, Message> {
    fn tag(&self) -> tree::Tag {
        tree::Tag::of::<State>()
    }

    fn state(&self) -> tree::State {
        tree::State::new(State {
            paragraph: <Renderer as text::Renderer>::Paragraph::default(),
            spans: Vec::new(),
            drag: None,
            dragging: false,
            selection: None,
            hovered_link: None,
            pressed_link: None,
        })
    }

    fn size(&self) -> Size<Length> {
        Size::new(self.width, Length::Shrink)
    }

    fn layout(
        &mut self,
        tree: &mut Tree,
        renderer: &Renderer,
        limits: &layout::Limits,
    ) -> layout::Node {
        use iced::advanced::text::Renderer as _;
        let state = tree.state.downcast_mut::<State>();
        let spans = self.spans();
        layout::sized(limits, self.width, Length::Shrink, |limits| {
            let bounds = limits.max();
            let text = text::Text {
                content: spans.as_slice(),
                bounds,
                size: self.size.unwrap_or_else(|| renderer.default_size()),
                line_height: text::LineHeight::default(),
                font: self.font.unwrap_or_else(|| renderer.default_font()),
                align_x: text::Alignment::Default,
                align_y: iced::alignment::Vertical::Top,
                shaping: text::Shaping::Advanced,
                // A long word breaks instead of running out of the line.
                wrapping: text::Wrapping::WordOrGlyph,
            };
            if state.spans == spans {
                match state.paragraph.compare(text.with_content(())) {
                    text::Difference::None => {}
                    text::Difference::Bounds => state.paragraph.resize(bounds),
                    text::Difference::Shape => {
                        state.paragraph = text::Paragraph::with_spans(text);
                    }
                }
            } else {
                state.paragraph = text::Paragraph::with_spans(text);
                state.spans = spans.iter().cloned().map(Span::to_static).collect();
                state.selection = None;
            }
            state.paragraph.min_bounds()
        })
    }

    fn update(
        &mut self,
        tree: &mut Tree,
        event: &Event,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        _renderer: &Renderer,
        _clipboard: &mut dyn Clipboard,
        shell: &mut Shell<'_, Message>,
        _viewport: &Rectangle,
    ) {
        let state = tree.state.downcast_mut::<State>();
        let bounds = layout.bounds();
        let hovered = cursor
            .position_in(bounds)
            .and_then(|at| state.paragraph.hit_span(at))
            .filter(|span| state.spans.get(*span).is_some_and(|s| s.link.is_some()))
            .and_then(|span| state.spans[span].link);
        if hovered != state.hovered_link {
            state.hovered_link = hovered;
            shell.request_redraw();
        }
        match event {
            Event::Mouse(mouse::Event::ButtonPressed(mouse::Button::Left)) => {
                let had = state.selection.take().is_some();
                state.pressed_link = None;
                if let Some(at) = cursor.position() {
                    state.drag = Some(Drag { from: at, to: at });
                    state.dragging = true;
                    if let Some(link) = state.hovered_link {
                        state.pressed_link = Some((link, at));
                    }
                } else {
                    state.drag = None;
                    state.dragging = false;
                }
                if had {
                    shell.request_redraw();
                }
            }
            Event::Mouse(mouse::Event::CursorMoved { .. }) if state.dragging => {
                // Outside the list the cursor only levitates; the drag still follows it.
                if let (Some(drag), Some(at)) = (&mut state.drag, cursor.land().position()) {
                    drag.to = at;
                    let selection = select(&state.paragraph, bounds, *drag);
                    if selection != state.selection {
                        state.selection = selection;
                        shell.request_redraw();
                    }
                }
            }
            Event::Mouse(mouse::Event::ButtonReleased(mouse::Button::Left)) => {
                state.dragging = false;
                if let (Some((link, at)), Some(now)) =
                    (state.pressed_link.take(), cursor.position())
                    && state.hovered_link == Some(link)
                    && at.distance(now) < 4.0
                    && let (Some(on_link), Some(target)) = (&self.on_link, self.link_target(link))
                {
                    shell.publish(on_link(target.to_string()));
                }
            }
            _ => {}
        }
    }

    fn draw(
        &self,
        tree: &Tree,
        renderer: &mut Renderer,
        theme: &Theme,
        style: &renderer::Style,
        layout: Layout<'_>,
        _cursor: mouse::Cursor,
        viewport: &Rectangle,
    ) {
        use iced::advanced::Renderer as _;
        use iced::advanced::text::Renderer as _;
        let bounds = layout.bounds();
        if !bounds.intersects(viewport) {
            return;
        }
        let state = tree.state.downcast_ref::<State>();
        if let Some((from, to)) = state.selection {
            let color = theme.extended_palette().primary.weak.color.scale_alpha(0.6);
            for run in state.paragraph.buffer().layout_runs() {
                if let Some((x, width)) = run.highlight(from, to) {
                    renderer.fill_quad(
                        Quad {
                            bounds: Rectangle::new(
                                Point::new(bounds.x + x, bounds.y + run.line_top),
                                Size::new(width.max(1.0), run.line_height),
                            ),
                            ..Quad::default()
                        },
                        color,
                    );
                }
            }
        }
        if let Some(link) = state.hovered_link {
            // A hovered link gets a stronger underline, so it reads as clickable.
            let index = state.spans.iter().position(|s| s.link == Some(link));
            if let Some(index) = index {
                let color = state.spans[index].color.unwrap_or(style.text_color);
                for region in state.paragraph.span_bounds(index) {
                    renderer.fill_quad(
                        Quad {
                            bounds: Rectangle::new(
                                Point::new(
                                    bounds.x + region.x,
                                    bounds.y + region.y + region.height - 2.0,
                                ),
                                Size::new(region.width, 2.0),
                            ),
                            ..Quad::default()
                        },
                        color,
                    );
                }
            }
        }
        let text: String = state.spans.iter().map(|span| span.text.as_ref()).collect();
        renderer.fill_paragraph(
            &state.paragraph,
            bounds.position(),
            super::unique(self.color.unwrap_or(style.text_color), &text),
            *viewport,
        );
    }

    fn mouse_interaction(
        &self,
        tree: &Tree,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        _viewport: &Rectangle,
        _renderer: &Renderer,
    ) -> mouse::Interaction {
        let state = tree.state.downcast_ref::<State>();
        if state.hovered_link.is_some() {
            mouse::Interaction::Pointer
        } else if cursor.is_over(layout.bounds()) {
            mouse::Interaction::Text
        } else {
            mouse::Interaction::None
        }
    }

    fn operate(
        &mut self,
        tree: &mut Tree,
        layout: Layout<'_>,
        _renderer: &Renderer,
        operation: &mut dyn Operation,
    ) {
        let state = tree.state.downcast_ref::<State>();
        let text = self.full_text();
        if let Some((from, to)) = state.selection {
            let mut selected = Selected(selected_text(&state.paragraph, from, to));
            operation.custom(None, layout.bounds(), &mut selected);
        }
        operation.text(None, layout.bounds(), &text);
    }
}

/// The part of `paragraph` (laid out in `bounds`) between the two ends of `drag`.
fn select(
    paragraph: &<Renderer as text::Renderer>::Paragraph,
    bounds: Rectangle,
    drag: Drag,
) -> Option<(cosmic_text::Cursor, cosmic_text::Cursor)> {
    let (start, end) = drag.ordered();
    if end.y < bounds.y || start.y > bounds.y + bounds.height {
        return None;
    }
    let buffer = paragraph.buffer();
    let hit = |p: Point| {
        let x = (p.x - bounds.x).clamp(0.0, bounds.width);
        let y = (p.y - bounds.y).clamp(0.0, (bounds.height - 1.0).max(0.0));
        buffer.hit(x, y)
    };
    let first = cosmic_text::Cursor::new(0, 0);
    let last = buffer.lines.last().map_or(first, |line| {
        cosmic_text::Cursor::new(buffer.lines.len() - 1, line.text().len())
    });
    let from = if start.y < bounds.y {
        Some(first)
    } else {
        hit(start)
    }?;
    let to = if end.y > bounds.y + bounds.height {
        Some(last)
    } else {
        hit(end)
    }?;
    ((from.line, from.index) < (to.line, to.index)).then_some((from, to))
}

/// The text between two cursors of a paragraph, lines joined with `\n`.
fn selected_text(
    paragraph: &<Renderer as text::Renderer>::Paragraph,
    from: cosmic_text::Cursor,
    to: cosmic_text::Cursor,
) -> String {
    let lines = &paragraph.buffer().lines;
    let mut out = String::new();
    let last = to.line.min(lines.len().saturating_sub(1));
    for (line, buffer_line) in lines.iter().enumerate().take(last + 1).skip(from.line) {
        let text = buffer_line.text();
        let start = if line == from.line { from.index } else { 0 };
        let end = if line == to.line {
            to.index
        } else {
            text.len()
        };
        if line > from.line {
            out.push('\n');
        }
        out.push_str(
            text.get(start.min(end)..end.min(text.len()))
                .unwrap_or_default(),
        );
    }
    out
}

/// The selected text of one [`Selectable`], as an operation finds it.
struct Selected(String);

/// Gathers what is selected in every [`Selectable`] of the view, in reading order: pieces
/// on one row joined with a space, rows with a newline. `None` when nothing is selected.
pub fn copy_selection() -> Task<Option<String>> {
    struct Gather(Vec<(Rectangle, String)>);

    impl Operation<Option<String>> for Gather {
        fn traverse(&mut self, operate: &mut dyn FnMut(&mut dyn Operation<Option<String>>)) {
            operate(self);
        }

        fn custom(
            &mut self,
            _id: Option<&iced::widget::Id>,
            bounds: Rectangle,
            state: &mut dyn Any,
        ) {
            if let Some(Selected(text)) = state.downcast_ref::<Selected>() {
                self.0.push((bounds, text.clone()));
            }
        }

        fn finish(&self) -> iced::advanced::widget::operation::Outcome<Option<String>> {
            iced::advanced::widget::operation::Outcome::Some(in_reading_order(self.0.clone()))
        }
    }

    iced::advanced::widget::operate(Gather(Vec::new()))
}

/// Joins selected pieces in reading order: pieces whose lines overlap form a row, read
/// left to right and joined with a space; rows are joined with a newline.
fn in_reading_order(mut pieces: Vec<(Rectangle, String)>) -> Option<String> {
    pieces.sort_by(|(a, _), (b, _)| a.y.total_cmp(&b.y));
    let mut rows: Vec<(f32, Vec<(Rectangle, String)>)> = Vec::new();
    for (bounds, text) in pieces {
        match rows.last_mut() {
            // Overlapping a row by more than a pixel: on that row.
            Some((bottom, row)) if bounds.y < *bottom - 1.0 => {
                *bottom = bottom.max(bounds.y + bounds.height);
                row.push((bounds, text));
            }
            _ => rows.push((bounds.y + bounds.height, vec![(bounds, text)])),
        }
    }
    let text = rows
        .into_iter()
        .map(|(_, mut row)| {
            row.sort_by(|(a, _), (b, _)| a.x.total_cmp(&b.x));
            row.into_iter()
                .map(|(_, t)| t)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    (!text.is_empty()).then_some(text)
}

impl<'a, Message: 'a> From<Selectable<'a, Message>> for Element<'a, Message> {
    fn from(text: Selectable<'a, Message>) -> Self {
        Element::new(text)
    }
}
