//! The PostgreSQL source against a real, throwaway PostgreSQL server.

mod sink;
mod source;

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use weir_connect::SourceChannels;
use weir_core::{ChangeBatch, ChangeEvent};
use weir_postgres::{ConnectParams, PgError, SourceSettings};
use weir_throwaway::ThrowawayPostgres;

/// A server with a fresh database `db` (created by `setup` SQL).
pub fn server(settings: &[(&str, &str)], setup: &str) -> ThrowawayPostgres {
    let server = ThrowawayPostgres::start(settings).unwrap_or_else(|e| panic!("{e}"));
    server.psql("postgres", "CREATE DATABASE db").unwrap();
    if !setup.is_empty() {
        server.psql("db", setup).unwrap();
    }
    server
}

pub fn config(server: &ThrowawayPostgres) -> SourceSettings {
    SourceSettings {
        connect: ConnectParams {
            host: "127.0.0.1".into(),
            port: server.port,
            user: "postgres".into(),
            password: None,
            database: "db".into(),
            application_name: "weir test".into(),
        },
        publication: "weir_test".into(),
        slot: "weir_test".into(),
        tables: Vec::new(),
        snapshot: false,
        snapshot_chunk_rows: 1000,
        snapshot_parallelism: 2,
        streaming: true,
        skip_origins: vec!["weir_*".into()],
        max_batch_events: 1000,
        max_batch_bytes: 4 << 20,
        status_interval: Duration::from_secs(1),
    }
}

/// A running source whose batches are collected and acknowledged at once,
/// as a pipeline whose sinks are instantly durable would.
pub struct Running {
    pub batches: mpsc::Receiver<ChangeBatch>,
    pub acks: mpsc::UnboundedSender<Json>,
    pub stop: watch::Sender<bool>,
    pub task: JoinHandle<Result<(), PgError>>,
    /// Resume states of the batches collected so far, in order.
    pub resumes: Vec<Json>,
    /// Whether to acknowledge batches (as durable sinks would).
    pub ack: bool,
}

pub fn start(config: SourceSettings, resume: Json) -> Running {
    let (stop, shutdown) = watch::channel(false);
    let (channels, ends) = SourceChannels::new(4, shutdown, watch::channel(Default::default()).0);
    let (batches, acks) = (ends.batches, ends.acks);
    let task =
        tokio::spawn(async move { weir_postgres::source::run(&config, &resume, channels).await });
    Running {
        batches,
        acks,
        stop,
        task,
        resumes: Vec::new(),
        ack: true,
    }
}

impl Running {
    /// Collects events until `n` arrived (acknowledging every batch), or
    /// fails after `timeout` with what did arrive.
    pub async fn collect(&mut self, n: usize, timeout: Duration) -> Vec<ChangeEvent> {
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        while events.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.batches.recv()).await {
                Ok(Some(batch)) => {
                    events.extend(batch.events);
                    if let Some(resume) = batch.resume {
                        if self.ack {
                            let _ = self.acks.send(resume.clone());
                        }
                        self.resumes.push(resume);
                    }
                }
                Ok(None) => panic!(
                    "the source stopped after {} of {n} events: {:?}",
                    events.len(),
                    (&mut self.task).await
                ),
                Err(_) => panic!(
                    "only {} of {n} events within {timeout:?}: {events:#?}",
                    events.len()
                ),
            }
        }
        events
    }

    /// Stops the source cleanly, acknowledging what is left.
    pub async fn stop(mut self) -> Vec<ChangeEvent> {
        let _ = self.stop.send(true);
        let mut rest = Vec::new();
        while let Some(batch) = self.batches.recv().await {
            rest.extend(batch.events);
            if let Some(resume) = batch.resume.filter(|_| self.ack) {
                let _ = self.acks.send(resume);
            }
        }
        drop(self.acks);
        self.task.await.unwrap().unwrap();
        rest
    }
}

/// Runs SQL on the database (through psql, so tests need no client setup).
pub fn sql(server: &ThrowawayPostgres, sql: &str) -> String {
    server.psql("db", sql).unwrap_or_else(|e| panic!("{e}"))
}
