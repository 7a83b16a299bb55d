//! Every example line of the protocol document and of this crate's README decodes to what it
//! says.

use chat_shared::{ClientFrame, Frame, LeaveReason, Limits, ServerFrame, WireFrame, decode_line};

fn decode<T: WireFrame>(line: &str) -> T {
    match decode_line(line.as_bytes()) {
        Ok(frame) => frame,
        Err(err) => panic!("{line}: {err}"),
    }
}

/// The example session of the protocol specification ("A session, by hand"), line by line.
#[test]
fn protocol_session_example() {
    assert_eq!(
        decode::<ClientFrame>(r#"{"type":"hello","protocol":1,"name":"alice"}"#),
        ClientFrame::Hello {
            password: None,
            register: false,
            protocol: 1,
            name: "alice".into(),
            since: None,
            epoch: None,
            token: None
        }
    );
    assert_eq!(
        decode::<ServerFrame>(
            r#"{"type":"welcome","protocol":1,"name":"alice","users":["alice","bob","carol"],"seq":41,"oldest":1,"epoch":"k3x9","token":"9f2c41d07be8a6e5","limits":{"max_frame":16384,"max_text":4096,"max_name":32,"rate":5,"burst":20}}"#
        ),
        ServerFrame::Welcome {
            account: false,
            conversations: None,
            rooms: Vec::new(),
            protocol: 1,
            name: "alice".into(),
            users: vec!["alice".into(), "bob".into(), "carol".into()],
            seq: 41,
            oldest: 1,
            epoch: "k3x9".into(),
            token: "9f2c41d07be8a6e5".into(),
            limits: Limits {
                max_frame: 16384,
                max_text: 4096,
                max_name: 32,
                rate: 5,
                burst: 20
            },
            admin: false,
            password_reset: false,
            invites: Vec::new()
        }
    );
    assert_eq!(
        decode::<ServerFrame>(
            r#"{"type":"message","seq":40,"time":1764000000000,"from":"bob","text":"earlier"}"#
        ),
        ServerFrame::Message {
            with: None,
            me: false,
            room: None,
            seq: 40,
            time: 1_764_000_000_000,
            from: "bob".into(),
            text: "earlier".into(),
            id: None,
            deleted: false,
            reply_to: None,
            edited: None,
            reactions: Vec::new(),
        }
    );
    assert_eq!(
        decode::<ServerFrame>(r#"{"type":"joined","seq":41,"time":1764000000500,"name":"carol"}"#),
        ServerFrame::Joined {
            room: None,
            seq: 41,
            time: 1_764_000_000_500,
            name: "carol".into()
        }
    );
    assert_eq!(
        decode::<ClientFrame>(r#"{"type":"say","text":"ciao a tutti","id":"5b1e0c9a7d3f2e84"}"#),
        ClientFrame::Say {
            to: None,
            me: false,
            reply_to: None,
            room: None,
            text: "ciao a tutti".into(),
            id: Some("5b1e0c9a7d3f2e84".into())
        }
    );
    assert_eq!(
        decode::<ServerFrame>(
            r#"{"type":"message","seq":43,"time":1764000002000,"from":"alice","text":"ciao a tutti","id":"5b1e0c9a7d3f2e84"}"#
        ),
        ServerFrame::Message {
            with: None,
            me: false,
            room: None,
            seq: 43,
            time: 1_764_000_002_000,
            from: "alice".into(),
            text: "ciao a tutti".into(),
            id: Some("5b1e0c9a7d3f2e84".into()),
            deleted: false,
            reply_to: None,
            edited: None,
            reactions: Vec::new(),
        }
    );
    assert_eq!(decode::<ClientFrame>(r#"{"type":"bye"}"#), ClientFrame::Bye);
}

/// Frames that the protocol tables describe, with optional fields and codes.
#[test]
fn protocol_table_frames() {
    assert_eq!(
        decode::<ServerFrame>(
            r#"{"type":"left","seq":5,"time":1,"name":"bob","reason":"quit","extra":true}"#
        ),
        ServerFrame::Left {
            room: None,
            seq: 5,
            time: 1,
            name: "bob".into(),
            reason: LeaveReason::Quit,
            by: None,
            message: None
        }
    );
    // A newer server's code decodes to Unknown instead of failing.
    assert!(matches!(
        decode::<ServerFrame>(r#"{"type":"left","seq":5,"time":1,"name":"bob","reason":"exiled"}"#),
        ServerFrame::Left {
            reason: LeaveReason::Unknown,
            ..
        }
    ));
    assert_eq!(
        decode::<ClientFrame>(r#"{"type":"history","before":8}"#),
        ClientFrame::History {
            with: None,
            room: None,
            before: Some(8),
            after: None,
            limit: None
        }
    );
    assert_eq!(
        decode::<ClientFrame>(
            r#"{"type":"hello","protocol":1,"name":"a","since":4,"epoch":"e","token":"t"}"#
        ),
        ClientFrame::Hello {
            password: None,
            register: false,
            protocol: 1,
            name: "a".into(),
            since: Some(4),
            epoch: Some("e".into()),
            token: Some("t".into())
        }
    );
}

/// Every JSON line of the README's nc session decodes, and re-encodes to the same bytes.
#[test]
fn readme_session_lines_decode() {
    let readme = include_str!("../README.md");
    let mut seen = 0;
    for line in readme.lines() {
        if let Some(client) = line.strip_prefix("> {") {
            let line = format!("{{{client}");
            let frame: ClientFrame = decode(&line);
            assert_eq!(
                Frame::encode(&frame).as_bytes(),
                format!("{line}\n").as_bytes()
            );
            seen += 1;
        } else if line.starts_with("{\"type\"") {
            let frame: ServerFrame = decode(line);
            assert_eq!(
                Frame::encode(&frame).as_bytes(),
                format!("{line}\n").as_bytes()
            );
            seen += 1;
        }
    }
    assert!(seen >= 14, "only {seen} example lines found");
}
