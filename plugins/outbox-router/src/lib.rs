//! `outbox-router`: the transactional outbox pattern, after Debezium's
//! outbox event router.
//!
//! An application writes its domain events as rows of an outbox table in
//! the same transaction as its state changes; this transformer turns each
//! row inserted there into one event routed by its aggregate type.
//!
//! ```json
//! {
//!   "table": "public.outbox",
//!   "drop_others": true,
//!   "route_topic_template": "outbox.event.{aggregatetype}",
//!   "columns": {"id": "id", "aggregatetype": "aggregatetype",
//!               "aggregateid": "aggregateid", "type": "type", "payload": "payload"}
//! }
//! ```
//!
//! Every field is optional; the values above, except `table` and
//! `drop_others`, are the defaults (`table` defaults to `outbox`, matched
//! exactly against the bare table name or `schema.table`; `drop_others` to
//! false).
//!
//! What becomes of each event:
//! - a create on the outbox table becomes one outbox event (below);
//! - any other event on the outbox table (update, delete, truncate,
//!   snapshot read) is dropped: Debezium ignores outbox deletes and
//!   updates, and re-emitting snapshot rows would repeat old events;
//! - an event on another table passes unchanged, or is dropped with
//!   `"drop_others": true`.
//!
//! The outbox event, for an outbox row `{"id": "8a1c…", "aggregatetype":
//! "order", "aggregateid": "42", "type": "OrderCreated", "payload":
//! <json>}`:
//!
//! ```text
//! op      create
//! source  the row's source (connector, database, schema, position, txid,
//!         commit time, origin) with table = "outbox.event.order", the
//!         rendered route_topic_template
//! key     [id = "42"]                       the aggregate id, type kept
//! before  none
//! after   [payload   = <json>,              the payload, type kept
//!          eventType = "OrderCreated",      the event type, type kept
//!          eventId   = "8a1c…"]             the event id, type kept
//! ```
//!
//! so in the Debezium envelope: `"key": {"id": "42"}`, `"after":
//! {"payload": "{…}", "eventType": "OrderCreated", "eventId": "8a1c…"}`.
//! The destination is in `source.table`: route outbox events with the
//! `table-router` template `{table}`.
//!
//! An outbox create fails, naming the column, when its row lacks the id,
//! aggregate id, event type or payload column, or the aggregate type column
//! while the template uses it; and when the aggregate type is null, bytes
//! or an unchanged TOAST value. The aggregate type of other kinds is used
//! as text (numbers in decimal).
//!
//! The configuration is described field by field in [`OutboxRouterConfig`].

mod config;
mod route;

use std::borrow::Cow;

use weir_plugin_sdk::{
    ChangeEvent, Column, Config, Event, Op, Outcome, SourceInfo, SourceRef, Transformer, ValueRef,
};

pub use config::{OutboxColumns, OutboxRouterConfig};
use route::RouteTemplate;

/// The outbox event router. Build it with [`Transformer::new`].
#[derive(Debug)]
pub struct OutboxRouter {
    table: String,
    drop_others: bool,
    route: RouteTemplate,
    columns: OutboxColumns,
}

impl Transformer for OutboxRouter {
    fn new(config: Config) -> Result<Self, String> {
        let settings = config.parse::<OutboxRouterConfig>()?.validate()?;
        Ok(OutboxRouter {
            table: settings.table,
            drop_others: settings.drop_others,
            route: settings.route,
            columns: settings.columns,
        })
    }

    fn transform(&mut self, event: &mut Event<'_>) -> Outcome {
        if !self.is_outbox(event.source()) {
            return if self.drop_others {
                Outcome::Drop
            } else {
                Outcome::Keep
            };
        }
        if event.op() != Op::Create {
            return Outcome::Drop;
        }
        match self.outbox_event(event) {
            Ok(out) => Outcome::Replace(vec![out]),
            Err(reason) => Outcome::Fail(reason),
        }
    }
}

weir_plugin_sdk::export_transformer!(OutboxRouter);

impl OutboxRouter {
    /// Whether the event is from the outbox table: its bare name or its
    /// `schema.table` equals `table`, compared without allocating.
    fn is_outbox(&self, source: &SourceRef<'_>) -> bool {
        let t = self.table.as_str();
        t == source.table
            || (!source.schema.is_empty()
                && t.len() == source.schema.len() + 1 + source.table.len()
                && t.starts_with(source.schema)
                && t.ends_with(source.table)
                && t.as_bytes()[source.schema.len()] == b'.')
    }

    /// The outbox event of a create on the outbox table.
    fn outbox_event(&self, event: &Event<'_>) -> Result<ChangeEvent, String> {
        let source = event.source();
        let table = qualified(source);
        let Some(row) = event.after() else {
            return Err(format!(
                "the create on outbox table {table} has no after image"
            ));
        };
        let c = &self.columns;
        let column = |role: &str, name: &str, what: &str| {
            row.get(name).ok_or_else(|| {
                format!(
                    "the row of outbox table {table} has no column `{name}`; set \
                     `columns.{role}` to the column that holds the {what}"
                )
            })
        };
        let payload = column("payload", &c.payload, "payload")?;
        let aggregate_id = column(
            "aggregateid",
            &c.aggregateid,
            "aggregate id (the event key)",
        )?;
        let destination = if self.route.needs_aggregate_type() {
            let value = column(
                "aggregatetype",
                &c.aggregatetype,
                "aggregate type (the route)",
            )?;
            let text = aggregate_type_text(value).map_err(|why| {
                format!(
                    "column `{}` of the row of outbox table {table} {why}, so it cannot name \
                     the destination",
                    c.aggregatetype
                )
            })?;
            self.route.render(&text)
        } else {
            self.route.render("")
        };
        let event_type = column("type", &c.event_type, "event type")?;
        let event_id = column("id", &c.id, "event id")?;
        if destination.is_empty() {
            return Err(format!(
                "the destination of the outbox event from {table} is empty: column `{}` is empty",
                c.aggregatetype
            ));
        }
        Ok(ChangeEvent {
            op: Op::Create,
            source: SourceInfo {
                table: destination.into(),
                ..source.to_owned()
            },
            key: vec![Column::new("id", aggregate_id.to_owned())],
            before: None,
            after: Some(vec![
                Column::new("payload", payload.to_owned()),
                Column::new("eventType", event_type.to_owned()),
                Column::new("eventId", event_id.to_owned()),
            ]),
        })
    }
}

/// The aggregate type as destination text, or why it cannot be.
fn aggregate_type_text<'a>(value: ValueRef<'a>) -> Result<Cow<'a, str>, &'static str> {
    Ok(match value {
        ValueRef::Text(s) | ValueRef::Decimal(s) | ValueRef::Uuid(s) | ValueRef::Json(s) => {
            Cow::Borrowed(s)
        }
        ValueRef::Boolean(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        ValueRef::Int(i)
        | ValueRef::Time(i)
        | ValueRef::Timestamp(i)
        | ValueRef::Timestamptz(i) => Cow::Owned(i.to_string()),
        ValueRef::Date(d) => Cow::Owned(d.to_string()),
        ValueRef::Float(f) => Cow::Owned(f.to_string()),
        ValueRef::Null => return Err("is null"),
        ValueRef::Bytes(_) => return Err("holds bytes"),
        ValueRef::Unchanged => return Err("was not sent by the source (an unchanged TOAST value)"),
    })
}

/// `schema.table`, or `table` when the source has no schema.
fn qualified(source: &SourceRef<'_>) -> String {
    if source.schema.is_empty() {
        source.table.to_owned()
    } else {
        format!("{}.{}", source.schema, source.table)
    }
}

#[cfg(test)]
mod tests;
