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

    /// Parses a template, or lists every problem with it (empty, stray
    /// braces, unknown placeholders): config validation reports them all.
    pub fn parse(template: &str) -> Result<Self, Vec<String>> {
        let mut parts = Vec::new();
        let mut problems = Vec::new();
        if template.is_empty() {
            problems.push("must not be empty".to_owned());
        }
        let mut rest = template;
        while let Some(i) = rest.find(['{', '}']) {
            if i > 0 {
                parts.push(Part::Literal(rest[..i].to_owned()));
            }
            if rest[i..].starts_with('}') {
                problems.push("has a `}` without a matching `{`".to_owned());
                rest = &rest[i + 1..];
                continue;
            }
            let Some(len) = rest[i + 1..].find('}') else {
                problems.push("has a `{` without a matching `}`".to_owned());
                rest = "";
                break;
            };
            match &rest[i + 1..i + 1 + len] {
                "connector" => parts.push(Part::Connector),
                "database" => parts.push(Part::Database),
                "schema" => parts.push(Part::Schema),
                "table" => parts.push(Part::Table),
                "op" => parts.push(Part::Op),
                name => problems.push(format!(
                    "unknown placeholder `{{{name}}}`; use {}",
                    Self::PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
            rest = &rest[i + len + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        if problems.is_empty() {
            Ok(Template { parts })
        } else {
            Err(problems)
        }
    }

    /// The destination of `event`.
    pub fn render(&self, event: &ChangeEvent) -> String {
        let mut out = String::with_capacity(48);
        self.render_into(event, &mut out);
        out
    }

    /// The destination of `event`, written over `out` (one buffer for a
    /// whole batch instead of a string per event).
    pub fn render_into(&self, event: &ChangeEvent, out: &mut String) {
        out.clear();
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
        let t = Template::parse("cdc.{database}.{schema}.{table}-{op}").unwrap();
        assert_eq!(t.render(&event), "cdc.shop.public.orders-update");
        let default = Template::parse(Template::DEFAULT).unwrap();
        assert_eq!(default.render(&event), "public.orders");
    }

    #[test]
    fn every_problem_is_listed() {
        assert_eq!(
            Template::parse("{nope}/{table}}{").unwrap_err(),
            [
                "unknown placeholder `{nope}`; use {connector}, {database}, {schema}, {table}, {op}",
                "has a `}` without a matching `{`",
                "has a `{` without a matching `}`",
            ]
        );
        assert_eq!(Template::parse("").unwrap_err(), ["must not be empty"]);
    }
}
