//! The dead-letter file: events a plugin failed on or a sink refused, with
//! the reason, one JSON object per line in `<state_dir>/dead-letters.jsonl`.
//!
//! It is a [`Sink`] like any other and exactly-once like the file sink: its
//! length is recorded in every checkpoint, and a restart cuts it back to
//! that length, so a dead letter appears once however often the pipeline
//! crashes. A file shorter than the checkpoint says lost dead letters; it
//! is refused, never padded. A file that is gone (moved away by the
//! operator) starts over empty.
//!
//! Each line: `{"plugin": NAME}` or `{"sink": NAME}` (where it failed),
//! `"kind"` (a plugin failure kind such as `trap`, or `event` for a sink's
//! refusal), `"reason"`, and `"event"` (the event's Debezium envelope).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use tracing::warn;
use weir_core::{DeadLetter, Delivery, FailedAt, Sink, StageError};

/// See the module docs.
#[derive(Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    len: u64,
    synced: u64,
}

/// The dead-letter file could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead-letter file: cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "dead-letter file: {path} holds {actual} bytes, fewer than the {expected} the last checkpoint made durable, so dead letters were lost or cut outside Weir; move the file away to start a new one"
    )]
    ShorterThanCheckpoint {
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
    #[error(
        "dead-letter file: the position in the checkpoint is malformed ({0}); the state directory was edited or belongs to another pipeline"
    )]
    BadPosition(Json),
    #[error("dead-letter file: written to before `recover`; this is a bug in the pipeline")]
    NotRecovered,
}

impl From<DeadLetterError> for StageError {
    fn from(e: DeadLetterError) -> StageError {
        StageError::operator(e)
    }
}

impl DeadLetterFile {
    /// The checkpoint key (and sink name) under which the file's length is
    /// recorded.
    pub const KEY: &'static str = "$dead-letters";

    /// The file name inside the state directory.
    pub const FILE: &'static str = "dead-letters.jsonl";

    /// The dead-letter file of the pipeline whose state is in `state_dir`;
    /// opened by [`Sink::recover`].
    pub fn new(state_dir: &Path) -> Self {
        DeadLetterFile {
            path: state_dir.join(Self::FILE),
            file: None,
            len: 0,
            synced: 0,
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> DeadLetterError + use<> {
        let path = self.path.clone();
        move |source| DeadLetterError::Io {
            action,
            path,
            source,
        }
    }

    fn open(&mut self, position: Option<&Json>) -> Result<(), DeadLetterError> {
        let mut len = match position {
            None => 0,
            Some(p) => p
                .get("len")
                .and_then(Json::as_u64)
                .ok_or_else(|| DeadLetterError::BadPosition(p.clone()))?,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(self.io("create the directory of"))?;
        }
        if len > 0 && !self.path.exists() {
            warn!(path = %self.path.display(), "The dead-letter file is gone; starting a new one.");
            len = 0;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(self.io("open"))?;
        let actual = file.metadata().map_err(self.io("read the size of"))?.len();
        if actual < len {
            return Err(DeadLetterError::ShorterThanCheckpoint {
                path: self.path.clone(),
                actual,
                expected: len,
            });
        }
        if actual > len {
            file.set_len(len)
                .and_then(|()| file.sync_all())
                .map_err(self.io("truncate"))?;
        }
        self.file = Some(BufWriter::new(file));
        self.len = len;
        self.synced = len;
        Ok(())
    }

    fn append(&mut self, letters: &[DeadLetter]) -> Result<(), DeadLetterError> {
        let io = self.io("write");
        let Some(file) = &mut self.file else {
            return Err(DeadLetterError::NotRecovered);
        };
        let mut buf = Vec::new();
        for letter in letters {
            serde_json::to_writer(&mut buf, &dead_letter_json(letter))
                .expect("JSON values serialize");
            buf.push(b'\n');
        }
        file.write_all(&buf).map_err(io)?;
        self.len += buf.len() as u64;
        Ok(())
    }
}

/// A dead letter as written to the file (and by `weir worker` to its
/// dead-letter topic): see the module docs.
pub fn dead_letter_json(letter: &DeadLetter) -> Json {
    let mut record = match &letter.failed_at {
        FailedAt::Plugin(name) => json!({ "plugin": name }),
        FailedAt::Sink(name) => json!({ "sink": name }),
    };
    record["kind"] = json!(letter.kind);
    record["reason"] = json!(letter.reason);
    record["event"] = weir_core::envelope::to_envelope(&letter.event);
    record
}

impl Sink for DeadLetterFile {
    fn name(&self) -> &str {
        Self::KEY
    }

    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        Ok(self.open(position)?)
    }

    fn write(&mut self, _events: &[Delivery<'_>]) -> Result<(), StageError> {
        Err(StageError::operator(
            "the dead-letter file takes dead letters only; this is a bug in the pipeline",
        ))
    }

    fn write_dead_letters(&mut self, letters: &[DeadLetter]) -> Result<(), StageError> {
        if letters.is_empty() {
            return Ok(());
        }
        Ok(self.append(letters)?)
    }

    fn flush(&mut self, _source: &Json) -> Result<Json, StageError> {
        if self.synced != self.len {
            let io = self.io("sync");
            let Some(file) = &mut self.file else {
                return Err(DeadLetterError::NotRecovered.into());
            };
            file.flush()
                .and_then(|()| file.get_ref().sync_data())
                .map_err(io)?;
            self.synced = self.len;
        }
        Ok(json!({ "len": self.len }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::test_event;

    fn letter(id: i64) -> DeadLetter {
        DeadLetter {
            failed_at: FailedAt::Plugin("mask".into()),
            kind: "trap".into(),
            reason: format!("wasm trap on {id}"),
            event: test_event(id, "customers"),
        }
    }

    #[test]
    fn cuts_back_to_the_checkpoint_and_writes_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dl = DeadLetterFile::new(tmp.path());
        dl.recover(None).unwrap();
        dl.write_dead_letters(&[letter(1)]).unwrap();
        let position = dl.flush(&Json::Null).unwrap();
        dl.write_dead_letters(&[letter(2)]).unwrap();
        dl.flush(&Json::Null).unwrap();
        drop(dl);

        let mut dl = DeadLetterFile::new(tmp.path());
        dl.recover(Some(&position)).unwrap();
        let text = std::fs::read_to_string(tmp.path().join(DeadLetterFile::FILE)).unwrap();
        let lines: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["plugin"], "mask");
        assert_eq!(lines[0]["kind"], "trap");
        assert_eq!(lines[0]["reason"], "wasm trap on 1");
        assert_eq!(lines[0]["event"]["after"]["id"], 1);
    }

    #[test]
    fn a_short_file_is_refused_not_padded() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(DeadLetterFile::FILE);
        std::fs::write(&file, "{}\n").unwrap();
        let mut dl = DeadLetterFile::new(tmp.path());
        let err = dl.recover(Some(&json!({"len": 100}))).unwrap_err();
        assert_eq!(err.kind(), weir_core::ErrorKind::Operator);
        assert_eq!(
            err.to_string(),
            format!(
                "dead-letter file: {} holds 3 bytes, fewer than the 100 the last checkpoint made durable, so dead letters were lost or cut outside Weir; move the file away to start a new one",
                file.display()
            )
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            b"{}\n",
            "the file was changed"
        );

        // Moved away: a new file starts.
        std::fs::remove_file(&file).unwrap();
        dl.recover(Some(&json!({"len": 100}))).unwrap();
        assert_eq!(dl.flush(&Json::Null).unwrap(), json!({"len": 0}));
    }
}
