//! A short chaos run as part of the suite: `loadgen chaos` with 60 ordinary clients (15 of
//! them accounts, one the administrator) and 4 misbehaving ones over 8 rooms for 40 s,
//! the server killed (SIGKILL) and restarted on its store every 10 s. The server runs as
//! `loadgen chaos` starts it: `--port <free> --max-per-ip 0 --data <temporary>
//! --admins chaos-admin --replay-max 100000`, flood control on (the defaults). The run
//! fails on any broken promise (see tests/src/bin/loadgen/chaos/ledger.rs, `Breach`), on
//! a panic in the server, and on memory or sockets that did not come back.

use std::process::{Command, Stdio};
use std::time::Duration;

/// The run's own limits (40 s of chaos, up to 60 s to settle, the check) fit well inside.
const LIMIT: Duration = Duration::from_secs(240);

#[test]
fn chaos_loses_nothing() {
    chaos(
        "--clients 60 --rooms 8 --hostile 4 --duration 40 --kill-every 10 --pace 1 --ramp 60 --seed 27",
    );
}

/// Runs `loadgen chaos` with `args`; fails with its report if it found anything.
fn chaos(args: &str) {
    let server = chat_tests::server_binary();
    let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["chaos", "--server"])
        .arg(&server)
        .args(args.split_whitespace())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("loadgen starts");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let Ok(output) = finished.recv_timeout(LIMIT) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("the chaos run took over {LIMIT:?}");
    };
    let output = output.expect("loadgen ran");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success(),
        "the chaos run found broken promises:\n{report}"
    );
}
