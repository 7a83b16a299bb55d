//! The server command, built inside the tests crate so its tests can start, kill and
//! restart a real server process (cargo only tells a package's tests where its own
//! binaries are).

#[global_allocator]
static ALLOCATOR: chat_server::Allocator = chat_server::ALLOCATOR;

fn main() -> std::process::ExitCode {
    chat_server::cli::main()
}
