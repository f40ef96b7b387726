//! The expiry sweep: reads already ignore expired lots, and the sweep records a
//! `PointsExpired` event for each, so that the log explains every change of a
//! balance.

use crate::command::{Context, Decision, ExpirePoints, Outcome};
use crate::event::{Event, EventBody};
use crate::limits::EXPIRY_SWEEP_LOTS_MAX;
use crate::state::State;

pub fn sweep(state: &State, command: ExpirePoints, context: Context) -> Decision {
    let lots_max = command.lots_max.min(EXPIRY_SWEEP_LOTS_MAX);
    let mut events = Vec::new();
    for key in state.expiries.iter().take_while(|key| key.expires_at <= context.at) {
        if events.len() == lots_max {
            break;
        }
        let lot = state.member(&key.program, &key.member).and_then(|member| member.lots.get(key.lot));
        let lot = lot.expect("the expiry index names only existing lots");
        events.push(Event {
            program: key.program.clone(),
            member: key.member.clone(),
            occurred_at: None,
            body: EventBody::PointsExpired { lot: key.lot, points: lot.remaining },
        });
    }
    let lots = events.len();
    Decision { events, outcome: Outcome::PointsExpired { lots } }
}
