//! The chat server (see the server issue); filled in next.
