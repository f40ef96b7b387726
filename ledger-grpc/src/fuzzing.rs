//! What the fuzz targets (`fuzz/`, cargo-fuzz) and their proptest twins
//! (`tests/hostile_input.rs`, which `cargo test` runs) feed hostile bytes to. Each
//! harness may return an error for any input but must never panic: a panic in
//! a decoder, a mapping or `State::apply` aborts `ledgerd` (release builds use
//! `panic = "abort"`). The harnesses live here, not in the targets, so that the
//! fuzzers and the tests run exactly the same code.

use crate::cli::bulk_file::{self, Kind};
use crate::cli::time;
use crate::echoss;
use crate::{codec, mapping, pb};
use ledger_core::command::{AddPoints, UsePoints};
use ledger_core::event::PointsAdded;
use ledger_core::limits::POINTS_BALANCE_MAX;
use ledger_core::{Command, Context, Event, EventBody, Stamp, State, Timestamp, decide};
use ledger_store::{envelope, log};
use prost::Message;
use std::sync::OnceLock;
use tonic::{Code, Status};

/// (a) Stored bytes: an event envelope, and a log record of envelopes. Whatever
/// decodes is also rendered as StreamEvents renders it (JSON, hashes, times).
pub fn event_decoding(data: &[u8]) {
    if let Ok(decoded) = envelope::decode(data) {
        let logged = log::LoggedEvent { envelope: decoded, hash: *blake3::hash(data).as_bytes() };
        let _ = mapping::event(&logged);
    }
    if let Ok(events) = log::decode_record(1, data) {
        for event in events {
            let _ = event.hash_matches();
            if let Ok(decoded) = envelope::decode(&event.bytes) {
                let _ = mapping::event(&log::LoggedEvent { envelope: decoded, hash: event.hash });
            }
        }
    }
}

/// (b) A request: the first byte picks one of the request types of the protos,
/// the rest are its protobuf bytes. Bytes that are not the message, and a
/// message the mapping refuses, must be INVALID_ARGUMENT; a mapped command is
/// decided on a small state, and whatever it decides is applied to a copy of it.
pub fn request_mapping(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let outcome = match selector % REQUEST_TYPES {
        0 => decode(bytes).map(|r| Some(Command::CreateProgram(mapping::create_program(r)))),
        1 => decode::<pb::ListProgramsRequest>(bytes).map(|_| None),
        2 => decode(bytes).and_then(issue_token),
        3 => decode::<pb::RevokeTokenRequest>(bytes).map(|_| None),
        4 => decode(bytes).and_then(|r| mapping::activity_query(r).map(|_| None)),
        5 => decode::<pb::GetActivityRequest>(bytes).map(|_| None),
        6 => decode::<pb::StreamEventsRequest>(bytes).map(|_| None),
        7 => decode::<pb::VerifyLogRequest>(bytes).map(|_| None),
        8 => decode(bytes).map(|r| Some(Command::GrantCoupons(mapping::grant_coupons(r)))),
        9 => decode(bytes).map(|r| Some(Command::UseCoupon(mapping::use_coupon(r)))),
        10 => decode::<pb::ListMemberCouponsRequest>(bytes).map(|_| None),
        11 => decode(bytes).map(|r| Some(Command::DefineCredit(mapping::define_credit(r)))),
        12 => decode(bytes).and_then(|r: pb::AddCreditsRequest| {
            let command =
                mapping::credits_change(r.program_id, r.member_id, r.credit_id, &r.amount, r.remark, r.reference);
            command.map(|command| Some(Command::AddCredits(command)))
        }),
        13 => decode(bytes).and_then(|r: pb::UseCreditsRequest| {
            let command =
                mapping::credits_change(r.program_id, r.member_id, r.credit_id, &r.amount, r.remark, r.reference);
            command.map(|command| Some(Command::UseCredits(command)))
        }),
        14 => decode::<pb::GetMemberRequest>(bytes).map(|_| None),
        15 => decode(bytes).and_then(|r| mapping::members_page(&r).map(|_| None)),
        16 => decode(bytes).map(|r| Some(Command::SetMemberLevels(mapping::set_member_levels(r)))),
        17 => decode(bytes).and_then(|r| mapping::add_points(r).map(|c| Some(Command::AddPoints(c)))),
        18 => decode(bytes).and_then(|r| mapping::use_points(r).map(|c| Some(Command::UsePoints(c)))),
        19 => decode(bytes).and_then(|r| mapping::bulk_add_points(r).map(|c| Some(Command::BulkAddPoints(c)))),
        20 => decode(bytes).and_then(|r| mapping::bulk_use_points(r).map(|c| Some(Command::BulkUsePoints(c)))),
        21 => decode(bytes).and_then(|r| mapping::define_formula(r).map(|c| Some(Command::DefineFormula(c)))),
        22 => decode::<pb::ListFormulasRequest>(bytes).map(|_| None),
        23 => decode(bytes).and_then(|r| mapping::define_reward(r).map(|c| Some(Command::DefineReward(c)))),
        24 => decode::<pb::ListRewardsRequest>(bytes).map(|_| None),
        25 => decode(bytes).map(|r| Some(Command::CreateMemberCard(mapping::create_member_card(r)))),
        26 => decode(bytes).map(|r| Some(Command::UpdateMemberCard(mapping::update_member_card(r)))),
        27 => decode(bytes).map(|r| Some(Command::DeleteMemberCard(mapping::delete_member_card(r)))),
        28 => decode::<pb::ListMemberCardsRequest>(bytes).map(|_| None),
        29 => decode(bytes).and_then(|r: pb::ImportVoucherStatementsRequest| {
            mapping::voucher_statements(r.data).map(|c| Some(Command::ImportVoucherStatements(c)))
        }),
        30 => decode(bytes).and_then(|r: pb::ImportPointStatementsRequest| {
            mapping::point_statements(r.data).map(|c| Some(Command::ImportPointStatements(c)))
        }),
        31 => decode(bytes).map(|r| Some(Command::DefineShop(mapping::define_shop(r)))),
        32 => decode::<pb::GetVoucherStatementRequest>(bytes).map(|_| None),
        33 => decode(bytes).and_then(|r| mapping::expiring_query(&r).map(|_| None)),
        34 => decode(bytes).and_then(|r| mapping::report_query(&r).map(|_| None)),
        35 => decode(bytes).and_then(|r| mapping::hold_points(r).map(|c| Some(Command::HoldPoints(c)))),
        36 => decode(bytes).and_then(|r| mapping::hold_credits(r).map(|c| Some(Command::HoldCredits(c)))),
        // The store names the hold's member from its event; here none is found.
        37 => decode(bytes).and_then(|r| mapping::capture_hold(r).map(|c| Some(Command::CaptureHold(c)))),
        38 => decode(bytes).map(|r| Some(Command::VoidHold(mapping::void_hold(r)))),
        39 => decode::<pb::GetHoldRequest>(bytes).map(|_| None),
        40 => decode(bytes).and_then(|r| mapping::holds_query(r).map(|_| None)),
        41 => decode(bytes).map(|r| Some(Command::ReverseTransaction(mapping::reverse_transaction(r)))),
        42 => decode::<pb::ListTokensRequest>(bytes).map(|_| None),
        _ => decode::<pb::BackupRequest>(bytes).map(|_| None),
    };
    match outcome {
        Ok(Some(command)) => decide_and_apply(&command),
        Ok(None) => {}
        Err(status) => assert_eq!(status.code(), Code::InvalidArgument, "{status:?}"),
    }
}

/// The request types of the protos' RPCs, one selector each.
pub const REQUEST_TYPES: u8 = 44;

/// The protobuf name of each selector's request type, in selector order: a unit
/// test checks that every RPC's request type is here, so that a new RPC cannot
/// be left out of the fuzzers (ReadEvents takes StreamEvents' request).
pub const REQUEST_TYPE_NAMES: [&str; REQUEST_TYPES as usize] = [
    "CreateProgramRequest",
    "ListProgramsRequest",
    "IssueTokenRequest",
    "RevokeTokenRequest",
    "ListActivitiesRequest",
    "GetActivityRequest",
    "StreamEventsRequest",
    "VerifyLogRequest",
    "GrantCouponsRequest",
    "UseCouponRequest",
    "ListMemberCouponsRequest",
    "DefineCreditRequest",
    "AddCreditsRequest",
    "UseCreditsRequest",
    "GetMemberRequest",
    "ListMembersRequest",
    "SetMemberLevelsRequest",
    "AddPointsRequest",
    "UsePointsRequest",
    "BulkAddPointsRequest",
    "BulkUsePointsRequest",
    "DefineFormulaRequest",
    "ListFormulasRequest",
    "DefineRewardRequest",
    "ListRewardsRequest",
    "CreateMemberCardRequest",
    "UpdateMemberCardRequest",
    "DeleteMemberCardRequest",
    "ListMemberCardsRequest",
    "ImportVoucherStatementsRequest",
    "ImportPointStatementsRequest",
    "DefineShopRequest",
    "GetVoucherStatementRequest",
    "ListExpiringPointsRequest",
    "ListVoucherStatementsRequest",
    "HoldPointsRequest",
    "HoldCreditsRequest",
    "CaptureHoldRequest",
    "VoidHoldRequest",
    "GetHoldRequest",
    "ListHoldsRequest",
    "ReverseTransactionRequest",
    "ListTokensRequest",
    "BackupRequest",
];

/// (c) The `ledger` client's files and flags: the first byte picks the parser.
/// Every time a parser accepts must be one the server accepts too.
pub fn files(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(bytes);
    match selector % 6 {
        0 => {
            for item in echoss::vouchers_from_json(&text).unwrap_or_default() {
                for time in [Some(item.sent_at), item.used_at, item.cancelled_at] {
                    assert_server_takes(time);
                }
            }
        }
        1 => {
            for item in echoss::point_statements_from_json(&text).unwrap_or_default() {
                assert_server_takes(Some(item.changed_at));
            }
        }
        2 => bulk_items(bulk_file::from_json(&text, Kind::Add)),
        3 => bulk_items(bulk_file::from_json(&text, Kind::Use)),
        4 => bulk_items(bulk_file::from_csv_reader(bytes, if bytes.len() % 2 == 0 { Kind::Add } else { Kind::Use })),
        _ => {
            if let Ok(time) = time::parse(&text) {
                assert_server_takes(Some(mapping::to_timestamp(time)));
            }
            let _ = time::parse_day(&text);
            let _ = time::parse_utc_offset(&text);
        }
    }
}

fn bulk_items(items: Result<Vec<bulk_file::Item>, String>) {
    for item in items.unwrap_or_default() {
        assert_server_takes(item.occurred_at);
        assert_server_takes(item.expires_at);
    }
}

fn assert_server_takes(time: Option<prost_types::Timestamp>) {
    if let Err(status) = mapping::timestamp("time", time) {
        panic!("a file parser accepted a time the server refuses: {status:?}");
    }
}

/// Decodes as the server does: through the codec's error mapping.
fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, Status> {
    M::decode(bytes).map_err(|error| codec::invalid_message(&error))
}

fn issue_token(request: pb::IssueTokenRequest) -> Result<Option<Command>, Status> {
    mapping::timestamp("expires_at", request.expires_at).map(|_| None).map_err(crate::status::from_rejection)
}

/// The fuzz state's clock: 2025-01-01T00:00:00Z.
pub const FUZZ_AT: Timestamp = Timestamp::from_micros(1_735_689_600_000_000);

fn decide_and_apply(command: &Command) {
    let (state, next_sequence) = small_state();
    let context = Context { at: FUZZ_AT, next_sequence: *next_sequence };
    if let Ok(decision) = decide(state, command, context) {
        let mut state = state.clone();
        for (sequence, event) in (*next_sequence..).zip(&decision.events) {
            state.apply(Stamp { sequence, recorded_at: FUZZ_AT }, event);
            // What a reply carries as an int64 must fit one, not be clamped.
            if let Some(member) = state.member(&event.program, &event.member) {
                assert!(member.points <= POINTS_BALANCE_MAX, "{event:?} took the balance past the limit");
                assert!(member.qualifying_amount <= POINTS_BALANCE_MAX, "{event:?}: qualifying amount past the limit");
            }
        }
    }
}

/// Program `p` (formula `f`, reward `r`, credit `c`, two member cards) with member
/// `m` (points, credits, coupons `k`, references `add`, `use`, `credit`, `coupon`),
/// member `edge` a few points below the largest balance, and brand `1` with shop
/// `7`, a voucher and a point statement; built once.
pub fn small_state() -> &'static (State, u64) {
    static STATE: OnceLock<(State, u64)> = OnceLock::new();
    STATE.get_or_init(build_small_state)
}

fn build_small_state() -> (State, u64) {
    let text = |value: &str| value.to_owned();
    let time = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let requests: Vec<Command> = vec![
        Command::CreateProgram(mapping::create_program(pb::CreateProgramRequest {
            program_id: text("p"),
            name: text("P"),
        })),
        Command::CreateProgram(mapping::create_program(pb::CreateProgramRequest {
            program_id: text("1"),
            name: text("Brand"),
        })),
        Command::DefineFormula(
            mapping::define_formula(pb::DefineFormulaRequest {
                program_id: text("p"),
                formula_id: text("f"),
                name: text("F"),
                multiplier: text("2.5"),
            })
            .expect("a valid formula"),
        ),
        Command::DefineReward(
            mapping::define_reward(pb::DefineRewardRequest {
                program_id: text("p"),
                reward_id: text("r"),
                name: text("R"),
                points: 10,
                expires_at: None,
            })
            .expect("a valid reward"),
        ),
        Command::DefineCredit(mapping::define_credit(pb::DefineCreditRequest {
            program_id: text("p"),
            credit_id: text("c"),
            name: text("C"),
            unit: text("TWD"),
        })),
        Command::AddPoints(AddPoints {
            program: text("p"),
            member: text("m"),
            points: 100,
            remark: text("seed"),
            reference: text("add"),
            expires_at: Some(Timestamp::from_micros(FUZZ_AT.micros() + 86_400_000_000)),
            ..AddPoints::default()
        }),
        Command::UsePoints(UsePoints {
            program: text("p"),
            member: text("m"),
            points: 10,
            remark: text("seed"),
            reference: text("use"),
            ..UsePoints::default()
        }),
        Command::AddCredits(
            mapping::credits_change(text("p"), text("m"), text("c"), "12.5", text("seed"), text("credit"))
                .expect("a valid credit change"),
        ),
        Command::GrantCoupons(mapping::grant_coupons(pb::GrantCouponsRequest {
            program_id: text("p"),
            member_id: text("m"),
            coupon_id: text("k"),
            name: text("K"),
            count: 3,
            reference: text("coupon"),
        })),
        Command::CreateMemberCard(mapping::create_member_card(pb::CreateMemberCardRequest {
            program_id: text("p"),
            name: text("Basic"),
            benefit: text(""),
            lowest_amount: 0,
            image_url: text(""),
        })),
        Command::CreateMemberCard(mapping::create_member_card(pb::CreateMemberCardRequest {
            program_id: text("p"),
            name: text("Gold"),
            benefit: text(""),
            lowest_amount: 1_000,
            image_url: text(""),
        })),
        Command::DefineShop(mapping::define_shop(pb::DefineShopRequest { brand_id: 1, shop_id: 7, name: text("S") })),
        Command::ImportVoucherStatements(
            mapping::voucher_statements(vec![pb::VoucherStatementData {
                brand_id: 1,
                promotion_id: 2,
                voucher_identifier: text("v1"),
                voucher_number: text("n1"),
                voucher_name: text("V"),
                line_id: text("line"),
                sent_at: time(1_700_000_000),
                used_at: None,
                cancelled_at: None,
                brand_manager_id: 7,
            }])
            .expect("a valid voucher"),
        ),
        Command::ImportPointStatements(
            mapping::point_statements(vec![pb::PointStatementData {
                brand_id: 1,
                promotion_id: 2,
                line_id: text("line"),
                change_reason: text("COLLECT"),
                point_change_record: 5,
                changed_at: time(1_700_000_000),
                brand_manager_id: 7,
                reference: text("statement"),
            }])
            .expect("a valid point statement"),
        ),
    ];
    let mut state = State::default();
    let mut next_sequence = 1;
    for command in &requests {
        let context = Context { at: FUZZ_AT, next_sequence };
        let decision = decide(&state, command, context).unwrap_or_else(|error| panic!("{command:?}: {error}"));
        for event in &decision.events {
            state.apply(Stamp { sequence: next_sequence, recorded_at: FUZZ_AT }, event);
            next_sequence += 1;
        }
    }
    // No sequence of valid commands reaches the balance limit in a test's time, so
    // the edge member is made by applying an add no `decide` would allow.
    let edge = Event {
        program: text("p"),
        member: text("edge"),
        occurred_at: None,
        body: EventBody::PointsAdded(PointsAdded {
            points: POINTS_BALANCE_MAX - 5,
            remark: text("edge"),
            private_remark: String::new(),
            reference: String::new(),
            branch_code: String::new(),
            expires_at: None,
            cost: None,
            formula_id: String::new(),
        }),
    };
    state.apply(Stamp { sequence: next_sequence, recorded_at: FUZZ_AT }, &edge);
    (state, next_sequence + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_rpcs_request_type_has_a_selector() {
        let pool = prost_reflect::DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).expect("the descriptor set");
        let selected: BTreeSet<&str> = REQUEST_TYPE_NAMES.iter().copied().collect();
        assert_eq!(selected.len(), REQUEST_TYPE_NAMES.len(), "a request type named twice");
        let mut requested = BTreeSet::new();
        for service in pool.services().filter(|service| service.package_name() == "ledger.v1") {
            for method in service.methods() {
                let input = method.input();
                assert!(
                    selected.contains(input.name()),
                    "{}: {} has no selector in REQUEST_TYPE_NAMES",
                    method.full_name(),
                    input.name()
                );
                requested.insert(input.name().to_owned());
            }
        }
        let unused: Vec<&&str> = selected.iter().filter(|name| !requested.contains(**name)).collect();
        assert!(unused.is_empty(), "selectors no RPC takes: {unused:?}");
    }
}
