//! What a password costs the server (`cargo bench -p chat-server`): one Argon2id hash with
//! the parameters it uses (19 MiB, 2 passes, 1 lane), made at registration and
//! `set_password`, and one check, made at every log-in with a password. A log-in with a
//! token costs neither. Logins per second on one core = 1 / the check's time.

use chat_server::accounts::{hash, verify};
use chat_shared::Password;

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 20)]
fn hash_a_new_password() {
    divan::black_box(hash(&Password::new("correct horse battery")).expect("hash"));
}

#[divan::bench(sample_count = 20)]
fn check_a_password(bencher: divan::Bencher) {
    let stored = hash(&Password::new("correct horse battery")).expect("hash");
    let guess = Password::new("correct horse battery");
    bencher.bench(|| divan::black_box(verify(&stored, &guess)));
}
