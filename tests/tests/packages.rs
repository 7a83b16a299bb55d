//! The Debian packages, made with cargo-deb from the binaries this build made (`.ci/deps`
//! installs cargo-deb), installed on this machine with dpkg, run, and removed again.
//! Flags of the installed server: `--config /etc/chat-server/chat.toml --host 127.0.0.1
//! --port 0 --data <a new directory>` (the installed config's TLS with a self-signed
//! certificate, registration and the rest as it ships).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chat_shared::ServerFrame;
use chat_tests::{Client, Endpoint, ServerProcess, TempDir, hello_v3, run_for, say};

/// The workspace's root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

/// Runs a command as root (through `sudo -n` when this is not root); its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let root = is_root();
    let mut command = if root {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("-n").arg(program);
        sudo
    };
    let out = command
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("{program}: {err}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Whether dpkg can be run as root here: as root, or with sudo that needs no password.
fn may_install() -> bool {
    is_root()
        || Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|status| status.success())
}

/// Makes a package with cargo-deb from what this build made (`--no-build`, the dev
/// profile's binaries); returns its path.
fn package(out: &Path, args: &[&str]) -> PathBuf {
    let mut all = vec!["deb", "--profile", "dev", "--no-build", "--fast", "-q"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", out.to_str().expect("UTF-8")]);
    let made = Command::new(env!("CARGO"))
        .args(&all)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .output()
        .expect("cargo runs");
    assert!(
        made.status.success(),
        "cargo {all:?} (cargo-deb: .ci/deps installs it): {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let path = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    PathBuf::from(path)
}

/// Removes the packages when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new(if is_root() { "dpkg" } else { "sudo" })
            .args(if is_root() {
                &["--purge", "chat-server", "chat-client"][..]
            } else {
                &["-n", "dpkg", "--purge", "chat-server", "chat-client"][..]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn the_packages_install_and_the_installed_server_takes_a_login() {
    if !may_install() {
        eprintln!("skipped: installing packages needs root (or sudo without a password)");
        return;
    }
    for binary in ["target/debug/chat-server", "target/debug/client"] {
        assert!(
            workspace().join(binary).is_file(),
            "{binary} is missing: `cargo test --workspace` builds it (or cargo build -p chat-client)"
        );
    }
    let out = TempDir::new("packages");
    let server = package(out.path(), &["-p", "chat-server", "--variant", "tested"]);
    let client = package(out.path(), &["-p", "chat-client"]);
    let installed = Installed;
    run(
        "dpkg",
        &[
            "-i",
            server.to_str().expect("UTF-8"),
            client.to_str().expect("UTF-8"),
        ],
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        run("/usr/bin/chat-server", &["--version"]).trim(),
        format!("chat-server {version}")
    );
    assert_eq!(
        run("/usr/bin/chat-client", &["--version"]).trim(),
        format!("chat-client {version}")
    );
    for file in [
        "/etc/chat-server/chat.toml",
        "/usr/lib/systemd/system/chat-server.service",
        "/usr/share/doc/chat-server/README.md",
        "/usr/share/applications/chat-client.desktop",
        "/usr/share/icons/hicolor/scalable/apps/chat-client.svg",
    ] {
        assert!(Path::new(file).is_file(), "{file} installed");
    }
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", "chat-server"]);
    assert!(
        conffiles.contains("/etc/chat-server/chat.toml"),
        "{conffiles}"
    );
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        run(
            "systemd-analyze",
            &["verify", "/usr/lib/systemd/system/chat-server.service"],
        );
    } else {
        eprintln!("systemd-analyze is not here: the unit is not verified");
    }
    if Command::new("desktop-file-validate")
        .arg("--help")
        .output()
        .is_ok()
    {
        run(
            "desktop-file-validate",
            &["/usr/share/applications/chat-client.desktop"],
        );
    }

    let data = TempDir::new("packaged-data");
    run_for(Duration::from_secs(30), async {
        let installed = ServerProcess::start(
            Path::new("/usr/bin/chat-server"),
            &[
                "--config",
                "/etc/chat-server/chat.toml",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data",
                data.arg(),
            ],
        )
        .await;
        let cert = data.path().join("tls-cert.pem");
        let endpoint = Endpoint::tls(installed.addr, &cert);
        let (mut ann, _) = Client::login_at(&endpoint, &hello_v3("ann")).await;
        ann.send(&say("hello from a package", "p1")).await;
        ann.recv_until(
            |f| matches!(f, ServerFrame::Message { text, .. } if text == "hello from a package"),
        )
        .await;
    });
    drop(installed);
    assert!(!Path::new("/usr/bin/chat-server").exists(), "purged");
}
