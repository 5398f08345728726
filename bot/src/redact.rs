//! Log output that never shows the bot token. Request URLs carry it (`/bot<token>/sendPhoto`), and
//! an unreachable or misbehaving Bot API server can echo it back in errors; every log line and
//! every error message the binaries print passes through [`Redactor`].
use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// What the token is replaced with.
pub const REDACTED: &str = "<token>";

/// Replaces secrets in text written through it (standard error by default).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Hides `secrets` (empty ones are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Redactor {
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
        }
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn clean(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), REDACTED))
    }

    /// Logs to standard error through this redactor, at the level `RUST_LOG` asks (info by
    /// default).
    pub fn init_logging(&self) {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_writer(self.clone())
            .init();
    }
}

/// Standard error with the secrets taken out of each write (the formatter writes a whole event at
/// once, so a secret never straddles two writes).
pub struct RedactedStderr {
    redactor: Redactor,
}

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(self.redactor.clean(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Redactor {
    type Writer = RedactedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedStderr {
            redactor: self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_of_a_secret_is_hidden() {
        let r = Redactor::new(["123:abc".to_owned(), String::new()]);
        assert_eq!(
            r.clean("GET /bot123:abc/getMe failed; token 123:abc"),
            "GET /bot<token>/getMe failed; token <token>"
        );
        assert_eq!(r.clean("nothing here"), "nothing here");
    }
}
