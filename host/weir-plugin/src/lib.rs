//! Weir's plugin runtime: the wasmtime engine, loading and checking
//! components against the `weir:plugin` contract, per-plugin limits, and
//! fault isolation.
//!
//! A plugin never takes the host down. A trap, a timeout or a memory bomb
//! poisons only the instance that hit it: the instance is recycled from its
//! `InstancePre`, the batch is bisected until the offending event is found,
//! and that event comes back as an [`EventFailure`] carrying the event and
//! the reason, ready for a dead-letter queue. Every other event of the
//! batch is processed normally.
//!
//! Calls are synchronous: plugins compute and the host imports do no I/O,
//! so async would only add cost (`docs/decisions/0004-synchronous-plugin-calls.md`).
//! The pipeline runs plugin chains on blocking threads.

mod bindings;
pub mod bundle;
mod convert;
mod engine;
mod error;
mod host;
pub mod index;
mod inspect;
mod limits;
pub mod local;
mod plugin;

pub use engine::{EngineOptions, PluginEngine};
pub use error::{EventFailure, FailureKind, LoadError};
pub use inspect::{Capability, ComponentInfo, SUPPORTED_CONTRACTS, World};
pub use limits::{PluginLimits, PluginSpec};
pub use plugin::{EventResult, MAX_CALL_EVENTS, ResolverPlugin, RouterPlugin, TransformerPlugin};
