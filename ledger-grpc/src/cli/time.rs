//! Times on the command line and in bulk files: RFC 3339 with an offset
//! (`2025-01-31T12:00:00+08:00`) or whole Unix seconds; printed as RFC 3339 UTC.
//! Echoss files take only ISO 8601 with an offset, so that a number where a
//! time belongs is reported rather than read as seconds. Conversions go through
//! the domain `Timestamp` and `mapping`, so the client rounds exactly as the
//! server stores (microseconds).

use crate::mapping;
use ledger_core::Timestamp;
use serde_json::Value;

/// A clap value parser and the bulk files' cell parser. Times outside
/// google.protobuf.Timestamp's range are refused here as the server would refuse
/// them, so that a typo in a year is named before anything is sent.
pub fn parse(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Timestamp::from_unix(seconds, 0).map_err(|error| format!("{seconds} Unix seconds: {error}"));
    }
    let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|error| {
        format!("{text:?} is not an RFC 3339 time such as 2025-01-31T12:00:00+08:00, nor Unix seconds ({error})")
    })?;
    in_range(text, time.to_utc())
}

/// The same as [`parse`], straight to the wire type.
pub fn parse_proto(text: &str) -> Result<prost_types::Timestamp, String> {
    parse(text).map(mapping::to_timestamp)
}

/// An Echoss file's time: ISO 8601 with an offset, the date and time parted by
/// `T` or a space (`2021-02-17 02:06:55+00:00`, `2021-02-17T02:06:55Z`).
pub fn parse_iso8601(text: &str) -> Result<prost_types::Timestamp, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|error| {
        format!("{text:?} is not an ISO 8601 time with an offset such as 2021-03-01T00:00:00+08:00 ({error})")
    })?;
    in_range(text, time.to_utc()).map(mapping::to_timestamp)
}

/// A parsed time checked by the rule the server applies: `0000-12-31T23:00:00-02:00`
/// parses, but is year 1 only after the offset, and `9999-12-31T23:00:00-02:00` is
/// year 10000 in UTC.
fn in_range(text: &str, time: chrono::DateTime<chrono::Utc>) -> Result<Timestamp, String> {
    Timestamp::from_unix(time.timestamp(), i64::from(time.timestamp_subsec_nanos()))
        .map_err(|error| format!("{text:?}: {error}"))
}

/// A clap value parser for a calendar day, `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|error| format!("{text:?} is not a day YYYY-MM-DD ({error})"))
}

/// A clap value parser for a UTC offset, `+08:00` or `-05:00`: the form the
/// server takes, so nothing is lost in passing it on.
pub fn parse_utc_offset(text: &str) -> Result<chrono::FixedOffset, String> {
    let wrong = || format!("{text:?} is not a UTC offset such as +08:00 or -05:00");
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(wrong()),
    };
    let (hours, minutes) = rest.split_once(':').ok_or_else(wrong)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(wrong());
    }
    let hours: i32 = hours.parse().map_err(|_| wrong())?;
    let minutes: i32 = minutes.parse().map_err(|_| wrong())?;
    if hours > 23 || minutes > 59 {
        return Err(wrong());
    }
    chrono::FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(wrong)
}

/// A reply's time in a table whose days are those of `offset` (the voucher
/// report), to the second and without the offset, which the table states once;
/// `-` when absent.
pub fn show_in(time: Option<prost_types::Timestamp>, offset: chrono::FixedOffset) -> String {
    match mapping::timestamp("", time) {
        Ok(Some(time)) => time.to_chrono().with_timezone(&offset).format("%Y-%m-%d %H:%M:%S").to_string(),
        Ok(None) | Err(_) => "-".to_owned(),
    }
}

/// A reply's time as RFC 3339 UTC; `-` when absent (or, never from our server,
/// out of range).
pub fn show(time: Option<prost_types::Timestamp>) -> String {
    match mapping::timestamp("", time) {
        Ok(Some(time)) => time.to_string(),
        Ok(None) | Err(_) => "-".to_owned(),
    }
}

/// The same for JSON: a string, or null when absent.
pub fn json(time: Option<prost_types::Timestamp>) -> Value {
    match mapping::timestamp("", time) {
        Ok(Some(time)) => Value::String(time.to_string()),
        Ok(None) | Err(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, parse_iso8601, parse_utc_offset, show_in};

    #[test]
    fn echoss_times_take_a_t_or_a_space_and_need_an_offset() {
        assert_eq!(parse_iso8601("2021-02-17 02:06:55+00:00").unwrap().seconds, 1_613_527_615);
        assert_eq!(parse_iso8601("2021-02-17T02:06:55Z").unwrap().seconds, 1_613_527_615);
        assert_eq!(parse_iso8601("2021-02-17T10:06:55+08:00").unwrap().seconds, 1_613_527_615);
        assert!(parse_iso8601("2021-02-17 02:06:55").is_err());
        assert!(parse_iso8601("1613527615").is_err());
    }

    #[test]
    fn times_outside_the_protobuf_range_are_refused_in_every_form() {
        assert_eq!(parse("253402300799").unwrap().micros(), 253_402_300_799_000_000);
        let error = parse("253402300800").unwrap_err();
        assert!(error.contains("9999-12-31T23:59:59.999999999Z"), "{error}");
        assert!(parse("-62135596801").is_err());
        assert_eq!(parse("-62135596800").unwrap().micros(), -62_135_596_800_000_000);
        assert!(parse("9999-12-31T23:00:00-02:00").is_err());
        assert!(parse("0001-01-01T00:30:00+01:00").is_err());
        assert!(parse_iso8601("9999-12-31T23:59:59Z").is_ok());
        assert!(parse_iso8601("9999-12-31 23:00:00-02:00").is_err());
        assert!(parse_iso8601("0001-01-01T00:00:00+00:01").is_err());
    }

    #[test]
    fn utc_offsets_round_trip_and_show_times_in_them() {
        let offset = parse_utc_offset("+08:00").unwrap();
        assert_eq!(offset.to_string(), "+08:00");
        assert_eq!(parse_utc_offset("-05:30").unwrap().to_string(), "-05:30");
        for wrong in ["08:00", "+8:00", "+24:00", "+08:60", "+0800", "Z"] {
            assert!(parse_utc_offset(wrong).is_err(), "{wrong}");
        }
        let time = Some(prost_types::Timestamp { seconds: 1_613_527_615, nanos: 0 });
        assert_eq!(show_in(time, offset), "2021-02-17 10:06:55");
        assert_eq!(show_in(None, offset), "-");
    }
}
