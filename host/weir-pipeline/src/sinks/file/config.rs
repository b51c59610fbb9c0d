//! `kind = "file"`: the file sink's config section.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use weir_connect::{BuildContext, Checker, SinkComponent};
use weir_core::{Sink, StageError};

use super::FileSink;
use crate::sinks::SinkFormat;

/// `kind = "file"`: one JSON-lines file per destination, rotated by size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Directory the files are written to, created if missing. A relative
    /// path resolves against the config file's directory. The sink owns the
    /// `*.NNNNNN.jsonl` files in it: on restart it truncates or deletes
    /// whatever was written after the last checkpoint.
    pub dir: PathBuf,
    /// Size in bytes at which a file is closed and the next segment
    /// started; a segment ends with the line that reaches this size.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Line format.
    #[serde(default)]
    pub format: SinkFormat,
}

const fn default_max_file_bytes() -> u64 {
    64 << 20
}

impl SinkComponent for FileSinkConfig {
    fn resolve_paths(&mut self, base_dir: &Path) {
        if self.dir.is_relative() {
            self.dir = base_dir.join(&self.dir);
        }
    }

    fn validate(&self, c: &mut Checker) {
        if self.dir.as_os_str().is_empty() {
            c.err("dir", "must not be empty");
        }
        if self.max_file_bytes == 0 {
            c.err("max_file_bytes", "must be more than 0");
        }
    }

    fn owned_dirs(&self) -> Vec<(&'static str, PathBuf)> {
        vec![("dir", self.dir.clone())]
    }

    fn build(&self, name: &str, _cx: &BuildContext) -> Result<Box<dyn Sink>, StageError> {
        Ok(Box::new(FileSink::new(
            name,
            self.dir.clone(),
            self.max_file_bytes,
        )))
    }
}
