//! The protocol suites for rooms, accounts and direct messages, run again with their
//! clients spread over two nodes that share a Redis of their own (`--redis`, AOF with
//! `appendfsync always`): `chat_tests::start` sees that this binary is a `cluster_*` one
//! and starts two nodes where the suites ask for a server, and each client connects to
//! the next node in turn. Tests that start server processes of their own run as they do
//! alone. The flags are the suites' own, with `--redis` in place of `--memory`.

#[path = "rooms.rs"]
mod rooms;

#[path = "accounts.rs"]
mod accounts;

#[path = "server_protocol.rs"]
mod server_protocol;
