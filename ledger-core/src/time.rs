//! Time inside the core: microseconds since the Unix epoch, UTC.
//!
//! A plain integer rather than `chrono::DateTime` so that events encode small and
//! fixed-size, compare cheaply, and carry no time zone the core could misread. The
//! core never reads a clock: every time comes in with the command.

use crate::limits::{TIMESTAMP_NANOS_MAX, TIMESTAMP_SECONDS_MAX, TIMESTAMP_SECONDS_MIN};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// A time given as Unix seconds and nanoseconds, the way google.protobuf.Timestamp
    /// carries it, checked against that type's range: a time a standard client
    /// cannot render (year 10000, nanos of a second or more) is refused here, at
    /// the edge, rather than stored and then sent back in every reply that shows
    /// it. Below a microsecond is dropped, toward the past.
    pub fn from_unix(seconds: i64, nanos: i64) -> Result<Timestamp, TimestampError> {
        let valid_nanos = (0..=i64::from(TIMESTAMP_NANOS_MAX)).contains(&nanos);
        if !valid_nanos || !(TIMESTAMP_SECONDS_MIN..=TIMESTAMP_SECONDS_MAX).contains(&seconds) {
            return Err(TimestampError { seconds, nanos });
        }
        // In range, so neither can overflow (limits.rs asserts it).
        Ok(Timestamp(seconds * 1_000_000 + nanos / 1_000))
    }

    pub fn from_chrono(time: chrono::DateTime<chrono::Utc>) -> Timestamp {
        Timestamp(time.timestamp_micros())
    }

    pub fn to_chrono(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }
}

/// A time outside google.protobuf.Timestamp's range; the caller names the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z with nanos 0..=999999999 \
     (google.protobuf.Timestamp), got {seconds}s {nanos}ns"
)]
pub struct TimestampError {
    pub seconds: i64,
    pub nanos: i64,
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = self.to_chrono();
        write!(f, "{}", time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}
