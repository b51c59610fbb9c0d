//! Binlog positions: a file and an offset in it, the MySQL source's resume
//! state, and their order.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use weir_core::PositionOrder;

/// A place in the binlog: the event starting at `pos` in `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
}

impl BinlogPosition {
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
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self.base() != other.base() {
            return None;
        }
        Some((self.sequence()?, self.pos).cmp(&(other.sequence()?, other.pos)))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
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
}
