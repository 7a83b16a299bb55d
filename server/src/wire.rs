//! Small pieces of what the server sends: the clock it stamps events with, random tokens
//! and epochs, and its `closing` frames.

use std::time::{SystemTime, UNIX_EPOCH};

use chat_shared::{CloseCode, Frame, ServerFrame};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A random hex string of `bytes` random bytes (tokens and epochs).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // No OS randomness: fall back to the clock and the address space, still unique.
        let seed = now_millis() ^ (std::ptr::from_ref(&buf) as u64);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    buf.iter()
        .fold(String::with_capacity(bytes * 2), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The `closing` frame for a code, with its words for a person.
pub fn closing(code: CloseCode) -> Frame {
    let message = match code {
        CloseCode::Shutdown => "the server is shutting down",
        CloseCode::IdleTimeout => "nothing heard from you for too long",
        CloseCode::LoginTimeout => "no hello in time",
        CloseCode::SendQueueFull => "you are reading too slowly; too much was queued for you",
        CloseCode::BadFrame => "three bad frames in a row",
        CloseCode::FrameTooLong => "frame longer than the limit",
        CloseCode::Flood => "far too many frames; slow down",
        CloseCode::Replaced => "your session was taken over by a new connection",
        CloseCode::Unknown => "closing",
    };
    Frame::encode(&ServerFrame::Closing {
        code,
        message: message.into(),
    })
}
