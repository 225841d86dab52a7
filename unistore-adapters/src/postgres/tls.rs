//! TLS as libpq's `sslmode` means it, on rustls.
//!
//! | `sslmode` | encrypted | certificate chain checked | host name checked |
//! | --- | --- | --- | --- |
//! | `disable` | no | - | - |
//! | `allow` | only if the server insists | no | no |
//! | `prefer` (default) | if the server offers it | no | no |
//! | `require` | yes | only with a root certificate (`sslrootcert`, `~/.postgresql/root.crt`), as libpq | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! Roots: `sslrootcert=FILE` (PEM) is the only trusted root when given, as in libpq;
//! `sslrootcert=system`, or no file at all, uses the bundled Mozilla roots (`webpki-roots`), so
//! that managed services with public certificates verify out of the box.
//!
//! Unverified TLS still protects the password: SCRAM with channel binding ties the login to the
//! certificate the client actually saw.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;
use unistore_core::{Error, ErrorKind, Result};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// Plain first; TLS (unverified) only when the server refuses a plain connection.
    Allow,
    /// TLS (unverified) when the server offers it, else plain. libpq's default.
    Prefer,
    /// TLS always; the certificate is not verified unless a root certificate is configured.
    Require,
    /// TLS, with the certificate chain verified against the trusted roots (not the host name).
    VerifyCa,
    /// TLS, with the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    /// Parses a libpq `sslmode` value.
    pub fn parse(value: &str) -> Option<SslMode> {
        Some(match value.to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The bundled Mozilla roots.
    System,
    /// A PEM file (`sslrootcert`, or libpq's default `~/.postgresql/root.crt` when it exists).
    File(PathBuf),
}

/// How far the certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Encryption only.
    None,
    /// The chain up to a trusted root, any host name.
    Chain,
    /// The chain and the host name.
    Full,
}

/// The rustls connector for `verification` with `roots`.
pub(crate) fn connector(verification: Verification, roots: &Roots) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match verification {
        Verification::None => Arc::new(EncryptOnly { provider: provider.clone() }),
        Verification::Chain => Arc::new(ChainOnly { inner: webpki_verifier(roots, &provider)? }),
        Verification::Full => webpki_verifier(roots, &provider)?,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::backend(ErrorKind::Other, format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn webpki_verifier(roots: &Roots, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Roots::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Roots::File(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::invalid(format!(
                        "cannot read the root certificate file (sslrootcert) {}: {e}",
                        path.display()
                    ))
                })?;
            let (added, _ignored) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::invalid(format!(
                    "the root certificate file (sslrootcert) {} holds no usable PEM certificate",
                    path.display()
                )));
            }
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone()).build().map_err(|e| {
        Error::backend(ErrorKind::Other, format!("cannot set up TLS certificate verification: {e}"))
    })
}

/// `sslmode=require` (and `prefer`, `allow`) without a root certificate: any certificate is
/// accepted, but the handshake signatures are still checked, so the session is encrypted with
/// the key of the certificate presented.
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the full webpki verification, except that a certificate issued for
/// another host name is accepted. webpki checks the chain before the name, so a name error
/// means the chain was good.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The fix for a handshake that rustls refused, by the certificate problem rustls names.
pub(crate) fn tls_failure_hint(error: &rustls::Error, detail: &str, mode: SslMode) -> String {
    let rustls::Error::InvalidCertificate(problem) = error else { return handshake_hint(detail, mode) };
    match problem {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            not_for_this_name(mode)
        }
        CertificateError::UnknownIssuer => untrusted_issuer(mode),
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => out_of_date(),
        _ => handshake_hint(detail, mode),
    }
}

fn not_for_this_name(mode: SslMode) -> String {
    format!(
        "the server's certificate was not issued for the host name in the URL (sslmode={}): \
         connect with a host name the certificate names, or use sslmode=verify-ca to check \
         only the issuer",
        mode.as_str()
    )
}

fn untrusted_issuer(mode: SslMode) -> String {
    format!(
        "the server's certificate is not signed by a trusted root (sslmode={}): point \
         sslrootcert= at the PEM file of the CA that signed it (or of the self-signed \
         certificate itself), or use sslmode=require to encrypt without verifying",
        mode.as_str()
    )
}

fn out_of_date() -> String {
    "the server's certificate is expired or not yet valid: check the server's certificate and \
     this machine's clock"
        .to_string()
}

/// The fix for a failed handshake known only by its text: the server declined TLS (the driver
/// says so in words only), or a failure whose rustls error did not reach us.
pub(crate) fn handshake_hint(detail: &str, mode: SslMode) -> String {
    if detail.contains("not valid for name") || detail.contains("NotValidForName") {
        not_for_this_name(mode)
    } else if detail.contains("UnknownIssuer") || detail.contains("unknown issuer") {
        untrusted_issuer(mode)
    } else if detail.contains("Expired") || detail.contains("NotValidYet") {
        out_of_date()
    } else if detail.contains("does not support TLS") {
        format!(
            "the server does not offer TLS here (ssl = off, or a Unix socket, where PostgreSQL \
             never offers it) but sslmode={} requires it: enable ssl on the server and connect \
             over TCP, or use sslmode=prefer",
            mode.as_str()
        )
    } else {
        format!("the TLS handshake failed (sslmode={}): check sslmode and sslrootcert", mode.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_libpq_sslmode_parses() {
        for name in ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] {
            let mode = SslMode::parse(name).expect("libpq mode");
            assert_eq!(mode.as_str(), name);
        }
        assert_eq!(SslMode::parse("VERIFY-FULL"), Some(SslMode::VerifyFull));
        assert_eq!(SslMode::parse("sometimes"), None);
    }

    #[test]
    fn connectors_build_for_every_verification() {
        connector(Verification::None, &Roots::System).expect("encrypt only");
        connector(Verification::Chain, &Roots::System).expect("chain");
        connector(Verification::Full, &Roots::System).expect("full");
        let e =
            connector(Verification::Full, &Roots::File("/no/such/root.crt".into())).err().expect("missing");
        assert!(e.to_string().contains("sslrootcert") && e.to_string().contains("/no/such/root.crt"), "{e}");
    }

    #[test]
    fn handshake_hints_name_the_fix() {
        let h = handshake_hint("invalid peer certificate: UnknownIssuer", SslMode::VerifyFull);
        assert!(h.contains("sslrootcert=") && h.contains("sslmode=require"), "{h}");
        let h = handshake_hint("certificate not valid for name \"127.0.0.1\"", SslMode::VerifyFull);
        assert!(h.contains("verify-ca"), "{h}");
    }

    #[test]
    fn rustls_certificate_errors_name_the_fix_without_reading_text() {
        let hint = |problem: CertificateError| {
            tls_failure_hint(&rustls::Error::InvalidCertificate(problem), "", SslMode::VerifyFull)
        };
        assert!(hint(CertificateError::UnknownIssuer).contains("sslrootcert="));
        assert!(hint(CertificateError::NotValidForName).contains("verify-ca"));
        assert!(hint(CertificateError::Expired).contains("expired or not yet valid"));
        let other = tls_failure_hint(&rustls::Error::HandshakeNotComplete, "", SslMode::Require);
        assert!(other.contains("the TLS handshake failed (sslmode=require)"), "{other}");
    }
}
