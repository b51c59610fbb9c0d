//! The dead-letter file: events a plugin failed on, with the reason, one
//! JSON object per line in `<state_dir>/dead-letters.jsonl`.
//!
//! It is exactly-once like the file sink: its length is recorded in every
//! checkpoint, and a restart truncates it to that length, so a dead letter
//! appears once however often the pipeline crashes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use weir_plugin::EventFailure;

/// See the module docs.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: BufWriter<File>,
    len: u64,
    synced: u64,
}

impl DeadLetters {
    /// The checkpoint key under which the file's length is recorded.
    pub const KEY: &'static str = "$dead-letters";

    /// Opens the file, cutting it back to the length in `position` (from the
    /// last checkpoint), or to nothing without one.
    pub fn open(state_dir: &Path, position: Option<&Json>) -> std::io::Result<Self> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join("dead-letters.jsonl");
        let len = position
            .and_then(|p| p.get("len"))
            .and_then(Json::as_u64)
            .unwrap_or(0);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if file.metadata()?.len() != len {
            file.set_len(len)?;
            file.sync_all()?;
        }
        Ok(DeadLetters {
            path,
            file: BufWriter::new(file),
            len,
            synced: len,
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    pub fn write(&mut self, failure: &EventFailure) -> std::io::Result<()> {
        let record = json!({
            "plugin": failure.plugin,
            "kind": failure.kind.label(),
            "reason": failure.message,
            "event": weir_core::envelope::to_envelope(&failure.event),
        });
        let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.len += line.len() as u64;
        Ok(())
    }

    /// Makes the records durable; returns the position to checkpoint.
    pub fn flush(&mut self) -> std::io::Result<Json> {
        if self.synced != self.len {
            self.file.flush()?;
            self.file.get_ref().sync_data()?;
            self.synced = self.len;
        }
        Ok(json!({ "len": self.len }))
    }
}
