use weir_plugin_sdk::testing::{new_plugin, transform};
use weir_plugin_sdk::{ChangeEvent, Column, Op, SourceInfo, Value};

use crate::OutboxRouter;

fn source(schema: &str, table: &str) -> SourceInfo {
    SourceInfo {
        connector: "postgresql".into(),
        database: "shop".into(),
        schema: schema.into(),
        table: table.into(),
        position: "0/16B3748".into(),
        txid: Some("771".into()),
        commit_time_us: 1_700_000_000_000_000,
        origin: Some("eu-west".into()),
        plugins: None,
    }
}

fn outbox_row() -> Vec<Column> {
    vec![
        Column::new(
            "id",
            Value::Uuid("6f1c2a4e-0000-4000-8000-000000000001".into()),
        ),
        Column::new("aggregatetype", Value::Text("order".into())),
        Column::new("aggregateid", Value::Text("42".into())),
        Column::new("type", Value::Text("OrderCreated".into())),
        Column::new("payload", Value::Json(r#"{"total":10}"#.into())),
    ]
}

fn event(op: Op, schema: &str, table: &str, row: Vec<Column>) -> ChangeEvent {
    let (before, after) = match op {
        Op::Create | Op::Read => (None, Some(row)),
        Op::Update => (Some(row.clone()), Some(row)),
        Op::Delete => (Some(row), None),
        Op::Truncate => (None, None),
    };
    ChangeEvent {
        op,
        source: source(schema, table),
        key: vec![Column::new("id", Value::Int(1))],
        before,
        after,
    }
}

fn run(config: &str, events: &[ChangeEvent]) -> Vec<Result<Vec<ChangeEvent>, String>> {
    let mut plugin: OutboxRouter = new_plugin(config).unwrap();
    transform(&mut plugin, events)
}

fn config_error(config: &str) -> String {
    new_plugin::<OutboxRouter>(config).unwrap_err()
}

fn without(name: &str) -> Vec<Column> {
    outbox_row()
        .into_iter()
        .filter(|c| c.name != name)
        .collect()
}

#[test]
fn an_outbox_create_becomes_one_routed_event() {
    let out = run("{}", &[event(Op::Create, "public", "outbox", outbox_row())]);
    let expected = ChangeEvent {
        op: Op::Create,
        source: SourceInfo {
            table: "outbox.event.order".into(),
            ..source("public", "outbox")
        },
        key: vec![Column::new("id", Value::Text("42".into()))],
        before: None,
        after: Some(vec![
            Column::new("payload", Value::Json(r#"{"total":10}"#.into())),
            Column::new("eventType", Value::Text("OrderCreated".into())),
            Column::new(
                "eventId",
                Value::Uuid("6f1c2a4e-0000-4000-8000-000000000001".into()),
            ),
        ]),
    };
    assert_eq!(out, [Ok(vec![expected])]);
}

#[test]
fn other_outbox_operations_are_dropped() {
    let events = [
        event(Op::Update, "public", "outbox", outbox_row()),
        event(Op::Delete, "public", "outbox", outbox_row()),
        event(Op::Read, "public", "outbox", outbox_row()),
        event(Op::Truncate, "public", "outbox", vec![]),
    ];
    assert_eq!(run("{}", &events), vec![Ok(vec![]); 4]);
}

#[test]
fn other_tables_pass_unchanged_unless_drop_others() {
    let events = [
        event(Op::Create, "public", "orders", outbox_row()),
        event(Op::Create, "public", "outbox_archive", outbox_row()),
    ];
    let passed: Vec<_> = events.iter().map(|e| Ok(vec![e.clone()])).collect();
    assert_eq!(run("{}", &events), passed);
    assert_eq!(run(r#"{"drop_others":true}"#, &events), vec![Ok(vec![]); 2]);
}

#[test]
fn the_table_matches_by_bare_or_qualified_name_exactly() {
    let events = [
        event(Op::Create, "public", "outbox", outbox_row()),
        event(Op::Create, "audit", "outbox", outbox_row()),
        event(Op::Create, "", "outbox", outbox_row()),
        event(Op::Create, "public", "Outbox", outbox_row()),
    ];
    let routed = |out: &Result<Vec<ChangeEvent>, String>| {
        out.as_ref()
            .unwrap()
            .first()
            .map(|e| e.source.table.to_string())
    };
    let out = run(r#"{"table":"public.outbox"}"#, &events);
    assert_eq!(
        out.iter().map(routed).collect::<Vec<_>>(),
        [
            Some("outbox.event.order".to_owned()),
            Some("outbox".to_owned()),
            Some("outbox".to_owned()),
            Some("Outbox".to_owned()),
        ]
    );
    let out = run(r#"{"table":"outbox"}"#, &events);
    assert_eq!(
        out.iter().map(routed).collect::<Vec<_>>(),
        [
            Some("outbox.event.order".to_owned()),
            Some("outbox.event.order".to_owned()),
            Some("outbox.event.order".to_owned()),
            Some("Outbox".to_owned()),
        ]
    );
}

#[test]
fn column_names_and_route_are_configurable() {
    let row = vec![
        Column::new("event_id", Value::Int(9)),
        Column::new("kind", Value::Text("customer".into())),
        Column::new("entity_id", Value::Int(7)),
        Column::new("name", Value::Text("CustomerMoved".into())),
        Column::new("body", Value::Text("plain text".into())),
    ];
    let config = r#"{"table":"events","route_topic_template":"{aggregatetype}-events",
        "columns":{"id":"event_id","aggregatetype":"kind","aggregateid":"entity_id",
                   "type":"name","payload":"body"}}"#;
    let out = run(config, &[event(Op::Create, "app", "events", row)]);
    let out = &out[0].as_ref().unwrap()[0];
    assert_eq!(out.source.table, "customer-events");
    assert_eq!(out.key, [Column::new("id", Value::Int(7))]);
    assert_eq!(
        out.after.as_deref().unwrap(),
        [
            Column::new("payload", Value::Text("plain text".into())),
            Column::new("eventType", Value::Text("CustomerMoved".into())),
            Column::new("eventId", Value::Int(9)),
        ]
    );
}

#[test]
fn a_template_without_the_aggregate_type_needs_no_such_column() {
    let out = run(
        r#"{"route_topic_template":"all-events"}"#,
        &[event(
            Op::Create,
            "public",
            "outbox",
            without("aggregatetype"),
        )],
    );
    assert_eq!(out[0].as_ref().unwrap()[0].source.table, "all-events");
}

#[test]
fn missing_columns_fail_naming_the_column() {
    let fail =
        |row: Vec<Column>| run("{}", &[event(Op::Create, "public", "outbox", row)]).remove(0);
    assert_eq!(
        fail(without("payload")),
        Err(
            "the row of outbox table public.outbox has no column `payload`; set \
             `columns.payload` to the column that holds the payload"
                .to_owned()
        )
    );
    assert_eq!(
        fail(without("aggregateid")),
        Err(
            "the row of outbox table public.outbox has no column `aggregateid`; set \
             `columns.aggregateid` to the column that holds the aggregate id (the event key)"
                .to_owned()
        )
    );
    assert_eq!(
        fail(without("aggregatetype")),
        Err(
            "the row of outbox table public.outbox has no column `aggregatetype`; set \
             `columns.aggregatetype` to the column that holds the aggregate type (the route)"
                .to_owned()
        )
    );
    assert_eq!(
        fail(without("type")),
        Err(
            "the row of outbox table public.outbox has no column `type`; set `columns.type` \
             to the column that holds the event type"
                .to_owned()
        )
    );
    assert_eq!(
        fail(without("id")),
        Err(
            "the row of outbox table public.outbox has no column `id`; set `columns.id` to \
             the column that holds the event id"
                .to_owned()
        )
    );
    let mut row = outbox_row();
    row[1].value = Value::Null;
    assert_eq!(
        fail(row),
        Err(
            "column `aggregatetype` of the row of outbox table public.outbox is null, so it \
             cannot name the destination"
                .to_owned()
        )
    );
    let mut row = outbox_row();
    row[1].value = Value::Text(String::new());
    assert_eq!(
        run(
            r#"{"route_topic_template":"{aggregatetype}"}"#,
            &[event(Op::Create, "public", "outbox", row)]
        )
        .remove(0),
        Err(
            "the destination of the outbox event from public.outbox is empty: column \
             `aggregatetype` is empty"
                .to_owned()
        )
    );
}

#[test]
fn config_errors_name_the_field() {
    assert_eq!(
        config_error(r#"{"tabel":"x"}"#),
        "invalid plugin config: unknown field `tabel`, expected one of `table`, `drop_others`, \
         `route_topic_template`, `columns`"
    );
    assert_eq!(
        config_error(r#"{"drop_others":"yes"}"#),
        "invalid plugin config: drop_others: invalid type: string \"yes\", expected a boolean"
    );
    assert_eq!(
        config_error(r#"{"columns":{"event_id":"x"}}"#),
        "invalid plugin config: columns: unknown field `event_id`, expected one of `id`, \
         `aggregatetype`, `aggregateid`, `type`, `payload`"
    );
    assert_eq!(
        config_error(
            r#"{"table":"","route_topic_template":"e.{aggregate}","columns":{"payload":""}}"#
        ),
        "invalid plugin config: table: must not be empty; route_topic_template: unknown \
         placeholder `{aggregate}` in `e.{aggregate}`; the only placeholder is {aggregatetype} \
         (write `{{` for a literal brace); columns.payload: must not be empty"
    );
}
