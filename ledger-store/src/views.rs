//! What reads return: projections as a caller sees them at a moment, expired lots
//! left out.

use crate::error::LedgerError;
use crate::projections::Projections;
use ledger_core::credits;
use ledger_core::lots::is_live;
use ledger_core::state::{Member, Program};
use ledger_core::vouchers::{VoucherBook, VoucherRecord, VoucherState};
use ledger_core::{FieldPath, Rejection, State, Timestamp};
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub program: String,
    pub member: String,
    /// Live points: expired lots never count, swept or not.
    pub points: u64,
    /// Live lots in spend order.
    pub lots: Vec<LotView>,
    pub qualifying_amount: u64,
    /// 0: no tier.
    pub level: u32,
    /// Empty at level 0.
    pub level_name: String,
    pub level_pinned: bool,
    pub credits: Vec<CreditView>,
    pub coupons: Vec<CouponView>,
    pub first_seen_at: Timestamp,
    pub last_activity_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditView {
    pub credit_id: String,
    pub name: String,
    pub unit: String,
    /// Normalized: no trailing zeros.
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponView {
    pub coupon_id: String,
    pub name: String,
    pub count: u32,
}

/// The latest version of a voucher statement, with what the report shows beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherView {
    pub brand_id: i64,
    pub record: VoucherRecord,
    pub state: VoucherState,
    /// The name of the shop that redeemed it, if defined; else empty.
    pub shop_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherPage {
    pub statements: Vec<VoucherView>,
    pub next_page_token: String,
    pub total_size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LotView {
    pub points: u64,
    pub expires_at: Option<Timestamp>,
}

/// Members are listed by id: after a page token (the last id of the previous page),
/// or at an offset (the Loga and id123 way) when there is no token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub page_size: usize,
    pub after: Option<String>,
    pub offset: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberPage {
    pub members: Vec<MemberView>,
    /// The id to continue after; `None` on the last page.
    pub next_after: Option<String>,
    pub total: u64,
}

pub fn view(program_id: &str, program: &Program, member_id: &str, member: &Member, now: Timestamp) -> MemberView {
    let tier = program.tier(member);
    let credits = member
        .credits
        .iter()
        .map(|(credit_id, units)| {
            let defined = program.credits.get(credit_id);
            CreditView {
                credit_id: credit_id.clone(),
                name: defined.map(|credit| credit.name.clone()).unwrap_or_default(),
                unit: defined.map(|credit| credit.unit.clone()).unwrap_or_default(),
                amount: credits::decimal(*units),
            }
        })
        .collect();
    MemberView {
        program: program_id.to_owned(),
        member: member_id.to_owned(),
        points: member.live_points(now),
        lots: member
            .lots
            .iter()
            .filter(|lot| is_live(lot, now))
            .map(|lot| LotView { points: lot.remaining, expires_at: lot.expires_at })
            .collect(),
        qualifying_amount: member.qualifying_amount,
        level: tier.level,
        level_name: tier.card.map(|card| card.name).unwrap_or_default(),
        level_pinned: tier.pinned,
        credits,
        coupons: coupons(member),
        first_seen_at: member.first_seen_at,
        last_activity_at: member.last_activity_at,
    }
}

pub fn coupons(member: &Member) -> Vec<CouponView> {
    let held = member.coupons.iter();
    held.map(|(coupon_id, coupons)| CouponView {
        coupon_id: coupon_id.clone(),
        name: coupons.name.clone(),
        count: coupons.count,
    })
    .collect()
}

pub fn voucher(brand_id: i64, book: &VoucherBook, record: &VoucherRecord) -> VoucherView {
    VoucherView {
        brand_id,
        record: record.clone(),
        state: record.statement.state(),
        shop_name: book.shop_name(record.statement.brand_manager_id).unwrap_or_default().to_owned(),
    }
}

/// One member: resident, or from its row (`resident`: a member not in memory is
/// current on disk).
pub fn member(
    state: &State,
    rows: &Projections,
    program: &str,
    member_id: &str,
    now: Timestamp,
) -> Result<MemberView, LedgerError> {
    let found = state.program(program).ok_or_else(|| unknown_program(program))?;
    let member = match found.members.get(member_id) {
        Some(member) => Cow::Borrowed(member),
        None => Cow::Owned(rows.member(program, member_id)?.ok_or_else(|| {
            LedgerError::Rejected(Rejection::UnknownMember {
                field: FieldPath::new("member_id"),
                program: program.to_owned(),
                member: member_id.to_owned(),
            })
        })?),
    };
    Ok(view(program, found, member_id, &member, now))
}

/// A page of members in id order: the resident ones merged with the rows of the
/// others.
pub fn members(
    state: &State,
    rows: &Projections,
    program: &str,
    page: &PageRequest,
    now: Timestamp,
) -> Result<MemberPage, LedgerError> {
    let found = state.program(program).ok_or_else(|| unknown_program(program))?;
    let skip = if page.after.is_some() { 0 } else { page.offset };
    // One more than the page, to tell whether another page follows.
    let wanted = skip.saturating_add(page.page_size).saturating_add(1);
    let after = page.after.as_deref();
    let mut merged: BTreeMap<String, Cow<'_, Member>> = BTreeMap::new();
    for (id, member) in rows.members_after(program, after, wanted)? {
        merged.insert(id, Cow::Owned(member));
    }
    let resident: Box<dyn Iterator<Item = (&String, &Member)>> = match after {
        Some(after) => Box::new(found.members.range::<str, _>((Bound::Excluded(after), Bound::Unbounded))),
        None => Box::new(found.members.iter()),
    };
    for (id, member) in resident.take(wanted) {
        merged.insert(id.clone(), Cow::Borrowed(member));
    }
    let mut members: Vec<MemberView> = Vec::with_capacity(page.page_size);
    let mut more = false;
    for (id, member) in merged.iter().skip(skip) {
        if members.len() == page.page_size {
            more = true;
            break;
        }
        members.push(view(program, found, id, member, now));
    }
    let next_after = if more { members.last().map(|last| last.member.clone()) } else { None };
    Ok(MemberPage { members, next_after, total: found.member_count })
}

pub fn unknown_program(program: &str) -> LedgerError {
    LedgerError::Rejected(Rejection::UnknownProgram {
        field: FieldPath::new("program_id"),
        program: program.to_owned(),
    })
}
