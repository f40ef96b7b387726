//! Coupons (SPEC §5, Loga coupons): a count per member and coupon id. A grant adds
//! to the count, a use takes one.

use crate::command::{GrantCoupons, UseCoupon};
use crate::event::{Event, EventBody};
use crate::field::FieldPath;
use crate::limits::COUPONS_PER_GRANT_MAX;
use crate::overlay::Overlay;
use crate::references;
use crate::rejection::Rejection;
use crate::state::ReferenceKind;
use crate::time::Timestamp;
use crate::validate;

/// (transaction id, count available now).
pub fn grant(view: &mut Overlay<'_>, command: &GrantCoupons) -> Result<(u64, u32), Rejection> {
    validate::id("member_id", &command.member)?;
    validate::id("coupon_id", &command.coupon_id)?;
    validate::name("name", &command.name)?;
    validate::optional_id("reference", &command.reference)?;
    if let Some(entry) = references::earlier(view, &command.program, &command.reference, ReferenceKind::CouponsGrant)? {
        let count = u32::try_from(entry.balance_after).expect("coupon counts fit u32");
        return Ok((entry.transaction_id, count));
    }
    if !(1..=COUPONS_PER_GRANT_MAX).contains(&command.count) {
        return Err(Rejection::OutOfRange {
            field: FieldPath::new("count"),
            got: i128::from(command.count),
            min: 1,
            max: i128::from(COUPONS_PER_GRANT_MAX),
        });
    }
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
    validate::id("member_id", &command.member)?;
    validate::id("coupon_id", &command.coupon_id)?;
    validate::remark("remark", &command.remark)?;
    validate::optional_id("reference", &command.reference)?;
    if let Some(entry) = references::earlier(view, &command.program, &command.reference, ReferenceKind::CouponUse)? {
        let remaining = u32::try_from(entry.balance_after).expect("coupon counts fit u32");
        return Ok((entry.transaction_id, remaining, entry.recorded_at));
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

fn count(view: &Overlay<'_>, program: &str, member: &str, coupon_id: &str) -> u32 {
    view.member(program, member).and_then(|member| member.coupons.get(coupon_id)).map_or(0, |coupons| coupons.count)
}
