//! The built-in router: a destination name from a template such as
//! `{database}.{schema}.{table}`.

use weir_core::ChangeEvent;

/// A parsed destination template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Connector,
    Database,
    Schema,
    Table,
    Op,
}

impl Template {
    /// The template used when the config names none.
    pub const DEFAULT: &'static str = "{schema}.{table}";

    /// The placeholders a template may use.
    pub const PLACEHOLDERS: [&'static str; 5] = ["connector", "database", "schema", "table", "op"];

    /// Parses a template; unknown placeholders are kept literally (config
    /// validation rejects them before a pipeline starts).
    pub fn parse(template: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let name = &rest[start + 1..start + len];
            parts.push(match name {
                "connector" => Part::Connector,
                "database" => Part::Database,
                "schema" => Part::Schema,
                "table" => Part::Table,
                "op" => Part::Op,
                other => Part::Literal(format!("{{{other}}}")),
            });
            rest = &rest[start + len + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Template { parts }
    }

    /// The destination of `event`.
    pub fn render(&self, event: &ChangeEvent) -> String {
        let mut out = String::with_capacity(48);
        for part in &self.parts {
            out.push_str(match part {
                Part::Literal(s) => s,
                Part::Connector => &event.source.connector,
                Part::Database => &event.source.database,
                Part::Schema => &event.source.schema,
                Part::Table => &event.source.table,
                Part::Op => event.op.name(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::{Op, SourceInfo};

    #[test]
    fn renders_placeholders_and_literals() {
        let event = ChangeEvent {
            op: Op::Update,
            source: SourceInfo {
                connector: "postgresql".into(),
                database: "shop".into(),
                schema: "public".into(),
                table: "orders".into(),
                ..SourceInfo::default()
            },
            key: vec![],
            before: None,
            after: None,
        };
        let t = Template::parse("cdc.{database}.{schema}.{table}-{op}");
        assert_eq!(t.render(&event), "cdc.shop.public.orders-update");
        assert_eq!(
            Template::parse(Template::DEFAULT).render(&event),
            "public.orders"
        );
        assert_eq!(
            Template::parse("{nope}/{table}").render(&event),
            "{nope}/orders"
        );
    }
}
