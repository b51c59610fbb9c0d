use weir_plugin_sdk::testing::resolve;
use weir_plugin_sdk::{
    ChangeEvent, Column, Config, Conflict, Op, Resolution, Resolver, SourceInfo, Value, VersionMeta,
};

use crate::ConflictResolver;

fn resolver(config: &str) -> ConflictResolver {
    ConflictResolver::new(Config::from_json(config).unwrap()).unwrap()
}

fn config_error(config: &str) -> String {
    ConflictResolver::new(Config::from_json(config).unwrap()).unwrap_err()
}

fn row(columns: &[(&str, Value)]) -> Vec<Column> {
    columns
        .iter()
        .map(|(n, v)| Column::new(*n, v.clone()))
        .collect()
}

fn meta(t: i64, origin: Option<&str>, txid: Option<&str>) -> VersionMeta {
    VersionMeta {
        commit_time_us: t,
        origin: origin.map(str::to_owned),
        txid: txid.map(str::to_owned),
    }
}

fn change(
    op: Op,
    meta: &VersionMeta,
    before: Option<Vec<Column>>,
    after: Option<Vec<Column>>,
) -> ChangeEvent {
    ChangeEvent {
        op,
        source: SourceInfo {
            connector: "postgresql".into(),
            database: "shop".into(),
            schema: "public".into(),
            table: "posts".into(),
            position: "0/10".into(),
            txid: meta.txid.clone().map(Into::into),
            commit_time_us: meta.commit_time_us,
            origin: meta.origin.clone().map(Into::into),
            plugins: None,
        },
        key: row(&[("id", Value::Int(1))]),
        before,
        after,
    }
}

/// A conflict between a local version and an incoming update, both of the
/// same row `{id: 1, title}`.
fn conflict(local: &VersionMeta, incoming: &VersionMeta) -> Conflict {
    let title = |s: &str| row(&[("id", Value::Int(1)), ("title", Value::Text(s.into()))]);
    Conflict {
        local: title("local"),
        local_meta: local.clone(),
        incoming: change(
            Op::Update,
            incoming,
            Some(title("old")),
            Some(title("incoming")),
        ),
    }
}

fn decide(config: &str, local: &VersionMeta, incoming: &VersionMeta) -> Resolution {
    resolve(&mut resolver(config), &conflict(local, incoming)).unwrap()
}

const LWW: &str = r#"{"strategy":"last-writer-wins"}"#;

#[test]
fn last_writer_wins_by_commit_time() {
    let early = meta(100, Some("us-east"), Some("9"));
    let late = meta(200, Some("eu-west"), Some("1"));
    assert_eq!(decide(LWW, &early, &late), Resolution::TakeIncoming);
    assert_eq!(decide(LWW, &late, &early), Resolution::KeepLocal);
}

#[test]
fn last_writer_ties_break_on_origin_then_txid_then_keep_local() {
    let t = 100;
    assert_eq!(
        decide(LWW, &meta(t, None, None), &meta(t, Some("eu"), None)),
        Resolution::TakeIncoming
    );
    assert_eq!(
        decide(LWW, &meta(t, Some("us"), None), &meta(t, Some("eu"), None)),
        Resolution::KeepLocal
    );
    assert_eq!(
        decide(
            LWW,
            &meta(t, Some("eu"), Some("99")),
            &meta(t, Some("eu"), Some("100"))
        ),
        Resolution::TakeIncoming
    );
    assert_eq!(
        decide(
            LWW,
            &meta(t, Some("eu"), Some("5")),
            &meta(t, Some("eu"), None)
        ),
        Resolution::KeepLocal
    );
    assert_eq!(
        decide(
            LWW,
            &meta(t, Some("eu"), Some("5")),
            &meta(t, Some("eu"), Some("5"))
        ),
        Resolution::KeepLocal
    );
}

/// Two regions, each holding one version and receiving the other's: both
/// must end with the same version.
fn assert_converges(config: &str) {
    let versions = [
        meta(100, None, None),
        meta(100, Some("eu-west"), None),
        meta(100, Some("eu-west"), Some("7")),
        meta(100, Some("eu-west"), Some("10")),
        meta(100, Some("us-east"), Some("7")),
        meta(100, Some("ap-south"), Some("gtid:3")),
        meta(200, Some("eu-west"), Some("1")),
        meta(200, Some("ap-south"), None),
        meta(50, Some("us-east"), Some("2")),
    ];
    for (i, a) in versions.iter().enumerate() {
        for (j, b) in versions.iter().enumerate() {
            if i == j {
                continue;
            }
            // Region A holds `a` and receives `b`; region B the reverse.
            let at_a = match decide(config, a, b) {
                Resolution::KeepLocal => a,
                Resolution::TakeIncoming => b,
                other => panic!("unexpected {other:?}"),
            };
            let at_b = match decide(config, b, a) {
                Resolution::KeepLocal => b,
                Resolution::TakeIncoming => a,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(at_a, at_b, "{config}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn last_writer_wins_converges() {
    assert_converges(LWW);
}

const PRIORITY: &str = r#"{"strategy":"region-priority","priority":["us-east","eu-west"]}"#;

#[test]
fn region_priority_prefers_the_earlier_origin_whatever_the_time() {
    let us = meta(100, Some("us-east"), None);
    let eu_later = meta(500, Some("eu-west"), None);
    assert_eq!(decide(PRIORITY, &us, &eu_later), Resolution::KeepLocal);
    assert_eq!(decide(PRIORITY, &eu_later, &us), Resolution::TakeIncoming);
}

#[test]
fn region_priority_ranks_unknown_origins_last_and_ties_by_time() {
    let eu = meta(100, Some("eu-west"), None);
    let ap_later = meta(500, Some("ap-south"), None);
    let none_later = meta(600, None, None);
    assert_eq!(decide(PRIORITY, &eu, &ap_later), Resolution::KeepLocal);
    assert_eq!(decide(PRIORITY, &ap_later, &eu), Resolution::TakeIncoming);
    assert_eq!(decide(PRIORITY, &eu, &none_later), Resolution::KeepLocal);
    // Two unlisted origins rank equal: last-writer-wins decides.
    assert_eq!(
        decide(PRIORITY, &ap_later, &none_later),
        Resolution::TakeIncoming
    );
    assert_eq!(
        decide(PRIORITY, &none_later, &ap_later),
        Resolution::KeepLocal
    );
    // Same origin: last-writer-wins.
    let eu_later = meta(200, Some("eu-west"), None);
    assert_eq!(decide(PRIORITY, &eu, &eu_later), Resolution::TakeIncoming);
}

#[test]
fn region_priority_converges() {
    assert_converges(PRIORITY);
}

const COUNTER: &str = r#"{"strategy":"counter","columns":["likes","stock"]}"#;

fn counter_conflict(
    local: Vec<Column>,
    before: Option<Vec<Column>>,
    after: Option<Vec<Column>>,
    op: Op,
) -> Conflict {
    let m = meta(100, Some("eu-west"), Some("7"));
    Conflict {
        local,
        local_meta: meta(90, Some("us-east"), Some("3")),
        incoming: change(op, &m, before, after),
    }
}

fn merge(conflict: &Conflict) -> Resolution {
    resolve(&mut resolver(COUNTER), conflict).unwrap()
}

#[test]
fn counters_add_the_incoming_delta_to_the_local_value() {
    let local = row(&[
        ("id", Value::Int(1)),
        ("likes", Value::Int(10)),
        ("title", Value::Text("local".into())),
        ("stock", Value::Float(2.5)),
        ("note", Value::Text("local note".into())),
    ]);
    // The incoming image has its columns in another order, lacks `note`'s
    // new value (unchanged TOAST) and has a column the local row lacks.
    let before = row(&[
        ("id", Value::Int(1)),
        ("title", Value::Text("old".into())),
        ("likes", Value::Int(7)),
        ("stock", Value::Int(4)),
        ("note", Value::Text("old note".into())),
    ]);
    let after = row(&[
        ("id", Value::Int(1)),
        ("title", Value::Text("incoming".into())),
        ("likes", Value::Int(9)),
        ("stock", Value::Int(3)),
        ("note", Value::Unchanged),
        ("extra", Value::Int(5)),
    ]);
    let conflict = counter_conflict(local, Some(before), Some(after), Op::Update);
    assert_eq!(
        merge(&conflict),
        Resolution::Merged(row(&[
            ("id", Value::Int(1)),
            ("likes", Value::Int(12)),
            ("title", Value::Text("incoming".into())),
            ("stock", Value::Float(1.5)),
            ("note", Value::Text("local note".into())),
        ]))
    );
}

#[test]
fn counters_keep_the_local_values_of_other_columns_when_the_local_row_is_later() {
    let local = row(&[
        ("id", Value::Int(1)),
        ("likes", Value::Int(10)),
        ("stock", Value::Int(1)),
        ("title", Value::Text("local".into())),
    ]);
    let before = row(&[
        ("id", Value::Int(1)),
        ("likes", Value::Int(7)),
        ("stock", Value::Int(1)),
        ("title", Value::Text("old".into())),
    ]);
    let after = row(&[
        ("id", Value::Int(1)),
        ("likes", Value::Int(9)),
        ("stock", Value::Int(1)),
        ("title", Value::Text("incoming".into())),
    ]);
    let m = meta(50, Some("eu-west"), Some("7"));
    let conflict = Conflict {
        local,
        local_meta: meta(90, Some("us-east"), Some("3")),
        incoming: change(Op::Update, &m, Some(before), Some(after)),
    };
    assert_eq!(
        merge(&conflict),
        Resolution::Merged(row(&[
            ("id", Value::Int(1)),
            ("likes", Value::Int(12)),
            ("stock", Value::Int(1)),
            ("title", Value::Text("local".into())),
        ]))
    );
}

#[test]
fn counter_deletes_are_taken_and_missing_before_images_reviewed() {
    let r = row(&[
        ("id", Value::Int(1)),
        ("likes", Value::Int(1)),
        ("stock", Value::Int(1)),
    ]);
    let delete = counter_conflict(r.clone(), Some(r.clone()), None, Op::Delete);
    assert_eq!(merge(&delete), Resolution::TakeIncoming);
    let update = counter_conflict(r.clone(), None, Some(r.clone()), Op::Update);
    assert_eq!(
        merge(&update),
        Resolution::Review(
            "the incoming update on public.posts has no before image to take counter deltas \
             from (on PostgreSQL, set REPLICA IDENTITY FULL on the table)"
                .into()
        )
    );
    let create = counter_conflict(r.clone(), None, Some(r), Op::Create);
    assert_eq!(
        merge(&create),
        Resolution::Review(
            "the incoming create on public.posts has no before image to take counter deltas from"
                .into()
        )
    );
}

#[test]
fn bad_counter_values_are_reviewed_with_the_column_and_image() {
    let good = || row(&[("likes", Value::Int(1)), ("stock", Value::Int(1))]);
    let with = |likes: Value| row(&[("likes", likes), ("stock", Value::Int(1))]);
    let review = |local, before, after| match merge(&counter_conflict(
        local,
        Some(before),
        Some(after),
        Op::Update,
    )) {
        Resolution::Review(reason) => reason,
        other => panic!("expected a review, got {other:?}"),
    };
    assert_eq!(
        review(with(Value::Text("1".into())), good(), good()),
        "counter column `likes` is not a number in the local row of public.posts (found text)"
    );
    assert_eq!(
        review(good(), with(Value::Null), good()),
        "counter column `likes` is not a number in the incoming before image of public.posts \
         (found null)"
    );
    assert_eq!(
        review(good(), good(), with(Value::Decimal("2".into()))),
        "counter column `likes` is not a number in the incoming after image of public.posts \
         (found decimal)"
    );
    assert_eq!(
        review(good(), good(), row(&[("likes", Value::Int(1))])),
        "counter column `stock` is missing from the incoming after image of public.posts"
    );
    assert_eq!(
        review(with(Value::Int(i64::MAX)), good(), with(Value::Int(2))),
        "counter column `likes` of public.posts overflows: 9223372036854775807 + (2 - 1)"
    );
}

#[test]
fn config_errors_name_the_field() {
    assert_eq!(
        config_error("{}"),
        "invalid plugin config: missing field `strategy`"
    );
    assert_eq!(
        config_error(r#"{"strategy":"lww"}"#),
        "invalid plugin config: strategy: unknown variant `lww`, expected one of \
         `last-writer-wins`, `region-priority`, `counter`"
    );
    assert_eq!(
        config_error(r#"{"strategy":"region-priority"}"#),
        "invalid plugin config: priority: required by strategy `region-priority`: list the \
         origins, highest priority first"
    );
    assert_eq!(
        config_error(r#"{"strategy":"region-priority","priority":"us-east"}"#),
        "invalid plugin config: priority: invalid type: string \"us-east\", expected a sequence"
    );
    assert_eq!(
        config_error(r#"{"strategy":"region-priority","priority":["a","","a"],"columns":["x"]}"#),
        "invalid plugin config: priority[1]: must not be empty; priority[2]: \"a\" is listed \
         twice; columns: applies only to strategy `counter`"
    );
    assert_eq!(
        config_error(r#"{"strategy":"counter","columns":[]}"#),
        "invalid plugin config: columns: an empty list; list the counter columns"
    );
    assert_eq!(
        config_error(r#"{"strategy":"last-writer-wins","priority":["a"]}"#),
        "invalid plugin config: priority: applies only to strategy `region-priority`"
    );
    assert_eq!(
        config_error(r#"{"strategy":"counter","column":["a"]}"#),
        "invalid plugin config: unknown field `column`, expected one of `strategy`, `priority`, \
         `columns`"
    );
}
