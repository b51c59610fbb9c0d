//! The order of row versions: which of two changes is the later one, and
//! which origin ranks higher.
//!
//! Every comparison here is a total order over the version metadata alone,
//! so that two regions applying each other's changes reach the same
//! decision from opposite sides and converge.

use std::cmp::Ordering;

use weir_plugin_sdk::{SourceInfo, VersionMeta};

/// The metadata that orders a row version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    pub commit_time_us: i64,
    pub origin: Option<&'a str>,
    pub txid: Option<&'a str>,
}

impl<'a> Version<'a> {
    pub fn of_local(meta: &'a VersionMeta) -> Self {
        Version {
            commit_time_us: meta.commit_time_us,
            origin: meta.origin.as_deref(),
            txid: meta.txid.as_deref(),
        }
    }

    pub fn of_incoming(source: &'a SourceInfo) -> Self {
        Version {
            commit_time_us: source.commit_time_us,
            origin: source.origin.as_deref(),
            txid: source.txid.as_deref(),
        }
    }
}

/// Last-writer-wins order: commit time, then origin (none first, then by
/// bytes), then transaction id (none first; see [`cmp_txid`]).
pub fn cmp_last_writer(a: Version<'_>, b: Version<'_>) -> Ordering {
    a.commit_time_us
        .cmp(&b.commit_time_us)
        .then_with(|| a.origin.cmp(&b.origin))
        .then_with(|| match (a.txid, b.txid) {
            (Some(x), Some(y)) => cmp_txid(x, y),
            (x, y) => x.cmp(&y),
        })
}

/// Transaction ids: decimal ones (PostgreSQL xids) by numeric value and
/// before all others, the others (MySQL GTIDs) by bytes. Spellings of one
/// number (`007`, `7`) fall back to bytes so the order stays total.
pub fn cmp_txid(a: &str, b: &str) -> Ordering {
    fn digits(s: &str) -> Option<&str> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| {
            let trimmed = s.trim_start_matches('0');
            if trimmed.is_empty() { "0" } else { trimmed }
        })
    }
    match (digits(a), digits(b)) {
        (Some(x), Some(y)) => x
            .len()
            .cmp(&y.len())
            .then_with(|| x.cmp(y))
            .then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The rank of `origin` in `priority`: its index, or `priority.len()` for
/// unknown origins and changes without one. Lower ranks win.
pub fn rank(priority: &[String], origin: Option<&str>) -> usize {
    origin
        .and_then(|o| priority.iter().position(|p| p == o))
        .unwrap_or(priority.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: i64, origin: Option<&'static str>, txid: Option<&'static str>) -> Version<'static> {
        Version {
            commit_time_us: t,
            origin,
            txid,
        }
    }

    #[test]
    fn commit_time_decides_first() {
        assert_eq!(
            cmp_last_writer(v(2, None, None), v(1, Some("z"), Some("9"))),
            Ordering::Greater
        );
    }

    #[test]
    fn ties_break_on_origin_then_txid() {
        assert_eq!(
            cmp_last_writer(v(1, None, None), v(1, Some("a"), None)),
            Ordering::Less
        );
        assert_eq!(
            cmp_last_writer(v(1, Some("eu"), None), v(1, Some("us"), None)),
            Ordering::Less
        );
        assert_eq!(
            cmp_last_writer(v(1, Some("eu"), None), v(1, Some("eu"), Some("1"))),
            Ordering::Less
        );
        assert_eq!(
            cmp_last_writer(v(1, Some("eu"), Some("10")), v(1, Some("eu"), Some("9"))),
            Ordering::Greater
        );
        assert_eq!(
            cmp_last_writer(v(1, Some("eu"), Some("5")), v(1, Some("eu"), Some("5"))),
            Ordering::Equal
        );
    }

    #[test]
    fn txids_order_totally() {
        let mut ids = ["uuid:2", "10", "9", "007", "7", "uuid:10", "0", "10a"];
        ids.sort_by(|a, b| cmp_txid(a, b));
        assert_eq!(
            ids,
            ["0", "007", "7", "9", "10", "10a", "uuid:10", "uuid:2"]
        );
        for a in ids {
            for b in ids {
                assert_eq!(cmp_txid(a, b), cmp_txid(b, a).reverse(), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn unknown_origins_rank_last() {
        let priority = ["us-east".to_owned(), "eu-west".to_owned()];
        assert_eq!(rank(&priority, Some("us-east")), 0);
        assert_eq!(rank(&priority, Some("eu-west")), 1);
        assert_eq!(rank(&priority, Some("ap-south")), 2);
        assert_eq!(rank(&priority, None), 2);
    }
}
