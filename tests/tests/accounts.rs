//! Accounts, direct messages and TLS against one server: the suite in
//! `suites/accounts.rs`.

use chat_tests::{Config, Deployment};

/// Where the suite's servers run: one server, as configured.
fn start(config: Config) -> Deployment {
    chat_tests::start(config)
}

#[path = "suites/accounts.rs"]
mod accounts;
