//! The protocol suites for rooms, accounts, direct messages, moderation, a message's life
//! and search (`suites/`), run again with their clients spread over two nodes that share a Redis of their own (`--redis`, AOF with
//! `appendfsync always`): where a suite asks for a server, [`start`] here starts two nodes,
//! and each client connects to the next node in turn. Tests that start server processes of
//! their own run as they do alone. The flags are the suites' own, with `--redis` in place
//! of `--memory`.

use chat_tests::{Config, Deployment};

/// Where the suites' servers run: two nodes of a cluster of their own.
fn start(config: Config) -> Deployment {
    chat_tests::start_cluster(config, 2)
}

#[path = "suites/rooms.rs"]
mod rooms;

#[path = "suites/accounts.rs"]
mod accounts;

#[path = "suites/server_protocol.rs"]
mod server_protocol;

#[path = "suites/moderation.rs"]
mod moderation;

#[path = "suites/life.rs"]
mod life;

#[path = "suites/search.rs"]
mod search;
