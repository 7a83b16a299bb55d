//! `server`: the chat server (see `server --help`).

/// mimalloc returns freed memory to the system where glibc's allocator keeps it: after a
/// burst of logins (big welcome frames, queues briefly backed up) glibc left the server at
/// several times its steady-state memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    chat_server::cli::main()
}
