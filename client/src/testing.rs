//! A headless window for tests: the whole [`App`] in a real `UserInterface` whose widget
//! state lives on between frames, fed events as the runtime feeds them (keys no widget
//! took go to the app's key handler, every frame starts with a redraw), with the tasks it
//! returns carried out (widget operations, clipboard). What a test sees is what a window
//! would show, scroll position included.

use futures_lite::StreamExt;
use iced::advanced::clipboard;
use iced::keyboard::{self, key};
use iced::mouse;
use iced::{Event, Point, Size, Task, window};
use iced_test::core::widget::operation::{Outcome, black_box};
use iced_test::runtime::user_interface::{Cache, UserInterface};
use iced_test::runtime::{self, Action};
use iced_test::selector::{Bounded, Selector};

use crate::app::{App, Message};
use chat_shared::{Limits, ServerFrame};

use crate::connection::{Command, Event as ConnectionEvent, Handle};
use crate::model::Session;

/// The app in a headless window.
pub struct Window {
    /// The app.
    pub app: App,
    /// What the app asked of its connection.
    pub commands: async_channel::Receiver<Command>,
    /// The handle the app got from its (detached) connection.
    pub handle: Handle,
    cache: Option<Cache>,
    renderer: iced::Renderer,
    size: Size,
    cursor: mouse::Cursor,
    clipboard: Clipboard,
}

#[derive(Default)]
struct Clipboard(Option<String>);

impl clipboard::Clipboard for Clipboard {
    fn read(&self, _kind: clipboard::Kind) -> Option<String> {
        self.0.clone()
    }

    fn write(&mut self, _kind: clipboard::Kind, contents: String) {
        self.0 = Some(contents);
    }
}

impl Window {
    /// The app on its Login screen, in a window of 900×620, pre-filled with the name `me`;
    /// with `connect`, it is logging in.
    pub fn new(connect: bool) -> Self {
        let (app, task) = App::new("me", "127.0.0.1:60000", connect);
        let (handle, commands) = Handle::detached();
        let renderer = {
            use iced::advanced::renderer::Headless;
            let backend = std::env::var("ICED_TEST_BACKEND").ok();
            futures_lite::future::block_on(<iced::Renderer as Headless>::new(
                iced::Font::with_name("Fira Sans"),
                iced::Pixels(16.0),
                backend.as_deref(),
            ))
            .expect("a headless renderer")
        };
        let mut window = Self {
            app,
            commands,
            handle,
            cache: Some(Cache::default()),
            renderer,
            size: Size::new(900.0, 620.0),
            cursor: mouse::Cursor::Unavailable,
            clipboard: Clipboard::default(),
        };
        window.run(task);
        window.frame();
        window
    }

    /// The app on its Chat screen, logged in as `session` describes.
    pub fn chat(session: &Session) -> Self {
        let mut window = Self::new(true);
        window.connection(ConnectionEvent::Ready(window.handle.clone()));
        window.connection(ConnectionEvent::LoggedIn(session.clone()));
        window
    }

    /// The window's title.
    pub fn title(&self) -> String {
        self.app.title()
    }

    /// Frames from the server, handed to the app without drawing in between; then a
    /// frame.
    pub fn receive(&mut self, frames: impl IntoIterator<Item = ServerFrame>) {
        for frame in frames {
            let _ = self
                .app
                .update(Message::Connection(ConnectionEvent::Frame(frame)));
        }
        self.frame();
    }

    /// Everything the app asked of its connection since the last look, but the `typing`
    /// and `read` it sends along the way (see [`Window::signals_sent`]).
    pub fn commands_sent(&self) -> Vec<Command> {
        self.all_commands_sent()
            .into_iter()
            .filter(|command| !is_signal(command))
            .collect()
    }

    /// Everything the app asked of its connection since the last look.
    pub fn all_commands_sent(&self) -> Vec<Command> {
        std::iter::from_fn(|| self.commands.try_recv().ok()).collect()
    }

    /// The `typing` and `read` frames sent since the last look (the rest is dropped).
    pub fn signals_sent(&self) -> Vec<chat_shared::ClientFrame> {
        self.all_commands_sent()
            .into_iter()
            .filter_map(|command| match command {
                Command::Send(frame) if is_signal(&Command::Send(frame.clone())) => Some(frame),
                _ => None,
            })
            .collect()
    }

    /// Something from the connection.
    pub fn connection(&mut self, event: ConnectionEvent) {
        self.message(Message::Connection(event));
    }

    /// A message to the app, and everything it leads to; then a frame.
    pub fn message(&mut self, message: Message) {
        let task = self.app.update(message);
        self.run(task);
        self.frame();
    }

    /// Carries out a task as the runtime would.
    fn run(&mut self, task: Task<Message>) {
        let Some(mut stream) = runtime::task::into_stream(task) else {
            return;
        };
        while let Some(action) = futures_lite::future::block_on(stream.next()) {
            match action {
                Action::Output(message) => {
                    let task = self.app.update(message);
                    self.run(task);
                }
                Action::Widget(mut operation) => {
                    let cache = self.cache.take().unwrap_or_default();
                    let mut ui = build(&self.app, self.size, cache, &mut self.renderer);
                    loop {
                        ui.operate(&self.renderer, operation.as_mut());
                        match operation.finish() {
                            Outcome::Chain(next) => operation = next,
                            Outcome::None | Outcome::Some(()) => break,
                        }
                    }
                    self.cache = Some(ui.into_cache());
                }
                Action::Clipboard(runtime::clipboard::Action::Write { contents, .. }) => {
                    self.clipboard.0 = Some(contents);
                }
                Action::Clipboard(runtime::clipboard::Action::Read { channel, .. }) => {
                    let _ = channel.send(self.clipboard.0.clone());
                }
                _ => {}
            }
        }
    }

    /// Feeds events to the window as the runtime does; keys no widget took go to the
    /// app's key handler.
    pub fn events(&mut self, events: &[Event]) {
        let mut messages = Vec::new();
        let statuses = {
            let cache = self.cache.take().unwrap_or_default();
            let mut ui = build(&self.app, self.size, cache, &mut self.renderer);
            let (_, statuses) = ui.update(
                events,
                self.cursor,
                &mut self.renderer,
                &mut self.clipboard,
                &mut messages,
            );
            self.cache = Some(ui.into_cache());
            statuses
        };
        for (event, status) in events.iter().zip(statuses) {
            if let Some(message) =
                crate::app::unclaimed_key(event.clone(), status, window::Id::unique())
            {
                messages.push(message);
            }
        }
        for message in messages {
            let task = self.app.update(message);
            self.run(task);
        }
    }

    /// A frame: the redraw that comes before every draw (and lets widgets settle).
    pub fn frame(&mut self) {
        for _ in 0..3 {
            self.events(&[Event::Window(window::Event::RedrawRequested(
                std::time::Instant::now(),
            ))]);
        }
    }

    /// Finds a widget; `None` if there is none.
    pub fn find<S>(&mut self, selector: S) -> Option<S::Output>
    where
        S: Selector + Send,
        S::Output: Clone + Send,
    {
        let mut operation = selector.find();
        let cache = self.cache.take().unwrap_or_default();
        let mut ui = build(&self.app, self.size, cache, &mut self.renderer);
        ui.operate(&self.renderer, &mut black_box(&mut operation));
        self.cache = Some(ui.into_cache());
        match iced_test::core::widget::Operation::finish(&operation) {
            Outcome::Some(found) => found,
            _ => None,
        }
    }

    /// Whether a text is on screen (not merely in the widget tree, scrolled away).
    pub fn shows(&mut self, text: &str) -> bool {
        self.find(text)
            .and_then(|target| target.visible_bounds())
            .is_some_and(|bounds| bounds.height >= 1.0)
    }

    /// Where a text is on screen.
    pub fn bounds_of(&mut self, text: &str) -> Option<iced::Rectangle> {
        self.find(text).and_then(|target| target.visible_bounds())
    }

    /// Moves the mouse.
    pub fn point_at(&mut self, at: Point) {
        self.cursor = mouse::Cursor::Available(at);
        self.events(&[Event::Mouse(mouse::Event::CursorMoved { position: at })]);
    }

    /// Clicks where the mouse is.
    pub fn click(&mut self) {
        self.events(&[
            Event::Mouse(mouse::Event::ButtonPressed(mouse::Button::Left)),
            Event::Mouse(mouse::Event::ButtonReleased(mouse::Button::Left)),
        ]);
        self.frame();
    }

    /// Clicks the middle of a widget.
    pub fn click_on<S>(&mut self, selector: S)
    where
        S: Selector + Send,
        S::Output: Bounded + Clone + Send,
    {
        let target = self.find(selector).expect("something to click");
        let bounds = target.visible_bounds().expect("visible");
        self.point_at(bounds.center());
        self.click();
    }

    /// Drags the mouse from one point to another, left button held.
    pub fn drag(&mut self, from: Point, to: Point) {
        self.point_at(from);
        self.events(&[Event::Mouse(mouse::Event::ButtonPressed(
            mouse::Button::Left,
        ))]);
        for step in 1..=4 {
            let t = step as f32 / 4.0;
            self.point_at(Point::new(
                from.x + (to.x - from.x) * t,
                from.y + (to.y - from.y) * t,
            ));
        }
        self.events(&[Event::Mouse(mouse::Event::ButtonReleased(
            mouse::Button::Left,
        ))]);
        self.frame();
    }

    /// Turns the mouse wheel where the mouse is: `lines` up (positive) or down.
    pub fn wheel(&mut self, lines: f32) {
        self.events(&[Event::Mouse(mouse::Event::WheelScrolled {
            delta: mouse::ScrollDelta::Lines { x: 0.0, y: lines },
        })]);
        self.frame();
    }

    /// Presses and releases a key.
    pub fn key(&mut self, key: keyboard::Key, modifiers: keyboard::Modifiers, text: Option<&str>) {
        self.events(&[
            Event::Keyboard(keyboard::Event::KeyPressed {
                key: key.clone(),
                modified_key: key.clone(),
                physical_key: key::Physical::Unidentified(key::NativeCode::Unidentified),
                location: keyboard::Location::Standard,
                modifiers,
                text: text.map(Into::into),
                repeat: false,
            }),
            Event::Keyboard(keyboard::Event::KeyReleased {
                key: key.clone(),
                modified_key: key,
                physical_key: key::Physical::Unidentified(key::NativeCode::Unidentified),
                location: keyboard::Location::Standard,
                modifiers,
            }),
        ]);
        self.frame();
    }

    /// Presses a named key.
    pub fn press(&mut self, named: key::Named) {
        self.key(
            keyboard::Key::Named(named),
            keyboard::Modifiers::empty(),
            None,
        );
    }

    /// Types text, one key per character.
    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let s = c.to_string();
            self.key(
                keyboard::Key::Character(s.as_str().into()),
                keyboard::Modifiers::empty(),
                Some(&s),
            );
        }
    }

    /// Resizes the window, as a user dragging its edge would.
    pub fn resize(&mut self, size: Size) {
        self.size = size;
        self.events(&[Event::Window(window::Event::Resized(size))]);
        self.frame();
    }

    /// What the app wrote to the clipboard.
    pub fn clipboard(&self) -> Option<&str> {
        self.clipboard.0.as_deref()
    }
}

fn build<'a>(
    app: &'a App,
    size: Size,
    cache: Cache,
    renderer: &mut iced::Renderer,
) -> UserInterface<'a, Message, iced::Theme, iced::Renderer> {
    UserInterface::build(app.view(), size, cache, renderer)
}

/// Noon on 2026-11-25 (UTC), in ms: test messages are spaced a second apart from here.
pub const NOON: u64 = 1_795_521_600_000;

/// The session of "me" (with "bob" online) in `rooms`, the first of them `general`, the
/// default room.
pub fn session_in(rooms: &[&str]) -> Session {
    Session {
        account: false,
        conversations: Vec::new(),
        conversations_read: Vec::new(),
        name: "me".into(),
        users: vec!["me".into(), "bob".into()],
        seq: 0,
        oldest: 0,
        epoch: "e".into(),
        limits: Limits::default(),
        resumed: false,
        missed: false,
        new_epoch: false,
        default_room: "general".into(),
        rooms: rooms.iter().map(ToString::to_string).collect(),
        admin: false,
        password_reset: false,
        invites: Vec::new(),
    }
}

/// A message of `room`, one second after the one before it.
pub fn room_message(room: &str, seq: u64, from: &str, text: &str) -> ServerFrame {
    ServerFrame::Message {
        with: None,
        room: Some(room.into()),
        seq,
        time: NOON + seq * 1000,
        from: from.into(),
        text: text.into(),
        id: None,
        me: false,
        deleted: false,
        reply_to: None,
        edited: None,
        reactions: Vec::new(),
    }
}

/// A direct message to "me" from `from`, one second after the one before it.
pub fn direct_message(from: &str, seq: u64, text: &str) -> ServerFrame {
    ServerFrame::Message {
        room: None,
        with: Some(from.into()),
        seq,
        time: NOON + seq * 1000,
        from: from.into(),
        text: text.into(),
        id: None,
        me: false,
        deleted: false,
        reply_to: None,
        edited: None,
        reactions: Vec::new(),
    }
}

/// Whether a command is a `typing` or a `read`: what the client sends by itself as the
/// person types and reads.
fn is_signal(command: &Command) -> bool {
    matches!(
        command,
        Command::Send(
            chat_shared::ClientFrame::Typing { .. } | chat_shared::ClientFrame::Read { .. }
        )
    )
}
