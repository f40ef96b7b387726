//! Bulk files: the items of a bulk add or use, read from JSON (an array of
//! objects) or CSV (a header row), chosen by the file's extension. Both use the
//! proto's item field names, so a file reads like the request it becomes.
//!
//! Unknown names are errors rather than ignored: a misspelt `remark` column
//! would otherwise send every item without one. Values are checked here only as
//! far as their type; the rules (points in range, remark required) are the
//! server's, which names the item in its reply.

use super::output::Failure;
use super::time;
use serde_json::Value;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Add,
    Use,
}

impl Kind {
    /// The field names of `BulkAddItem` and `BulkUseItem`.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Add => &["member_id", "points", "remark", "reference", "branch_code", "occurred_at", "expires_at"],
            Kind::Use => &["member_id", "points", "remark", "reward_id", "reference", "branch_code", "occurred_at"],
        }
    }
}

/// One item as read; the fields its kind does not have stay empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Item {
    pub member_id: String,
    pub points: i64,
    pub remark: String,
    pub reward_id: String,
    pub reference: String,
    pub branch_code: String,
    pub occurred_at: Option<prost_types::Timestamp>,
    pub expires_at: Option<prost_types::Timestamp>,
}

pub fn read(path: &Path, kind: Kind) -> Result<Vec<Item>, Failure> {
    let extension = path.extension().and_then(|extension| extension.to_str()).map(str::to_ascii_lowercase);
    let read = match extension.as_deref() {
        Some("json") => {
            std::fs::read_to_string(path).map_err(|error| error.to_string()).and_then(|text| from_json(&text, kind))
        }
        Some("csv") => from_csv(path, kind),
        _ => Err("the file name must end in .json or .csv, which says how to read it".to_owned()),
    };
    read.map_err(|reason| Failure::message(format!("{}: {reason}", path.display())))
}

/// A JSON array of objects; `null` is the same as leaving the field out.
pub fn from_json(text: &str, kind: Kind) -> Result<Vec<Item>, String> {
    let value: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Array(values) = value else {
        return Err("the JSON must be an array of items, e.g. [{\"member_id\": \"m1\", ...}]".to_owned());
    };
    let mut items = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let place = format!("items[{index}]");
        let Value::Object(object) = value else {
            return Err(format!("{place}: must be an object of {}", kind.columns().join(", ")));
        };
        let mut item = Item::default();
        for (column, value) in object {
            let cell = match value {
                Value::Null => continue,
                Value::String(text) => Cell::Text(text),
                Value::Number(number) => Cell::Integer(
                    number.as_i64().ok_or_else(|| format!("{place}.{column}: {number} is not a whole number"))?,
                ),
                Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                    return Err(format!("{place}.{column}: must be a string or a whole number"));
                }
            };
            set(&mut item, kind, &place, column, cell)?;
        }
        items.push(item);
    }
    Ok(items)
}

/// A header row naming the columns, then one item a row; an empty cell is the
/// same as leaving the field out.
pub fn from_csv(path: &Path, kind: Kind) -> Result<Vec<Item>, String> {
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    from_csv_reader(file, kind)
}

/// [`from_csv`] on any reader: the file, or bytes in a test or a fuzz target.
pub fn from_csv_reader(input: impl std::io::Read, kind: Kind) -> Result<Vec<Item>, String> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::Headers).from_reader(input);
    let header = reader.headers().map_err(|error| format!("reading the header row: {error}"))?.clone();
    for column in &header {
        if !kind.columns().contains(&column) {
            return Err(unknown_column(kind, "header", column));
        }
    }
    let mut items = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|error| error.to_string())?;
        let line = record.position().map_or(0, csv::Position::line);
        let place = format!("items[{index}]");
        let mut item = Item::default();
        for (column, text) in header.iter().zip(&record) {
            if !text.trim().is_empty() {
                set(&mut item, kind, &place, column, Cell::Text(text))
                    .map_err(|error| format!("line {line}: {error}"))?;
            }
        }
        items.push(item);
    }
    Ok(items)
}

/// A value as the file gave it: CSV only has text; JSON may give numbers.
enum Cell<'a> {
    Text(&'a str),
    Integer(i64),
}

fn set(item: &mut Item, kind: Kind, place: &str, column: &str, cell: Cell<'_>) -> Result<(), String> {
    if !kind.columns().contains(&column) {
        return Err(unknown_column(kind, place, column));
    }
    let field = |reason: String| format!("{place}.{column}: {reason}");
    match column {
        "member_id" => item.member_id = text(cell),
        "points" => item.points = integer(cell).map_err(field)?,
        "remark" => item.remark = text(cell),
        "reward_id" => item.reward_id = text(cell),
        "reference" => item.reference = text(cell),
        "branch_code" => item.branch_code = text(cell),
        "occurred_at" => item.occurred_at = Some(timestamp(cell).map_err(field)?),
        "expires_at" => item.expires_at = Some(timestamp(cell).map_err(field)?),
        other => unreachable!("{other} is in Kind::columns but has no field"),
    }
    Ok(())
}

fn unknown_column(kind: Kind, place: &str, column: &str) -> String {
    let kind_columns = kind.columns();
    let kind = match kind {
        Kind::Add => "add",
        Kind::Use => "use",
    };
    format!("{place}: {column:?} is not an item field; a bulk {kind} item has {}", kind_columns.join(", "))
}

/// Ids may come as JSON numbers (Echoss ids are); they mean their decimal text.
fn text(cell: Cell<'_>) -> String {
    match cell {
        Cell::Text(text) => text.to_owned(),
        Cell::Integer(number) => number.to_string(),
    }
}

fn integer(cell: Cell<'_>) -> Result<i64, String> {
    match cell {
        Cell::Integer(number) => Ok(number),
        Cell::Text(text) => text.trim().parse().map_err(|_| format!("{text:?} is not a whole number")),
    }
}

fn timestamp(cell: Cell<'_>) -> Result<prost_types::Timestamp, String> {
    match cell {
        Cell::Integer(seconds) => time::parse_proto(&seconds.to_string()),
        Cell::Text(text) => time::parse_proto(text),
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, from_json};

    #[test]
    fn json_items_take_text_numbers_and_both_time_forms() {
        let items = from_json(
            r#"[{"member_id": 42, "points": "7", "remark": "r", "occurred_at": 1700000000,
                 "expires_at": "2030-01-01T08:00:00+08:00", "reference": null}]"#,
            Kind::Add,
        )
        .unwrap();
        assert_eq!(items[0].member_id, "42");
        assert_eq!(items[0].points, 7);
        assert_eq!(items[0].occurred_at.unwrap().seconds, 1_700_000_000);
        assert_eq!(items[0].expires_at.unwrap().seconds, 1_893_456_000);
        assert_eq!(items[0].reference, "");
    }

    #[test]
    fn unknown_and_wrong_kind_fields_are_errors() {
        let error = from_json(r#"[{"member_id": "m", "remarks": "x"}]"#, Kind::Add).unwrap_err();
        assert!(error.starts_with("items[0]: \"remarks\" is not an item field"), "{error}");
        let error = from_json(r#"[{"member_id": "m", "expires_at": 1}]"#, Kind::Use).unwrap_err();
        assert!(error.contains("\"expires_at\" is not an item field"), "{error}");
        let error = from_json(r#"[{"member_id": "m", "points": 1.5}]"#, Kind::Add).unwrap_err();
        assert_eq!(error, "items[0].points: 1.5 is not a whole number");
    }
}
