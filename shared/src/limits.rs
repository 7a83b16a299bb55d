//! Default limits of the protocol, shared by the server (its flag defaults) and clients.

/// Default TCP port.
pub const DEFAULT_PORT: u16 = 60000;
/// Longest frame a client may send, newline included, in bytes.
pub const MAX_FRAME: usize = 16 * 1024;
/// Longest frame a client accepts from the server (a `welcome` lists everyone online).
pub const MAX_SERVER_FRAME: usize = 1024 * 1024;
/// Longest `say` text in bytes of UTF-8.
pub const MAX_TEXT: usize = 4096;
/// Longest name in Unicode scalar values.
pub const MAX_NAME: usize = 32;
/// Longest `say.id` in bytes.
pub const MAX_ID: usize = 64;
/// Posts per second per client.
pub const RATE: u32 = 5;
/// Posts in a burst above the rate.
pub const BURST: u32 = 20;
/// Most events in one `history` answer.
pub const MAX_HISTORY_LIMIT: u32 = 200;
/// Events in a `history` answer when the request names no limit.
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;
/// Bad frames in a row after which the server closes with `bad_frame`.
pub const MAX_BAD_FRAMES: u32 = 3;
/// Post ids remembered per name for de-duplication.
pub const REMEMBERED_IDS: usize = 256;
/// Seconds a client waits without receiving anything before it pings the server.
pub const CLIENT_PING_AFTER_SECS: u64 = 30;
/// Shortest password, in bytes of UTF-8.
pub const MIN_PASSWORD: usize = 8;
/// Longest password, in bytes of UTF-8.
pub const MAX_PASSWORD: usize = 128;
/// Wrong passwords for one account within [`ATTEMPT_WINDOW_SECS`] before it is throttled.
pub const MAX_ACCOUNT_FAILURES: usize = 5;
/// Wrong passwords from one address within [`ATTEMPT_WINDOW_SECS`] before it is throttled.
pub const MAX_ADDRESS_FAILURES: usize = 20;
/// The window in which wrong passwords count, in seconds.
pub const ATTEMPT_WINDOW_SECS: u64 = 600;
/// Conversations listed in an account's `welcome`.
pub const WELCOME_CONVERSATIONS: usize = 100;
/// Longest room topic, and longest reason given with a removal or a ban, in bytes of UTF-8.
pub const MAX_TOPIC: usize = 512;
/// Distinct emoji one message may hold.
pub const MAX_REACTIONS: usize = 20;
/// Names a message's reactions list per emoji (the count goes on).
pub const MAX_REACTION_NAMES: usize = 50;
/// Longest emoji of a reaction, in bytes of UTF-8.
pub const MAX_EMOJI: usize = 32;
/// Least time between two `typing` relayed for one sender and room, in milliseconds.
pub const TYPING_EVERY_MS: u64 = 2000;
/// Most results in one `search_results`.
pub const MAX_SEARCH_RESULTS: u32 = 50;
/// Results in one `search_results` when `limit` is absent.
pub const SEARCH_RESULTS: u32 = 20;
/// Longest `search` query, in bytes.
pub const MAX_QUERY: usize = 512;
/// The longest a room's own retention may be, in days (a hundred years).
pub const MAX_RETAIN_DAYS: f64 = 36_500.0;
