//! What a line typed in the input means: a message, or a slash command.

use chat_shared::{Name, RoomName};

/// The slash commands, as `/help` lists them: how to write each, and what it does.
pub const COMMANDS: [(&str, &str); 7] = [
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
        "" => Err("Type a command after the /, or // to send a line that starts with /.".into()),
        other => Err(format!(
            "There is no /{other} command: /help lists them. To send a line that starts \
             with /, begin it with //."
        )),
    }
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
