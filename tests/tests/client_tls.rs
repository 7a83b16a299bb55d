//! The client's connection over TLS and with accounts, against the real server: trusting a
//! self-signed certificate, refusing a changed one, and an account that comes back by
//! itself. Flags: `test_config()` with `--tls-self-signed` in a temporary directory, or
//! the server process with `--port 0 --data DIR --tls-self-signed` where it restarts.

use std::time::Duration;

use chat_client::connection::{Event, Resume, Target};
use chat_shared::Password;
use chat_tests::{
    Config, Headless, ServerProcess, TempDir, run_for, server_binary, start, test_config,
};

const LIMIT: Duration = Duration::from_secs(60);

fn fingerprint_of(dir: &TempDir) -> String {
    use rustls_pki_types::pem::PemObject;
    let cert = rustls_pki_types::CertificateDer::from_pem_file(
        dir.path().join(chat_server::tls::SELF_SIGNED_CERT),
    )
    .expect("certificate");
    chat_client::tls::fingerprint(&cert)
}

fn target(server: std::net::SocketAddr, name: &str) -> Target {
    Target {
        server: server.to_string(),
        name: name.into(),
        tls: true,
        ..Target::default()
    }
}

/// A certificate nobody vouches for is refused with its fingerprint until it is
/// trusted; trusted, the client logs in; a client that trusted another fingerprint is
/// refused and told both.
#[test]
fn trust_a_self_signed_certificate_and_refuse_a_changed_one() {
    let dir = TempDir::new("client-tls");
    let server = start(Config {
        tls: Some(chat_server::TlsSetup::SelfSigned(dir.path().to_path_buf())),
        ..test_config()
    });
    let fingerprint = fingerprint_of(&dir);
    run_for(LIMIT, async {
        let first = Headless::connect(target(server.addr(), "alice"), Resume::default()).await;
        let seen = first
            .until(|e| matches!(e, Event::Untrusted { .. } | Event::LoggedIn(_)))
            .await;
        assert!(
            matches!(seen.last(), Some(Event::Untrusted { fingerprint: f }) if *f == fingerprint),
            "{seen:?}"
        );

        let trusted = Target {
            trusted: Some(fingerprint.clone()),
            ..target(server.addr(), "alice")
        };
        let alice = Headless::connect(trusted, Resume::default()).await;
        alice.until(|e| matches!(e, Event::LoggedIn(_))).await;

        let pinned = "00:".repeat(31) + "00";
        let other = Target {
            trusted: Some(pinned.clone()),
            ..target(server.addr(), "bob")
        };
        let bob = Headless::connect(other, Resume::default()).await;
        let seen = bob
            .until(|e| matches!(e, Event::CertificateChanged { .. } | Event::LoggedIn(_)))
            .await;
        assert!(
            matches!(seen.last(), Some(Event::CertificateChanged { expected, got }) if *expected == pinned && *got == fingerprint),
            "{seen:?}"
        );
    });
}

/// An account created from the client comes back by itself after the server restarts
/// (its token is gone with the old process, so the client logs in with the password),
/// and its post typed meanwhile arrives once.
#[test]
fn an_account_comes_back_after_a_restart() {
    let dir = TempDir::new("client-account");
    let args = ["--port", "0", "--data", dir.arg(), "--tls-self-signed"];
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(&server_binary(), &args).await;
        let fingerprint = fingerprint_of(&dir);
        let account = Target {
            trusted: Some(fingerprint),
            password: Some(Password::new("carol's password")),
            register: true,
            ..target(server.addr, "carol")
        };
        let carol = Headless::connect(account, Resume::default()).await;
        let seen = carol
            .until(|e| matches!(e, Event::LoggedIn(_) | Event::Rejected { .. }))
            .await;
        assert!(
            matches!(seen.last(), Some(Event::LoggedIn(s)) if s.account),
            "{seen:?}"
        );
        let port = server.addr.port().to_string();
        server.kill().await;
        let restart: Vec<&str> =
            ["--port", &port, "--data", dir.arg(), "--tls-self-signed"].to_vec();
        carol
            .until(|e| matches!(e, Event::Disconnected { .. }))
            .await;
        carol
            .handle
            .say(None, "kept".into(), "typed while away".into(), false);
        let _server = ServerProcess::start(&server_binary(), &restart).await;
        let seen = carol
            .until(|e| matches!(e, Event::LoggedIn(_) | Event::Rejected { .. }))
            .await;
        assert!(
            matches!(seen.last(), Some(Event::LoggedIn(s)) if s.account && s.name == "carol"),
            "{seen:?}"
        );
        carol
            .until(|e| matches!(e, Event::Frame(chat_shared::ServerFrame::Message { id: Some(id), .. }) if id == "kept"))
            .await;
    });
}
