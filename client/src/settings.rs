//! What the client remembers between runs: the theme and how joins and leaves are shown
//! (`settings.json`), and, per server and name, the rooms the user is in and where they
//! were in each (`rooms.json`). Kept as JSON in the user's configuration directory
//! (`$XDG_CONFIG_HOME/chat` on Linux), written to a temporary file and renamed into place
//! so a crash never leaves half a file. Unit tests never read or write the user's files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use serde::{Deserialize, Serialize};

/// The light or dark look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThemeChoice {
    /// Whatever the desktop uses.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

impl ThemeChoice {
    /// Every choice, in the order a menu shows them.
    pub const ALL: [ThemeChoice; 3] = [ThemeChoice::System, ThemeChoice::Light, ThemeChoice::Dark];
}

impl std::fmt::Display for ThemeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ThemeChoice::System => "Like the system",
            ThemeChoice::Light => "Light",
            ThemeChoice::Dark => "Dark",
        })
    }
}

/// The remembered settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The look.
    pub theme: ThemeChoice,
    /// Joins and leaves are hidden in rooms with more members than this.
    pub hide_presence_above: usize,
    /// Whether the member list is shown.
    pub show_members: bool,
    /// Who last logged in where: the Login screen starts from it.
    pub last_login: Option<LastLogin>,
}

/// A name and the server it logged in to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastLogin {
    /// The name, as the server spelled it.
    pub name: String,
    /// The server's address as typed (`tls://` in front for TLS).
    pub server: String,
}

/// The server the Login screen offers when nothing else is known.
pub const DEFAULT_SERVER: &str = "127.0.0.1:60000";

impl Default for Settings {
    fn default() -> Self {
        Self {
            theme: ThemeChoice::System,
            hide_presence_above: 100,
            show_members: true,
            last_login: None,
        }
    }
}

impl Settings {
    /// The name and server the Login screen starts with: those given on the command
    /// line, else those of the last login, else none and [`DEFAULT_SERVER`]. A name
    /// remembered for another server than the one given is not offered.
    pub fn login_defaults(&self, name: Option<&str>, server: Option<&str>) -> (String, String) {
        let last = self.last_login.as_ref();
        let server = server
            .map(str::to_string)
            .or_else(|| last.map(|l| l.server.clone()))
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        let name = name.map_or_else(
            || {
                last.filter(|l| l.server == server)
                    .map(|l| l.name.clone())
                    .unwrap_or_default()
            },
            str::to_string,
        );
        (name, server)
    }

    /// Where the settings live, if the system has a configuration directory.
    pub fn path() -> Option<PathBuf> {
        config_file("settings.json")
    }

    /// The remembered settings; the defaults if there are none or they cannot be read
    /// (a broken file is reported and left alone until the next save).
    pub fn load() -> Self {
        Self::path().map_or_else(Self::default, |path| load_from(&path))
    }

    /// Remembers the settings.
    pub fn save(&self) {
        if let Some(path) = Self::path() {
            save_to(&path, self);
        }
    }
}

/// Where the user was on one server under one name: the rooms, in the sidebar's order,
/// with the newest seq seen in each, and the room shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Visit {
    /// The epoch the seqs count in.
    pub epoch: Option<String>,
    /// The server's default room.
    pub default_room: Option<String>,
    /// The rooms and the newest seq seen in each.
    pub rooms: Vec<(String, u64)>,
    /// The room shown.
    pub active: Option<String>,
}

/// Every [`Visit`], by server and case-folded name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visits(BTreeMap<String, Visit>);

impl Visits {
    /// Where the visits live, if the system has a configuration directory.
    pub fn path() -> Option<PathBuf> {
        config_file("rooms.json")
    }

    /// The key of a visit: the name as the server compares names, at the server.
    fn key(server: &str, name: &str) -> String {
        format!("{}@{}", chat_shared::fold(name.trim()), server.trim())
    }

    /// The last visit to `server` as `name`, if there was one.
    pub fn get(&self, server: &str, name: &str) -> Option<&Visit> {
        self.0.get(&Self::key(server, name))
    }

    /// Remembers a visit.
    pub fn set(&mut self, server: &str, name: &str, visit: Visit) {
        self.0.insert(Self::key(server, name), visit);
    }

    /// The remembered visits (none if they cannot be read).
    pub fn load() -> Self {
        Self::path().map_or_else(Self::default, |path| load_from(&path))
    }

    /// Remembers the visits.
    pub fn save(&self) {
        if let Some(path) = Self::path() {
            save_to(&path, self);
        }
    }
}

/// The fingerprints of certificates nobody vouches for that the person chose to trust, by
/// server address (`host:port`): `trusted-servers.json`. A server that shows another
/// certificate later is refused; deleting its line here lets the person decide again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedServers(BTreeMap<String, String>);

impl TrustedServers {
    /// Where they live, if the system has a configuration directory.
    pub fn path() -> Option<PathBuf> {
        config_file("trusted-servers.json")
    }

    /// The fingerprint trusted for `server`.
    pub fn get(&self, server: &str) -> Option<&str> {
        self.0.get(server.trim()).map(String::as_str)
    }

    /// Trusts `fingerprint` for `server`.
    pub fn trust(&mut self, server: &str, fingerprint: &str) {
        self.0
            .insert(server.trim().to_string(), fingerprint.to_string());
    }

    /// The trusted servers (none if the file cannot be read).
    pub fn load() -> Self {
        Self::path().map_or_else(Self::default, |path| load_from(&path))
    }

    /// Remembers them.
    pub fn save(&self) {
        if let Some(path) = Self::path() {
            save_to(&path, self);
        }
    }
}

/// A file in the client's configuration directory (never in unit tests).
fn config_file(name: &str) -> Option<PathBuf> {
    if cfg!(test) {
        return None;
    }
    dirs::config_dir().map(|dir| dir.join("chat").join(name))
}

/// What the JSON file `path` holds; the defaults if it is missing or broken (a broken
/// file is reported and left alone until the next save).
pub fn load_from<T: DeserializeOwned + Default>(path: &Path) -> T {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
            tracing::warn!("ignoring {}: {err}", path.display());
            T::default()
        }),
        Err(_) => T::default(),
    }
}

/// Writes `value` as JSON to `path` (to a temporary file, then renamed into place).
pub fn save_to<T: Serialize>(path: &Path, value: &T) {
    let result = (|| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(value)?)?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(err) = result {
        tracing::warn!("cannot save {}: {err}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_screen_starts_from_the_last_login() {
        let mut settings = Settings::default();
        assert_eq!(
            settings.login_defaults(None, None),
            (String::new(), DEFAULT_SERVER.to_string())
        );
        settings.last_login = Some(LastLogin {
            name: "Alice".into(),
            server: "tls://chat.example:60000".into(),
        });
        assert_eq!(
            settings.login_defaults(None, None),
            ("Alice".to_string(), "tls://chat.example:60000".to_string())
        );
        // What the command line says wins; a name of another server is not offered.
        assert_eq!(
            settings.login_defaults(None, Some("10.0.0.5:60000")),
            (String::new(), "10.0.0.5:60000".to_string())
        );
        assert_eq!(
            settings.login_defaults(Some("bob"), None),
            ("bob".to_string(), "tls://chat.example:60000".to_string())
        );
    }

    #[test]
    fn saved_settings_come_back_and_a_broken_file_gives_the_defaults() {
        let dir = std::env::temp_dir().join(format!("chat-settings-{}", std::process::id()));
        let path = dir.join("chat").join("settings.json");
        let chosen = Settings {
            theme: ThemeChoice::Dark,
            hide_presence_above: 25,
            show_members: false,
            last_login: Some(LastLogin {
                name: "Alice".into(),
                server: "tls://chat.example:60000".into(),
            }),
        };
        save_to(&path, &chosen);
        assert_eq!(load_from::<Settings>(&path), chosen);
        std::fs::write(&path, b"{not json").expect("write");
        assert_eq!(load_from::<Settings>(&path), Settings::default());
        // Fields added later get their defaults.
        std::fs::write(&path, br#"{"theme":"light"}"#).expect("write");
        assert_eq!(load_from::<Settings>(&path).theme, ThemeChoice::Light);
        assert_eq!(load_from::<Settings>(&path).hide_presence_above, 100);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn visits_are_kept_per_server_and_name() {
        let dir = std::env::temp_dir().join(format!("chat-visits-{}", std::process::id()));
        let path = dir.join("rooms.json");
        let mut visits = Visits::default();
        let visit = Visit {
            epoch: Some("e".into()),
            default_room: Some("general".into()),
            rooms: vec![("general".into(), 12), ("rust".into(), 3)],
            active: Some("rust".into()),
        };
        visits.set("127.0.0.1:60000", " Alice ", visit.clone());
        save_to(&path, &visits);
        let back: Visits = load_from(&path);
        assert_eq!(back.get("127.0.0.1:60000", "ALICE"), Some(&visit));
        assert_eq!(back.get("127.0.0.1:60001", "alice"), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
