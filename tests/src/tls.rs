//! Certificates for the TLS tests: a throwaway CA and a server certificate it issued for
//! `localhost` and `127.0.0.1`, written to a temporary folder (removed on drop), and rustls
//! client configurations that trust the CA.
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::PathBuf;
use std::sync::Arc;

pub struct TestCerts {
    pub dir: PathBuf,
    pub ca_pem: String,
}

impl TestCerts {
    /// A new CA and server certificate, in a new folder.
    pub fn new() -> TestCerts {
        let dir =
            std::env::temp_dir().join(format!("fluxbase-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("certificate folder");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Fluxbase test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let server_key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let server = params
            .signed_by(&server_key, &ca)
            .expect("server certificate");
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        TestCerts {
            dir,
            ca_pem: ca.pem(),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `server.tls` keys for these certificates.
    pub fn server_tls_yaml(&self, min_version: &str) -> String {
        format!(
            "tls: {{ enabled: true, cert_file: \"{}\", key_file: \"{}\", min_version: \"{min_version}\" }}",
            self.path("server.crt"),
            self.path("server.key")
        )
    }

    /// A rustls client that trusts the CA, speaks only `versions` and offers `alpn`.
    pub fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> rustls::ClientConfig {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// A reqwest client over [`TestCerts::client_config`].
    pub fn http_client(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.client_config(versions, alpn))
            .build()
            .expect("reqwest client")
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        TestCerts::new()
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
