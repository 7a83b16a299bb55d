//! Whole sessions against a real server in this process (memory log, flood control on,
//! `root` an administrator): the input is up to three connections' lines, interleaved.
//! The server must not panic (a panic in any of its threads aborts the run), must end every
//! connection whose client ended it, and must still answer a new client afterwards.
//!
//! The input: its first byte says how many connections (1 to 3); then each line's first
//! byte picks the connection that sends the rest of the line. A line of that one byte with
//! its high bit set drops that connection at once; an unfinished last line is sent as is.
#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use chat_server::{Config, Running, Storage};
use chat_shared::Name;
use libfuzzer_sys::fuzz_target;

/// Long enough for a loaded machine; a server that takes longer is stuck.
const PATIENCE: Duration = Duration::from_secs(10);
/// Runs on one server before a fresh one: what the inputs leave behind stays bounded.
const RUNS_PER_SERVER: u32 = 2_000;

struct Host {
    server: Running,
    runs: u32,
}

static HOST: Mutex<Option<Host>> = Mutex::new(None);

fn server() -> Running {
    // A write to a connection the server has closed must fail, not end the process: the
    // fuzzer's own `main` does not ignore SIGPIPE as a Rust program's does.
    // SAFETY: setting a signal's disposition to "ignore" runs no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        storage: Storage::Memory,
        threads: 2,
        max_per_ip: 0,
        login_timeout: Duration::from_secs(5),
        linger: Duration::from_millis(200),
        admins: vec![Name::parse("root").expect("a valid name")],
        ..Config::default()
    };
    Running::start(config).expect("the server starts")
}

fuzz_target!(|data: &[u8]| {
    let Some((&count, lines)) = data.split_first() else {
        return;
    };
    let mut host = HOST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if host
        .as_ref()
        .is_none_or(|host| host.runs >= RUNS_PER_SERVER)
    {
        // The old one stops first: a server's stop waits for its connections.
        drop(host.take());
        *host = Some(Host {
            server: server(),
            runs: 0,
        });
    }
    let host = host.as_mut().expect("started above");
    host.runs += 1;
    let addr = host.server.addr();

    let mut connections: Vec<Option<TcpStream>> = (0..=count % 3)
        .map(|_| TcpStream::connect(addr).ok())
        .collect();
    let mut pieces = lines.split(|&b| b == b'\n').peekable();
    while let Some(piece) = pieces.next() {
        let Some((&pick, line)) = piece.split_first() else {
            continue;
        };
        let slot = usize::from(pick) % connections.len();
        if pick & 0x80 != 0 && line.is_empty() {
            connections[slot] = None;
            continue;
        }
        let Some(stream) = connections[slot].as_mut() else {
            continue;
        };
        // The server may have closed it already (after bad frames, a flood, a takeover).
        let last = pieces.peek().is_none();
        let sent = stream.write_all(line).and_then(|()| {
            if last {
                Ok(())
            } else {
                stream.write_all(b"\n")
            }
        });
        if sent.is_err() {
            connections[slot] = None;
        }
    }
    for stream in connections.into_iter().flatten() {
        ends_when_asked(stream);
    }
    still_answers(addr, host.runs);
});

/// The client ends the connection; the server must end it too.
fn ends_when_asked(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("a timeout can be set");
    let mut sink = [0_u8; 64 * 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server kept a connection open {PATIENCE:?} after its client ended it");
            }
            // Reset by the server: ended too.
            Err(_) => return,
        }
    }
}

/// A new client logs in and is answered: a `welcome` (then a `pong` to its `ping`) or a
/// `rejected` (the inputs may have registered or banned the name).
fn still_answers(addr: SocketAddr, run: u32) {
    let mut stream = TcpStream::connect(addr).expect("the server still accepts");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("a timeout can be set");
    let hello = format!(
        "{{\"type\":\"hello\",\"protocol\":3,\"name\":\"witness {run}\"}}\n{{\"type\":\"ping\",\"token\":\"alive\"}}\n"
    );
    stream
        .write_all(hello.as_bytes())
        .expect("the server still reads");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line);
        assert!(
            matches!(read, Ok(n) if n > 0),
            "the server did not answer a new client: {read:?}"
        );
        if line.contains("\"type\":\"rejected\"") || line.contains("\"token\":\"alive\"") {
            return;
        }
    }
}
