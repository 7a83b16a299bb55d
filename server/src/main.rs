//! `server`: the chat server (see `server --help`).

#[global_allocator]
static ALLOCATOR: chat_server::Allocator = chat_server::ALLOCATOR;

fn main() -> std::process::ExitCode {
    chat_server::cli::main()
}
