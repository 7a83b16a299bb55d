//! Rooms (protocol version 2) against one server: the suite in `suites/rooms.rs`.

use chat_tests::{Config, Deployment};

/// Where the suite's servers run: one server, as configured.
fn start(config: Config) -> Deployment {
    chat_tests::start(config)
}

#[path = "suites/rooms.rs"]
mod rooms;
