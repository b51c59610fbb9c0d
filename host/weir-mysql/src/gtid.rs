//! Global transaction ids, the resume state that survives a failover:
//! binlog file names and offsets differ from server to server, GTIDs do not.
//!
//! MariaDB numbers transactions `domain-server-seq` and a replica's state
//! is the last GTID per replication domain (`0-1-42,1-2-7`). MySQL numbers
//! them `uuid:gno` and a replica's state is the set of every transaction
//! executed, as intervals per source uuid (`3e11fa47-…:1-42:50-51`).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// One transaction's id, from its GTID event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gtid {
    Mariadb { domain: u32, server: u32, seq: u64 },
    Mysql { uuid: String, gno: u64 },
}

/// Flag of MariaDB's GTID event: the group is one statement with no
/// `COMMIT`/`XID` after it (DDL, or a non-transactional table).
const FL_STANDALONE: u8 = 1;

impl Gtid {
    /// Reads MariaDB's GTID event (type 162; the crate does not know it):
    /// `seq_no` (8 bytes), `domain_id` (4), flags (1), little-endian, with
    /// the server id from the event header. Returns the GTID and whether
    /// the group stands alone (no `BEGIN` … commit around it).
    pub fn mariadb_event(server: u32, data: &[u8]) -> Option<(Gtid, bool)> {
        let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
        let flags = *data.get(12)?;
        Some((
            Gtid::Mariadb {
                domain,
                server,
                seq,
            },
            flags & FL_STANDALONE != 0,
        ))
    }

    /// MySQL's GTID event, from its 16-byte source id and number.
    pub fn mysql(sid: [u8; 16], gno: u64) -> Gtid {
        let h: String = sid.iter().map(|b| format!("{b:02x}")).collect();
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        );
        Gtid::Mysql { uuid, gno }
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::Mariadb {
                domain,
                server,
                seq,
            } => write!(f, "{domain}-{server}-{seq}"),
            Gtid::Mysql { uuid, gno } => write!(f, "{uuid}:{gno}"),
        }
    }
}

/// The transactions read so far, as GTIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidSet {
    /// The last transaction per replication domain: `(server, seq)`.
    Mariadb(BTreeMap<u32, (u32, u64)>),
    /// Every transaction per source uuid, as sorted, disjoint, inclusive
    /// intervals of numbers.
    Mysql(BTreeMap<String, Vec<(u64, u64)>>),
}

impl GtidSet {
    /// An empty set for a MariaDB server (`true`) or a MySQL one.
    pub fn empty(mariadb: bool) -> GtidSet {
        if mariadb {
            GtidSet::Mariadb(BTreeMap::new())
        } else {
            GtidSet::Mysql(BTreeMap::new())
        }
    }

    /// Parses a server's text form (`@@gtid_binlog_pos`,
    /// `BINLOG_GTID_POS()`, `@@gtid_executed`, or [`fmt::Display`]'s).
    /// The flavour shows in the text: MySQL's has a uuid and a colon. An
    /// empty text is an empty set of the given flavour. `None`: not a GTID
    /// set weir can keep (MySQL 8.3's tagged GTIDs among them).
    pub fn parse(text: &str, mariadb: bool) -> Option<GtidSet> {
        let parts = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>();
        let mut set = GtidSet::empty(mariadb && !text.contains(':'));
        for part in parts {
            match &mut set {
                GtidSet::Mariadb(domains) => {
                    let mut numbers = part.splitn(3, '-');
                    let domain = numbers.next()?.parse().ok()?;
                    let server = numbers.next()?.parse().ok()?;
                    let seq = numbers.next()?.parse().ok()?;
                    domains.insert(domain, (server, seq));
                }
                GtidSet::Mysql(sources) => {
                    let mut pieces = part.split(':');
                    let uuid = pieces.next()?.to_ascii_lowercase();
                    if uuid.len() != 36 {
                        return None;
                    }
                    let intervals = sources.entry(uuid).or_default();
                    for piece in pieces {
                        let (a, b) = piece.split_once('-').unwrap_or((piece, piece));
                        let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                        if a == 0 || b < a {
                            return None;
                        }
                        intervals.push((a, b));
                        merge(intervals);
                    }
                }
            }
        }
        Some(set)
    }

    /// Whether nothing has been read.
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::Mariadb(d) => d.is_empty(),
            GtidSet::Mysql(s) => s.is_empty(),
        }
    }

    /// Adds a committed transaction. A GTID of the other flavour is
    /// ignored (it cannot come from the same server).
    pub fn add(&mut self, gtid: &Gtid) {
        match (self, gtid) {
            (
                GtidSet::Mariadb(domains),
                Gtid::Mariadb {
                    domain,
                    server,
                    seq,
                },
            ) => {
                domains.insert(*domain, (*server, *seq));
            }
            (GtidSet::Mysql(sources), Gtid::Mysql { uuid, gno }) => {
                insert(sources.entry(uuid.clone()).or_default(), *gno);
            }
            _ => {}
        }
    }

    /// `Less` when every transaction of `self` is in `other` and `other`
    /// has more; `None` when each has some the other lacks, or the
    /// flavours differ.
    pub fn compare(&self, other: &GtidSet) -> Option<Ordering> {
        let (le, ge) = match (self, other) {
            (GtidSet::Mariadb(a), GtidSet::Mariadb(b)) => {
                let seq = |m: &BTreeMap<u32, (u32, u64)>, d| m.get(d).map_or(0, |(_, s)| *s);
                let domains = a.keys().chain(b.keys());
                let (mut le, mut ge) = (true, true);
                for d in domains {
                    le &= seq(a, d) <= seq(b, d);
                    ge &= seq(a, d) >= seq(b, d);
                }
                (le, ge)
            }
            (GtidSet::Mysql(a), GtidSet::Mysql(b)) => (contains(b, a), contains(a, b)),
            _ => return None,
        };
        match (le, ge) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            (false, false) => None,
        }
    }
}

/// Adds `gno` to sorted disjoint inclusive intervals.
fn insert(intervals: &mut Vec<(u64, u64)>, gno: u64) {
    let at = intervals.partition_point(|(_, end)| *end < gno);
    if intervals.get(at).is_some_and(|(start, _)| *start <= gno) {
        return;
    }
    intervals.insert(at, (gno, gno));
    merge(intervals);
}

/// Joins intervals that touch or overlap (`1-3`, `4-6` → `1-6`).
fn merge(intervals: &mut Vec<(u64, u64)>) {
    intervals.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
    for &(start, end) in intervals.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *intervals = merged;
}

/// Whether every interval of `small` lies inside one of `big`.
fn contains(
    big: &BTreeMap<String, Vec<(u64, u64)>>,
    small: &BTreeMap<String, Vec<(u64, u64)>>,
) -> bool {
    small.iter().all(|(uuid, intervals)| {
        let held = big.get(uuid).map_or(&[][..], Vec::as_slice);
        intervals
            .iter()
            .all(|(s, e)| held.iter().any(|(hs, he)| hs <= s && e <= he))
    })
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "," };
            first = false;
            f.write_str(s)
        };
        match self {
            GtidSet::Mariadb(domains) => {
                for (domain, (server, seq)) in domains {
                    sep(f)?;
                    write!(f, "{domain}-{server}-{seq}")?;
                }
            }
            GtidSet::Mysql(sources) => {
                for (uuid, intervals) in sources {
                    sep(f)?;
                    f.write_str(uuid)?;
                    for (start, end) in intervals {
                        if start == end {
                            write!(f, ":{start}")?;
                        } else {
                            write!(f, ":{start}-{end}")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn mariadb_state_keeps_the_last_gtid_per_domain() {
        let mut set = GtidSet::parse("0-1-42, 1-2-7", true).unwrap();
        set.add(&Gtid::Mariadb {
            domain: 0,
            server: 3,
            seq: 43,
        });
        set.add(&Gtid::Mariadb {
            domain: 5,
            server: 1,
            seq: 1,
        });
        assert_eq!(set.to_string(), "0-3-43,1-2-7,5-1-1");
        assert_eq!(GtidSet::parse(&set.to_string(), true), Some(set.clone()));
        let earlier = GtidSet::parse("0-1-42,1-2-7", true).unwrap();
        assert_eq!(earlier.compare(&set), Some(Ordering::Less));
        assert_eq!(set.compare(&earlier), Some(Ordering::Greater));
        assert_eq!(set.compare(&set), Some(Ordering::Equal));
        let other = GtidSet::parse("0-1-50", true).unwrap();
        assert_eq!(
            other.compare(&set),
            None,
            "ahead in one domain, behind in another"
        );
        assert!(GtidSet::parse("", true).unwrap().is_empty());
        assert_eq!(GtidSet::parse("0-1", true), None);
    }

    #[test]
    fn mysql_state_keeps_every_transaction_as_intervals() {
        let mut set = GtidSet::parse(&format!("{UUID}:1-3:7"), false).unwrap();
        for gno in [4, 5, 6, 9] {
            set.add(&Gtid::Mysql {
                uuid: UUID.into(),
                gno,
            });
        }
        assert_eq!(set.to_string(), format!("{UUID}:1-7:9"));
        let reread = GtidSet::parse(&format!("{}\n", set), true).unwrap();
        assert_eq!(
            reread, set,
            "the colon says MySQL, whatever the caller guessed"
        );
        let before = GtidSet::parse(&format!("{UUID}:1-5"), false).unwrap();
        assert_eq!(before.compare(&set), Some(Ordering::Less));
        let gap = GtidSet::parse(&format!("{UUID}:8"), false).unwrap();
        assert_eq!(gap.compare(&set), None);
        assert_eq!(
            GtidSet::parse(&format!("{UUID}:tag:1-5"), false),
            None,
            "tagged GTIDs are not kept"
        );
        let sid = [
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ];
        assert_eq!(Gtid::mysql(sid, 9).to_string(), format!("{UUID}:9"));
    }

    #[test]
    fn a_mariadb_gtid_event_is_read_from_its_bytes() {
        let mut data = 42u64.to_le_bytes().to_vec();
        data.extend(3u32.to_le_bytes());
        data.push(FL_STANDALONE | 32);
        let (gtid, standalone) = Gtid::mariadb_event(1, &data).unwrap();
        assert_eq!(gtid.to_string(), "3-1-42");
        assert!(standalone);
        data[12] = 4;
        assert!(!Gtid::mariadb_event(1, &data).unwrap().1);
        assert_eq!(Gtid::mariadb_event(1, &data[..10]), None, "a short event");
    }
}
