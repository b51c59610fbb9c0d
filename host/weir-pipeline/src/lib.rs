//! Weir pipelines: source -> plugin chain -> router -> sinks.
//!
//! - [`config`]: the pipeline's TOML file, validated with field paths.
//! - [`runner`]: the stages, their bounded channels and restarts.
//! - [`writer`]: delivery to the sinks in commit order, dead letters,
//!   group commit, checkpoints and acks.
//! - [`sinks`]: the file and stdout sinks, and the destination globs that
//!   choose what each takes.
//! - [`checkpoint`]: the embedded SQLite checkpoint store.
//! - [`processor`]: the plugin stage (chain, router, reloading), shared by
//!   pipelines and workers.
//! - `stage`: the plugin stage of a pipeline on `plugin_workers` workers,
//!   its results passed on in order.
//! - [`reload`]: hot reload — watching, swapping at transaction boundaries, probation.
//! - [`shadow`]: shadow deploys — a candidate version compared with the
//!   live one on the same events, never delivered.
//! - [`admission`]: the trust policy applied to each plugin before it loads.
//! - [`dead_letter`]: the dead-letter file, a sink for events a plugin or a
//!   sink failed on.
//! - [`latency`]: end-to-end latency and lag, recorded at checkpoints.
//! - [`stats`]: the counters a running pipeline keeps for metrics and status.
//! - [`router`]: the built-in template router.
//! - [`resolver`]: the resolver plugin of an active-active SQL sink.
//! - [`worker`]: `weir worker`, the plugin stage scaled out on Kafka
//!   consumer groups.

pub mod admission;
pub mod checkpoint;
pub mod config;
pub mod dead_letter;
pub mod latency;
pub mod processor;
pub mod reload;
pub mod resolver;
pub mod router;
pub mod runner;
pub mod shadow;
pub mod sinks;
mod stage;
pub mod stats;
pub mod worker;
pub mod writer;

pub use config::{PipelineConfig, WorkerConfig};
pub use runner::{PipelineError, Stats, run};
