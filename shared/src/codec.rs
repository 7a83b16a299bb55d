//! NDJSON framing: encode a frame once, decode frames from bytes that arrive in any chunks.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{ClientFrame, ServerFrame};

/// The reading half of a connection as a client holds it, plain TCP or TLS alike.
pub type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// The writing half of a connection as a client holds it, plain TCP or TLS alike.
pub type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// A frame type that can go on the wire: one of the two directions of the protocol.
pub trait WireFrame: Serialize + DeserializeOwned + sealed::Sealed {
    /// The `type` tags the type decodes; any other is reported as [`DecodeError::UnknownType`].
    const TYPES: &'static [&'static str];
}

impl WireFrame for ClientFrame {
    const TYPES: &'static [&'static str] = ClientFrame::TYPES;
}

impl WireFrame for ServerFrame {
    const TYPES: &'static [&'static str] = ServerFrame::TYPES;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::ClientFrame {}
    impl Sealed for crate::ServerFrame {}
}

/// Bytes that are already on-the-wire frames: one or more JSON lines, each ending in `\n`.
///
/// Cloning is a reference-count increment, so one encoding can be fanned out to many
/// connections.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(Arc<[u8]>);

impl Frame {
    /// Encodes one frame as a JSON line.
    pub fn encode<T: WireFrame>(frame: &T) -> Self {
        let mut bytes = Vec::with_capacity(128);
        encode_into(frame, &mut bytes);
        Self(bytes.into())
    }

    /// Bytes that are already frames (each a JSON line ending in `\n`), as a store kept
    /// them. Not checked: only for bytes that came out of [`Frame::encode`].
    pub fn from_encoded(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }

    /// Bytes already in the connection's own wire form when it is not NDJSON (the IRC
    /// port's lines, each ending in CR-LF), queued to be written as they are.
    pub fn raw(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }

    /// Joins already encoded frames into one, so they can be queued and written as one.
    pub fn concat<'a>(frames: impl IntoIterator<Item = &'a Frame> + Clone) -> Self {
        let len = frames.clone().into_iter().map(Frame::len).sum();
        let mut bytes = Vec::with_capacity(len);
        for frame in frames {
            bytes.extend_from_slice(&frame.0);
        }
        Self(bytes.into())
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds nothing: an encoded frame never does; an empty one stands for
    /// nothing to send.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many frames (lines) this holds.
    pub fn count(&self) -> usize {
        memchr::memchr_iter(b'\n', &self.0).count()
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// Appends one frame as a JSON line to `out`.
pub fn encode_into<T: WireFrame>(frame: &T, out: &mut Vec<u8>) {
    // Serialising our own types into a Vec cannot fail: every map key is a string.
    serde_json::to_writer(&mut *out, frame).expect("protocol frames always serialise");
    out.push(b'\n');
}

/// Why a line did not decode to a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame (newline included) is longer than the limit; the rest of it up to the next
    /// newline is skipped without being held.
    #[error("frame longer than {limit} bytes")]
    TooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The line is not UTF-8.
    #[error("frame is not valid UTF-8")]
    InvalidUtf8,
    /// The line is not a JSON value (or nests too deep).
    #[error("frame is not valid JSON: {0}")]
    InvalidJson(String),
    /// The line is a JSON object whose `type` this side does not know.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// The line is JSON, but not an object of a known type with the right fields.
    #[error("bad frame: {0}")]
    BadFields(String),
}

/// Decodes one line (without its newline) into a frame.
pub fn decode_line<T: WireFrame>(line: &[u8]) -> Result<T, DecodeError> {
    let text = std::str::from_utf8(line).map_err(|_| DecodeError::InvalidUtf8)?;
    serde_json::from_str(text).map_err(|err| classify::<T>(text, &err))
}

fn classify<T: WireFrame>(text: &str, err: &serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            DecodeError::InvalidJson(err.to_string())
        }
        Category::Data => {
            // Only on the error path: look at the tag alone to tell an unknown type apart.
            #[derive(serde::Deserialize)]
            struct Tag {
                #[serde(rename = "type")]
                kind: Option<serde_json::Value>,
            }
            match serde_json::from_str::<Tag>(text) {
                Ok(Tag {
                    kind: Some(serde_json::Value::String(kind)),
                }) if !T::TYPES.contains(&kind.as_str()) => DecodeError::UnknownType(kind),
                _ => DecodeError::BadFields(err.to_string()),
            }
        }
    }
}

/// An incremental decoder: feed it bytes in any chunks, take out frames.
///
/// It holds at most `max_frame` bytes of an unfinished frame and nothing at all between
/// frames, so an idle connection costs no buffer. After a frame that is too long it reports
/// [`DecodeError::TooLong`] once and skips to the next newline.
pub struct Decoder<T> {
    pending: Vec<u8>,
    max_frame: usize,
    skipping: bool,
    kind: PhantomData<fn() -> T>,
}

impl<T: WireFrame> Decoder<T> {
    /// A decoder that accepts frames of at most `max_frame` bytes, newline included.
    pub fn new(max_frame: usize) -> Self {
        Self {
            pending: Vec::new(),
            max_frame: max_frame.max(2),
            skipping: false,
            kind: PhantomData,
        }
    }

    /// Bytes of an unfinished frame held right now.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether the decoder is between frames (holds nothing and skips nothing).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && !self.skipping
    }

    /// Takes the next frame out of `input`, advancing it past what was consumed.
    ///
    /// Returns `None` once `input` is used up; an unfinished frame at its end is kept for
    /// the next call. Empty lines and a `\r` before the `\n` are skipped.
    pub fn next_frame(&mut self, input: &mut &[u8]) -> Option<Result<T, DecodeError>> {
        loop {
            if input.is_empty() {
                return None;
            }
            let Some(newline) = memchr::memchr(b'\n', input) else {
                if self.skipping {
                    *input = &[];
                    return None;
                }
                if self.pending.len() + input.len() >= self.max_frame {
                    // Even the newline would not fit: report now, hold nothing more.
                    self.pending = Vec::new();
                    self.skipping = true;
                    *input = &[];
                    return Some(Err(self.too_long()));
                }
                self.pending.extend_from_slice(input);
                *input = &[];
                return None;
            };
            let (part, rest) = input.split_at(newline);
            *input = &rest[1..];
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.pending.len() + part.len() + 1 > self.max_frame {
                self.pending = Vec::new();
                return Some(Err(self.too_long()));
            }
            let result = if self.pending.is_empty() {
                decode_nonempty(part)
            } else {
                self.pending.extend_from_slice(part);
                let result = decode_nonempty(&self.pending);
                self.pending = Vec::new();
                result
            };
            if let Some(result) = result {
                return Some(result);
            }
        }
    }

    fn too_long(&self) -> DecodeError {
        DecodeError::TooLong {
            limit: self.max_frame,
        }
    }
}

/// Decodes a line unless it is empty (after dropping a trailing `\r`).
fn decode_nonempty<T: WireFrame>(line: &[u8]) -> Option<Result<T, DecodeError>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.is_empty()).then(|| decode_line(line))
}

/// Why reading a frame from a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The stream failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// A line did not decode; the reader can go on with the next one.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
}

/// Reads frames from an async byte stream.
pub struct FrameReader<R, T> {
    reader: R,
    decoder: Decoder<T>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin, T: WireFrame> FrameReader<R, T> {
    /// A reader accepting frames of at most `max_frame` bytes.
    pub fn new(reader: R, max_frame: usize) -> Self {
        Self {
            reader,
            decoder: Decoder::new(max_frame),
            buf: vec![0; 8 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// A reader that first goes through `unread`, bytes already taken from `reader` (what
    /// [`FrameReader::into_parts`] hands back, or what a caller read by itself).
    pub fn from_parts(reader: R, max_frame: usize, unread: Vec<u8>) -> Self {
        let mut buf = unread;
        let end = buf.len();
        buf.resize(end.max(8 * 1024), 0);
        Self {
            reader,
            decoder: Decoder::new(max_frame),
            buf: buf.into_boxed_slice(),
            start: 0,
            end,
        }
    }

    /// The next frame, or `None` at a clean end of the stream.
    pub async fn next(&mut self) -> Option<Result<T, ReadError>> {
        loop {
            if self.start < self.end {
                let mut input = &self.buf[self.start..self.end];
                let before = input.len();
                let item = self.decoder.next_frame(&mut input);
                self.start += before - input.len();
                if let Some(item) = item {
                    return Some(item.map_err(ReadError::from));
                }
            }
            match self.reader.read(&mut self.buf).await {
                Ok(0) if self.decoder.is_idle() => return None,
                Ok(0) => return Some(Err(ReadError::Truncated)),
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Some(Err(err.into())),
            }
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }

    /// Hands the stream back with what was read from it but not yet returned as frames (a
    /// partial frame included), for a caller that reads on by itself.
    pub fn into_parts(self) -> (R, Vec<u8>) {
        let mut rest = &self.buf[self.start..self.end];
        let mut unread = if self.decoder.skipping {
            // The rest of a line too long to keep is dropped, as `next` would drop it.
            rest = memchr::memchr(b'\n', rest).map_or(&[][..], |at| &rest[at + 1..]);
            Vec::new()
        } else {
            self.decoder.pending
        };
        unread.extend_from_slice(rest);
        (self.reader, unread)
    }
}

/// Writes frames to an async byte stream.
pub struct FrameWriter<W> {
    writer: W,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer over `writer`.
    pub fn new(writer: W) -> Self {
        Self { writer }
    }

    /// Writes already encoded frames and flushes.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.writer.write_all(frame.as_bytes()).await?;
        self.writer.flush().await
    }

    /// Encodes and writes one frame, then flushes.
    pub async fn send_frame<T: WireFrame>(&mut self, frame: &T) -> io::Result<()> {
        self.send(&Frame::encode(frame)).await
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerFrame;

    #[test]
    fn into_parts_hands_back_what_was_not_returned() {
        let bytes = b"{\"type\":\"ping\"}\n{\"type\":\"pong\"}\n{\"type\":\"pi".to_vec();
        let mut reader =
            FrameReader::<_, ServerFrame>::new(futures_lite::io::Cursor::new(bytes), 1024);
        let first = futures_lite::future::block_on(reader.next());
        assert!(
            matches!(first, Some(Ok(ServerFrame::Ping { .. }))),
            "{first:?}"
        );
        let (_, unread) = reader.into_parts();
        assert_eq!(unread, b"{\"type\":\"pong\"}\n{\"type\":\"pi");
    }

    #[test]
    fn into_parts_drops_the_rest_of_a_line_too_long() {
        let mut bytes = vec![b'x'; 100];
        bytes.extend_from_slice(b"\n{\"type\":\"pong\"}\n");
        let mut reader =
            FrameReader::<_, ServerFrame>::new(futures_lite::io::Cursor::new(bytes), 40);
        let first = futures_lite::future::block_on(reader.next());
        assert!(
            matches!(
                first,
                Some(Err(ReadError::Decode(DecodeError::TooLong { .. })))
            ),
            "{first:?}"
        );
        let (_, unread) = reader.into_parts();
        assert_eq!(unread, b"{\"type\":\"pong\"}\n");
    }

    #[test]
    fn from_parts_reads_what_was_handed_back_first() {
        let mut reader = FrameReader::<_, ServerFrame>::from_parts(
            futures_lite::io::Cursor::new(b"ng\"}\n".to_vec()),
            1024,
            b"{\"type\":\"pong\"}\n{\"type\":\"pi".to_vec(),
        );
        let frames: Vec<_> = futures_lite::future::block_on(async {
            let mut frames = Vec::new();
            while let Some(frame) = reader.next().await {
                frames.push(frame.expect("decodes"));
            }
            frames
        });
        assert!(
            matches!(
                frames.as_slice(),
                [ServerFrame::Pong { .. }, ServerFrame::Ping { .. }]
            ),
            "{frames:?}"
        );
    }
}
