//! What a line typed in the input means: a message, or a slash command.

use chat_shared::{Days, Name, Role, RoomName};

/// The slash commands, as `/help` lists them: how to write each, and what it does.
pub const COMMANDS: [(&str, &str); 18] = [
    ("/join #room", "enter a room (it is made if nobody has)"),
    (
        "/msg name text",
        "a direct message to an account (yours must be one too)",
    ),
    ("/part [#room]", "leave this room, or the one named"),
    ("/me waves", "say what you do: \"* me waves\""),
    ("/rooms", "list the rooms people are in"),
    ("/help", "show the commands and the keys"),
    ("//text", "send a line that starts with /"),
    (
        "/topic text",
        "set the room's topic (owners and ops; none clears it)",
    ),
    (
        "/kick name [reason]",
        "put someone out of the room (they may come back)",
    ),
    (
        "/ban name [minutes] [reason]",
        "ban a name (and look-alikes) from the room",
    ),
    ("/unban name", "lift a ban"),
    ("/mute name [minutes]", "let someone read but not post here"),
    ("/unmute name", "lift a mute"),
    ("/op name", "make an account an op here (owners)"),
    ("/deop name", "take an op's role back (owners)"),
    ("/invite name", "let an account into an invite-only room"),
    (
        "/private on|off",
        "make the room invite-only, or open it (owners)",
    ),
    (
        "/retain days|off",
        "delete the room's messages older than that (owners)",
    ),
];

/// A line the user typed, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message to the room.
    Say(String),
    /// An action (`/me waves`).
    Me(String),
    /// Enter a room.
    Join(RoomName),
    /// Leave a room (`None`: the one shown).
    Part(Option<RoomName>),
    /// Open the direct conversation with an account, and send it a message if there is
    /// one.
    Msg(Name, String),
    /// List the rooms.
    Rooms,
    /// Show the help.
    Help,
    /// A moderator's step in the room shown.
    Moderate(Step),
}

/// A moderator's step, as a slash command asks it of the room shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Set the topic (empty: clear it).
    Topic(String),
    /// Put someone out, with why.
    Kick(Name, Option<String>),
    /// Ban a name, for minutes (none: until lifted), with why.
    Ban(Name, Option<u64>, Option<String>),
    /// Lift a ban.
    Unban(Name),
    /// Mute a name, for minutes.
    Mute(Name, Option<u64>),
    /// Lift a mute.
    Unmute(Name),
    /// Give a role.
    Role(Name, Role),
    /// Invite an account.
    Invite(Name),
    /// Invite-only, or open.
    Private(bool),
    /// Keep the room's history for so many days, or (`None`) as long as the server does.
    Retain(Option<Days>),
}

/// What a room's retention is typed as.
const RETAIN_HINT: &str = "/retain 30 keeps the last 30 days (fractions allowed, up to 36500); /retain off keeps all the server keeps.";

/// What is wrong with days typed for a room's retention.
pub const DAYS_HINT: &str = "A number of days above 0 (fractions allowed, up to 36500), or nothing to keep all the server keeps.";

/// A room's retention as typed: a number of days above 0 (fractions allowed), or `off`
/// (also `no`, `forever`, or nothing) for no limit of its own.
pub fn retention(typed: &str) -> Result<Option<Days>, String> {
    match typed.trim().to_lowercase().as_str() {
        "" | "off" | "no" | "forever" => Ok(None),
        days => days
            .parse::<f64>()
            .ok()
            .filter(|days| *days > 0.0)
            .and_then(|days| Days::limit(days).ok().flatten())
            .map(Some)
            .ok_or_else(|| DAYS_HINT.into()),
    }
}

/// Reads a line typed in the input. A line that starts with `/` is a command; `//`
/// sends the rest as a message. An error is a hint for the user: nothing is sent.
pub fn parse(line: &str) -> Result<Input, String> {
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Input::Say(line.to_string()));
    };
    if command.starts_with('/') {
        return Ok(Input::Say(command.to_string()));
    }
    let (word, rest) = command
        .split_once(char::is_whitespace)
        .unwrap_or((command, ""));
    let rest = rest.trim();
    match word.to_lowercase().as_str() {
        "me" if rest.is_empty() => Err("Say what you do: /me waves".into()),
        // Everything after the command, as typed (lines included).
        "me" => Ok(Input::Me(command[word.len()..].trim_start().to_string())),
        "join" | "j" if rest.is_empty() => Err("Which room? /join #room".into()),
        "join" | "j" => room(rest).map(Input::Join),
        "part" | "leave" if rest.is_empty() => Ok(Input::Part(None)),
        "part" | "leave" => room(rest).map(|room| Input::Part(Some(room))),
        "msg" | "query" | "dm" if rest.is_empty() => Err("To whom? /msg name text".into()),
        "msg" | "query" | "dm" => {
            let (to, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let to = Name::parse(to).map_err(|err| format!("\"{to}\" cannot be a name: {err}."))?;
            Ok(Input::Msg(to, text.trim_start().to_string()))
        }
        "rooms" | "list" => Ok(Input::Rooms),
        "help" | "?" => Ok(Input::Help),
        "topic" => Ok(Input::Moderate(Step::Topic(
            command[word.len()..].trim().to_string(),
        ))),
        "kick" | "remove" => {
            let (name, rest) = named(rest, "/kick name [reason]")?;
            Ok(Input::Moderate(Step::Kick(name, reason(rest))))
        }
        "ban" => {
            let (name, rest) = named(rest, "/ban name [minutes] [reason]")?;
            let (minutes, rest) = minutes(rest)?;
            Ok(Input::Moderate(Step::Ban(name, minutes, reason(rest))))
        }
        "mute" => {
            let (name, rest) = named(rest, "/mute name [minutes]")?;
            let (minutes, rest) = minutes(rest)?;
            if !rest.is_empty() {
                return Err("/mute name [minutes]: the minutes are a number.".into());
            }
            Ok(Input::Moderate(Step::Mute(name, minutes)))
        }
        "unban" => only_name(rest, "/unban name").map(|n| Input::Moderate(Step::Unban(n))),
        "unmute" => only_name(rest, "/unmute name").map(|n| Input::Moderate(Step::Unmute(n))),
        "op" => only_name(rest, "/op name").map(|n| Input::Moderate(Step::Role(n, Role::Op))),
        "deop" => {
            only_name(rest, "/deop name").map(|n| Input::Moderate(Step::Role(n, Role::Member)))
        }
        "invite" => only_name(rest, "/invite name").map(|n| Input::Moderate(Step::Invite(n))),
        "private" => match rest.to_lowercase().as_str() {
            "on" | "yes" => Ok(Input::Moderate(Step::Private(true))),
            "off" | "no" => Ok(Input::Moderate(Step::Private(false))),
            _ => Err("/private on, or /private off".into()),
        },
        "retain" if rest.is_empty() => Err(RETAIN_HINT.into()),
        "retain" => retention(rest)
            .map(|days| Input::Moderate(Step::Retain(days)))
            .map_err(|_| RETAIN_HINT.into()),
        "" => Err("Type a command after the /, or // to send a line that starts with /.".into()),
        other => Err(format!(
            "There is no /{other} command: /help lists them. To send a line that starts \
             with /, begin it with //."
        )),
    }
}

/// The name that starts `rest`, and what follows it; `usage` when there is none.
fn named<'a>(rest: &'a str, usage: &str) -> Result<(Name, &'a str), String> {
    if rest.is_empty() {
        return Err(format!("Who? {usage}"));
    }
    let (raw, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let name = Name::parse(raw).map_err(|err| format!("\"{raw}\" cannot be a name: {err}."))?;
    Ok((name, rest.trim_start()))
}

/// A name and nothing more.
fn only_name(rest: &str, usage: &str) -> Result<Name, String> {
    let (name, more) = named(rest, usage)?;
    if more.is_empty() {
        Ok(name)
    } else {
        Err(format!("Just one name: {usage}"))
    }
}

/// A number of minutes that starts `rest`, if one does, and what follows.
fn minutes(rest: &str) -> Result<(Option<u64>, &str), String> {
    let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match word.parse::<u64>() {
        Ok(0) => Err("At least 1 minute (leave the number out for no end).".into()),
        Ok(minutes) => Ok((Some(minutes), after.trim_start())),
        Err(_) => Ok((None, rest)),
    }
}

/// A reason, if one was given.
fn reason(rest: &str) -> Option<String> {
    let rest = rest.trim();
    (!rest.is_empty()).then(|| rest.to_string())
}

fn room(raw: &str) -> Result<RoomName, String> {
    RoomName::parse(raw).map_err(|err| format!("\"{raw}\" cannot be a room: {err}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("a room name")
    }

    #[test]
    fn lines_and_commands() {
        assert_eq!(parse("hello"), Ok(Input::Say("hello".into())));
        assert_eq!(parse(" /join x"), Ok(Input::Say(" /join x".into())));
        assert_eq!(parse("//join x"), Ok(Input::Say("/join x".into())));
        assert_eq!(
            parse("/me waves\nhappily"),
            Ok(Input::Me("waves\nhappily".into()))
        );
        assert_eq!(parse("/join #Rust"), Ok(Input::Join(room("Rust"))));
        assert_eq!(parse("/JOIN rust"), Ok(Input::Join(room("rust"))));
        assert_eq!(parse("/part"), Ok(Input::Part(None)));
        assert_eq!(parse("/part #go"), Ok(Input::Part(Some(room("go")))));
        assert_eq!(parse("/rooms"), Ok(Input::Rooms));
        let judy = Name::parse("Judy").expect("a name");
        assert_eq!(
            parse("/msg Judy hi there"),
            Ok(Input::Msg(judy.clone(), "hi there".into()))
        );
        assert_eq!(parse("/query Judy"), Ok(Input::Msg(judy, String::new())));
        assert_eq!(parse("/help"), Ok(Input::Help));
    }

    #[test]
    fn moderators_commands() {
        let name = |n: &str| Name::parse(n).expect("a name");
        let step = |line: &str| match parse(line) {
            Ok(Input::Moderate(step)) => step,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(step("/topic Rust talk "), Step::Topic("Rust talk".into()));
        assert_eq!(step("/topic"), Step::Topic(String::new()), "clears it");
        assert_eq!(
            step("/kick troll calm down"),
            Step::Kick(name("troll"), Some("calm down".into()))
        );
        assert_eq!(step("/kick troll"), Step::Kick(name("troll"), None));
        assert_eq!(
            step("/ban troll 60 spam, again"),
            Step::Ban(name("troll"), Some(60), Some("spam, again".into()))
        );
        assert_eq!(
            step("/ban troll spam"),
            Step::Ban(name("troll"), None, Some("spam".into()))
        );
        assert_eq!(step("/mute loud 5"), Step::Mute(name("loud"), Some(5)));
        assert_eq!(step("/unban troll"), Step::Unban(name("troll")));
        assert_eq!(step("/unmute loud"), Step::Unmute(name("loud")));
        assert_eq!(step("/op bob"), Step::Role(name("bob"), Role::Op));
        assert_eq!(step("/deop bob"), Step::Role(name("bob"), Role::Member));
        assert_eq!(step("/invite dave"), Step::Invite(name("dave")));
        assert_eq!(step("/private on"), Step::Private(true));
        assert_eq!(
            step("/retain 30"),
            Step::Retain(Days::limit(30.0).ok().flatten())
        );
        assert_eq!(
            step("/retain 0.5").clone(),
            Step::Retain(Days::limit(0.5).ok().flatten())
        );
        assert_eq!(step("/retain off"), Step::Retain(None));
        assert_eq!(step("/PRIVATE off"), Step::Private(false));
        for (line, hint) in [
            ("/kick", "Who?"),
            ("/ban troll 0", "At least 1 minute"),
            ("/mute loud soon", "a number"),
            ("/op bob alice", "Just one name"),
            ("/private maybe", "/private on"),
            ("/retain 0", "/retain 30"),
            ("/retain -2", "/retain 30"),
            ("/retain soon", "/retain 30"),
            ("/invite a\u{7}b", "cannot be a name"),
        ] {
            let got = parse(line).expect_err(line);
            assert!(got.contains(hint), "{line}: {got}");
        }
    }

    #[test]
    fn mistakes_get_a_hint() {
        for (line, hint) in [
            ("/me", "/me waves"),
            ("/join", "/join #room"),
            ("/join two words", "no spaces"),
            ("/join #", "cannot be a room"),
            ("/msg", "/msg name text"),
            ("/msg a\u{7}b hi", "cannot be a name"),
            ("/frobnicate", "no /frobnicate command"),
            ("/", "//"),
        ] {
            let got = parse(line).expect_err(line);
            assert!(got.contains(hint), "{line}: {got}");
        }
    }
}
