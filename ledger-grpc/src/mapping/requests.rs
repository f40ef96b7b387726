//! Requests to domain commands and queries, one function a request type, so that
//! the services and the fuzz targets (`fuzzing`) map exactly the same way. A
//! request that cannot be mapped is INVALID_ARGUMENT naming the field; the rules
//! of values (lengths, ranges) are the core's, checked by `decide`.

use super::{bulk_add_items, bulk_use_items, decimal, page_size, page_token, timestamp};
use crate::pb;
use crate::status::{bad_request, from_rejection};
use ledger_core::command::{
    BulkAddPoints, BulkUsePoints, CreateMemberCard, CreateProgram, DefineCredit, DefineFormula, DefineReward,
    DefineShop, DeleteMemberCard, GrantCoupons, SetMemberLevels, UpdateMemberCard, UseCoupon, brand_program,
};
use ledger_core::event::ActivityKind;
use ledger_core::limits::{
    ACTIVITIES_PAGE_SIZE_DEFAULT, ACTIVITIES_PAGE_SIZE_MAX, ACTIVITY_KINDS_MAX, MEMBERS_PAGE_SIZE_DEFAULT,
    MEMBERS_PAGE_SIZE_MAX, PAGE_TOKEN_BYTES_MAX,
};
use ledger_core::validate;
use ledger_store::activities::ActivityQuery;
use ledger_store::views::PageRequest;
use tonic::Status;

pub fn create_program(request: pb::CreateProgramRequest) -> CreateProgram {
    CreateProgram { program: request.program_id, name: request.name }
}

pub fn define_formula(request: pb::DefineFormulaRequest) -> Result<DefineFormula, Status> {
    let multiplier = decimal("multiplier", &request.multiplier)?
        .ok_or_else(|| bad_request("multiplier", "multiplier: is required"))?;
    Ok(DefineFormula { program: request.program_id, formula_id: request.formula_id, name: request.name, multiplier })
}

pub fn define_reward(request: pb::DefineRewardRequest) -> Result<DefineReward, Status> {
    Ok(DefineReward {
        expires_at: timestamp("expires_at", request.expires_at)?,
        program: request.program_id,
        reward_id: request.reward_id,
        name: request.name,
        points: request.points,
    })
}

pub fn bulk_add_points(request: pb::BulkAddPointsRequest) -> Result<BulkAddPoints, Status> {
    let items = bulk_add_items(&request.program_id, request.items)?;
    Ok(BulkAddPoints { program: request.program_id, items, atomic: request.atomic })
}

pub fn bulk_use_points(request: pb::BulkUsePointsRequest) -> Result<BulkUsePoints, Status> {
    let items = bulk_use_items(&request.program_id, request.items)?;
    Ok(BulkUsePoints { program: request.program_id, items, atomic: request.atomic })
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
    validate::optional_id(field, value).map_err(|rejection| from_rejection(&rejection))
}

/// ListMembers: the page, from a page token (the hex of the last member id) or
/// an offset.
pub fn members_page(request: &pb::ListMembersRequest) -> Result<PageRequest, Status> {
    let after = if request.page_token.is_empty() { None } else { Some(decode_member_token(&request.page_token)?) };
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

fn decode_member_token(token: &str) -> Result<String, Status> {
    let invalid = || bad_request("page_token", "page_token: not a token this server issued");
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

/// ListActivities: the query, its kinds named (at most one entry a kind).
pub fn activity_query(request: pb::ListActivitiesRequest) -> Result<ActivityQuery, Status> {
    read_id("member_id", &request.member_id)?;
    if request.kinds.len() > ACTIVITY_KINDS_MAX {
        let message = format!("kinds: at most {ACTIVITY_KINDS_MAX} entries, one a kind, got {}", request.kinds.len());
        return Err(bad_request("kinds", &message));
    }
    let mut kinds = Vec::with_capacity(request.kinds.len());
    for (index, text) in request.kinds.iter().enumerate() {
        match ActivityKind::parse(text).filter(|kind| *kind != ActivityKind::Admin) {
            Some(kind) => kinds.push(kind),
            None => {
                let field = format!("kinds[{index}]");
                let message = format!("{field}: {text:?} is not one of POINTS, CREDITS, COUPONS, VOUCHERS, TIERS");
                return Err(bad_request(&field, &message));
            }
        }
    }
    Ok(ActivityQuery {
        from: timestamp("from", request.from)?,
        to: timestamp("to", request.to)?,
        kinds,
        page_size: page_size(request.page_size, ACTIVITIES_PAGE_SIZE_DEFAULT, ACTIVITIES_PAGE_SIZE_MAX),
        before: page_token(&request.page_token)?,
        program: request.program_id,
        member: request.member_id,
    })
}
