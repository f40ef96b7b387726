//! Calendar days at a UTC offset, as the Echoss report filters take them: the brand
//! means its own local day (`2021-02-17` in Taipei), which is a different span of
//! UTC time for every offset.

use crate::field::FieldPath;
use crate::rejection::Rejection;
use crate::time::Timestamp;
use chrono::{NaiveDate, NaiveTime};

const DAY_MICROS: i64 = 86_400_000_000;
const MINUTE_MICROS: i64 = 60_000_000;

/// The [start, end) of calendar day `day` (`YYYY-MM-DD`) at UTC offset `utc_offset`
/// (`+08:00`, `-05:30`; empty = `+00:00`); rejections name `field` (or `utc_offset`).
///
/// A fixed offset has no daylight saving, so every day is exactly 24 hours.
pub fn day_range(field: &str, day: &str, utc_offset: &str) -> Result<(Timestamp, Timestamp), Rejection> {
    let date = parse_day(day).ok_or_else(|| {
        invalid(field, format!("must be a calendar day written YYYY-MM-DD, such as 2021-02-17, got {day:?}"))
    })?;
    let offset_micros = parse_offset(utc_offset).ok_or_else(|| {
        let rule = format!("must be +HH:MM or -HH:MM (hours 00-23, minutes 00-59), such as +08:00, got {utc_offset:?}");
        invalid("utc_offset", rule)
    })?;
    let local_midnight = date.and_time(NaiveTime::MIN).and_utc().timestamp_micros();
    let start = local_midnight.checked_sub(offset_micros);
    let range = start.and_then(|start| Some((start, start.checked_add(DAY_MICROS)?)));
    let (start, end) = range.ok_or_else(|| invalid(field, format!("day {day:?} is out of range")))?;
    Ok((Timestamp::from_micros(start), Timestamp::from_micros(end)))
}

/// Exactly `YYYY-MM-DD`: chrono's own parser also takes `2021-2-7`, which a caller
/// who swapped day and month fields would rather hear about.
fn parse_day(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes.iter().enumerate().all(|(at, byte)| at == 4 || at == 7 || byte.is_ascii_digit());
    if !shaped {
        return None;
    }
    let year = text[0..4].parse().ok()?;
    let month = text[5..7].parse().ok()?;
    let day = text[8..10].parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Micros east of UTC. `Z` is taken as `+00:00`, as RFC 3339 writes it.
fn parse_offset(text: &str) -> Option<i64> {
    if text.is_empty() || text == "Z" {
        return Some(0);
    }
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 6
        && bytes[3] == b':'
        && bytes.iter().enumerate().skip(1).all(|(at, byte)| at == 3 || byte.is_ascii_digit());
    if !shaped {
        return None;
    }
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours: i64 = text[1..3].parse().ok()?;
    let minutes: i64 = text[4..6].parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 60 + minutes) * MINUTE_MICROS)
}

fn invalid(field: &str, rule: String) -> Rejection {
    Rejection::Invalid { field: FieldPath::new(field), rule }
}
