//! `ledger events`: the raw event feed (AuditService), one line per event as it
//! arrives, so that a shell pipeline or a log shipper can follow the ledger.

use super::connect::Server;
use super::output::{Failure, Reply, or_dash};
use super::time;
use crate::pb;
use clap::Args;
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only this program's events; without it every program's (ADMIN token).
    #[arg(long, value_name = "ID", default_value = "", hide_default_value = true)]
    pub program: String,
    /// The first sequence number to print; default the start of the log.
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub from: u64,
    /// Keep printing new events as they are recorded, until interrupted; without it the
    /// command ends after the events recorded when it started.
    #[arg(long)]
    pub follow: bool,
}

/// Prints each event as it comes, rather than a reply at the end: with `--follow`
/// there is no end.
pub async fn run(server: &Server, args: EventsArgs, json: bool) -> Result<Reply, Failure> {
    let request = pb::StreamEventsRequest { from_sequence: args.from, program_id: args.program };
    let mut audit = server.audit();
    let mut events =
        if args.follow { audit.stream_events(request).await? } else { audit.read_events(request).await? }.into_inner();
    while let Some(event) = events.message().await? {
        if json {
            println!("{}", event_json(&event));
        } else {
            println!("{}", event_text(&event));
        }
    }
    Ok(Reply::printed())
}

/// SEQ TIME PROGRAM MEMBER KIND PAYLOAD, space-separated: the payload is one line of
/// JSON and the last field, so `cut -d' ' -f1-5` keeps the rest.
fn event_text(event: &pb::Event) -> String {
    format!(
        "{} {} {} {} {} {}",
        event.sequence,
        time::show(event.recorded_at),
        or_dash(&event.program_id),
        or_dash(&event.member_id),
        event.kind,
        event.payload_json
    )
}

fn event_json(event: &pb::Event) -> Value {
    // The payload is JSON already: nest it, rather than a string a consumer must parse again.
    let payload =
        serde_json::from_str(&event.payload_json).unwrap_or_else(|_| Value::String(event.payload_json.clone()));
    json!({
        "sequence": event.sequence,
        "event_id": event.event_id,
        "recorded_at": time::json(event.recorded_at),
        "program_id": event.program_id,
        "member_id": event.member_id,
        "kind": event.kind,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "payload": payload,
    })
}
