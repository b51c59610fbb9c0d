//! `[[sinks]]`: the sink kinds a pipeline can deliver to, and the fields
//! every sink has. Adding a kind is one line in [`sink_kinds!`] below and
//! one module that implements [`SinkComponent`] on its config struct.

use serde::Deserialize;
use toml::de::ValueDeserializer;
use weir_connect::{Checker, SinkComponent};

use crate::sinks::{FileSinkConfig, StdoutSinkConfig};

/// One `[[sinks]]` entry.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Name used in logs, metrics and checkpoints; unique in the pipeline.
    /// Lower-case letters, digits, `_` and `-`.
    pub name: String,
    /// Destinations this sink takes, as globs (`public.orders*`,
    /// `*.audit_?`); absent: every destination.
    pub inputs: Option<Vec<String>>,
    /// The kind and its settings.
    pub kind: SinkKind,
}

/// The fields every sink has, whatever its kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinkCommon {
    pub name: String,
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
}

impl SinkCommon {
    /// The keys [`SinkCommon`] reads (with `kind`, the keys no kind sees).
    pub const KEYS: [&'static str; 2] = ["name", "inputs"];
}

impl SinkConfig {
    /// Checks the fields every sink has, with paths relative to the sink.
    pub(super) fn validate_common(&self, c: &mut Checker) {
        c.name("name", &self.name, "sink");
        if let Some(inputs) = &self.inputs {
            if inputs.is_empty() {
                c.err(
                    "inputs",
                    "an empty list takes no destination; leave `inputs` out to take every destination",
                );
            }
            for (n, glob) in inputs.iter().enumerate() {
                if glob.is_empty() {
                    c.err(
                        &format!("inputs[{n}]"),
                        "must not be empty; write a destination name or a glob such as `public.*`",
                    );
                }
            }
        }
    }
}

/// Declares the sink kinds: the [`SinkKind`] enum, its `kind` names and
/// the dispatch to each kind's [`SinkComponent`].
macro_rules! sink_kinds {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $kind:literal;)*) => {
        /// A sink's kind and its kind-specific settings.
        #[derive(Debug, Clone)]
        pub enum SinkKind {
            $($(#[$doc])* $variant($ty),)*
        }

        impl SinkKind {
            /// Every `kind` a sink may have.
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            /// Reads the table of a sink of `kind` (without the fields every
            /// sink has); `None` for an unknown kind.
            pub(super) fn read(
                kind: &str,
                de: ValueDeserializer<'_>,
            ) -> Option<Result<SinkKind, toml::de::Error>> {
                match kind {
                    $($kind => Some(<$ty>::deserialize(de).map(SinkKind::$variant)),)*
                    _ => None,
                }
            }

            /// The sink's kind-specific behaviour.
            pub fn component(&self) -> &dyn SinkComponent {
                match self {
                    $(SinkKind::$variant(c) => c,)*
                }
            }

            /// The sink's kind-specific behaviour, mutably.
            pub fn component_mut(&mut self) -> &mut dyn SinkComponent {
                match self {
                    $(SinkKind::$variant(c) => c,)*
                }
            }
        }
    };
}

sink_kinds! {
    /// JSON-lines files, one set per destination, exactly-once.
    File(FileSinkConfig) = "file";
    /// JSON lines on standard output, at-least-once.
    Stdout(StdoutSinkConfig) = "stdout";
}
