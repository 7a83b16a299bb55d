//! What the client remembers between runs: the theme and how joins and leaves are shown.
//! Kept as JSON in the user's configuration directory (`$XDG_CONFIG_HOME/chat` on Linux).

use std::path::PathBuf;

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            theme: ThemeChoice::System,
            hide_presence_above: 100,
            show_members: true,
        }
    }
}

impl Settings {
    /// Where the settings live, if the system has a configuration directory.
    pub fn path() -> Option<PathBuf> {
        dirs::config_dir().map(|dir| dir.join("chat").join("settings.json"))
    }

    /// The remembered settings; the defaults if there are none or they cannot be read
    /// (a broken file is reported and left alone until the next save). Unit tests never
    /// read or write the user's settings.
    pub fn load() -> Self {
        match Self::path() {
            Some(path) if !cfg!(test) => Self::load_from(&path),
            _ => Self::default(),
        }
    }

    /// The settings remembered in the file `path`.
    pub fn load_from(path: &std::path::Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::warn!("ignoring {}: {err}", path.display());
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Remembers the settings.
    pub fn save(&self) {
        match Self::path() {
            Some(path) if !cfg!(test) => self.save_to(&path),
            _ => {}
        }
    }

    /// Remembers the settings in the file `path` (written to a temporary file, then
    /// renamed into place, so a crash never leaves half a file).
    pub fn save_to(&self, path: &std::path::Path) {
        let result = (|| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let temporary = path.with_extension("json.tmp");
            std::fs::write(&temporary, serde_json::to_vec_pretty(self)?)?;
            std::fs::rename(&temporary, path)
        })();
        if let Err(err) = result {
            tracing::warn!("cannot save settings to {}: {err}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_settings_come_back_and_a_broken_file_gives_the_defaults() {
        let dir = std::env::temp_dir().join(format!("chat-settings-{}", std::process::id()));
        let path = dir.join("chat").join("settings.json");
        let chosen = Settings {
            theme: ThemeChoice::Dark,
            hide_presence_above: 25,
            show_members: false,
        };
        chosen.save_to(&path);
        assert_eq!(Settings::load_from(&path), chosen);
        std::fs::write(&path, b"{not json").expect("write");
        assert_eq!(Settings::load_from(&path), Settings::default());
        // Fields added later get their defaults.
        std::fs::write(&path, br#"{"theme":"light"}"#).expect("write");
        assert_eq!(Settings::load_from(&path).theme, ThemeChoice::Light);
        assert_eq!(Settings::load_from(&path).hide_presence_above, 100);
        let _ = std::fs::remove_dir_all(dir);
    }
}
