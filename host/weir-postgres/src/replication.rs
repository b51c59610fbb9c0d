//! A replication-protocol connection: the part of the PostgreSQL wire
//! protocol that tokio-postgres does not speak.
//!
//! It opens a `replication=database` session, authenticates (trust,
//! cleartext, MD5, SCRAM-SHA-256), runs replication commands
//! (`IDENTIFY_SYSTEM`, `CREATE_REPLICATION_SLOT`) and then enters CopyBoth
//! mode with `START_REPLICATION`, where it reads `XLogData` and keepalive
//! messages and sends standby status updates. Message framing and
//! authentication come from `postgres-protocol`, the crate tokio-postgres is
//! built on; see `docs/decisions/0007-replication-transport.md`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::{backend, frontend};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::{PgError, ServerError};
use crate::gather::{self, Gather};
use crate::lsn::Lsn;
use crate::types::PG_EPOCH_US;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    /// A host name, an IP address, or a directory holding the server's Unix
    /// socket (starts with `/`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<SecretString>,
    pub database: String,
    /// Shown in `pg_stat_activity` and `pg_stat_replication`.
    pub application_name: String,
}

impl ConnectParams {
    /// A tokio-postgres config for ordinary SQL on the same server.
    pub fn sql_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name(&self.application_name)
            .connect_timeout(Duration::from_secs(10))
            .options("-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3");
        if let Some(password) = &self.password {
            config.password(password.expose_secret());
        }
        config
    }

    /// `host:port` (or the socket path), for error messages.
    pub fn address(&self) -> String {
        if self.host.starts_with('/') {
            format!("{}/.s.PGSQL.{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A slot created by [`ReplicationConnection::create_slot`].
#[derive(Debug, Clone)]
pub struct CreatedSlot {
    /// Streaming from here follows the exported snapshot with no gap and no
    /// overlap.
    pub consistent_point: Lsn,
    /// The exported snapshot, valid until this connection runs another
    /// command.
    pub snapshot_name: Option<String>,
}

/// A message from the server while streaming.
#[derive(Debug)]
pub enum ReplicationMessage {
    /// WAL data: one pgoutput message.
    XLogData {
        wal_start: Lsn,
        wal_end: Lsn,
        data: Bytes,
    },
    /// The server is alive; `wal_end` is how far it has sent.
    Keepalive { wal_end: Lsn, reply_requested: bool },
}

/// One replication-protocol session.
pub struct ReplicationConnection {
    stream: Box<dyn Stream>,
    /// The low-water mark of `stream` when it is TCP: raised while changes
    /// stream in densely (module [`crate::gather`]).
    gather: Option<Gather>,
    read: BytesMut,
    write: BytesMut,
    address: String,
    streaming: bool,
}

impl std::fmt::Debug for ReplicationConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationConnection")
            .field("address", &self.address)
            .field("streaming", &self.streaming)
            .finish()
    }
}

impl ReplicationConnection {
    /// Connects and authenticates a `replication=database` session.
    pub async fn connect(params: &ConnectParams) -> Result<Self, PgError> {
        let address = params.address();
        let io_err = |source: std::io::Error| PgError::Connect {
            address: params.address(),
            source,
        };
        let mut gather = None;
        let stream: Box<dyn Stream> = if params.host.starts_with('/') {
            Box::new(
                tokio::net::UnixStream::connect(&address)
                    .await
                    .map_err(io_err)?,
            )
        } else {
            let tcp = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::TcpStream::connect((params.host.as_str(), params.port)),
            )
            .await
            .map_err(|_| {
                io_err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer within 10 s",
                ))
            })?
            .map_err(io_err)?;
            tcp.set_nodelay(true).map_err(io_err)?;
            gather = Gather::new(&tcp);
            Box::new(tcp)
        };
        let mut conn = ReplicationConnection {
            stream,
            gather,
            read: BytesMut::with_capacity(64 * 1024),
            write: BytesMut::with_capacity(1024),
            address,
            streaming: false,
        };
        conn.startup(params).await?;
        Ok(conn)
    }

    async fn startup(&mut self, params: &ConnectParams) -> Result<(), PgError> {
        frontend::startup_message(
            [
                ("user", params.user.as_str()),
                ("database", params.database.as_str()),
                ("replication", "database"),
                ("application_name", params.application_name.as_str()),
                // pgoutput renders values in the walsender's session
                // settings; pin the ones the type decoder relies on.
                (
                    "options",
                    "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3 -c bytea_output=hex",
                ),
                ("client_encoding", "UTF8"),
            ],
            &mut self.write,
        )
        .map_err(|e| self.protocol(e))?;
        self.send().await?;
        let password = || -> Result<&[u8], PgError> {
            params
                .password
                .as_ref()
                .map(|p| p.expose_secret().as_bytes())
                .ok_or_else(|| PgError::Auth {
                    user: params.user.clone(),
                    reason: "the server asks for a password and none is configured".into(),
                })
        };
        loop {
            match self.recv().await? {
                backend::Message::AuthenticationOk => {}
                backend::Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?, &mut self.write)
                        .map_err(|e| self.protocol(e))?;
                    self.send().await?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let hash = postgres_protocol::authentication::md5_hash(
                        params.user.as_bytes(),
                        password()?,
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.write)
                        .map_err(|e| self.protocol(e))?;
                    self.send().await?;
                }
                backend::Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut scram = false;
                    while let Some(m) = mechanisms.next().map_err(|e| self.protocol(e))? {
                        scram |= m == SCRAM_SHA_256;
                    }
                    if !scram {
                        return Err(PgError::Auth {
                            user: params.user.clone(),
                            reason: "the server offers no SASL mechanism weir supports \
                                     (SCRAM-SHA-256)"
                                .into(),
                        });
                    }
                    let mut scram = ScramSha256::new(password()?, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(
                        SCRAM_SHA_256,
                        scram.message(),
                        &mut self.write,
                    )
                    .map_err(|e| self.protocol(e))?;
                    self.send().await?;
                    match self.recv().await? {
                        backend::Message::AuthenticationSaslContinue(body) => {
                            scram.update(body.data()).map_err(|e| self.protocol(e))?;
                        }
                        _ => return Err(self.unexpected("SASL continue")),
                    }
                    frontend::sasl_response(scram.message(), &mut self.write)
                        .map_err(|e| self.protocol(e))?;
                    self.send().await?;
                    match self.recv().await? {
                        backend::Message::AuthenticationSaslFinal(body) => {
                            scram.finish(body.data()).map_err(|e| self.protocol(e))?;
                        }
                        _ => return Err(self.unexpected("SASL final")),
                    }
                }
                backend::Message::ParameterStatus(_) | backend::Message::BackendKeyData(_) => {}
                backend::Message::ReadyForQuery(_) => return Ok(()),
                _ => return Err(self.unexpected("authentication")),
            }
        }
    }

    /// Runs a replication command or simple query and returns its rows as
    /// text.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, PgError> {
        frontend::query(sql, &mut self.write).map_err(|e| self.protocol(e))?;
        self.send().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            match self.recv_or_error().await? {
                Ok(backend::Message::DataRow(row)) => {
                    let buf = row.buffer();
                    let mut ranges = row.ranges();
                    let mut values = Vec::new();
                    while let Some(range) = ranges.next().map_err(|e| self.protocol(e))? {
                        values.push(range.map(|r| String::from_utf8_lossy(&buf[r]).into_owned()));
                    }
                    rows.push(values);
                }
                Ok(backend::Message::ReadyForQuery(_)) => break,
                Ok(_) => {}
                Err(e) => error = Some(e),
            }
        }
        match error {
            Some(e) => Err(PgError::Server {
                context: format!("running `{}`", first_words(sql)),
                error: e,
            }),
            None => Ok(rows),
        }
    }

    /// Creates a logical slot for pgoutput; with `export_snapshot`, the
    /// returned snapshot lets other sessions read the database exactly as of
    /// the slot's consistent point.
    pub async fn create_slot(
        &mut self,
        slot: &str,
        export_snapshot: bool,
    ) -> Result<CreatedSlot, PgError> {
        let sql = format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {}",
            quote_ident(slot),
            if export_snapshot {
                "EXPORT_SNAPSHOT"
            } else {
                "NOEXPORT_SNAPSHOT"
            }
        );
        let rows = self.simple_query(&sql).await?;
        let row = rows
            .first()
            .ok_or_else(|| self.unexpected("slot creation"))?;
        let consistent_point = row
            .get(1)
            .cloned()
            .flatten()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.unexpected("slot creation"))?;
        Ok(CreatedSlot {
            consistent_point,
            snapshot_name: row.get(2).cloned().flatten(),
        })
    }

    /// Enters streaming mode from `start` with pgoutput options.
    pub async fn start_replication(
        &mut self,
        slot: &str,
        start: Lsn,
        publication: &str,
        streaming: bool,
    ) -> Result<(), PgError> {
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {} (\"proto_version\" '{}', \"publication_names\" {}{})",
            quote_ident(slot),
            start,
            if streaming { 2 } else { 1 },
            quote_literal(&quote_ident(publication)),
            if streaming {
                ", \"streaming\" 'on'"
            } else {
                ""
            }
        );
        frontend::query(&sql, &mut self.write).map_err(|e| self.protocol(e))?;
        self.send().await?;
        loop {
            // CopyBothResponse ('W') is not among the messages
            // postgres-protocol parses: recognise it from the raw header.
            if let Some(len) = self.peek_tag(b'W').await? {
                self.read.advance(len);
                self.streaming = true;
                return Ok(());
            }
            match self.recv_or_error().await? {
                Ok(backend::Message::NoticeResponse(_)) => {}
                Ok(_) => return Err(self.unexpected("START_REPLICATION")),
                Err(error) => {
                    return Err(PgError::Server {
                        context: format!("starting replication from slot {slot}"),
                        error,
                    });
                }
            }
        }
    }

    /// The next streaming message. Cancel-safe: dropping the future loses
    /// nothing, so it can sit in a `select!` beside other work.
    pub async fn next_message(&mut self) -> Result<ReplicationMessage, PgError> {
        loop {
            let msg = match self.recv_or_error().await? {
                Ok(msg) => msg,
                Err(error) => {
                    return Err(PgError::Server {
                        context: "streaming changes".into(),
                        error,
                    });
                }
            };
            match msg {
                backend::Message::CopyData(body) => {
                    let mut data = body.into_bytes();
                    if data.is_empty() {
                        return Err(self.unexpected("CopyData"));
                    }
                    match data.get_u8() {
                        b'w' if data.len() >= 24 => {
                            let wal_start = Lsn(data.get_u64());
                            let wal_end = Lsn(data.get_u64());
                            let _send_time = data.get_i64();
                            return Ok(ReplicationMessage::XLogData {
                                wal_start,
                                wal_end,
                                data,
                            });
                        }
                        b'k' if data.len() >= 17 => {
                            let wal_end = Lsn(data.get_u64());
                            let _send_time = data.get_i64();
                            let reply_requested = data.get_u8() == 1;
                            return Ok(ReplicationMessage::Keepalive {
                                wal_end,
                                reply_requested,
                            });
                        }
                        _ => return Err(self.unexpected("CopyData")),
                    }
                }
                backend::Message::NoticeResponse(_) | backend::Message::ParameterStatus(_) => {}
                backend::Message::CopyDone => return Err(PgError::StreamEnded),
                _ => return Err(self.unexpected("streaming")),
            }
        }
    }

    /// Tells the server how far weir has written and made durable. The
    /// server may discard WAL up to `flushed`.
    pub async fn send_status(
        &mut self,
        written: Lsn,
        flushed: Lsn,
        reply_requested: bool,
    ) -> Result<(), PgError> {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let mut body = BytesMut::with_capacity(34);
        body.put_u8(b'r');
        body.put_u64(written.0);
        body.put_u64(flushed.0);
        body.put_u64(flushed.0);
        body.put_i64(now_us - PG_EPOCH_US);
        body.put_u8(u8::from(reply_requested));
        frontend::CopyData::new(body.freeze())
            .map_err(|e| self.protocol(e))?
            .write(&mut self.write);
        self.send().await
    }

    /// Ends the session politely.
    pub async fn close(mut self) {
        frontend::terminate(&mut self.write);
        let _ = self.send().await;
    }

    async fn send(&mut self) -> Result<(), PgError> {
        let buf = self.write.split();
        self.stream
            .write_all(&buf)
            .await
            .map_err(|source| PgError::Io {
                address: self.address.clone(),
                source,
            })?;
        self.stream.flush().await.map_err(|source| PgError::Io {
            address: self.address.clone(),
            source,
        })
    }

    /// Fills the buffer until it holds one whole message; if its tag is
    /// `tag`, returns its total length.
    async fn peek_tag(&mut self, tag: u8) -> Result<Option<usize>, PgError> {
        loop {
            if self.read.len() >= 5 {
                let len =
                    u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]])
                        as usize
                        + 1;
                if self.read.len() >= len {
                    return Ok((self.read[0] == tag).then_some(len));
                }
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), PgError> {
        let gather = self.gather.as_mut().filter(|_| self.streaming);
        let n = gather::read(gather, &mut self.stream, &mut self.read)
            .await
            .map_err(|source| PgError::Io {
                address: self.address.clone(),
                source,
            })?;
        if n == 0 {
            return Err(PgError::Io {
                address: self.address.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ),
            });
        }
        Ok(())
    }

    async fn recv(&mut self) -> Result<backend::Message, PgError> {
        match self.recv_or_error().await? {
            Ok(msg) => Ok(msg),
            Err(error) => Err(PgError::Server {
                context: format!("talking to {}", self.address),
                error,
            }),
        }
    }

    /// The next message, with an ErrorResponse turned into `Err(ServerError)`
    /// (the outer error is a transport failure).
    async fn recv_or_error(&mut self) -> Result<Result<backend::Message, ServerError>, PgError> {
        loop {
            match backend::Message::parse(&mut self.read).map_err(|e| self.protocol(e))? {
                Some(backend::Message::ErrorResponse(body)) => {
                    let mut fields = body.fields();
                    let mut error = ServerError::default();
                    while let Some(f) = fields.next().map_err(|e| self.protocol(e))? {
                        let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
                        match f.type_() {
                            b'C' => error.code = value,
                            b'M' => error.message = value,
                            b'D' => error.detail = Some(value),
                            b'H' => error.hint = Some(value),
                            _ => {}
                        }
                    }
                    return Ok(Err(error));
                }
                Some(msg) => return Ok(Ok(msg)),
                None => self.fill().await?,
            }
        }
    }

    fn protocol(&self, e: std::io::Error) -> PgError {
        PgError::Protocol {
            address: self.address.clone(),
            reason: e.to_string(),
        }
    }

    fn unexpected(&self, during: &str) -> PgError {
        PgError::Protocol {
            address: self.address.clone(),
            reason: format!("unexpected message during {during}"),
        }
    }
}

/// The first few words of a statement, for error context without dumping
/// whole queries into logs.
fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on
/// in every supported server version).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_embedded_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(&quote_ident("pub")), "'\"pub\"'");
    }
}
