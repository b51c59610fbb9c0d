use weir_plugin_sdk::testing::{new_plugin, transform};
use weir_plugin_sdk::{ChangeEvent, Column, Op, SourceInfo, Value};

use crate::Filter;

fn event(op: Op, schema: &str, table: &str, row: Vec<(&str, Value)>) -> ChangeEvent {
    let row: Vec<Column> = row.into_iter().map(|(n, v)| Column::new(n, v)).collect();
    let (before, after) = match op {
        Op::Delete => (Some(row), None),
        Op::Truncate => (None, None),
        _ => (None, Some(row)),
    };
    ChangeEvent {
        op,
        source: SourceInfo {
            connector: "postgresql".into(),
            database: "shop".into(),
            schema: schema.into(),
            table: table.into(),
            position: "0/10".into(),
            txid: Some("7".into()),
            commit_time_us: 1,
            origin: None,
            plugins: None,
        },
        key: vec![Column::new("id", Value::Int(1))],
        before,
        after,
    }
}

fn order(op: Op, status: Value) -> ChangeEvent {
    event(
        op,
        "public",
        "orders",
        vec![("id", Value::Int(1)), ("status", status)],
    )
}

/// Which of `events` the filter passes, as indexes; every passed event
/// must come out unchanged.
fn passed(config: &str, events: &[ChangeEvent]) -> Vec<usize> {
    let mut filter: Filter = new_plugin(config).unwrap();
    transform(&mut filter, events)
        .into_iter()
        .enumerate()
        .filter_map(|(i, out)| {
            let out = out.unwrap();
            match out.as_slice() {
                [] => None,
                [one] => {
                    assert_eq!(one, &events[i], "a passed event is unchanged");
                    Some(i)
                }
                more => panic!("event {i} became {} events", more.len()),
            }
        })
        .collect()
}

fn config_error(config: &str) -> String {
    new_plugin::<Filter>(config).unwrap_err()
}

#[test]
fn keep_mode_passes_only_matching_tables_and_ops() {
    let events = [
        event(Op::Create, "public", "orders", vec![]),
        event(Op::Create, "public", "orders_archive", vec![]),
        event(Op::Delete, "public", "orders", vec![]),
        event(Op::Create, "public", "customers", vec![]),
        event(Op::Update, "sales", "orders", vec![]),
    ];
    let config = r#"{"mode":"keep","tables":["public.orders*"],"ops":["create","update"]}"#;
    assert_eq!(passed(config, &events), [0, 1]);
}

#[test]
fn drop_mode_is_the_reverse_of_keep() {
    let events = [
        event(Op::Create, "public", "orders", vec![]),
        event(Op::Create, "public", "audit_log", vec![]),
        event(Op::Truncate, "public", "audit_log", vec![]),
    ];
    assert_eq!(
        passed(r#"{"mode":"drop","tables":["audit_*"]}"#, &events),
        [0]
    );
    assert_eq!(
        passed(r#"{"mode":"keep","tables":["audit_*"]}"#, &events),
        [1, 2]
    );
}

#[test]
fn globs_match_the_bare_table_or_schema_table_case_insensitively() {
    let events = [
        event(Op::Create, "public", "Orders", vec![]),
        event(Op::Create, "", "orders", vec![]),
        event(Op::Create, "public", "order_lines", vec![]),
    ];
    assert_eq!(
        passed(r#"{"mode":"keep","tables":["orders"]}"#, &events),
        [0, 1]
    );
    assert_eq!(
        passed(r#"{"mode":"keep","tables":["public.orders"]}"#, &events),
        [0]
    );
    assert_eq!(
        passed(r#"{"mode":"keep","tables":["*.order?"]}"#, &events),
        [0]
    );
    assert_eq!(
        passed(r#"{"mode":"keep","tables":["pub*_lines"]}"#, &events),
        [2]
    );
}

#[test]
fn predicates_read_the_after_image_and_the_before_image_of_deletes() {
    let events = [
        order(Op::Create, Value::Text("paid".into())),
        order(Op::Update, Value::Text("open".into())),
        order(Op::Delete, Value::Text("paid".into())),
        order(Op::Read, Value::Text("paid".into())),
        event(Op::Truncate, "public", "orders", vec![]),
    ];
    let config = r#"{"mode":"keep","where":[{"column":"status","op":"eq","value":"paid"}]}"#;
    assert_eq!(passed(config, &events), [0, 2, 3]);
}

#[test]
fn every_predicate_must_hold() {
    let row = |status: &str, amount: i64| {
        event(
            Op::Create,
            "public",
            "orders",
            vec![
                ("status", Value::Text(status.into())),
                ("amount", Value::Int(amount)),
            ],
        )
    };
    let events = [row("paid", 150), row("paid", 50), row("open", 150)];
    let config = r#"{"mode":"keep","where":[
        {"column":"status","op":"in","value":["paid","shipped"]},
        {"column":"amount","op":"gt","value":99.5}]}"#;
    assert_eq!(passed(config, &events), [0]);
}

#[test]
fn comparison_ops_on_numbers() {
    let row = |v: Value| event(Op::Create, "s", "t", vec![("n", v)]);
    let events = [
        row(Value::Int(5)),
        row(Value::Float(5.0)),
        row(Value::Decimal("5.00".into())),
        row(Value::Int(6)),
        row(Value::Text("5".into())),
    ];
    let with =
        |op: &str| format!(r#"{{"mode":"keep","where":[{{"column":"n","op":"{op}","value":5}}]}}"#);
    assert_eq!(passed(&with("eq"), &events), [0, 1, 2]);
    assert_eq!(passed(&with("ne"), &events), [3]);
    assert_eq!(passed(&with("lt"), &events), Vec::<usize>::new());
    assert_eq!(passed(&with("le"), &events), [0, 1, 2]);
    assert_eq!(passed(&with("gt"), &events), [3]);
    assert_eq!(passed(&with("ge"), &events), [0, 1, 2, 3]);
}

#[test]
fn booleans_and_nulls() {
    let row = |v: Value| event(Op::Create, "s", "t", vec![("flag", v)]);
    let events = [
        row(Value::Boolean(true)),
        row(Value::Boolean(false)),
        row(Value::Null),
        row(Value::Unchanged),
        event(Op::Create, "s", "t", vec![]),
    ];
    let test = |op: &str, value: &str| {
        passed(
            &format!(r#"{{"mode":"keep","where":[{{"column":"flag","op":"{op}"{value}}}]}}"#),
            &events,
        )
    };
    assert_eq!(test("eq", r#","value":true"#), [0]);
    assert_eq!(test("ne", r#","value":true"#), [1]);
    assert_eq!(test("is_null", ""), [2]);
    assert_eq!(test("not_null", ""), [0, 1, 3]);
}

#[test]
fn a_missing_column_never_matches() {
    let events = [
        event(Op::Create, "s", "t", vec![("other", Value::Int(1))]),
        event(
            Op::Create,
            "s",
            "t",
            vec![("status", Value::Text("x".into()))],
        ),
    ];
    let keep = r#"{"mode":"keep","where":[{"column":"status","op":"ne","value":"y"}]}"#;
    assert_eq!(passed(keep, &events), [1]);
    let drop = r#"{"mode":"drop","where":[{"column":"status","op":"ne","value":"y"}]}"#;
    assert_eq!(passed(drop, &events), [0]);
}

#[test]
fn text_orders_by_bytes() {
    let row = |s: &str| event(Op::Create, "s", "t", vec![("name", Value::Text(s.into()))]);
    let events = [row("apple"), row("banana"), row("cherry")];
    let config = r#"{"mode":"keep","where":[{"column":"name","op":"lt","value":"c"}]}"#;
    assert_eq!(passed(config, &events), [0, 1]);
}

#[test]
fn config_errors_name_the_field() {
    assert_eq!(
        config_error(r#"{"tables":["a"]}"#),
        "invalid plugin config: missing field `mode`"
    );
    assert_eq!(
        config_error(r#"{"mode":"kep","tables":["a"]}"#),
        "invalid plugin config: mode: unknown variant `kep`, expected `keep` or `drop`"
    );
    assert_eq!(
        config_error(r#"{"mode":"keep","tables":"public.orders"}"#),
        "invalid plugin config: tables: invalid type: string \"public.orders\", expected a sequence"
    );
    assert_eq!(
        config_error(r#"{"mode":"keep","ops":["insert"]}"#),
        "invalid plugin config: ops: unknown variant `insert`, expected one of `create`, \
         `update`, `delete`, `truncate`, `read`"
    );
    assert_eq!(
        config_error(r#"{"mode":"keep","table":["a"]}"#),
        "invalid plugin config: unknown field `table`, expected one of `mode`, `tables`, `ops`, `where`"
    );
    assert_eq!(
        config_error(r#"{"mode":"drop"}"#),
        "invalid plugin config: the filter has no criteria: give at least one of `tables`, `ops` and `where`"
    );
    assert_eq!(
        config_error(r#"{"mode":"keep","tables":[],"ops":[]}"#),
        "invalid plugin config: tables: an empty list matches no table; leave `tables` out to \
         match every table; ops: an empty list matches no event; leave `ops` out to match every \
         operation"
    );
}

#[test]
fn predicate_errors_name_the_predicate() {
    let bad =
        |predicate: &str| config_error(&format!(r#"{{"mode":"keep","where":[{predicate}]}}"#));
    assert_eq!(
        bad(r#"{"column":"a","op":"equals","value":1}"#),
        "invalid plugin config: where[0]: unknown variant `equals`, expected one of `eq`, `ne`, \
         `lt`, `le`, `gt`, `ge`, `in`, `is_null`, `not_null`"
    );
    assert_eq!(
        bad(r#"{"op":"eq","value":1}"#),
        "invalid plugin config: where[0]: missing field `column`"
    );
    assert_eq!(
        bad(r#"{"column":"a","op":"eq"}"#),
        "invalid plugin config: where[0].value: op `eq` needs a value (test for null with `is_null`)"
    );
    assert_eq!(
        bad(r#"{"column":"a","op":"is_null","value":1}"#),
        "invalid plugin config: where[0].value: op `is_null` takes no value"
    );
    assert_eq!(
        bad(r#"{"column":"a","op":"gt","value":[1]}"#),
        "invalid plugin config: where[0].value: op `gt` needs a number, string or boolean, found a list"
    );
    assert_eq!(
        bad(r#"{"column":"a","op":"in","value":1}"#),
        "invalid plugin config: where[0].value: op `in` needs a non-empty list of numbers, \
         strings or booleans"
    );
    assert_eq!(
        bad(r#"{"column":"a","op":"in","value":[1,{"x":1}]}"#),
        "invalid plugin config: where[0].value[1]: expected a number, string or boolean, found an object"
    );
    assert_eq!(
        bad(r#"{"column":"","op":"not_null"},{"column":"b","op":"eq","value":1,"extra":2}"#),
        "invalid plugin config: where[0].column: must not be empty; where[1]: unknown field \
         `extra`, expected one of `column`, `op`, `value`"
    );
}
