//! The source's CPU per row change, without the network: pgoutput messages
//! as the server sends them for the apply bench's table (8 columns, text
//! format), decoded and assembled into change events, in 10-row
//! transactions and in one large one.
//!
//! `cargo bench -p weir-postgres --bench assemble`

use std::hint::black_box;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_postgres::Lsn;
use weir_postgres::assembler::{Assembler, RelationInfo};
use weir_postgres::pgoutput::{Message, PgoutputDecoder};
use weir_postgres::types::PgType;

const OID: u32 = 16_384;
/// The bench table's columns as `pg_type` OIDs: bigint, text, text, text,
/// numeric, timestamptz, boolean, text.
const COLUMNS: [(&str, u32); 8] = [
    ("id", 20),
    ("customer", 25),
    ("email", 25),
    ("phone", 25),
    ("amount", 1700),
    ("placed_at", 1184),
    ("paid", 16),
    ("note", 25),
];

fn relation() -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(b'R');
    b.put_u32(OID);
    b.put_slice(b"public\0bench\0");
    b.put_u8(b'd');
    b.put_u16(COLUMNS.len() as u16);
    for (i, (name, oid)) in COLUMNS.iter().enumerate() {
        b.put_u8(u8::from(i == 0));
        b.put_slice(name.as_bytes());
        b.put_u8(0);
        b.put_u32(*oid);
        b.put_i32(-1);
    }
    b.freeze()
}

fn insert(id: u64) -> Bytes {
    let values = [
        id.to_string(),
        format!("Customer {id}"),
        format!("customer{id}@example.com"),
        format!("+1-555-{:07}", id % 10_000_000),
        format!("{}.{:02}", id % 10_000, id % 100),
        "2024-03-01 12:34:56.123456+00".to_owned(),
        if id.is_multiple_of(2) { "t" } else { "f" }.to_owned(),
        format!("order note number {id}"),
    ];
    let mut b = BytesMut::new();
    b.put_u8(b'I');
    b.put_u32(OID);
    b.put_u8(b'N');
    b.put_u16(values.len() as u16);
    for v in &values {
        b.put_u8(b't');
        b.put_i32(v.len() as i32);
        b.put_slice(v.as_bytes());
    }
    b.freeze()
}

/// `rows` inserts in transactions of `per_tx` rows: Begin, inserts,
/// Commit, each at increasing LSNs.
fn stream(rows: u64, per_tx: u64) -> Vec<(Bytes, Lsn)> {
    let mut out = vec![(relation(), Lsn(0x1000))];
    let mut lsn = 0x2000_u64;
    for tx in 0..rows.div_ceil(per_tx) {
        let first = tx * per_tx;
        let last = (first + per_tx).min(rows);
        let end = lsn + (last - first + 2) * 0x100;
        let mut begin = BytesMut::new();
        begin.put_u8(b'B');
        begin.put_u64(end - 0x10);
        begin.put_i64(762_000_000_000_000);
        begin.put_u32(1000 + tx as u32);
        out.push((begin.freeze(), Lsn(lsn)));
        for id in first..last {
            lsn += 0x100;
            out.push((insert(id), Lsn(lsn)));
        }
        let mut commit = BytesMut::new();
        commit.put_u8(b'C');
        commit.put_u8(0);
        commit.put_u64(end - 0x10);
        commit.put_u64(end);
        commit.put_i64(762_000_000_000_000);
        out.push((commit.freeze(), Lsn(end - 0x10)));
        lsn = end;
    }
    out
}

/// Decodes and assembles `messages`, taking events as a source does after
/// each commit; returns how many events came out.
fn assemble(messages: &[(Bytes, Lsn)]) -> usize {
    let mut decoder = PgoutputDecoder::new();
    let mut assembler = Assembler::new("db", Lsn(0));
    let mut events = 0;
    for (data, at) in messages {
        let msg = decoder.decode(data).expect("valid pgoutput");
        if let Message::Relation(rel) = &msg {
            let types = COLUMNS
                .iter()
                .map(|(_, oid)| PgType::from_oid(*oid).expect("built-in"))
                .collect();
            assembler.add_relation(rel.oid, RelationInfo::new(rel, types, &["id".to_owned()]));
        }
        let commit = matches!(msg, Message::Commit { .. });
        assembler.apply(msg, *at).expect("known relation");
        if commit && let Some((batch, _, _)) = assembler.take_committed() {
            events += batch.len();
            black_box(batch);
        }
    }
    events
}

fn bench(c: &mut Criterion) {
    const ROWS: u64 = 10_000;
    let mut group = c.benchmark_group("assemble");
    group.throughput(Throughput::Elements(ROWS));
    for (name, per_tx) in [("10-row transactions", 10), ("one transaction", ROWS)] {
        let messages = stream(ROWS, per_tx);
        assert_eq!(assemble(&messages), ROWS as usize);
        group.bench_function(name, |b| b.iter(|| assemble(black_box(&messages))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
