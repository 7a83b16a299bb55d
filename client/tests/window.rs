//! The real window: `client --name gui --connect` under Xvfb (tiny-skia), driven the way a
//! user would with xdotool and a window manager, watched by a headless client.
//!
//! Server: in-process on port 0 with the flag defaults except `--rate 0` (flood control
//! off, so the watcher can fill the room with 300 messages at once), `--memory` and
//! `--admins boss` (an administrator who deletes a bot's message and puts it out). Needs Xvfb, openbox,
//! xdotool, wmctrl, xwd and `ImageMagick` (`.ci/deps` installs them). Screenshots land in
//! `target/artifacts/chat-window*.png`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_server::{Config, Running, Storage};
use chat_shared::limits::MAX_SERVER_FRAME;
use chat_shared::{ClientFrame, Frame, FrameReader, LeaveReason, PROTOCOL_VERSION, ServerFrame};
use futures_lite::{AsyncWriteExt, future};
use smol::Timer;
use smol::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

/// A child process killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{tool} is missing: run .ci/deps first");
}

/// Starts Xvfb on a free display; returns it and the display name.
fn xvfb() -> (Proc, String) {
    use std::io::Read;
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    let mut out = child.stdout.take().expect("stdout");
    let mut number = String::new();
    let mut byte = [0u8; 1];
    // Xvfb writes the display number and a newline once it is ready.
    while out.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
        number.push(char::from(byte[0]));
    }
    assert!(!number.is_empty(), "Xvfb gave no display");
    (Proc(child), format!(":{}", number.trim()))
}

fn x(display: &str, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .env("DISPLAY", display)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Polls an X query until it answers (windows appear asynchronously; X has no event we
/// can await from here).
fn wait_for_window(display: &str, title: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = x(display, "xdotool", &["search", "--name", title]);
        let id = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string);
        if let Some(id) = id {
            return id;
        }
        assert!(Instant::now() < deadline, "no window named {title:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Watcher {
    reader: FrameReader<TcpStream, ServerFrame>,
    writer: TcpStream,
}

impl Watcher {
    async fn login(addr: SocketAddr, name: &str) -> Self {
        Self::login_with(addr, name, None).await
    }

    /// Logs in, registering the account `name` with `password` first if given.
    async fn login_with(addr: SocketAddr, name: &str, password: Option<&str>) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let hello = ClientFrame::Hello {
            password: password.map(chat_shared::Password::new),
            register: password.is_some(),
            protocol: PROTOCOL_VERSION,
            name: name.into(),
            since: None,
            epoch: None,
            token: None,
        };
        stream
            .write_all(Frame::encode(&hello).as_bytes())
            .await
            .expect("hello");
        let reader = FrameReader::new(stream.clone(), MAX_SERVER_FRAME);
        let mut me = Self {
            reader,
            writer: stream,
        };
        let welcome = me.next().await;
        assert!(
            matches!(welcome, ServerFrame::Welcome { .. }),
            "{welcome:?}"
        );
        me
    }

    /// A watcher logged in and in `room` as well.
    async fn in_room(addr: SocketAddr, name: &str, room: &str) -> Self {
        let mut me = Self::login(addr, name).await;
        me.send(&ClientFrame::Join {
            room: room.into(),
            since: None,
        })
        .await;
        me.until(|f| matches!(f, ServerFrame::Joined { name: n, room: Some(r), .. } if n == name && r == room))
            .await;
        me
    }

    async fn say(&mut self, text: &str) {
        self.send(&ClientFrame::Say {
            to: None,
            me: false,
            reply_to: None,
            room: None,
            text: text.into(),
            id: None,
        })
        .await;
    }

    async fn send(&mut self, frame: &ClientFrame) {
        self.writer
            .write_all(Frame::encode(frame).as_bytes())
            .await
            .expect("send");
    }

    async fn next(&mut self) -> ServerFrame {
        future::or(async { self.reader.next().await }, async {
            Timer::after(WAIT).await;
            None
        })
        .await
        .expect("a frame in time")
        .expect("a good frame")
    }

    async fn until(&mut self, want: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
        loop {
            let frame = self.next().await;
            if want(&frame) {
                return frame;
            }
        }
    }
}

/// Clicks into the input bar at the bottom of the window (right of the rooms), as a user
/// would before typing.
/// (Coordinates relative to the window: xdotool's absolute ones count the frame twice.)
fn click_into_input(display: &str, window: &str) {
    let geometry = x(
        display,
        "xdotool",
        &["getwindowgeometry", "--shell", window],
    );
    let geometry = String::from_utf8_lossy(&geometry.stdout).into_owned();
    let height: i64 = geometry
        .lines()
        .find_map(|l| l.strip_prefix("HEIGHT="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no height in {geometry}"));
    let click_y = (height - 26).to_string();
    x(
        display,
        "xdotool",
        &["mousemove", "--window", window, "300", &click_y],
    );
    x(display, "xdotool", &["click", "1"]);
}

/// Keeps a picture of the screen in `target/artifacts/chat-window-{name}.png`, and returns
/// its pixels (RGB, row by row) with its width.
fn screenshot(display: &str, name: &str) -> (Vec<u8>, usize) {
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let shot = artifacts.join(format!("chat-window-{name}.png"));
    let status = Command::new("sh")
        .args([
            "-c",
            &format!("xwd -root -silent | convert xwd:- {}", shot.display()),
        ])
        .env("DISPLAY", display)
        .status()
        .expect("screenshot");
    assert!(status.success() && shot.exists(), "no screenshot");
    let raw = Command::new("convert")
        .args([shot.to_str().expect("path"), "-depth", "8", "rgb:-"])
        .output()
        .expect("pixels");
    assert!(raw.status.success(), "cannot read the screenshot");
    (raw.stdout, SCREEN_WIDTH)
}

const SCREEN_WIDTH: usize = 1024;

/// Pixels of link blue inside `area` (x, y, width, height) of the screen: the core of
/// the glyphs of a link in the light theme is about (15, 96, 189); nothing else on the
/// screen is that colour (the buttons' blue is much redder).
fn link_pixels((pixels, width): &(Vec<u8>, usize), area: (usize, usize, usize, usize)) -> usize {
    let (left, top, area_width, area_height) = area;
    (top..top + area_height)
        .flat_map(|row| (left..left + area_width).map(move |column| (row * width + column) * 3))
        .filter(|&at| {
            let (red, green, blue) = (pixels[at], pixels[at + 1], pixels[at + 2]);
            // The link colour of the light theme, (15, 96, 189), give or take the edges
            // of letters: no name is drawn in a hue near it.
            red < 60 && (66..127).contains(&green) && blue > 160
        })
        .count()
}

/// The window's position and size on the screen.
fn geometry(display: &str, window: &str) -> (usize, usize, usize, usize) {
    let out = x(
        display,
        "xdotool",
        &["getwindowgeometry", "--shell", window],
    );
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |key: &str| -> usize {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {out}"))
    };
    (get("X"), get("Y"), get("WIDTH"), get("HEIGHT"))
}

/// Waits, bounded, for the client to exit by itself.
async fn exited(client: &mut smol::process::Child) -> std::process::ExitStatus {
    future::or(
        async { client.status().await.expect("client status") },
        async {
            Timer::after(WAIT).await;
            panic!("the client did not exit");
        },
    )
    .await
}

#[test]
fn the_window_joins_sends_and_quits() {
    for tool in ["Xvfb", "openbox", "xdotool", "wmctrl", "xwd", "convert"] {
        need(tool);
    }
    let server = Running::start(Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: 2,
        rate: 0,
        storage: Storage::Memory,
        admins: vec![chat_shared::Name::parse("boss").expect("a name")],
        ..Config::default()
    })
    .expect("server");
    let addr = server.addr();
    let (_xvfb, display) = xvfb();
    let _wm = Proc(
        Command::new("openbox")
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openbox"),
    );
    // Its own settings: a saved dark theme on this machine must not change the colours.
    let config = std::env::temp_dir().join(format!("chat-window-test-{}", std::process::id()));
    smol::block_on(async {
        let mut watcher = Watcher::login(addr, "watcher").await;
        // In a second room, where the window will go.
        let mut roomie = Watcher::in_room(addr, "roomie", "side").await;
        let mut client = smol::process::Command::new(env!("CARGO_BIN_EXE_client"))
            .args(["--server", &addr.to_string(), "--name", "gui", "--connect"])
            .env("DISPLAY", &display)
            .env("ICED_BACKEND", "tiny-skia")
            .env("XDG_CONFIG_HOME", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("client starts");
        watcher
            .until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "gui"))
            .await;
        let window = wait_for_window(&display, "gui on");
        x(&display, "xdotool", &["windowactivate", "--sync", &window]);
        fill_the_room(&mut watcher).await;
        let (wx, wy, ww, wh) = geometry(&display, &window);
        // The log: between the rooms and the member list, below the header (the input has
        // no link blue in it).
        let log = (
            wx + 200,
            wy + 45,
            ww.saturating_sub(410),
            wh.saturating_sub(45),
        );
        let shown = wait_until(|| link_pixels(&screenshot(&display, "newest"), log) > 20);
        assert!(shown, "the newest message is on screen when it arrives");
        // Read back: the wheel moves the log up, away from the newest line.
        x(
            &display,
            "xdotool",
            &["mousemove", "--window", &window, "200", "200"],
        );
        for _ in 0..15 {
            x(&display, "xdotool", &["click", "4"]);
        }
        let away = wait_until(|| link_pixels(&screenshot(&display, "read-back"), log) == 0);
        assert!(away, "scrolled up, the newest message is off screen");
        // Send, and type on at once.
        click_into_input(&display, &window);
        x(
            &display,
            "xdotool",
            &["type", "--delay", "15", "hello from the window"],
        );
        x(&display, "xdotool", &["key", "Return"]);
        x(
            &display,
            "xdotool",
            &["type", "--delay", "15", "right after"],
        );
        x(&display, "xdotool", &["key", "Return"]);
        for want in ["hello from the window", "right after"] {
            let said = watcher
                .until(|f| matches!(f, ServerFrame::Message { from, .. } if from == "gui"))
                .await;
            assert!(
                matches!(&said, ServerFrame::Message { text, id: Some(_), .. } if text == want),
                "{said:?}"
            );
        }
        let back = wait_until(|| link_pixels(&screenshot(&display, "after-send"), log) > 20);
        assert!(
            back,
            "after a send the newest messages are on screen, not the oldest"
        );
        another_room(&display, &window, &mut watcher, &mut roomie).await;
        a_bot_put_out(&display, addr, log, &mut watcher).await;
        screenshot(&display, "final");
        close_as_a_user(&display, &mut watcher, &mut client).await;
    });
    let _ = std::fs::remove_dir_all(config);
}

/// Closes the window as a user does: the window manager asks (`WM_DELETE_WINDOW`); the
/// client says `bye` (the watcher sees it quit) and exits cleanly.
async fn close_as_a_user(display: &str, watcher: &mut Watcher, client: &mut smol::process::Child) {
    // Close it as a user does: the window manager asks (WM_DELETE_WINDOW).
    x(display, "wmctrl", &["-c", "gui on"]);
    let left = watcher
        .until(|f| matches!(f, ServerFrame::Left { name, .. } if name == "gui"))
        .await;
    assert!(
        matches!(
            left,
            ServerFrame::Left {
                reason: LeaveReason::Quit,
                ..
            }
        ),
        "closing the window must say bye: {left:?}"
    );
    let status = exited(client).await;
    assert!(status.success(), "client exited with {status}");
}

/// Another room: `/join` it and talk there (its member hears it), then back to the default
/// room with a click in the sidebar and talk there (the watcher hears that, and nothing
/// of the other room before it).
async fn another_room(display: &str, window: &str, watcher: &mut Watcher, roomie: &mut Watcher) {
    // Another room: /join it, talk there; its member hears, the default room does not.
    click_into_input(display, window);
    x(
        display,
        "xdotool",
        &["type", "--delay", "15", "/join #side"],
    );
    x(display, "xdotool", &["key", "Return"]);
    roomie
        .until(|f| matches!(f, ServerFrame::Joined { name, room: Some(r), .. } if name == "gui" && r == "side"))
        .await;
    x(
        display,
        "xdotool",
        &["type", "--delay", "15", "hello side room"],
    );
    x(display, "xdotool", &["key", "Return"]);
    let heard = roomie
        .until(|f| matches!(f, ServerFrame::Message { from, .. } if from == "gui"))
        .await;
    assert!(
        matches!(&heard, ServerFrame::Message { room: Some(r), text, .. } if r == "side" && text == "hello side room"),
        "{heard:?}"
    );
    screenshot(display, "second-room");
    // Back to the default room with a click on it in the sidebar, and say something
    // there: the watcher hears that, and heard nothing of the other room before it.
    x(
        display,
        "xdotool",
        &["mousemove", "--window", window, "94", "131"],
    );
    x(display, "xdotool", &["click", "1"]);
    click_into_input(display, window);
    x(
        display,
        "xdotool",
        &["type", "--delay", "15", "back in general"],
    );
    x(display, "xdotool", &["key", "Return"]);
    loop {
        let frame = watcher.next().await;
        assert_ne!(frame.room(), Some("side"), "not in that room: {frame:?}");
        if let ServerFrame::Message {
            from, text, room, ..
        } = &frame
            && from == "gui"
        {
            assert_eq!(
                (text.as_str(), room.as_deref()),
                ("back in general", Some("general"))
            );
            break;
        }
    }
}

/// A moderation step seen in the window: a bot says something to the window's user (the
/// log highlights a mention), then an administrator deletes it and puts the bot out; the
/// highlight goes (the message reads "message deleted") and the log says who removed it.
async fn a_bot_put_out(
    display: &str,
    addr: SocketAddr,
    log: (usize, usize, usize, usize),
    watcher: &mut Watcher,
) {
    let mut boss = Watcher::login_with(addr, "boss", Some("the boss's password")).await;
    let mut bot = Watcher::login(addr, "spambot").await;
    bot.say("gui, cheap pills here, ask me").await;
    let spam = boss
        .until(|f| matches!(f, ServerFrame::Message { from, .. } if from == "spambot"))
        .await;
    let shown = wait_until(|| mention_pixels(&screenshot(display, "spam"), log) > 2000);
    assert!(shown, "the bot's mention is highlighted in the log");
    boss.send(&ClientFrame::Delete {
        room: Some("general".into()),
        with: None,
        seq: spam.seq().expect("a seq"),
    })
    .await;
    boss.send(&ClientFrame::Remove {
        room: "general".into(),
        name: "spambot".into(),
        message: Some("spam".into()),
    })
    .await;
    watcher
        .until(|f| matches!(f, ServerFrame::Left { name, reason: LeaveReason::Removed, .. } if name == "spambot"))
        .await;
    let gone = wait_until(|| mention_pixels(&screenshot(display, "moderated"), log) < 50);
    assert!(gone, "the deleted message is no longer there to read");
}

/// How many pixels of `area` have the colour of a highlighted mention's background in the
/// light theme, about (237, 226, 218): nothing else on the screen has it. (Its frame, one
/// pixel wide, takes another shade wherever the row lands between two pixels.)
fn mention_pixels((pixels, width): &(Vec<u8>, usize), area: (usize, usize, usize, usize)) -> usize {
    let (x0, y0, w, h) = area;
    let mut count = 0;
    for y in y0..(y0 + h) {
        for x in x0..(x0 + w).min(*width) {
            let at = (y * width + x) * 3;
            let Some(&[red, green, blue]) = pixels.get(at..at + 3) else {
                continue;
            };
            if red.abs_diff(237) <= 3 && green.abs_diff(226) <= 3 && blue.abs_diff(218) <= 3 {
                count += 1;
            }
        }
    }
    count
}

/// A busy room: 300 messages, the newest a link (the only blue on the screen).
async fn fill_the_room(watcher: &mut Watcher) {
    for i in 1..=300 {
        let text = if i == 300 {
            "the newest: https://example.com/newest".to_string()
        } else {
            format!("message {i} of a busy room")
        };
        watcher.say(&text).await;
    }
    watcher
        .until(|f| matches!(f, ServerFrame::Message { text, .. } if text.contains("newest")))
        .await;
}

/// Polls a look at the screen until it holds (a frame is drawn some time after the event
/// that caused it; X offers nothing to wait on from here), at most [`WAIT`].
fn wait_until(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
