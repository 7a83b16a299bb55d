//! The control socket: how `server backup` and `server admin` reach a running server.
//!
//! It is a Unix socket (by default `control.sock` in the data directory) that only the
//! server's own user (or root) may use: the file is made readable and writable by its owner
//! only, and the server checks each peer's user id as well. A request is one JSON object on
//! one line; the answer is one JSON object on one line, and the server closes. Nothing on it
//! crosses the network, so it needs neither TLS nor a password.
//!
//! `{"op":"backup","to":"/srv/backup/chat-2026-12-06"}` → `{"type":"backed_up",…}`
//! `{"op":"accounts"}` → `{"type":"accounts","accounts":[{"name":"alice","online":true}]}`
//! `{"op":"reset_password","name":"alice"}` → `{"type":"password_reset","name":"alice",
//! "password":"…","until":…}`
//! `{"op":"bans"}` → `{"type":"bans","bans":[…]}`; `{"op":"unban","name":"troll"}` →
//! `{"type":"unbanned",…}`; anything that fails → `{"type":"failed","message":"…"}`.

pub mod serve;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bans::ServerBan;
use crate::log::backup::Copied;

pub use crate::config::CONTROL_SOCKET as SOCKET;

/// The longest request line taken.
pub const MAX_REQUEST: usize = 64 * 1024;

/// What an operator asks of the running server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Copy the store, as of now, into a new data directory.
    Backup {
        /// The new directory (absolute, as the server sees it).
        to: PathBuf,
    },
    /// Every account.
    Accounts,
    /// Give an account a temporary password, to be changed at its next log-in.
    ResetPassword {
        /// The account.
        name: String,
    },
    /// Every server ban.
    Bans,
    /// Lift the server ban of a name (and of the addresses banned with it).
    Unban {
        /// The name.
        name: String,
    },
    /// Delete an account: it cannot log in again, its sessions are closed, its read
    /// markers, invitations and list of conversations go, and its name is not given out
    /// again. Its direct messages are kept, or (`erase_direct`) deleted.
    DeleteAccount {
        /// The account.
        name: String,
        /// Delete every direct message it wrote.
        #[serde(default)]
        erase_direct: bool,
    },
}

/// An account, as `accounts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Its name as registered.
    pub name: String,
    /// Whether it is logged in on this server (in a cluster: on this node).
    pub online: bool,
    /// Until when its temporary password logs in, if it has one (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_until: Option<u64>,
    /// Whether the operator deleted it.
    #[serde(default)]
    pub deleted: bool,
}

/// A server ban, as `bans` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanInfo {
    /// What it bans: `name:<case-folded name>` or `ip:<address>`.
    pub key: String,
    /// What it holds.
    #[serde(flatten)]
    pub ban: ServerBan,
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// The backup is made, and opened to check it.
    BackedUp(Copied),
    /// Every account, by name.
    Accounts {
        /// The accounts.
        accounts: Vec<AccountInfo>,
    },
    /// The account has a temporary password now.
    PasswordReset {
        /// The account, as registered.
        name: String,
        /// The temporary password: shown once, stored only hashed.
        password: String,
        /// Until when it logs in (ms since the Unix epoch).
        until: u64,
    },
    /// Every server ban, ended ones included until they are lifted.
    Bans {
        /// The bans.
        bans: Vec<BanInfo>,
    },
    /// These bans were lifted.
    Unbanned {
        /// Their keys.
        keys: Vec<String>,
    },
    /// The account is deleted.
    AccountDeleted {
        /// The account, as registered.
        name: String,
        /// Its sessions closed on this server (in a cluster, the other nodes close theirs).
        closed: usize,
        /// The direct messages it wrote that were deleted now.
        erased: usize,
    },
    /// It could not be done.
    Failed {
        /// Why, in words.
        message: String,
    },
}

impl Reply {
    /// A failure, for a person.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
        }
    }
}

/// Why the running server could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Nothing listens on the socket: no server runs there.
    #[error("no server answers on {0} (is it running, with this data directory?)")]
    NotRunning(PathBuf),
    /// The socket could not be used.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The answer was not one.
    #[error("{0}: the server's answer cannot be read: {1}")]
    Garbled(PathBuf, String),
}

/// Asks the server listening on the control socket `path`, and waits up to `timeout`
/// for its answer.
pub fn ask(path: &Path, request: &Request, timeout: Duration) -> Result<Reply, AskError> {
    let io = |err| AskError::Io(path.to_path_buf(), err);
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(AskError::NotRunning(path.to_path_buf()));
        }
        Err(err) => return Err(io(err)),
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_string(request).expect("a request is JSON");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .take(16 << 20)
        .read_line(&mut answer)
        .map_err(io)?;
    serde_json::from_str(&answer)
        .map_err(|err| AskError::Garbled(path.to_path_buf(), err.to_string()))
}
