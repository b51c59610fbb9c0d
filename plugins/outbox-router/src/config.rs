//! The configuration users write, and its validation.
//!
//! Every problem is reported at once, each with the path of its field.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::route::RouteTemplate;

/// The plugin's configuration. `{}` reads Debezium's default outbox table:
/// table `outbox` with columns `id`, `aggregatetype`, `aggregateid`,
/// `type` and `payload`, routed to `outbox.event.{aggregatetype}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxRouterConfig {
    /// The outbox table, compared exactly with the event's bare table name
    /// and with its `schema.table`. Defaults to `outbox`.
    #[serde(default = "default_table", deserialize_with = "table")]
    pub table: String,

    /// Drop every event that is not from the outbox table, instead of
    /// passing it on unchanged. Defaults to false.
    #[serde(default, deserialize_with = "drop_others")]
    pub drop_others: bool,

    /// The destination of an outbox event, written to its `source.table`.
    /// `{aggregatetype}` stands for the value of the aggregate type column
    /// as text; `{{` and `}}` are literal braces. Defaults to
    /// `outbox.event.{aggregatetype}` (Debezium's
    /// `route.topic.replacement`).
    #[serde(
        default = "default_route_topic_template",
        deserialize_with = "route_topic_template"
    )]
    pub route_topic_template: String,

    /// The names of the outbox table's columns; see [`OutboxColumns`].
    #[serde(default, deserialize_with = "columns")]
    pub columns: OutboxColumns,
}

/// The outbox table's column names, with Debezium's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxColumns {
    /// The unique event id (`table.field.event.id`), emitted as `eventId`.
    #[serde(default = "default_id")]
    pub id: String,
    /// The aggregate type (`route.by.field`), which names the destination.
    #[serde(default = "default_aggregatetype")]
    pub aggregatetype: String,
    /// The aggregate id (`table.field.event.key`), emitted as the key `id`.
    #[serde(default = "default_aggregateid")]
    pub aggregateid: String,
    /// The event type (`table.field.event.type`), emitted as `eventType`.
    #[serde(default = "default_type", rename = "type")]
    pub event_type: String,
    /// The payload (`table.field.event.payload`), emitted as `payload`.
    #[serde(default = "default_payload")]
    pub payload: String,
}

impl Default for OutboxColumns {
    fn default() -> Self {
        OutboxColumns {
            id: default_id(),
            aggregatetype: default_aggregatetype(),
            aggregateid: default_aggregateid(),
            event_type: default_type(),
            payload: default_payload(),
        }
    }
}

fn default_table() -> String {
    "outbox".to_owned()
}

fn default_route_topic_template() -> String {
    "outbox.event.{aggregatetype}".to_owned()
}

fn default_id() -> String {
    "id".to_owned()
}

fn default_aggregatetype() -> String {
    "aggregatetype".to_owned()
}

fn default_aggregateid() -> String {
    "aggregateid".to_owned()
}

fn default_type() -> String {
    "type".to_owned()
}

fn default_payload() -> String {
    "payload".to_owned()
}

/// The configuration, validated.
#[derive(Debug)]
pub struct Settings {
    pub table: String,
    pub drop_others: bool,
    pub route: RouteTemplate,
    pub columns: OutboxColumns,
}

impl OutboxRouterConfig {
    /// Validates the configuration, reporting every problem.
    pub fn validate(self) -> Result<Settings, String> {
        let mut errors = Vec::new();
        if self.table.is_empty() {
            errors.push("table: must not be empty".to_owned());
        }
        let route = RouteTemplate::parse(&self.route_topic_template)
            .map_err(|e| errors.push(format!("route_topic_template: {e}")))
            .ok();
        let c = &self.columns;
        for (field, name) in [
            ("id", &c.id),
            ("aggregatetype", &c.aggregatetype),
            ("aggregateid", &c.aggregateid),
            ("type", &c.event_type),
            ("payload", &c.payload),
        ] {
            if name.is_empty() {
                errors.push(format!("columns.{field}: must not be empty"));
            }
        }
        match route {
            Some(route) if errors.is_empty() => Ok(Settings {
                table: self.table,
                drop_others: self.drop_others,
                route,
                columns: self.columns,
            }),
            _ => Err(format!("invalid plugin config: {}", errors.join("; "))),
        }
    }
}

// `Config::parse` reports serde's message, which says what was wrong but
// not where; these name the field the message is about.

fn named<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D, field: &str) -> Result<T, D::Error> {
    let doc = serde_json::Value::deserialize(d)?;
    serde_json::from_value(doc).map_err(|e| D::Error::custom(format_args!("{field}: {e}")))
}

fn table<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "table")
}

fn drop_others<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "drop_others")
}

fn route_topic_template<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<T, D::Error> {
    named(d, "route_topic_template")
}

fn columns<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "columns")
}
