//! A headless IRC client for the IRC port's tests and the load generator: it sends lines
//! and reads them one at a time, each within [`WAIT`](crate::WAIT).

use std::net::SocketAddr;

use std::sync::Arc;

use chat_shared::{Reader, Writer};
use futures_lite::io::BufReader;
use futures_lite::{AsyncBufReadExt, AsyncWriteExt};

use crate::{open, within};

/// A line the server sent, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrcLine {
    /// Its tags as sent (`time=…;msgid=…`), or empty.
    pub tags: String,
    /// Its source (`nick!~u@chat`, or the server's name).
    pub source: String,
    /// The command or numeric.
    pub command: String,
    /// Its parameters, the trailing one included.
    pub params: Vec<String>,
    /// The whole line, without CR-LF.
    pub raw: String,
}

impl IrcLine {
    /// Takes a line apart.
    pub fn parse(raw: &str) -> Self {
        let mut rest = raw;
        let mut tags = String::new();
        if let Some(tagged) = rest.strip_prefix('@') {
            let (t, after) = tagged.split_once(' ').unwrap_or((tagged, ""));
            tags = t.to_string();
            rest = after;
        }
        let mut source = String::new();
        if let Some(prefixed) = rest.strip_prefix(':') {
            let (s, after) = prefixed.split_once(' ').unwrap_or((prefixed, ""));
            source = s.to_string();
            rest = after;
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut params = Vec::new();
        while !rest.is_empty() {
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing.to_string());
                break;
            }
            let (param, after) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(param.to_string());
            rest = after;
        }
        Self {
            tags,
            source,
            command: command.to_string(),
            params,
            raw: raw.to_string(),
        }
    }

    /// The nick of its source.
    pub fn nick(&self) -> &str {
        self.source.split('!').next().unwrap_or("")
    }

    /// Parameter `i`, or `""`.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// The last parameter (the text of a message), or `""`.
    pub fn text(&self) -> &str {
        self.params.last().map_or("", String::as_str)
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .split(';')
            .find_map(|tag| match tag.split_once('=') {
                Some((k, value)) if k == key => Some(value),
                None if tag == key => Some(""),
                _ => None,
            })
    }
}

/// An IRC connection.
pub struct IrcClient {
    lines: futures_lite::io::Lines<BufReader<Reader>>,
    writer: Writer,
    /// Its nick once registered.
    pub nick: String,
}

impl IrcClient {
    /// Connects without registering.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_with(addr, None).await
    }

    /// Connects (over TLS with `tls`) without registering.
    pub async fn connect_with(
        addr: SocketAddr,
        tls: Option<&Arc<futures_rustls::rustls::ClientConfig>>,
    ) -> Self {
        let (_, reader, writer) = within("connecting to the IRC port", open(addr, None, tls))
            .await
            .expect("connected");
        Self {
            lines: BufReader::new(reader).lines(),
            writer,
            nick: String::new(),
        }
    }

    /// Connects and registers as a guest named `nick` with capabilities `caps`; returns
    /// once the welcome was read.
    pub async fn guest(addr: SocketAddr, nick: &str, caps: &[&str]) -> Self {
        let mut client = Self::connect(addr).await;
        client.negotiate(caps).await;
        client.send(&format!("NICK {nick}")).await;
        client.send("USER u 0 * :someone").await;
        client.end_negotiation(caps).await;
        client.welcomed().await;
        client
    }

    /// Connects and logs in to `account` with SASL PLAIN and capabilities `caps`.
    pub async fn account(addr: SocketAddr, account: &str, password: &str, caps: &[&str]) -> Self {
        let mut client = Self::connect(addr).await;
        let mut caps = caps.to_vec();
        caps.push("sasl");
        client.negotiate(&caps).await;
        client.send(&format!("NICK {account}")).await;
        client.send("USER u 0 * :someone").await;
        client.send("AUTHENTICATE PLAIN").await;
        client.expect("AUTHENTICATE").await;
        client
            .send(&format!("AUTHENTICATE {}", plain(account, password)))
            .await;
        client.expect("903").await;
        client.send("CAP END").await;
        client.welcomed().await;
        client
    }

    async fn negotiate(&mut self, caps: &[&str]) {
        if !caps.is_empty() {
            self.send("CAP LS 302").await;
            self.send(&format!("CAP REQ :{}", caps.join(" "))).await;
        }
    }

    async fn end_negotiation(&mut self, caps: &[&str]) {
        if !caps.is_empty() {
            self.until(|line| line.command == "CAP" && line.param(1) == "ACK")
                .await;
            self.send("CAP END").await;
        }
    }

    /// Reads the welcome up to its end (422: there is no message of the day); keeps the
    /// nick 001 gave.
    pub async fn welcomed(&mut self) {
        let welcome = self.expect("001").await;
        self.nick = welcome.param(0).to_string();
        self.expect("422").await;
    }

    /// Joins `channel` and reads up to the end of its names (366).
    pub async fn join(&mut self, channel: &str) {
        self.send(&format!("JOIN {channel}")).await;
        self.until(|line| line.command == "366" && line.param(1) == channel)
            .await;
    }

    /// Sends one line (CR-LF added).
    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        within("sending", self.writer.write_all(bytes))
            .await
            .expect("sent");
    }

    /// The next line, or `None` once the server closed the connection.
    pub async fn next(&mut self) -> Option<IrcLine> {
        use futures_lite::StreamExt;
        within("a line from the IRC port", self.lines.next())
            .await
            .map(|line| IrcLine::parse(line.expect("a line").trim_end_matches('\r')))
    }

    /// The next line, which must come.
    pub async fn line(&mut self) -> IrcLine {
        self.next().await.expect("the connection is open")
    }

    /// Reads up to the first line with `command`; returns it.
    pub async fn expect(&mut self, command: &str) -> IrcLine {
        loop {
            let line = self.line().await;
            if line.command == command {
                return line;
            }
        }
    }

    /// Reads up to the first line `want` takes; returns every line read, it last.
    pub async fn until(&mut self, want: impl Fn(&IrcLine) -> bool) -> Vec<IrcLine> {
        let mut read = Vec::new();
        loop {
            let line = self.line().await;
            let done = want(&line);
            read.push(line);
            if done {
                return read;
            }
        }
    }

    /// Reads to the end of the connection; returns every line read.
    pub async fn to_end(&mut self) -> Vec<IrcLine> {
        let mut read = Vec::new();
        while let Some(line) = self.next().await {
            read.push(line);
        }
        read
    }
}

/// SASL PLAIN's credentials, in base64.
pub fn plain(account: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{account}\0{password}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_taken_apart() {
        let line = IrcLine::parse("@time=x;msgid=a/1 :ann!~u@chat PRIVMSG #a :hi there");
        assert_eq!(line.nick(), "ann");
        assert_eq!(line.command, "PRIVMSG");
        assert_eq!(line.params, ["#a", "hi there"]);
        assert_eq!(line.tag("msgid"), Some("a/1"));
        assert_eq!(plain("ann", "pw"), "AGFubgBwdw==");
    }
}
