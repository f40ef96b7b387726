//! What a command prints: a [`Reply`] on stdout (text, or one line of JSON with
//! `--json`), or a [`Failure`] on stderr, and the exit status that goes with it.

use serde_json::Value;
use std::process::ExitCode;
use tonic::Status;
use tonic_types::StatusExt;

/// A command's result in both forms, built together so that `--json` never
/// lags behind the text.
#[derive(Debug)]
pub struct Reply {
    pub text: String,
    /// One line, serialized when the reply is built.
    pub json: String,
    /// 0 unless the reply itself reports a failure (a bulk's `fail_at`, an audit
    /// mismatch) that a script must notice.
    pub exit: u8,
    /// The command printed its output as it went (`ledger events`): nothing is left to print.
    pub printed: bool,
}

impl Reply {
    pub fn new(text: String, json: Value) -> Reply {
        Reply { text, json: json.to_string(), exit: 0, printed: false }
    }

    /// The reply of a command that printed everything itself.
    pub fn printed() -> Reply {
        Reply { text: String::new(), json: String::new(), exit: 0, printed: true }
    }

    /// A reply that is one line of JSON either way (`ledger bench`), printed as
    /// given so that its keys keep their documented order.
    pub fn json_line(line: String) -> Reply {
        Reply { text: line.clone(), json: line, exit: 0, printed: false }
    }

    pub fn with_exit(self, exit: u8) -> Reply {
        Reply { exit, ..self }
    }

    pub fn print(&self, json: bool) -> ExitCode {
        if self.printed {
            return ExitCode::from(self.exit);
        }
        if json {
            println!("{}", self.json);
        } else {
            println!("{}", self.text.trim_end());
        }
        ExitCode::from(self.exit)
    }
}

/// Why a command could not produce a reply.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with an error status.
    Status(Status),
    /// The same, its field violations printed under other names: the Echoss
    /// imports name `data[3].line_id` as their files and Echoss do, `data.3.line_id`.
    Renamed(Status, fn(&str) -> String),
    /// Everything else: bad local input, files, the connection, the store.
    Message(String),
}

impl Failure {
    pub fn message(text: impl Into<String>) -> Failure {
        Failure::Message(text.into())
    }

    pub fn print(&self) -> ExitCode {
        match self {
            Failure::Status(status) => eprint!("{}", status_text(status, |field| field.to_owned())),
            Failure::Renamed(status, rename) => eprint!("{}", status_text(status, *rename)),
            Failure::Message(text) => eprintln!("ledger: {text}"),
        }
        ExitCode::FAILURE
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Failure {
        Failure::Status(status)
    }
}

impl From<ledger_store::StoreError> for Failure {
    fn from(error: ledger_store::StoreError) -> Failure {
        Failure::Message(error.to_string())
    }
}

/// The code and message, the causes tonic keeps apart (a refused connection is
/// only "transport error" on its own), then one line per BadRequest field
/// violation, its field named by `rename`.
pub fn status_text(status: &Status, rename: fn(&str) -> String) -> String {
    let mut text = format!("ledger: {}: {}", crate::status::code_name(status.code()), status.message());
    if let Some(source) = std::error::Error::source(status) {
        text.push_str(&format!(": {}", with_causes(source)));
    }
    text.push('\n');
    if let Some(bad_request) = status.get_error_details().bad_request() {
        for violation in &bad_request.field_violations {
            // The server's descriptions may repeat the field; say it once.
            let prefix = format!("{}: ", violation.field);
            let description = violation.description.strip_prefix(&prefix).unwrap_or(&violation.description);
            text.push_str(&format!("  {}: {description}\n", rename(&violation.field)));
        }
    }
    text
}

/// An error and its sources, each once: tonic's transport errors say only
/// "transport error" and keep the reason (refused, unresolved, timed out) in
/// their sources, some of which repeat the one before.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if cause_text != last {
            text.push_str(&format!(": {cause_text}"));
        }
        last = cause_text;
        source = cause.source();
    }
    text
}

/// `key: value` lines, the keys padded to one width.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(key, _)| key.len()).max().unwrap_or(0) + 1;
    let mut text = String::new();
    for (key, value) in pairs {
        text.push_str(&format!("{:<width$} {value}\n", format!("{key}:")));
    }
    text
}

/// A plain table: a header row, then one row per item, columns padded to their
/// widest cell; `empty` stands in when there are no rows.
pub fn table(header: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("{empty}\n");
    }
    let mut widths: Vec<usize> = header.iter().map(|cell| display_width(cell)).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(display_width(cell));
        }
    }
    let mut text = String::new();
    let header: Vec<String> = header.iter().map(|cell| (*cell).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - display_width(cell))))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// Columns a terminal gives the text: CJK characters take two, so that Echoss
/// voucher names (`瓦城 288元`) keep a table aligned. A coarse East Asian Wide
/// table: enough for names, without a crate for it.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|character| match u32::from(character) {
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

/// Empty strings print as `-` so that columns stay aligned and readable.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() { "-".to_owned() } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::{status_text, table};

    /// A server's INVALID_ARGUMENT as the client receives it, with these field violations.
    fn server_reply(message: &str, violations: &[(String, String)]) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt};
        let mut details = ErrorDetails::new();
        for (field, description) in violations {
            details.add_bad_request_violation(field.clone(), description.clone());
        }
        tonic::Status::with_error_details(tonic::Code::InvalidArgument, message, details)
    }

    #[test]
    fn status_text_lists_each_field_violation_once_named() {
        let status = server_reply(
            "2 items are wrong",
            &[
                ("items[0].remark".to_owned(), "items[0].remark: is required".to_owned()),
                ("points".to_owned(), "must be 1..=1000000, got 0".to_owned()),
            ],
        );
        assert_eq!(
            status_text(&status, |field| field.to_owned()),
            "ledger: INVALID_ARGUMENT: 2 items are wrong\n  items[0].remark: is required\n  points: must be 1..=1000000, got 0\n"
        );
    }

    #[test]
    fn table_pads_columns_to_the_widest_cell() {
        let rows = vec![vec!["m1".to_owned(), "100".to_owned()], vec!["member-2".to_owned(), "5".to_owned()]];
        assert_eq!(table(&["MEMBER", "POINTS"], &rows, "none"), "MEMBER    POINTS\nm1        100\nmember-2  5\n");
        assert_eq!(table(&["MEMBER"], &[], "no members"), "no members\n");
    }

    #[test]
    fn table_counts_cjk_characters_as_two_columns() {
        let rows = vec![vec!["瓦城 288元".to_owned(), "1".to_owned()], vec!["ab".to_owned(), "2".to_owned()]];
        assert_eq!(table(&["NAME", "N"], &rows, "none"), "NAME        N\n瓦城 288元  1\nab          2\n");
    }
}
