//! rustls configurations: the HTTPS server's ([`server_config`]) and the database client's
//! ([`database_client_config`]). The crypto provider is ring, passed explicitly, so nothing
//! depends on a process-wide default provider (other crates in the tree enable aws-lc-rs too).
use crate::config::{SslMode, TlsVersion};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// Why a certificate or key file was refused; names the config key it came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("cannot read {path}: {message}")]
    Unreadable {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("{path} holds no PEM {what}")]
    Empty {
        key: &'static str,
        path: String,
        what: &'static str,
    },
    #[error("{message}")]
    Rejected { key: &'static str, message: String },
}

impl TlsFileError {
    pub fn key(&self) -> &'static str {
        match self {
            TlsFileError::Unreadable { key, .. }
            | TlsFileError::Empty { key, .. }
            | TlsFileError::Rejected { key, .. } => key,
        }
    }
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(key: &'static str, path: &str) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError::Unreadable {
        key,
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The PEM certificates of a file (a chain, or a CA bundle).
pub fn load_certs(
    key: &'static str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = read_file(key, path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsFileError::Rejected {
            key,
            message: format!("{path} is not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsFileError::Empty {
            key,
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The HTTPS server's configuration: the chain and key, versions from `min` up to 1.3, ALPN
/// `h2` then `http/1.1`.
pub fn server_config(
    cert_file: &str,
    key_file: &str,
    min: TlsVersion,
) -> Result<Arc<rustls::ServerConfig>, TlsFileError> {
    const CERT: &str = "server.tls.cert_file";
    const KEY: &str = "server.tls.key_file";
    let certs = load_certs(CERT, cert_file)?;
    let key_bytes = read_file(KEY, key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| TlsFileError::Rejected {
        key: KEY,
        message: format!("{key_file} holds no usable PEM private key: {e}"),
    })?;
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsFileError::Rejected {
            key: "server.tls.min_version",
            message: e.to_string(),
        })?
        .with_no_client_auth()
        // Also checks that the key belongs to the leaf certificate.
        .with_single_cert(certs, key)
        .map_err(|e| TlsFileError::Rejected {
            key: KEY,
            message: format!("{key_file} does not fit the certificate in {cert_file}: {e}"),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The database connections' TLS: `verify-full` checks the chain (against
/// `database.ssl_root_cert`, else the Mozilla roots) and the host name; `prefer` and `require`
/// encrypt without checking the certificate, as libpq does. With `disable` tokio-postgres never
/// asks the connector (one connector type for every mode keeps the connection types the same).
pub fn database_client_config(
    mode: SslMode,
    root_cert: Option<&str>,
) -> Result<rustls::ClientConfig, TlsFileError> {
    let builder = || {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsFileError::Rejected {
                key: "database.ssl_mode",
                message: e.to_string(),
            })
    };
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth(),
        SslMode::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            match root_cert {
                Some(path) => {
                    for cert in load_certs("database.ssl_root_cert", path)? {
                        roots.add(cert).map_err(|e| TlsFileError::Rejected {
                            key: "database.ssl_root_cert",
                            message: format!("{path}: {e}"),
                        })?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder()?
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// The connector every database connection of the server uses (pool, schema listener,
/// `fluxbase check`).
pub fn database_connector(
    config: &crate::config::DatabaseConfig,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TlsFileError> {
    let client = database_client_config(config.ssl_mode(), config.ssl_root_cert.as_deref())?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(client))
}

/// libpq's `sslmode=require`: the connection is encrypted, the server's certificate is not
/// checked (anyone on the path could present their own). Handshake signatures are still
/// verified, so the session keys belong to whoever holds the presented certificate's key.
/// Hand-written because rustls offers no such verifier (on purpose); only `prefer` and
/// `require` use it, `verify-full` is the safe mode and `fluxbase check` says so.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
