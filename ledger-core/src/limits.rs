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
/// Events one command may produce: a bulk of `BULK_ITEMS_MAX` items, each possibly
/// preceded by nothing else; a replacement makes two.
pub const COMMAND_EVENTS_MAX: usize = 2 * BULK_ITEMS_MAX;

const _: () = assert!(EXPIRY_SWEEP_LOTS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(BULK_ITEMS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(POINTS_PER_ADD_MAX <= i64::MAX as u64);
