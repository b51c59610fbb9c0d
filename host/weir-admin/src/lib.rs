//! The admin API of `weir run` (`[admin]` in the pipeline config,
//! `docs/operations.md`), on one address:
//!
//! - `GET /`: the status page (`page/index.html`; no token to load it, it
//!   asks for one and reads `/v1` with it);
//! - `GET /health`: the process answers (no token);
//! - `GET /ready`: the source is reading (snapshot or streaming), else
//!   503 (no token);
//! - `GET /metrics`: Prometheus metrics in the OpenMetrics text format (no
//!   token, as scrapers expect; [`metrics`]);
//! - `GET /v1/status` (read or admin token): the pipeline's state,
//!   position and counters;
//! - `POST /v1/reload` (admin token): reloads changed plugins, as
//!   `weir plugin reload` does;
//! - `POST /v1/pause`, `POST /v1/resume` (admin token): stops and starts
//!   taking changes from the source;
//! - `GET /v1/dead-letters` (read or admin token): the last dead letters.
//!
//! Tokens come as `Authorization: Bearer <token>` and are compared in
//! constant time; none or an unknown one is 401, a read token on an
//! admin endpoint 403. Tokens are never logged.

pub mod anomaly;
pub mod metrics;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tracing::info;
use weir_connect::Phase;
use weir_pipeline::Stats;
use weir_pipeline::config::Tokens;

/// What the API serves.
#[derive(Clone)]
struct Api {
    pipeline: String,
    state_dir: PathBuf,
    stats: Arc<Stats>,
    tokens: Tokens,
    metrics: Arc<prometheus_client::registry::Registry>,
    started: Instant,
    stages: Arc<serde_json::Value>,
    raised: Arc<anomaly::Raised>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Read,
    Admin,
}

/// Where the API listens and what it watches.
#[derive(Debug, Clone)]
pub struct Setup {
    pub address: SocketAddr,
    pub tokens: Tokens,
    pub pipeline: String,
    pub state_dir: PathBuf,
    /// How often the anomaly detector samples.
    pub anomaly_interval: Duration,
    /// The pipeline's stages (source, plugins, router, sinks) for the
    /// status page.
    pub stages: serde_json::Value,
}

/// Listens on the setup's address (an error when it cannot) and serves the
/// API, and runs the anomaly detector, until `shutdown` becomes true.
pub async fn start(
    setup: Setup,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(setup.address).await?;
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
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/v1/status", get(status))
        .route("/v1/reload", post(reload))
        .route("/v1/pause", post(pause))
        .route("/v1/resume", post(resume))
        .route("/v1/dead-letters", get(dead_letters))
        .with_state(api);
    info!(address = %bound, "Admin API listening.");
    Ok(tokio::spawn(async move {
        let stopped = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await;
    }))
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

async fn health() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn ready(State(api): State<Api>) -> Response {
    let phase = api.stats.source.borrow().phase;
    let ready = matches!(phase, Phase::Snapshot | Phase::Streaming);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(json!({ "ready": ready, "phase": phase.label() })),
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

async fn status(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&api.tokens, &headers, Scope::Read) {
        return denied;
    }
    let s = &api.stats;
    let source = s.source.borrow().clone();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    axum::Json(json!({
        "pipeline": api.pipeline,
        "phase": source.phase.label(),
        "acknowledged": source.acknowledged,
        "lag_bytes": source.behind_bytes,
        "snapshot": source.snapshot.map(|p| json!({
            "tables_done": p.tables_done,
            "tables_total": p.tables_total,
            "rows": p.rows,
        })),
        "events_in": load(&s.events_in),
        "events_out": load(&s.events_out),
        "dead_letters": load(&s.dead_letters),
        "checkpoints": load(&s.checkpoints),
        "paused": s.paused.load(std::sync::atomic::Ordering::Relaxed),
        "lag_seconds": s.latency.lag_seconds(weir_pipeline::latency::now_us()),
        "uptime_seconds": api.started.elapsed().as_secs(),
        "stages": *api.stages,
        "plugins": s.plugins.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|p| json!({
            "name": p.name,
            "role": p.role,
            "version": p.version,
            "probation": p.probation,
        })).collect::<Vec<_>>(),
        "rollbacks": load(&s.rollbacks),
        "anomalies": anomaly::Signal::ALL
            .iter()
            .filter(|sig| api.raised.get(**sig))
            .map(|sig| sig.label())
            .collect::<Vec<_>>(),
    }))
    .into_response()
}

/// Asks the pipeline's reloader, over its admin socket, to load changed
/// plugins; answers with what it did.
async fn reload(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&api.tokens, &headers, Scope::Admin) {
        return denied;
    }
    let socket = weir_pipeline::reload::admin_socket(&api.state_dir);
    let answer = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let stream = std::os::unix::net::UnixStream::connect(&socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(130)))?;
        (&stream).write_all(b"reload\n")?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        Ok(line.trim().to_owned())
    })
    .await;
    match answer {
        Ok(Ok(answer)) if !answer.starts_with("error:") => {
            axum::Json(json!({ "result": answer })).into_response()
        }
        Ok(Ok(answer)) => error(StatusCode::CONFLICT, &answer),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the pipeline's reloader does not answer: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn pause(State(api): State<Api>, headers: HeaderMap) -> Response {
    set_paused(&api, &headers, true)
}

async fn resume(State(api): State<Api>, headers: HeaderMap) -> Response {
    set_paused(&api, &headers, false)
}

/// Pauses or resumes taking changes from the source.
fn set_paused(api: &Api, headers: &HeaderMap, paused: bool) -> Response {
    if let Some(denied) = denied(&api.tokens, headers, Scope::Admin) {
        return denied;
    }
    let was = api
        .stats
        .paused
        .swap(paused, std::sync::atomic::Ordering::Relaxed);
    if was != paused {
        if paused {
            info!(
                "Paused by the admin API: no changes are taken from the source until resumed; the source's confirmed position stays where it is."
            );
        } else {
            info!("Resumed by the admin API.");
        }
    }
    axum::Json(json!({ "paused": paused })).into_response()
}

/// The last dead letters (at most 100), newest last.
async fn dead_letters(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&api.tokens, &headers, Scope::Read) {
        return denied;
    }
    const MOST: usize = 100;
    let path = api
        .state_dir
        .join(weir_pipeline::dead_letter::DeadLetterFile::FILE);
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read {}: {e}", path.display()),
            );
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let letters: Vec<serde_json::Value> = lines[lines.len().saturating_sub(MOST)..]
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    axum::Json(json!({ "total": lines.len(), "dead_letters": letters })).into_response()
}

fn error(code: StatusCode, message: &str) -> Response {
    (code, axum::Json(json!({ "error": message }))).into_response()
}

/// Checks the request's bearer token against `needed`: the answer when
/// it falls short.
fn denied(tokens: &Tokens, headers: &HeaderMap, needed: Scope) -> Option<Response> {
    let unauthorized = |message: &str| {
        let mut r = error(StatusCode::UNAUTHORIZED, message);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        r
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Some(unauthorized(
            "this endpoint needs a token: send `Authorization: Bearer <token>`",
        ));
    };
    let matches = |token: &Option<SecretString>| {
        token
            .as_ref()
            .is_some_and(|t| bool::from(t.expose_secret().as_bytes().ct_eq(given.as_bytes())))
    };
    let scope = if matches(&tokens.admin) {
        Scope::Admin
    } else if matches(&tokens.read) {
        Scope::Read
    } else {
        return Some(unauthorized("the token is not valid"));
    };
    (scope < needed).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "the read-only token may not do this; use the admin token",
        )
    })
}
