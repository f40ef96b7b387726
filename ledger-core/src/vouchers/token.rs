//! Page tokens: the sort key of the last row a page showed, so that the next page
//! starts after that row wherever it now sits. An offset would skip or repeat rows
//! when statements arrive between pages; a key does not.
//!
//! `v1.<order><direction>.<fields>`, fields joined by `.`:
//! - sent_at: `<sent>.<slot>`
//! - used_at, cancelled_at: `<time or ->.<sent>.<slot>`
//! - shop_name: `<name as hex>.<shop_id>.<sent>.<slot>`
//!
//! Times are micros. The order and direction are in the token so that a token is
//! never read under an order it was not made for.

use super::ReportOrder;
use crate::field::FieldPath;
use crate::rejection::Rejection;
use std::fmt::Write;

const VERSION: &str = "v1";

/// The sort key of one row, as far as its order needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Cursor {
    /// The used or cancelled time for those orders; `None` when the row lacks it.
    pub time: Option<i64>,
    pub sent_at: i64,
    pub slot: u32,
    /// (name the report sorts by, shop_id), for the shop-name order.
    pub shop: (String, i64),
}

pub(super) fn encode(order: ReportOrder, ascending: bool, cursor: &Cursor) -> String {
    let mut token = format!("{VERSION}.{}", tag(order, ascending));
    match order {
        ReportOrder::SentAt => {}
        ReportOrder::UsedAt | ReportOrder::CancelledAt => match cursor.time {
            Some(time) => write!(token, ".{time}").expect("writing to a String succeeds"),
            None => token.push_str(".-"),
        },
        ReportOrder::ShopName => {
            token.push('.');
            for byte in cursor.shop.0.bytes() {
                write!(token, "{byte:02x}").expect("writing to a String succeeds");
            }
            write!(token, ".{}", cursor.shop.1).expect("writing to a String succeeds");
        }
    }
    write!(token, ".{}.{}", cursor.sent_at, cursor.slot).expect("writing to a String succeeds");
    token
}

/// `None` for the empty token of a first page.
pub(super) fn parse(token: &str, order: ReportOrder, ascending: bool) -> Result<Option<Cursor>, Rejection> {
    if token.is_empty() {
        return Ok(None);
    }
    let mut fields = token.split('.');
    if fields.next() != Some(VERSION) {
        return Err(malformed());
    }
    let made_for = fields.next().ok_or_else(malformed)?;
    let wanted = tag(order, ascending);
    if made_for != wanted {
        return Err(if TAGS.contains(&made_for) { mismatched(made_for, wanted) } else { malformed() });
    }
    let fields: Vec<&str> = fields.collect();
    cursor(order, &fields).ok_or_else(malformed).map(Some)
}

fn cursor(order: ReportOrder, fields: &[&str]) -> Option<Cursor> {
    let [head @ .., sent_at, slot] = fields else { return None };
    let mut cursor = Cursor { sent_at: sent_at.parse().ok()?, slot: slot.parse().ok()?, ..Cursor::default() };
    match (order, head) {
        (ReportOrder::SentAt, []) => {}
        (ReportOrder::UsedAt | ReportOrder::CancelledAt, ["-"]) => {}
        (ReportOrder::UsedAt | ReportOrder::CancelledAt, [time]) => cursor.time = Some(time.parse().ok()?),
        (ReportOrder::ShopName, [name, shop_id]) => cursor.shop = (unhex(name)?, shop_id.parse().ok()?),
        _ => return None,
    }
    Some(cursor)
}

const TAGS: [&str; 8] = ["sa", "sd", "ua", "ud", "ca", "cd", "na", "nd"];

fn tag(order: ReportOrder, ascending: bool) -> &'static str {
    let at = match order {
        ReportOrder::SentAt => 0,
        ReportOrder::UsedAt => 2,
        ReportOrder::CancelledAt => 4,
        ReportOrder::ShopName => 6,
    };
    TAGS[at + usize::from(!ascending)]
}

fn unhex(text: &str) -> Option<String> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let decoded = pairs.map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok());
    String::from_utf8(decoded.collect::<Option<Vec<u8>>>()?).ok()
}

fn malformed() -> Rejection {
    let rule = "is not a token this report gave out; pass the next_page_token of the previous page, \
                or an empty page_token for the first page";
    Rejection::Invalid { field: FieldPath::new("page_token"), rule: rule.to_owned() }
}

fn mismatched(made_for: &str, wanted: &str) -> Rejection {
    let rule = format!(
        "was made for order_by {} {}, but this query asks for {} {}; repeat the query that returned it, \
         or pass an empty page_token to start again",
        order_name(made_for),
        direction_name(made_for),
        order_name(wanted),
        direction_name(wanted)
    );
    Rejection::Invalid { field: FieldPath::new("page_token"), rule }
}

fn order_name(tag: &str) -> &'static str {
    match tag.as_bytes().first() {
        Some(b's') => "sent_at",
        Some(b'u') => "used_at",
        Some(b'c') => "cancelled_at",
        _ => "shop_name",
    }
}

fn direction_name(tag: &str) -> &'static str {
    if tag.ends_with('a') { "ascending" } else { "descending" }
}
