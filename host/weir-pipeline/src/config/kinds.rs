//! The macro that declares the kinds of a role; see [`component_kinds`].

/// Declares the kinds of one role (sources, sinks): the enum of their
/// config structs, the `kind` names (and aliases) that choose them, the
/// reading of a table as a kind's struct, and the dispatch to the role's
/// component trait. Adding a kind is one line in its invocation.
macro_rules! component_kinds {
    (
        $(#[$enum_doc:meta])*
        pub enum $enum:ident: dyn $component:path {
            $($(#[$doc:meta])* $variant:ident($ty:ty) = $kind:literal $(| $alias:literal)*;)*
        }
    ) => {
        $(#[$enum_doc])*
        #[derive(Debug, Clone)]
        pub enum $enum {
            $($(#[$doc])* $variant($ty),)*
        }

        impl $enum {
            /// Every `kind` it may have (aliases left out).
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            /// Whether `kind` (or an alias) names one of them.
            pub(super) fn is_kind(kind: &str) -> bool {
                matches!(kind, $($kind $(| $alias)*)|*)
            }

            /// Reads the table of `kind` (without the keys the pipeline
            /// reads itself); `kind` was checked with `is_kind`.
            pub(super) fn read(
                kind: &str,
                de: toml::de::ValueDeserializer<'_>,
            ) -> Result<$enum, toml::de::Error> {
                match kind {
                    $($kind $(| $alias)* => {
                        <$ty as serde::Deserialize>::deserialize(de).map($enum::$variant)
                    })*
                    other => Err(serde::de::Error::custom(format!("unknown kind `{other}`"))),
                }
            }

            /// The `kind` that chose it (not an alias).
            pub fn kind(&self) -> &'static str {
                match self {
                    $($enum::$variant(_) => $kind,)*
                }
            }

            /// The kind-specific behaviour.
            pub fn component(&self) -> &dyn $component {
                match self {
                    $($enum::$variant(c) => c,)*
                }
            }

            /// The kind-specific behaviour, mutably.
            pub fn component_mut(&mut self) -> &mut dyn $component {
                match self {
                    $($enum::$variant(c) => c,)*
                }
            }
        }
    };
}
pub(crate) use component_kinds;
