//! Desktop chat client.
