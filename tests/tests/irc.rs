//! The IRC port against the real server over real sockets: IRC clients and protocol
//! clients in the same rooms, registration as IRC servers answer it, accounts through SASL
//! and `PASS`, direct messages both ways, and a cluster with the two on different nodes.
//!
//! Server flags: `--port 0 --memory` and the IRC port on a free port (`Config::irc`),
//! flood control on at its defaults (5 posts a second, bursts of 20); the cluster test
//! runs two nodes on a Redis of its own (`--redis`).

use std::net::SocketAddr;
use std::time::Duration;

use chat_shared::{ClientFrame, ServerFrame};
use chat_tests::irc::{IrcClient, IrcLine, plain};
use chat_tests::{Client, Config, Storage, hello_account, run_for, say_to, test_config};

const LIMIT: Duration = Duration::from_secs(60);

/// `test_config()` with the IRC port on a free port.
fn with_irc() -> Config {
    Config {
        irc: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..test_config()
    }
}

/// What the tests ask for: times, ids and tags, and one's own messages back.
const CAPS: &[&str] = &["server-time", "message-tags", "echo-message"];

/// Registers `name` as an account over the protocol and stays logged in.
async fn account(addr: SocketAddr, name: &str) -> Client {
    Client::login_with(addr, &hello_account(name, &password(name), true))
        .await
        .0
}

fn password(name: &str) -> String {
    format!("{name}-secret-words")
}

fn frame(kind: &str, fields: serde_json::Value) -> ClientFrame {
    let mut value = fields;
    value["type"] = kind.into();
    serde_json::from_value(value).expect("a client frame")
}

/// Sends `frame` and reads up to the event of `room` it recorded; returns that event's
/// seq.
async fn recorded(client: &mut Client, frame: &ClientFrame, room: &str) -> u64 {
    client.send(frame).await;
    let seen = client
        .recv_until(|f| {
            f.room() == Some(room) && f.seq().is_some() || matches!(f, ServerFrame::Error { .. })
        })
        .await;
    let last = seen.last().expect("a frame");
    last.seq()
        .unwrap_or_else(|| panic!("{frame:?} answered {last:?}"))
}

/// A message from the IRC side, as the protocol side gets it.
async fn message_from(client: &mut Client, from: &str) -> ServerFrame {
    client
        .recv_until(|f| matches!(f, ServerFrame::Message { from: who, .. } if who == from))
        .await
        .pop()
        .expect("a message")
}

/// The next line with `command` from `nick`.
async fn from(irc: &mut IrcClient, command: &str, nick: &str) -> IrcLine {
    irc.until(|line| line.command == command && line.nick() == nick)
        .await
        .pop()
        .expect("a line")
}

#[test]
fn irc_and_protocol_users_share_a_room_both_ways() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut bob = account(server.addr(), "bob").await;
        let joined = recorded(
            &mut bob,
            &frame("join", serde_json::json!({"room": "plans"})),
            "plans",
        )
        .await;
        assert!(joined > 0);
        let mut ann = IrcClient::guest(irc_addr, "ann", CAPS).await;
        ann.send("JOIN #plans").await;
        let join = ann.expect("JOIN").await;
        assert_eq!((join.nick(), join.param(0)), ("ann", "#plans"));
        let names = ann.expect("353").await;
        let mut listed: Vec<&str> = names.text().split(' ').collect();
        listed.sort_unstable();
        assert_eq!(listed, ["ann", "~bob"], "the owner has ~");
        ann.expect("366").await;
        bob.recv_until(|f| matches!(f, ServerFrame::Joined { name, room: Some(room), .. } if name == "ann" && room == "plans"))
            .await;

        // A message of two lines is two PRIVMSGs with one id.
        let said = recorded(
            &mut bob,
            &say_to_room("plans", "hello\nsecond line"),
            "plans",
        )
        .await;
        let first = from(&mut ann, "PRIVMSG", "bob").await;
        let second = ann.line().await;
        assert_eq!((first.param(0), first.text()), ("#plans", "hello"));
        assert_eq!(second.text(), "second line");
        let msgid = format!("plans/{said}");
        assert_eq!(first.tag("msgid"), Some(msgid.as_str()));
        assert_eq!(second.tag("msgid"), first.tag("msgid"));
        assert!(
            first.tag("time").is_some_and(|t| t.ends_with('Z')),
            "{first:?}"
        );

        // From IRC: formatting stripped, an ACTION is a /me, echo-message answers.
        ann.send("PRIVMSG #plans :hi \x02there\x02").await;
        let ServerFrame::Message { text, seq: hi, .. } = message_from(&mut bob, "ann").await else {
            unreachable!()
        };
        assert_eq!(text, "hi there");
        let echo = from(&mut ann, "PRIVMSG", "ann").await;
        assert_eq!(echo.tag("msgid"), Some(format!("plans/{hi}").as_str()));
        ann.send("PRIVMSG #plans :\x01ACTION waves\x01").await;
        let ServerFrame::Message { text, me, .. } = message_from(&mut bob, "ann").await else {
            unreachable!()
        };
        assert_eq!((text.as_str(), me), ("waves", true));
        assert_eq!(
            from(&mut ann, "PRIVMSG", "ann").await.text(),
            "\x01ACTION waves\x01"
        );

        a_messages_life_crosses_over(&mut bob, &mut ann, said, hi).await;
    });
}

/// Topics, typing, reactions, edits, deletions, settings and a removal, each way they go.
async fn a_messages_life_crosses_over(bob: &mut Client, ann: &mut IrcClient, said: u64, hi: u64) {
    recorded(
        bob,
        &frame(
            "topic",
            serde_json::json!({"room": "plans", "text": "Friday at 6"}),
        ),
        "plans",
    )
    .await;
    let topic = from(ann, "TOPIC", "bob").await;
    assert_eq!((topic.param(0), topic.text()), ("#plans", "Friday at 6"));

    bob.send(&frame("typing", serde_json::json!({"room": "plans"})))
        .await;
    let typing = from(ann, "TAGMSG", "bob").await;
    assert_eq!(typing.tag("+typing"), Some("active"));
    ann.send("@+typing=active TAGMSG #plans").await;
    bob.recv_until(|f| matches!(f, ServerFrame::Typing { name, .. } if name == "ann"))
        .await;

    recorded(
        bob,
        &frame(
            "react",
            serde_json::json!({"room": "plans", "seq": hi, "emoji": "👍", "on": true}),
        ),
        "plans",
    )
    .await;
    let reaction = from(ann, "TAGMSG", "bob").await;
    assert_eq!(reaction.tag("+draft/react"), Some("👍"));
    assert_eq!(
        reaction.tag("+draft/reply"),
        Some(format!("plans/{hi}").as_str())
    );
    ann.send(&format!(
        "@+draft/react=🎉;+draft/reply=plans/{said} TAGMSG #plans"
    ))
    .await;
    let reacted = bob
        .recv_until(|f| matches!(f, ServerFrame::Reaction { from, .. } if from == "ann"))
        .await
        .pop();
    assert!(
        matches!(reacted, Some(ServerFrame::Reaction { target, ref emoji, on: true, .. }) if target == said && emoji == "🎉"),
        "{reacted:?}"
    );

    recorded(
        bob,
        &frame(
            "edit",
            serde_json::json!({"room": "plans", "seq": said, "text": "hello again"}),
        ),
        "plans",
    )
    .await;
    let edit = from(ann, "NOTICE", "bob").await;
    assert_eq!(
        (edit.param(0), edit.text()),
        ("#plans", "(edited) hello again")
    );
    recorded(
        bob,
        &frame("delete", serde_json::json!({"room": "plans", "seq": said})),
        "plans",
    )
    .await;
    let deleted = from(ann, "NOTICE", "bob").await;
    assert!(deleted.text().contains("deleted a message"), "{deleted:?}");

    recorded(
        bob,
        &frame(
            "settings",
            serde_json::json!({"room": "plans", "invite_only": true}),
        ),
        "plans",
    )
    .await;
    let mode = from(ann, "MODE", "bob").await;
    assert_eq!(mode.params, ["#plans", "+i"]);
    ann.send("MODE #plans").await;
    assert_eq!(ann.expect("324").await.param(2), "+i");

    recorded(
        bob,
        &frame(
            "remove",
            serde_json::json!({"room": "plans", "name": "ann", "message": "enough"}),
        ),
        "plans",
    )
    .await;
    let kick = from(ann, "KICK", "bob").await;
    assert_eq!(kick.params, ["#plans", "ann", "enough"]);
    ann.send("PRIVMSG #plans :still here?").await;
    let refused = ann.expect("404").await;
    assert_eq!(refused.param(1), "#plans");
    ann.send("NOTICE #plans :a notice is never answered").await;
    ann.send("PING :next").await;
    assert_eq!(ann.line().await.command, "PONG");
}

#[test]
fn registration_is_answered_as_irc_servers_answer_it() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let _carol = Client::login_v3(server.addr(), "carol").await;
        let mut irc = IrcClient::connect(irc_addr).await;
        irc.send("JOIN #general").await;
        assert_eq!(irc.line().await.command, "451", "not registered yet");
        irc.send("NICK a*b").await;
        let bad = irc.line().await;
        assert_eq!((bad.command.as_str(), bad.param(1)), ("432", "a*b"));
        irc.send("NICK Carol").await;
        irc.send("USER u 0 * :someone").await;
        let taken = irc.line().await;
        assert_eq!(
            (taken.command.as_str(), taken.param(1)),
            ("433", "Carol"),
            "{taken:?}"
        );
        irc.send("NICK carol2").await;
        irc.welcomed().await;
        assert_eq!(irc.nick, "carol2");

        irc.send(&format!("PRIVMSG #general :{}", "x".repeat(600)))
            .await;
        assert_eq!(irc.line().await.command, "417");
        irc.send("PING :still-here").await;
        let pong = irc.expect("PONG").await;
        assert_eq!(pong.text(), "still-here");
        irc.send("NICK someone-else").await;
        assert_eq!(irc.line().await.command, "447");
        irc.send("FROB").await;
        assert_eq!(irc.line().await.param(1), "FROB");
        irc.send("QUIT :bye").await;
        let rest = irc.to_end().await;
        assert_eq!(
            rest.last().map(|line| line.command.as_str()),
            Some("ERROR"),
            "{rest:?}"
        );
    });
}

#[test]
fn accounts_log_in_with_sasl_or_pass_and_talk_directly() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut dave = account(server.addr(), "dave").await;
        drop(account(server.addr(), "erin").await);
        drop(account(server.addr(), "frank").await);

        let mut irc = IrcClient::connect(irc_addr).await;
        irc.send("CAP LS 302").await;
        let listed = irc.expect("CAP").await;
        assert!(
            listed.text().split(' ').any(|cap| cap == "sasl=PLAIN"),
            "{listed:?}"
        );
        irc.send("CAP REQ :sasl echo-message").await;
        irc.expect("CAP").await;
        irc.send("NICK erin").await;
        irc.send("USER u 0 * :Erin").await;
        irc.send("AUTHENTICATE PLAIN").await;
        irc.expect("AUTHENTICATE").await;
        irc.send(&format!("AUTHENTICATE {}", plain("erin", "wrong-password")))
            .await;
        assert_eq!(irc.line().await.command, "904");
        irc.send("AUTHENTICATE PLAIN").await;
        irc.expect("AUTHENTICATE").await;
        irc.send(&format!(
            "AUTHENTICATE {}",
            plain("erin", &password("erin"))
        ))
        .await;
        assert_eq!(irc.line().await.command, "900");
        assert_eq!(irc.line().await.command, "903");
        irc.send("CAP END").await;
        irc.welcomed().await;

        irc.send("PRIVMSG dave :hello dave").await;
        let ServerFrame::Message { with, text, .. } = message_from(&mut dave, "erin").await else {
            unreachable!()
        };
        assert_eq!(
            (with.as_deref(), text.as_str()),
            (Some("erin"), "hello dave")
        );
        let echo = from(&mut irc, "PRIVMSG", "erin").await;
        assert_eq!(echo.params, ["dave", "hello dave"]);
        dave.send(&say_to("erin", "hello erin", None)).await;
        let answer = from(&mut irc, "PRIVMSG", "dave").await;
        assert_eq!(answer.params, ["erin", "hello erin"]);

        // PASS: a wrong password is 464 and the registration goes on.
        let mut frank = IrcClient::connect(irc_addr).await;
        frank.send("PASS not-it-at-all").await;
        frank.send("NICK frank").await;
        frank.send("USER u 0 * :Frank").await;
        assert_eq!(frank.line().await.command, "464");
        frank.send(&format!("PASS {}", password("frank"))).await;
        frank.welcomed().await;
        assert_eq!(frank.nick, "frank");

        // A guest has no direct messages: the reason comes as a notice.
        let mut guest = IrcClient::guest(irc_addr, "gus", &[]).await;
        guest.send("PRIVMSG dave :hi").await;
        let notice = guest.expect("NOTICE").await;
        assert!(notice.text().contains("account"), "{notice:?}");
    });
}

#[test]
fn an_irc_user_on_one_node_talks_with_a_protocol_user_on_another() {
    let cluster = chat_tests::start_cluster(with_irc(), 2);
    let (nodes, irc_nodes) = (cluster.addrs(), cluster.irc_addrs());
    run_for(LIMIT, async {
        let mut bob = account(nodes[1], "bob").await;
        let mut ann = IrcClient::guest(irc_nodes[0], "ann", CAPS).await;
        ann.join("#general").await;
        bob.recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "ann"))
            .await;
        ann.send("PRIVMSG #general :from node one").await;
        let ServerFrame::Message { text, .. } = message_from(&mut bob, "ann").await else {
            unreachable!()
        };
        assert_eq!(text, "from node one");
        bob.send(&say_to_room("general", "from node two")).await;
        let line = from(&mut ann, "PRIVMSG", "bob").await;
        assert_eq!((line.param(0), line.text()), ("#general", "from node two"));
        assert!(
            line.tag("msgid")
                .is_some_and(|id| id.starts_with("general/"))
        );
    });
}

/// The messages of a `history` page: seq and text.
async fn history_page(client: &mut Client, room: &str, before: Option<u64>) -> Vec<(u64, String)> {
    client
        .send(&ClientFrame::History {
            room: Some(room.into()),
            with: None,
            before,
            after: None,
            limit: Some(10),
        })
        .await;
    client
        .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
        .await
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Message { seq, text, .. } => Some((seq, text)),
            _ => None,
        })
        .collect()
}

/// A `CHATHISTORY` page: the messages of its batch, as seq and text.
async fn chathistory_page(irc: &mut IrcClient, command: &str) -> Vec<(u64, String)> {
    irc.send(command).await;
    let start = irc.expect("BATCH").await;
    assert_eq!(start.param(1), "chathistory", "{start:?}");
    let id = start.param(0).trim_start_matches('+').to_string();
    let lines = irc.until(|line| line.command == "BATCH").await;
    let (end, messages) = lines.split_last().expect("the batch's end");
    assert_eq!(end.param(0), format!("-{id}"));
    messages
        .iter()
        .map(|line| {
            assert_eq!(line.tag("batch"), Some(id.as_str()), "{line:?}");
            let msgid = line.tag("msgid").expect("a msgid");
            let seq = msgid
                .rsplit_once('/')
                .expect("room/seq")
                .1
                .parse()
                .expect("a seq");
            (seq, line.text().to_string())
        })
        .collect()
}

#[test]
fn chathistory_pages_are_the_history_pages() {
    // Flood control off (`--rate 0`): 30 posts go at once.
    let server = chat_tests::start(Config {
        rate: 0,
        ..with_irc()
    });
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut bob = account(server.addr(), "bob").await;
        for i in 0..30 {
            recorded(
                &mut bob,
                &say_to_room("general", &format!("post {i}")),
                "general",
            )
            .await;
        }
        let caps = ["server-time", "message-tags", "batch", "draft/chathistory"];
        let mut ann = IrcClient::guest(irc_addr, "ann", &caps).await;
        let latest = chathistory_page(&mut ann, "CHATHISTORY LATEST #general * 10").await;
        assert_eq!(latest, history_page(&mut bob, "general", None).await);
        assert_eq!(
            latest.last().map(|(_, text)| text.as_str()),
            Some("post 29")
        );
        let oldest = latest[0].0;
        let before = chathistory_page(
            &mut ann,
            &format!("CHATHISTORY BEFORE #general msgid=general/{oldest} 10"),
        )
        .await;
        assert_eq!(
            before,
            history_page(&mut bob, "general", Some(oldest)).await
        );
        assert_eq!(before.len(), 10);

        let after = chathistory_page(
            &mut ann,
            &format!("CHATHISTORY AFTER #general msgid=general/{} 3", before[0].0),
        )
        .await;
        assert_eq!(after, before[1..4]);
        let (from, to) = (before[2].0, before[6].0);
        let between = chathistory_page(
            &mut ann,
            &format!("CHATHISTORY BETWEEN #general msgid=general/{from} msgid=general/{to} 50"),
        )
        .await;
        assert_eq!(between, before[3..6]);
        // With a limit, BETWEEN goes from its first reference towards its second.
        let forwards = chathistory_page(
            &mut ann,
            &format!("CHATHISTORY BETWEEN #general msgid=general/{from} msgid=general/{to} 2"),
        )
        .await;
        assert_eq!(forwards, before[3..5]);
        let backwards = chathistory_page(
            &mut ann,
            &format!("CHATHISTORY BETWEEN #general msgid=general/{to} msgid=general/{from} 2"),
        )
        .await;
        assert_eq!(backwards, before[4..6]);
        let newer = chathistory_page(
            &mut ann,
            &format!(
                "CHATHISTORY LATEST #general msgid=general/{} 50",
                latest[7].0
            ),
        )
        .await;
        assert_eq!(newer, latest[8..]);

        ann.send("CHATHISTORY BEFORE #general timestamp=2026-13-01T00:00:00.000Z 10")
            .await;
        let refused = ann.expect("FAIL").await;
        assert_eq!(refused.params[..2], ["CHATHISTORY", "INVALID_PARAMS"]);
    });
}

/// A page of the protocol's `history` of `room`: each event's seq and time, and the text
/// of the messages.
async fn timed_page(
    client: &mut Client,
    room: &str,
    (before, after): (Option<u64>, Option<u64>),
    limit: u32,
) -> Vec<(u64, u64, Option<String>)> {
    client
        .send(&ClientFrame::History {
            room: Some(room.into()),
            with: None,
            before,
            after,
            limit: Some(limit),
        })
        .await;
    client
        .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
        .await
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Message {
                seq, time, text, ..
            } => Some((seq, time, Some(text))),
            ServerFrame::Joined { seq, time, .. } => Some((seq, time, None)),
            _ => None,
        })
        .collect()
}

/// The messages of a page as `chathistory_page` gives them.
fn messages(page: &[(u64, u64, Option<String>)]) -> Vec<(u64, String)> {
    page.iter()
        .filter_map(|(seq, _, text)| Some((*seq, text.clone()?)))
        .collect()
}

/// The time tags of a channel's newest messages, by seq, as a `CHATHISTORY` page gives
/// them.
async fn time_tags(irc: &mut IrcClient, channel: &str) -> std::collections::HashMap<u64, String> {
    irc.send(&format!("CHATHISTORY LATEST {channel} * 100"))
        .await;
    irc.expect("BATCH").await;
    irc.until(|line| line.command == "BATCH")
        .await
        .iter()
        .filter_map(|line| {
            let seq = line.tag("msgid")?.rsplit_once('/')?.1.parse().ok()?;
            Some((seq, line.tag("time")?.to_string()))
        })
        .collect()
}

/// Bob posts twelve messages in general, with a history request (some time) after every
/// third.
async fn twelve_posts(addr: SocketAddr) {
    let mut bob = account(addr, "bob").await;
    for i in 0..12 {
        let post = say_to_room("general", &format!("post {i}"));
        recorded(&mut bob, &post, "general").await;
        if i % 3 == 2 {
            let _ = timed_page(&mut bob, "general", (None, None), 1).await;
        }
    }
}

#[test]
fn chathistory_finds_pages_by_time_in_the_window_and_in_the_store() {
    // Once with `--memory` (times looked up in the room's window), once with the store
    // (`--data DIR`) after a restart, when the window is empty and the log is searched.
    // Flood control off (`--rate 0`).
    let dir = chat_tests::TempDir::new("irc-history");
    for storage in [Storage::Memory, Storage::Dir(dir.path().to_path_buf())] {
        let config = Config {
            rate: 0,
            storage: storage.clone(),
            ..with_irc()
        };
        let server = chat_tests::start(config.clone());
        run_for(LIMIT, twelve_posts(server.addr()));
        let server = if matches!(storage, Storage::Dir(_)) {
            drop(server);
            chat_tests::start(config)
        } else {
            server
        };
        let irc_addr = server.irc_addrs()[0];
        run_for(LIMIT, async {
            let (mut bob, _) = Client::login_with(
                server.addr(),
                &hello_account("bob", &password("bob"), false),
            )
            .await;
            let all = timed_page(&mut bob, "general", (None, None), 100).await;
            let posts: Vec<&(u64, u64, Option<String>)> =
                all.iter().filter(|(_, _, text)| text.is_some()).collect();
            assert_eq!(posts.len(), 12, "{all:?}");
            // The first event at or after a time, and after it.
            let first_at = |time: u64| all.iter().find(|e| e.1 >= time).map_or(u64::MAX, |e| e.0);
            let first_after = |time: u64| all.iter().find(|e| e.1 > time).map_or(u64::MAX, |e| e.0);
            let caps = ["server-time", "message-tags", "batch", "draft/chathistory"];
            let mut ann = IrcClient::guest(irc_addr, "ann", &caps).await;
            let tags = time_tags(&mut ann, "#general").await;
            let stamp = |time: u64| {
                let seq = posts.iter().find(|p| p.1 == time).map(|p| p.0);
                format!("timestamp={}", tags[&seq.expect("a post's time")])
            };

            let at = posts[6].1;
            let before = chathistory_page(
                &mut ann,
                &format!("CHATHISTORY BEFORE #general {} 4", stamp(at)),
            )
            .await;
            let expected = timed_page(&mut bob, "general", (Some(first_at(at)), None), 4).await;
            assert_eq!(before, messages(&expected));
            assert!(!before.is_empty());

            let after = chathistory_page(
                &mut ann,
                &format!("CHATHISTORY AFTER #general {} 4", stamp(at)),
            )
            .await;
            let from = first_after(at).saturating_sub(1);
            let expected = timed_page(&mut bob, "general", (None, Some(from)), 4).await;
            assert_eq!(after, messages(&expected));
            assert!(after.iter().all(|(seq, _)| *seq >= first_after(at)));

            let (t1, t2) = (posts[1].1, posts[10].1);
            let inside: Vec<(u64, String)> = all
                .iter()
                .filter(|(_, time, text)| text.is_some() && t1 < *time && *time < t2)
                .map(|(seq, _, text)| (*seq, text.clone().unwrap_or_default()))
                .collect();
            for (a, b) in [(t1, t2), (t2, t1)] {
                let between = chathistory_page(
                    &mut ann,
                    &format!("CHATHISTORY BETWEEN #general {} {} 50", stamp(a), stamp(b)),
                )
                .await;
                assert_eq!(between, inside, "BETWEEN {a} {b}");
            }

            let around = chathistory_page(
                &mut ann,
                &format!("CHATHISTORY AROUND #general {} 3", stamp(at)),
            )
            .await;
            assert!(
                around.iter().any(|(seq, _)| *seq == first_at(at)),
                "{around:?} around {}",
                first_at(at)
            );

            let latest = chathistory_page(
                &mut ann,
                &format!("CHATHISTORY LATEST #general {} 50", stamp(at)),
            )
            .await;
            let newer: Vec<(u64, String)> = messages(&all)
                .into_iter()
                .filter(|(seq, _)| *seq >= first_after(at))
                .collect();
            assert_eq!(latest, newer);

            ann.send(
                "CHATHISTORY BETWEEN #general msgid=general/3 timestamp=2026-01-01T00:00:00.000Z 5",
            )
            .await;
            let refused = ann.expect("FAIL").await;
            assert_eq!(refused.params[..2], ["CHATHISTORY", "INVALID_PARAMS"]);
        });
    }
}

/// The targets a `CHATHISTORY TARGETS` lists, with their times; the batch it comes in is
/// checked on the way.
async fn targets(irc: &mut IrcClient, from: &str, to: &str, limit: u32) -> Vec<(String, String)> {
    irc.send(&format!("CHATHISTORY TARGETS {from} {to} {limit}"))
        .await;
    let start = irc.expect("BATCH").await;
    assert_eq!(start.param(1), "draft/chathistory-targets", "{start:?}");
    let id = start.param(0).trim_start_matches('+').to_string();
    let lines = irc.until(|line| line.command == "BATCH").await;
    let (end, listed) = lines.split_last().expect("the batch's end");
    assert_eq!(end.param(0), format!("-{id}"));
    listed
        .iter()
        .map(|line| {
            assert_eq!(
                (line.command.as_str(), line.param(0), line.tag("batch")),
                ("CHATHISTORY", "TARGETS", Some(id.as_str())),
                "{line:?}"
            );
            (line.param(1).to_string(), line.param(2).to_string())
        })
        .collect()
}

#[test]
fn chathistory_targets_lists_channels_and_conversations_by_their_newest_message() {
    // Flood control off (`--rate 0`).
    let server = chat_tests::start(Config {
        rate: 0,
        ..with_irc()
    });
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut bob = account(server.addr(), "bob").await;
        let mut carol = account(server.addr(), "carol").await;
        drop(account(server.addr(), "ann").await);
        let caps = [
            "server-time",
            "message-tags",
            "batch",
            "labeled-response",
            "draft/chathistory",
        ];
        let mut ann = IrcClient::account(irc_addr, "ann", &password("ann"), &caps).await;
        for channel in ["#general", "#plans", "#quiet"] {
            ann.join(channel).await;
        }
        recorded(
            &mut carol,
            &frame("join", serde_json::json!({"room": "plans"})),
            "plans",
        )
        .await;
        // A message in #general, one from bob directly, one in #plans: each one's time is
        // the time its line carries.
        recorded(&mut bob, &say_to_room("general", "first"), "general").await;
        let general = from(&mut ann, "PRIVMSG", "bob").await;
        bob.send(&say_to("ann", "psst", None)).await;
        let direct = from(&mut ann, "PRIVMSG", "bob").await;
        assert_eq!(direct.param(0), "ann");
        recorded(&mut carol, &say_to_room("plans", "later"), "plans").await;
        let plans = from(&mut ann, "PRIVMSG", "carol").await;
        let time = |line: &IrcLine| line.tag("time").expect("a time").to_string();
        // Oldest first; rooms before conversations at the same time.
        let mut all = vec![
            ("#general".to_string(), time(&general)),
            ("#plans".to_string(), time(&plans)),
            ("bob".to_string(), time(&direct)),
        ];
        all.sort_by(|a, b| a.1.cmp(&b.1));

        let (early, late) = (
            "timestamp=2020-01-01T00:00:00.000Z",
            "timestamp=2262-01-01T00:00:00.000Z",
        );
        assert_eq!(
            targets(&mut ann, early, late, 10).await,
            all,
            "#quiet has none"
        );
        assert_eq!(
            targets(&mut ann, late, early, 10).await,
            all,
            "either order"
        );
        assert_eq!(targets(&mut ann, early, late, 1).await, all[..1]);
        // Both times are left out.
        let first = format!("timestamp={}", all[0].1);
        let later: Vec<_> = all.iter().filter(|t| t.1 > all[0].1).cloned().collect();
        assert_eq!(targets(&mut ann, &first, late, 10).await, later);

        // Labeled: the batch goes inside the label's.
        ann.send(&format!("@label=t1 CHATHISTORY TARGETS {early} {late} 10"))
            .await;
        let outer = ann.expect("BATCH").await;
        assert_eq!(
            (outer.tag("label"), outer.param(1)),
            (Some("t1"), "labeled-response")
        );
        let inner = ann.expect("BATCH").await;
        assert_eq!(inner.param(1), "draft/chathistory-targets");
        let outer_id = outer.param(0).trim_start_matches('+');
        assert_eq!(inner.tag("batch"), Some(outer_id));

        ann.send(&format!("CHATHISTORY TARGETS msgid=general/1 {late} 10"))
            .await;
        let refused = ann.expect("FAIL").await;
        assert_eq!(
            refused.params[..3],
            ["CHATHISTORY", "INVALID_PARAMS", "TARGETS"]
        );
    });
}

#[test]
fn an_accounts_lines_carry_its_name_and_joins_say_who_is_one() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut bob = account(server.addr(), "bob").await;
        drop(account(server.addr(), "ann").await);
        let caps = ["account-tag", "extended-join", "echo-message"];
        let mut ann = IrcClient::account(irc_addr, "ann", &password("ann"), &caps).await;
        ann.send("JOIN #general").await;
        let own = from(&mut ann, "JOIN", "ann").await;
        assert_eq!(own.params, ["#general", "ann", "ann"], "{own:?}");
        assert_eq!(own.tag("account"), Some("ann"));

        // An account's message, and a guest's join and message.
        recorded(
            &mut bob,
            &say_to_room("general", "from an account"),
            "general",
        )
        .await;
        let said = from(&mut ann, "PRIVMSG", "bob").await;
        assert_eq!(said.tag("account"), Some("bob"), "{said:?}");
        let (mut gus, _) = Client::login(server.addr(), "gus").await;
        let joined = from(&mut ann, "JOIN", "gus").await;
        assert_eq!(joined.params, ["#general", "*", "gus"], "{joined:?}");
        assert_eq!(joined.tag("account"), None);
        recorded(&mut gus, &say_to_room("general", "from a guest"), "general").await;
        let said = from(&mut ann, "PRIVMSG", "gus").await;
        assert_eq!(said.tag("account"), None, "{said:?}");

        // Direct messages are between accounts; one's own echo is tagged too.
        bob.send(&say_to("ann", "psst", None)).await;
        assert_eq!(
            from(&mut ann, "PRIVMSG", "bob").await.tag("account"),
            Some("bob")
        );
        ann.send("PRIVMSG #general :mine").await;
        assert_eq!(
            from(&mut ann, "PRIVMSG", "ann").await.tag("account"),
            Some("ann")
        );

        ann.send("WHOIS bob").await;
        let logged_in = ann.expect("330").await;
        assert_eq!(logged_in.params[1..3], ["bob", "bob"]);
        ann.send("WHOIS gus").await;
        let whois = ann.until(|line| line.command == "318").await;
        assert!(whois.iter().all(|line| line.command != "330"), "{whois:?}");
    });
}

/// A `say` to a room.
fn say_to_room(room: &str, text: &str) -> ClientFrame {
    frame("say", serde_json::json!({"room": room, "text": text}))
}

#[test]
fn deletions_are_redactions_both_ways() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut bob = account(server.addr(), "bob").await;
        drop(account(server.addr(), "carol").await);
        // Only an account may delete what it wrote.
        let caps = ["message-tags", "draft/message-redaction"];
        let mut carol = IrcClient::account(irc_addr, "carol", &password("carol"), &caps).await;
        carol.join("#general").await;
        carol.send("PRIVMSG #general :a typo").await;
        let ServerFrame::Message { seq, .. } = message_from(&mut bob, "carol").await else {
            unreachable!()
        };
        carol.send(&format!("REDACT #general general/{seq}")).await;
        let deleted = bob
            .recv_until(|f| matches!(f, ServerFrame::Deleted { .. }))
            .await
            .pop();
        assert!(
            matches!(deleted, Some(ServerFrame::Deleted { target, ref by, .. }) if target == seq && by == "carol"),
            "{deleted:?}"
        );
        let said = recorded(&mut bob, &say_to_room("general", "oops"), "general").await;
        recorded(
            &mut bob,
            &frame(
                "delete",
                serde_json::json!({"room": "general", "seq": said}),
            ),
            "general",
        )
        .await;
        let redact = from(&mut carol, "REDACT", "bob").await;
        assert_eq!(
            redact.params,
            ["#general", format!("general/{said}").as_str()]
        );
        carol.send("REDACT #general nonsense").await;
        assert_eq!(carol.expect("FAIL").await.param(1), "UNKNOWN_MSGID");
        // Refusals name what was asked: another's message, one already deleted.
        carol.send(&format!("REDACT #general general/{said}")).await;
        let fail = carol.expect("FAIL").await;
        let id = format!("general/{said}");
        assert_eq!(
            fail.params[..4],
            ["REDACT", "UNKNOWN_MSGID", "#general", id.as_str()],
            "{fail:?}"
        );
        let kept = recorded(&mut bob, &say_to_room("general", "keep this"), "general").await;
        carol.send(&format!("REDACT #general general/{kept}")).await;
        let fail = carol.expect("FAIL").await;
        let id = format!("general/{kept}");
        assert_eq!(
            fail.params[..4],
            ["REDACT", "REDACT_FORBIDDEN", "#general", id.as_str()],
            "{fail:?}"
        );
    });
}

#[test]
fn leaving_the_chat_is_one_quit_however_many_channels_are_shared() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut ann = IrcClient::guest(irc_addr, "ann", &[]).await;
        ann.join("#a").await;
        ann.join("#b").await;
        let (mut bob, _) = Client::login_v3(server.addr(), "bob").await;
        for room in ["a", "b"] {
            recorded(
                &mut bob,
                &frame("join", serde_json::json!({"room": room})),
                room,
            )
            .await;
        }
        assert_eq!(from(&mut ann, "JOIN", "bob").await.param(0), "#a");
        assert_eq!(from(&mut ann, "JOIN", "bob").await.param(0), "#b");
        bob.send(&ClientFrame::Bye).await;
        let quit = ann.line().await;
        assert_eq!(
            (quit.command.as_str(), quit.nick()),
            ("QUIT", "bob"),
            "{quit:?}"
        );
        // Nothing more about bob: the next line answers this ping.
        ann.send("PING :after").await;
        let next = ann.line().await;
        assert_eq!(
            (next.command.as_str(), next.text()),
            ("PONG", "after"),
            "{next:?}"
        );
        ann.send("NAMES #b").await;
        assert_eq!(ann.expect("353").await.text(), "ann");
    });
}

#[test]
fn the_irc_tls_port_takes_passwords_with_the_servers_certificate() {
    // `--tls-self-signed` and `--irc-tls-port` (a free port).
    let dir = chat_tests::TempDir::new("irc-tls");
    let server = chat_tests::start(Config {
        tls: Some(chat_server::TlsSetup::SelfSigned(dir.path().to_path_buf())),
        irc_tls: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..test_config()
    });
    let endpoint = chat_tests::Endpoint::tls(server.addr(), &dir.path().join("tls-cert.pem"));
    let irc_tls = server.irc_tls_addrs()[0];
    run_for(LIMIT, async {
        let (mut dave, _) =
            Client::login_at(&endpoint, &hello_account("dave", &password("dave"), true)).await;
        dave.send(&frame("join", serde_json::json!({"room": "vault"})))
            .await;
        dave.recv_until(|f| matches!(f, ServerFrame::Room { .. }))
            .await;
        drop(Client::login_at(&endpoint, &hello_account("erin", &password("erin"), true)).await);
        let mut erin = IrcClient::connect_with(irc_tls, endpoint.tls.as_ref()).await;
        erin.send(&format!("PASS {}", password("erin"))).await;
        erin.send("NICK erin").await;
        erin.send("USER u 0 * :Erin").await;
        erin.welcomed().await;
        erin.join("#vault").await;
        erin.send("PRIVMSG #vault :over TLS").await;
        let ServerFrame::Message { text, .. } = message_from(&mut dave, "erin").await else {
            unreachable!()
        };
        assert_eq!(text, "over TLS");
    });
}

#[test]
fn an_irc_login_takes_over_an_accounts_session_with_its_channels() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut fay = account(server.addr(), "fay").await;
        recorded(
            &mut fay,
            &frame("join", serde_json::json!({"room": "den"})),
            "den",
        )
        .await;
        recorded(&mut fay, &say_to_room("den", "before"), "den").await;
        let (mut gil, _) = Client::login_v3(server.addr(), "gil").await;
        recorded(
            &mut gil,
            &frame("join", serde_json::json!({"room": "den"})),
            "den",
        )
        .await;
        // The same account over IRC, asked in another case: the session moves, rooms and
        // all.
        let mut irc = IrcClient::connect(irc_addr).await;
        irc.send(&format!("PASS {}", password("fay"))).await;
        irc.send("NICK FAY").await;
        irc.send("USER u 0 * :Fay").await;
        let lines = irc
            .until(|line| line.command == "366" && line.param(1) == "#den")
            .await;
        let commands: Vec<&str> = lines.iter().map(|line| line.command.as_str()).collect();
        assert!(commands.contains(&"NICK"), "FAY becomes fay: {commands:?}");
        let joined: Vec<&str> = lines
            .iter()
            .filter(|line| line.command == "JOIN")
            .map(|line| line.param(0))
            .collect();
        assert!(
            joined.contains(&"#general") && joined.contains(&"#den"),
            "{joined:?}"
        );
        assert!(
            !lines.iter().any(|line| line.command == "PRIVMSG"),
            "history is not replayed: {lines:?}"
        );
        let names = lines
            .iter()
            .rev()
            .find(|line| line.command == "353")
            .expect("names");
        let mut listed: Vec<&str> = names.text().split(' ').collect();
        listed.sort_unstable();
        assert_eq!(listed, ["gil", "~fay"]);
        fay.recv_until(|f| matches!(f, ServerFrame::Closing { .. }))
            .await;
        gil.send(&say_to_room("den", "after")).await;
        assert_eq!(from(&mut irc, "PRIVMSG", "gil").await.text(), "after");
    });
}

/// Reads up to the answer labeled `label`: one line, or the lines of its
/// `labeled-response` batch (inner batches and all); lines of other answers in between
/// are passed over.
async fn labeled(irc: &mut IrcClient, label: &str) -> Vec<IrcLine> {
    let first = irc
        .until(|line| line.tag("label").is_some())
        .await
        .pop()
        .expect("a line");
    assert_eq!(first.tag("label"), Some(label), "{first:?}");
    if first.command != "BATCH" || first.param(1) != "labeled-response" {
        return vec![first];
    }
    let id = first.param(0).trim_start_matches('+').to_string();
    let mut lines = irc
        .until(|line| line.command == "BATCH" && line.param(0) == format!("-{id}"))
        .await;
    lines.pop();
    lines
}

/// Flags: `--port 0 --memory`, the IRC port, flood control on. With `labeled-response`,
/// what answers a labeled command carries its label, whether the IRC side answers it
/// (`PONG` aside, which goes through the session) or the hub does: one line labeled, several
/// in a `labeled-response` batch, none as `ACK`; what is not an answer is not labeled.
#[test]
fn labeled_commands_get_their_answers_with_their_label() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let caps = [
            "server-time",
            "message-tags",
            "echo-message",
            "batch",
            "labeled-response",
            "draft/chathistory",
        ];
        let mut ann = IrcClient::guest(irc_addr, "ann", &caps).await;
        ann.send("@label=p1 PING token").await;
        let pong = labeled(&mut ann, "p1").await;
        assert_eq!(
            (pong[0].command.as_str(), pong[0].text()),
            ("PONG", "token")
        );
        ann.send("@label=p2 PONG token").await;
        assert_eq!(labeled(&mut ann, "p2").await[0].command, "ACK");

        ann.send("@label=j1 JOIN #lab").await;
        let joined = labeled(&mut ann, "j1").await;
        let commands: Vec<&str> = joined.iter().map(|l| l.command.as_str()).collect();
        assert_eq!(commands, ["JOIN", "353", "366"], "{joined:?}");

        // A post: its echo, labeled; the others get it unlabeled.
        let (mut bob, _) = Client::login_v3(server.addr(), "bob").await;
        bob.send(&frame("join", serde_json::json!({"room": "lab"})))
            .await;
        from(&mut ann, "JOIN", "bob").await;
        ann.send("@label=m1 PRIVMSG #lab,#nowhere :hello").await;
        let answer = labeled(&mut ann, "m1").await;
        let commands: Vec<&str> = answer.iter().map(|l| l.command.as_str()).collect();
        assert_eq!(commands, ["404", "PRIVMSG"], "{answer:?}");
        assert_eq!(answer[1].text(), "hello");
        let hello = message_from(&mut bob, "ann").await;
        assert!(matches!(&hello, ServerFrame::Message { text, .. } if text == "hello"));

        // Without echo-message, a post is answered with ACK once recorded.
        let mut cat = IrcClient::guest(irc_addr, "cat", &["batch", "labeled-response"]).await;
        cat.join("#lab").await;
        cat.send("@label=q1 PRIVMSG #lab :quiet").await;
        assert_eq!(labeled(&mut cat, "q1").await[0].command, "ACK");
        let quiet = message_from(&mut bob, "cat").await;
        assert!(matches!(&quiet, ServerFrame::Message { text, .. } if text == "quiet"));

        // The hub's refusal (a guest's room has no owner to set its topic) is labeled.
        ann.send("@label=t1 TOPIC #lab :new topic").await;
        let refused = labeled(&mut ann, "t1").await;
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].command, "482", "{refused:?}");

        // Lines the IRC side answers itself.
        ann.send("@label=w1 WHO #lab").await;
        let who = labeled(&mut ann, "w1").await;
        let commands: Vec<&str> = who.iter().map(|l| l.command.as_str()).collect();
        assert_eq!(commands, ["352", "352", "352", "315"], "{who:?}");

        // A page of history: its chathistory batch inside the labeled one.
        ann.send("@label=h1 CHATHISTORY LATEST #lab * 10").await;
        let page = labeled(&mut ann, "h1").await;
        let (start, rest) = page.split_first().expect("a page");
        assert_eq!(
            (start.command.as_str(), start.param(1)),
            ("BATCH", "chathistory")
        );
        let texts: Vec<&str> = rest
            .iter()
            .filter(|line| line.command == "PRIVMSG")
            .map(IrcLine::text)
            .collect();
        assert_eq!(texts, ["hello", "quiet"]);

        // bob's next message comes unlabeled.
        bob.send(&say_to_room("lab", "after")).await;
        let after = from(&mut ann, "PRIVMSG", "bob").await;
        assert_eq!((after.text(), after.tag("label")), ("after", None));
    });
}

/// Reads a join's answer up to its 366; returns the `MARKREAD` it held before the 366.
async fn joined_with_marker(irc: &mut IrcClient, channel: &str) -> String {
    irc.send(&format!("JOIN {channel}")).await;
    let lines = irc
        .until(|line| line.command == "366" && line.param(1) == channel)
        .await;
    let marker = lines
        .iter()
        .find(|line| line.command == "MARKREAD")
        .unwrap_or_else(|| panic!("no MARKREAD before 366: {lines:?}"));
    assert_eq!(marker.param(0), channel);
    marker.param(1).to_string()
}

/// Flags: `--port 0 --memory`, the IRC port, flood control on. `draft/read-marker`: a
/// join says where the read marker stands (before its 366), `MARKREAD` sets it to a
/// message's time (never back) and reads it, and it is the same read marker the protocol's
/// `read` keeps: set over IRC, it is the `room` answer's `read` for the desktop client.
/// A direct conversation's marker over IRC: none yet, then at the message bob sends,
/// which `carol` marks read by its time. Returns its seq and `timestamp=…`.
async fn marks_a_direct_message(bob: &mut Client, carol: &mut IrcClient) -> (u64, String) {
    carol.send("MARKREAD bob").await;
    assert_eq!(carol.expect("MARKREAD").await.params, ["bob", "*"]);
    bob.send(&say_to("carol", "psst", None)).await;
    let seq = bob
        .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "psst"))
        .await
        .last()
        .and_then(ServerFrame::seq)
        .expect("a seq");
    let line = from(carol, "PRIVMSG", "bob").await;
    let stamp = format!("timestamp={}", line.tag("time").expect("a time"));
    carol.send(&format!("MARKREAD bob {stamp}")).await;
    assert_eq!(carol.expect("MARKREAD").await.params, ["bob", &stamp]);
    (seq, stamp)
}

#[test]
fn read_markers_are_the_protocols_read_markers() {
    let server = chat_tests::start(with_irc());
    let irc_addr = server.irc_addrs()[0];
    run_for(LIMIT, async {
        let mut bob = account(server.addr(), "bob").await;
        drop(account(server.addr(), "carol").await);
        let caps = ["server-time", "draft/read-marker"];
        let mut carol = IrcClient::account(irc_addr, "carol", &password("carol"), &caps).await;
        assert_eq!(joined_with_marker(&mut carol, "#general").await, "*");
        let mut seqs = Vec::new();
        let mut times = Vec::new();
        for text in ["one", "two", "three"] {
            bob.send(&say_to_room("general", text)).await;
            let said = bob
                .recv_until(|f| matches!(f, ServerFrame::Message { text: t, .. } if t == text))
                .await;
            seqs.push(said.last().and_then(ServerFrame::seq).expect("a seq"));
            let line = from(&mut carol, "PRIVMSG", "bob").await;
            assert_eq!(line.text(), text);
            times.push(line.tag("time").expect("a time").to_string());
        }
        let stamp = |i: usize| format!("timestamp={}", times[i]);
        carol.send(&format!("MARKREAD #general {}", stamp(1))).await;
        assert_eq!(
            carol.expect("MARKREAD").await.params,
            ["#general", &stamp(1)]
        );
        // Never back; a get answers where it stands.
        carol.send(&format!("MARKREAD #general {}", stamp(0))).await;
        assert_eq!(
            carol.expect("MARKREAD").await.params,
            ["#general", &stamp(1)]
        );
        carol.send("MARKREAD #general").await;
        assert_eq!(
            carol.expect("MARKREAD").await.params,
            ["#general", &stamp(1)]
        );
        carol.send("MARKREAD #general yesterday").await;
        assert_eq!(carol.expect("FAIL").await.param(1), "INVALID_PARAMS");
        // Where no marker is kept, a get answers `*` and a set is refused.
        carol.send("MARKREAD #elsewhere").await;
        assert_eq!(carol.expect("MARKREAD").await.params, ["#elsewhere", "*"]);
        carol
            .send(&format!("MARKREAD #elsewhere {}", stamp(1)))
            .await;
        assert_eq!(carol.expect("FAIL").await.param(1), "INVALID_PARAMS");
        let (direct_seq, psst) = marks_a_direct_message(&mut bob, &mut carol).await;
        carol.send("QUIT").await;
        carol.to_end().await;

        // The desktop client's room answer carries it: the newest message at or before
        // that time (posts in the same millisecond share it).
        let read = (0..3)
            .filter(|i| times[*i] <= times[1])
            .map(|i| seqs[i])
            .max();
        let hello = hello_account("carol", &password("carol"), false);
        let (mut desktop, welcome) = Client::login_with(server.addr(), &hello).await;
        let ServerFrame::Welcome { conversations, .. } = welcome else {
            unreachable!()
        };
        let with_bob = conversations
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.with == "bob");
        assert_eq!(
            with_bob.map(|c| c.read),
            Some(direct_seq),
            "the conversation's marker"
        );
        desktop
            .send(&frame("join", serde_json::json!({"room": "general"})))
            .await;
        let answer = desktop
            .recv_until(|f| matches!(f, ServerFrame::Room { .. }))
            .await
            .pop();
        assert!(
            matches!(answer, Some(ServerFrame::Room { read: got, .. }) if Some(got) == read),
            "{answer:?}"
        );
        desktop.send(&ClientFrame::Bye).await;
        desktop.recv_to_end().await;

        // And a later IRC join says so; the conversation's marker has its time once the
        // message it names was shown (here by a page of history).
        let mut carol = IrcClient::account(irc_addr, "carol", &password("carol"), &caps).await;
        assert_eq!(joined_with_marker(&mut carol, "#general").await, stamp(1));
        carol.send("CHATHISTORY LATEST bob * 10").await;
        from(&mut carol, "PRIVMSG", "bob").await;
        carol.send("MARKREAD bob").await;
        assert_eq!(carol.expect("MARKREAD").await.params, ["bob", &psst]);
    });
}
