//! Property tests of the codec and the name rules (1,000+ cases each).

use chat_shared::limits::{MAX_FRAME, MAX_NAME};
use chat_shared::{
    ClientFrame, CloseCode, Conversation, DecodeError, Decoder, ErrorCode, Frame, LeaveReason,
    Limits, Name, NameError, Password, RejectCode, RoomName, ServerFrame,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(1000)
}

/// Any Unicode text, weighted towards what breaks JSON and framing.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\r'),
                Just('\0'),
                Just('\u{1F600}'),
                Just('\u{202E}'),
                Just('\u{FEFF}'),
                any::<char>(),
            ],
            0..40
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (
            any::<u32>(),
            text(),
            proptest::option::of(any::<u64>()),
            opt_text(),
            opt_text(),
            (opt_text(), any::<bool>())
        )
            .prop_map(
                |(protocol, name, since, epoch, token, (password, register))| ClientFrame::Hello {
                    password: password.map(Password::new),
                    register,
                    protocol,
                    name,
                    since,
                    epoch,
                    token
                }
            ),
        (text(), opt_text(), opt_text()).prop_map(|(text, id, to)| ClientFrame::Say {
            to,
            me: false,
            reply_to: None,
            room: None,
            text,
            id
        }),
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>()),
            opt_text()
        )
            .prop_map(|(before, after, limit, with)| ClientFrame::History {
                with,
                room: None,
                before,
                after,
                limit
            }),
        opt_text().prop_map(|token| ClientFrame::Ping { token }),
        opt_text().prop_map(|token| ClientFrame::Pong { token }),
        Just(ClientFrame::Bye),
        (text(), text()).prop_map(|(password, new_password)| ClientFrame::SetPassword {
            password: Password::new(password),
            new_password: Password::new(new_password),
        }),
    ]
}

fn welcome() -> impl Strategy<Value = ServerFrame> {
    let limits = (any::<[u32; 5]>()).prop_map(|l| Limits {
        max_frame: l[0],
        max_text: l[1],
        max_name: l[2],
        rate: l[3],
        burst: l[4],
    });
    (
        text(),
        proptest::collection::vec(text(), 0..5),
        any::<[u64; 2]>(),
        text(),
        text(),
        limits,
        proptest::option::of(proptest::collection::vec(
            (text(), any::<u64>(), any::<u64>()).prop_map(|(with, seq, read)| Conversation {
                with,
                seq,
                read,
            }),
            0..3,
        )),
    )
        .prop_map(
            |(name, users, [seq, oldest], epoch, token, limits, conversations)| {
                ServerFrame::Welcome {
                    account: conversations.is_some(),
                    conversations,
                    rooms: Vec::new(),
                    protocol: 1,
                    name,
                    users,
                    seq,
                    oldest,
                    epoch,
                    token,
                    limits,
                    admin: false,
                    password_reset: false,
                    invites: Vec::new(),
                }
            },
        )
}

/// A message with all it may carry: an answer to another, an edit, reactions.
fn message() -> impl Strategy<Value = ServerFrame> {
    (
        any::<[u64; 2]>(),
        (text(), text(), opt_text(), opt_text()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        proptest::collection::vec(
            (
                text(),
                any::<u32>(),
                proptest::collection::vec(text(), 0..3),
            ),
            0..3,
        ),
    )
        .prop_map(
            |([seq, time], (from, text, id, with), reply_to, edited, reactions)| {
                ServerFrame::Message {
                    with,
                    me: false,
                    room: None,
                    seq,
                    time,
                    from,
                    text,
                    id,
                    deleted: false,
                    reply_to,
                    edited,
                    reactions: reactions
                        .into_iter()
                        .map(|(emoji, count, names)| chat_shared::Reaction {
                            emoji,
                            count,
                            names,
                        })
                        .collect(),
                }
            },
        )
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        welcome(),
        (
            prop_oneof![
                Just(RejectCode::NameTaken),
                Just(RejectCode::InvalidName),
                Just(RejectCode::ServerFull),
                Just(RejectCode::Unavailable),
                Just(RejectCode::TlsRequired),
                Just(RejectCode::NameRegistered),
                Just(RejectCode::TooManyAttempts)
            ],
            text(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(code, message, retry_after)| ServerFrame::Rejected {
                code,
                message,
                retry_after
            }),
        message(),
        (any::<[u64; 2]>(), text()).prop_map(|([seq, time], name)| ServerFrame::Joined {
            room: None,
            seq,
            time,
            name
        }),
        (
            any::<[u64; 2]>(),
            text(),
            prop_oneof![
                Just(LeaveReason::Quit),
                Just(LeaveReason::Lost),
                Just(LeaveReason::Timeout),
                Just(LeaveReason::Kicked)
            ]
        )
            .prop_map(|([seq, time], name, reason)| ServerFrame::Left {
                room: None,
                seq,
                time,
                name,
                reason,
                by: None,
                message: None
            }),
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            any::<u32>()
        )
            .prop_map(|(before, after, count)| ServerFrame::HistoryEnd {
                with: None,
                room: None,
                before,
                after,
                count
            }),
        (
            prop_oneof![
                Just(ErrorCode::BadFrame),
                Just(ErrorCode::RateLimited),
                Just(ErrorCode::Unavailable)
            ],
            text(),
            opt_text(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(code, message, id, retry_after)| ServerFrame::Error {
                room: None,
                code,
                message,
                id,
                retry_after,
                until: None
            }),
        (
            prop_oneof![Just(CloseCode::Shutdown), Just(CloseCode::Flood)],
            text()
        )
            .prop_map(|(code, message)| ServerFrame::Closing { code, message }),
        opt_text().prop_map(|token| ServerFrame::Ping { token }),
        opt_text().prop_map(|token| ServerFrame::Pong { token }),
    ]
}

/// Decodes everything in `chunks`, in order, with one decoder.
fn decode_chunks<T: chat_shared::WireFrame>(
    chunks: &[&[u8]],
    max_frame: usize,
) -> Vec<Result<T, DecodeError>> {
    let mut decoder = Decoder::new(max_frame);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut input = *chunk;
        while let Some(item) = decoder.next_frame(&mut input) {
            out.push(item);
        }
        assert!(decoder.pending_len() < max_frame);
    }
    out
}

/// Splits `bytes` at the given cut points.
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let encoded = Frame::encode(&frame);
        let bytes = encoded.as_bytes();
        prop_assert_eq!(encoded.count(), 1);
        prop_assert_eq!(bytes.last(), Some(&b'\n'));
        let decoded = decode_chunks::<ClientFrame>(&[bytes], usize::MAX);
        prop_assert_eq!(decoded, vec![Ok(frame)]);
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        let encoded = Frame::encode(&frame);
        let decoded = decode_chunks::<ServerFrame>(&[encoded.as_bytes()], usize::MAX);
        prop_assert_eq!(decoded, vec![Ok(frame)]);
    }

    #[test]
    fn any_chunking_decodes_the_same(
        frames in proptest::collection::vec(client_frame(), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        separators in proptest::collection::vec(
            prop_oneof![Just("\n"), Just("\r\n"), Just("\n\n"), Just("\r\n\r\n"), Just("\n\r\n")],
            8,
        ),
    ) {
        let mut stream = Vec::new();
        for (frame, separator) in frames.iter().zip(&separators) {
            let encoded = Frame::encode(frame);
            let line = encoded.as_bytes();
            stream.extend_from_slice(&line[..line.len() - 1]);
            stream.extend_from_slice(separator.as_bytes());
        }
        let whole = decode_chunks::<ClientFrame>(&[&stream], usize::MAX);
        let chunked = decode_chunks::<ClientFrame>(&split(&stream, &cuts), usize::MAX);
        prop_assert_eq!(&whole, &chunked);
        let want: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(whole, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_overflow(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        max_frame in 2usize..300,
    ) {
        // decode_chunks asserts the held bytes stay under the limit after every chunk.
        let _ = decode_chunks::<ClientFrame>(&split(&bytes, &cuts), max_frame);
        let _ = decode_chunks::<ServerFrame>(&split(&bytes, &cuts), max_frame);
    }

    #[test]
    fn oversized_frame_is_reported_and_the_next_decodes(
        filler in proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..3000),
        extra in 0usize..64,
        next in client_frame(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let max_frame = 256;
        // A line of at least max_frame bytes before its newline is too long.
        let mut stream = vec![b'x'; max_frame + extra];
        stream.extend_from_slice(&filler);
        stream.push(b'\n');
        let next_line = Frame::encode(&next);
        stream.extend_from_slice(next_line.as_bytes());
        let limit = max_frame.max(next_line.len());
        let out = decode_chunks::<ClientFrame>(&split(&stream, &cuts), limit);
        prop_assume!(limit == max_frame || max_frame + extra + filler.len() >= limit);
        prop_assert_eq!(out.len(), 2);
        prop_assert_eq!(&out[0], &Err(DecodeError::TooLong { limit }));
        prop_assert_eq!(&out[1], &Ok(next));
    }

    #[test]
    fn the_limit_counts_the_newline(frame in client_frame(), cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
        let encoded = Frame::encode(&frame);
        let bytes = encoded.as_bytes();
        let exact = decode_chunks::<ClientFrame>(&split(bytes, &cuts), bytes.len());
        prop_assert_eq!(exact, vec![Ok(frame)]);
        let limit = bytes.len() - 1;
        let short = decode_chunks::<ClientFrame>(&split(bytes, &cuts), limit);
        prop_assert_eq!(short, vec![Err(DecodeError::TooLong { limit })]);
    }

    #[test]
    fn names_accept_exactly_the_documented_set(raw in name_like()) {
        match Name::parse(&raw) {
            Ok(name) => {
                prop_assert!(follows_rules(name.as_str()), "accepted {:?}", name.as_str());
                // Parsing is idempotent.
                let again = Name::parse(name.as_str());
                prop_assert_eq!(again.as_ref(), Ok(&name));
            }
            Err(err) => {
                let normal: String = unicode_normalization::UnicodeNormalization::nfc(raw.as_str()).collect();
                prop_assert!(!follows_rules(normal.trim()), "refused {:?}: {}", raw, err);
            }
        }
    }

    #[test]
    fn room_names_are_names_without_spaces(raw in name_like(), sign in any::<bool>()) {
        let raw = if sign { format!("#{raw}") } else { raw };
        let normal: String = unicode_normalization::UnicodeNormalization::nfc(raw.as_str()).collect();
        let bare = normal.trim();
        let bare = bare.strip_prefix('#').unwrap_or(bare);
        match RoomName::parse(&raw) {
            Ok(room) => {
                prop_assert!(follows_rules(room.as_str()) && !room.as_str().contains(' '), "accepted {:?}", room.as_str());
                prop_assert_eq!(RoomName::parse(room.as_str()), Ok(room.clone()));
                prop_assert_eq!(RoomName::parse(&format!("#{room}")), Ok(room.clone()));
            }
            Err(err) => {
                prop_assert!(!follows_rules(bare.trim()) || bare.contains(' '), "refused {:?}: {}", raw, err);
            }
        }
    }

    #[test]
    fn name_keys_are_case_insensitive(raw in name_like()) {
        if let Ok(name) = Name::parse(&raw) {
            for variant in [name.as_str().to_uppercase(), name.as_str().to_lowercase()] {
                if let Ok(other) = Name::parse(&variant) {
                    prop_assert!(name.keys().collides(&other.keys()), "{} vs {}", name, other);
                    prop_assert_eq!(&name.keys().folded, &other.keys().folded);
                }
            }
        }
    }

    #[test]
    fn name_keys_are_an_equivalence(a in name_like(), b in name_like(), c in name_like()) {
        let keys: Vec<_> = [a, b, c].iter().filter_map(|r| Name::parse(r).ok()).map(|n| n.keys()).collect();
        for x in &keys {
            prop_assert!(x.collides(x));
            for y in &keys {
                prop_assert_eq!(x.collides(y), y.collides(x));
                for z in &keys {
                    if x.folded == y.folded && y.folded == z.folded {
                        prop_assert_eq!(&x.folded, &z.folded);
                    }
                    if x.skeleton == y.skeleton && y.skeleton == z.skeleton {
                        prop_assert_eq!(&x.skeleton, &z.skeleton);
                    }
                }
            }
        }
    }
}

/// Candidate names: mostly allowed characters, with every kind of forbidden one mixed in.
fn name_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range('a', 'z'),
            2 => proptest::char::range('A', 'Z'),
            1 => proptest::char::range('0', '9'),
            1 => Just(' '),
            1 => prop_oneof![Just('_'), Just('-'), Just('.'), Just('!'), Just('@')],
            1 => prop_oneof![Just('\u{0301}'), Just('\u{200D}'), Just('\u{200C}')],
            1 => prop_oneof![Just('\u{202E}'), Just('\u{200B}'), Just('\u{0007}'), Just('\u{E000}'), Just('\u{0378}')],
            1 => prop_oneof![Just('é'), Just('ß'), Just('Ж'), Just('ж'), Just('中'), Just('١'), Just('İ')],
            1 => any::<char>(),
        ],
        0..40,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// The name rules of the protocol (shared/README.md), written independently of the implementation: the set of
/// characters a trimmed NFC name may hold.
fn follows_rules(name: &str) -> bool {
    use unicode_normalization::char::is_combining_mark;
    let chars: Vec<char> = name.chars().collect();
    if chars.is_empty() || chars.len() > MAX_NAME || name.trim() != name {
        return false;
    }
    let letter = |c: char| c.is_alphabetic() && !is_combining_mark(c);
    chars.iter().enumerate().all(|(i, &c)| {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        match c {
            '_' | '-' | '.' => true,
            ' ' => prev.is_some_and(|p| p != ' ') && next.is_some_and(|n| n != ' '),
            '\u{200C}' | '\u{200D}' => {
                prev.is_some_and(|p| letter(p) || is_combining_mark(p))
                    && next.is_some_and(|n| letter(n) || is_combining_mark(n))
            }
            c if is_combining_mark(c) => chars[..i]
                .iter()
                .rev()
                .find(|p| !is_combining_mark(**p))
                .is_some_and(|p| letter(*p)),
            c => !c.is_control() && (letter(c) || c.is_numeric()),
        }
    })
}

#[test]
fn name_errors_are_distinct() {
    assert_eq!(Name::parse(""), Err(NameError::Empty));
    assert!(matches!(
        Name::parse(&"x".repeat(MAX_NAME + 1)),
        Err(NameError::TooLong(_))
    ));
}

#[test]
fn max_frame_default_is_16k() {
    assert_eq!(MAX_FRAME, 16384);
}
