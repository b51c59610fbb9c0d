//! The admin API of `weir run` (`[admin]` in the pipeline config,
//! `docs/operations.md`), on one address, over HTTP or, with
//! `[admin.tls]`, HTTPS (rustls):
//!
//! - `GET /`: the status page (`page/index.html`; no token to load it, it
//!   asks for one and reads `/v1` with it);
//! - `GET /health`: the process answers (no token);
//! - `GET /ready`: the source is reading (snapshot or streaming), else
//!   503 (no token);
//! - `GET /metrics`: Prometheus metrics in the OpenMetrics text format (no
//!   token, as scrapers expect; [`metrics`]);
//! - `GET /v1/status` (read or admin token): the pipeline's state,
//!   positions, counters, plugins and sinks;
//! - `POST /v1/reload` (admin token): reloads changed plugins, as
//!   `weir plugin reload` does;
//! - `POST /v1/plugins/{name}/promote` (admin token): swaps a transformer's
//!   shadow candidate in, as `weir plugin promote` does;
//! - `POST /v1/pause`, `POST /v1/resume` (admin token): stops and starts
//!   taking changes from the source;
//! - `GET /v1/dead-letters` (read or admin token): the last dead letters;
//! - `GET /v1/openapi.json` (read or admin token): the OpenAPI document,
//!   generated from the handlers and their answer types ([`api::ApiDoc`]).
//!
//! Tokens come as `Authorization: Bearer <token>` and are compared in
//! constant time; none or an unknown one is 401, a read token on an
//! admin endpoint 403. Tokens are never logged.

pub mod anomaly;
pub mod api;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::watch;
use tracing::info;
use weir_pipeline::Stats;
use weir_pipeline::config::{TlsConfig, Tokens};

use crate::api::Api;

/// Where the API listens and what it watches.
#[derive(Debug, Clone)]
pub struct Setup {
    pub address: SocketAddr,
    pub tokens: Tokens,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsConfig>,
    pub pipeline: String,
    pub state_dir: PathBuf,
    /// How often the anomaly detector samples.
    pub anomaly_interval: Duration,
    /// The pipeline's stages (source, plugins, router, sinks) for the
    /// status page.
    pub stages: serde_json::Value,
}

/// Listens on the setup's address (an error when it cannot, or when the
/// TLS certificate or key does not read) and serves the API, and runs the
/// anomaly detector, until `shutdown` becomes true.
pub async fn start(
    setup: Setup,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let tls = match &setup.tls {
        Some(tls) => Some(rustls_config(tls)?),
        None => None,
    };
    let listener = std::net::TcpListener::bind(setup.address)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let raised = Arc::new(anomaly::Raised::default());
    tokio::spawn(anomaly::watch(
        Arc::clone(&stats),
        Arc::clone(&raised),
        setup.anomaly_interval,
        shutdown.clone(),
    ));
    let pipeline = setup.pipeline.as_str();
    let api = Api {
        pipeline: pipeline.to_owned(),
        state_dir: setup.state_dir,
        metrics: Arc::new(metrics::registry(
            pipeline,
            Arc::clone(&stats),
            Arc::clone(&raised),
        )),
        stats,
        tokens: setup.tokens,
        started: Instant::now(),
        stages: Arc::new(setup.stages),
        raised,
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .route("/metrics", get(metrics_text))
        .route("/v1/status", get(api::status))
        .route("/v1/reload", post(api::reload))
        .route("/v1/plugins/{name}/promote", post(api::promote))
        .route("/v1/pause", post(api::pause))
        .route("/v1/resume", post(api::resume))
        .route("/v1/dead-letters", get(api::dead_letters))
        .route("/v1/openapi.json", get(api::openapi))
        .with_state(api);
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(address = %bound, scheme, "Admin API listening.");
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|s| *s).await;
        stopping.graceful_shutdown(Some(Duration::from_secs(1)));
    });
    let service = app.into_make_service();
    Ok(match tls {
        Some(tls) => {
            let server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle);
            tokio::spawn(async move {
                let _ = server.serve(service).await;
            })
        }
        None => {
            let server = axum_server::from_tcp(listener)?.handle(handle);
            tokio::spawn(async move {
                let _ = server.serve(service).await;
            })
        }
    })
}

/// The server's TLS setup from PEM files: rustls with the *ring* provider,
/// HTTP/1.1.
fn rustls_config(tls: &TlsConfig) -> std::io::Result<axum_server::tls_rustls::RustlsConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("[admin.tls] {}: {e}", what.display()),
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| invalid(&tls.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(&tls.cert, &e))?;
    if certs.is_empty() {
        return Err(invalid(&tls.cert, &"holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| invalid(&tls.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&tls.cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&tls.key, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
}

/// The status page: one HTML file with its styles and script inline (no
/// CDN, no fonts), reading `/v1` with the token the user enters.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self'",
            ),
        ],
        include_str!("page/index.html"),
    )
        .into_response()
}

async fn metrics_text(State(api): State<Api>) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &api.metrics).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
