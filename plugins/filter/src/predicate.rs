//! Column predicates, compiled from the configuration and evaluated on
//! borrowed row views without allocating.

use std::cmp::Ordering;

use weir_plugin_sdk::{RowView, ValueRef};

/// A compiled `where` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub column: String,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Compare(Cmp, Operand),
    /// Equal to one of these.
    In(Vec<Operand>),
    IsNull,
    NotNull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn accepts(self, ord: Ordering) -> bool {
        match self {
            Cmp::Eq => ord.is_eq(),
            Cmp::Ne => ord.is_ne(),
            Cmp::Lt => ord.is_lt(),
            Cmp::Le => ord.is_le(),
            Cmp::Gt => ord.is_gt(),
            Cmp::Ge => ord.is_ge(),
        }
    }
}

/// A configured value to compare a column with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

impl Operand {
    /// The operand a JSON scalar stands for; otherwise what was found
    /// instead, for the error message.
    pub fn from_json(doc: &serde_json::Value) -> Result<Operand, &'static str> {
        match doc {
            serde_json::Value::Bool(b) => Ok(Operand::Bool(*b)),
            serde_json::Value::Number(n) => Ok(match n.as_i64() {
                Some(i) => Operand::Int(i),
                None => Operand::Float(n.as_f64().unwrap_or(f64::NAN)),
            }),
            serde_json::Value::String(s) => Ok(Operand::Text(s.clone())),
            serde_json::Value::Null => Err("null"),
            serde_json::Value::Array(_) => Err("a list"),
            serde_json::Value::Object(_) => Err("an object"),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match *self {
            Operand::Int(i) => Some(i as f64),
            Operand::Float(f) => Some(f),
            Operand::Text(_) | Operand::Bool(_) => None,
        }
    }
}

impl Predicate {
    /// Whether the predicate holds for `row`. A missing row or column, a
    /// null (except for `is_null`), an unchanged TOAST value and a value
    /// of another kind than the operand all make it fail: nothing is known
    /// to match.
    pub fn holds(&self, row: Option<RowView<'_, '_>>) -> bool {
        let Some(value) = row.and_then(|r| r.get(&self.column)) else {
            return false;
        };
        match &self.test {
            Test::IsNull => matches!(value, ValueRef::Null),
            // An unchanged TOAST value is never null: nulls are not toasted.
            Test::NotNull => !matches!(value, ValueRef::Null),
            Test::Compare(cmp, operand) => compare(value, operand).is_some_and(|o| cmp.accepts(o)),
            Test::In(operands) => operands
                .iter()
                .any(|o| compare(value, o) == Some(Ordering::Equal)),
        }
    }
}

/// `value` against `operand`, or None when they are not comparable.
fn compare(value: ValueRef<'_>, operand: &Operand) -> Option<Ordering> {
    match (value, operand) {
        (ValueRef::Int(a), Operand::Int(b)) => Some(a.cmp(b)),
        (ValueRef::Int(a), Operand::Float(b)) => (a as f64).partial_cmp(b),
        (ValueRef::Float(a), _) => a.partial_cmp(&operand.as_f64()?),
        (ValueRef::Decimal(a), Operand::Int(_) | Operand::Float(_)) => a
            .trim()
            .parse::<f64>()
            .ok()?
            .partial_cmp(&operand.as_f64()?),
        (ValueRef::Date(a), Operand::Int(b)) => Some(i64::from(a).cmp(b)),
        (
            ValueRef::Time(a) | ValueRef::Timestamp(a) | ValueRef::Timestamptz(a),
            Operand::Int(b),
        ) => Some(a.cmp(b)),
        (ValueRef::Boolean(a), Operand::Bool(b)) => Some(a.cmp(b)),
        (
            ValueRef::Text(a) | ValueRef::Decimal(a) | ValueRef::Uuid(a) | ValueRef::Json(a),
            Operand::Text(b),
        ) => Some(a.cmp(b.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(value: ValueRef<'_>, operand: Operand) -> Option<Ordering> {
        compare(value, &operand)
    }

    #[test]
    fn numbers_compare_across_kinds() {
        assert_eq!(
            cmp(ValueRef::Int(3), Operand::Int(3)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(ValueRef::Int(3), Operand::Float(3.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(ValueRef::Float(3.5), Operand::Int(3)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(ValueRef::Decimal("10.50"), Operand::Float(10.5)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(ValueRef::Decimal("9"), Operand::Int(10)),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(ValueRef::Timestamp(5), Operand::Int(4)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(ValueRef::Date(-1), Operand::Int(0)),
            Some(Ordering::Less)
        );
        assert_eq!(cmp(ValueRef::Float(f64::NAN), Operand::Int(0)), None);
    }

    #[test]
    fn text_compares_as_text_and_kinds_do_not_mix() {
        assert_eq!(
            cmp(ValueRef::Text("b"), Operand::Text("a".into())),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(ValueRef::Decimal("1.0"), Operand::Text("1.0".into())),
            Some(Ordering::Equal)
        );
        assert_eq!(cmp(ValueRef::Text("5"), Operand::Int(5)), None);
        assert_eq!(cmp(ValueRef::Int(1), Operand::Bool(true)), None);
        assert_eq!(
            cmp(ValueRef::Boolean(false), Operand::Bool(true)),
            Some(Ordering::Less)
        );
        assert_eq!(cmp(ValueRef::Null, Operand::Int(0)), None);
        assert_eq!(cmp(ValueRef::Unchanged, Operand::Text("x".into())), None);
    }
}
