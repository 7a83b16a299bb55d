//! TLS for every connection on the port: a certificate and key from PEM files, or a
//! self-signed certificate made once and kept in the data directory. Its SHA-256
//! fingerprint is what a client shows a person who is asked to trust it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::rustls::{self, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSetup {
    /// `--tls-cert FILE --tls-key FILE`.
    Files {
        /// The certificate chain (PEM).
        cert: PathBuf,
        /// Its private key (PEM).
        key: PathBuf,
    },
    /// `--tls-self-signed`: made once in this directory, then reused.
    SelfSigned(PathBuf),
}

/// The certificate's file in the data directory (`--tls-self-signed`).
pub const SELF_SIGNED_CERT: &str = "tls-cert.pem";
/// Its key's file, readable by the owner only.
pub const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// A TLS setup ready to accept with.
pub struct Tls {
    /// rustls's settings.
    pub config: Arc<ServerConfig>,
    /// The SHA-256 fingerprint of the certificate, as a client shows it.
    pub fingerprint: String,
    /// Where it came from, in words for the log.
    pub source: String,
}

/// The SHA-256 fingerprint of a DER certificate: uppercase hex pairs joined by colons.
pub fn fingerprint(der: &[u8]) -> String {
    chat_shared::format_fingerprint(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

fn read_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|err| format!("cannot read the certificate {}: {err}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| format!("cannot read the private key {}: {err}", key.display()))?;
    Ok((certs, key))
}

/// Makes a self-signed certificate for `localhost`, `127.0.0.1`, `::1` and `host`, and
/// writes it and its key (mode 0600) into `dir`.
fn make_self_signed(dir: &Path, cert: &Path, key: &Path, host: &str) -> Result<(), String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !host.is_empty() && !names.iter().any(|n| n == host) && host != "0.0.0.0" && host != "::" {
        names.push(host.to_string());
    }
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|err| format!("cannot make a self-signed certificate: {err}"))?;
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let write_key = || -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(key)?
            .write_all(made.signing_key.serialize_pem().as_bytes())
    };
    write_key().map_err(|err| format!("cannot write {}: {err}", key.display()))?;
    std::fs::write(cert, made.cert.pem())
        .map_err(|err| format!("cannot write {}: {err}", cert.display()))
}

impl Tls {
    /// Loads (or, self-signed, first makes) the certificate. `host` is the address the
    /// server listens on, named in a new self-signed certificate.
    pub fn load(setup: &TlsSetup, host: &str) -> Result<Self, String> {
        let (cert, key, source) = match setup {
            TlsSetup::Files { cert, key } => (cert.clone(), key.clone(), "files".to_string()),
            TlsSetup::SelfSigned(dir) => {
                let (cert, key) = (dir.join(SELF_SIGNED_CERT), dir.join(SELF_SIGNED_KEY));
                let source = if cert.exists() && key.exists() {
                    "self-signed".to_string()
                } else {
                    make_self_signed(dir, &cert, &key, host)?;
                    "self-signed, new".to_string()
                };
                (cert, key, source)
            }
        };
        let (certs, private) = read_pem(&cert, &key)?;
        let fingerprint = fingerprint(&certs[0]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| err.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, private)
            .map_err(|err| format!("the certificate {} cannot be used: {err}", cert.display()))?;
        Ok(Self {
            config: Arc::new(config),
            fingerprint,
            source: format!("{} ({source})", cert.display()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("chat-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let setup = TlsSetup::SelfSigned(dir.clone());
        let first = Tls::load(&setup, "127.0.0.1").expect("made");
        let again = Tls::load(&setup, "127.0.0.1").expect("read back");
        assert_eq!(first.fingerprint, again.fingerprint, "the same certificate");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(SELF_SIGNED_KEY))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is the owner's only");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn files_that_are_not_pem_are_refused_with_their_name() {
        let dir = std::env::temp_dir().join(format!("chat-tls-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&cert, "not a certificate").expect("write");
        std::fs::write(&key, "not a key").expect("write");
        let err = Tls::load(&TlsSetup::Files { cert, key }, "")
            .err()
            .expect("refused");
        assert!(err.contains("c.pem"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
