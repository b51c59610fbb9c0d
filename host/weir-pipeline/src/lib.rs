//! Weir pipelines: source -> plugin chain -> router -> sinks.
//!
//! - [`config`]: the pipeline's TOML file, validated with field paths.
//! - [`runner`]: the stages, their bounded channels, checkpoints and acks.
//! - [`sinks`]: the file and stdout sinks.
//! - [`checkpoint`]: the embedded SQLite checkpoint store.
//! - [`reload`]: hot reload — watching, swapping at transaction boundaries, probation.
//! - [`admission`]: the trust policy applied to each plugin before it loads.
//! - [`dead_letter`]: events plugins failed on.
//! - [`router`]: the built-in template router.

pub mod admission;
pub mod checkpoint;
pub mod config;
pub mod dead_letter;
pub mod reload;
pub mod router;
pub mod runner;
pub mod sinks;

pub use config::PipelineConfig;
pub use runner::{PipelineError, Stats, run};
