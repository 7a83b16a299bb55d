//! `server backup`, `server admin`, `server export` and `server import`: the operator's
//! commands. Backups and account help ask the running server on its control socket (see
//! [`crate::control`]); a backup of a stopped server's store is made directly, and so are
//! exports and imports, which want the server stopped (see [`crate::log::archive`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::commands::{Admin, AdminTool, Backup, Export, Import, Tool};
use crate::config::{Config, Storage};
use crate::control::{self, AskError, Reply, Request};
use crate::log::archive::{self, ArchiveError, file_store, redis_store};
use crate::log::store::{FILE, Store};

/// How long a backup through the server may take before the command stops waiting.
const BACKUP_WAIT: Duration = Duration::from_secs(24 * 60 * 60);
/// How long the server may take to answer anything else.
const ADMIN_WAIT: Duration = Duration::from_secs(30);

/// Runs an operator's command with the server's settings `config` (for where its data
/// directory and control socket are). Exit codes: 0 done, 1 it could not be done.
pub fn run(tool: Tool, config: &Config) -> ExitCode {
    let outcome = match tool {
        Tool::Backup(backup) => run_backup(backup, config),
        Tool::Admin(admin) => run_admin(admin, config),
        Tool::Export(export) => run_export(export, config),
        Tool::Import(import) => run_import(import, config),
    };
    match outcome {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("server: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The data directory and the control socket a command means.
fn places(
    data: Option<PathBuf>,
    control: Option<PathBuf>,
    config: &Config,
) -> (Option<PathBuf>, Option<PathBuf>) {
    let data = data.or_else(|| match &config.storage {
        Storage::Dir(dir) => Some(dir.clone()),
        Storage::Memory | Storage::Redis(_) => None,
    });
    let control = control
        .or_else(|| {
            data.clone()
                .and_then(|dir| Storage::Dir(dir).control_socket())
        })
        .or_else(|| config.control.clone());
    (data, control)
}

fn run_backup(backup: Backup, config: &Config) -> Result<Vec<String>, String> {
    let (data, control) = places(backup.data, backup.control, config);
    let dest = std::path::absolute(&backup.dest)
        .map_err(|err| format!("{}: {err}", backup.dest.display()))?;
    if let Some(control) = &control {
        let request = Request::Backup { to: dest.clone() };
        match control::ask(control, &request, BACKUP_WAIT) {
            Ok(Reply::BackedUp(copied)) => {
                return Ok(vec![describe(&copied, "the running server")]);
            }
            Ok(Reply::Failed { message }) => return Err(message),
            Ok(other) => return Err(format!("unexpected answer {other:?}")),
            // No server: the store is copied here.
            Err(AskError::NotRunning(_)) => {}
            Err(err) => return Err(err.to_string()),
        }
    }
    let dir = data.ok_or("no data directory: give --data DIR (a server with --memory or --redis has no store to back up)")?;
    if !dir.join(FILE).is_file() {
        return Err(format!("{}: no store there", dir.join(FILE).display()));
    }
    let store = Store::open(&dir, String::new).map_err(|err| err.to_string())?;
    let copied = store.backup(&dest).map_err(|err| err.to_string())?;
    Ok(vec![describe(&copied, "the stopped server's store")])
}

/// Where an export comes from or an import goes.
enum Place {
    Dir(PathBuf),
    Redis(String),
}

fn place(data: Option<PathBuf>, redis: Option<String>, config: &Config) -> Result<Place, String> {
    match (data, redis) {
        (Some(_), Some(_)) => Err("give --data DIR or --redis URL, not both".into()),
        (Some(dir), None) => Ok(Place::Dir(dir)),
        (None, Some(url)) => Ok(Place::Redis(url)),
        (None, None) => match &config.storage {
            Storage::Dir(dir) => Ok(Place::Dir(dir.clone())),
            Storage::Redis(url) => Ok(Place::Redis(url.clone())),
            Storage::Memory => {
                Err("a --memory server keeps nothing: give --data DIR or --redis URL".into())
            }
        },
    }
}

/// Refuses while a server answers on the data directory's control socket: it has the
/// store open, and would go on writing what an export or an import must not miss.
fn stopped(dir: &Path) -> Result<(), String> {
    let Some(control) = Storage::Dir(dir.to_path_buf()).control_socket() else {
        return Ok(());
    };
    match control::ask(&control, &Request::Accounts, ADMIN_WAIT) {
        Err(AskError::NotRunning(_)) => Ok(()),
        _ => Err(format!(
            "a server is running on {}: stop it first (or export a `server backup` of it, whose epoch is its own)",
            dir.display()
        )),
    }
}

fn run_export(export: Export, config: &Config) -> Result<Vec<String>, String> {
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let counts = match place(export.data, export.redis, config)? {
        Place::Dir(dir) => {
            stopped(&dir)?;
            if !dir.join(FILE).is_file() {
                return Err(format!("{}: no store there", dir.join(FILE).display()));
            }
            let store = Store::open(&dir, String::new).map_err(|err| err.to_string())?;
            file_store::export(&store, out)
        }
        Place::Redis(url) => redis_store::export(&url, out),
    }
    .map_err(|err| err.to_string())?;
    // Standard output is the export.
    eprintln!("exported {counts}");
    Ok(Vec::new())
}

fn run_import(import: Import, config: &Config) -> Result<Vec<String>, String> {
    let input: Box<dyn std::io::BufRead> = match &import.file {
        Some(file) if file.as_os_str() != "-" => Box::new(std::io::BufReader::new(
            std::fs::File::open(file).map_err(|err| format!("{}: {err}", file.display()))?,
        )),
        _ => {
            use std::io::IsTerminal;
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(
                    "give the export to read: server import [--data DIR | --redis URL] FILE, or pipe it in"
                        .into(),
                );
            }
            Box::new(stdin.lock())
        }
    };
    let (counts, into) = match place(import.data, import.redis, config)? {
        Place::Dir(dir) => {
            stopped(&dir)?;
            (
                file_store::import(&dir, input),
                dir.join(FILE).display().to_string(),
            )
        }
        Place::Redis(url) => (redis_store::import(&url, input), url),
    };
    let counts = counts.map_err(|err| match &import.file {
        Some(file) if matches!(err, ArchiveError::Line { .. }) => {
            format!("{}: {err}; nothing was imported", file.display())
        }
        _ if matches!(err, ArchiveError::Line { .. }) => format!("{err}; nothing was imported"),
        _ => err.to_string(),
    })?;
    Ok(vec![format!(
        "imported {counts} into {into} (export format {})",
        archive::VERSION
    )])
}

fn describe(copied: &crate::log::backup::Copied, from: &str) -> String {
    format!(
        "backed up {from} to {}: {} rooms and conversations, {} events, {} accounts; opened and checked (its epoch, {}, is its own)",
        copied.path.display(),
        copied.streams,
        copied.events,
        copied.accounts,
        copied.epoch
    )
}

fn run_admin(admin: Admin, config: &Config) -> Result<Vec<String>, String> {
    let (_, control) = places(admin.data, admin.control, config);
    let control = control.ok_or("no control socket: give --data DIR or --control PATH")?;
    let request = match admin.what {
        AdminTool::Accounts(_) => Request::Accounts,
        AdminTool::ResetPassword(reset) => Request::ResetPassword { name: reset.name },
        AdminTool::Bans(_) => Request::Bans,
        AdminTool::Unban(unban) => Request::Unban { name: unban.name },
        AdminTool::DeleteAccount(delete) => Request::DeleteAccount {
            name: delete.name,
            erase_direct: delete.erase_direct,
        },
    };
    let reply = control::ask(&control, &request, ADMIN_WAIT).map_err(|err| err.to_string())?;
    show(reply, &control)
}

/// An answer, as lines for a person (tab-separated where it is a table).
fn show(reply: Reply, control: &Path) -> Result<Vec<String>, String> {
    let now = crate::wire::now_millis();
    let ago = |until: u64| {
        let minutes = until.saturating_sub(now) / 60_000;
        format!("{}h{:02}m", minutes / 60, minutes % 60)
    };
    Ok(match reply {
        Reply::Accounts { accounts } => {
            let mut lines = vec!["name\tonline\ttemporary password".to_string()];
            lines.extend(accounts.into_iter().map(|account| {
                format!(
                    "{}\t{}\t{}",
                    account.name,
                    match (account.deleted, account.online) {
                        (true, _) => "deleted",
                        (false, true) => "yes",
                        (false, false) => "no",
                    },
                    account
                        .reset_until
                        .map_or_else(|| "-".to_string(), |until| format!("valid {}", ago(until)))
                )
            }));
            lines
        }
        Reply::PasswordReset {
            name,
            password,
            until,
        } => vec![
            format!("temporary password for {name}: {password}"),
            format!(
                "it logs in for the next {}; at that log-in the client asks for a new password",
                ago(until)
            ),
        ],
        Reply::Bans { bans } => {
            let mut lines = vec!["banned\tname\tby\tuntil\twhy".to_string()];
            lines.extend(bans.into_iter().map(|info| {
                let until = match info.ban.until {
                    None => "lifted by hand".to_string(),
                    Some(until) if until <= now => "ended".to_string(),
                    Some(until) => format!("{} from now", ago(until)),
                };
                format!(
                    "{}\t{}\t{}\t{until}\t{}",
                    info.key,
                    info.ban.name,
                    info.ban.by,
                    info.ban.message.unwrap_or_default()
                )
            }));
            lines
        }
        Reply::Unbanned { keys } => vec![format!("lifted: {}", keys.join(", "))],
        Reply::AccountDeleted {
            name,
            closed,
            erased,
        } => vec![format!(
            "deleted the account {name}: {closed} sessions closed here, {erased} direct messages erased; the name is not given out again"
        )],
        Reply::Failed { message } => return Err(message),
        Reply::BackedUp(_) => {
            return Err(format!("{}: unexpected answer", control.display()));
        }
    })
}
