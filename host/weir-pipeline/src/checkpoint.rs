//! Durable pipeline checkpoints in an SQLite file in the pipeline's state
//! directory (`<state_dir>/checkpoints.sqlite`).
//!
//! The database runs in WAL mode with `synchronous = FULL`, so a save is on
//! disk when its commit returns, and a crash at any moment leaves either
//! the previous checkpoint or the new one. It holds a single row: the
//! pipeline's [`Checkpoint`] as JSON, a sequence number that grows by one
//! with every save, and the save time. The file is marked as Weir's with
//! SQLite's `application_id`, so that a state directory pointed at the
//! wrong file is refused rather than written into.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use tracing::debug;
use weir_core::{Checkpoint, CheckpointStore, PositionOrder, StageError};

/// File name of the checkpoint database inside a state directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.sqlite";

/// `PRAGMA application_id` of a Weir state database: "WEIR" in ASCII.
const APPLICATION_ID: i32 = 0x5745_4952;

/// Schema version (`PRAGMA user_version`) this code reads and writes.
const SCHEMA_VERSION: i32 = 1;

/// A checkpoint store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "cannot create the state directory {path}: {source}; check that the pipeline's `state_dir` is writable"
    )]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a Weir state database ({detail}); point the pipeline's `state_dir` at a directory of its own, or move the file away"
    )]
    NotAStateDatabase { path: PathBuf, detail: String },
    #[error(
        "the Weir state database {path} is corrupt ({detail}); restore it from a backup, or move it away to start the pipeline over from scratch (which snapshots again)"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "the Weir state database {path} has schema version {found}, newer than this Weir supports ({SCHEMA_VERSION}); run a newer Weir"
    )]
    NewerSchema { path: PathBuf, found: i32 },
    #[error(
        "cannot switch the Weir state database {path} to WAL mode (it stays in `{mode}` mode); put the pipeline's `state_dir` on a local file system"
    )]
    NoWal { path: PathBuf, mode: String },
    #[error("cannot {action} the Weir state database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "the checkpoint stored in {path} cannot be read: {source}; restore the file from a backup, or move it away to start the pipeline over"
    )]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "refusing to move the checkpoint in {path} backward from source position {stored} to {attempted}: stored progress never moves backward; this is a bug in the pipeline, please report it"
    )]
    Backward {
        path: PathBuf,
        stored: String,
        attempted: String,
    },
}

/// A [`CheckpointStore`] in `<state_dir>/checkpoints.sqlite`, holding one
/// connection open for the pipeline's lifetime.
///
/// The source position is opaque to it: given the source's
/// [`PositionOrder`] ([`SqliteCheckpointStore::with_order`]), `save`
/// refuses a checkpoint whose source position the source says is before
/// the stored one. Stored progress never moves backward.
pub struct SqliteCheckpointStore {
    path: PathBuf,
    conn: Connection,
    order: Option<Arc<dyn PositionOrder>>,
}

impl std::fmt::Debug for SqliteCheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCheckpointStore")
            .field("path", &self.path)
            .field("ordered", &self.order.is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteCheckpointStore {
    /// Opens the state database in `state_dir`, creating the directory and
    /// the database as needed.
    pub fn open(state_dir: &Path) -> Result<Self, CheckpointError> {
        std::fs::create_dir_all(state_dir).map_err(|source| CheckpointError::CreateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let path = state_dir.join(CHECKPOINT_FILE);
        let conn = Connection::open(&path).map_err(|e| classify(&path, "open", e))?;
        let mut store = SqliteCheckpointStore {
            path,
            conn,
            order: None,
        };
        store.prepare()?;
        Ok(store)
    }

    /// Checks every save against the stored checkpoint with `order`, the
    /// source's own order of its positions.
    pub fn with_order(mut self, order: Arc<dyn PositionOrder>) -> Self {
        self.order = Some(order);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn prepare(&mut self) -> Result<(), CheckpointError> {
        let path = self.path.clone();
        let path = path.as_path();
        let err = |action| move |e| classify(path, action, e);
        // Another process reading the state (an admin tool) holds locks
        // only briefly; wait for it rather than fail.
        self.conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(err("configure"))?;
        let app_id: i32 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(err("read"))?;
        let objects: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(err("read"))?;
        if app_id == 0 && objects == 0 {
            self.create_schema()?;
        } else if app_id != APPLICATION_ID {
            return Err(CheckpointError::NotAStateDatabase {
                path: self.path.clone(),
                detail: if app_id == 0 {
                    format!("an SQLite database with {objects} tables or indexes of its own")
                } else {
                    format!("an SQLite database with application id {app_id:#010x}")
                },
            });
        }
        let version: i32 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err("read"))?;
        if version > SCHEMA_VERSION {
            return Err(CheckpointError::NewerSchema {
                path: self.path.clone(),
                found: version,
            });
        }
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err("configure"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(CheckpointError::NoWal {
                path: self.path.clone(),
                mode,
            });
        }
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(err("configure"))?;
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(err("check"))?;
        if check != "ok" {
            return Err(CheckpointError::Corrupt {
                path: self.path.clone(),
                detail: check,
            });
        }
        self.conn
            .query_row("SELECT count(*) FROM checkpoint", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| CheckpointError::Corrupt {
                path: self.path.clone(),
                detail: format!("its checkpoint table cannot be read: {e}"),
            })?;
        Ok(())
    }

    fn create_schema(&mut self) -> Result<(), CheckpointError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(|e| classify(&path, "initialize", e))?;
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {SCHEMA_VERSION};
             CREATE TABLE checkpoint (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 seq INTEGER NOT NULL,
                 saved_at_ms INTEGER NOT NULL,
                 body TEXT NOT NULL
             );"
        ))
        .map_err(|e| classify(&path, "initialize", e))?;
        tx.commit().map_err(|e| classify(&path, "initialize", e))?;
        debug!(path = %self.path.display(), "Checkpoint database created.");
        Ok(())
    }

    fn load_checkpoint(&mut self) -> Result<Option<Checkpoint>, CheckpointError> {
        let body: Option<String> = self
            .conn
            .query_row("SELECT body FROM checkpoint WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| classify(&self.path, "read", e))?;
        body.map(|b| serde_json::from_str(&b))
            .transpose()
            .map_err(|source| CheckpointError::Decode {
                path: self.path.clone(),
                source,
            })
    }

    fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let body = serde_json::to_string(checkpoint).map_err(|source| CheckpointError::Decode {
            path: self.path.clone(),
            source,
        })?;
        let saved_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let path = self.path.clone();
        let err = |e| classify(&path, "save a checkpoint in", e);
        // IMMEDIATE: the read of the stored position and the write are one
        // unit even if another connection writes in between.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let stored: Option<(i64, String)> = tx
            .query_row("SELECT seq, body FROM checkpoint WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(err)?;
        let seq = match &stored {
            None => 1,
            Some((seq, body)) => {
                let stored: Checkpoint =
                    serde_json::from_str(body).map_err(|source| CheckpointError::Decode {
                        path: self.path.clone(),
                        source,
                    })?;
                if let Some(order) = &self.order
                    && order.compare(&checkpoint.source, &stored.source)
                        == Some(std::cmp::Ordering::Less)
                {
                    return Err(CheckpointError::Backward {
                        path: self.path.clone(),
                        stored: order.describe(&stored.source),
                        attempted: order.describe(&checkpoint.source),
                    });
                }
                seq + 1
            }
        };
        tx.execute(
            "INSERT INTO checkpoint (id, seq, saved_at_ms, body) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET
                 seq = excluded.seq, saved_at_ms = excluded.saved_at_ms, body = excluded.body",
            rusqlite::params![seq, saved_at_ms, body],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(())
    }
}

impl CheckpointStore for SqliteCheckpointStore {
    fn load(&mut self) -> Result<Option<Checkpoint>, StageError> {
        self.load_checkpoint().map_err(StageError::from)
    }

    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), StageError> {
        self.save_checkpoint(checkpoint).map_err(StageError::from)
    }
}

impl From<CheckpointError> for StageError {
    /// Another process holding the database past the busy timeout may
    /// pass; everything else (a foreign or corrupt file, a full disk, a
    /// backward move) needs an operator.
    fn from(e: CheckpointError) -> StageError {
        let busy = matches!(&e, CheckpointError::Sqlite { source, .. }
            if matches!(source.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)));
        if busy {
            StageError::transient(e)
        } else {
            StageError::operator(e)
        }
    }
}

/// Turns SQLite's "not a database" and "malformed" into errors that say so.
fn classify(path: &Path, action: &'static str, e: rusqlite::Error) -> CheckpointError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => CheckpointError::NotAStateDatabase {
            path: path.to_owned(),
            detail: "not an SQLite database".to_owned(),
        },
        Some(ErrorCode::DatabaseCorrupt) => CheckpointError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => CheckpointError::Sqlite {
            path: path.to_owned(),
            action,
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn checkpoint(lsn: u64, file_len: u64) -> Checkpoint {
        Checkpoint {
            source: json!({"lsn": lsn, "snapshot": "done"}),
            sinks: [(
                "files".to_owned(),
                json!({"files": {"public.t": {"segment": 1, "len": file_len}}}),
            )]
            .into(),
        }
    }

    fn stored_row(dir: &Path) -> (i64, i64) {
        let conn = Connection::open(dir.join(CHECKPOINT_FILE)).unwrap();
        conn.query_row("SELECT seq, saved_at_ms FROM checkpoint", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    #[test]
    fn fresh_directory_has_no_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state/shop");
        let mut store = SqliteCheckpointStore::open(&dir).unwrap();
        assert_eq!(store.load().unwrap(), None);
        assert_eq!(store.path(), dir.join("checkpoints.sqlite"));
        assert!(store.path().is_file());
    }

    #[test]
    fn saved_checkpoint_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let mut store = SqliteCheckpointStore::open(tmp.path()).unwrap();
            store.save(&checkpoint(100, 10)).unwrap();
            store.save(&checkpoint(200, 20)).unwrap();
            assert_eq!(store.load().unwrap(), Some(checkpoint(200, 20)));
        }
        let mut store = SqliteCheckpointStore::open(tmp.path()).unwrap();
        assert_eq!(store.load().unwrap(), Some(checkpoint(200, 20)));
        drop(store);
        let (seq, saved_at_ms) = stored_row(tmp.path());
        assert_eq!(seq, 2);
        assert!(saved_at_ms > 1_600_000_000_000, "{saved_at_ms}");

        let conn = Connection::open(tmp.path().join(CHECKPOINT_FILE)).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// Orders positions by their `lsn`, as the PostgreSQL source does.
    struct ByLsn;

    impl PositionOrder for ByLsn {
        fn compare(
            &self,
            a: &serde_json::Value,
            b: &serde_json::Value,
        ) -> Option<std::cmp::Ordering> {
            Some(a.get("lsn")?.as_u64()?.cmp(&b.get("lsn")?.as_u64()?))
        }

        fn describe(&self, p: &serde_json::Value) -> String {
            format!("lsn {}", p["lsn"])
        }
    }

    #[test]
    fn checkpoint_never_moves_backward() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = SqliteCheckpointStore::open(tmp.path())
            .unwrap()
            .with_order(Arc::new(ByLsn));
        store.save(&checkpoint(0x1_0000_0200, 10)).unwrap();
        let err = store.save(&checkpoint(0x1_0000_0100, 5)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing to move the checkpoint in {} backward from source position lsn 4294967808 to lsn 4294967552: stored progress never moves backward; this is a bug in the pipeline, please report it",
                store.path().display()
            )
        );
        assert_eq!(store.load().unwrap(), Some(checkpoint(0x1_0000_0200, 10)));

        // The same position is not a move backward (sink positions may move).
        store.save(&checkpoint(0x1_0000_0200, 11)).unwrap();
        // Positions the source cannot compare are not refused.
        let other = Checkpoint {
            source: json!({"binlog": "mysql-bin.000001"}),
            ..Checkpoint::default()
        };
        store.save(&other).unwrap();
        assert_eq!(store.load().unwrap(), Some(other));
    }

    #[test]
    fn foreign_file_is_refused_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(CHECKPOINT_FILE);
        std::fs::write(
            &file,
            "this is not a database, but long enough to look at it ".repeat(20),
        )
        .unwrap();
        let err = SqliteCheckpointStore::open(tmp.path()).unwrap_err();
        assert!(
            matches!(err, CheckpointError::NotAStateDatabase { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with(&format!(
                "{} is not a Weir state database (not an SQLite database)",
                file.display()
            )),
            "{err}"
        );

        std::fs::remove_file(&file).unwrap();
        let other = Connection::open(&file).unwrap();
        other
            .execute_batch("CREATE TABLE accounts (id INTEGER)")
            .unwrap();
        drop(other);
        let err = SqliteCheckpointStore::open(tmp.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not a Weir state database (an SQLite database with 1 tables or indexes of its own); point the pipeline's `state_dir` at a directory of its own, or move the file away",
                file.display()
            )
        );
    }

    #[test]
    fn corrupt_file_is_reported_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = SqliteCheckpointStore::open(tmp.path()).unwrap();
        store.save(&checkpoint(1, 1)).unwrap();
        drop(store);
        let file = tmp.path().join(CHECKPOINT_FILE);
        let mut bytes = std::fs::read(&file).unwrap();
        // Keep the 100-byte header; scramble the schema page after it.
        for b in &mut bytes[100..4096] {
            *b = 0xA5;
        }
        std::fs::write(&file, bytes).unwrap();
        let err = SqliteCheckpointStore::open(tmp.path()).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with(&format!(
                "the Weir state database {} is corrupt (",
                file.display()
            )),
            "{err}"
        );
    }
}
