//! The bytes of one event in the log, which auditors must read for years.
//!
//! An event is stored as the bincode 2 encoding (standard configuration) of an
//! [`Envelope`], and its hash is BLAKE3 over those bytes. The envelope holds the
//! previous event's hash, so each hash covers the previous hash and the encoded
//! event: changing any stored byte breaks the chain from there on. The format is
//! pinned by golden files in `tests/golden/`; a change of it is a new `format`
//! number that this module must keep reading.

use ledger_core::{Event, Timestamp};
use serde::{Deserialize, Serialize};

/// The envelope format this build writes; it reads every format up to it.
pub const EVENT_FORMAT: u16 = 1;

pub type Hash = [u8; 32];

/// The hash before the first event.
pub const GENESIS_HASH: Hash = [0; 32];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub format: u16,
    /// Gapless from 1; also the event's transaction id.
    pub sequence: u64,
    /// UUID v7: unique across ledgers, ordered by time.
    pub event_id: uuid::Uuid,
    pub recorded_at: Timestamp,
    /// The token id of whoever asked for the change (`system` for the sweep).
    pub actor: String,
    pub prev_hash: Hash,
    pub event: Event,
}

/// An `Envelope` by reference, for writing: serde encodes it to exactly the
/// bytes of the owned `Envelope` (same fields, same order, same types), without
/// copying the event or the actor first.
#[derive(Serialize)]
pub struct EnvelopeRef<'a> {
    pub format: u16,
    pub sequence: u64,
    pub event_id: uuid::Uuid,
    pub recorded_at: Timestamp,
    pub actor: &'a str,
    pub prev_hash: &'a Hash,
    pub event: &'a Event,
}

/// An envelope as stored: its encoding and the hash of that encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub bytes: Vec<u8>,
    pub hash: Hash,
}

pub fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The configuration every stored value is decoded with: `config()`'s byte
/// format (a limit changes no byte), but a length prefix may claim at most
/// `STORED_VALUE_BYTES_MAX`, so that corrupt bytes are an error, not an
/// allocation of whatever they say.
pub type DecodeConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ ledger_core::limits::STORED_VALUE_BYTES_MAX }>,
>;

pub fn decode_config() -> DecodeConfig {
    config().with_limit::<{ ledger_core::limits::STORED_VALUE_BYTES_MAX }>()
}

pub fn encode(envelope: &Envelope) -> StoredEvent {
    let bytes = bincode::serde::encode_to_vec(envelope, config()).expect("an envelope always encodes");
    let hash = *blake3::hash(&bytes).as_bytes();
    StoredEvent { bytes, hash }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("undecodable envelope: {0}")]
    Bincode(#[from] bincode::error::DecodeError),
    #[error("envelope format {0} is newer than this build reads ({EVENT_FORMAT})")]
    Format(u16),
    #[error("{0} trailing bytes after the envelope")]
    Trailing(usize),
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let (envelope, read): (Envelope, usize) = bincode::serde::decode_from_slice(bytes, decode_config())?;
    if envelope.format > EVENT_FORMAT {
        return Err(DecodeError::Format(envelope.format));
    }
    if read != bytes.len() {
        return Err(DecodeError::Trailing(bytes.len() - read));
    }
    Ok(envelope)
}

impl StoredEvent {
    /// Whether the stored hash is the hash of the stored bytes.
    pub fn hash_matches(&self) -> bool {
        *blake3::hash(&self.bytes).as_bytes() == self.hash
    }
}

pub fn hex(hash: &Hash) -> String {
    blake3::Hash::from_bytes(*hash).to_hex().to_string()
}
