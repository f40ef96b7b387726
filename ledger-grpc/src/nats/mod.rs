//! The event feed in NATS JetStream (SPEC §18, docs/OPERATIONS.md "Event export"):
//! what one message is. `export` publishes the ledger's durable events, `import`
//! rebuilds a ledger from them.
//!
//! One message per event, in sequence order, on subject `ledger.<program>` of one
//! stream (`LEDGER` by default, subjects `ledger.>`, file storage):
//!
//! - header `Nats-Msg-Id`: the event's sequence, decimal, so that JetStream drops
//!   a second publish of it (within its duplicate window) and a restarted exporter
//!   finds where it stopped in the stream's last message;
//! - header `Nats-Expected-Last-Msg-Id`: the sequence published before it in the
//!   same session, or on a session's first message `Nats-Expected-Last-Sequence`:
//!   the stream's last message as the exporter found it. JetStream refuses the
//!   message otherwise, so a publish that failed never leaves a gap behind a later
//!   one that got through, and two exporters on one stream cannot interleave.
//! - body: JSON ([`Body`]): the fields of the proto `Event`, the payload as a JSON
//!   object, the envelope bytes whose BLAKE3 is the hash, and the sequences of the
//!   first and last event of the command (record) the event belongs to.

pub mod export;
pub mod import;

use base64::Engine as _;
use ledger_store::envelope::{self, StoredEvent};
use serde::{Deserialize, Serialize};

/// The stream's name unless `--nats-stream` says otherwise.
pub const STREAM_DEFAULT: &str = "LEDGER";
/// Every subject of the feed starts with this token.
pub const SUBJECT_PREFIX: &str = "ledger";
/// The stream's subjects.
pub const STREAM_SUBJECTS: &str = "ledger.>";

/// The subject of a program's events: `ledger.` and the program id as one
/// subject token. A program id may hold any character but control characters
/// (`ledger_core::validate::id`), and NATS gives `.`, `*`, `>` and whitespace
/// meanings in a subject: every byte of the id's UTF-8 other than ASCII letters,
/// digits, `-` and `_` is written `%XX` (uppercase hex), `%` itself included, so
/// that the token is reversible and never empty (every event names its program).
pub fn subject(program: &str) -> String {
    let mut subject = String::with_capacity(SUBJECT_PREFIX.len() + 1 + program.len());
    subject.push_str(SUBJECT_PREFIX);
    subject.push('.');
    for byte in program.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            subject.push(char::from(byte));
        } else {
            subject.push_str(&format!("%{byte:02X}"));
        }
    }
    subject
}

/// One message's body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Body {
    pub sequence: u64,
    /// UUID v7.
    pub event_id: String,
    /// RFC 3339, UTC.
    pub recorded_at: String,
    pub program_id: String,
    /// Empty for events that name no member (a program's definitions).
    pub member_id: String,
    /// The event kind, e.g. `PointsAdded`.
    pub kind: String,
    /// Hex BLAKE3 of the previous event's envelope bytes.
    pub prev_hash: String,
    /// Hex BLAKE3 of `envelope`.
    pub hash: String,
    /// The event as JSON: the same object as the proto `Event.payload_json`.
    pub payload: serde_json::Value,
    /// The first and last sequence of the command this event is part of: a bulk
    /// of 1,000 items is one record of 1,000 events, and a rebuild keeps it whole.
    pub record_first: u64,
    pub record_last: u64,
    /// The envelope's bytes (bincode 2, the log's format), base64 with padding.
    pub envelope: String,
}

/// What a body must hold for a rebuild; consumers that only read the JSON fields
/// need none of this.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not the feed's JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("sequence {sequence}: `envelope` is not base64: {reason}")]
    Envelope { sequence: u64, reason: String },
    #[error("sequence {sequence}: `hash` is not 64 hex digits")]
    Hash { sequence: u64 },
}

impl Body {
    /// The body of one stored event, with its record's bounds.
    pub fn of(
        sequence: u64,
        stored: &StoredEvent,
        record_first: u64,
        record_last: u64,
    ) -> Result<Body, envelope::DecodeError> {
        let decoded = envelope::decode(&stored.bytes)?;
        let event = &decoded.event;
        Ok(Body {
            sequence,
            event_id: decoded.event_id.to_string(),
            recorded_at: decoded.recorded_at.to_chrono().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            program_id: event.program.clone(),
            member_id: event.member.clone(),
            kind: event.body.name().to_owned(),
            prev_hash: envelope::hex(&decoded.prev_hash),
            hash: envelope::hex(&stored.hash),
            payload: serde_json::to_value(event).expect("events serialize to JSON"),
            record_first,
            record_last,
            envelope: base64::engine::general_purpose::STANDARD.encode(&stored.bytes),
        })
    }

    /// The event as a rebuild takes it, from a message body.
    pub fn exported(payload: &[u8]) -> Result<ledger_store::rebuild::ExportedEvent, BodyError> {
        let body: Rebuildable = serde_json::from_slice(payload)?;
        let sequence = body.sequence;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.envelope.as_bytes())
            .map_err(|error| BodyError::Envelope { sequence, reason: error.to_string() })?;
        let hash = blake3::Hash::from_hex(body.hash.as_bytes()).map_err(|_| BodyError::Hash { sequence })?;
        Ok(ledger_store::rebuild::ExportedEvent {
            sequence,
            record_first: body.record_first,
            record_last: body.record_last,
            bytes,
            hash: *hash.as_bytes(),
        })
    }
}

/// The fields of a body a rebuild reads.
#[derive(Deserialize)]
struct Rebuildable {
    sequence: u64,
    hash: String,
    record_first: u64,
    record_last: u64,
    envelope: String,
}

/// The servers of a `--export-nats` / `--nats` value: one URL, or several
/// separated by commas (a cluster), as the `nats` tools take them.
pub fn servers(url: &str) -> Vec<&str> {
    url.split(',').map(str::trim).filter(|server| !server.is_empty()).collect()
}

/// Checks that `url` names at least one server and each parses as a NATS server
/// address, so that a typo stops `ledgerd` at start rather than retrying for ever.
pub fn check_servers(url: &str) -> Result<(), String> {
    let servers = servers(url);
    if servers.is_empty() {
        return Err(format!("--export-nats {url:?}: no NATS server"));
    }
    for server in servers {
        server
            .parse::<async_nats::ServerAddr>()
            .map_err(|error| format!("--export-nats {server:?}: not a NATS server address: {error}"))?;
    }
    Ok(())
}

/// The sequence a message's `Nats-Msg-Id` names, if it is one.
pub fn message_sequence(headers: Option<&async_nats::HeaderMap>) -> Option<u64> {
    headers?.get(async_nats::header::NATS_MESSAGE_ID)?.as_str().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{servers, subject};

    #[test]
    fn a_url_names_one_server_or_a_cluster() {
        assert_eq!(servers("nats://a:4222"), ["nats://a:4222"]);
        assert_eq!(servers("nats://a:4222, nats://b:4222,"), ["nats://a:4222", "nats://b:4222"]);
        assert!(super::check_servers("nats://a:4222,b:4222").is_ok());
        assert!(super::check_servers(" , ").is_err());
        assert!(super::check_servers("http://a:4222").is_err());
    }

    #[test]
    fn a_program_id_is_one_reversible_subject_token() {
        assert_eq!(subject("cafe"), "ledger.cafe");
        assert_eq!(subject("1234"), "ledger.1234");
        assert_eq!(subject("a-b_c"), "ledger.a-b_c");
        assert_eq!(subject("Corner Shop.2"), "ledger.Corner%20Shop%2E2");
        assert_eq!(subject("*>%"), "ledger.%2A%3E%25");
        assert_eq!(subject("café"), "ledger.caf%C3%A9");
    }
}
