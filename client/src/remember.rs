//! "Remember me": an account's password kept in the desktop's keyring (the Secret Service
//! of GNOME or KDE), under the server and the name, and nowhere else. Without a
//! keyring nothing is remembered, and the caller says so.

use chat_shared::{Password, fold};

/// The keyring's service name for this client's entries.
const SERVICE: &str = "chat";

fn entry(server: &str, name: &str) -> Result<keyring::Entry, keyring::Error> {
    keyring::Entry::new(SERVICE, &format!("{}@{}", fold(name.trim()), server.trim()))
}

/// The password remembered for `name` on `server`, if there is one (and a keyring).
pub fn load(server: &str, name: &str) -> Option<Password> {
    if cfg!(test) || name.trim().is_empty() {
        return None;
    }
    entry(server, name)
        .and_then(|entry| entry.get_password())
        .ok()
        .map(Password::new)
}

/// Remembers `password` for `name` on `server`; `Err` says why it could not (no keyring).
pub fn store(server: &str, name: &str, password: &Password) -> Result<(), String> {
    if cfg!(test) {
        return Err("no keyring in unit tests".into());
    }
    entry(server, name)
        .and_then(|entry| entry.set_password(password.expose()))
        .map_err(|err| err.to_string())
}

/// Forgets what was remembered for `name` on `server` (nothing happens without a keyring).
pub fn forget(server: &str, name: &str) {
    if cfg!(test) {
        return;
    }
    if let Ok(entry) = entry(server, name) {
        let _ = entry.delete_credential();
    }
}
