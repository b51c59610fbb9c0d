use weir_core::envelope::to_envelope;

use super::*;
use crate::sinks::test_event;

fn line(event: &ChangeEvent) -> String {
    format!("{}\n", to_envelope(event))
}

fn lines(events: &[ChangeEvent]) -> String {
    events.iter().map(line).collect()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// The file names in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Writes `events`, all bound for `destination`.
trait WriteTo {
    fn write_to(&mut self, destination: &str, events: &[ChangeEvent]) -> Result<(), StageError>;
}

impl WriteTo for FileSink {
    fn write_to(&mut self, destination: &str, events: &[ChangeEvent]) -> Result<(), StageError> {
        let deliveries: Vec<Delivery<'_>> = events
            .iter()
            .map(|event| Delivery { destination, event })
            .collect();
        self.write(&deliveries)
    }
}

fn events(ids: std::ops::Range<i64>) -> Vec<ChangeEvent> {
    ids.map(|id| test_event(id, "customers")).collect()
}

#[test]
fn writes_envelope_lines_per_destination_and_reports_position() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let mut sink = FileSink::new("files", &dir, 1 << 20);
    sink.recover(None).unwrap();
    let customers = events(1..3);
    let orders = vec![test_event(10, "orders")];
    sink.write_to("public.customers", &customers).unwrap();
    sink.write_to("shop/orders v2", &orders).unwrap();
    let position = sink.flush(&Json::Null).unwrap();

    assert_eq!(
        files(&dir),
        [
            "public.customers.000001.jsonl",
            "shop_orders_v2.000001.jsonl"
        ]
    );
    assert_eq!(
        read(&dir, "public.customers.000001.jsonl"),
        lines(&customers)
    );
    assert_eq!(read(&dir, "shop_orders_v2.000001.jsonl"), lines(&orders));
    assert_eq!(
        position,
        json!({"files": {
            "public.customers": {"segment": 1, "len": lines(&customers).len()},
            "shop/orders v2": {"segment": 1, "len": lines(&orders).len()},
        }})
    );
    assert_eq!(
        FileSink::segment_file_name("shop/orders v2", 12),
        "shop_orders_v2.000012.jsonl"
    );

    // Flushing again without writes reports the same position.
    assert_eq!(sink.flush(&Json::Null).unwrap(), position);
}

#[test]
fn rotates_to_next_segment_once_size_is_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let evs = events(1..6);
    let one = line(&evs[0]).len() as u64;
    // Two lines reach the size: segments of two, two and one line.
    let mut sink = FileSink::new("files", tmp.path(), 2 * one - 1);
    sink.recover(None).unwrap();
    sink.write_to("t", &evs[..3]).unwrap();
    sink.write_to("t", &evs[3..]).unwrap();
    let position = sink.flush(&Json::Null).unwrap();

    assert_eq!(
        files(tmp.path()),
        ["t.000001.jsonl", "t.000002.jsonl", "t.000003.jsonl"]
    );
    assert_eq!(read(tmp.path(), "t.000001.jsonl"), lines(&evs[..2]));
    assert_eq!(read(tmp.path(), "t.000002.jsonl"), lines(&evs[2..4]));
    assert_eq!(read(tmp.path(), "t.000003.jsonl"), lines(&evs[4..]));
    assert_eq!(
        position,
        json!({"files": {"t": {"segment": 3, "len": line(&evs[4]).len()}}})
    );
}

#[test]
fn recover_cuts_output_back_to_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let evs = events(1..10);
    let one = line(&evs[0]).len() as u64;
    let max = 3 * one - 1;

    let mut sink = FileSink::new("files", tmp.path(), max);
    sink.recover(None).unwrap();
    sink.write_to("t", &evs[..2]).unwrap();
    let checkpointed = sink.flush(&Json::Null).unwrap();
    // Written but never flushed: the rest of segment 1, all of segment 2,
    // and a destination the checkpoint does not know.
    sink.write_to("t", &evs[2..5]).unwrap();
    sink.write_to("u", &evs[..1]).unwrap();
    drop(sink);
    assert_eq!(
        files(tmp.path()),
        ["t.000001.jsonl", "t.000002.jsonl", "u.000001.jsonl"]
    );
    std::fs::write(tmp.path().join("notes.txt"), "kept").unwrap();

    let mut sink = FileSink::new("files", tmp.path(), max);
    sink.recover(Some(&checkpointed)).unwrap();
    assert_eq!(files(tmp.path()), ["notes.txt", "t.000001.jsonl"]);
    assert_eq!(read(tmp.path(), "t.000001.jsonl"), lines(&evs[..2]));
    assert_eq!(sink.flush(&Json::Null).unwrap(), checkpointed);

    // Writing continues where the checkpoint left off.
    sink.write_to("t", &evs[2..4]).unwrap();
    let position = sink.flush(&Json::Null).unwrap();
    assert_eq!(read(tmp.path(), "t.000001.jsonl"), lines(&evs[..3]));
    assert_eq!(read(tmp.path(), "t.000002.jsonl"), lines(&evs[3..4]));
    assert_eq!(
        position,
        json!({"files": {"t": {"segment": 2, "len": one}}})
    );
}

#[test]
fn recover_keeps_earlier_segments_and_deletes_later_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let evs = events(1..10);
    let one = line(&evs[0]).len() as u64;
    let mut sink = FileSink::new("files", tmp.path(), one);
    sink.recover(None).unwrap();
    sink.write_to("t", &evs[..2]).unwrap();
    let checkpointed = sink.flush(&Json::Null).unwrap();
    assert_eq!(
        checkpointed,
        json!({"files": {"t": {"segment": 2, "len": one}}})
    );
    sink.write_to("t", &evs[2..4]).unwrap();
    sink.flush(&Json::Null).unwrap();
    drop(sink);

    let mut sink = FileSink::new("files", tmp.path(), one);
    sink.recover(Some(&checkpointed)).unwrap();
    assert_eq!(files(tmp.path()), ["t.000001.jsonl", "t.000002.jsonl"]);
    assert_eq!(read(tmp.path(), "t.000002.jsonl"), lines(&evs[1..2]));
}

#[test]
fn recover_without_checkpoint_deletes_every_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new("files", tmp.path(), 1);
    sink.recover(None).unwrap();
    sink.write_to("a", &events(1..3)).unwrap();
    sink.write_to("public.b", &events(1..2)).unwrap();
    sink.flush(&Json::Null).unwrap();
    drop(sink);
    for other in ["readme.txt", "notes.jsonl", "x.1.jsonl", "y.00000a.jsonl"] {
        std::fs::write(tmp.path().join(other), "not ours").unwrap();
    }

    let mut sink = FileSink::new("files", tmp.path(), 1);
    sink.recover(None).unwrap();
    assert_eq!(
        files(tmp.path()),
        ["notes.jsonl", "readme.txt", "x.1.jsonl", "y.00000a.jsonl"]
    );
    assert_eq!(sink.flush(&Json::Null).unwrap(), json!({"files": {}}));
    sink.write_to("a", &events(5..6)).unwrap();
    sink.flush(&Json::Null).unwrap();
    assert_eq!(read(tmp.path(), "a.000001.jsonl"), lines(&events(5..6)));
}

#[test]
fn recover_refuses_a_file_shorter_than_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new("files", tmp.path(), 1 << 20);
    sink.recover(None).unwrap();
    sink.write_to("t", &events(1..3)).unwrap();
    let checkpointed = sink.flush(&Json::Null).unwrap();
    drop(sink);
    let file = tmp.path().join("t.000001.jsonl");
    std::fs::write(&file, "{}\n").unwrap();

    let mut sink = FileSink::new("files", tmp.path(), 1 << 20);
    let err = sink.recover(Some(&checkpointed)).unwrap_err().to_string();
    let expected = checkpointed["files"]["t"]["len"].as_u64().unwrap();
    assert_eq!(
        err,
        format!(
            "file sink `files`: {} holds 3 bytes, fewer than the {expected} the last checkpoint made durable, so output was lost or cut outside Weir; move the file away to continue in a new segment",
            file.display()
        )
    );
    // Moved away, the destination continues in the next segment.
    std::fs::rename(&file, tmp.path().join("t.000001.jsonl.bak")).unwrap();
    sink.recover(Some(&checkpointed)).unwrap();
    sink.write_to("t", &events(3..4)).unwrap();
    let position = sink.flush(&Json::Null).unwrap();
    assert_eq!(read(tmp.path(), "t.000002.jsonl"), lines(&events(3..4)));
    assert_eq!(position["files"]["t"]["segment"], json!(2));
}

#[test]
fn refuses_misuse_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new("files", tmp.path(), 1 << 20);
    let err = sink.write_to("t", &events(1..2)).unwrap_err().to_string();
    assert_eq!(
        err,
        "file sink `files`: written to before `recover`; this is a bug in the pipeline"
    );

    let err = sink
        .recover(Some(&json!({"files": {"t": {"segment": 0, "len": 1}}})))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the position in the checkpoint is malformed"),
        "{err}"
    );

    sink.recover(None).unwrap();
    sink.write_to("a/b", &events(1..2)).unwrap();
    let err = sink.write_to("a:b", &events(1..2)).unwrap_err().to_string();
    assert_eq!(
        err,
        "file sink `files`: destinations `a/b` and `a:b` both map to the files a_b.NNNNNN.jsonl; make the router's destination names differ in letters, digits, `.`, `_` or `-`"
    );
    // After a failed write the sink stops until it is recovered again.
    let err = sink.write_to("c", &events(1..2)).unwrap_err().to_string();
    assert!(err.contains("stopped after an earlier error"), "{err}");
    sink.recover(None).unwrap();
    sink.write_to("c", &events(1..2)).unwrap();
}

#[test]
fn segment_names_round_trip() {
    assert_eq!(
        parse_segment_name("public.t.000001.jsonl"),
        Some(("public.t", 1))
    );
    assert_eq!(
        parse_segment_name("t.1234567.jsonl"),
        Some(("t", 1_234_567))
    );
    assert_eq!(parse_segment_name("t.00001.jsonl"), None);
    assert_eq!(parse_segment_name("t t.000001.jsonl"), None);
    assert_eq!(parse_segment_name(".000001.jsonl"), None);
    assert_eq!(file_stem(""), "_");
    assert_eq!(file_stem("é.x"), "_.x");
}
