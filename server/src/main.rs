//! `server`: the chat server (see `server --help`).

fn main() -> std::process::ExitCode {
    chat_server::cli::main()
}
