//! Every rule and code of the protocol against one server: the suite in
//! `suites/server_protocol.rs`.

use chat_tests::{Config, Deployment};

/// Where the suite's servers run: one server, as configured.
fn start(config: Config) -> Deployment {
    chat_tests::start(config)
}

#[path = "suites/server_protocol.rs"]
mod server_protocol;
