//! The ledger's domain: commands, validation, events and the projections they fold
//! into. Pure and deterministic: no I/O, no clock, no randomness, no hash order.
//! Time and sequence numbers come in with the command (`Context`), so the same
//! events always give the same `State`, which is what makes replay an audit.
//!
//! The shape is decide/apply: [`decide`] checks a command against the state and
//! returns events or a [`Rejection`] naming the field and the rule;
//! [`State::apply`] folds an event in and never fails.

pub mod bulk;
pub mod command;
pub mod coupons;
pub mod credits;
pub mod decide;
pub mod diff;
pub mod event;
pub mod expiry;
pub mod field;
pub mod footprint;
pub mod holds;
pub mod limits;
pub mod lots;
pub mod members;
pub mod overlay;
pub mod points;
pub mod programs;
pub mod reason;
pub mod references;
pub mod rejection;
pub mod reversals;
pub mod state;
pub mod statements;
pub mod tiers;
pub mod time;
pub mod validate;
pub mod vouchers;

pub use command::{Command, Context, Decision, Outcome};
pub use decide::{decide, field_problems};
pub use event::{Event, EventBody, Stamp};
pub use field::FieldPath;
pub use rejection::{Definition, Rejection, RejectionClass};
pub use state::State;
pub use time::Timestamp;
