//! One line of text that ends in "…" when it does not fit, instead of being cut.

use iced::advanced::layout::{self, Layout};
use iced::advanced::renderer;
use iced::advanced::text::{self, Paragraph as _};
use iced::advanced::widget::{Operation, Tree, tree};
use iced::advanced::{Widget, mouse};
use iced::{Color, Element, Font, Length, Pixels, Rectangle, Renderer, Size, Theme};

/// A line of `text` that shortens itself with "…" to fit its width.
pub struct Ellipsis<'a> {
    text: &'a str,
    size: Option<Pixels>,
    font: Option<Font>,
    color: Option<Color>,
}

/// One line of `text`, shortened with "…" when it does not fit.
pub fn ellipsis(text: &str) -> Ellipsis<'_> {
    Ellipsis {
        text,
        size: None,
        font: None,
        color: None,
    }
}

impl Ellipsis<'_> {
    /// The text size.
    #[must_use]
    pub fn size(mut self, size: impl Into<Pixels>) -> Self {
        self.size = Some(size.into());
        self
    }

    /// The font.
    #[must_use]
    pub fn font(mut self, font: Font) -> Self {
        self.font = Some(font);
        self
    }

    /// The colour.
    #[must_use]
    pub fn color(mut self, color: Color) -> Self {
        self.color = Some(color);
        self
    }
}

#[derive(Default)]
struct State {
    /// What was laid out: the text, the width, size and font it had, and what is shown.
    laid_out: Option<(String, f32, Pixels, Font, String)>,
    paragraph: <Renderer as text::Renderer>::Paragraph,
}

impl<Message> Widget<Message, Theme, Renderer> for Ellipsis<'_> {
    fn tag(&self) -> tree::Tag {
        tree::Tag::of::<State>()
    }

    fn state(&self) -> tree::State {
        tree::State::new(State::default())
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
        use iced::advanced::text::Renderer as _;
        let state = tree.state.downcast_mut::<State>();
        let width = limits.max().width;
        let size = self.size.unwrap_or_else(|| renderer.default_size());
        let font = self.font.unwrap_or_else(|| renderer.default_font());
        let shape = |content: &str| {
            <Renderer as text::Renderer>::Paragraph::with_text(text::Text {
                content,
                bounds: Size::new(f32::INFINITY, f32::INFINITY),
                size,
                line_height: text::LineHeight::default(),
                font,
                align_x: text::Alignment::Default,
                align_y: iced::alignment::Vertical::Top,
                shaping: text::Shaping::Advanced,
                wrapping: text::Wrapping::None,
            })
        };
        let fresh = !matches!(&state.laid_out, Some((t, w, s, f, _))
            if t == self.text && (*w - width).abs() < 0.5 && *s == size && *f == font);
        if fresh {
            let mut shown = self.text.to_string();
            let mut paragraph = shape(&shown);
            if paragraph.min_width() > width {
                // Drop characters from the end until the rest and "…" fit.
                let chars: Vec<char> = self.text.chars().collect();
                for keep in (0..chars.len()).rev() {
                    shown = chars[..keep]
                        .iter()
                        .collect::<String>()
                        .trim_end()
                        .to_string()
                        + "…";
                    paragraph = shape(&shown);
                    if paragraph.min_width() <= width {
                        break;
                    }
                }
            }
            state.paragraph = paragraph;
            state.laid_out = Some((self.text.to_string(), width, size, font, shown));
        }
        let height = state.paragraph.min_height();
        layout::Node::new(Size::new(width, height))
    }

    fn draw(
        &self,
        tree: &Tree,
        renderer: &mut Renderer,
        _theme: &Theme,
        style: &renderer::Style,
        layout: Layout<'_>,
        _cursor: mouse::Cursor,
        viewport: &Rectangle,
    ) {
        use iced::advanced::text::Renderer as _;
        let state = tree.state.downcast_ref::<State>();
        let bounds = layout.bounds();
        renderer.fill_paragraph(
            &state.paragraph,
            bounds.position(),
            super::unique(self.color.unwrap_or(style.text_color), self.text),
            bounds.intersection(viewport).unwrap_or(bounds),
        );
    }

    fn operate(
        &mut self,
        tree: &mut Tree,
        layout: Layout<'_>,
        _renderer: &Renderer,
        operation: &mut dyn Operation,
    ) {
        let state = tree.state.downcast_ref::<State>();
        let shown = state
            .laid_out
            .as_ref()
            .map_or(self.text, |(_, _, _, _, shown)| shown);
        operation.text(None, layout.bounds(), shown);
    }
}

impl<'a, Message: 'a> From<Ellipsis<'a>> for Element<'a, Message> {
    fn from(text: Ellipsis<'a>) -> Self {
        Element::new(text)
    }
}
