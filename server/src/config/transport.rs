//! `server.tls`: HTTPS on the server's own port.
//!
//! Why the files are loaded during validation: a certificate that cannot be read, does not
//! parse or does not belong to its key would otherwise surface on the first handshake, long
//! after the deployment looked healthy. [`crate::tls::server_config`] does the loading; here
//! its refusal gets the key's name.
use super::{invalid, ConfigError};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub enabled: bool,
    /// PEM certificate chain, leaf first.
    pub cert_file: Option<String>,
    /// PEM private key.
    pub key_file: Option<String>,
    /// `1.2` or `1.3` (written with or without quotes).
    #[serde(default = "default_min_version", deserialize_with = "text_or_number")]
    pub min_version: String,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: None,
            key_file: None,
            min_version: default_min_version(),
        }
    }
}

fn default_min_version() -> String {
    "1.2".to_owned()
}

/// `min_version: 1.2` is a YAML float; accept it as the text it was written as.
fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(f64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(t) => t,
        Raw::Number(n) => n.to_string(),
    })
}

/// The TLS versions the server may be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

impl TlsConfig {
    /// The minimum version (valid after validation; 1.2 otherwise).
    pub fn min_version(&self) -> TlsVersion {
        if self.min_version.trim() == "1.3" {
            TlsVersion::V1_3
        } else {
            TlsVersion::V1_2
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.min_version.trim(), "1.2" | "1.3") {
            return invalid(
                "server.tls.min_version",
                format!(
                    "must be \"1.2\" or \"1.3\", not \"{}\" (older versions are broken)",
                    self.min_version
                ),
            );
        }
        if !self.enabled {
            return Ok(());
        }
        let Some(cert) = self.cert_file.as_deref().filter(|s| !s.trim().is_empty()) else {
            return invalid(
                "server.tls.cert_file",
                "is required when server.tls.enabled is true",
            );
        };
        let Some(key) = self.key_file.as_deref().filter(|s| !s.trim().is_empty()) else {
            return invalid(
                "server.tls.key_file",
                "is required when server.tls.enabled is true",
            );
        };
        crate::tls::server_config(cert, key, self.min_version())
            .map(|_| ())
            .map_err(|e| ConfigError::Invalid {
                key: e.key(),
                message: e.to_string(),
            })
    }
}
