//! Outgoing e-mail over SMTP (`auth.smtp`): for now the password-reset link.
//!
//! Why a background task sends it (see [`crate::routes::auth::password`]): the reset
//! request answers the same, in the same time, whether or not the account exists; waiting
//! for the SMTP relay only when a token was issued would tell them apart.
//!
//! What is logged: that a message was sent or failed, with the request id. Never the link
//! (it holds the token), and not the recipient (personal data).
use crate::config::{SmtpConfig, SmtpTls};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one SMTP exchange (connect, greeting, each command) may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("auth.smtp: {0}")]
    Setup(String),
    #[error("not a valid recipient address")]
    Recipient,
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("the SMTP relay refused or failed: {0}")]
    Send(String),
}

/// A configured SMTP relay. Connects per message, so building one needs no network.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// The mailer for `auth.smtp` (already validated: TLS off only for a local relay).
    pub fn from_config(smtp: &SmtpConfig) -> Result<Mailer, MailError> {
        let host = smtp.host.trim();
        let builder = match smtp.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| MailError::Setup(e.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| MailError::Setup(e.to_string()))?,
        };
        let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = smtp
            .from
            .parse::<Mailbox>()
            .map_err(|_| MailError::Setup("from is not a valid address".to_owned()))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// The reset message for `to` carrying `link`.
    pub fn password_reset_message(&self, to: &str, link: &str) -> Result<Message, MailError> {
        let to = to
            .trim()
            .parse::<Mailbox>()
            .map_err(|_| MailError::Recipient)?;
        let text = format!(
            "Someone asked to reset the password of the account for this address.\n\n\
             To choose a new password, open this link within one hour:\n\n{link}\n\n\
             The link works once. If you did not ask for this, ignore this message: \
             your password stays as it is.\n"
        );
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject("Reset your password")
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// Sends the reset message (one SMTP connection).
    pub async fn send_password_reset(&self, to: &str, link: &str) -> Result<(), MailError> {
        let message = self.password_reset_message(to, link)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Send(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    fn smtp(port: u16) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port,
            from: "Fluxbase <no-reply@example.com>".to_owned(),
            username: None,
            password: None,
            tls: SmtpTls::None,
        }
    }

    /// Undoes quoted-printable (soft breaks and `=XX`), which lettre may choose for long lines.
    fn unquote(text: &str) -> String {
        let joined = text.replace("=\r\n", "");
        let mut out = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn the_message_carries_the_link() {
        let mailer = Mailer::from_config(&smtp(25)).unwrap();
        let link = "https://app.example.com/reset?token=abc123&type=recovery";
        let message = mailer
            .password_reset_message(" user@example.com ", link)
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("To: user@example.com"), "{raw}");
        assert!(
            raw.contains("From: Fluxbase <no-reply@example.com>"),
            "{raw}"
        );
        assert!(raw.contains("Subject: Reset your password"), "{raw}");
        assert!(unquote(&raw).contains(link), "{raw}");
        assert!(matches!(
            mailer.password_reset_message("not an address", link),
            Err(MailError::Recipient)
        ));
        // Header injection through the address is impossible: it does not parse.
        assert!(matches!(
            mailer.password_reset_message("a@example.com\r\nBcc: x@evil.test", link),
            Err(MailError::Recipient)
        ));
    }

    #[test]
    fn tls_modes_build_without_network() {
        for tls in [SmtpTls::Starttls, SmtpTls::Tls] {
            let config = SmtpConfig {
                host: "smtp.example.com".to_owned(),
                tls,
                username: Some("u".to_owned()),
                password: Some("p".to_owned()),
                ..smtp(587)
            };
            assert!(Mailer::from_config(&config).is_ok(), "{tls:?}");
        }
    }

    /// A minimal SMTP server on 127.0.0.1:0 that accepts one message and returns its DATA.
    async fn fake_relay() -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            let mut data = String::new();
            let mut in_data = false;
            while let Some(line) = lines.next_line().await.unwrap() {
                if in_data {
                    if line == "." {
                        in_data = false;
                        write.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        data.push_str(&line);
                        data.push_str("\r\n");
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 fake\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    "QUIT" => {
                        write.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                write.write_all(reply).await.unwrap();
            }
            data
        });
        (port, task)
    }

    #[tokio::test]
    async fn sends_through_an_smtp_relay() {
        let (port, relay) = fake_relay().await;
        let mailer = Mailer::from_config(&smtp(port)).unwrap();
        let link = "http://localhost:3000/reset?token=feedbeef&type=recovery";
        mailer
            .send_password_reset("someone@example.com", link)
            .await
            .unwrap();
        let data = tokio::time::timeout(Duration::from_secs(10), relay)
            .await
            .unwrap()
            .unwrap();
        assert!(data.contains("To: someone@example.com"), "{data}");
        assert!(unquote(&data).contains(link), "{data}");
    }

    #[tokio::test]
    async fn a_dead_relay_is_an_error_not_a_panic() {
        // Bind and drop: nothing listens on the port any more.
        let port = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let mailer = Mailer::from_config(&smtp(port)).unwrap();
        let err = mailer
            .send_password_reset("someone@example.com", "http://localhost/x?token=t")
            .await
            .unwrap_err();
        assert!(matches!(err, MailError::Send(_)), "{err}");
        assert!(!err.to_string().contains("token=t"));
    }
}
