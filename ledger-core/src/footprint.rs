//! What a command or an event reads and changes: the members, references, lot
//! references and voucher books it names. A store that keeps only some of them in
//! memory (a cache over its rows) makes these resident before `decide` or
//! `State::apply`, so that the core can go on treating an absent member as one no
//! event ever named.
//!
//! The loss this prevents: a member evicted from memory and then taken for a new
//! one, with 0 points, by the next add.

use crate::command::{Command, brand_program};
use crate::event::{Event, EventBody};
use crate::limits::EXPIRY_SWEEP_LOTS_MAX;
use crate::state::State;
use crate::time::Timestamp;

/// One row of the state a command or event may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    Member {
        program: &'a str,
        member: &'a str,
    },
    Reference {
        program: &'a str,
        reference: &'a str,
    },
    /// The reference of the add whose expiring lot this is.
    LotReference {
        program: &'a str,
        lot: u64,
    },
    /// A program's voucher statements and their report indexes, all at once.
    Book {
        program: &'a str,
    },
}

/// Every row `decide` may read for `command` at `at`, given to `visit`.
///
/// Besides these, a reference names the transaction it applied, whose member a
/// replacement changes: the store makes that member resident once the reference
/// is (`Key::Reference` → `ReferenceEntry::member`), and likewise the reference of
/// a lot reference.
pub fn of_command(state: &State, command: &Command, at: Timestamp, visit: &mut impl FnMut(Key<'_>)) {
    let mut member_and_reference = |program: &str, member: &str, reference: &str| {
        visit(Key::Member { program, member });
        if !reference.is_empty() {
            visit(Key::Reference { program, reference });
        }
    };
    match command {
        Command::AddPoints(add) => member_and_reference(&add.program, &add.member, &add.reference),
        Command::UsePoints(spend) => member_and_reference(&spend.program, &spend.member, &spend.reference),
        Command::BulkAddPoints(bulk) => {
            for item in &bulk.items {
                member_and_reference(&bulk.program, &item.member, &item.reference);
            }
        }
        Command::BulkUsePoints(bulk) => {
            for item in &bulk.items {
                member_and_reference(&bulk.program, &item.member, &item.reference);
            }
        }
        Command::AddCredits(change) | Command::UseCredits(change) => {
            member_and_reference(&change.program, &change.member, &change.reference);
        }
        Command::GrantCoupons(grant) => member_and_reference(&grant.program, &grant.member, &grant.reference),
        Command::UseCoupon(spend) => member_and_reference(&spend.program, &spend.member, &spend.reference),
        Command::ImportVoucherStatements(import) => {
            for item in &import.items {
                let program = brand_program(item.brand_id);
                visit(Key::Book { program: &program });
                visit(Key::Member { program: &program, member: &item.line_id });
            }
        }
        Command::ImportPointStatements(import) => {
            for item in &import.items {
                member_and_reference(&brand_program(item.brand_id), &item.line_id, &item.reference);
            }
        }
        Command::HoldPoints(hold) => member_and_reference(&hold.program, &hold.member, &hold.reference),
        Command::HoldCredits(hold) => member_and_reference(&hold.program, &hold.member, &hold.reference),
        // The member the store read from the hold's event (empty: no such hold).
        Command::CaptureHold(capture) => {
            if capture.member.is_empty() {
                if !capture.reference.is_empty() {
                    visit(Key::Reference { program: &capture.program, reference: &capture.reference });
                }
            } else {
                member_and_reference(&capture.program, &capture.member, &capture.reference);
            }
        }
        Command::VoidHold(void) => {
            if !void.member.is_empty() {
                visit(Key::Member { program: &void.program, member: &void.member });
            }
        }
        Command::SetMemberLevels(set) => {
            for (member, _) in &set.levels {
                visit(Key::Member { program: &set.program, member });
            }
        }
        Command::ExpirePoints(sweep) => {
            // The sweep's own walk of the index (`expiry::sweep`), so that it
            // names exactly the lots the sweep will expire.
            let lots_max = sweep.lots_max.min(EXPIRY_SWEEP_LOTS_MAX);
            // A key names a lot or a pending hold; a hold has no lot reference,
            // and its `LotReference` finds no row.
            for key in state.expiries.iter().take_while(|key| key.expires_at <= at).take(lots_max) {
                visit(Key::Member { program: &key.program, member: &key.member });
                visit(Key::LotReference { program: &key.program, lot: key.lot });
            }
        }
        Command::ReverseTransaction(reverse) => {
            if !reverse.reference.is_empty() {
                visit(Key::Reference { program: &reverse.program, reference: &reverse.reference });
            }
            // The member of the transaction the store read from the log; one of
            // another program is refused without looking at anything.
            if let Some(target) = reverse.target.as_ref().filter(|target| target.program == reverse.program)
                && !target.member.is_empty()
            {
                visit(Key::Member { program: &reverse.program, member: &target.member });
            }
        }
        Command::CreateProgram(_)
        | Command::DefineFormula(_)
        | Command::DefineReward(_)
        | Command::DefineCredit(_)
        | Command::DefineShop(_)
        | Command::CreateMemberCard(_)
        | Command::UpdateMemberCard(_)
        | Command::DeleteMemberCard(_) => {}
    }
}

/// Every row `State::apply` reads or changes for `event`, given to `visit`.
pub fn of_event(event: &Event, visit: &mut impl FnMut(Key<'_>)) {
    let program = event.program.as_str();
    if !event.member.is_empty() {
        visit(Key::Member { program, member: &event.member });
    }
    match &event.body {
        EventBody::PointsExpired { lot, .. } => visit(Key::LotReference { program, lot: *lot }),
        EventBody::PointsAddReversed(reversal) | EventBody::PointsUseReversed(reversal) => {
            visit(Key::Reference { program, reference: &reversal.reference });
        }
        EventBody::VoucherRecorded { .. } => visit(Key::Book { program }),
        body => {
            let reference = body.reference();
            if !reference.is_empty() {
                visit(Key::Reference { program, reference });
            }
        }
    }
}
