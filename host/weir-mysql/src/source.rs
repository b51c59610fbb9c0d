//! The MySQL source: checks the server, then reads the binlog from the
//! checkpoint's position (or the binlog's end on a first start) as a
//! replica would, and hands on whole transactions in commit order.
//!
//! Positions are binlog file and offset. A transaction's events carry the
//! position of their rows event; its last batch carries the position after
//! its commit (`XID`), where a restart resumes. The server keeps no state
//! for the pipeline, so acknowledgements only move the reported progress;
//! binlogs must be kept long enough for a stopped pipeline to catch up
//! (a purged resume point is an operator error).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use mysql_async::binlog::BinlogChecksumAlg;
use mysql_async::binlog::events::{Event, EventData, OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, OptsBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value as Json;
use tracing::{debug, info};
use weir_connect::{Phase, Source, SourceChannels};
use weir_core::{
    ChangeBatch, ChangeEvent, Column as EventColumn, Name, Op, PositionOrder, SourceInfo,
    StageError,
};

use crate::checks;
use crate::error::{ER_MASTER_FATAL_ERROR_READING_BINLOG, ER_SPECIFIC_ACCESS_DENIED, MysqlError};
use crate::gtid::{Gtid, GtidSet};
use crate::position::{BinlogOrder, BinlogPosition};
use crate::rows::Layout;
use crate::snapshot;
use crate::values;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<SecretString>,
}

impl ConnectParams {
    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub(crate) fn opts(&self) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(self.password.as_ref().map(|p| p.expose_secret().to_owned()))
            .prefer_socket(false)
    }
}

/// Run-time settings of a MySQL source (built from the config section by
/// [`crate::MysqlSourceConfig::settings`]).
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub connect: ConnectParams,
    /// Databases captured.
    pub databases: Vec<String>,
    /// `database.table` names captured; empty: every table of `databases`.
    pub tables: Vec<String>,
    /// The replica id to register with.
    pub server_id: u32,
    /// Row changes written under these server ids are not captured:
    /// changes weir's MySQL sinks applied, in active-active replication.
    pub skip_server_ids: Vec<u32>,
    /// The server's heartbeat period on an idle binlog.
    pub heartbeat: Duration,
    /// Copy the captured tables before streaming, on a first start.
    pub snapshot: bool,
    /// Rows per snapshot chunk (one query, one checkpoint).
    pub snapshot_chunk_rows: usize,
    /// A batch is handed on once it holds this many events or
    /// `max_batch_bytes`, even in the middle of a transaction.
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
}

impl SourceSettings {
    /// Whether changes to `database.table` are captured.
    pub fn captures(&self, database: &str, table: &str) -> bool {
        self.databases.iter().any(|d| d == database)
            && (self.tables.is_empty()
                || self
                    .tables
                    .iter()
                    .any(|t| t.split_once('.') == Some((database, table))))
    }
}

/// The MySQL source as the pipeline runs it.
#[derive(Debug)]
pub struct MysqlSource {
    settings: SourceSettings,
}

impl MysqlSource {
    pub fn new(settings: SourceSettings) -> Self {
        MysqlSource { settings }
    }
}

impl Source for MysqlSource {
    fn positions(&self) -> Arc<dyn PositionOrder> {
        Arc::new(BinlogOrder)
    }

    fn run<'a>(
        &'a mut self,
        resume: Json,
        channels: SourceChannels,
    ) -> BoxFuture<'a, Result<(), StageError>> {
        Box::pin(async move {
            run(&self.settings, &resume, channels)
                .await
                .map_err(StageError::from)
        })
    }
}

/// Runs the source until shutdown or an error. `resume` is the source
/// state of the last checkpoint (`Null` on a first start).
pub async fn run(
    settings: &SourceSettings,
    resume: &Json,
    mut channels: SourceChannels,
) -> Result<(), MysqlError> {
    let address = settings.connect.address();
    let resume = if resume.is_null() {
        None
    } else {
        Some(BinlogPosition::from_json(resume).ok_or_else(|| {
            MysqlError::Setup(format!(
                "the checkpoint's source state ({resume}) is not a binlog position; was the state directory used by another pipeline?"
            ))
        })?)
    };
    let mut conn = Conn::new(settings.connect.opts())
        .await
        .map_err(MysqlError::client(&address, "connecting"))?;
    let info = checks::check_server(&mut conn, &address, settings).await?;
    if let Some(position) = &resume
        && position.gtid_set().is_none()
    {
        checks::check_resume(&mut conn, &address, position).await?;
    }
    let snapshot_from = match resume {
        // A snapshot interrupted: it goes on where it stopped.
        Some(position) if position.snapshot.is_some() => Some(Some(position)),
        Some(position) => return stream(conn, settings, &info, position, channels).await,
        None if settings.snapshot => Some(None),
        None => None,
    };
    let start = match snapshot_from {
        Some(resume) => {
            let copied =
                snapshot::copy_tables(&mut conn, &address, settings, &info, resume, &mut channels)
                    .await?;
            match copied {
                Some(point) => point,
                None => {
                    info!(
                        "Shutdown requested during the snapshot; it goes on from its last checkpoint next time."
                    );
                    return finish(channels, None).await;
                }
            }
        }
        None => info.end.clone(),
    };
    stream(conn, settings, &info, start, channels).await
}

/// Streams the binlog from `start` until shutdown or an error.
async fn stream(
    mut conn: Conn,
    settings: &SourceSettings,
    info: &checks::ServerInfo,
    mut start: BinlogPosition,
    mut channels: SourceChannels,
) -> Result<(), MysqlError> {
    let address = settings.connect.address();
    // MariaDB always logs GTIDs: learn the state at a position from before
    // they were kept, so that every later position carries it.
    if info.mariadb && start.gtid.is_none() {
        start.gtid = checks::mariadb_gtid_at(&mut conn, &address, &start).await?;
    }
    let gtids = match start.gtid_set() {
        Some(set) => Some(set),
        None if info.mariadb => Some(GtidSet::empty(true)),
        // MySQL with `gtid_mode = OFF`, or a checkpoint from then.
        None => None,
    };
    info!(server = %address, version = %info.version, from = %start, "Streaming the binlog.");
    // The server sends a heartbeat when the binlog is idle this long, so a
    // dead connection shows.
    conn.query_drop(format!(
        "SET @master_heartbeat_period = {}",
        settings.heartbeat.as_nanos()
    ))
    .await
    .map_err(MysqlError::client(&address, "setting the heartbeat period"))?;
    if info.mariadb {
        // Real GTID events (type 162) in place of `BEGIN` statements.
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(MysqlError::client(&address, "asking for GTID events"))?;
    }
    let mut request = BinlogStreamRequest::new(settings.server_id);
    match gtids.as_ref().filter(|set| !set.is_empty()) {
        // By GTID where there is a state: the server finds where it ends,
        // in whichever file that is on this server.
        Some(set @ GtidSet::Mariadb(_)) => {
            conn.query_drop(format!(
                "SET @slave_connect_state = '{set}', @slave_gtid_strict_mode = 0, \
                 @slave_gtid_ignore_duplicates = 0"
            ))
            .await
            .map_err(MysqlError::client(
                &address,
                "setting the GTID state to resume from",
            ))?;
            request = request.with_pos(4);
        }
        Some(set @ GtidSet::Mysql(_)) => {
            let sids = mysql_sids(set).map_err(|e| {
                MysqlError::Setup(format!(
                    "the checkpoint's GTID set {set} does not read: {e}"
                ))
            })?;
            request = request.with_gtid().with_gtid_set(sids).with_pos(4);
        }
        None => {
            request = request
                .with_filename(start.file.as_bytes())
                .with_pos(start.pos)
        }
    }
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| stream_error(&address, &settings.connect.user, &start, e))?;
    channels.report(|p| {
        p.phase = Phase::Streaming;
        p.acknowledged = Some(start.to_string());
    });
    let _lag = crate::lag::watch(
        settings.connect.opts().into(),
        channels.progress.clone(),
        settings.heartbeat,
    );

    let mut tx = Transaction::new(start.clone(), gtids);
    let mut acked = Some(start.clone());
    loop {
        let next = match stream.next().now_or_never() {
            Some(next) => next,
            None => {
                // Nothing more has arrived: hand on what is whole.
                if let Some(batch) = tx.take_ready() {
                    send(&mut channels, batch).await?;
                    continue;
                }
                tokio::select! {
                    next = stream.next() => next,
                    ack = channels.acks.recv() => {
                        if let Some(ack) = ack { note_ack(&channels, &ack, &mut acked); }
                        continue;
                    }
                    _ = channels.shutdown.changed() => break,
                }
            }
        };
        let event = match next {
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                return Err(stream_error(
                    &address,
                    &settings.connect.user,
                    &tx.resume_point(),
                    e,
                ));
            }
            None => return Err(MysqlError::StreamEnded { address }),
        };
        while let Ok(ack) = channels.acks.try_recv() {
            note_ack(&channels, &ack, &mut acked);
        }
        let header = event.header();
        let at = format!("{}:{}", tx.file, header.log_pos());
        if let Some(sum) = event.checksum()
            && event.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)
                != u32::from_le_bytes(sum)
        {
            return Err(MysqlError::Decode {
                address,
                reason: format!("at {at}: the event's CRC32 checksum does not match its bytes"),
            });
        }
        let decode_err = |e: std::io::Error| MysqlError::Decode {
            address: address.clone(),
            reason: format!("at {at}: {e}"),
        };
        if header.event_type_raw() == MARIADB_GTID_EVENT {
            let (gtid, standalone) = Gtid::mariadb_event(header.server_id(), event.data())
                .ok_or_else(|| MysqlError::Decode {
                    address: address.clone(),
                    reason: format!("at {at}: a GTID event too short to read"),
                })?;
            tx.gtid(gtid, standalone);
            continue;
        }
        // MariaDB's other own events (annotations, checkpoints, GTID lists)
        // come without a type the crate knows; none carries rows.
        if header.event_type().is_err() {
            continue;
        }
        let Some(data) = event.read_data().map_err(decode_err)? else {
            continue;
        };
        let end = u64::from(header.log_pos());
        match data {
            // `end` 0: the server's own note of the file it starts
            // sending from, not a rotation in the binlog.
            EventData::RotateEvent(rotate) => {
                let name = if end == 0 {
                    fake_rotate_name(&event, rotate.name())
                } else {
                    rotate.name().into_owned()
                };
                tx.rotate(name, rotate.position(), end != 0);
            }
            EventData::GtidEvent(gtid) => {
                tx.gtid(Gtid::mysql(gtid.sid(), gtid.gno()), false);
            }
            EventData::TableMapEvent(tme) => {
                tx.note_table(&tme).map_err(|reason| MysqlError::Decode {
                    address: address.clone(),
                    reason: format!("at {at}: {reason}"),
                })?;
            }
            EventData::QueryEvent(query) => {
                let sql = query.query();
                let sql = sql.trim();
                if sql.eq_ignore_ascii_case("BEGIN") {
                    tx.begin();
                } else if sql.eq_ignore_ascii_case("COMMIT") {
                    tx.commit(end, None);
                } else if !tx.in_transaction && end != 0 && !sql.starts_with('#') {
                    // DDL outside a transaction is a transaction of its
                    // own. (Inside one, MariaDB also sends comments in
                    // place of its row annotations: not a boundary.)
                    debug!(statement = %sql, "Statement in the binlog.");
                    tx.commit(end, None);
                }
            }
            EventData::XidEvent(xid) => tx.commit(end, Some(xid.xid)),
            EventData::RowsEvent(rows) => {
                let Some(tme) = stream.get_tme(rows.table_id()) else {
                    return Err(MysqlError::Decode {
                        address: address.clone(),
                        reason: format!(
                            "at {}:{end}: a rows event for table id {} without its table map",
                            tx.file,
                            rows.table_id()
                        ),
                    });
                };
                let database = Name::from(tme.database_name().as_ref());
                let table = Name::from(tme.table_name().as_ref());
                if !settings.captures(&database, &table)
                    || settings.skip_server_ids.contains(&header.server_id())
                {
                    continue;
                }
                let Some(shape) = tx.tables.get(&rows.table_id()).map(Arc::clone) else {
                    return Err(MysqlError::Decode {
                        address: address.clone(),
                        reason: format!("at {at}: table id {} was not described", rows.table_id()),
                    });
                };
                let source = SourceInfo {
                    connector: Name::new_static("mysql"),
                    database: database.clone(),
                    schema: database,
                    table,
                    position: smol_str::format_smolstr!("{}:{end}", tx.file),
                    txid: None,
                    commit_time_us: i64::from(header.timestamp()) * 1_000_000,
                    origin: None,
                    plugins: None,
                };
                let images = shape
                    .layout
                    .rows(&rows)
                    .map_err(|reason| MysqlError::Decode {
                        address: address.clone(),
                        reason: format!("at {}: {reason}", source.position),
                    })?;
                for (before, after) in images {
                    let event = change_event(&source, &shape, before, after).map_err(|reason| {
                        MysqlError::Decode {
                            address: address.clone(),
                            reason: format!("at {}: {reason}", source.position),
                        }
                    })?;
                    tx.push(event);
                    if tx.open_len() >= settings.max_batch_events
                        || tx.open_bytes >= settings.max_batch_bytes
                    {
                        // One transaction fills a batch: what is whole goes
                        // first, then this chunk, without a position.
                        if let Some(batch) = tx.take_ready() {
                            send(&mut channels, batch).await?;
                        }
                        send(&mut channels, tx.take_chunk()).await?;
                    }
                }
            }
            _ => {}
        }
        let full = tx.ready.len() >= settings.max_batch_events
            || tx.ready_bytes >= settings.max_batch_bytes;
        if full && let Some(batch) = tx.take_ready() {
            send(&mut channels, batch).await?;
        }
    }

    drop(stream);
    finish(channels, acked).await
}

/// Shutdown: hands on nothing more and waits for the acknowledgements of
/// what was handed on.
async fn finish(
    mut channels: SourceChannels,
    mut acked: Option<BinlogPosition>,
) -> Result<(), MysqlError> {
    channels.out.close();
    while let Some(ack) = channels.acks.recv().await {
        note_ack(&channels, &ack, &mut acked);
    }
    channels.report(|p| p.phase = Phase::Stopped);
    match acked {
        Some(position) => info!(position = %position, "Source stopped."),
        None => info!("Source stopped."),
    }
    Ok(())
}

/// Hands a batch on; fails when the pipeline has stopped.
async fn send(channels: &mut SourceChannels, batch: ChangeBatch) -> Result<(), MysqlError> {
    channels
        .out
        .send(batch)
        .await
        .map_err(|_| MysqlError::Setup("the pipeline stopped".into()))
}

/// Records an acknowledged position that is past `acked` (or the first
/// one), and publishes it as progress.
fn note_ack(channels: &SourceChannels, ack: &Json, acked: &mut Option<BinlogPosition>) {
    let Some(position) = BinlogPosition::from_json(ack) else {
        return;
    };
    let later = acked
        .as_ref()
        .is_none_or(|a| position.partial_cmp(a) == Some(std::cmp::Ordering::Greater));
    if later {
        channels.report(|p| p.acknowledged = Some(position.to_string()));
        *acked = Some(position);
    }
}

/// The file name in the server's first rotate event. It comes before the
/// format description that says checksums are on, so the crate leaves the
/// checksum on the end of the name: cut it off where it is one. (The event:
/// position, 8 bytes, then the name.)
fn fake_rotate_name(event: &Event, name: Cow<'_, str>) -> String {
    let data = event.data();
    let Some(split) = data.len().checked_sub(4).filter(|s| *s >= 8) else {
        return name.into_owned();
    };
    let header = event.header();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header.timestamp().to_le_bytes());
    hasher.update(&[header.event_type_raw()]);
    hasher.update(&header.server_id().to_le_bytes());
    hasher.update(&header.event_size().to_le_bytes());
    hasher.update(&header.log_pos().to_le_bytes());
    hasher.update(&header.flags_raw().to_le_bytes());
    hasher.update(&data[..split]);
    let sum = u32::from_le_bytes(data[split..].try_into().expect("four bytes"));
    if hasher.finalize() == sum {
        String::from_utf8_lossy(&data[8..split]).into_owned()
    } else {
        name.into_owned()
    }
}

/// MariaDB's GTID event, which the crate does not know.
const MARIADB_GTID_EVENT: u8 = 162;

/// A MySQL GTID set as the crate sends it in `COM_BINLOG_DUMP_GTID`: one
/// `Sid` per source uuid.
fn mysql_sids(set: &GtidSet) -> std::io::Result<Vec<mysql_async::Sid<'static>>> {
    let GtidSet::Mysql(sources) = set else {
        return Ok(Vec::new());
    };
    sources
        .iter()
        .map(|(uuid, intervals)| {
            let one = std::collections::BTreeMap::from([(uuid.clone(), intervals.clone())]);
            GtidSet::Mysql(one).to_string().parse()
        })
        .collect()
}

/// A replication error, with the fix where the server said what is wrong.
fn stream_error(
    address: &str,
    user: &str,
    at: &BinlogPosition,
    e: mysql_async::Error,
) -> MysqlError {
    match &e {
        mysql_async::Error::Server(s) if s.code == ER_MASTER_FATAL_ERROR_READING_BINLOG => {
            debug!(error = %s.message, "The server cannot read the binlog at the resume point.");
            checks::purged(address, at)
        }
        mysql_async::Error::Server(s) if s.code == ER_SPECIFIC_ACCESS_DENIED => {
            MysqlError::Setup(format!(
                "user `{user}` may not read the binlog on MySQL at {address}: run GRANT REPLICATION SLAVE ON *.* TO '{user}'@'%'"
            ))
        }
        _ => MysqlError::client(address, "reading the binlog")(e),
    }
}

/// One change event from a row's before and after images.
fn change_event(
    source: &SourceInfo,
    shape: &TableShape,
    before: Option<Vec<EventColumn>>,
    after: Option<Vec<EventColumn>>,
) -> Result<ChangeEvent, String> {
    let op = match (&before, &after) {
        (None, Some(_)) => Op::Create,
        (Some(_), Some(_)) => Op::Update,
        (Some(_), None) => Op::Delete,
        (None, None) => return Err("a row with neither image".to_owned()),
    };
    // The key from the image that identifies the row as it was (delete,
    // update) or is (insert); without a primary key, the whole row. The
    // images are full (`binlog_row_image = FULL`): column `i` of the image
    // is column `i` of the table.
    let identity = before.as_ref().or(after.as_ref()).expect("checked above");
    let key = if shape.key.is_empty() {
        identity.clone()
    } else {
        shape
            .key
            .iter()
            .filter_map(|i| identity.get(*i).cloned())
            .collect()
    };
    Ok(ChangeEvent {
        op,
        source: source.clone(),
        key,
        before,
        after,
    })
}

/// What the table map tells about a table: its columns and its key.
#[derive(Debug, Clone)]
struct TableShape {
    /// The primary key's column indexes, in key order.
    key: Vec<usize>,
    /// How to read its row images.
    layout: Layout,
}

impl TableShape {
    fn of(tme: &TableMapEvent<'_>) -> Result<TableShape, String> {
        let mut labels: HashMap<usize, values::Labels> = HashMap::new();
        let columns_of = |ty: ColumnType| -> Vec<usize> {
            (0..tme.columns_count() as usize)
                .filter(|i| matches!(tme.get_column_type(*i), Ok(Some(t)) if t == ty))
                .collect()
        };
        let mut key = Vec::new();
        for field in tme.iter_optional_meta().flatten() {
            match field {
                OptionalMetadataField::SimplePrimaryKey(k) => {
                    key.extend(k.iter_indexes().flatten().map(|i| i as usize));
                }
                OptionalMetadataField::PrimaryKeyWithPrefix(k) => {
                    key.extend(k.iter_keys().flatten().map(|k| k.column_index() as usize));
                }
                OptionalMetadataField::EnumStrValue(v) => {
                    let columns = columns_of(ColumnType::MYSQL_TYPE_ENUM);
                    for (i, names) in columns.into_iter().zip(v.iter_values().flatten()) {
                        let values = names.values().iter().map(|l| l.value().into_owned());
                        labels.insert(i, values::Labels::Enum(values.collect()));
                    }
                }
                OptionalMetadataField::SetStrValue(v) => {
                    let columns = columns_of(ColumnType::MYSQL_TYPE_SET);
                    for (i, names) in columns.into_iter().zip(v.iter_values().flatten()) {
                        let values = names.values().iter().map(|l| l.value().into_owned());
                        labels.insert(i, values::Labels::Set(values.collect()));
                    }
                }
                _ => {}
            }
        }
        let layout = Layout::of(tme, |i| labels.remove(&i))?;
        Ok(TableShape { key, layout })
    }
}

/// Rows events gathered into transactions, and whole transactions ready
/// to hand on.
struct Transaction {
    /// The binlog file being read.
    file: String,
    /// Between a `BEGIN` and its commit.
    in_transaction: bool,
    /// Events of the open transaction.
    open: Vec<ChangeEvent>,
    open_bytes: usize,
    /// Events of committed transactions not yet handed on.
    ready: Vec<ChangeEvent>,
    ready_bytes: usize,
    /// The position after the last commit in `ready`.
    ready_resume: Option<BinlogPosition>,
    /// The position after the last commit seen.
    committed: BinlogPosition,
    /// Keys and layouts by table id, from the table maps.
    tables: HashMap<u64, Arc<TableShape>>,
    /// The GTID state after the last commit, where the server has GTIDs.
    gtids: Option<GtidSet>,
    /// The open transaction's GTID.
    pending_gtid: Option<Gtid>,
}

impl Transaction {
    fn new(start: BinlogPosition, gtids: Option<GtidSet>) -> Self {
        Transaction {
            file: start.file.clone(),
            committed: start,
            gtids,
            pending_gtid: None,
            in_transaction: false,
            open: Vec::new(),
            open_bytes: 0,
            ready: Vec::new(),
            ready_bytes: 0,
            ready_resume: None,
            tables: HashMap::new(),
        }
    }

    fn note_table(&mut self, tme: &TableMapEvent<'_>) -> Result<(), String> {
        self.tables
            .insert(tme.table_id(), Arc::new(TableShape::of(tme)?));
        Ok(())
    }

    /// A rotation to `file` (`real`), or the server naming the file it
    /// starts sending from.
    fn rotate(&mut self, file: String, pos: u64, real: bool) {
        self.file = file;
        if !real {
            return;
        }
        self.tables.clear();
        if self.open.is_empty() {
            // Nothing in between: a restart may start in the new file.
            self.committed.file = self.file.clone();
            self.committed.pos = pos;
        }
    }

    fn begin(&mut self) {
        self.in_transaction = true;
    }

    /// The GTID of the transaction that follows; a standalone one (DDL)
    /// has no `BEGIN` and no commit event, its statement is all of it.
    fn gtid(&mut self, gtid: Gtid, standalone: bool) {
        self.pending_gtid = Some(gtid);
        if !standalone {
            self.begin();
        }
    }

    fn push(&mut self, event: ChangeEvent) {
        self.open_bytes += event.approx_bytes();
        self.open.push(event);
    }

    fn open_len(&self) -> usize {
        self.open.len()
    }

    /// Ends the open transaction at `end` in the current file.
    fn commit(&mut self, end: u64, xid: Option<u64>) {
        self.in_transaction = false;
        let txid = xid.map(|x| smol_str::format_smolstr!("{x}"));
        for mut e in self.open.drain(..) {
            e.source.txid.clone_from(&txid);
            self.ready.push(e);
        }
        self.ready_bytes += self.open_bytes;
        self.open_bytes = 0;
        let gtid = self.pending_gtid.take();
        if let (Some(set), Some(gtid)) = (&mut self.gtids, gtid) {
            set.add(&gtid);
        }
        self.committed = BinlogPosition {
            file: self.file.clone(),
            pos: end,
            gtid: self
                .gtids
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string()),
            snapshot: None,
        };
        self.ready_resume = Some(self.committed.clone());
    }

    /// Where a restart would resume now.
    fn resume_point(&self) -> BinlogPosition {
        self.committed.clone()
    }

    /// The whole transactions gathered, as one batch.
    fn take_ready(&mut self) -> Option<ChangeBatch> {
        let resume = self.ready_resume.take()?;
        let events = std::mem::take(&mut self.ready);
        let bytes = std::mem::take(&mut self.ready_bytes);
        Some(ChangeBatch {
            events,
            resume: Some(resume.to_json()),
            bytes,
        })
    }

    /// The open transaction's events so far, as a batch without a
    /// position (only its last chunk carries one).
    fn take_chunk(&mut self) -> ChangeBatch {
        let events = std::mem::take(&mut self.open);
        let bytes = std::mem::take(&mut self.open_bytes);
        ChangeBatch {
            events,
            resume: None,
            bytes,
        }
    }
}
