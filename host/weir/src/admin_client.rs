//! A client of a running pipeline's admin API (`[admin]` in its config),
//! for `weir status` and `weir plugin reload`: the address (a wildcard
//! address is asked on the loopback), the scheme (HTTPS with `[admin.tls]`,
//! trusting the certificates in its `cert` file), and the token.

use std::path::Path;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value as Json;
use weir_pipeline::config::AdminConfig;

pub struct AdminClient {
    agent: ureq::Agent,
    base: String,
    token: SecretString,
    /// The config file, for messages.
    config: String,
}

impl AdminClient {
    /// A client of the API `admin` describes; with the admin token when
    /// `admin_scope`, else the read token (or the admin one if only it is
    /// set).
    pub fn new(admin: &AdminConfig, config: &Path, admin_scope: bool) -> anyhow::Result<Self> {
        let tokens = admin.tokens().map_err(|e| anyhow::anyhow!(e))?;
        let token = if admin_scope {
            tokens.admin.with_context(|| {
                format!(
                    "{} sets no `admin_token`: only the admin token may do this",
                    config.display()
                )
            })?
        } else {
            tokens
                .read
                .or(tokens.admin)
                .expect("validated: the section has a token")
        };
        let mut address = admin.socket_addr();
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let mut builder = ureq::Agent::config_builder().http_status_as_error(false);
        let scheme = match &admin.tls {
            Some(tls) => {
                let pem = std::fs::read(&tls.cert)
                    .with_context(|| format!("cannot read {}", tls.cert.display()))?;
                let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                anyhow::ensure!(
                    !certs.is_empty(),
                    "{} holds no PEM certificate",
                    tls.cert.display()
                );
                builder = builder.tls_config(
                    ureq::tls::TlsConfig::builder()
                        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                        .build(),
                );
                "https"
            }
            None => "http",
        };
        Ok(AdminClient {
            agent: builder.build().into(),
            base: format!("{scheme}://{address}"),
            token,
            config: config.display().to_string(),
        })
    }

    /// `GET path`; the JSON answer of a 2xx reply.
    pub fn get(&self, path: &str) -> anyhow::Result<Json> {
        self.answer(self.authorized(self.agent.get(self.url(path))).call())
    }

    /// `POST path` (no body); the JSON answer of a 2xx or 409 reply.
    pub fn post(&self, path: &str) -> anyhow::Result<Json> {
        self.answer(
            self.authorized(self.agent.post(self.url(path)))
                .send_empty(),
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `request` with the bearer token.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        request.header(
            "Authorization",
            &format!("Bearer {}", self.token.expose_secret()),
        )
    }

    fn answer(
        &self,
        reply: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Json> {
        let mut reply = reply.with_context(|| {
            format!(
                "no admin API answers at {} ; is `weir run --config {}` running?",
                self.base, self.config
            )
        })?;
        let code = reply.status().as_u16();
        let body: Json =
            serde_json::from_str(&reply.body_mut().read_to_string()?).unwrap_or(Json::Null);
        match code {
            200..=299 | 409 => Ok(body),
            401 | 403 => anyhow::bail!(
                "the admin API at {} refused the token in {} (HTTP {code}: {}); is it the \
                 running pipeline's?",
                self.base,
                self.config,
                body["error"].as_str().unwrap_or("-")
            ),
            _ => anyhow::bail!(
                "the admin API at {} answered HTTP {code}: {}",
                self.base,
                body["error"].as_str().unwrap_or("-")
            ),
        }
    }
}
