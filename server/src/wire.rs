//! Small pieces of what the server sends: the clock it stamps events with, random tokens
//! and epochs, and its `closing` and `rejected` frames.

use std::time::{SystemTime, UNIX_EPOCH};

use chat_shared::{CloseCode, Frame, RejectCode, ServerFrame};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A hex string of `bytes` bytes from the operating system's random source (tokens and
/// epochs: 16 bytes, 128 bits). There is no fallback: a token built from anything else
/// could be guessed, so without randomness there is no token (and a server that cannot get it
/// at start does not start).
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(buf
        .iter()
        .fold(String::with_capacity(bytes * 2), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        }))
}

/// The `rejected` frame for a refused login or connection (counted in the metrics).
pub fn rejected(code: RejectCode, message: String, retry_after: Option<u64>) -> Frame {
    let frame = Frame::encode(&ServerFrame::Rejected {
        code,
        message,
        retry_after,
    });
    crate::metrics::get().rejected(&wire_name(&code));
    frame
}

/// A code as the protocol spells it (`send_queue_full`).
fn wire_name(code: &impl serde::Serialize) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The `closing` frame for a code, with its words for a person (counted in the metrics).
pub fn closing(code: CloseCode) -> Frame {
    crate::metrics::get().closed(&wire_name(&code));
    let message = match code {
        CloseCode::Shutdown => "the server is shutting down",
        CloseCode::IdleTimeout => "nothing heard from you for too long",
        CloseCode::LoginTimeout => "no hello in time",
        CloseCode::SendQueueFull => "you are reading too slowly; too much was queued for you",
        CloseCode::BadFrame => "three bad frames in a row",
        CloseCode::FrameTooLong => "frame longer than the limit",
        CloseCode::Flood => "far too many frames; slow down",
        CloseCode::Replaced => "your session was taken over by a new connection",
        CloseCode::Banned => "you are banned from this server",
        CloseCode::AccountDeleted => "your account was deleted by the server's operator",
        CloseCode::Unknown => "closing",
    };
    Frame::encode(&ServerFrame::Closing {
        code,
        message: message.into(),
    })
}
