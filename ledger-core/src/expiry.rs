//! The expiry sweep: reads already ignore expired lots and holds past their
//! time, and the sweep records a `PointsExpired` event for each lot and a
//! `HoldExpired` for each pending hold, so that the log explains every change of
//! a balance.

use crate::command::{Context, Decision, ExpirePoints, Outcome};
use crate::event::{Event, EventBody};
use crate::holds;
use crate::limits::EXPIRY_SWEEP_LOTS_MAX;
use crate::overlay::Overlay;
use crate::state::State;

pub fn sweep(state: &State, command: ExpirePoints, context: Context) -> Decision {
    let lots_max = command.lots_max.min(EXPIRY_SWEEP_LOTS_MAX);
    // Each event applies before the next is decided: a hold's expiry gives points
    // back to a lot that may come due later in the same sweep, which then expires
    // all it holds, not what it held before.
    let mut view = Overlay::new(state, context);
    let mut lots = 0;
    for key in state.expiries.iter().take_while(|key| key.expires_at <= context.at) {
        if lots == lots_max {
            break;
        }
        let member = view.member(&key.program, &key.member).expect("the expiry index names existing members");
        // A transaction id is either an add's lot or a hold (`Member::add_hold`).
        let event = if let Some(lot) = member.lots.get(key.lot) {
            Event {
                program: key.program.clone(),
                member: key.member.clone(),
                occurred_at: None,
                body: EventBody::PointsExpired { lot: key.lot, points: lot.remaining },
            }
        } else {
            let hold = member.holds.get(&key.lot).expect("the expiry index names only existing lots and holds");
            holds::expired_event(&key.program, &key.member, key.lot, hold)
        };
        view.apply(event);
        lots += 1;
    }
    view.finish(Outcome::PointsExpired { lots })
}
