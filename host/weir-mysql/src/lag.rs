//! How far the server's binlog is ahead of the position the pipeline made
//! durable: the binlog distance in bytes, for `weir_source_lag_bytes` and
//! the status. The binlog stream does not carry the server's end, so a
//! side connection asks `SHOW BINARY LOGS` every heartbeat period.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};
use tokio::sync::watch;
use tracing::debug;
use weir_connect::SourceProgress;

/// Asks for the distance until dropped.
#[derive(Debug)]
pub struct LagWatch(tokio::task::JoinHandle<()>);

impl Drop for LagWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Publishes the binlog distance of the acknowledged position on
/// `progress` every `every`, on a connection of its own made with `opts`.
/// A server that refuses (no `REPLICATION CLIENT`/`BINLOG MONITOR`) or a
/// lost connection only leaves the distance unknown.
pub fn watch(opts: Opts, progress: watch::Sender<SourceProgress>, every: Duration) -> LagWatch {
    LagWatch(tokio::spawn(async move {
        let mut conn: Option<Conn> = None;
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            let acked = progress
                .borrow()
                .acknowledged
                .as_deref()
                .and_then(file_and_pos);
            let Some((file, pos)) = acked else { continue };
            if conn.is_none() {
                conn = Conn::new(opts.clone()).await.ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            let logs: Vec<Row> = match c.query("SHOW BINARY LOGS").await {
                Ok(logs) => logs,
                Err(e) => {
                    debug!(error = %e, "Cannot list the binlog files; the binlog distance is unknown.");
                    conn = None;
                    continue;
                }
            };
            let sizes: Vec<(String, u64)> = logs
                .iter()
                .filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?)))
                .collect();
            let behind = distance(&sizes, &file, pos);
            if progress.borrow().behind_bytes != behind {
                progress.send_modify(|p| p.behind_bytes = behind);
            }
        }
    }))
}

/// The file and offset of a position as the source reports it
/// (`mysql-bin.000004:1234`, maybe followed by ` (GTID …)`).
pub fn file_and_pos(reported: &str) -> Option<(String, u64)> {
    let at = reported.split(" (").next()?;
    let (file, pos) = at.rsplit_once(':')?;
    Some((file.to_owned(), pos.parse().ok()?))
}

/// Bytes from `pos` in `file` to the end of the last binlog file, given
/// each file's size in the server's order; `None` when `file` is not
/// listed (purged, or another server's).
pub fn distance(files: &[(String, u64)], file: &str, pos: u64) -> Option<u64> {
    let at = files.iter().position(|(name, _)| name == file)?;
    Some(
        files[at].1.saturating_sub(pos) + files[at + 1..].iter().map(|(_, size)| size).sum::<u64>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_the_rest_of_the_file_and_every_later_one() {
        let files = [
            ("bin.000001".to_owned(), 1_000),
            ("bin.000002".to_owned(), 500),
            ("bin.000003".to_owned(), 300),
        ];
        assert_eq!(distance(&files, "bin.000002", 200), Some(300 + 300));
        assert_eq!(distance(&files, "bin.000003", 300), Some(0));
        assert_eq!(distance(&files, "bin.000001", 4), Some(996 + 800));
        assert_eq!(distance(&files, "bin.000009", 4), None);
    }

    #[test]
    fn reported_positions_read_back() {
        assert_eq!(
            file_and_pos("mysql-bin.000004:1234 (GTID 0-1-5)"),
            Some(("mysql-bin.000004".to_owned(), 1234))
        );
        assert_eq!(
            file_and_pos("bin.000001:4"),
            Some(("bin.000001".to_owned(), 4))
        );
        assert_eq!(file_and_pos("nonsense"), None);
        // What the source reports is its position's text form.
        let position = crate::position::BinlogPosition {
            file: "mysql-bin.000004".into(),
            pos: 1234,
            gtid: Some("0-1-5".into()),
            snapshot: None,
        };
        assert_eq!(
            file_and_pos(&position.to_string()),
            Some(("mysql-bin.000004".to_owned(), 1234))
        );
    }
}
