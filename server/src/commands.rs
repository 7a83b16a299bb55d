//! The operator's subcommands of `server` as the command line gives them (`server
//! backup`, `server admin …`); [`crate::operate`] carries them out.

use std::path::PathBuf;

use argh::FromArgs;

/// The operator's commands.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand)]
pub enum Tool {
    /// Copy the store.
    Backup(Backup),
    /// Accounts and bans.
    Admin(Admin),
    /// Write the whole chat as NDJSON.
    Export(Export),
    /// Read an export into a new store or an empty Redis.
    Import(Import),
}

/// Write the whole chat (accounts with their password hashes, server bans, rooms with their
/// state, every event as members got it, conversations, read markers, recent post ids) as
/// NDJSON, one record a line, to standard output: from the store of a stopped server, or
/// from a cluster's Redis while no node runs. `server import` reads it back with the same
/// history, seqs and epoch.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "export")]
pub struct Export {
    /// the data directory (default: the server's, from --config or the default)
    #[argh(option)]
    pub data: Option<PathBuf>,
    /// the cluster's Redis instead, redis://HOST:PORT[/DB]
    #[argh(option)]
    pub redis: Option<String>,
}

/// Read an export into a data directory without a store, or into a Redis that holds no
/// chat. Every line is checked; should one be wrong, nothing is kept.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "import")]
pub struct Import {
    /// the data directory to create the store in (default: the server's)
    #[argh(option)]
    pub data: Option<PathBuf>,
    /// the cluster's Redis instead, redis://HOST:PORT[/DB]
    #[argh(option)]
    pub redis: Option<String>,
    /// the export to read (default: standard input)
    #[argh(positional)]
    pub file: Option<PathBuf>,
}

/// Copy the store into a new data directory, consistent as of one instant: through the
/// running server's control socket, or straight from the store of a stopped server. The
/// copy is opened and checked before it counts. To restore: stop the server, put the copy
/// in place of its data directory, start it.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "backup")]
pub struct Backup {
    /// the server's data directory (default: the server's, from --config or the default)
    #[argh(option)]
    pub data: Option<PathBuf>,
    /// the running server's control socket, if not control.sock in the data directory
    #[argh(option)]
    pub control: Option<PathBuf>,
    /// the new data directory to write (it must not exist, or be empty)
    #[argh(positional)]
    pub dest: PathBuf,
}

/// Ask the running server about its accounts and server bans, through its control socket.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "admin")]
pub struct Admin {
    /// the server's data directory, where its control socket is (default: the server's)
    #[argh(option)]
    pub data: Option<PathBuf>,
    /// the running server's control socket, if not control.sock in the data directory
    #[argh(option)]
    pub control: Option<PathBuf>,
    /// what to do
    #[argh(subcommand)]
    pub what: AdminTool,
}

/// What `server admin` does.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand)]
pub enum AdminTool {
    /// List the accounts.
    Accounts(Accounts),
    /// A temporary password.
    ResetPassword(ResetPassword),
    /// List the server bans.
    Bans(Bans),
    /// Lift a server ban.
    Unban(Unban),
    /// Delete an account.
    DeleteAccount(DeleteAccount),
}

/// Delete an account: it cannot log in again and its sessions are closed; its read
/// markers, invitations and list of conversations go; its name is not given out again
/// (someone new under it would read its conversations). Its messages in rooms stay. Its
/// direct messages stay for the people it wrote to, unless --erase-direct deletes them
/// (as if it had deleted each one).
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "delete-account")]
pub struct DeleteAccount {
    /// the account
    #[argh(positional)]
    pub name: String,
    /// also delete every direct message it wrote
    #[argh(switch)]
    pub erase_direct: bool,
}

/// List the accounts: name, whether online here, whether a temporary password is pending.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "accounts")]
pub struct Accounts {}

/// Give an account a temporary password, printed once: it logs in for 24 hours, and the
/// client asks for a new one at that log-in. Its wrong-password count is cleared.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "reset-password")]
pub struct ResetPassword {
    /// the account
    #[argh(positional)]
    pub name: String,
}

/// List the server bans (names and addresses), with who set them, why and until when.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "bans")]
pub struct Bans {}

/// Lift the server ban of a name (and of the addresses banned with it).
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "unban")]
pub struct Unban {
    /// the banned name
    #[argh(positional)]
    pub name: String,
}
