//! Requests to domain commands and queries, one function a request type, so that
//! the services and the fuzz targets (`fuzzing`) map exactly the same way. A
//! request that cannot be mapped is INVALID_ARGUMENT naming the field; the rules
//! of values (lengths, ranges) are the core's, checked by `decide`.

use super::{Reading, bulk_add_items, bulk_use_items, foreign_page_token, page_size, page_token};
use crate::pb;
use crate::status::from_rejection;
use ledger_core::command::{
    BulkAddPoints, BulkUsePoints, CreateMemberCard, CreateProgram, DefineCredit, DefineFormula, DefineReward,
    DefineShop, DeleteMemberCard, GrantCoupons, ReverseTransaction, SetMemberLevels, UpdateMemberCard, UseCoupon,
    brand_program,
};
use ledger_core::event::ActivityKind;
use ledger_core::limits::{
    ACTIVITIES_PAGE_SIZE_DEFAULT, ACTIVITIES_PAGE_SIZE_MAX, ACTIVITY_KINDS_MAX, EXPIRING_PAGE_SIZE_DEFAULT,
    EXPIRING_PAGE_SIZE_MAX, EXPIRING_PAGE_TOKEN_BYTES_MAX, MEMBERS_PAGE_SIZE_DEFAULT, MEMBERS_PAGE_SIZE_MAX,
    PAGE_TOKEN_BYTES_MAX,
};
use ledger_core::validate;
use ledger_core::{Command, FieldPath, Rejection};
use ledger_store::activities::ActivityQuery;
use ledger_store::history::{ExpiringCursor, ExpiringQuery};
use ledger_store::views::PageRequest;
use tonic::Status;

pub fn create_program(request: pb::CreateProgramRequest) -> CreateProgram {
    CreateProgram { program: request.program_id, name: request.name }
}

pub fn define_formula(request: pb::DefineFormulaRequest) -> Result<DefineFormula, Status> {
    let mut reading = Reading::new();
    let multiplier = reading.required_decimal("multiplier", &request.multiplier);
    let command =
        DefineFormula { program: request.program_id, formula_id: request.formula_id, name: request.name, multiplier };
    reading.finish_command(command, Command::DefineFormula)
}

pub fn define_reward(request: pb::DefineRewardRequest) -> Result<DefineReward, Status> {
    let mut reading = Reading::new();
    let command = DefineReward {
        expires_at: reading.time("expires_at", request.expires_at),
        program: request.program_id,
        reward_id: request.reward_id,
        name: request.name,
        points: request.points,
    };
    reading.finish_command(command, Command::DefineReward)
}

/// A bulk is never refused whole for an item: an item that does not read stops
/// it with `fail_at` (`MalformedItem`), as one the core refuses does.
pub fn bulk_add_points(request: pb::BulkAddPointsRequest) -> Result<BulkAddPoints, Status> {
    let (items, malformed) = bulk_add_items(&request.program_id, request.items);
    Ok(BulkAddPoints { program: request.program_id, items, atomic: request.atomic, malformed })
}

pub fn bulk_use_points(request: pb::BulkUsePointsRequest) -> Result<BulkUsePoints, Status> {
    let (items, malformed) = bulk_use_items(&request.program_id, request.items);
    Ok(BulkUsePoints { program: request.program_id, items, atomic: request.atomic, malformed })
}

pub fn define_credit(request: pb::DefineCreditRequest) -> DefineCredit {
    DefineCredit { program: request.program_id, credit_id: request.credit_id, name: request.name, unit: request.unit }
}

pub fn grant_coupons(request: pb::GrantCouponsRequest) -> GrantCoupons {
    GrantCoupons {
        program: request.program_id,
        member: request.member_id,
        coupon_id: request.coupon_id,
        name: request.name,
        count: request.count,
        reference: request.reference,
    }
}

pub fn use_coupon(request: pb::UseCouponRequest) -> UseCoupon {
    UseCoupon {
        program: request.program_id,
        member: request.member_id,
        coupon_id: request.coupon_id,
        remark: request.remark,
        reference: request.reference,
    }
}

pub fn reverse_transaction(request: pb::ReverseTransactionRequest) -> ReverseTransaction {
    ReverseTransaction {
        program: request.program_id,
        transaction_id: request.transaction_id,
        remark: request.remark,
        reference: request.reference,
        // The store reads it from its log.
        target: None,
    }
}

pub fn define_shop(request: pb::DefineShopRequest) -> DefineShop {
    DefineShop { program: brand_program(request.brand_id), shop_id: request.shop_id, name: request.name }
}

pub fn create_member_card(request: pb::CreateMemberCardRequest) -> CreateMemberCard {
    CreateMemberCard {
        program: request.program_id,
        name: request.name,
        benefit: request.benefit,
        lowest_amount: request.lowest_amount,
        image_url: request.image_url,
    }
}

pub fn update_member_card(request: pb::UpdateMemberCardRequest) -> UpdateMemberCard {
    UpdateMemberCard {
        program: request.program_id,
        card_id: request.card_id,
        name: request.name,
        benefit: request.benefit,
        lowest_amount: request.lowest_amount,
        image_url: request.image_url,
    }
}

pub fn delete_member_card(request: pb::DeleteMemberCardRequest) -> DeleteMemberCard {
    DeleteMemberCard { program: request.program_id, card_id: request.card_id }
}

pub fn set_member_levels(request: pb::SetMemberLevelsRequest) -> SetMemberLevels {
    let levels = request.levels.into_iter().map(|level| (level.member_id, level.level)).collect();
    SetMemberLevels { program: request.program_id, levels }
}

/// An id a read names: at most `ID_BYTES_MAX` bytes, as a write's ids, so that
/// no reply (a NOT_FOUND that names what was asked for) echoes megabytes of a
/// caller's string back in its trailers.
pub fn read_id(field: &str, value: &str) -> Result<(), Status> {
    validate::optional_id(field, value).map_err(from_rejection)
}

/// ListMembers: the page, from a page token (the hex of the last member id) or
/// an offset.
pub fn members_page(request: &pb::ListMembersRequest) -> Result<PageRequest, Status> {
    let after = if request.page_token.is_empty() {
        None
    } else {
        Some(decode_member_token(&request.page_token).map_err(from_rejection)?)
    };
    Ok(PageRequest {
        page_size: page_size(request.page_size, MEMBERS_PAGE_SIZE_DEFAULT, MEMBERS_PAGE_SIZE_MAX),
        after,
        offset: usize::try_from(request.offset).unwrap_or(usize::MAX),
    })
}

/// Member page tokens are the last member id of the page, hex-encoded so that any
/// id survives as a plain token.
pub fn encode_member_token(after: &str) -> String {
    after.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_member_token(token: &str) -> Result<String, Rejection> {
    let invalid = foreign_page_token;
    if !token.len().is_multiple_of(2) || token.len() > PAGE_TOKEN_BYTES_MAX {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|at| token.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// ListExpiringPoints: `before` is required; the page token names the last lot
/// of the page before.
pub fn expiring_query(request: &pb::ListExpiringPointsRequest) -> Result<ExpiringQuery, Status> {
    let mut reading = Reading::new();
    let before = reading.time("before", request.before);
    if request.before.is_none() {
        reading.push(Rejection::Required { field: FieldPath::new("before") });
    }
    let after =
        if request.page_token.is_empty() { None } else { reading.check(decode_expiring_token(&request.page_token)) };
    reading.finish()?;
    Ok(ExpiringQuery {
        program: request.program_id.clone(),
        before: before.expect("checked above"),
        page_size: page_size(request.page_size, EXPIRING_PAGE_SIZE_DEFAULT, EXPIRING_PAGE_SIZE_MAX),
        after,
    })
}

/// An expiring-lots page token: the last lot's expiry (microseconds), its id and
/// the hex of its member id, so that any id survives as a plain token.
pub fn encode_expiring_token(after: &ExpiringCursor) -> String {
    format!("{}.{}.{}", after.expires_at.micros(), after.lot, encode_member_token(&after.member))
}

fn decode_expiring_token(token: &str) -> Result<ExpiringCursor, Rejection> {
    if token.len() > EXPIRING_PAGE_TOKEN_BYTES_MAX {
        return Err(foreign_page_token());
    }
    let mut parts = token.splitn(3, '.');
    let (Some(micros), Some(lot), Some(member)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(foreign_page_token());
    };
    let micros = micros.parse::<i64>().map_err(|_| foreign_page_token())?;
    let lot = lot.parse::<u64>().map_err(|_| foreign_page_token())?;
    // A token this server made names a time it stored, inside Timestamp's range.
    let seconds = micros.div_euclid(1_000_000);
    let nanos = micros.rem_euclid(1_000_000) * 1_000;
    let expires_at = ledger_core::Timestamp::from_unix(seconds, nanos).map_err(|_| foreign_page_token())?;
    Ok(ExpiringCursor { expires_at, member: decode_member_token(member)?, lot })
}

/// ListActivities: the query, its kinds named (at most one entry a kind).
pub fn activity_query(request: pb::ListActivitiesRequest) -> Result<ActivityQuery, Status> {
    let mut reading = Reading::new();
    reading.check(validate::optional_id("member_id", &request.member_id));
    let mut kinds = Vec::with_capacity(request.kinds.len());
    if request.kinds.len() > ACTIVITY_KINDS_MAX {
        let rule = format!("at most {ACTIVITY_KINDS_MAX} entries, one a kind, got {}", request.kinds.len());
        reading.push(Rejection::Invalid { field: FieldPath::new("kinds"), rule });
    } else {
        for (index, text) in request.kinds.iter().enumerate() {
            match ActivityKind::parse(text).filter(|kind| *kind != ActivityKind::Admin) {
                Some(kind) => kinds.push(kind),
                None => reading.push(Rejection::Invalid {
                    field: FieldPath::indexed("kinds", index),
                    rule: format!("{text:?} is not one of POINTS, CREDITS, COUPONS, VOUCHERS, TIERS"),
                }),
            }
        }
    }
    let query = ActivityQuery {
        from: reading.time("from", request.from),
        to: reading.time("to", request.to),
        kinds,
        page_size: page_size(request.page_size, ACTIVITIES_PAGE_SIZE_DEFAULT, ACTIVITIES_PAGE_SIZE_MAX),
        before: reading.check(page_token(&request.page_token)).flatten(),
        program: request.program_id,
        member: request.member_id,
    };
    reading.finish()?;
    Ok(query)
}
