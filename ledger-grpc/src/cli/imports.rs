//! `ledger import vouchers|point-statements FILE`: an Echoss request body sent
//! as one import. The file is checked whole before connecting, so that a bad
//! file is reported without a server and nothing of it is sent; the server
//! checks again (rules the file cannot know, such as balances) and writes all
//! of it or nothing. Either way problems print one a line, named the Echoss
//! way (`data.3.line_id`).

use super::connect::Server;
use super::output::{Failure, Reply, fields};
use crate::echoss::{self, FileError};
use crate::pb;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use tonic::Status;

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Imports Echoss voucher statements (the body of POST /api/external/voucher_statements).
    ///
    /// A statement whose (brand_id, promotion_id, voucher_identifier) is stored replaces it.
    /// The file is checked whole first: if anything is wrong, every problem is printed, one a
    /// line (data.0.sent_at: ...), and nothing is sent.
    #[command(after_help = "Fields of each item: brand_id, promotion_id, voucher_identifier, voucher_number, \
                            voucher_name, line_id, sent_at (required); used_at, cancelled_at (null or absent: \
                            not happened), brand_manager_id (0 or absent: none).")]
    Vouchers(ImportArgs),
    /// Imports Echoss point statements (the body of POST /api/point_statements).
    ///
    /// Each changes the points of member line_id in program brand_id, in file order. The file
    /// is checked whole first: if anything is wrong, every problem is printed, one a line
    /// (data.0.changed_at: ...), and nothing is sent.
    #[command(after_help = "Fields of each item: brand_id, promotion_id, line_id, change_reason (集點, 兌換, 取消 \
                            or COLLECT, REDEEM, CANCEL), point_change_record (signed, non-zero), changed_at \
                            (required); brand_manager_id (0 or absent: none), reference (an idempotency key, so \
                            that a re-import applies once).")]
    PointStatements(ImportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A JSON file {"data": [...]}: Echoss field names, integer ids, ISO 8601 times with an
    /// offset ("2021-02-17 02:06:55+00:00", "2021-03-01T00:00:00+08:00"). At most 1,000 items.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
}

/// An import built from its file, ready to send.
pub enum Prepared {
    Vouchers(pb::ImportVoucherStatementsRequest),
    PointStatements(pb::ImportPointStatementsRequest),
}

pub fn prepare(command: ImportCommand) -> Result<Prepared, Failure> {
    match command {
        ImportCommand::Vouchers(args) => {
            let items = echoss::read_vouchers(&args.file).map_err(|error| file_failure(&args.file, error))?;
            Ok(Prepared::Vouchers(echoss::voucher_request(items)))
        }
        ImportCommand::PointStatements(args) => {
            let items = echoss::read_point_statements(&args.file).map_err(|error| file_failure(&args.file, error))?;
            Ok(Prepared::PointStatements(echoss::point_request(items)))
        }
    }
}

pub async fn run(server: &Server, prepared: Prepared) -> Result<Reply, Failure> {
    match prepared {
        Prepared::Vouchers(request) => {
            let sent = request.data.len();
            let reply = server.vouchers().import_voucher_statements(request).await.map_err(renamed)?.into_inner();
            let text = fields(&[
                ("statements", sent.to_string()),
                ("created", reply.created.to_string()),
                ("updated", reply.updated.to_string()),
            ]);
            Ok(Reply::new(text, json!({ "statements": sent, "created": reply.created, "updated": reply.updated })))
        }
        Prepared::PointStatements(request) => {
            let sent = request.data.len();
            let reply = server.vouchers().import_point_statements(request).await.map_err(renamed)?.into_inner();
            let mut applied = reply.applied.to_string();
            // The server counts only what changed: the rest carried references used before.
            if usize::try_from(reply.applied).is_ok_and(|applied| applied < sent) {
                applied.push_str(" (the others' references were used before: nothing changed for them)");
            }
            let text = fields(&[("statements", sent.to_string()), ("applied", applied)]);
            Ok(Reply::new(text, json!({ "statements": sent, "applied": reply.applied })))
        }
    }
}

/// The server names fields `data[3].line_id`; the file and Echoss say `data.3.line_id`.
fn renamed(status: Status) -> Failure {
    Failure::Renamed(status, echoss::dotted)
}

fn file_failure(path: &Path, error: FileError) -> Failure {
    match error {
        FileError::Unreadable(reason) => Failure::message(format!("{}: {reason}", path.display())),
        FileError::Problems(problems) => {
            let count = problems.len();
            let plural = if count == 1 { "" } else { "s" };
            let mut text = format!("{}: {count} problem{plural}; nothing was sent", path.display());
            for problem in &problems {
                text.push_str(&format!("\n  {problem}"));
            }
            Failure::Message(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::output::{Failure, status_text};
    use super::{ImportArgs, ImportCommand, prepare};
    use std::path::PathBuf;

    /// A server's INVALID_ARGUMENT as the client receives it, with these field violations.
    fn server_reply(message: &str, violations: &[(String, String)]) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt};
        let mut details = ErrorDetails::new();
        for (field, description) in violations {
            details.add_bad_request_violation(field.clone(), description.clone());
        }
        tonic::Status::with_error_details(tonic::Code::InvalidArgument, message, details)
    }

    fn fixture(name: &str) -> PathBuf {
        [env!("CARGO_MANIFEST_DIR"), "..", "tests", "fixtures", "echoss", name].iter().collect()
    }

    #[test]
    fn server_violations_print_one_a_line_named_like_the_file() {
        let status = server_reply(
            "2 statements are invalid; nothing was written",
            &[
                ("data[0].point_change_record".to_owned(), "would leave a balance of -2".to_owned()),
                ("data[1].line_id".to_owned(), "data[1].line_id: is longer than 128 bytes".to_owned()),
            ],
        );
        let Failure::Renamed(status, rename) = super::renamed(status) else { panic!("not renamed") };
        assert_eq!(
            status_text(&status, rename),
            concat!(
                "ledger: INVALID_ARGUMENT: 2 statements are invalid; nothing was written\n",
                "  data.0.point_change_record: would leave a balance of -2\n",
                "  data.1.line_id: is longer than 128 bytes\n",
            )
        );
    }

    #[test]
    fn a_broken_file_is_every_problem_and_nothing_sent() {
        let file = fixture("point_statements_broken.json");
        let Err(Failure::Message(text)) = prepare(ImportCommand::PointStatements(ImportArgs { file: file.clone() }))
        else {
            panic!("the broken file was accepted")
        };
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(format!("{}: 6 problems; nothing was sent", file.display()).as_str()));
        assert_eq!(lines.next(), Some("  data.0.line_id: is required"));
        assert_eq!(lines.count(), 5);
        assert!(prepare(ImportCommand::Vouchers(ImportArgs { file: fixture("voucher_statements.json") })).is_ok());
    }
}
