//! Keeping a scrolled list steady.
//!
//! A chat log either follows the newest line (anchored at the bottom) or stays exactly on
//! what the person is reading while lines are added below, older pages are inserted above,
//! or the window is resized. [`keep_in_view`] wraps the log's scrollable and does both:
//! the log's [`Rows`] say where each row is, and while reading, the row at the top of the
//! viewport is put back at the same height after every change of layout.

use std::any::Any;
use std::collections::HashMap;

use iced::advanced::layout::{self, Layout};
use iced::advanced::renderer;
use iced::advanced::widget::operation::{Outcome, Scrollable};
use iced::advanced::widget::{Operation, Tree, tree};
use iced::advanced::{Clipboard, Shell, Widget, mouse, overlay};
use iced::widget::Id;
use iced::widget::scrollable::AbsoluteOffset;
use iced::{Element, Event, Length, Padding, Rectangle, Renderer, Size, Task, Theme, Vector};

/// Identifies a row of a kept list across views.
pub type RowKey = (i64, u8);

/// How the list is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// At the newest line, following what arrives (the scrollable is anchored at the
    /// bottom).
    Follow,
    /// Reading back: the line at the top stays put (the scrollable is anchored at the
    /// top).
    Read,
}

/// Keeps the scrollable `content` (whose id is `id`) steady in `mode`. `list` names what
/// is shown (one room's log or another's): the place in each is remembered apart, and
/// comes back when that list is shown again.
pub fn keep_in_view<'a, Message: 'a>(
    content: impl Into<Element<'a, Message>>,
    id: Id,
    mode: Mode,
    list: u64,
) -> Element<'a, Message> {
    Element::new(Keep {
        content: content.into(),
        id,
        mode,
        list,
    })
}

/// The rows of a kept list: a column whose rows keep their state (laid-out text, a
/// selection) by key, wherever the window of rendered rows moves, and which tells
/// [`keep_in_view`] where each row is.
pub struct Rows<'a, Message> {
    keys: Vec<RowKey>,
    /// Whether the row may be held in place (controls above the list are not).
    anchors: Vec<bool>,
    children: Vec<Element<'a, Message>>,
    spacing: f32,
    padding: Padding,
}

/// What a row reports to operations.
struct Tag(RowKey);

/// An empty list of rows.
pub fn rows<'a, Message>() -> Rows<'a, Message> {
    Rows {
        keys: Vec::new(),
        anchors: Vec::new(),
        children: Vec::new(),
        spacing: 0.0,
        padding: Padding::ZERO,
    }
}

impl<'a, Message> Rows<'a, Message> {
    /// Adds a row that the list holds in place while reading.
    #[must_use]
    pub fn push(self, key: RowKey, row: impl Into<Element<'a, Message>>) -> Self {
        self.with(key, true, row.into())
    }

    /// Adds a row that is never held in place (a control, not something read).
    #[must_use]
    pub fn push_control(self, key: RowKey, row: impl Into<Element<'a, Message>>) -> Self {
        self.with(key, false, row.into())
    }

    fn with(mut self, key: RowKey, anchor: bool, row: Element<'a, Message>) -> Self {
        self.keys.push(key);
        self.anchors.push(anchor);
        self.children.push(row);
        self
    }

    /// Space between rows.
    #[must_use]
    pub fn spacing(mut self, spacing: impl Into<iced::Pixels>) -> Self {
        self.spacing = spacing.into().0;
        self
    }

    /// Space around the rows.
    #[must_use]
    pub fn padding(mut self, padding: impl Into<Padding>) -> Self {
        self.padding = padding.into();
        self
    }
}

impl<Message> Widget<Message, Theme, Renderer> for Rows<'_, Message> {
    fn tag(&self) -> tree::Tag {
        tree::Tag::of::<Vec<RowKey>>()
    }

    fn state(&self) -> tree::State {
        tree::State::new(self.keys.clone())
    }

    fn children(&self) -> Vec<Tree> {
        self.children.iter().map(Tree::new).collect()
    }

    /// Matches rows by key, not by place: a row keeps its state however the rows around
    /// it change.
    fn diff(&self, tree: &mut Tree) {
        let keys = tree.state.downcast_mut::<Vec<RowKey>>();
        let mut old: HashMap<RowKey, Tree> = keys.drain(..).zip(tree.children.drain(..)).collect();
        for (key, child) in self.keys.iter().zip(&self.children) {
            let subtree = match old.remove(key) {
                Some(mut subtree) => {
                    subtree.diff(child);
                    subtree
                }
                None => Tree::new(child),
            };
            tree.children.push(subtree);
        }
        keys.clone_from(&self.keys);
    }

    fn size(&self) -> Size<Length> {
        Size::new(Length::Fill, Length::Shrink)
    }

    fn layout(
        &mut self,
        tree: &mut Tree,
        renderer: &Renderer,
        limits: &layout::Limits,
    ) -> layout::Node {
        layout::flex::resolve(
            layout::flex::Axis::Vertical,
            renderer,
            limits,
            Length::Fill,
            Length::Shrink,
            self.padding,
            self.spacing,
            iced::Alignment::Start,
            &mut self.children,
            &mut tree.children,
        )
    }

    fn draw(
        &self,
        tree: &Tree,
        renderer: &mut Renderer,
        theme: &Theme,
        style: &renderer::Style,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        viewport: &Rectangle,
    ) {
        for ((child, state), layout) in self
            .children
            .iter()
            .zip(&tree.children)
            .zip(layout.children())
            .filter(|(_, layout)| layout.bounds().intersects(viewport))
        {
            child
                .as_widget()
                .draw(state, renderer, theme, style, layout, cursor, viewport);
        }
    }

    fn operate(
        &mut self,
        tree: &mut Tree,
        layout: Layout<'_>,
        renderer: &Renderer,
        operation: &mut dyn Operation,
    ) {
        operation.container(None, layout.bounds());
        operation.traverse(&mut |operation| {
            for ((((child, state), layout), key), anchor) in self
                .children
                .iter_mut()
                .zip(&mut tree.children)
                .zip(layout.children())
                .zip(&self.keys)
                .zip(&self.anchors)
            {
                if *anchor {
                    operation.custom(None, layout.bounds(), &mut Tag(*key));
                }
                child
                    .as_widget_mut()
                    .operate(state, layout, renderer, operation);
            }
        });
    }

    fn update(
        &mut self,
        tree: &mut Tree,
        event: &Event,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        renderer: &Renderer,
        clipboard: &mut dyn Clipboard,
        shell: &mut Shell<'_, Message>,
        viewport: &Rectangle,
    ) {
        for ((child, state), layout) in self
            .children
            .iter_mut()
            .zip(&mut tree.children)
            .zip(layout.children())
        {
            child.as_widget_mut().update(
                state, event, layout, cursor, renderer, clipboard, shell, viewport,
            );
        }
    }

    fn mouse_interaction(
        &self,
        tree: &Tree,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        viewport: &Rectangle,
        renderer: &Renderer,
    ) -> mouse::Interaction {
        self.children
            .iter()
            .zip(&tree.children)
            .zip(layout.children())
            .map(|((child, state), layout)| {
                child
                    .as_widget()
                    .mouse_interaction(state, layout, cursor, viewport, renderer)
            })
            .max()
            .unwrap_or_default()
    }

    fn overlay<'b>(
        &'b mut self,
        tree: &'b mut Tree,
        layout: Layout<'b>,
        renderer: &Renderer,
        viewport: &Rectangle,
        translation: Vector,
    ) -> Option<overlay::Element<'b, Message, Theme, Renderer>> {
        overlay::from_children(
            &mut self.children,
            tree,
            layout,
            renderer,
            viewport,
            translation,
        )
    }
}

impl<'a, Message: 'a> From<Rows<'a, Message>> for Element<'a, Message> {
    fn from(rows: Rows<'a, Message>) -> Self {
        Element::new(rows)
    }
}

struct Keep<'a, Message> {
    content: Element<'a, Message>,
    id: Id,
    mode: Mode,
    list: u64,
}

/// The row at the top of the viewport and how far below the viewport's top edge it
/// starts (negative when it is cut off).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Anchor {
    key: RowKey,
    offset: f32,
}

#[derive(Debug, Default)]
struct State {
    anchor: Option<Anchor>,
    /// The mode of the last view, to notice a switch.
    following: Option<bool>,
    /// The list of the last view.
    list: Option<u64>,
    /// Where the other lists were read when they were left.
    others: HashMap<u64, Anchor>,
}

/// Where the scrollable stands and where its rows are.
#[derive(Debug, Default)]
struct Probe {
    id: Option<Id>,
    found: bool,
    inside: bool,
    viewport: Rectangle,
    content: Rectangle,
    translation: Vector,
    rows: Vec<(RowKey, Rectangle)>,
}

impl Operation for Probe {
    fn traverse(&mut self, operate: &mut dyn FnMut(&mut dyn Operation)) {
        operate(self);
    }

    fn scrollable(
        &mut self,
        id: Option<&Id>,
        bounds: Rectangle,
        content_bounds: Rectangle,
        translation: Vector,
        _state: &mut dyn Scrollable,
    ) {
        if !self.found && id == self.id.as_ref() {
            self.found = true;
            self.inside = true;
            self.viewport = bounds;
            self.content = content_bounds;
            self.translation = translation;
        } else {
            self.inside = false;
        }
    }

    fn custom(&mut self, _id: Option<&Id>, bounds: Rectangle, state: &mut dyn Any) {
        if self.inside
            && let Some(Tag(key)) = state.downcast_ref::<Tag>()
        {
            self.rows.push((*key, bounds));
        }
    }
}

impl Probe {
    /// The top of the viewport, in content coordinates.
    fn top(&self) -> f32 {
        self.content.y + self.translation.y
    }

    fn anchor(&self) -> Option<Anchor> {
        let top = self.top();
        self.rows
            .iter()
            .find(|(_, bounds)| bounds.y + bounds.height > top)
            .map(|(key, bounds)| Anchor {
                key: *key,
                offset: bounds.y - top,
            })
    }

    fn max_offset(&self) -> f32 {
        (self.content.height - self.viewport.height).max(0.0)
    }
}

/// Sets the scrollable's offset (as its anchor counts it).
struct SetOffset {
    id: Id,
    y: f32,
}

impl Operation for SetOffset {
    fn traverse(&mut self, operate: &mut dyn FnMut(&mut dyn Operation)) {
        operate(self);
    }

    fn scrollable(
        &mut self,
        id: Option<&Id>,
        _bounds: Rectangle,
        _content_bounds: Rectangle,
        _translation: Vector,
        state: &mut dyn Scrollable,
    ) {
        if id == Some(&self.id) {
            state.scroll_to(AbsoluteOffset {
                x: None,
                y: Some(self.y),
            });
        }
    }
}

impl<Message> Keep<'_, Message> {
    fn probe(&mut self, tree: &mut Tree, layout: Layout<'_>, renderer: &Renderer) -> Probe {
        let mut probe = Probe {
            id: Some(self.id.clone()),
            ..Probe::default()
        };
        self.content
            .as_widget_mut()
            .operate(&mut tree.children[0], layout, renderer, &mut probe);
        probe
    }

    fn set_offset(&mut self, tree: &mut Tree, layout: Layout<'_>, renderer: &Renderer, y: f32) {
        let mut set = SetOffset {
            id: self.id.clone(),
            y,
        };
        self.content
            .as_widget_mut()
            .operate(&mut tree.children[0], layout, renderer, &mut set);
    }

    /// Puts the list where it should be before anything else happens to it.
    fn settle(&mut self, tree: &mut Tree, layout: Layout<'_>, renderer: &Renderer) {
        let following = self.mode == Mode::Follow;
        let state = tree.state.downcast_mut::<State>();
        let mut switched = state.following != Some(following);
        state.following = Some(following);
        if state.list != Some(self.list) {
            // Another list: put this one where it was read last.
            if let (Some(old), Some(anchor)) = (state.list, state.anchor) {
                state.others.insert(old, anchor);
            }
            state.anchor = state.others.remove(&self.list);
            state.list = Some(self.list);
            switched = true;
        }
        let anchor = state.anchor;
        match self.mode {
            Mode::Follow => {
                if switched {
                    // Anchored at the bottom now: offset 0 is the newest line.
                    self.set_offset(tree, layout, renderer, 0.0);
                }
            }
            Mode::Read => {
                let Some(anchor) = anchor else { return };
                let probe = self.probe(tree, layout, renderer);
                let Some((_, row)) = probe.rows.iter().find(|(key, _)| *key == anchor.key) else {
                    return;
                };
                let now = row.y - probe.top();
                if switched || (now - anchor.offset).abs() > 0.5 {
                    let y =
                        (row.y - probe.content.y - anchor.offset).clamp(0.0, probe.max_offset());
                    self.set_offset(tree, layout, renderer, y);
                }
            }
        }
    }

    /// Remembers what is at the top of the viewport now.
    fn remember(&mut self, tree: &mut Tree, layout: Layout<'_>, renderer: &Renderer) {
        let probe = self.probe(tree, layout, renderer);
        let state = tree.state.downcast_mut::<State>();
        if let Some(anchor) = probe.anchor() {
            state.anchor = Some(anchor);
        }
    }
}

/// Offered to operations passing through a kept list: the scroll operations of this
/// module set it, so the list remembers where they left it.
struct Moved(bool);

impl<Message> Widget<Message, Theme, Renderer> for Keep<'_, Message> {
    fn tag(&self) -> tree::Tag {
        tree::Tag::of::<State>()
    }

    fn state(&self) -> tree::State {
        tree::State::new(State::default())
    }

    fn size(&self) -> Size<Length> {
        self.content.as_widget().size()
    }

    fn size_hint(&self) -> Size<Length> {
        self.content.as_widget().size_hint()
    }

    fn children(&self) -> Vec<Tree> {
        vec![Tree::new(&self.content)]
    }

    fn diff(&self, tree: &mut Tree) {
        tree.diff_children(std::slice::from_ref(&self.content));
    }

    fn layout(
        &mut self,
        tree: &mut Tree,
        renderer: &Renderer,
        limits: &layout::Limits,
    ) -> layout::Node {
        self.content
            .as_widget_mut()
            .layout(&mut tree.children[0], renderer, limits)
    }

    fn draw(
        &self,
        tree: &Tree,
        renderer: &mut Renderer,
        theme: &Theme,
        style: &renderer::Style,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        viewport: &Rectangle,
    ) {
        self.content.as_widget().draw(
            &tree.children[0],
            renderer,
            theme,
            style,
            layout,
            cursor,
            viewport,
        );
    }

    fn operate(
        &mut self,
        tree: &mut Tree,
        layout: Layout<'_>,
        renderer: &Renderer,
        operation: &mut dyn Operation,
    ) {
        self.content
            .as_widget_mut()
            .operate(&mut tree.children[0], layout, renderer, operation);
        let mut moved = Moved(false);
        operation.custom(Some(&self.id), layout.bounds(), &mut moved);
        if moved.0 {
            self.remember(tree, layout, renderer);
        }
    }

    fn update(
        &mut self,
        tree: &mut Tree,
        event: &Event,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        renderer: &Renderer,
        clipboard: &mut dyn Clipboard,
        shell: &mut Shell<'_, Message>,
        viewport: &Rectangle,
    ) {
        self.settle(tree, layout, renderer);
        self.content.as_widget_mut().update(
            &mut tree.children[0],
            event,
            layout,
            cursor,
            renderer,
            clipboard,
            shell,
            viewport,
        );
        self.remember(tree, layout, renderer);
    }

    fn mouse_interaction(
        &self,
        tree: &Tree,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        viewport: &Rectangle,
        renderer: &Renderer,
    ) -> mouse::Interaction {
        self.content.as_widget().mouse_interaction(
            &tree.children[0],
            layout,
            cursor,
            viewport,
            renderer,
        )
    }

    fn overlay<'b>(
        &'b mut self,
        tree: &'b mut Tree,
        layout: Layout<'b>,
        renderer: &Renderer,
        viewport: &Rectangle,
        translation: Vector,
    ) -> Option<overlay::Element<'b, Message, Theme, Renderer>> {
        self.content.as_widget_mut().overlay(
            &mut tree.children[0],
            layout,
            renderer,
            viewport,
            translation,
        )
    }
}

/// Scrolls the kept list `id` by `pages` viewports (negative: up), or to one end, in a
/// way the list remembers.
pub fn scroll<T: Send + 'static>(id: Id, to: Scroll, mode: Mode) -> Task<T> {
    struct ScrollOp {
        id: Id,
        to: Scroll,
        mode: Mode,
    }

    impl<T> Operation<T> for ScrollOp {
        fn traverse(&mut self, operate: &mut dyn FnMut(&mut dyn Operation<T>)) {
            operate(self);
        }

        fn scrollable(
            &mut self,
            id: Option<&Id>,
            bounds: Rectangle,
            content_bounds: Rectangle,
            translation: Vector,
            state: &mut dyn Scrollable,
        ) {
            if id != Some(&self.id) {
                return;
            }
            let max = (content_bounds.height - bounds.height).max(0.0);
            // Where the top of the viewport should go, in content coordinates.
            let top = match self.to {
                Scroll::Pages(pages) => {
                    translation.y + pages * (bounds.height - 40.0).max(bounds.height / 2.0)
                }
                Scroll::Top => 0.0,
                Scroll::Bottom => max,
                Scroll::To(top) => top,
            }
            .clamp(0.0, max);
            let offset = match self.mode {
                Mode::Read => top,
                Mode::Follow => max - top,
            };
            state.scroll_to(AbsoluteOffset {
                x: None,
                y: Some(offset),
            });
        }

        fn custom(&mut self, id: Option<&Id>, _bounds: Rectangle, state: &mut dyn Any) {
            if id == Some(&self.id)
                && let Some(moved) = state.downcast_mut::<Moved>()
            {
                moved.0 = true;
            }
        }

        fn finish(&self) -> Outcome<T> {
            Outcome::None
        }
    }

    iced::advanced::widget::operate(ScrollOp { id, to, mode })
}

/// Where [`scroll`] goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scroll {
    /// This many viewports down (negative: up).
    Pages(f32),
    /// To the top of what is rendered.
    Top,
    /// To the bottom of what is rendered.
    Bottom,
    /// The top of the viewport this far down the content, in pixels.
    To(f32),
}
