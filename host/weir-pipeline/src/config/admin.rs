//! `[admin]`: the HTTP admin API and metrics endpoint (`docs/operations.md`).
//! Off unless the section is present.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use weir_connect::Checker;

/// `[admin]`: where the admin API listens and who may use it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address and port to listen on, e.g. `127.0.0.1:9187`.
    pub address: String,
    /// Bearer token for the read-only endpoints under `/v1`; write
    /// `"${WEIR_READ_TOKEN}"` to take it from the environment. At least 16
    /// characters. Never logged.
    #[serde(default)]
    pub read_token: Option<SecretString>,
    /// A file holding the read-only token (its first line), instead of
    /// `read_token`.
    #[serde(default)]
    pub read_token_file: Option<PathBuf>,
    /// Bearer token for every endpoint under `/v1`, including the ones that
    /// change something (reload). Same rules as `read_token`.
    #[serde(default)]
    pub admin_token: Option<SecretString>,
    /// A file holding the admin token, instead of `admin_token`.
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// How often the anomaly detector samples throughput, lag and failure
    /// rate, in milliseconds (at least 100).
    #[serde(default = "default_anomaly_interval_ms")]
    pub anomaly_interval_ms: u64,
    /// `[admin.tls]`: serve HTTPS instead of HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `[admin.tls]`: the certificate chain and private key the admin API
/// serves HTTPS with (PEM files; relative to the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

const fn default_anomaly_interval_ms() -> u64 {
    10_000
}

/// Fewest characters in a token.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The tokens, read.
#[derive(Clone, Default)]
pub struct Tokens {
    pub read: Option<SecretString>,
    pub admin: Option<SecretString>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("read", &self.read.as_ref().map(|_| "[redacted]"))
            .field("admin", &self.admin.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl AdminConfig {
    /// The address to listen on (checked when the config loaded).
    pub fn socket_addr(&self) -> SocketAddr {
        self.address.parse().expect("validated")
    }

    pub(super) fn resolve_paths(&mut self, base_dir: &Path) {
        let (cert, key) = match self.tls.as_mut() {
            Some(tls) => (Some(&mut tls.cert), Some(&mut tls.key)),
            None => (None, None),
        };
        for p in [
            self.read_token_file.as_mut(),
            self.admin_token_file.as_mut(),
            cert,
            key,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        }
    }

    /// Reads the tokens (from the config or their files).
    pub fn tokens(&self) -> Result<Tokens, String> {
        let read = token(&self.read_token, &self.read_token_file, "read_token_file")?;
        let admin = token(
            &self.admin_token,
            &self.admin_token_file,
            "admin_token_file",
        )?;
        Ok(Tokens { read, admin })
    }

    pub(super) fn validate(&self, c: &mut Checker) {
        if self.address.parse::<SocketAddr>().is_err() {
            c.err(
                "address",
                format!(
                    "`{}` is not an address and port such as `127.0.0.1:9187`",
                    self.address
                ),
            );
        }
        if let Some(tls) = &self.tls {
            for (field, path) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if !path.is_file() {
                    c.err(
                        field,
                        format!("{} is not a readable file (PEM)", path.display()),
                    );
                }
            }
        }
        if self.anomaly_interval_ms < 100 {
            c.err("anomaly_interval_ms", "must be 100 or more");
        }
        for (field, given, file) in [
            ("read_token", &self.read_token, &self.read_token_file),
            ("admin_token", &self.admin_token, &self.admin_token_file),
        ] {
            if given.is_some() && file.is_some() {
                c.err(field, format!("set `{field}` or `{field}_file`, not both"));
            }
        }
        match self.tokens() {
            Err(e) => c.err("", e),
            Ok(t) if t.read.is_none() && t.admin.is_none() => c.err(
                "",
                "set `admin_token` (and `read_token` for read-only access): the `/v1` API never \
                 runs without a token",
            ),
            Ok(t) => {
                for (field, token) in [("read_token", &t.read), ("admin_token", &t.admin)] {
                    if token
                        .as_ref()
                        .is_some_and(|s| s.expose_secret().chars().count() < MIN_TOKEN_CHARS)
                    {
                        c.err(
                            field,
                            format!(
                                "is shorter than {MIN_TOKEN_CHARS} characters; use a random one, \
                                 e.g. from `openssl rand -hex 24`"
                            ),
                        );
                    }
                }
                if let (Some(r), Some(a)) = (&t.read, &t.admin)
                    && r.expose_secret() == a.expose_secret()
                {
                    c.err(
                        "read_token",
                        "is the same as `admin_token`; give read-only access its own token",
                    );
                }
            }
        }
    }
}

fn token(
    given: &Option<SecretString>,
    file: &Option<PathBuf>,
    field: &str,
) -> Result<Option<SecretString>, String> {
    match (given, file) {
        (Some(t), _) => Ok(Some(t.clone())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|text| {
                Some(SecretString::from(
                    text.lines().next().unwrap_or_default().trim().to_owned(),
                ))
            })
            .map_err(|e| format!("admin.{field}: cannot read {}: {e}", path.display())),
        (None, None) => Ok(None),
    }
}
