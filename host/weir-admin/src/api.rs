//! The `/v1` endpoints and the health checks: handlers, the shapes they
//! answer with, and the OpenAPI document generated from both
//! (`GET /v1/openapi.json`, [`ApiDoc`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value as Json;
use subtle::ConstantTimeEq;
use tracing::info;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use weir_connect::Phase;
use weir_pipeline::Stats;
use weir_pipeline::config::Tokens;
use weir_pipeline::reload::Command;
use weir_pipeline::stats::lock;

use crate::anomaly;

/// What the API serves.
#[derive(Clone)]
pub(crate) struct Api {
    pub pipeline: String,
    pub state_dir: PathBuf,
    pub stats: Arc<Stats>,
    pub tokens: Tokens,
    pub metrics: Arc<prometheus_client::registry::Registry>,
    pub started: Instant,
    pub stages: Arc<Json>,
    pub raised: Arc<anomaly::Raised>,
}

/// The admin API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Weir admin API",
        description = "Health, status, plugin reload and promotion, pause and resume, and dead letters of one \
                       running pipeline (docs/operations.md). Prometheus metrics are at \
                       `/metrics`, outside this document's JSON API."
    ),
    paths(health, ready, status, reload, promote, pause, resume, dead_letters, openapi),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The bearer-token scheme every `/v1` endpoint uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Read,
    Admin,
}

/// An error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and what to do about it.
    pub error: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// True while the source reads (snapshot or streaming).
    pub ready: bool,
    /// `starting`, `snapshot`, `streaming` or `stopped`.
    pub phase: &'static str,
}

/// The pipeline's state, positions, counters, plugins and sinks.
#[derive(Serialize, ToSchema)]
pub struct Status {
    pub pipeline: String,
    /// `starting`, `snapshot`, `streaming` or `stopped`.
    pub phase: &'static str,
    /// The last source position every sink made durable.
    pub acknowledged: Option<String>,
    /// How far the server's log is ahead of `acknowledged`, in bytes.
    pub lag_bytes: Option<u64>,
    /// Now minus the source commit time of the latest durable change.
    pub lag_seconds: Option<f64>,
    pub snapshot: Option<SnapshotStatus>,
    pub events_in: u64,
    pub events_out: u64,
    /// Approximate in-memory bytes of the events in and out.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dead_letters: u64,
    pub checkpoints: u64,
    /// Seconds since the last checkpoint.
    pub checkpoint_age_seconds: Option<f64>,
    /// Paused by the admin API: nothing is taken from the source, whose
    /// confirmed position stays (the server keeps the changes).
    pub paused: bool,
    pub uptime_seconds: u64,
    /// The pipeline's stages for drawing: source, plugins, router, sinks.
    #[schema(value_type = Object)]
    pub stages: Json,
    pub plugins: Vec<PluginStatus>,
    /// New plugin versions swapped in since the start.
    pub reloads: u64,
    /// Plugin versions rolled back since the start.
    pub rollbacks: u64,
    /// The signals the anomaly detector finds abnormal now.
    pub anomalies: Vec<&'static str>,
    pub sinks: Vec<SinkStatus>,
    /// Restarts from the last checkpoint after transient failures.
    pub restarts: u64,
    /// The failure behind the last restart.
    pub last_error: Option<LastError>,
}

#[derive(Serialize, ToSchema)]
pub struct SnapshotStatus {
    pub tables_done: usize,
    pub tables_total: usize,
    pub rows: u64,
    /// The server's row estimate for every table, where it has them all.
    pub estimated_rows: Option<u64>,
    pub tables: Vec<TableStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct TableStatus {
    pub table: String,
    pub rows: u64,
    pub estimated_rows: Option<u64>,
    pub done: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PluginStatus {
    pub name: String,
    /// `transformer` or `router`.
    pub role: &'static str,
    /// `name@version+digest` (bundle) or `file+digest`.
    pub version: String,
    /// The key that signed the bundle, if signed.
    pub signer: Option<String>,
    /// A new version on probation (rolled back if too many events fail).
    pub probation: bool,
    /// The candidate version running in this one's shadow, if any.
    pub shadow: Option<ShadowStatus>,
}

/// A shadow candidate and how its output differed from the live
/// version's (docs/plugins.md, "Shadow deploys").
#[derive(Serialize, ToSchema)]
pub struct ShadowStatus {
    /// `name@version+digest` (bundle) or `file+digest`.
    pub version: String,
    /// Input events compared.
    pub compared: u64,
    /// Input events where the outputs differed.
    pub differed: u64,
    /// Differences by outcome: `dropped`, `kept`, `changed`, `failed`,
    /// `passed`.
    pub outcomes: std::collections::BTreeMap<String, u64>,
    /// Changed events by field (`after.email`).
    pub fields: std::collections::BTreeMap<String, u64>,
}

#[derive(Serialize, ToSchema)]
pub struct SinkStatus {
    pub name: String,
    /// The position the sink reported at the last checkpoint.
    #[schema(value_type = Option<Object>)]
    pub position: Option<Json>,
    pub events: u64,
    /// Failed writes and flushes, every kind.
    pub errors: u64,
    /// Restarts its transient failures caused.
    pub retries: u64,
}

#[derive(Serialize, ToSchema)]
pub struct LastError {
    /// RFC 3339, UTC.
    pub at: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct Reloaded {
    /// The reloader's answer, a line per plugin: unchanged, swapping to a
    /// new version, refused or failed to load (the running version stays).
    pub result: String,
}

#[derive(Serialize, ToSchema)]
pub struct Paused {
    pub paused: bool,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetters {
    /// Dead letters in the file.
    pub total: usize,
    /// The last ones (at most 100), newest last, as written to
    /// `dead-letters.jsonl`.
    #[schema(value_type = Vec<Object>)]
    pub dead_letters: Vec<Json>,
}

/// The process answers.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Response {
    axum::Json(Health { status: "ok" }).into_response()
}

/// The source is reading (snapshot or streaming).
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, body = Ready, description = "Reading"),
    (status = 503, body = Ready, description = "Starting or stopped"),
))]
pub(crate) async fn ready(State(api): State<Api>) -> Response {
    let phase = api.stats.source.borrow().phase;
    let ready = matches!(phase, Phase::Snapshot | Phase::Streaming);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(Ready {
            ready,
            phase: phase.label(),
        }),
    )
        .into_response()
}

/// The pipeline's state (read or admin token).
#[utoipa::path(get, path = "/v1/status", security(("bearer" = [])), responses(
    (status = 200, body = Status),
    (status = 401, body = ErrorBody, description = "No token, or not a valid one"),
))]
pub(crate) async fn status(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&api.tokens, &headers, Scope::Read) {
        return denied;
    }
    axum::Json(status_of(&api)).into_response()
}

fn status_of(api: &Api) -> Status {
    let s = &api.stats;
    let source = s.source.borrow().clone();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let now = weir_pipeline::latency::now_us();
    Status {
        pipeline: api.pipeline.clone(),
        phase: source.phase.label(),
        acknowledged: source.acknowledged,
        lag_bytes: source.behind_bytes,
        lag_seconds: s.latency.lag_seconds(now),
        snapshot: source.snapshot.map(|p| SnapshotStatus {
            tables_done: p.tables_done,
            tables_total: p.tables_total,
            rows: p.rows,
            estimated_rows: p.estimated_rows(),
            tables: p
                .tables
                .into_iter()
                .map(|t| TableStatus {
                    table: t.table,
                    rows: t.rows,
                    estimated_rows: t.estimated_rows,
                    done: t.done,
                })
                .collect(),
        }),
        events_in: load(&s.events_in),
        events_out: load(&s.events_out),
        bytes_in: load(&s.bytes_in),
        bytes_out: load(&s.bytes_out),
        dead_letters: load(&s.dead_letters),
        checkpoints: load(&s.checkpoints),
        checkpoint_age_seconds: s.checkpoint_age_seconds(now),
        paused: s.paused.load(Ordering::Relaxed),
        uptime_seconds: api.started.elapsed().as_secs(),
        stages: (*api.stages).clone(),
        plugins: lock(&s.plugins)
            .iter()
            .map(|p| PluginStatus {
                name: p.name.clone(),
                role: p.role,
                version: p.version.clone(),
                signer: p.signer.clone(),
                probation: p.probation,
                shadow: p.shadow.as_ref().map(|c| ShadowStatus {
                    version: c.version.clone(),
                    compared: c.counts.compared,
                    differed: c.counts.differed(),
                    outcomes: (c.counts.outcomes.iter())
                        .map(|(k, v)| ((*k).to_owned(), *v))
                        .collect(),
                    fields: c.counts.fields.clone(),
                }),
            })
            .collect(),
        reloads: load(&s.reloads),
        rollbacks: load(&s.rollbacks),
        anomalies: anomaly::Signal::ALL
            .iter()
            .filter(|sig| api.raised.get(**sig))
            .map(|sig| sig.label())
            .collect(),
        sinks: lock(&s.sinks)
            .iter()
            .map(|(name, m)| SinkStatus {
                name: name.clone(),
                position: lock(&m.position).clone(),
                events: load(&m.events),
                errors: m.errors.iter().map(load).sum(),
                retries: load(&m.retries),
            })
            .collect(),
        restarts: load(&s.restarts),
        last_error: lock(&s.last_error).as_ref().map(|(at, message)| LastError {
            at: weir_core::envelope::format_utc_micros(*at),
            message: message.clone(),
        }),
    }
}

/// Loads changed plugins now, as `weir plugin reload` does (admin token).
#[utoipa::path(post, path = "/v1/reload", security(("bearer" = [])), responses(
    (status = 200, body = Reloaded, description = "Every changed plugin checked; new versions swap in at the next transaction boundary"),
    (status = 409, body = Reloaded, description = "A new version was refused or failed to load; the running one stays"),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "A read-only token"),
    (status = 503, body = ErrorBody, description = "The reloader does not answer"),
))]
pub(crate) async fn reload(State(api): State<Api>, headers: HeaderMap) -> Response {
    ask_reloader(api, &headers, Command::Reload).await
}

/// Swaps a transformer's shadow candidate in at the next transaction
/// boundary, on probation, as `weir plugin promote` does (admin token).
#[utoipa::path(post, path = "/v1/plugins/{name}/promote", security(("bearer" = [])),
    params(("name" = String, Path, description = "The transformer's name")),
    responses(
    (status = 200, body = Reloaded, description = "The candidate is checked and compiled; it swaps in at the next transaction boundary"),
    (status = 409, body = Reloaded, description = "No such transformer, no shadow candidate, or the candidate was refused; the running version stays"),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "A read-only token"),
    (status = 503, body = ErrorBody, description = "The reloader does not answer"),
))]
pub(crate) async fn promote(
    State(api): State<Api>,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    ask_reloader(api, &headers, Command::Promote(name)).await
}

/// Sends `command` to the pipeline's reloader (admin token); 409 when it
/// refused something.
async fn ask_reloader(api: Api, headers: &HeaderMap, command: Command) -> Response {
    if let Some(denied) = denied(&api.tokens, headers, Scope::Admin) {
        return denied;
    }
    let state_dir = api.state_dir.clone();
    let answer =
        tokio::task::spawn_blocking(move || weir_pipeline::reload::request(&state_dir, &command))
            .await;
    match answer {
        Ok(Ok(result)) => {
            let code = if weir_pipeline::reload::reload_failed(&result) {
                StatusCode::CONFLICT
            } else {
                StatusCode::OK
            };
            (code, axum::Json(Reloaded { result })).into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the pipeline's reloader does not answer: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Stops taking changes from the source (admin token).
#[utoipa::path(post, path = "/v1/pause", security(("bearer" = [])), responses(
    (status = 200, body = Paused), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
pub(crate) async fn pause(State(api): State<Api>, headers: HeaderMap) -> Response {
    set_paused(&api, &headers, true)
}

/// Takes changes from the source again (admin token).
#[utoipa::path(post, path = "/v1/resume", security(("bearer" = [])), responses(
    (status = 200, body = Paused), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
pub(crate) async fn resume(State(api): State<Api>, headers: HeaderMap) -> Response {
    set_paused(&api, &headers, false)
}

/// Pauses or resumes taking changes from the source.
fn set_paused(api: &Api, headers: &HeaderMap, paused: bool) -> Response {
    if let Some(denied) = denied(&api.tokens, headers, Scope::Admin) {
        return denied;
    }
    let was = api.stats.paused.swap(paused, Ordering::Relaxed);
    if was != paused {
        if paused {
            info!(
                "Paused by the admin API: no changes are taken from the source until resumed; the source's confirmed position stays where it is."
            );
        } else {
            info!("Resumed by the admin API.");
        }
    }
    axum::Json(Paused { paused }).into_response()
}

/// The last dead letters (read or admin token).
#[utoipa::path(get, path = "/v1/dead-letters", security(("bearer" = [])), responses(
    (status = 200, body = DeadLetters), (status = 401, body = ErrorBody),
))]
pub(crate) async fn dead_letters(State(api): State<Api>, headers: HeaderMap) -> Response {
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
    let dead_letters = lines[lines.len().saturating_sub(MOST)..]
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    axum::Json(DeadLetters {
        total: lines.len(),
        dead_letters,
    })
    .into_response()
}

/// This document (read or admin token).
#[utoipa::path(get, path = "/v1/openapi.json", security(("bearer" = [])), responses(
    (status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"),
    (status = 401, body = ErrorBody),
))]
pub(crate) async fn openapi(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&api.tokens, &headers, Scope::Read) {
        return denied;
    }
    axum::Json(ApiDoc::openapi()).into_response()
}

pub(crate) fn error(code: StatusCode, message: &str) -> Response {
    (
        code,
        axum::Json(ErrorBody {
            error: message.to_owned(),
        }),
    )
        .into_response()
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
