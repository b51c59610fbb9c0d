//! The file sink: one JSON-lines file per destination, in size-rotated
//! segments, delivered exactly once.
//!
//! Each destination the router names gets files `<dest>.<NNNNNN>.jsonl` in
//! the sink's directory: the destination with every character other than
//! ASCII letters, digits, `.`, `_` and `-` replaced by `_`, and a segment
//! number from `000001`. Each line is one event's compact Debezium
//! envelope. When a segment has reached `max_file_bytes`, it is synced and
//! closed, and the next line starts the next segment; a segment thus ends
//! with the line that reached the size.
//!
//! Exactly-once: [`FileSink::flush`] syncs every file written since the last
//! flush (and the directory, when a file was created) and returns, for
//! every destination, the current segment and its length. The pipeline
//! stores that position in the checkpoint together with the source
//! position. On restart, [`FileSink::recover`] cuts each destination's
//! segment back to the checkpointed length and deletes its later segments
//! and every file of destinations the checkpoint does not know, then
//! appends from there. Whatever was written after the checkpoint is thus
//! gone before the source replays it, so each event is in the files
//! exactly once. Without a checkpoint (`recover(None)`) nothing was
//! durable, and every segment file in the directory is deleted.
//!
//! The sink owns its directory's `*.NNNNNN.jsonl` files; other files are
//! left alone. Earlier segments may be moved away by consumers once
//! complete; the current one must stay.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use tracing::{info, warn};
use weir_core::{ChangeEvent, Delivery, Sink, StageError};

use super::encode_line;

mod config;
pub use config::FileSinkConfig;

/// Buffer per open file.
const WRITE_BUFFER: usize = 64 << 10;

/// A file sink could not do its work. Every message names the sink and,
/// where there is one, the file.
#[derive(Debug, thiserror::Error)]
pub enum FileSinkError {
    #[error("file sink `{sink}`: cannot {action} {path}: {source}")]
    Io {
        sink: String,
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "file sink `{sink}`: the position in the checkpoint is malformed ({detail}); the state directory was edited or belongs to another sink configuration"
    )]
    BadPosition { sink: String, detail: String },
    #[error(
        "file sink `{sink}`: {path} holds {actual} bytes, fewer than the {expected} the last checkpoint made durable, so output was lost or cut outside Weir; move the file away to continue in a new segment"
    )]
    ShorterThanCheckpoint {
        sink: String,
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
    #[error(
        "file sink `{sink}`: destinations `{first}` and `{second}` both map to the files {stem}.NNNNNN.jsonl; make the router's destination names differ in letters, digits, `.`, `_` or `-`"
    )]
    NameCollision {
        sink: String,
        first: String,
        second: String,
        stem: String,
    },
    #[error("file sink `{sink}`: written to before `recover`; this is a bug in the pipeline")]
    NotRecovered { sink: String },
    #[error(
        "file sink `{sink}` stopped after an earlier error; restart the pipeline to continue from the last checkpoint"
    )]
    Stopped { sink: String },
}

/// Writes events as JSON lines, one set of segment files per destination.
/// See the module docs for the file layout and the exactly-once protocol.
#[derive(Debug)]
pub struct FileSink {
    name: String,
    dir: PathBuf,
    max_file_bytes: u64,
    /// Every destination written or recovered, by destination name.
    dests: BTreeMap<String, Destination>,
    /// File name stem to destination name, to catch two destinations that
    /// would share files.
    stems: HashMap<String, String>,
    recovered: bool,
    /// An I/O error left files in an unknown state: only `recover` helps.
    stopped: bool,
    /// A file was created since the last flush: the directory needs a sync.
    created_files: bool,
    line: Vec<u8>,
}

#[derive(Debug)]
struct Destination {
    stem: String,
    segment: u64,
    /// Length of the current segment, including buffered bytes.
    len: u64,
    out: Option<BufWriter<File>>,
    /// Written since the last flush.
    dirty: bool,
}

impl FileSink {
    /// A sink writing into `dir` (created by [`Sink::recover`] if missing)
    /// that starts a new segment once one reaches `max_file_bytes`.
    pub fn new(name: impl Into<String>, dir: impl Into<PathBuf>, max_file_bytes: u64) -> Self {
        FileSink {
            name: name.into(),
            dir: dir.into(),
            max_file_bytes: max_file_bytes.max(1),
            dests: BTreeMap::new(),
            stems: HashMap::new(),
            recovered: false,
            stopped: false,
            created_files: false,
            line: Vec::new(),
        }
    }

    /// The directory the sink writes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name of a destination's segment.
    pub fn segment_file_name(destination: &str, segment: u64) -> String {
        format!("{}.{segment:06}.jsonl", file_stem(destination))
    }

    fn io_err(
        &self,
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> FileSinkError + use<> {
        let sink = self.name.clone();
        let path = path.to_owned();
        move |source| FileSinkError::Io {
            sink,
            action,
            path,
            source,
        }
    }

    /// The position `flush` reports.
    fn position(&self) -> Json {
        let files: serde_json::Map<String, Json> = self
            .dests
            .iter()
            .map(|(dest, d)| (dest.clone(), json!({"segment": d.segment, "len": d.len})))
            .collect();
        json!({ "files": files })
    }

    /// Registers a destination, refusing one whose files another uses.
    fn add_destination(
        &mut self,
        destination: &str,
        segment: u64,
        len: u64,
    ) -> Result<(), FileSinkError> {
        let stem = file_stem(destination);
        if let Some(first) = self.stems.get(&stem) {
            return Err(FileSinkError::NameCollision {
                sink: self.name.clone(),
                first: first.clone(),
                second: destination.to_owned(),
                stem,
            });
        }
        self.stems.insert(stem.clone(), destination.to_owned());
        self.dests.insert(
            destination.to_owned(),
            Destination {
                stem,
                segment,
                len,
                out: None,
                dirty: false,
            },
        );
        Ok(())
    }

    fn recover_files(&mut self, position: Option<&Json>) -> Result<(), FileSinkError> {
        self.dests.clear();
        self.stems.clear();
        self.created_files = false;
        if !self.dir.is_dir() {
            std::fs::create_dir_all(&self.dir)
                .map_err(self.io_err("create the directory", &self.dir))?;
            // The new directory's own entry must survive a crash too.
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent).map_err(self.io_err("sync the directory", parent))?;
            }
        }
        for (dest, segment, len) in parse_position(&self.name, position)? {
            self.add_destination(&dest, segment, len)?;
        }

        let mut changed = false;
        let mut current_found: Vec<String> = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(self.io_err("list", &self.dir))?;
        for entry in entries {
            let entry = entry.map_err(self.io_err("list", &self.dir))?;
            let file_name = entry.file_name();
            let Some((stem, segment)) = file_name.to_str().and_then(parse_segment_name) else {
                continue;
            };
            let path = entry.path();
            let dest = self
                .stems
                .get(stem)
                .and_then(|dest| self.dests.get(dest).map(|d| (dest, d)));
            match dest {
                Some((_, d)) if segment < d.segment => {}
                Some((dest, d)) if segment == d.segment => {
                    let actual = entry
                        .metadata()
                        .map_err(self.io_err("read the size of", &path))?
                        .len();
                    if actual < d.len {
                        return Err(FileSinkError::ShorterThanCheckpoint {
                            sink: self.name.clone(),
                            path,
                            actual,
                            expected: d.len,
                        });
                    }
                    if actual > d.len {
                        let file = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(self.io_err("open", &path))?;
                        file.set_len(d.len)
                            .and_then(|()| file.sync_all())
                            .map_err(self.io_err("truncate", &path))?;
                        info!(sink = %self.name, path = %path.display(), from = actual, to = d.len,
                            "Cut a file back to its last checkpointed length.");
                    }
                    current_found.push(dest.clone());
                }
                _ => {
                    std::fs::remove_file(&path).map_err(self.io_err("delete", &path))?;
                    info!(sink = %self.name, path = %path.display(),
                        "Deleted a file written after the last checkpoint.");
                    changed = true;
                }
            }
        }
        if changed {
            sync_dir(&self.dir).map_err(self.io_err("sync the directory", &self.dir))?;
        }

        for (dest, d) in &mut self.dests {
            if d.len > 0 && !current_found.contains(dest) {
                warn!(sink = %self.name, destination = %dest, segment = d.segment,
                    "The checkpoint's current segment is gone; continuing in the next one.");
                d.segment += 1;
                d.len = 0;
            }
        }
        Ok(())
    }

    fn write_events<'e>(
        &mut self,
        destination: &str,
        events: impl Iterator<Item = &'e ChangeEvent>,
    ) -> Result<(), FileSinkError> {
        if !self.dests.contains_key(destination) {
            self.add_destination(destination, 1, 0)?;
        }
        let sink = self.name.as_str();
        let io_err = |action, path: &Path| {
            let path = path.to_owned();
            move |source| FileSinkError::Io {
                sink: sink.to_owned(),
                action,
                path,
                source,
            }
        };
        let d = self.dests.get_mut(destination).expect("added above");
        for event in events {
            self.line.clear();
            encode_line(event, &mut self.line);
            if d.len >= self.max_file_bytes {
                if let Some(out) = d.out.take() {
                    let path = segment_path(&self.dir, &d.stem, d.segment);
                    let file = out
                        .into_inner()
                        .map_err(|e| e.into_error())
                        .map_err(io_err("write", &path))?;
                    file.sync_data().map_err(io_err("sync", &path))?;
                }
                d.segment += 1;
                d.len = 0;
            }
            let path = segment_path(&self.dir, &d.stem, d.segment);
            let out = match &mut d.out {
                Some(out) => out,
                None => {
                    let existed = path.exists();
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(io_err("open", &path))?;
                    d.len = file
                        .metadata()
                        .map_err(io_err("read the size of", &path))?
                        .len();
                    self.created_files |= !existed;
                    d.out.insert(BufWriter::with_capacity(WRITE_BUFFER, file))
                }
            };
            out.write_all(&self.line).map_err(io_err("write", &path))?;
            d.len += self.line.len() as u64;
            d.dirty = true;
        }
        Ok(())
    }

    fn flush_files(&mut self) -> Result<Json, FileSinkError> {
        for d in self.dests.values_mut().filter(|d| d.dirty) {
            if let Some(out) = &mut d.out {
                let path = segment_path(&self.dir, &d.stem, d.segment);
                out.flush()
                    .and_then(|()| out.get_ref().sync_data())
                    .map_err(|source| FileSinkError::Io {
                        sink: self.name.clone(),
                        action: "sync",
                        path,
                        source,
                    })?;
            }
            d.dirty = false;
        }
        if self.created_files {
            sync_dir(&self.dir).map_err(self.io_err("sync the directory", &self.dir))?;
            self.created_files = false;
        }
        Ok(self.position())
    }

    /// Runs `f`, and stops the sink if it fails: after a failed write the
    /// files hold an unknown amount of output, which only `recover` fixes.
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, FileSinkError>,
    ) -> Result<T, StageError> {
        if self.stopped {
            return Err(FileSinkError::Stopped {
                sink: self.name.clone(),
            }
            .into());
        }
        if !self.recovered {
            return Err(FileSinkError::NotRecovered {
                sink: self.name.clone(),
            }
            .into());
        }
        f(self).map_err(|e| {
            self.stopped = true;
            e.into()
        })
    }
}

impl From<FileSinkError> for StageError {
    /// Every file sink error needs an operator: a full disk, a permission,
    /// a file changed outside Weir. Restarting alone would not help.
    fn from(e: FileSinkError) -> StageError {
        StageError::operator(e)
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        self.recovered = false;
        self.recover_files(position)?;
        self.recovered = true;
        self.stopped = false;
        Ok(())
    }

    fn write(&mut self, events: &[Delivery<'_>]) -> Result<(), StageError> {
        if events.is_empty() {
            return Ok(());
        }
        self.guarded(|s| {
            // Each file gets its events in commit order; runs of one
            // destination are written together.
            for run in events.chunk_by(|a, b| a.destination == b.destination) {
                s.write_events(run[0].destination, run.iter().map(|d| d.event))?;
            }
            Ok(())
        })
    }

    fn flush(&mut self, _source: &Json) -> Result<Json, StageError> {
        self.guarded(FileSink::flush_files)
    }
}

fn segment_path(dir: &Path, stem: &str, segment: u64) -> PathBuf {
    dir.join(format!("{stem}.{segment:06}.jsonl"))
}

/// The destination as a file name stem: ASCII letters, digits, `.`, `_`
/// and `-` kept, anything else `_`.
fn file_stem(destination: &str) -> String {
    if destination.is_empty() {
        return "_".to_owned();
    }
    destination
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `(stem, segment)` of a segment file name this sink could have written.
fn parse_segment_name(name: &str) -> Option<(&str, u64)> {
    let (stem, number) = name.strip_suffix(".jsonl")?.rsplit_once('.')?;
    let valid_stem = !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid_stem || number.len() < 6 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem, number.parse().ok()?))
}

/// `(destination, segment, len)` for every destination of a position.
fn parse_position(
    sink: &str,
    position: Option<&Json>,
) -> Result<Vec<(String, u64, u64)>, FileSinkError> {
    let Some(position) = position else {
        return Ok(Vec::new());
    };
    let bad = |detail: String| FileSinkError::BadPosition {
        sink: sink.to_owned(),
        detail,
    };
    let files = position
        .get("files")
        .and_then(Json::as_object)
        .ok_or_else(|| bad(format!("expected {{\"files\": {{...}}}}, found {position}")))?;
    files
        .iter()
        .map(|(dest, f)| {
            let field = |k: &str| f.get(k).and_then(Json::as_u64);
            match (field("segment"), field("len")) {
                (Some(segment), Some(len)) if segment > 0 => Ok((dest.clone(), segment, len)),
                _ => Err(bad(format!(
                    "destination `{dest}`: expected {{\"segment\": N > 0, \"len\": BYTES}}, found {f}"
                ))),
            }
        })
        .collect()
}

/// Makes the directory's entries (created, deleted files) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    // Elsewhere a directory cannot be opened as a file; its entries are
    // made durable with the files.
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
