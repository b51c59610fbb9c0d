//! Row images of a rows event, read against a layout built once per table
//! map.
//!
//! The client library's own reader (`RowsEventData::rows`) builds every
//! column's description again for every row: the names, the database and
//! table names, the optional metadata parsed anew. That was most of the
//! source's time (more than half of it in the allocator, measured with
//! `perf` on `cargo bench -p weir-pipeline --bench mysql_to_files`). Here
//! the layout is built once per table map and each value is read with the
//! library's own value parser ([`BinlogValue`]) straight into a typed
//! [`Value`], without an owned copy in between.

use mysql_async::Column;
use mysql_async::binlog::events::{OptionalMetaExtractor, RowsEventData, TableMapEvent};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_common::binlog::value::BinlogValue;
use mysql_common::io::ParseBuf;
use weir_core::{Column as EventColumn, Value};

use crate::values;

/// A table's columns as a table map describes them.
#[derive(Debug, Clone)]
pub struct Layout {
    columns: Vec<ColumnLayout>,
}

#[derive(Debug, Clone)]
struct ColumnLayout {
    name: weir_core::Name,
    /// Type, flags and character set, for [`values::decode`].
    column: Column,
    ty: ColumnType,
    /// The type's metadata from the table map (lengths, precision).
    meta: Vec<u8>,
    unsigned: bool,
    /// ENUM or SET labels.
    labels: Option<values::Labels>,
}

impl Layout {
    /// The layout of `tme`'s table, with the labels of its ENUM and SET
    /// columns (by column index).
    pub fn of(
        tme: &TableMapEvent<'_>,
        mut labels: impl FnMut(usize) -> Option<values::Labels>,
    ) -> Result<Layout, String> {
        let meta = OptionalMetaExtractor::new(tme.iter_optional_meta())
            .map_err(|e| format!("a table map's metadata that cannot be read: {e}"))?;
        let mut signedness = meta.iter_signedness();
        let mut charsets = meta.iter_charset();
        let mut enum_charsets = meta.iter_enum_and_set_charset();
        let mut names = meta.iter_column_name();
        let mut columns = Vec::with_capacity(tme.columns_count() as usize);
        for i in 0..tme.columns_count() as usize {
            let ty = match tme.get_column_type(i) {
                Ok(Some(ty)) => ty,
                _ => return Err(format!("column {i} of a table map has no known type")),
            };
            let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
            let charset = if ty.is_character_type() {
                charsets.next().transpose().map_err(|e| e.to_string())?
            } else if ty.is_enum_or_set_type() {
                enum_charsets
                    .next()
                    .transpose()
                    .map_err(|e| e.to_string())?
            } else {
                None
            }
            .unwrap_or_default();
            let name = match names.next().transpose().map_err(|e| e.to_string())? {
                Some(name) => weir_core::Name::from(name.name().as_ref()),
                None => smol_str::format_smolstr!("@{i}"),
            };
            let mut flags = ColumnFlags::empty();
            if unsigned {
                flags |= ColumnFlags::UNSIGNED_FLAG;
            }
            let column = Column::new(ty)
                .with_name(name.as_bytes())
                .with_flags(flags)
                .with_character_set(charset);
            columns.push(ColumnLayout {
                name,
                column,
                ty,
                meta: tme.get_column_metadata(i).unwrap_or(&[]).to_vec(),
                unsigned,
                labels: labels(i),
            });
        }
        Ok(Layout { columns })
    }

    /// Reads every row of a rows event: `(before, after)` images.
    pub fn rows(&self, event: &RowsEventData<'_>) -> Result<Vec<RowImages>, String> {
        if matches!(event, RowsEventData::PartialUpdateRowsEvent(_)) {
            return Err(
                "a partial JSON update; set `binlog_row_value_options = ''` on the server so that JSON columns are logged whole".to_owned(),
            );
        }
        let before = event.columns_before_image();
        let after = event.columns_after_image();
        // Which columns each image holds, and how many: the same for
        // every row of the event.
        let width = self.columns.len();
        let before = before.map(|b| present(b, width));
        let after = after.map(|a| present(a, width));
        let mut buf = ParseBuf(event.rows_data());
        let mut rows = Vec::new();
        while !buf.is_empty() {
            let before = before
                .as_ref()
                .map(|(b, n)| self.image(b, *n, &mut buf))
                .transpose()?;
            let after = after
                .as_ref()
                .map(|(a, n)| self.image(a, *n, &mut buf))
                .transpose()?;
            rows.push((before, after));
        }
        Ok(rows)
    }

    /// One row image: a null bitmap over the `count` columns present, then
    /// their values.
    fn image(
        &self,
        present: &[bool],
        count: usize,
        buf: &mut ParseBuf<'_>,
    ) -> Result<Vec<EventColumn>, String> {
        let nulls: &[u8] = buf
            .parse(count.div_ceil(8))
            .map_err(|e| format!("a row image cut short: {e}"))?;
        let mut image = Vec::with_capacity(count);
        let mut n = 0;
        for (i, c) in self.columns.iter().enumerate() {
            if !present[i] {
                continue;
            }
            let null = nulls[n / 8] & (1 << (n % 8)) != 0;
            n += 1;
            let value = if null {
                Value::Null
            } else {
                // (The parser wants the metadata and the data for one
                // lifetime: read from a copy of the buffer, then advance.)
                let mut data = ParseBuf(buf.0);
                let raw: BinlogValue<'_> = data
                    .parse((c.ty, c.meta.as_slice(), c.unsigned, false))
                    .map_err(|e| format!("column `{}`: {e}", c.name))?;
                let consumed = buf.0.len() - data.0.len();
                let value = values::decode(&c.column, &raw)
                    .map_err(|e| format!("column `{}`: {e}", c.name))?;
                buf.0 = &buf.0[consumed..];
                match &c.labels {
                    Some(labels) => values::label(labels, value)
                        .map_err(|e| format!("column `{}`: {e}", c.name))?,
                    None => value,
                }
            };
            image.push(EventColumn::new(c.name.clone(), value));
        }
        Ok(image)
    }
}

/// Which of `width` columns an image bitmap marks present, and how many.
fn present(
    image: &(impl std::ops::Index<usize, Output = bool> + ?Sized),
    width: usize,
) -> (Vec<bool>, usize) {
    let columns: Vec<bool> = (0..width).map(|i| image[i]).collect();
    let count = columns.iter().filter(|c| **c).count();
    (columns, count)
}

/// A row's before and after images, as the event has them.
pub type RowImages = (Option<Vec<EventColumn>>, Option<Vec<EventColumn>>);
