//! Coupons (SPEC §5, Loga coupons): a count per member and coupon id. A grant adds
//! to the count, a use takes one.

use crate::command::{GrantCoupons, UseCoupon};
use crate::event::{Event, EventBody};
use crate::field::FieldPath;
use crate::limits::COUPONS_PER_GRANT_MAX;
use crate::overlay::Overlay;
use crate::references::{self, ReferenceKind};
use crate::rejection::Rejection;
use crate::time::Timestamp;
use crate::validate::{self, Problems};

/// (transaction id, count available now).
pub fn grant(view: &mut Overlay<'_>, command: &GrantCoupons) -> Result<(u64, u32), Rejection> {
    let amounts = grant_key_fields(command).then_after_reference(grant_count_fields(command))?;
    if let Some(entry) = references::earlier(view, &command.program, &command.reference, ReferenceKind::CouponsGrant)? {
        return Ok(entry.coupons_granted());
    }
    amounts.finish()?;
    let held = count(view, &command.program, &command.member, &command.coupon_id);
    if held.checked_add(command.count).is_none() {
        return Err(Rejection::Invalid {
            field: FieldPath::new("count"),
            rule: format!("would take the member's {held} coupons beyond {}", u32::MAX),
        });
    }
    let body = EventBody::CouponsGranted {
        coupon_id: command.coupon_id.clone(),
        name: command.name.clone(),
        count: command.count,
        reference: command.reference.clone(),
    };
    let event = Event { program: command.program.clone(), member: command.member.clone(), occurred_at: None, body };
    let transaction_id = view.apply(event);
    Ok((transaction_id, count(view, &command.program, &command.member, &command.coupon_id)))
}

/// (transaction id, coupons left, when it was used).
pub fn use_one(view: &mut Overlay<'_>, command: &UseCoupon) -> Result<(u64, u32, Timestamp), Rejection> {
    use_fields(command).finish()?;
    if let Some(entry) = references::earlier(view, &command.program, &command.reference, ReferenceKind::CouponUse)? {
        return Ok(entry.coupon_used());
    }
    if count(view, &command.program, &command.member, &command.coupon_id) == 0 {
        return Err(Rejection::NoCoupon {
            field: FieldPath::new("coupon_id"),
            member: command.member.clone(),
            coupon_id: command.coupon_id.clone(),
        });
    }
    let body = EventBody::CouponUsed {
        coupon_id: command.coupon_id.clone(),
        remark: command.remark.clone(),
        reference: command.reference.clone(),
    };
    let event = Event { program: command.program.clone(), member: command.member.clone(), occurred_at: None, body };
    let transaction_id = view.apply(event);
    Ok((transaction_id, count(view, &command.program, &command.member, &command.coupon_id), view.at()))
}

/// Every problem of a grant's own fields, whatever the state.
pub fn grant_fields(command: &GrantCoupons) -> Problems {
    let mut problems = grant_key_fields(command);
    problems.append(grant_count_fields(command));
    problems
}

fn grant_key_fields(command: &GrantCoupons) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("member_id", &command.member));
    problems.check(validate::id("coupon_id", &command.coupon_id));
    problems.check(validate::name("name", &command.name));
    problems.check(validate::optional_id("reference", &command.reference));
    problems
}

fn grant_count_fields(command: &GrantCoupons) -> Problems {
    let mut problems = Problems::new();
    if !(1..=COUPONS_PER_GRANT_MAX).contains(&command.count) {
        problems.push(Rejection::OutOfRange {
            field: FieldPath::new("count"),
            got: i128::from(command.count),
            min: 1,
            max: i128::from(COUPONS_PER_GRANT_MAX),
        });
    }
    problems
}

/// Every problem of a coupon use's own fields.
pub fn use_fields(command: &UseCoupon) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("member_id", &command.member));
    problems.check(validate::id("coupon_id", &command.coupon_id));
    problems.check(validate::remark("remark", &command.remark));
    problems.check(validate::optional_id("reference", &command.reference));
    problems
}

fn count(view: &Overlay<'_>, program: &str, member: &str, coupon_id: &str) -> u32 {
    view.member(program, member).and_then(|member| member.coupons.get(coupon_id)).map_or(0, |coupons| coupons.count)
}
