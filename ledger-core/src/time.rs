//! Time inside the core: microseconds since the Unix epoch, UTC.
//!
//! A plain integer rather than `chrono::DateTime` so that events encode small and
//! fixed-size, compare cheaply, and carry no time zone the core could misread. The
//! core never reads a clock: every time comes in with the command.

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

    pub fn from_chrono(time: chrono::DateTime<chrono::Utc>) -> Timestamp {
        Timestamp(time.timestamp_micros())
    }

    pub fn to_chrono(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = self.to_chrono();
        write!(f, "{}", time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}
