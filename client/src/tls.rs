//! TLS for the client: a certificate is accepted when the roots every browser trusts vouch
//! for it (Mozilla's list, from webpki-roots), or when its SHA-256 fingerprint is the one
//! the person trusted for this server before. A certificate nobody vouches for and nobody
//! trusted yet is refused with its fingerprint, so the app can ask "Trust this server?";
//! a fingerprint that differs from the trusted one is refused, never accepted silently.

use std::sync::{Arc, Mutex};

use futures_rustls::rustls::client::WebPkiServerVerifier;
use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::crypto::CryptoProvider;
use futures_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The SHA-256 fingerprint of a DER certificate, as the server logs it.
pub fn fingerprint(der: &[u8]) -> String {
    chat_shared::format_fingerprint(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// Why a TLS connection was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody vouches for the certificate, and it was not trusted before.
    Untrusted {
        /// Its fingerprint, to show.
        fingerprint: String,
    },
    /// The server shows another certificate than the one trusted before.
    Changed {
        /// The fingerprint trusted before.
        expected: String,
        /// The one it shows now.
        got: String,
    },
}

/// What the verifier saw of the server's certificate.
#[derive(Debug, Default)]
struct Observed {
    refusal: Option<Refusal>,
}

#[derive(Debug)]
struct Verifier {
    roots: Arc<WebPkiServerVerifier>,
    trusted: Option<String>,
    seen: Arc<Mutex<Observed>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let by_roots =
            self.roots
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        let got = fingerprint(end_entity);
        let refusal = match (&by_roots, &self.trusted) {
            (Ok(_), _) => return by_roots,
            (Err(_), Some(expected)) if *expected == got => {
                return Ok(ServerCertVerified::assertion());
            }
            (Err(_), Some(expected)) => Refusal::Changed {
                expected: expected.clone(),
                got,
            },
            (Err(_), None) => Refusal::Untrusted { fingerprint: got },
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.refusal = Some(refusal);
        }
        Err(rustls::Error::General("certificate not trusted".into()))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.roots.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.roots.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.roots.supported_verify_schemes()
    }
}

/// A TLS handshake that failed: refused by the trust rules, or for another reason.
#[derive(Debug)]
pub enum Failure {
    /// The certificate is not trusted (yet).
    Refused(Refusal),
    /// Anything else, in words.
    Other(String),
}

/// Makes a TLS connection over `stream` to `host`, trusting what the roots vouch for and
/// the certificate with the fingerprint `trusted`.
pub async fn connect<S>(
    stream: S,
    host: &str,
    trusted: Option<String>,
) -> Result<futures_rustls::client::TlsStream<S>, Failure>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let seen = Arc::new(Mutex::new(Observed::default()));
    let config = client_config(provider, trusted, seen.clone()).map_err(Failure::Other)?;
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|_| Failure::Other(format!("{host:?} is not a host name")))?
        .to_owned();
    match futures_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
    {
        Ok(tls) => Ok(tls),
        Err(err) => Err(match seen.lock().ok().and_then(|mut s| s.refusal.take()) {
            Some(refusal) => Failure::Refused(refusal),
            None => Failure::Other(format!("TLS: {err}")),
        }),
    }
}

fn client_config(
    provider: Arc<CryptoProvider>,
    trusted: Option<String>,
    seen: Arc<Mutex<Observed>>,
) -> Result<ClientConfig, String> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let roots = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|err| err.to_string())?;
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier {
            roots,
            trusted,
            seen,
        }))
        .with_no_client_auth())
}
