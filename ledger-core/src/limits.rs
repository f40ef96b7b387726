//! Every limit the ledger enforces, in one place, so that users can read them and the
//! relations between them are checked when the crate compiles.

/// Points one add may carry (SPEC §3).
pub const POINTS_PER_ADD_MAX: u64 = 1_000_000;
/// Items in one bulk add or bulk use (Loga `bulk_add_point`).
pub const BULK_ITEMS_MAX: usize = 1_000;
/// Bytes in any id: program, member, formula, reward, reference, branch code.
pub const ID_BYTES_MAX: usize = 128;
/// Bytes in a name.
pub const NAME_BYTES_MAX: usize = 255;
/// Bytes in a remark or private remark.
pub const REMARK_BYTES_MAX: usize = 1_024;
/// Decimal places a formula multiplier or a cost may carry.
pub const DECIMAL_SCALE_MAX: u32 = 4;
/// Lots one expiry sweep command expires at most, so that one sweep never makes a
/// commit group large enough to stall the writers behind it.
pub const EXPIRY_SWEEP_LOTS_MAX: usize = 1_000;
/// Statements in one voucher or point-statement import (Echoss `data[]`).
pub const IMPORT_ITEMS_MAX: usize = 1_000;
/// Member cards a program may hold (Echoss member-cards).
pub const MEMBER_CARDS_MAX: usize = 5;
/// Members one SetMemberLevels batch may name.
pub const LEVELS_ITEMS_MAX: usize = 1_000;
/// Rows of a voucher report page when the caller gives none, and at most.
pub const REPORT_PAGE_SIZE_DEFAULT: usize = 20;
pub const REPORT_PAGE_SIZE_MAX: usize = 100;
/// Credit amounts carry at most this many decimal places; balances are kept
/// exactly in units of 10^-CREDIT_SCALE.
pub const CREDIT_SCALE: u32 = 4;
/// A credit add or use is more than 0 and at most this many credits.
pub const CREDITS_PER_CHANGE_MAX: u64 = 1_000_000;
/// Coupons one grant may add.
pub const COUPONS_PER_GRANT_MAX: u32 = 10_000;
/// Events one command may produce: a bulk of `BULK_ITEMS_MAX` items, each possibly
/// preceded by nothing else; a replacement makes two.
pub const COMMAND_EVENTS_MAX: usize = 2 * BULK_ITEMS_MAX;

const _: () = assert!(EXPIRY_SWEEP_LOTS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(BULK_ITEMS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(IMPORT_ITEMS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(LEVELS_ITEMS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(REPORT_PAGE_SIZE_DEFAULT <= REPORT_PAGE_SIZE_MAX);
const _: () = assert!(CREDIT_SCALE <= DECIMAL_SCALE_MAX);
const _: () = assert!(POINTS_PER_ADD_MAX <= i64::MAX as u64);
