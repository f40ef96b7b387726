//! The append-only log: one sled tree whose keys are big-endian sequence numbers,
//! so that sled's order is the log's order.
//!
//! A record holds every event of one command (a bulk is one record, its events with
//! consecutive sequences) and is keyed by its first sequence. Writing a 1,000-item
//! bulk is then one sled insert, not a thousand: sled's cost per insert, not the
//! disk, is what limits a bulk (NOTES.md).
//!
//! Losses this layout prevents: a gap in the sequence (the writer alone assigns
//! sequences, and `verify` checks each record starts where the last ended); a
//! half-written command (a record is one sled value; sled recovers a prefix of
//! its log, so a crash keeps a prefix of the records); a silently edited event
//! (the hash chain).

use crate::envelope::{self, Envelope, Hash, StoredEvent};
use crate::error::StoreError;

/// The record format this build writes; the first byte of every record.
pub const RECORD_FORMAT: u8 = 1;

#[derive(Clone)]
pub struct Log {
    tree: sled::Tree,
}

pub fn key(sequence: u64) -> [u8; 8] {
    sequence.to_be_bytes()
}

/// The first sequence of the record under `key`.
pub fn sequence_of(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt { sequence: 0, reason: format!("log key of {} bytes", key.len()) })?;
    Ok(u64::from_be_bytes(bytes))
}

pub fn encode_record(events: &[StoredEvent]) -> Vec<u8> {
    let mut bytes = vec![RECORD_FORMAT];
    bincode::serde::encode_into_std_write(events, &mut bytes, envelope::config())
        .expect("writing to a Vec never fails");
    bytes
}

/// Builds one record straight into its final bytes: the same bytes as
/// `encode_record`, without an allocation per event or a second copy.
pub struct RecordBuilder {
    bytes: Vec<u8>,
    scratch: Vec<u8>,
    left: usize,
}

impl RecordBuilder {
    pub fn new(events: usize) -> RecordBuilder {
        let mut bytes = Vec::with_capacity(16 + events * 192);
        bytes.push(RECORD_FORMAT);
        bincode::encode_into_std_write(events, &mut bytes, envelope::config()).expect("writing to a Vec never fails");
        RecordBuilder { bytes, scratch: Vec::with_capacity(256), left: events }
    }

    /// Appends one event; returns its hash.
    pub fn push(&mut self, envelope: &envelope::EnvelopeRef<'_>) -> Hash {
        assert!(self.left > 0, "more events than the record was sized for");
        self.left -= 1;
        self.scratch.clear();
        bincode::serde::encode_into_std_write(envelope, &mut self.scratch, envelope::config())
            .expect("writing to a Vec never fails");
        let hash = *blake3::hash(&self.scratch).as_bytes();
        bincode::encode_into_std_write(self.scratch.len(), &mut self.bytes, envelope::config())
            .expect("writing to a Vec never fails");
        self.bytes.extend_from_slice(&self.scratch);
        self.bytes.extend_from_slice(&hash);
        hash
    }

    pub fn finish(self) -> Vec<u8> {
        assert_eq!(self.left, 0, "fewer events than the record was sized for");
        self.bytes
    }
}

pub fn decode_record(first: u64, bytes: &[u8]) -> Result<Vec<StoredEvent>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { sequence: first, reason };
    let (&format, body) = bytes.split_first().ok_or_else(|| corrupt("empty record".to_owned()))?;
    if format != RECORD_FORMAT {
        return Err(StoreError::UnsupportedFormat {
            what: "log record",
            found: u16::from(format),
            supported: u16::from(RECORD_FORMAT),
        });
    }
    let (events, read): (Vec<StoredEvent>, usize) = bincode::serde::decode_from_slice(body, envelope::decode_config())
        .map_err(|error| corrupt(error.to_string()))?;
    if read != body.len() {
        return Err(corrupt(format!("{} trailing bytes", body.len() - read)));
    }
    if events.is_empty() {
        return Err(corrupt("record without events".to_owned()));
    }
    Ok(events)
}

/// A decoded event with the hash it was stored under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEvent {
    pub envelope: Envelope,
    pub hash: Hash,
}

impl Log {
    pub fn open(db: &sled::Db) -> Result<Log, StoreError> {
        Ok(Log { tree: db.open_tree("log")? })
    }

    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The last event's sequence and hash; `(0, GENESIS_HASH)` for an empty log.
    pub fn head(&self) -> Result<(u64, Hash), StoreError> {
        let Some((key, value)) = self.tree.last()? else {
            return Ok((0, envelope::GENESIS_HASH));
        };
        let first = sequence_of(&key)?;
        let events = decode_record(first, &value)?;
        let count = u64::try_from(events.len()).expect("len fits u64");
        let last = events.last().expect("records are never empty");
        Ok((first + count - 1, last.hash))
    }

    /// Records from the one holding `sequence` on, each as (first sequence, events).
    pub fn records_from(
        &self,
        sequence: u64,
    ) -> impl Iterator<Item = Result<(u64, Vec<StoredEvent>), StoreError>> + use<> {
        let start = match self.tree.range(..=key(sequence)).next_back() {
            Some(Ok((found, _))) => found.to_vec(),
            _ => key(sequence).to_vec(),
        };
        self.tree.range(start..).map(|entry| {
            let (key, value) = entry?;
            let first = sequence_of(&key)?;
            Ok((first, decode_record(first, &value)?))
        })
    }

    /// Decoded events from `sequence` on (inclusive), in order.
    pub fn events_from(&self, sequence: u64) -> impl Iterator<Item = Result<LoggedEvent, StoreError>> + use<> {
        self.records_from(sequence).flat_map(
            move |record| -> Box<dyn Iterator<Item = Result<LoggedEvent, StoreError>>> {
                match record {
                    Err(error) => Box::new(std::iter::once(Err(error))),
                    // Skip the record's events before `sequence` undecoded: a reader
                    // that pages through a 1,000-event bulk would otherwise decode its
                    // start again for every page.
                    Ok((first, events)) => Box::new(
                        events.into_iter().zip(first..).filter(move |(_, at)| *at >= sequence).map(|(stored, _)| {
                            let envelope = envelope::decode(&stored.bytes)
                                .map_err(|error| StoreError::Corrupt { sequence: 0, reason: error.to_string() })?;
                            Ok(LoggedEvent { envelope, hash: stored.hash })
                        }),
                    ),
                }
            },
        )
    }

    /// The decoded record holding `sequence`, as (first sequence, events).
    pub fn record(&self, sequence: u64) -> Result<Option<(u64, Vec<LoggedEvent>)>, StoreError> {
        let Some((key, value)) = self.tree.range(..=key(sequence)).next_back().transpose()? else {
            return Ok(None);
        };
        let first = sequence_of(&key)?;
        let events = decode_record(first, &value)?;
        if usize::try_from(sequence - first).map_or(true, |offset| offset >= events.len()) {
            return Ok(None);
        }
        let decoded = events
            .into_iter()
            .zip(first..)
            .map(|(stored, sequence)| {
                let envelope = envelope::decode(&stored.bytes)
                    .map_err(|error| StoreError::Corrupt { sequence, reason: error.to_string() })?;
                Ok(LoggedEvent { envelope, hash: stored.hash })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((first, decoded)))
    }

    /// One event by its sequence number.
    pub fn event(&self, sequence: u64) -> Result<Option<LoggedEvent>, StoreError> {
        if sequence == 0 {
            return Ok(None);
        }
        let Some((key, value)) = self.tree.range(..=key(sequence)).next_back().transpose()? else {
            return Ok(None);
        };
        let first = sequence_of(&key)?;
        let events = decode_record(first, &value)?;
        let Some(stored) = usize::try_from(sequence - first).ok().and_then(|index| events.get(index)) else {
            return Ok(None);
        };
        let envelope = envelope::decode(&stored.bytes)
            .map_err(|error| StoreError::Corrupt { sequence, reason: error.to_string() })?;
        Ok(Some(LoggedEvent { envelope, hash: stored.hash }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{EVENT_FORMAT, Envelope, EnvelopeRef};
    use ledger_core::event::{EventBody, PointsAdded};
    use ledger_core::{Event, Timestamp};

    fn event(member: &str, points: u64) -> Event {
        let body = EventBody::PointsAdded(PointsAdded {
            points,
            remark: "coffee".into(),
            private_remark: String::new(),
            reference: format!("ref-{member}"),
            branch_code: String::new(),
            expires_at: None,
            cost: None,
            formula_id: String::new(),
        });
        Event { program: "cafe".into(), member: member.into(), occurred_at: None, body }
    }

    /// The writer's one-buffer builder writes exactly what `encode_record` does, so
    /// the golden files that pin `encode_record` pin what the writer writes.
    #[test]
    fn the_builder_writes_the_bytes_of_encode_record() {
        let events = [event("alice", 10), event("bob", 300)];
        let mut builder = RecordBuilder::new(events.len());
        let mut stored = Vec::new();
        let mut prev_hash = [7u8; 32];
        for (sequence, event) in (41..).zip(&events) {
            let event_id = uuid::Uuid::from_u128(u128::from(sequence));
            let recorded_at = Timestamp::from_micros(1_700_000_000_000_000);
            let borrowed = EnvelopeRef {
                format: EVENT_FORMAT,
                sequence,
                event_id,
                recorded_at,
                actor: "tok_1",
                prev_hash: &prev_hash,
                event,
            };
            let hash = builder.push(&borrowed);
            let owned = Envelope {
                format: EVENT_FORMAT,
                sequence,
                event_id,
                recorded_at,
                actor: "tok_1".into(),
                prev_hash,
                event: event.clone(),
            };
            let encoded = envelope::encode(&owned);
            assert_eq!(encoded.hash, hash);
            stored.push(encoded);
            prev_hash = hash;
        }
        assert_eq!(builder.finish(), encode_record(&stored));
    }
}
