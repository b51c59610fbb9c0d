use weir_plugin_sdk::testing::route;
use weir_plugin_sdk::{ChangeEvent, Column, Config, Op, Router, SourceInfo, Value};

use crate::TableRouter;

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
            txid: None,
            commit_time_us: 1,
            origin: None,
            plugins: None,
        },
        key: vec![],
        before,
        after,
    }
}

fn router(config: &str) -> TableRouter {
    TableRouter::new(Config::from_json(config).unwrap()).unwrap()
}

fn config_error(config: &str) -> String {
    TableRouter::new(Config::from_json(config).unwrap()).unwrap_err()
}

/// The single destination of each event, or its error.
fn destinations(config: &str, events: &[ChangeEvent]) -> Vec<Result<String, String>> {
    route(&mut router(config), events)
        .into_iter()
        .map(|r| {
            r.map(|to| {
                assert_eq!(to.len(), 1, "exactly one destination: {to:?}");
                to.into_iter().next().unwrap()
            })
        })
        .collect()
}

fn ok(s: &str) -> Result<String, String> {
    Ok(s.to_owned())
}

#[test]
fn default_template_is_database_schema_table() {
    let events = [
        event(Op::Create, "public", "orders", vec![]),
        event(Op::Truncate, "sales", "refunds", vec![]),
    ];
    assert_eq!(
        destinations("{}", &events),
        [ok("shop.public.orders"), ok("shop.sales.refunds")]
    );
}

#[test]
fn every_placeholder_renders() {
    let events = [event(
        Op::Update,
        "public",
        "orders",
        vec![("region", Value::Text("eu".into())), ("n", Value::Int(-3))],
    )];
    let config =
        r#"{"to":"{connector}/{database}/{schema}/{table}/{op}/{column:region}/{column:n}/{{x}}"}"#;
    assert_eq!(
        destinations(config, &events),
        [ok("postgresql/shop/public/orders/update/eu/-3/{x}")]
    );
}

#[test]
fn column_values_render_as_text() {
    let row = |v: Value| event(Op::Create, "s", "t", vec![("c", v)]);
    let events = [
        row(Value::Boolean(true)),
        row(Value::Float(1.5)),
        row(Value::Decimal("10.00".into())),
        row(Value::Date(19000)),
        row(Value::Uuid("6f1c2a4e-0000-4000-8000-000000000001".into())),
    ];
    assert_eq!(
        destinations(r#"{"to":"t-{column:c}"}"#, &events),
        [
            ok("t-true"),
            ok("t-1.5"),
            ok("t-10.00"),
            ok("t-19000"),
            ok("t-6f1c2a4e-0000-4000-8000-000000000001"),
        ]
    );
}

#[test]
fn deletes_take_the_column_from_the_before_image() {
    let events = [event(
        Op::Delete,
        "public",
        "orders",
        vec![("region", Value::Text("us".into()))],
    )];
    assert_eq!(
        destinations(r#"{"to":"orders-{column:region}"}"#, &events),
        [ok("orders-us")]
    );
}

#[test]
fn column_placeholder_errors_name_template_column_and_table() {
    let events = [
        event(Op::Create, "public", "orders", vec![]),
        event(
            Op::Create,
            "public",
            "orders",
            vec![("region", Value::Null)],
        ),
        event(
            Op::Create,
            "",
            "orders",
            vec![("region", Value::Bytes(vec![1]))],
        ),
        event(
            Op::Update,
            "public",
            "orders",
            vec![("region", Value::Unchanged)],
        ),
        event(Op::Truncate, "public", "orders", vec![]),
        event(
            Op::Create,
            "public",
            "orders",
            vec![("region", Value::Text(String::new()))],
        ),
    ];
    let head = "destination `{column:region}` needs column `region`";
    assert_eq!(
        destinations(r#"{"to":"{column:region}"}"#, &events),
        [
            Err(format!(
                "{head}, which the row of public.orders does not have"
            )),
            Err(format!("{head}, which is null in the row of public.orders")),
            Err(format!(
                "{head}, which holds bytes in the row of orders; bytes cannot name a destination"
            )),
            Err(format!(
                "{head}, which the source did not send for this row of public.orders (an \
                 unchanged TOAST value)"
            )),
            Err(format!(
                "{head}, but the truncate event of public.orders has no row"
            )),
            Err("destination `{column:region}` is empty for public.orders".to_owned()),
        ]
    );
}

#[test]
fn first_matching_override_wins() {
    let events = [
        event(Op::Create, "public", "audit_login", vec![]),
        event(Op::Create, "public", "audit", vec![]),
        event(Op::Create, "", "audit_x", vec![]),
        event(Op::Create, "public", "orders", vec![]),
    ];
    let config = r#"{"overrides":[
        {"tables":["public.audit_*"],"to":"audit-{table}"},
        {"tables":["AUDIT*"],"to":"all-audit"}],
        "to":"{schema}.{table}"}"#;
    assert_eq!(
        destinations(config, &events),
        [
            ok("audit-audit_login"),
            ok("all-audit"),
            ok("all-audit"),
            ok("public.orders"),
        ]
    );
}

#[test]
fn by_column_routes_by_value_then_default_then_falls_through() {
    let order = |region: Value| event(Op::Create, "public", "orders", vec![("region", region)]);
    let events = [
        order(Value::Text("eu".into())),
        order(Value::Text("us".into())),
        order(Value::Text("apac".into())),
        order(Value::Null),
        event(Op::Create, "public", "orders", vec![]),
        event(
            Op::Create,
            "public",
            "customers",
            vec![("region", Value::Text("eu".into()))],
        ),
    ];
    let config = r#"{"by_column":{"tables":["public.orders"],"column":"region",
        "routes":{"eu":"orders-eu","us":"orders-us"},"default":"orders-other"},
        "to":"{table}"}"#;
    assert_eq!(
        destinations(config, &events),
        [
            ok("orders-eu"),
            ok("orders-us"),
            ok("orders-other"),
            ok("orders-other"),
            ok("orders"),
            ok("customers"),
        ]
    );
    // Without a default, unlisted values fall through to `to`; without
    // `tables`, every table that has the column is routed by it.
    let config = r#"{"by_column":{"column":"region","routes":{"eu":"{table}-eu"}},"to":"{table}"}"#;
    assert_eq!(
        destinations(config, &events),
        [
            ok("orders-eu"),
            ok("orders"),
            ok("orders"),
            ok("orders"),
            ok("orders"),
            ok("customers-eu"),
        ]
    );
}

#[test]
fn by_column_matches_non_text_values_by_their_text() {
    let row = |v: Value| event(Op::Create, "s", "t", vec![("tier", v)]);
    let events = [
        row(Value::Int(1)),
        row(Value::Boolean(true)),
        row(Value::Int(2)),
    ];
    let config =
        r#"{"by_column":{"column":"tier","routes":{"1":"gold","true":"flagged"}},"to":"rest"}"#;
    assert_eq!(
        destinations(config, &events),
        [ok("gold"), ok("flagged"), ok("rest")]
    );
}

#[test]
fn overrides_come_before_by_column() {
    let events = [event(
        Op::Create,
        "public",
        "orders",
        vec![("region", Value::Text("eu".into()))],
    )];
    let config = r#"{"overrides":[{"tables":["orders"],"to":"pinned"}],
        "by_column":{"column":"region","routes":{"eu":"orders-eu"}}}"#;
    assert_eq!(destinations(config, &events), [ok("pinned")]);
}

#[test]
fn config_errors_name_the_field() {
    assert_eq!(
        config_error(r#"{"to":"{tabel}"}"#),
        "invalid plugin config: to: unknown placeholder `{tabel}` in `{tabel}`; use {database}, \
         {schema}, {table}, {op}, {connector} or {column:NAME}"
    );
    assert_eq!(
        config_error(r#"{"to":5}"#),
        "invalid plugin config: to: invalid type: integer `5`, expected a string"
    );
    assert_eq!(
        config_error(r#"{"route":"x"}"#),
        "invalid plugin config: unknown field `route`, expected one of `to`, `overrides`, `by_column`"
    );
    assert_eq!(
        config_error(
            r#"{"overrides":[{"tables":["a"],"to":"x"},{"tables":[],"to":"{"},{"to":"y"}]}"#
        ),
        "invalid plugin config: overrides[1].tables: an empty list matches no table; \
         overrides[1].to: unclosed `{` at byte 0 of `{`; write `{{` for a literal brace; \
         overrides[2]: missing field `tables`"
    );
    assert_eq!(
        config_error(
            r#"{"by_column":{"column":"region","routes":{"eu":7,"us":"}"},"default":""}}"#
        ),
        "invalid plugin config: by_column.routes.eu: expected a destination template (a string), \
         found 7; by_column.routes.us: unmatched `}` at byte 0 of `}`; write `}}` for a literal \
         brace; by_column.default: a destination template must not be empty"
    );
    assert_eq!(
        config_error(r#"{"by_column":{"routes":{}}}"#),
        "invalid plugin config: by_column: missing field `column`"
    );
    assert_eq!(
        config_error(r#"{"by_column":{"column":"","routes":{}}}"#),
        "invalid plugin config: by_column.column: must not be empty; by_column.routes: an empty \
         map routes nothing"
    );
}
