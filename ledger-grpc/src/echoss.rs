//! Echoss request bodies, `voucher_statements` and `point_statements`, exactly as
//! that API takes them, `{"data": [{...}, ...]}` with its field names, integer
//! ids and ISO 8601 times with an offset: read from a file by `ledger import`
//! and from a request by the HTTP routes (`http::seeds::echoss`), one parser for
//! both.
//!
//! The whole body is checked before anything is sent, and every problem is
//! collected rather than the first: Echoss answers a bad body with every field
//! at once (`data.0.activity` in its 422 reply), and a file fixed one error a
//! run takes as many runs as it has errors. Problems are named the Echoss way,
//! `data.0.sent_at`; [`dotted`] renames the server's `data[0].sent_at` to match.
//!
//! Checked here: JSON types, required fields, times, `change_reason` (a closed
//! set), unknown fields (a misspelt `used_at` would otherwise import a used
//! voucher as issued) and the item count. The rules of values (id lengths, a
//! non-zero point change, balances) are the server's, which names the item.

use crate::cli::time;
use crate::pb;
use ledger_core::limits::IMPORT_ITEMS_MAX;
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// `change_reason` as Echoss writes it, and the English names the server also takes.
pub const CHANGE_REASONS: [&str; 6] = ["集點", "兌換", "取消", "COLLECT", "REDEEM", "CANCEL"];

const VOUCHER_FIELDS: [&str; 10] = [
    "brand_id",
    "promotion_id",
    "voucher_identifier",
    "voucher_number",
    "voucher_name",
    "line_id",
    "sent_at",
    "used_at",
    "cancelled_at",
    "brand_manager_id",
];

const POINT_FIELDS: [&str; 8] = [
    "brand_id",
    "promotion_id",
    "line_id",
    "change_reason",
    "point_change_record",
    "changed_at",
    "brand_manager_id",
    "reference",
];

/// One voucher statement as the file gives it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VoucherItem {
    pub brand_id: i64,
    pub promotion_id: i64,
    pub voucher_identifier: String,
    pub voucher_number: String,
    pub voucher_name: String,
    pub line_id: String,
    pub sent_at: prost_types::Timestamp,
    pub used_at: Option<prost_types::Timestamp>,
    pub cancelled_at: Option<prost_types::Timestamp>,
    /// 0 when absent or null, as Echoss asks callers to send for "none".
    pub brand_manager_id: i64,
}

/// One external point change as the file gives it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PointItem {
    pub brand_id: i64,
    pub promotion_id: i64,
    pub line_id: String,
    /// One of [`CHANGE_REASONS`], as given: the server maps both spellings.
    pub change_reason: String,
    pub point_change_record: i64,
    pub changed_at: prost_types::Timestamp,
    pub brand_manager_id: i64,
    /// Empty when absent: the item has no idempotency key.
    pub reference: String,
}

/// What is wrong with one field, or with the file as a whole (`data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted like Echoss's own errors: `data.0.sent_at`.
    pub field: String,
    pub description: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Why a file could not become a request.
#[derive(Debug, PartialEq, Eq)]
pub enum FileError {
    /// Unreadable, or not JSON at all: nothing to name by field.
    Unreadable(String),
    /// Every problem found, in file order.
    Problems(Vec<Problem>),
}

pub fn read_vouchers(path: &Path) -> Result<Vec<VoucherItem>, FileError> {
    vouchers_from_json(&read_text(path)?)
}

pub fn read_point_statements(path: &Path) -> Result<Vec<PointItem>, FileError> {
    point_statements_from_json(&read_text(path)?)
}

pub fn vouchers_from_json(text: &str) -> Result<Vec<VoucherItem>, FileError> {
    items_from_json(text, &VOUCHER_FIELDS, |item| VoucherItem {
        brand_id: item.required_integer("brand_id"),
        promotion_id: item.required_integer("promotion_id"),
        voucher_identifier: item.required_text("voucher_identifier"),
        voucher_number: item.required_text("voucher_number"),
        voucher_name: item.required_text("voucher_name"),
        line_id: item.required_text("line_id"),
        sent_at: item.required_time("sent_at"),
        used_at: item.optional_time("used_at"),
        cancelled_at: item.optional_time("cancelled_at"),
        brand_manager_id: item.optional_integer("brand_manager_id"),
    })
}

pub fn point_statements_from_json(text: &str) -> Result<Vec<PointItem>, FileError> {
    items_from_json(text, &POINT_FIELDS, |item| PointItem {
        brand_id: item.required_integer("brand_id"),
        promotion_id: item.required_integer("promotion_id"),
        line_id: item.required_text("line_id"),
        change_reason: item.change_reason("change_reason"),
        point_change_record: item.required_integer("point_change_record"),
        changed_at: item.required_time("changed_at"),
        brand_manager_id: item.optional_integer("brand_manager_id"),
        reference: item.optional_text("reference"),
    })
}

/// The import request of voucher statements read by [`vouchers_from_json`].
pub fn voucher_request(items: Vec<VoucherItem>) -> pb::ImportVoucherStatementsRequest {
    pb::ImportVoucherStatementsRequest { data: items.into_iter().map(voucher_data).collect() }
}

/// The import request of point statements read by [`point_statements_from_json`].
pub fn point_request(items: Vec<PointItem>) -> pb::ImportPointStatementsRequest {
    pb::ImportPointStatementsRequest { data: items.into_iter().map(point_data).collect() }
}

/// The server's field path in the files' form: `data[3].line_id` → `data.3.line_id`.
pub fn dotted(field: &str) -> String {
    field.replace('[', ".").replace(']', "")
}

fn voucher_data(item: VoucherItem) -> pb::VoucherStatementData {
    pb::VoucherStatementData {
        brand_id: item.brand_id,
        promotion_id: item.promotion_id,
        voucher_identifier: item.voucher_identifier,
        voucher_number: item.voucher_number,
        voucher_name: item.voucher_name,
        line_id: item.line_id,
        sent_at: Some(item.sent_at),
        used_at: item.used_at,
        cancelled_at: item.cancelled_at,
        brand_manager_id: item.brand_manager_id,
    }
}

fn point_data(item: PointItem) -> pb::PointStatementData {
    pb::PointStatementData {
        brand_id: item.brand_id,
        promotion_id: item.promotion_id,
        line_id: item.line_id,
        change_reason: item.change_reason,
        point_change_record: item.point_change_record,
        changed_at: Some(item.changed_at),
        brand_manager_id: item.brand_manager_id,
        reference: item.reference,
    }
}

fn read_text(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|error| FileError::Unreadable(error.to_string()))
}

/// The envelope, then each item through `read_item`; the items are returned
/// only when no problem was found anywhere.
fn items_from_json<T>(
    text: &str,
    known: &[&str],
    mut read_item: impl FnMut(&mut ItemReader<'_>) -> T,
) -> Result<Vec<T>, FileError> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| FileError::Unreadable(format!("not JSON: {error}")))?;
    let values = data(&value).map_err(|problem| FileError::Problems(vec![problem]))?;
    let mut problems = Vec::new();
    let mut items = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let place = format!("data.{index}");
        let Value::Object(object) = value else {
            problems.push(Problem { field: place, description: format!("must be an object, got {}", kind(value)) });
            continue;
        };
        let mut reader = ItemReader { object, place, problems: &mut problems };
        reader.unknown_fields(known);
        items.push(read_item(&mut reader));
    }
    if problems.is_empty() { Ok(items) } else { Err(FileError::Problems(problems)) }
}

/// The `data` array of the envelope; a wrong envelope is one problem, since
/// nothing inside it can be named.
fn data(value: &Value) -> Result<&[Value], Problem> {
    let problem = |description: String| Problem { field: "data".to_owned(), description };
    let Value::Object(envelope) = value else {
        return Err(problem(format!("is required: the file must be {{\"data\": [...]}}, got {}", kind(value))));
    };
    if let Some(name) = envelope.keys().find(|name| *name != "data") {
        return Err(Problem {
            field: name.clone(),
            description: "is not a field; the file holds only \"data\"".to_owned(),
        });
    }
    let values = match envelope.get("data") {
        None | Some(Value::Null) => return Err(problem("is required: the file must be {\"data\": [...]}".to_owned())),
        Some(Value::Array(values)) => values,
        Some(other) => return Err(problem(format!("must be an array of statements, got {}", kind(other)))),
    };
    if values.is_empty() {
        return Err(problem("is empty: there is nothing to import".to_owned()));
    }
    if values.len() > IMPORT_ITEMS_MAX {
        return Err(problem(format!("holds {} statements, at most {IMPORT_ITEMS_MAX} in one import", values.len())));
    }
    Ok(values)
}

/// Reads one item's fields, recording a problem for each wrong one and
/// standing a default in for it, so that the rest of the item is still checked.
struct ItemReader<'a> {
    object: &'a Map<String, Value>,
    place: String,
    problems: &'a mut Vec<Problem>,
}

impl<'a> ItemReader<'a> {
    fn unknown_fields(&mut self, known: &[&str]) {
        for name in self.object.keys().filter(|name| !known.contains(&name.as_str())) {
            let description = format!("is not a field of this import; the fields are {}", known.join(", "));
            self.problems.push(Problem { field: format!("{}.{name}", self.place), description });
        }
    }

    fn problem(&mut self, name: &str, description: String) {
        self.problems.push(Problem { field: format!("{}.{name}", self.place), description });
    }

    /// The value, or `None` with a problem when it is absent or null.
    /// The field's value, borrowed from the file rather than from the reader, so
    /// that problems can be recorded while it is held.
    fn get(&self, name: &str) -> Option<&'a Value> {
        let object: &'a Map<String, Value> = self.object;
        object.get(name)
    }

    fn required(&mut self, name: &str) -> Option<&'a Value> {
        match self.get(name) {
            None | Some(Value::Null) => {
                self.problem(name, "is required".to_owned());
                None
            }
            Some(value) => Some(value),
        }
    }

    fn required_integer(&mut self, name: &str) -> i64 {
        self.required(name).map_or(0, |value| self.integer(name, value))
    }

    fn optional_integer(&mut self, name: &str) -> i64 {
        match self.get(name) {
            None | Some(Value::Null) => 0,
            Some(value) => self.integer(name, value),
        }
    }

    fn integer(&mut self, name: &str, value: &Value) -> i64 {
        match value.as_i64() {
            Some(number) => number,
            None => {
                self.problem(name, format!("must be an integer, got {}", kind(value)));
                0
            }
        }
    }

    /// Blank is missing, as Echoss (Laravel's `required`) has it.
    fn required_text(&mut self, name: &str) -> String {
        match self.required(name) {
            None => String::new(),
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.problem(name, "is required (it is blank)".to_owned());
                String::new()
            }
            Some(value) => self.text(name, value),
        }
    }

    fn optional_text(&mut self, name: &str) -> String {
        match self.get(name) {
            None | Some(Value::Null) => String::new(),
            Some(value) => self.text(name, value),
        }
    }

    fn text(&mut self, name: &str, value: &Value) -> String {
        match value {
            Value::String(text) => text.clone(),
            other => {
                self.problem(name, format!("must be a string, got {}", kind(other)));
                String::new()
            }
        }
    }

    fn change_reason(&mut self, name: &str) -> String {
        let reason = self.required_text(name);
        if !reason.is_empty() && !CHANGE_REASONS.contains(&reason.as_str()) {
            self.problem(name, format!("{reason:?} is not one of {}", CHANGE_REASONS.join(", ")));
        }
        reason
    }

    fn required_time(&mut self, name: &str) -> prost_types::Timestamp {
        self.required(name).and_then(|value| self.time(name, value)).unwrap_or_default()
    }

    /// Absent and null both mean "not happened" (Echoss asks for null).
    fn optional_time(&mut self, name: &str) -> Option<prost_types::Timestamp> {
        match self.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => self.time(name, value),
        }
    }

    fn time(&mut self, name: &str, value: &Value) -> Option<prost_types::Timestamp> {
        let Value::String(text) = value else {
            self.problem(name, format!("must be an ISO 8601 time string, got {}", kind(value)));
            return None;
        };
        time::parse_iso8601(text).map_err(|reason| self.problem(name, reason)).ok()
    }
}

/// A wrong value in words, with the value when it is short enough to help.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) if text.chars().count() <= 40 => format!("the string {text:?}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{FileError, dotted, point_statements_from_json, vouchers_from_json};

    const VOUCHERS: &str = include_str!("../../tests/fixtures/echoss/voucher_statements.json");
    const POINTS: &str = include_str!("../../tests/fixtures/echoss/point_statements.json");
    const VOUCHERS_BROKEN: &str = include_str!("../../tests/fixtures/echoss/voucher_statements_broken.json");
    const POINTS_BROKEN: &str = include_str!("../../tests/fixtures/echoss/point_statements_broken.json");

    /// The problems as the command prints them, one a line.
    fn problems(error: FileError) -> String {
        match error {
            FileError::Problems(problems) => problems.iter().map(|problem| format!("{problem}\n")).collect(),
            FileError::Unreadable(reason) => panic!("expected problems, got {reason}"),
        }
    }

    #[test]
    fn the_seed_voucher_body_parses_as_it_is() {
        let items = vouchers_from_json(VOUCHERS).unwrap();
        assert_eq!(items.len(), 2);
        let first = &items[0];
        assert_eq!((first.brand_id, first.promotion_id, first.brand_manager_id), (1, 2, 0));
        assert_eq!(first.voucher_identifier, "2223");
        assert_eq!(first.voucher_name, "瓦城 288元");
        assert_eq!(first.line_id, "fb3d6a16-b5d6-4bf8-8fd2-7acd0ec15944");
        // "2021-02-17 02:06:55+00:00" (a space) and "2021-02-17T02:06:55Z" are the same instant.
        assert_eq!(first.sent_at.seconds, 1_613_527_615);
        assert_eq!(first.used_at.map(|time| time.seconds), Some(1_613_527_615));
        assert_eq!(first.cancelled_at.map(|time| time.seconds), Some(1_613_527_615));
        assert_eq!(items[1].brand_manager_id, 3);
        assert_eq!(items[1].voucher_number, "V00A004S0013FCS00804");
    }

    #[test]
    fn the_seed_point_body_parses_as_it_is() {
        let items = point_statements_from_json(POINTS).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].change_reason, "集點");
        assert_eq!(items[0].point_change_record, -2);
        // 2021-03-01T00:00:00+08:00 is the day before in UTC.
        assert_eq!(items[0].changed_at.seconds, 1_614_528_000);
        assert_eq!(items[1].change_reason, "取消");
        assert_eq!(items[1].reference, "");
    }

    #[test]
    fn a_broken_voucher_file_reports_every_problem_by_field() {
        let error = vouchers_from_json(VOUCHERS_BROKEN).unwrap_err();
        assert_eq!(
            problems(error),
            concat!(
                "data.0.brand_id: must be an integer, got the string \"1\"\n",
                "data.0.line_id: is required\n",
                "data.0.used_at: \"2021-02-17 02:06:55\" is not an ISO 8601 time with an offset such as ",
                "2021-03-01T00:00:00+08:00 (premature end of input)\n",
                "data.1.activity: is not a field of this import; the fields are brand_id, promotion_id, ",
                "voucher_identifier, voucher_number, voucher_name, line_id, sent_at, used_at, cancelled_at, ",
                "brand_manager_id\n",
                "data.1.voucher_number: must be a string, got the number 804\n",
                "data.1.sent_at: \"2021-02-30T02:06:55Z\" is not an ISO 8601 time with an offset such as ",
                "2021-03-01T00:00:00+08:00 (input is out of range)\n",
            )
        );
    }

    #[test]
    fn a_broken_point_file_reports_every_problem_by_field() {
        let error = point_statements_from_json(POINTS_BROKEN).unwrap_err();
        assert_eq!(
            problems(error),
            concat!(
                "data.0.line_id: is required\n",
                "data.0.change_reason: \"贈送\" is not one of 集點, 兌換, 取消, COLLECT, REDEEM, CANCEL\n",
                "data.1.brand_id: must be an integer, got the string \"0\"\n",
                "data.1.point_change_record: must be an integer, got the number 1.5\n",
                "data.1.changed_at: \"2021-02-17T25:29:14Z\" is not an ISO 8601 time with an offset such as ",
                "2021-03-01T00:00:00+08:00 (input is out of range)\n",
                "data.1.reference: must be a string, got the number 7\n",
            )
        );
    }

    #[test]
    fn a_wrong_envelope_is_one_problem() {
        let cases = [
            ("[]", "data: is required: the file must be {\"data\": [...]}, got an array\n"),
            ("{}", "data: is required: the file must be {\"data\": [...]}\n"),
            (r#"{"data": []}"#, "data: is empty: there is nothing to import\n"),
            (r#"{"data": {}}"#, "data: must be an array of statements, got an object\n"),
            (r#"{"data": [1], "meta": 1}"#, "meta: is not a field; the file holds only \"data\"\n"),
            (r#"{"data": [1]}"#, "data.0: must be an object, got the number 1\n"),
        ];
        for (text, expected) in cases {
            assert_eq!(problems(point_statements_from_json(text).unwrap_err()), expected, "{text}");
        }
        let too_many = format!(r#"{{"data": [{}]}}"#, vec!["{}"; 1_001].join(","));
        assert_eq!(
            problems(vouchers_from_json(&too_many).unwrap_err()),
            "data: holds 1001 statements, at most 1000 in one import\n"
        );
        assert!(matches!(vouchers_from_json("{"), Err(FileError::Unreadable(_))));
    }

    #[test]
    fn blank_required_text_is_missing_and_null_optionals_are_none() {
        let text = r#"{"data": [{"brand_id": 1, "promotion_id": 2, "voucher_identifier": " ", "voucher_number": "n",
            "voucher_name": "v", "line_id": "m", "sent_at": "2021-02-17T02:06:55Z", "used_at": null,
            "brand_manager_id": null}]}"#;
        assert_eq!(
            problems(vouchers_from_json(text).unwrap_err()),
            "data.0.voucher_identifier: is required (it is blank)\n"
        );
        let valid = text.replace("\" \"", "\"v1\"");
        let items = vouchers_from_json(&valid).unwrap();
        assert_eq!((items[0].used_at, items[0].cancelled_at, items[0].brand_manager_id), (None, None, 0));
    }

    #[test]
    fn server_field_paths_read_like_the_files() {
        assert_eq!(dotted("data[3].line_id"), "data.3.line_id");
        assert_eq!(dotted("data[12]"), "data.12");
        assert_eq!(dotted("data"), "data");
    }
}
