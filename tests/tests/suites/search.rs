//! Search (protocol version 3) over real sockets: words, phrases, prefixes, filters, text
//! in many scripts, who may find what, edits, reactions and deletions reflected, and
//! paging with a cursor. Each test states the server flags it uses: `test_config()` (the
//! flag defaults, two threads, `--memory`) with `--rate 0` (flood control off: the tests
//! search more often than five times a second). Where the suite runs on a cluster, each
//! client connects to the next node in turn, so searches go to another node than the
//! posts they find.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_shared::{ClientFrame, ErrorCode, ServerFrame};
use chat_tests::{Client, Config, run_for, test_config};

use super::moderation::{account, code, enter, guest, post, recorded, say_in};
use super::start;

const LIMIT: Duration = Duration::from_secs(60);
/// How long a test waits for the index to show a change (a second is promised).
const FINDABLE: Duration = Duration::from_secs(10);

/// The suite's server flags.
fn config() -> Config {
    Config {
        rate: 0,
        ..test_config()
    }
}

/// A `search` for `query`.
pub(super) fn search(query: &str) -> ClientFrame {
    ClientFrame::Search {
        query: query.into(),
        room: None,
        with: None,
        limit: None,
        cursor: None,
    }
}

/// Sends a search and returns its answer: `search_results` or `error`.
pub(super) async fn ask(client: &mut Client, frame: &ClientFrame) -> ServerFrame {
    client.send(frame).await;
    client
        .recv_until(|f| {
            matches!(
                f,
                ServerFrame::SearchResults { .. } | ServerFrame::Error { .. }
            )
        })
        .await
        .pop()
        .expect("an answer")
}

/// The texts a search finds, best first.
pub(super) async fn texts(client: &mut Client, frame: &ClientFrame) -> Vec<String> {
    match ask(client, frame).await {
        ServerFrame::SearchResults { results, .. } => results.iter().map(text_of).collect(),
        other => panic!("{frame:?} answered {other:?}"),
    }
}

fn text_of(frame: &ServerFrame) -> String {
    match frame {
        ServerFrame::Message { text, .. } => text.clone(),
        other => panic!("not a message: {other:?}"),
    }
}

/// Searches until the texts found are `want` (in any order): the index shows a change
/// within a second. Fails after [`FINDABLE`].
pub(super) async fn until_found(client: &mut Client, frame: &ClientFrame, want: &[&str]) {
    let started = Instant::now();
    let mut want: Vec<String> = want.iter().map(ToString::to_string).collect();
    want.sort();
    loop {
        let mut found = texts(client, frame).await;
        found.sort();
        if found == want {
            return;
        }
        assert!(
            started.elapsed() < FINDABLE,
            "{frame:?} still finds {found:?}, not {want:?}"
        );
        smol::Timer::after(Duration::from_millis(50)).await;
    }
}

/// The suite's people: alice and bob (accounts), both in rust.
async fn alice_and_bob(addr: SocketAddr) -> (Client, Client) {
    let (mut alice, _) = account(addr, "alice").await;
    let (mut bob, _) = account(addr, "bob").await;
    enter(&mut alice, "rust").await;
    enter(&mut bob, "rust").await;
    (alice, bob)
}

#[test]
fn words_phrases_prefixes_and_filters() {
    let deployment = start(config());
    let addr = deployment.addr();
    run_for(LIMIT, async {
        let (mut alice, mut bob) = alice_and_bob(addr).await;
        post(&mut bob, "rust", "the borrow checker is your friend").await;
        post(&mut bob, "rust", "checking the Borrow rules").await;
        post(&mut alice, "rust", "a checker board").await;
        post(&mut bob, "general", "Crème BRÛLÉE tonight?").await;
        let last = post(&mut alice, "general", "the borrow of a checker").await;
        let mut carol = guest(deployment.addrs()[0], "carol").await;
        until_found(&mut carol, &search("brulee"), &["Crème BRÛLÉE tonight?"]).await;
        // A last word as a prefix; every word must match.
        until_found(
            &mut carol,
            &search("borrow chec"),
            &[
                "the borrow checker is your friend",
                "checking the Borrow rules",
                "the borrow of a checker",
            ],
        )
        .await;
        assert_eq!(
            texts(&mut carol, &search("borrow chec ")).await,
            Vec::<String>::new(),
            "a word followed by a space is whole"
        );
        assert_eq!(
            texts(&mut carol, &search("checker board")).await,
            ["a checker board"]
        );
        // Phrases keep their order.
        assert_eq!(
            texts(&mut carol, &search("\"borrow checker\"")).await,
            ["the borrow checker is your friend"]
        );
        assert_eq!(
            texts(&mut carol, &search("\"checker borrow\"")).await,
            Vec::<String>::new()
        );
        // Filters, alone or with words; the newest first when nothing else ranks.
        let mut bobs = texts(&mut carol, &search("from:Bob")).await;
        assert_eq!(
            bobs.first().map(String::as_str),
            Some("Crème BRÛLÉE tonight?")
        );
        bobs.sort();
        assert_eq!(
            bobs,
            [
                "Crème BRÛLÉE tonight?",
                "checking the Borrow rules",
                "the borrow checker is your friend",
            ]
        );
        assert_eq!(
            texts(&mut carol, &search("borrow in:#general")).await,
            ["the borrow of a checker"]
        );
        assert_eq!(
            texts(&mut carol, &search("checker from:alice in:rust")).await,
            ["a checker board"]
        );
        let in_room = ClientFrame::Search {
            query: "borrow".into(),
            room: Some("general".into()),
            with: None,
            limit: None,
            cursor: None,
        };
        assert_eq!(
            texts(&mut carol, &in_room).await,
            ["the borrow of a checker"]
        );
        // Results are messages as history has them.
        let ServerFrame::SearchResults { query, results, .. } =
            ask(&mut carol, &search("\"of a checker\"")).await
        else {
            panic!("no results");
        };
        assert_eq!(query, "\"of a checker\"");
        assert!(
            matches!(&results[..], [ServerFrame::Message { room: Some(room), seq, from, .. }]
                if room == "general" && *seq == last && from == "alice"),
            "{results:?}"
        );
        // What cannot be searched.
        for bad in [
            "",
            "   ",
            "\"open",
            "from:",
            "in:a in:b",
            "in:#no/slash",
            "?!",
        ] {
            assert_eq!(
                code(&ask(&mut carol, &search(bad)).await),
                ErrorCode::BadQuery,
                "{bad:?}"
            );
        }
    });
}

#[test]
fn every_script_is_found_by_its_words() {
    let deployment = start(config());
    let addr = deployment.addr();
    run_for(LIMIT, async {
        let (mut alice, mut bob) = alice_and_bob(addr).await;
        let texts_posted = [
            "我们明天在东京大学见面",
            "東京タワーに行きました",
            "안녕하세요 반갑습니다",
            "สวัสดีครับ ยินดีต้อนรับ",
            "हिन्दी में बात करते हैं",
            "Ça va très bien, merci",
        ];
        for (i, text) in texts_posted.iter().enumerate() {
            // Ids of their own: the helper's would be the text, longer than an id may be.
            bob.send(&say_in("rust", text, &format!("script-{i}")))
                .await;
        }
        let wanted = [
            ("东京大学", "我们明天在东京大学见面"),
            ("明天", "我们明天在东京大学见面"),
            ("タワー", "東京タワーに行きました"),
            ("東京", "東京タワーに行きました"),
            ("반갑습니다", "안녕하세요 반갑습니다"),
            ("ยินดี", "สวัสดีครับ ยินดีต้อนรับ"),
            ("बात", "हिन्दी में बात करते हैं"),
            ("हिन्दी", "हिन्दी में बात करते हैं"),
            ("CA VA TRES", "Ça va très bien, merci"),
        ];
        until_found(&mut alice, &search(wanted[0].0), &[wanted[0].1]).await;
        for (query, text) in wanted {
            assert_eq!(texts(&mut alice, &search(query)).await, [text], "{query}");
        }
        assert_eq!(
            texts(&mut alice, &search("大阪")).await,
            Vec::<String>::new(),
            "characters that are not there"
        );
    });
}

#[test]
fn nobody_finds_what_is_not_theirs_to_read() {
    let deployment = start(config());
    let addr = deployment.addr();
    run_for(LIMIT, async {
        let (mut alice, mut bob) = alice_and_bob(addr).await;
        enter(&mut alice, "secret").await;
        recorded(
            &mut alice,
            &ClientFrame::Settings {
                room: "secret".into(),
                invite_only: true,
                retain_days: None,
            },
            "secret",
        )
        .await;
        post(&mut alice, "secret", "the launch code is swordfish").await;
        bob.send(&ClientFrame::Say {
            room: None,
            to: Some("alice".into()),
            text: "swordfish between us".into(),
            id: None,
            me: false,
            reply_to: None,
        })
        .await;
        post(&mut bob, "rust", "swordfish for dinner").await;
        let (mut carol, _) = account(deployment.addrs()[0], "carol").await;
        let mut guest = guest(deployment.addrs()[1 % deployment.addrs().len()], "dave").await;
        // Alice: her room, her conversation, the public room.
        until_found(
            &mut alice,
            &search("swordfish"),
            &[
                "the launch code is swordfish",
                "swordfish between us",
                "swordfish for dinner",
            ],
        )
        .await;
        // Bob: not in the invite-only room.
        until_found(
            &mut bob,
            &search("swordfish"),
            &["swordfish between us", "swordfish for dinner"],
        )
        .await;
        // Carol (an account) and a guest: the public room only, asked for directly too.
        for client in [&mut carol, &mut guest] {
            assert_eq!(
                texts(client, &search("swordfish")).await,
                ["swordfish for dinner"]
            );
            assert_eq!(
                texts(client, &search("swordfish in:secret")).await,
                Vec::<String>::new()
            );
        }
        // A conversation is searched by its parties only, and `with` asks for it.
        let with = |name: &str| ClientFrame::Search {
            query: "swordfish".into(),
            room: None,
            with: Some(name.into()),
            limit: None,
            cursor: None,
        };
        let ServerFrame::SearchResults { results, .. } = ask(&mut alice, &with("bob")).await else {
            panic!("no results");
        };
        assert!(
            matches!(&results[..], [ServerFrame::Message { with: Some(with), from, .. }]
                if with == "bob" && from == "bob"),
            "alice sees the conversation with bob: {results:?}"
        );
        assert_eq!(texts(&mut carol, &with("bob")).await, Vec::<String>::new());
        assert_eq!(
            code(&ask(&mut guest, &with("bob")).await),
            ErrorCode::AccountRequired
        );
        assert_eq!(
            code(&ask(&mut carol, &with("nobody")).await),
            ErrorCode::NoAccount
        );
        // Once bob is invited and in, the room is his to search too.
        recorded(
            &mut alice,
            &ClientFrame::Invite {
                room: "secret".into(),
                name: "bob".into(),
            },
            "secret",
        )
        .await;
        enter(&mut bob, "secret").await;
        assert_eq!(
            texts(&mut bob, &search("launch")).await,
            ["the launch code is swordfish"]
        );
    });
}

#[test]
fn edits_reactions_and_deletions_are_reflected() {
    let deployment = start(config());
    let addr = deployment.addr();
    run_for(LIMIT, async {
        let (mut alice, mut bob) = alice_and_bob(addr).await;
        let seq = post(&mut bob, "rust", "meet at the old harbour").await;
        until_found(&mut alice, &search("harbour"), &["meet at the old harbour"]).await;
        bob.send(&ClientFrame::Edit {
            room: Some("rust".into()),
            with: None,
            seq,
            text: "meet at the new station".into(),
        })
        .await;
        until_found(&mut alice, &search("station"), &["meet at the new station"]).await;
        assert_eq!(
            texts(&mut alice, &search("harbour")).await,
            Vec::<String>::new(),
            "the old text is not found"
        );
        alice
            .send(&ClientFrame::React {
                room: Some("rust".into()),
                with: None,
                seq,
                emoji: "👍".into(),
                on: true,
            })
            .await;
        let started = Instant::now();
        loop {
            let ServerFrame::SearchResults { results, .. } =
                ask(&mut alice, &search("station")).await
            else {
                panic!("no results");
            };
            if let [
                ServerFrame::Message {
                    reactions, edited, ..
                },
            ] = &results[..]
                && reactions.len() == 1
            {
                assert_eq!(reactions[0].names, ["alice"]);
                assert!(edited.is_some(), "an edited message says so");
                break;
            }
            assert!(started.elapsed() < FINDABLE, "no reaction in {results:?}");
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        bob.send(&ClientFrame::Delete {
            room: Some("rust".into()),
            with: None,
            seq,
        })
        .await;
        until_found(&mut alice, &search("station"), &[]).await;
        assert_eq!(
            texts(&mut alice, &search("from:bob")).await,
            Vec::<String>::new()
        );
    });
}

#[test]
fn pages_follow_each_other_without_gaps_or_repeats() {
    let deployment = start(config());
    let addr = deployment.addr();
    run_for(LIMIT, async {
        let (mut alice, mut bob) = alice_and_bob(addr).await;
        let mut posted = Vec::new();
        for i in 0..23 {
            let text = format!("ticket {i} is done");
            post(&mut bob, "rust", &text).await;
            posted.push(text);
        }
        // Indexed in order: once the last is found, all are.
        until_found(&mut alice, &search("\"ticket 22\""), &["ticket 22 is done"]).await;
        let ask_page = |cursor: Option<String>| ClientFrame::Search {
            query: "ticket done".into(),
            room: None,
            with: None,
            limit: Some(10),
            cursor,
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let ServerFrame::SearchResults {
                results,
                cursor: next,
                ..
            } = ask(&mut alice, &ask_page(cursor.clone())).await
            else {
                panic!("no results");
            };
            pages += 1;
            seen.extend(results.iter().map(text_of));
            if pages == 1 {
                // What is posted between pages does not shift the pages.
                post(&mut bob, "rust", "ticket late is done").await;
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        until_found(&mut alice, &search("late"), &["ticket late is done"]).await;
        seen.sort();
        let mut want = posted.clone();
        want.sort();
        assert_eq!(seen, want, "every message once");
        let over = ClientFrame::Search {
            query: "ticket".into(),
            room: None,
            with: None,
            limit: Some(500),
            cursor: None,
        };
        assert_eq!(
            texts(&mut alice, &over).await.len(),
            24,
            "at most 50 a page"
        );
        assert_eq!(
            code(&ask(&mut alice, &ask_page(Some("not a cursor".into()))).await),
            ErrorCode::BadQuery
        );
    });
}
