//! Binlog positions: a file and an offset in it, and the GTID state there
//! where the server has GTIDs; the MySQL source's resume state, and their
//! order.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use weir_core::PositionOrder;

use crate::gtid::GtidSet;
use crate::snapshot::SnapshotState;

/// A place in the binlog: the event starting at `pos` in `file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
    /// The GTID state here (every transaction before `pos`), in the
    /// server's text form; absent where the server has no GTIDs (MySQL
    /// with `gtid_mode = OFF`) or none were logged yet. A restart resumes
    /// by it when present: it holds across a failover to another server,
    /// where file names and offsets differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// How far the initial snapshot got, while it runs; the position is
    /// then the snapshot's, where the stream will start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotState>,
}

impl BinlogPosition {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        BinlogPosition {
            file: file.into(),
            pos,
            gtid: None,
            snapshot: None,
        }
    }

    /// The GTID state, parsed; `None` where there is none.
    pub fn gtid_set(&self) -> Option<GtidSet> {
        let text = self.gtid.as_deref()?;
        // The text tells the flavour apart: MySQL's has colons.
        GtidSet::parse(text, true).filter(|s| !s.is_empty())
    }

    /// The sequence number of the file (`binlog.000042` → 42).
    fn sequence(&self) -> Option<u64> {
        self.file.rsplit_once('.')?.1.parse().ok()
    }

    /// The file name without its sequence number.
    fn base(&self) -> &str {
        self.file.rsplit_once('.').map_or(&self.file, |(b, _)| b)
    }

    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("positions serialize")
    }

    pub fn from_json(json: &Json) -> Option<BinlogPosition> {
        serde_json::from_value(json.clone()).ok()
    }
}

impl PartialOrd for BinlogPosition {
    /// By GTID state where both have one (it holds across servers), by
    /// file and offset otherwise.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if let (Some(a), Some(b)) = (self.gtid_set(), other.gtid_set()) {
            return a.compare(&b);
        }
        if self.base() != other.base() {
            return None;
        }
        Some((self.sequence()?, self.pos).cmp(&(other.sequence()?, other.pos)))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        match &self.gtid {
            Some(gtid) => write!(f, " (GTID {gtid})"),
            None => Ok(()),
        }
    }
}

/// Orders the MySQL source's resume states.
#[derive(Debug, Clone, Copy)]
pub struct BinlogOrder;

impl PositionOrder for BinlogOrder {
    fn compare(&self, a: &Json, b: &Json) -> Option<Ordering> {
        BinlogPosition::from_json(a)?.partial_cmp(&BinlogPosition::from_json(b)?)
    }

    fn describe(&self, position: &Json) -> String {
        match BinlogPosition::from_json(position) {
            Some(p) => format!("binlog {p}"),
            None => position.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn positions_order_by_file_sequence_then_offset() {
        let p = |file: &str, pos| json!({"file": file, "pos": pos});
        let o = BinlogOrder;
        assert_eq!(
            o.compare(&p("binlog.000002", 4), &p("binlog.000001", 9000)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            o.compare(&p("binlog.000010", 4), &p("binlog.000009", 4)),
            Some(Ordering::Greater),
            "by number, not text"
        );
        assert_eq!(
            o.compare(&p("binlog.000002", 100), &p("binlog.000002", 200)),
            Some(Ordering::Less)
        );
        assert_eq!(o.compare(&p("a.000001", 4), &p("b.000001", 4)), None);
        assert_eq!(
            o.describe(&p("binlog.000002", 100)),
            "binlog binlog.000002:100"
        );
    }

    #[test]
    fn positions_with_gtids_order_by_gtid_across_servers() {
        let p = |file: &str, pos, gtid: &str| json!({"file": file, "pos": pos, "gtid": gtid});
        let o = BinlogOrder;
        // After a failover the new server's files start over.
        assert_eq!(
            o.compare(
                &p("binlog.000001", 300, "0-2-11"),
                &p("binlog.000007", 9000, "0-1-10")
            ),
            Some(Ordering::Greater)
        );
        assert_eq!(
            o.compare(
                &p("binlog.000001", 300, "0-1-10"),
                &p("binlog.000001", 300, "0-1-10")
            ),
            Some(Ordering::Equal)
        );
        assert_eq!(
            o.describe(&p("binlog.000002", 100, "0-1-10")),
            "binlog binlog.000002:100 (GTID 0-1-10)"
        );
        let old = json!({"file": "binlog.000002", "pos": 100});
        assert_eq!(
            BinlogPosition::from_json(&old),
            Some(BinlogPosition::new("binlog.000002", 100)),
            "checkpoints from before GTIDs still read"
        );
    }
}
