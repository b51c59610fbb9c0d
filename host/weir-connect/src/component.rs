//! How a source or sink kind describes itself to the pipeline config.
//!
//! Each kind owns a config struct (deserialized from its TOML table with
//! `#[serde(deny_unknown_fields)]`, doc comments on every field, `const fn
//! default_*()` for defaults) and implements [`SourceComponent`] or
//! [`SinkComponent`] on it: defaults that depend on the pipeline, path
//! resolution, validation with field paths, and construction. The config
//! loader does the rest for every kind alike: reading the TOML, reporting
//! structural errors with their field paths, and `${ENV}` interpolation of
//! every string value before the struct is deserialized.

use std::fmt;
use std::path::{Path, PathBuf};

use weir_core::{Sink, StageError};

use crate::Source;

/// What every source kind can be asked, once its table deserialized.
pub trait SourceComponent: fmt::Debug + Send + Sync {
    /// Fills defaults that depend on the pipeline (names derived from its
    /// name). Runs before validation.
    fn fill_defaults(&mut self, pipeline: &str) {
        let _ = pipeline;
    }
    /// Makes relative paths absolute against the config file's directory.
    fn resolve_paths(&mut self, base_dir: &Path) {
        let _ = base_dir;
    }
    /// Reports every problem, with field paths relative to the section
    /// (`port`, `tables[2]`).
    fn validate(&self, pipeline: &str, check: &mut Checker);
    /// One line for `weir validate`: where it connects and what it reads;
    /// never a secret.
    fn describe(&self) -> String;
    /// The tables the source is configured to capture, when the config
    /// names them (so that `weir validate` can tell which destinations the
    /// router will produce); `None` when only the server knows.
    fn captured_tables(&self) -> Option<Vec<TableRef>> {
        None
    }
    /// The source, ready to run. Does no I/O: connecting and checking the
    /// server is [`Source::run`]'s first step.
    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Source>, StageError>;
}

/// What every sink kind can be asked, once its table deserialized. The
/// fields every sink has (`name`, `inputs`) are the pipeline's, not the
/// kind's.
pub trait SinkComponent: fmt::Debug + Send + Sync {
    /// Makes relative paths absolute against the config file's directory.
    fn resolve_paths(&mut self, base_dir: &Path) {
        let _ = base_dir;
    }
    /// Reports every problem, with field paths relative to the section.
    fn validate(&self, check: &mut Checker);
    /// Directories the sink owns exclusively, with the field that names
    /// each; no other sink and not the pipeline's state directory may use
    /// them.
    fn owned_dirs(&self) -> Vec<(&'static str, PathBuf)> {
        Vec::new()
    }
    /// The sink, ready for [`Sink::recover`]. Sinks that connect to a server
    /// may connect here.
    fn build(&self, name: &str, cx: &BuildContext) -> Result<Box<dyn Sink>, StageError>;
    /// Whether the sink can detect and resolve conflicts (active-active,
    /// `crate::apply::conflict`) with changes from `source_region`; the
    /// reason when not.
    fn resolves_conflicts(&self, source_region: &str) -> Result<(), String> {
        let _ = source_region;
        Err(
            "this sink kind does not resolve conflicts; `conflicts` is for `kind = \"postgres\"`"
                .to_owned(),
        )
    }
}

/// What a component may need from the pipeline when it is built.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The pipeline's name (for application names, default identifiers).
    pub pipeline: String,
    /// The pipeline's state directory.
    pub state_dir: PathBuf,
    /// Most events a source puts in one batch.
    pub max_batch_events: usize,
    /// Most approximate bytes a source puts in one batch.
    pub max_batch_bytes: usize,
    /// The sink's conflict handling (active-active), when it has a
    /// `conflicts` section; set per sink.
    pub conflicts: Option<crate::apply::ConflictSetup>,
}

/// A table a source captures, as the router sees its events' origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub connector: String,
    pub database: String,
    pub schema: String,
    pub table: String,
}

/// One problem with a config, at a field path such as `sinks[1].dir`
/// (empty when it concerns the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config, displayed one per line as
/// `path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// A single error.
    pub fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors {
            errors: vec![ConfigError {
                path: path.into(),
                message: message.into(),
            }],
        }
    }
}

/// Collects config problems under a path prefix (`source`, `sinks[1]`), so
/// a component names its fields relative to its own section.
#[derive(Debug, Default)]
pub struct Checker {
    prefix: String,
    errors: Vec<ConfigError>,
}

impl Checker {
    /// A checker whose paths start with `prefix` (none when empty).
    pub fn new(prefix: impl Into<String>) -> Self {
        Checker {
            prefix: prefix.into(),
            errors: Vec::new(),
        }
    }

    /// The full path of `field` (`source.port`); the prefix alone for `""`.
    pub fn path(&self, field: &str) -> String {
        match (self.prefix.is_empty(), field.is_empty()) {
            (true, _) => field.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) if field.starts_with('[') => format!("{}{field}", self.prefix),
            (false, false) => format!("{}.{field}", self.prefix),
        }
    }

    /// Records a problem with `field`.
    pub fn err(&mut self, field: &str, message: impl Into<String>) {
        let path = self.path(field);
        self.errors.push(ConfigError {
            path,
            message: message.into(),
        });
    }

    /// Checks a name made of lower-case letters, digits, `_` and `-`.
    pub fn name(&mut self, field: &str, name: &str, what: &str) {
        if name.is_empty() {
            self.err(field, format!("a {what} name must not be empty"));
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            self.err(
                field,
                format!(
                    "`{name}` is not a valid {what} name; use lower-case letters, digits, `_` and `-`"
                ),
            );
        }
    }

    /// Takes the problems recorded.
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// Adds another checker's problems after these.
    pub fn absorb(&mut self, other: Checker) {
        self.errors.extend(other.errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_section() {
        let mut c = Checker::new("sinks[1]");
        c.err("dir", "must not be empty");
        c.err("", "whole section");
        c.name("name", "Bad Name", "sink");
        let mut top = Checker::new("");
        top.err("name", "top");
        top.absorb(c);
        let shown = ConfigErrors {
            errors: top.into_errors(),
        }
        .to_string();
        assert_eq!(
            shown,
            "name: top\nsinks[1].dir: must not be empty\nsinks[1]: whole section\n\
             sinks[1].name: `Bad Name` is not a valid sink name; use lower-case letters, digits, `_` and `-`"
        );
        assert_eq!(Checker::new("source").path("tables[2]"), "source.tables[2]");
    }
}
