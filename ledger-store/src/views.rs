//! What reads return: projections as a caller sees them at a moment, expired lots
//! left out.

use crate::error::LedgerError;
use crate::projections::Projections;
use ledger_core::credits;
use ledger_core::holds::{HoldState, HoldView};
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
    /// Points pending holds set aside (SPEC §14), apart from `points`; a hold past
    /// its time holds nothing.
    pub held_points: u64,
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
    /// Held by pending holds, apart from `amount`.
    pub held: Decimal,
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
        .keys()
        .map(|credit_id| {
            let defined = program.credits.get(credit_id);
            CreditView {
                credit_id: credit_id.clone(),
                name: defined.map(|credit| credit.name.clone()).unwrap_or_default(),
                unit: defined.map(|credit| credit.unit.clone()).unwrap_or_default(),
                amount: credits::decimal(member.available_credits(credit_id, now)),
                held: credits::decimal(member.held_credits(credit_id, now)),
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
        held_points: member.held_points(now),
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

/// What ListHolds asks: a member's holds, or every member's (`member` empty),
/// in hold id order after `after`, optionally of one state at the time of the read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldQuery {
    pub program: String,
    pub member: String,
    pub state: Option<HoldState>,
    pub page_size: usize,
    pub after: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldPage {
    pub holds: Vec<HoldView>,
    /// The last hold id of the page when another page follows.
    pub next_after: Option<u64>,
}

/// One hold of `member` (the member its event names), as it stands at `now`.
pub fn hold(
    state: &State,
    rows: &Projections,
    program: &str,
    member_id: &str,
    hold_id: u64,
    now: Timestamp,
) -> Result<HoldView, LedgerError> {
    state.program(program).ok_or_else(|| unknown_program(program))?;
    let member = resident_or_row(state, rows, program, member_id)?;
    let hold = member.as_ref().and_then(|member| member.holds.get(&hold_id));
    let hold = hold.ok_or_else(|| unknown_hold(program, &hold_id.to_string()))?;
    Ok(HoldView::of(program, member_id, hold_id, hold, now))
}

/// A page of holds. Without a member it reads every member of the program (each
/// resident one and each row): support tooling, not a hot path.
pub fn holds(state: &State, rows: &Projections, query: &HoldQuery, now: Timestamp) -> Result<HoldPage, LedgerError> {
    let program = &query.program;
    let found = state.program(program).ok_or_else(|| unknown_program(program))?;
    let mut members: BTreeMap<String, Cow<'_, Member>> = BTreeMap::new();
    if query.member.is_empty() {
        for (id, member) in rows.members_after(program, None, usize::MAX)? {
            members.insert(id, Cow::Owned(member));
        }
        for (id, member) in &found.members {
            members.insert(id.clone(), Cow::Borrowed(member));
        }
    } else if let Some(member) = resident_or_row(state, rows, program, &query.member)? {
        members.insert(query.member.clone(), member);
    }
    let after = query.after.unwrap_or(0);
    let mut all: Vec<HoldView> = members
        .iter()
        .flat_map(|(id, member)| {
            let pending = member.holds.range(after.saturating_add(1)..);
            pending.map(move |(hold_id, hold)| HoldView::of(program, id, *hold_id, hold, now))
        })
        .filter(|view| query.state.is_none_or(|state| view.hold.state == state))
        .collect();
    all.sort_by_key(|view| view.hold_id);
    let more = all.len() > query.page_size;
    all.truncate(query.page_size);
    let next_after = if more { all.last().map(|view| view.hold_id) } else { None };
    Ok(HoldPage { holds: all, next_after })
}

fn resident_or_row<'s>(
    state: &'s State,
    rows: &Projections,
    program: &str,
    member: &str,
) -> Result<Option<Cow<'s, Member>>, LedgerError> {
    if let Some(found) = state.member(program, member) {
        return Ok(Some(Cow::Borrowed(found)));
    }
    Ok(rows.member(program, member)?.map(Cow::Owned))
}

pub fn unknown_hold(program: &str, hold_id: &str) -> LedgerError {
    LedgerError::Rejected(Rejection::UnknownHold {
        field: FieldPath::new("hold_id"),
        program: program.to_owned(),
        hold_id: hold_id.to_owned(),
    })
}

pub fn unknown_program(program: &str) -> LedgerError {
    LedgerError::Rejected(Rejection::UnknownProgram {
        field: FieldPath::new("program_id"),
        program: program.to_owned(),
    })
}
