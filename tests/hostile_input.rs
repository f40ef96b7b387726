//! Hostile input (issue 11): bytes that are not a request, times outside
//! google.protobuf.Timestamp's range and lists past their limits are refused
//! with INVALID_ARGUMENT naming the field, and change nothing; over TCP against
//! the real `ledgerd`.
//!
//! The proptest twins of the cargo-fuzz targets (`fuzz/`) run here too, with a
//! modest case count (`PROPTEST_CASES` raises it), and every input a fuzzer
//! found or that once broke something is replayed from `tests/fixtures/fuzz/`.

mod support;

use ledger_grpc::fuzzing;
use ledger_grpc::pb;
use proptest::prelude::*;
use prost::Message;
use prost::bytes::{Buf, BufMut};
use std::path::Path;
use support::{Server, assert_invalid_field, get_member, refused, started};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;

const PROGRAM: &str = "cafe";

/// The first second google.protobuf.Timestamp cannot hold: 10000-01-01T00:00:00Z.
const YEAR_10000: i64 = 253_402_300_800;
/// The first second before it can: 0000-12-31T23:59:59Z.
const BEFORE_YEAR_1: i64 = -62_135_596_801;

// Raw bytes over gRPC: a codec that sends a request's bytes as they are.

#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Sends `bytes` as the request of `path` (`/ledger.v1.PointsService/AddPoints`).
async fn send_raw(server: &Server, path: &'static str, bytes: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.expect("the channel is ready");
    let mut request = tonic::Request::new(bytes);
    let bearer: MetadataValue<_> = format!("Bearer {}", server.admin_token).parse().expect("ascii token");
    request.metadata_mut().insert("authorization", bearer);
    grpc.unary(request, PathAndQuery::from_static(path), RawCodec).await.map(tonic::Response::into_inner)
}

async fn events_in_log(server: &Server) -> u64 {
    let mut client = server.admin().await;
    client.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify log").into_inner().events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_invalid_argument_naming_the_problem() {
    let (server, _client) = started("hostile-protobuf", &[PROGRAM]).await;
    let before = events_in_log(&server).await;
    // (method, bytes, the field the answer names)
    let cases: [(&'static str, Vec<u8>, &str); 7] = [
        // Field 31 with wire type 7, which does not exist.
        ("/ledger.v1.PointsService/AddPoints", vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x07], "request"),
        // program_id (field 1, a string) sent as a varint.
        ("/ledger.v1.PointsService/AddPoints", vec![0x08, 0x01], "program_id"),
        // member_id (field 2) that is not UTF-8.
        (
            "/ledger.v1.MembersService/GetMember",
            vec![0x0a, 0x04, b'c', b'a', b'f', b'e', 0x12, 0x02, 0xc3, 0x28],
            "member_id",
        ),
        // program_id's length running past the end of the message.
        ("/ledger.v1.AdminService/CreateProgram", vec![0x0a, 0x7f, b'x'], "program_id"),
        // items[0].member_id not UTF-8, inside a bulk.
        ("/ledger.v1.PointsService/BulkAddPoints", bulk_with_bad_member(), "items.member_id"),
        // data[0].sent_at (a Timestamp) whose seconds are a string.
        (
            "/ledger.v1.VouchersService/ImportVoucherStatements",
            vec![0x0a, 0x04, 0x3a, 0x02, 0x0a, 0x00],
            "data.sent_at.seconds",
        ),
        // to.seconds (a varint) cut off inside the nested Timestamp.
        ("/ledger.v1.AuditService/ListActivities", vec![0x22, 0x02, 0x08, 0xff], "to.seconds"),
    ];
    for (path, bytes, field) in cases {
        let status = send_raw(&server, path, bytes).await.expect_err(path);
        assert_invalid_field(&status, field);
        assert!(status.message().contains("not a valid protobuf message"), "{path}: {status:?}");
        let info = tonic_types::StatusExt::get_details_error_info(&status).expect("an ErrorInfo");
        assert_eq!((info.domain.as_str(), info.reason.as_str()), ("ledger.v1", "INVALID_FIELD"), "{path}");
    }
    assert_eq!(events_in_log(&server).await, before, "nothing was written");
    // The same path still works with good bytes.
    let good = pb::CreateProgramRequest { program_id: "other".into(), name: "Other".into() }.encode_to_vec();
    send_raw(&server, "/ledger.v1.AdminService/CreateProgram", good).await.expect("a valid request");
}

fn bulk_with_bad_member() -> Vec<u8> {
    let mut item = Vec::new();
    item.extend_from_slice(&[0x0a, 0x02, 0xc3, 0x28]); // member_id = invalid UTF-8
    let mut bytes = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), ..Default::default() }.encode_to_vec();
    bytes.push(0x12); // items, field 2, length-delimited
    bytes.push(u8::try_from(item.len()).expect("short"));
    bytes.extend_from_slice(&item);
    bytes
}

fn timestamp(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos })
}

fn add(member: &str) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points: 10,
        remark: "latte".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_points_expiring_in_year_10000_is_refused_and_nothing_is_stored() {
    let (server, mut client) = started("hostile-year-10000", &[PROGRAM]).await;
    let before = events_in_log(&server).await;
    let request = pb::AddPointsRequest { expires_at: timestamp(YEAR_10000, 0), ..add("alice") };
    let status = refused(client.points.add_points(request).await, Code::InvalidArgument);
    assert_invalid_field(&status, "expires_at");
    assert!(status.message().contains("253402300800"), "{status:?}");
    refused(client.members.get_member(get_member(PROGRAM, "alice")).await, Code::NotFound);
    assert_eq!(events_in_log(&server).await, before);

    // The last instant of year 9999 is a time like any other, and comes back valid.
    let request = pb::AddPointsRequest { expires_at: timestamp(YEAR_10000 - 1, 999_999_999), ..add("alice") };
    client.points.add_points(request).await.expect("the last representable instant");
    let member = client.members.get_member(get_member(PROGRAM, "alice")).await.expect("alice").into_inner();
    assert_eq!(member.lots[0].expires_at, timestamp(YEAR_10000 - 1, 999_999_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_timestamp_outside_the_protobuf_range_names_its_field() {
    let (server, mut client) = started("hostile-timestamps", &[PROGRAM, "1"]).await;
    let before = events_in_log(&server).await;
    for (seconds, nanos) in [(YEAR_10000, 0), (BEFORE_YEAR_1, 0), (0, 1_000_000_000), (0, -1)] {
        let time = timestamp(seconds, nanos);
        let status = refused(
            client.points.add_points(pb::AddPointsRequest { occurred_at: time, ..add("alice") }).await,
            Code::InvalidArgument,
        );
        assert_invalid_field(&status, "occurred_at");
        let spend = pb::UsePointsRequest {
            program_id: PROGRAM.into(),
            member_id: "alice".into(),
            points: 1,
            remark: "cookie".into(),
            occurred_at: time,
            ..Default::default()
        };
        assert_invalid_field(&refused(client.points.use_points(spend).await, Code::InvalidArgument), "occurred_at");
        let bulk = pb::BulkAddPointsRequest {
            program_id: PROGRAM.into(),
            items: vec![
                pb::BulkAddItem { member_id: "bob".into(), points: 1, remark: "r".into(), ..Default::default() },
                pb::BulkAddItem {
                    member_id: "bob".into(),
                    points: 1,
                    remark: "r".into(),
                    expires_at: time,
                    ..Default::default()
                },
            ],
            // Atomic, so that the item before the bad one is not written either.
            atomic: true,
        };
        // A bulk is not refused whole for one item: it stops there with `fail_at`
        // (SPEC §3, §13), naming the item's field.
        let result = client.points.bulk_add_points(bulk).await.expect("a bulk answers").into_inner();
        let failure = result.failure.clone().expect("item 1 failed");
        assert_eq!((result.fail_at, result.applied_count), (Some(1), 0), "{result:?}");
        assert_eq!((failure.code.as_str(), failure.field.as_str()), ("INVALID_FIELD", "items[1].expires_at"));
        let reward = pb::DefineRewardRequest {
            program_id: PROGRAM.into(),
            reward_id: "cake".into(),
            name: "Cake".into(),
            points: 5,
            expires_at: time,
        };
        assert_invalid_field(&refused(client.points.define_reward(reward).await, Code::InvalidArgument), "expires_at");
        let token = pb::IssueTokenRequest {
            role: pb::Role::Viewer.into(),
            program_id: PROGRAM.into(),
            name: "t".into(),
            expires_at: time,
            max_requests: None,
        };
        assert_invalid_field(&refused(client.admin.issue_token(token).await, Code::InvalidArgument), "expires_at");
        let activities = pb::ListActivitiesRequest {
            program_id: PROGRAM.into(),
            member_id: "alice".into(),
            from: time,
            ..Default::default()
        };
        assert_invalid_field(&refused(client.audit.list_activities(activities).await, Code::InvalidArgument), "from");
        let voucher = pb::VoucherStatementData {
            brand_id: 1,
            promotion_id: 2,
            voucher_identifier: "v1".into(),
            voucher_number: "n1".into(),
            voucher_name: "V".into(),
            line_id: "line".into(),
            sent_at: timestamp(1_700_000_000, 0),
            used_at: time,
            cancelled_at: None,
            brand_manager_id: 0,
        };
        let import = pb::ImportVoucherStatementsRequest { data: vec![voucher] };
        let status = refused(client.vouchers.import_voucher_statements(import).await, Code::InvalidArgument);
        assert_invalid_field(&status, "data[0].used_at");
        let statement = pb::PointStatementData {
            brand_id: 1,
            promotion_id: 2,
            line_id: "line".into(),
            change_reason: "COLLECT".into(),
            point_change_record: 5,
            changed_at: time,
            brand_manager_id: 0,
            reference: String::new(),
        };
        let import = pb::ImportPointStatementsRequest { data: vec![statement] };
        let status = refused(client.vouchers.import_point_statements(import).await, Code::InvalidArgument);
        assert_invalid_field(&status, "data[0].changed_at");
    }
    assert_eq!(events_in_log(&server).await, before, "no refused request wrote anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_tokens_past_their_limits_are_refused_by_field() {
    let (_server, mut client) = started("hostile-limits", &[PROGRAM, "1"]).await;
    let kinds = ["POINTS", "CREDITS", "COUPONS", "VOUCHERS", "TIERS", "POINTS"].map(String::from).to_vec();
    let activities = pb::ListActivitiesRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        kinds,
        ..Default::default()
    };
    assert_invalid_field(&refused(client.audit.list_activities(activities).await, Code::InvalidArgument), "kinds");
    let page =
        pb::ListMembersRequest { program_id: PROGRAM.into(), page_token: "ab".repeat(129), ..Default::default() };
    assert_invalid_field(&refused(client.members.list_members(page).await, Code::InvalidArgument), "page_token");
    // Ids a read names are bounded like a write's: no reply echoes a megabyte back.
    let long = "m".repeat(1 << 20);
    let status = refused(client.members.get_member(get_member(PROGRAM, &long)).await, Code::InvalidArgument);
    assert_invalid_field(&status, "member_id");
    assert!(status.message().len() < 1_024, "{}", status.message().len());
    let status = refused(client.members.get_member(get_member(&long, "alice")).await, Code::InvalidArgument);
    assert_invalid_field(&status, "program_id");
    let coupons = pb::ListMemberCouponsRequest { program_id: PROGRAM.into(), member_id: long.clone() };
    assert_invalid_field(
        &refused(client.coupons.list_member_coupons(coupons).await, Code::InvalidArgument),
        "member_id",
    );
    let activity = pb::GetActivityRequest { program_id: PROGRAM.into(), transaction_id: 0, reference: long.clone() };
    assert_invalid_field(&refused(client.audit.get_activity(activity).await, Code::InvalidArgument), "reference");
    let report = pb::ListVoucherStatementsRequest { brand_id: 1, voucher_name: long, ..Default::default() };
    let status = refused(client.vouchers.list_voucher_statements(report).await, Code::InvalidArgument);
    assert_invalid_field(&status, "voucher_name");
    // A request larger than REQUEST_BYTES_MAX is refused before it is decoded, saying so.
    let huge = pb::AddPointsRequest { remark: "r".repeat(ledger_core::limits::REQUEST_BYTES_MAX), ..add("alice") };
    let status = refused(client.points.add_points(huge).await, Code::OutOfRange);
    assert!(status.message().contains("message length too large"), "{status:?}");
    refused(client.members.get_member(get_member(PROGRAM, "alice")).await, Code::NotFound);
    // A page size past the maximum is the maximum (SPEC §10), not an error.
    let page = pb::ListMembersRequest { program_id: PROGRAM.into(), page_size: u32::MAX, ..Default::default() };
    client.members.list_members(page).await.expect("the largest page");
}

// The fuzz targets' proptest twins.

/// proptest's default of 256 cases each (well under a second here), or
/// `PROPTEST_CASES`; failures print their input rather than write files.
fn cases() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

/// A valid log record of one event, to mutate: random bytes rarely get past
/// the record's first length prefix.
fn valid_record() -> Vec<u8> {
    use ledger_core::event::PointsAdded;
    use ledger_core::{Event, EventBody, Timestamp};
    use ledger_store::envelope::{EVENT_FORMAT, Envelope, GENESIS_HASH, encode};
    let envelope = Envelope {
        format: EVENT_FORMAT,
        sequence: 1,
        event_id: uuid::Uuid::nil(),
        recorded_at: Timestamp::from_micros(1_700_000_000_000_000),
        actor: "t1".into(),
        prev_hash: GENESIS_HASH,
        event: Event {
            program: PROGRAM.into(),
            member: "alice".into(),
            occurred_at: None,
            body: EventBody::PointsAdded(PointsAdded {
                points: 10,
                remark: "latte".into(),
                private_remark: String::new(),
                reference: "r1".into(),
                branch_code: String::new(),
                expires_at: Some(Timestamp::from_micros(1_800_000_000_000_000)),
                cost: Some("12.5".parse().expect("decimal")),
                formula_id: "f".into(),
            }),
        },
    };
    ledger_store::log::encode_record(&[encode(&envelope)])
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn stored_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::event_decoding(&bytes);
    }

    #[test]
    fn a_mutated_record_decodes_or_fails_without_panicking(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = valid_record();
        for (at, byte) in flips {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        fuzzing::event_decoding(&bytes);
        fuzzing::event_decoding(&bytes[1..]);
        let cut = cut.index(bytes.len());
        fuzzing::event_decoding(&bytes[..cut]);
    }

    #[test]
    fn any_bytes_as_any_request_map_or_fail_without_panicking(
        selector in any::<u8>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut data = vec![selector];
        data.extend_from_slice(&bytes);
        fuzzing::request_mapping(&data);
    }

    #[test]
    fn arbitrary_points_requests_map_and_decide_without_panicking(
        member in prop::sample::select(vec!["m", "edge", "", "new"]),
        points in prop_oneof![any::<i64>(), -3i64..20, Just(i64::MAX), Just(i64::MIN)],
        seconds in prop_oneof![any::<i64>(), Just(YEAR_10000), Just(YEAR_10000 - 1), Just(BEFORE_YEAR_1)],
        nanos in prop_oneof![any::<i32>(), Just(999_999_999), Just(1_000_000_000)],
        cost in prop::sample::select(vec!["", "12.5", "79228162514264337593543950335", "-1", "1e3", "0.00001"]),
        formula in prop::sample::select(vec!["", "f", "missing"]),
        reference in prop::sample::select(vec!["", "add", "use", "credit", "coupon", "statement", "fresh"]),
        replace in any::<bool>(),
    ) {
        let time = timestamp(seconds, nanos);
        let add = pb::AddPointsRequest {
            program_id: "p".into(),
            member_id: member.into(),
            points,
            cost: cost.into(),
            formula_id: formula.into(),
            remark: "r".into(),
            reference: reference.into(),
            replace_duplicate: replace,
            expires_at: time,
            occurred_at: time,
            ..Default::default()
        };
        let spend = pb::UsePointsRequest {
            program_id: "p".into(),
            member_id: member.into(),
            points,
            reward_id: formula.replace('f', "r"),
            remark: "r".into(),
            reference: reference.into(),
            replace_duplicate: replace,
            occurred_at: time,
            ..Default::default()
        };
        let item = pb::BulkAddItem { member_id: member.into(), points, remark: "r".into(), expires_at: time, ..Default::default() };
        let bulk = pb::BulkAddPointsRequest { program_id: "p".into(), items: vec![item.clone(), item], atomic: replace };
        let statement = pb::PointStatementData {
            brand_id: 1,
            promotion_id: 2,
            line_id: member.into(),
            change_reason: "COLLECT".into(),
            point_change_record: points,
            changed_at: time,
            brand_manager_id: 7,
            reference: reference.into(),
        };
        let import = pb::ImportPointStatementsRequest { data: vec![statement] };
        let coupons = pb::GrantCouponsRequest {
            program_id: "p".into(),
            member_id: member.into(),
            coupon_id: "k".into(),
            name: "K".into(),
            count: u32::try_from(points.unsigned_abs() % (1 << 32)).expect("below 2^32"),
            reference: reference.into(),
        };
        for (selector, bytes) in [
            (17, add.encode_to_vec()),
            (18, spend.encode_to_vec()),
            (19, bulk.encode_to_vec()),
            (30, import.encode_to_vec()),
            (8, coupons.encode_to_vec()),
        ] {
            let mut data = vec![selector];
            data.extend_from_slice(&bytes);
            fuzzing::request_mapping(&data);
        }
    }

    #[test]
    fn any_text_as_a_client_file_parses_or_fails_without_panicking(
        selector in any::<u8>(),
        text in ".{0,200}",
    ) {
        let mut data = vec![selector];
        data.extend_from_slice(text.as_bytes());
        fuzzing::files(&data);
    }

    #[test]
    fn client_files_with_any_time_accept_only_times_the_server_takes(
        year in 0u32..=10_001,
        offset_minutes in -1_439i32..=1_439,
        seconds in any::<i64>(),
        which in 0u8..6,
    ) {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let offset = format!("{sign}{:02}:{:02}", offset_minutes.unsigned_abs() / 60, offset_minutes.unsigned_abs() % 60);
        let iso = format!("{year:04}-12-31T23:30:00{offset}");
        let text = match which {
            0 => format!(
                r#"{{"data": [{{"brand_id": 1, "promotion_id": 2, "voucher_identifier": "v", "voucher_number": "n",
                    "voucher_name": "V", "line_id": "m", "sent_at": "{iso}", "used_at": "{iso}"}}]}}"#
            ),
            1 => format!(
                r#"{{"data": [{{"brand_id": 1, "promotion_id": 2, "line_id": "m", "change_reason": "COLLECT",
                    "point_change_record": 1, "changed_at": "{iso}"}}]}}"#
            ),
            2 => format!(r#"[{{"member_id": "m", "points": 1, "expires_at": "{iso}", "occurred_at": {seconds}}}]"#),
            3 => format!(r#"[{{"member_id": "m", "points": 1, "occurred_at": "{iso}"}}]"#),
            4 => format!("member_id,points,occurred_at,expires_at\nm,1,{iso},{seconds}\n"),
            _ => iso.clone(),
        };
        let mut data = vec![which];
        data.extend_from_slice(text.as_bytes());
        fuzzing::files(&data);
    }
}

/// A fuzz target's harness: bytes in, a panic the only failure.
type Harness = fn(&[u8]);

/// Every input under `tests/fixtures/fuzz/<target>/` (crashes a fuzzer found,
/// minimized, and inputs that once broke something) through its harness.
#[test]
fn fuzz_regressions_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fuzz");
    let targets: [(&str, Harness); 3] = [
        ("event_decoding", fuzzing::event_decoding),
        ("request_mapping", fuzzing::request_mapping),
        ("files", fuzzing::files),
    ];
    let mut replayed = 0;
    for (target, harness) in targets {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else { continue };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            harness(&std::fs::read(&path).expect("a regression input"));
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no regression inputs under {}", root.display());
}
