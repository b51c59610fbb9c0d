//! Destination templates: `{database}.{schema}.{table}`, parsed once and
//! rendered per event.

use std::fmt::Write as _;

use weir_plugin_sdk::{Event, ValueRef};

/// A parsed destination template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The template as written, for error messages.
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Database,
    Schema,
    Table,
    Op,
    Connector,
    Column(String),
}

const PLACEHOLDERS: &str = "{database}, {schema}, {table}, {op}, {connector} or {column:NAME}";

impl Template {
    /// Parses a template. `{{` and `}}` stand for literal braces.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.is_empty() {
            return Err("a destination template must not be empty".to_owned());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let at = text.len() - rest.len() + i;
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("{{") {
                literal.push('{');
                rest = after;
            } else if let Some(after) = tail.strip_prefix("}}") {
                literal.push('}');
                rest = after;
            } else if tail.starts_with('}') {
                return Err(format!(
                    "unmatched `}}` at byte {at} of `{text}`; write `}}}}` for a literal brace"
                ));
            } else {
                let Some(end) = tail.find('}') else {
                    return Err(format!(
                        "unclosed `{{` at byte {at} of `{text}`; write `{{{{` for a literal brace"
                    ));
                };
                let name = &tail[1..end];
                let part = match name {
                    "database" => Part::Database,
                    "schema" => Part::Schema,
                    "table" => Part::Table,
                    "op" => Part::Op,
                    "connector" => Part::Connector,
                    _ => match name.strip_prefix("column:") {
                        Some("") => {
                            return Err(format!("`{{column:}}` in `{text}` names no column"));
                        }
                        Some(column) => Part::Column(column.to_owned()),
                        None => {
                            return Err(format!(
                                "unknown placeholder `{{{name}}}` in `{text}`; use {PLACEHOLDERS}"
                            ));
                        }
                    },
                };
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(part);
                rest = &tail[end + 1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Renders the destination of `event`.
    pub fn render(&self, event: &Event<'_>) -> Result<String, String> {
        let source = event.source();
        let mut out = String::with_capacity(self.text.len() + 32);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Database => out.push_str(source.database),
                Part::Schema => out.push_str(source.schema),
                Part::Table => out.push_str(source.table),
                Part::Op => out.push_str(event.op().name()),
                Part::Connector => out.push_str(source.connector),
                Part::Column(name) => row_value(event, name)
                    .and_then(|v| write_value(v, &mut out))
                    .map_err(|why| why.message(&self.text, name, event))?,
            }
        }
        if out.is_empty() {
            return Err(format!(
                "destination `{}` is empty for {}",
                self.text,
                table_name(event)
            ));
        }
        Ok(out)
    }
}

/// Why a column cannot name a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnamable {
    /// The event has no row image (a truncate).
    NoRow,
    /// The row has no such column.
    Missing,
    Null,
    Bytes,
    /// An unchanged TOAST value: the source did not send it.
    Unchanged,
}

impl Unnamable {
    /// The error message for template `template` and column `column`.
    pub fn message(self, template: &str, column: &str, event: &Event<'_>) -> String {
        let table = table_name(event);
        let head = format!("destination `{template}` needs column `{column}`");
        match self {
            Unnamable::NoRow => {
                format!(
                    "{head}, but the {} event of {table} has no row",
                    event.op().name()
                )
            }
            Unnamable::Missing => format!("{head}, which the row of {table} does not have"),
            Unnamable::Null => format!("{head}, which is null in the row of {table}"),
            Unnamable::Bytes => format!(
                "{head}, which holds bytes in the row of {table}; bytes cannot name a destination"
            ),
            Unnamable::Unchanged => format!(
                "{head}, which the source did not send for this row of {table} \
                 (an unchanged TOAST value)"
            ),
        }
    }
}

/// Column `name` of the event's after image, or of its before image when
/// it has no after image (deletes).
pub fn row_value<'a>(event: &Event<'a>, name: &str) -> Result<ValueRef<'a>, Unnamable> {
    event
        .after()
        .or_else(|| event.before())
        .ok_or(Unnamable::NoRow)?
        .get(name)
        .ok_or(Unnamable::Missing)
}

/// Appends a value as destination text.
pub fn write_value(value: ValueRef<'_>, out: &mut String) -> Result<(), Unnamable> {
    match value {
        ValueRef::Text(s) | ValueRef::Decimal(s) | ValueRef::Uuid(s) | ValueRef::Json(s) => {
            out.push_str(s);
        }
        ValueRef::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
        ValueRef::Int(i)
        | ValueRef::Time(i)
        | ValueRef::Timestamp(i)
        | ValueRef::Timestamptz(i) => {
            write!(out, "{i}").expect("writing to a String cannot fail");
        }
        ValueRef::Date(d) => write!(out, "{d}").expect("writing to a String cannot fail"),
        ValueRef::Float(f) => write!(out, "{f}").expect("writing to a String cannot fail"),
        ValueRef::Null => return Err(Unnamable::Null),
        ValueRef::Bytes(_) => return Err(Unnamable::Bytes),
        ValueRef::Unchanged => return Err(Unnamable::Unchanged),
    }
    Ok(())
}

/// `schema.table`, or `table` when the source has no schema.
pub fn table_name(event: &Event<'_>) -> String {
    let source = event.source();
    if source.schema.is_empty() {
        source.table.to_owned()
    } else {
        format!("{}.{}", source.schema, source.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placeholders_and_escaped_braces() {
        let t = Template::parse("x{{{database}}}.{column:region}-{op}").unwrap();
        assert_eq!(
            t.parts,
            [
                Part::Literal("x{".into()),
                Part::Database,
                Part::Literal("}.".into()),
                Part::Column("region".into()),
                Part::Literal("-".into()),
                Part::Op,
            ]
        );
        assert_eq!(
            Template::parse("plain").unwrap().parts,
            [Part::Literal("plain".into())]
        );
    }

    #[test]
    fn parse_errors_say_what_and_where() {
        assert_eq!(
            Template::parse("{tabel}").unwrap_err(),
            "unknown placeholder `{tabel}` in `{tabel}`; use {database}, {schema}, {table}, \
             {op}, {connector} or {column:NAME}"
        );
        assert_eq!(
            Template::parse("a.{table").unwrap_err(),
            "unclosed `{` at byte 2 of `a.{table`; write `{{` for a literal brace"
        );
        assert_eq!(
            Template::parse("a}b").unwrap_err(),
            "unmatched `}` at byte 1 of `a}b`; write `}}` for a literal brace"
        );
        assert_eq!(
            Template::parse("x-{column:}").unwrap_err(),
            "`{column:}` in `x-{column:}` names no column"
        );
        assert_eq!(
            Template::parse("").unwrap_err(),
            "a destination template must not be empty"
        );
    }
}
