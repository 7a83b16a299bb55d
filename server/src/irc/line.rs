//! IRC lines: reading one a client sent (tags, prefix, command, parameters) and writing
//! the server's, with the escaping of tag values that `IRCv3` `message-tags` asks for.

use std::fmt::Write as _;
use std::sync::Arc;

/// The longest line without its tags, CR-LF included (RFC 1459).
pub const MAX_LINE: usize = 512;
/// The most bytes of client tags a line may carry, `@` and the space after them included
/// (`IRCv3` `message-tags`).
pub const MAX_TAGS: usize = 4096;

/// A line a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its tags, unescaped, in the order given (`+draft/reply`, `label`, …).
    pub tags: Vec<(String, String)>,
    /// The command, upper-cased (`PRIVMSG`, `JOIN`, …).
    pub command: String,
    /// Its parameters, the trailing one included.
    pub params: Vec<String>,
}

impl Line {
    /// Parses one line (without its CR-LF); `None` for an empty one, which IRC ignores.
    pub fn parse(text: &str) -> Option<Self> {
        let mut rest = text.trim_start_matches(' ');
        let mut tags = Vec::new();
        if let Some(tagged) = rest.strip_prefix('@') {
            let (raw, after) = tagged.split_once(' ').unwrap_or((tagged, ""));
            for tag in raw.split(';').filter(|tag| !tag.is_empty()) {
                let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
                tags.push((key.to_string(), unescape(value)));
            }
            rest = after.trim_start_matches(' ');
        }
        // A prefix from a client is ignored (RFC 2812 §2.3).
        if rest.starts_with(':') {
            rest = rest.split_once(' ').map_or("", |(_, after)| after);
            rest = rest.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing.to_string());
                break;
            }
            let (param, after) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(param.to_string());
            rest = after;
        }
        Some(Self {
            tags,
            command: command.to_ascii_uppercase(),
            params,
        })
    }

    /// The value of tag `key`, if the line has it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.as_str())
    }

    /// Parameter `i`, or `""`.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }
}

/// Undoes the escaping of a tag value (`\:` `;`, `\s` space, `\\`, `\r`, `\n`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Escapes a tag value.
pub fn escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Lines being written: each one ends with CR-LF.
#[derive(Debug)]
pub struct Out {
    text: String,
    /// The server's name, the source of its own lines.
    server: Arc<str>,
}

impl Out {
    /// Lines of the server named `server`.
    pub fn new(server: &Arc<str>) -> Self {
        Self::after(server, String::new())
    }

    /// Lines to write after `text` (taken over, and given back by [`Out::into_string`]).
    pub fn after(server: &Arc<str>, text: String) -> Self {
        Self {
            text,
            server: server.clone(),
        }
    }

    /// The server's name.
    pub fn name(&self) -> Arc<str> {
        self.server.clone()
    }

    /// Starts a line from the server; finish it with [`Out::params`].
    pub fn server(&mut self, command: &str) -> &mut Self {
        let server = self.server.clone();
        self.start("", &server, command)
    }

    /// Starts a line from the server with `tags` (already escaped); finish it with
    /// [`Out::params`].
    pub fn server_tagged(&mut self, tags: &str, command: &str) -> &mut Self {
        let server = self.server.clone();
        self.start(tags, &server, command)
    }

    /// Starts a line with `tags` (already escaped `key=value;…`, or empty) and `prefix`
    /// (without its `:`), then `command`; finish it with [`Out::params`].
    pub fn start(&mut self, tags: &str, prefix: &str, command: &str) -> &mut Self {
        if !tags.is_empty() {
            self.text.push('@');
            self.text.push_str(tags);
            self.text.push(' ');
        }
        self.text.push(':');
        self.text.push_str(prefix);
        self.text.push(' ');
        self.text.push_str(command);
        self
    }

    /// Ends the line with `params`; the last one is written as a trailing parameter when it
    /// must be (empty, a space in it, or a leading `:`).
    pub fn params(&mut self, params: &[&str]) {
        if let Some((last, middle)) = params.split_last() {
            for param in middle {
                self.text.push(' ');
                self.text.push_str(param);
            }
            self.text.push(' ');
            // What `push_clean` turns into spaces counts as spaces.
            if last.is_empty() || last.contains([' ', '\r', '\n', '\0']) || last.starts_with(':') {
                self.text.push(':');
            }
            push_clean(&mut self.text, last);
        }
        self.text.push_str("\r\n");
    }

    /// Ends the line with `params` and a trailing `text`, always written as trailing.
    pub fn trailing(&mut self, params: &[&str], text: &str) {
        for param in params {
            self.text.push(' ');
            self.text.push_str(param);
        }
        self.text.push_str(" :");
        push_clean(&mut self.text, text);
        self.text.push_str("\r\n");
    }

    /// A numeric reply from the server to `nick`.
    pub fn numeric(&mut self, code: u16, nick: &str, params: &[&str]) {
        let mut command = String::with_capacity(3);
        let _ = write!(command, "{code:03}");
        self.server(&command);
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(nick);
        all.extend_from_slice(params);
        // The last parameter of a numeric is text, trailing even as one word.
        match all.split_last() {
            Some((last, middle)) if !params.is_empty() => self.trailing(middle, last),
            _ => self.params(&all),
        }
    }

    /// Lines already written (the reader's, queued as they are).
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.text.push_str(&String::from_utf8_lossy(bytes));
    }

    /// Lines already written, as text.
    pub fn push_str(&mut self, lines: &str) {
        self.text.push_str(lines);
    }

    /// A line already written but for its tags (`tags` may be empty).
    pub fn push_tagged(&mut self, tags: &str, line: &str) {
        if !tags.is_empty() {
            self.text.push('@');
            self.text.push_str(tags);
            self.text.push(' ');
        }
        self.text.push_str(line);
    }

    /// A line already written, with `tags` (already escaped) added before any it has.
    pub fn add_tags(&mut self, tags: &str, line: &str) {
        match line.strip_prefix('@') {
            Some(rest) => {
                self.text.push('@');
                self.text.push_str(tags);
                self.text.push(';');
                self.text.push_str(rest);
            }
            None => self.push_tagged(tags, line),
        }
    }

    /// What was written so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The lines written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.text.into_bytes()
    }

    /// The lines written, as text.
    pub fn into_string(self) -> String {
        self.text
    }
}

/// Pushes `text` with what would end or break a line (CR, LF, NUL) turned into spaces.
fn push_clean(out: &mut String, text: &str) {
    out.extend(text.chars().map(|c| {
        if matches!(c, '\r' | '\n' | '\0') {
            ' '
        } else {
            c
        }
    }));
}

/// Splits a message's text into pieces that fit a line with `room` bytes for the text:
/// one per line of the text, long lines cut at a space where one is near the end (else at
/// a character boundary). Empty lines are dropped: IRC cannot send them.
pub fn pieces(text: &str, room: usize) -> Vec<&str> {
    let room = room.max(16);
    let mut out = Vec::new();
    for mut line in text.split('\n') {
        while line.len() > room {
            let mut cut = room;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            if let Some(space) = line[..cut].rfind(' ').filter(|at| *at > room / 2) {
                cut = space + 1;
            }
            out.push(&line[..cut]);
            line = &line[cut..];
        }
        if !line.trim().is_empty() {
            out.push(line);
        }
    }
    out
}

/// IRC's formatting codes (bold, colour with its digits, italics, underline, strike,
/// monospace, reverse, reset) and any other control character but the tab, taken out of a
/// client's text: our messages carry plain text.
pub fn strip_formatting(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x03' => {
                // ^C, then up to two digits of foreground, and ",NN" of background.
                for _ in 0..2 {
                    if chars.next_if(char::is_ascii_digit).is_none() {
                        break;
                    }
                }
                let mut ahead = chars.clone();
                if ahead.next() == Some(',') && ahead.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                    for _ in 0..2 {
                        if chars.next_if(char::is_ascii_digit).is_none() {
                            break;
                        }
                    }
                }
            }
            '\x04' => {
                // ^D, then a hex colour of six digits, and ",RRGGBB".
                for _ in 0..6 {
                    chars.next_if(char::is_ascii_hexdigit);
                }
                if chars.peek() == Some(&',') {
                    chars.next();
                    for _ in 0..6 {
                        chars.next_if(char::is_ascii_hexdigit);
                    }
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_with_its_tags_and_trailing_parameter() {
        let line =
            Line::parse("@+draft/reply=general/7;label=a\\sb :nick PRIVMSG #general :hi there")
                .expect("a line");
        assert_eq!(line.command, "PRIVMSG");
        assert_eq!(line.params, ["#general", "hi there"]);
        assert_eq!(line.tag("+draft/reply"), Some("general/7"));
        assert_eq!(line.tag("label"), Some("a b"));
        let line = Line::parse("join  #a,#b   key").expect("a line");
        assert_eq!(line.command, "JOIN");
        assert_eq!(line.params, ["#a,#b", "key"]);
        assert_eq!(Line::parse("   "), None);
        assert_eq!(Line::parse("PING :").expect("a line").params, [""]);
    }

    #[test]
    fn a_trailing_parameter_is_marked_only_when_it_must_be() {
        let mut out = Out::new(&"chat".into());
        out.start("", "chat", "JOIN").params(&["#general"]);
        out.start("time=x", "ann!~u@chat", "PRIVMSG")
            .params(&["#general", "two words"]);
        out.start("", "chat", "TOPIC").params(&["#a", ""]);
        out.start("", "chat", "PRIVMSG")
            .params(&["#a", "a\r\nQUIT"]);
        assert_eq!(
            out.as_str(),
            ":chat JOIN #general\r\n@time=x :ann!~u@chat PRIVMSG #general :two words\r\n\
             :chat TOPIC #a :\r\n:chat PRIVMSG #a :a  QUIT\r\n"
        );
    }

    #[test]
    fn tag_values_escape_and_unescape() {
        let mut escaped = String::new();
        escape("a;b c\\d\ne", &mut escaped);
        assert_eq!(escaped, "a\\:b\\sc\\\\d\\ne");
        assert_eq!(unescape(&escaped), "a;b c\\d\ne");
    }

    #[test]
    fn long_texts_are_cut_between_words_and_never_inside_a_character() {
        let text = format!("{} tail\nsecond\n\nthird", "é".repeat(30));
        let cut = pieces(&text, 20);
        assert!(cut.iter().all(|piece| piece.len() <= 20), "{cut:?}");
        assert_eq!(cut.concat(), format!("{} tailsecondthird", "é".repeat(30)));
        assert_eq!(
            pieces("one two three four five six", 16),
            ["one two three ", "four five six"]
        );
    }

    #[test]
    fn formatting_codes_are_stripped() {
        assert_eq!(
            strip_formatting("\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f\t\x04ff0000x"),
            "bold red italic\tx"
        );
        assert_eq!(strip_formatting("\x031,"), ",");
    }
}
