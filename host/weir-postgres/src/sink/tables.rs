//! Target tables as the apply statements need them: columns with their
//! types, the primary key, and the statements that create a missing table
//! or add a missing column.

use std::collections::HashMap;

use tokio_postgres::Client;
use weir_connect::apply::Step;

use super::text::{column_type, ident};

/// A target table, read from the catalog.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// `schema.table` as the operator wrote it, for messages.
    pub name: String,
    /// `"schema"."table"`.
    pub quoted: String,
    /// Each writable column's type (`format_type`); generated columns are
    /// left out (the server computes them).
    pub types: HashMap<String, String>,
    pub generated: Vec<String>,
    /// The primary key's columns, in key order.
    pub key: Vec<String>,
    /// Each writable column's type OID, in table order (for reading rows
    /// back, as conflict detection does).
    pub oids: Vec<(String, u32)>,
}

/// Reads `schema.table` from the catalog; `None` when it does not exist.
pub(crate) async fn describe(
    client: &Client,
    schema: &str,
    table: &str,
) -> Result<Option<Table>, tokio_postgres::Error> {
    let quoted = format!("{}.{}", ident(schema), ident(table));
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '', \
                    COALESCE(array_position(i.indkey::int2[], a.attnum) + 1, 0), a.atttypid \
             FROM pg_attribute a \
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&quoted],
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut types = HashMap::new();
    let mut generated = Vec::new();
    let mut key: Vec<(i32, String)> = Vec::new();
    let mut oids = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let position: i32 = row.get(3);
        if position > 0 {
            key.push((position, name.clone()));
        }
        if row.get::<_, bool>(2) {
            generated.push(name);
        } else {
            oids.push((name.clone(), row.get(4)));
            types.insert(name, row.get(1));
        }
    }
    key.sort();
    Ok(Some(Table {
        name: format!("{schema}.{table}"),
        quoted,
        types,
        generated,
        key: key.into_iter().map(|(_, n)| n).collect(),
        oids,
    }))
}

/// `CREATE SCHEMA IF NOT EXISTS ...; CREATE TABLE ...` for a table that
/// takes the step's rows, keyed by the step's key columns.
pub(crate) fn create_statement(schema: &str, table: &str, step: &Step<'_>) -> String {
    let columns: Vec<String> = step
        .column_types(column_type)
        .into_iter()
        .map(|(c, ty)| format!("{} {ty}", ident(c)))
        .collect();
    let key: Vec<String> = step.columns[..step.key_len]
        .iter()
        .map(|c| ident(c))
        .collect();
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema_q}; \
         CREATE TABLE IF NOT EXISTS {schema_q}.{table_q} ({}, PRIMARY KEY ({}))",
        columns.join(", "),
        key.join(", "),
        schema_q = ident(schema),
        table_q = ident(table),
    )
}

/// The step's columns the table lacks, each with the type to add it with;
/// empty (and no types worked out) when it lacks none, as nearly always.
pub(crate) fn missing_columns<'a>(table: &Table, step: &Step<'a>) -> Vec<(&'a str, &'static str)> {
    let lacks = |c: &str| !table.types.contains_key(c) && !table.generated.iter().any(|g| g == c);
    if !step.columns.iter().any(|c| lacks(c)) {
        return Vec::new();
    }
    step.column_types(column_type)
        .into_iter()
        .filter(|(c, _)| lacks(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_connect::apply::{StepKind, StepRow};
    use weir_core::Value;

    #[test]
    fn a_created_table_takes_types_from_the_first_non_null_values() {
        let (id, null, name) = (Value::Int(1), Value::Null, Value::Text("x".into()));
        let step = Step {
            kind: StepKind::Upsert,
            destination: "s.t",
            columns: vec!["id", "name", "note"],
            key_len: 1,
            rows: vec![
                StepRow {
                    event: 0,
                    values: vec![&id, &null, &null],
                },
                StepRow {
                    event: 1,
                    values: vec![&id, &name, &null],
                },
            ],
        };
        assert_eq!(
            create_statement("s", "t", &step),
            "CREATE SCHEMA IF NOT EXISTS \"s\"; CREATE TABLE IF NOT EXISTS \"s\".\"t\" \
             (\"id\" bigint, \"name\" text, \"note\" text, PRIMARY KEY (\"id\"))"
        );
    }
}
