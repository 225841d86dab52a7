//! Values bound to statements and the column types they come from.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The type of a table column, as far as the workload engine cares: enough to generate and bind
/// values. Adapters map their catalog types onto these.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ColumnType {
    /// 16/32/64-bit integers, and NUMBER(p, 0) in Snowflake.
    Integer,
    /// Floating point.
    Float,
    /// Exact decimal with a fractional part.
    Decimal,
    /// Character data.
    Text,
    /// True / false.
    Boolean,
    /// Timestamp (with or without time zone).
    Timestamp,
    /// Calendar date.
    Date,
    /// JSON / VARIANT data.
    Json,
    /// Anything else; carries the backend's type name. Values are bound as text.
    Other(String),
}

impl ColumnType {
    /// Whether keys of this type can be generated arithmetically from a key range.
    pub fn is_integer(&self) -> bool {
        matches!(self, ColumnType::Integer)
    }
}

/// A value bound to a statement parameter or read from a table.
///
/// Text is reference-counted so that values taken from a sampled pool are bound without copying
/// the string on the hot path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Boolean.
    Bool(bool),
    /// 64-bit signed integer.
    Int(i64),
    /// Double precision float.
    Float(f64),
    /// Text (also used for decimals and types without a native mapping).
    Text(Arc<str>),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

impl Value {
    /// Text value from anything string-like.
    pub fn text(s: impl AsRef<str>) -> Self {
        Value::Text(Arc::from(s.as_ref()))
    }

    /// The integer inside, if this is an integer value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
            Value::Timestamp(us) => match chrono::DateTime::from_timestamp_micros(*us) {
                Some(ts) => write!(f, "{}", ts.format("%Y-%m-%d %H:%M:%S%.6f")),
                None => write!(f, "{us}us"),
            },
        }
    }
}
