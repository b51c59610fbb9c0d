//! `[source]`: the source kinds a pipeline can read from. Adding a kind is
//! one line in [`source_kinds!`] below and one crate that implements
//! [`SourceComponent`] on its config struct.

use serde::Deserialize;
use toml::de::ValueDeserializer;
use weir_connect::SourceComponent;

/// Declares the source kinds: the [`SourceConfig`] enum, its `kind` names
/// and aliases, and the dispatch to each kind's [`SourceComponent`].
macro_rules! source_kinds {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $kind:literal $(| $alias:literal)*;)*) => {
        /// A change source, chosen by `kind`.
        #[derive(Debug, Clone)]
        pub enum SourceConfig {
            $($(#[$doc])* $variant($ty),)*
        }

        impl SourceConfig {
            /// Every `kind` a source may have (aliases left out).
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            /// Reads the table of a source of `kind` (without its `kind`
            /// key); `None` for an unknown kind.
            pub(super) fn read(
                kind: &str,
                de: ValueDeserializer<'_>,
            ) -> Option<Result<SourceConfig, toml::de::Error>> {
                match kind {
                    $($kind $(| $alias)* => Some(<$ty>::deserialize(de).map(SourceConfig::$variant)),)*
                    _ => None,
                }
            }

            /// The source's kind-specific behaviour.
            pub fn component(&self) -> &dyn SourceComponent {
                match self {
                    $(SourceConfig::$variant(c) => c,)*
                }
            }

            /// The source's kind-specific behaviour, mutably.
            pub fn component_mut(&mut self) -> &mut dyn SourceComponent {
                match self {
                    $(SourceConfig::$variant(c) => c,)*
                }
            }
        }
    };
}

source_kinds! {
    /// PostgreSQL logical replication with the `pgoutput` plugin.
    Postgres(weir_postgres::PostgresSourceConfig) = "postgres";
}
