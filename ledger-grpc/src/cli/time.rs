//! Times on the command line and in bulk files: RFC 3339 with an offset
//! (`2025-01-31T12:00:00+08:00`) or whole Unix seconds; printed as RFC 3339 UTC.
//! Conversions go through the domain `Timestamp` and `mapping`, so the client
//! rounds exactly as the server stores (microseconds).

use crate::mapping;
use ledger_core::Timestamp;
use serde_json::Value;

/// A clap value parser and the bulk files' cell parser.
pub fn parse(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return chrono::DateTime::from_timestamp(seconds, 0)
            .map(Timestamp::from_chrono)
            .ok_or_else(|| format!("{seconds} Unix seconds is out of range"));
    }
    chrono::DateTime::parse_from_rfc3339(text).map(|time| Timestamp::from_chrono(time.to_utc())).map_err(|error| {
        format!("{text:?} is not an RFC 3339 time such as 2025-01-31T12:00:00+08:00, nor Unix seconds ({error})")
    })
}

/// The same as [`parse`], straight to the wire type.
pub fn parse_proto(text: &str) -> Result<prost_types::Timestamp, String> {
    parse(text).map(mapping::to_timestamp)
}

/// A reply's time as RFC 3339 UTC; `-` when absent (or, never from our server,
/// out of range).
pub fn show(time: Option<prost_types::Timestamp>) -> String {
    match mapping::timestamp("", time) {
        Ok(Some(time)) => time.to_string(),
        Ok(None) | Err(_) => "-".to_owned(),
    }
}

/// The same for JSON: a string, or null when absent.
pub fn json(time: Option<prost_types::Timestamp>) -> Value {
    match mapping::timestamp("", time) {
        Ok(Some(time)) => Value::String(time.to_string()),
        Ok(None) | Err(_) => Value::Null,
    }
}
