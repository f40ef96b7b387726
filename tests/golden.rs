//! Golden files: the exact bytes of every event kind, as the log stores them.
//!
//! Auditors replay the event encoding for years (SPEC §9), so the bytes in
//! `tests/golden/` are the format, not a snapshot of it. For each sample below the
//! test
//!
//! 1. decodes the committed `<name>.event` and checks it equals the envelope built
//!    here, so a change to the Rust types that no longer reads old bytes fails;
//! 2. encodes that envelope again, both with `envelope::encode` and the way the
//!    writer does (`log::RecordBuilder` over an `EnvelopeRef`), and checks the bytes
//!    are identical, so the writer still writes the pinned format;
//! 3. checks `<name>.hash` (hex) is the stored hash, BLAKE3 of those bytes.
//!
//! `bulk_add.record` pins a whole log record (`log::encode_record`): one command's
//! events, chained by their hashes.
//!
//! Change these files only as a deliberate, versioned format change (a new
//! `EVENT_FORMAT` or `RECORD_FORMAT` that still reads the old files, which then stay
//! here as they are). To write new files, run
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p ledger-store --test golden
//! ```
//!
//! which writes every file and passes; review the diff as a format change.
//!
//! A new `EventBody` variant raises `EventBody::KINDS_COUNT`, so `PINNED` does not
//! compile until it has an entry naming its samples, which the tests then require
//! to exist in `samples()` and on disk.

use ledger_core::event::{
    ChangeReason, CreditsChange, CreditsHold, EventBody, HoldSettled, LotTake, MemberCardFields, PointStatementApplied,
    PointsAdded, PointsHold, PointsReversal, PointsUsed, ReversedChange, TransactionReversal,
};
use ledger_core::vouchers::VoucherStatement;
use ledger_core::{Event, Timestamp};
use ledger_store::envelope::{self, EVENT_FORMAT, Envelope, EnvelopeRef, Hash, StoredEvent};
use ledger_store::log::{self, RecordBuilder};
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Each variant of `EventBody` with the samples that pin it, in `EventBody::index` order.
const PINNED: [(&str, &[&str]); EventBody::KINDS_COUNT] = [
    ("ProgramCreated", &["program_created"]),
    ("FormulaDefined", &["formula_defined"]),
    ("RewardDefined", &["reward_defined", "reward_defined_expiring"]),
    ("PointsAdded", &["points_added", "points_added_expiring", "points_added_formula"]),
    ("PointsUsed", &["points_used"]),
    ("PointsAddReversed", &["points_add_reversed"]),
    ("PointsUseReversed", &["points_use_reversed"]),
    ("PointsExpired", &["points_expired"]),
    ("CreditDefined", &["credit_defined"]),
    ("CreditsAdded", &["credits_added"]),
    ("CreditsUsed", &["credits_used"]),
    ("CouponsGranted", &["coupons_granted"]),
    ("CouponUsed", &["coupon_used"]),
    ("ShopDefined", &["shop_defined"]),
    ("VoucherRecorded", &["voucher_recorded", "voucher_recorded_used"]),
    ("PointStatementApplied", &["point_statement_collect", "point_statement_redeem"]),
    ("MemberCardCreated", &["member_card_created"]),
    ("MemberCardUpdated", &["member_card_updated"]),
    ("MemberCardDeleted", &["member_card_deleted"]),
    ("MemberLevelSet", &["member_level_set"]),
    ("PointsHeld", &["points_held"]),
    ("CreditsHeld", &["credits_held"]),
    ("HoldCaptured", &["hold_captured", "hold_captured_credits"]),
    ("HoldVoided", &["hold_voided"]),
    ("HoldExpired", &["hold_expired"]),
    (
        "TransactionReversed",
        &[
            "reversal_points_add",
            "reversal_points_use",
            "reversal_credits_add",
            "reversal_credits_use",
            "reversal_coupons_grant",
            "reversal_coupon_use",
        ],
    ),
];

/// The record sample: one command's events in one log record.
const RECORD_SAMPLE: &str = "bulk_add";

/// 2026-01-01T00:00:00Z.
const RECORDED_AT: Timestamp = Timestamp(1_767_225_600_000_000);
/// 2025-12-31T23:59:30.5Z: a business time the client gave.
const OCCURRED_AT: Timestamp = Timestamp(1_767_225_570_500_000);
/// 2026-07-01T00:00:00Z.
const EXPIRES_AT: Timestamp = Timestamp(1_782_864_000_000_000);
const ACTOR: &str = "tok_golden";
const PROGRAM: &str = "cafe";
const MEMBER: &str = "alice";

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1")
}

/// A fixed, non-zero previous hash, different for each sequence.
fn prev_hash(sequence: u64) -> Hash {
    let mut hash = [0u8; 32];
    for (index, byte) in (0u8..).zip(hash.iter_mut()) {
        *byte = index.wrapping_mul(7).wrapping_add(u8::try_from(sequence % 251).expect("below 251"));
    }
    hash
}

/// A fixed UUID v7 (version and variant bits set), different for each sequence.
fn event_id(sequence: u64) -> uuid::Uuid {
    let millis = u128::try_from(RECORDED_AT.micros() / 1_000).expect("positive time");
    let bits = (millis << 80) | (0x7 << 76) | (0xabc << 64) | (0b10 << 62) | u128::from(sequence);
    uuid::Uuid::from_u128(bits)
}

fn envelope(sequence: u64, member: &str, occurred_at: Option<Timestamp>, body: EventBody) -> Envelope {
    Envelope {
        format: EVENT_FORMAT,
        sequence,
        event_id: event_id(sequence),
        recorded_at: RECORDED_AT,
        actor: ACTOR.to_owned(),
        prev_hash: prev_hash(sequence),
        event: Event { program: PROGRAM.to_owned(), member: member.to_owned(), occurred_at, body },
    }
}

fn added(points: u64, reference: &str, expires_at: Option<Timestamp>) -> PointsAdded {
    PointsAdded {
        points,
        remark: "latte".to_owned(),
        private_remark: String::new(),
        reference: reference.to_owned(),
        branch_code: String::new(),
        expires_at,
        cost: None,
        formula_id: String::new(),
    }
}

fn takes() -> Vec<LotTake> {
    vec![LotTake { lot: 5, points: 40, expires_at: Some(EXPIRES_AT) }, LotTake { lot: 4, points: 35, expires_at: None }]
}

fn credits(amount: &str, reference: &str) -> CreditsChange {
    CreditsChange {
        credit_id: "wallet".to_owned(),
        amount: amount.parse().expect("decimal"),
        remark: "top-up".to_owned(),
        reference: reference.to_owned(),
    }
}

fn statement(used_at: Option<Timestamp>, brand_manager_id: i64) -> VoucherStatement {
    VoucherStatement {
        promotion_id: 2,
        voucher_identifier: "2223".to_owned(),
        voucher_number: "V00A004S0013FCS00".to_owned(),
        voucher_name: "瓦城 288元".to_owned(),
        line_id: "fb3d6a16-b5d6-4bf8-8fd2-7acd0ec15944".to_owned(),
        sent_at: OCCURRED_AT,
        used_at,
        cancelled_at: None,
        brand_manager_id,
    }
}

fn card(card_id: &str, lowest_amount: u64) -> MemberCardFields {
    MemberCardFields {
        card_id: card_id.to_owned(),
        name: "Gold".to_owned(),
        benefit: "10% off".to_owned(),
        lowest_amount,
        image_url: "https://example.com/gold.png".to_owned(),
    }
}

/// The samples of the kinds issue 5 added: credits, coupons, Echoss statements, tiers.
fn later_samples() -> Vec<(&'static str, Envelope)> {
    let credit_defined =
        EventBody::CreditDefined { credit_id: "wallet".to_owned(), name: "Wallet".to_owned(), unit: "TWD".to_owned() };
    let granted = EventBody::CouponsGranted {
        coupon_id: "free-coffee".to_owned(),
        name: "Free coffee".to_owned(),
        count: 3,
        reference: "ref-13".to_owned(),
    };
    let used = EventBody::CouponUsed {
        coupon_id: "free-coffee".to_owned(),
        remark: "redeemed at till 2".to_owned(),
        reference: "ref-14".to_owned(),
    };
    let collect = PointStatementApplied {
        promotion_id: 7,
        change_reason: ChangeReason::Collect,
        points: 30,
        brand_manager_id: 3,
        reference: "stmt-1".to_owned(),
        taken: Vec::new(),
    };
    let redeem = PointStatementApplied {
        promotion_id: 0,
        change_reason: ChangeReason::Redeem,
        points: -2,
        brand_manager_id: 0,
        reference: String::new(),
        taken: vec![LotTake { lot: 0, points: 2, expires_at: None }],
    };
    let level = EventBody::MemberLevelSet { level: 2, card_id: "21".to_owned() };
    vec![
        ("credit_defined", envelope(10, "", None, credit_defined)),
        ("credits_added", envelope(11, MEMBER, None, EventBody::CreditsAdded(credits("12.5", "ref-11")))),
        ("credits_used", envelope(12, MEMBER, None, EventBody::CreditsUsed(credits("0.1235", "")))),
        ("coupons_granted", envelope(13, MEMBER, None, granted)),
        ("coupon_used", envelope(14, MEMBER, None, used)),
        ("shop_defined", envelope(15, "", None, EventBody::ShopDefined { shop_id: 3, name: "信義店".to_owned() })),
        (
            "voucher_recorded",
            envelope(
                16,
                MEMBER,
                Some(OCCURRED_AT),
                EventBody::VoucherRecorded { statement: statement(None, 0), version: 1 },
            ),
        ),
        (
            "voucher_recorded_used",
            envelope(
                17,
                MEMBER,
                Some(EXPIRES_AT),
                EventBody::VoucherRecorded { statement: statement(Some(EXPIRES_AT), 3), version: 2 },
            ),
        ),
        ("point_statement_collect", envelope(18, MEMBER, Some(OCCURRED_AT), EventBody::PointStatementApplied(collect))),
        ("point_statement_redeem", envelope(19, MEMBER, Some(OCCURRED_AT), EventBody::PointStatementApplied(redeem))),
        ("member_card_created", envelope(20, "", None, EventBody::MemberCardCreated(card("20", 0)))),
        ("member_card_updated", envelope(21, "", None, EventBody::MemberCardUpdated(card("20", 500)))),
        ("member_card_deleted", envelope(22, "", None, EventBody::MemberCardDeleted { card_id: "20".to_owned() })),
        ("member_level_set", envelope(23, MEMBER, None, level)),
    ]
    .into_iter()
    .chain(hold_samples())
    .collect()
}

/// Holds (SPEC §14): a points hold on two lots, a credits hold, and each way a
/// hold ends.
fn hold_samples() -> Vec<(&'static str, Envelope)> {
    let decimal = |text: &str| -> Decimal { text.parse().expect("decimal") };
    let taken = vec![
        LotTake { lot: 5, points: 30, expires_at: Some(EXPIRES_AT) },
        LotTake { lot: 0, points: 10, expires_at: None },
    ];
    let held = PointsHold {
        points: 40,
        remark: "ticket".to_owned(),
        reference: "hold-24".to_owned(),
        expires_at: EXPIRES_AT,
        taken: taken.clone(),
    };
    let credits_held = CreditsHold {
        credit_id: "twd".to_owned(),
        amount: decimal("7.25"),
        remark: "remote QR".to_owned(),
        reference: "hold-25".to_owned(),
        expires_at: EXPIRES_AT,
    };
    let settled = |captured: &str, released: &str, lots: Vec<LotTake>, reference: &str| HoldSettled {
        hold: 24,
        credit_id: String::new(),
        captured: decimal(captured),
        released: decimal(released),
        released_lots: lots,
        remark: "settled".to_owned(),
        reference: reference.to_owned(),
    };
    let credits_captured = HoldSettled {
        hold: 25,
        credit_id: "twd".to_owned(),
        captured: decimal("5.1"),
        released: decimal("2.15"),
        released_lots: Vec::new(),
        remark: String::new(),
        reference: "capture-27".to_owned(),
    };
    let partly = vec![LotTake { lot: 0, points: 10, expires_at: None }];
    vec![
        ("points_held", envelope(24, MEMBER, None, EventBody::PointsHeld(held))),
        ("credits_held", envelope(25, MEMBER, None, EventBody::CreditsHeld(credits_held))),
        ("hold_captured", envelope(26, MEMBER, None, EventBody::HoldCaptured(settled("30", "10", partly, "cap-26")))),
        ("hold_captured_credits", envelope(27, MEMBER, None, EventBody::HoldCaptured(credits_captured))),
        ("hold_voided", envelope(28, MEMBER, None, EventBody::HoldVoided(settled("0", "40", taken.clone(), "")))),
        ("hold_expired", envelope(29, MEMBER, None, EventBody::HoldExpired(settled("0", "40", taken, "")))),
    ]
}

/// A reversal of each kind it can undo (SPEC §15).
fn reversal_samples() -> Vec<(&'static str, Envelope)> {
    let amount: Decimal = "12.5".parse().expect("decimal");
    let reversal = |transaction_id: u64, reference: &str, change: ReversedChange| {
        EventBody::TransactionReversed(TransactionReversal {
            transaction_id,
            remark: "cashier mistake".to_owned(),
            reference: reference.to_owned(),
            change,
        })
    };
    let expiring = LotTake { lot: 5, points: 30, expires_at: Some(EXPIRES_AT) };
    let pool = LotTake { lot: 0, points: 10, expires_at: None };
    let points_add =
        ReversedChange::PointsAdd { points: 80, lots: vec![LotTake { points: 80, ..expiring }], earned: 80 };
    let points_use = ReversedChange::PointsUse { points: 40, lots: vec![expiring, pool] };
    let coupons = |count| ReversedChange::CouponsGrant { coupon_id: "coffee".to_owned(), count };
    vec![
        ("reversal_points_add", envelope(24, MEMBER, None, reversal(5, "undo-5", points_add))),
        ("reversal_points_use", envelope(25, MEMBER, None, reversal(7, "", points_use))),
        (
            "reversal_credits_add",
            envelope(
                26,
                MEMBER,
                None,
                reversal(11, "", ReversedChange::CreditsAdd { credit_id: "cash".to_owned(), amount }),
            ),
        ),
        (
            "reversal_credits_use",
            envelope(
                27,
                MEMBER,
                None,
                reversal(12, "", ReversedChange::CreditsUse { credit_id: "cash".to_owned(), amount }),
            ),
        ),
        ("reversal_coupons_grant", envelope(28, MEMBER, None, reversal(13, "", coupons(2)))),
        (
            "reversal_coupon_use",
            envelope(29, MEMBER, None, reversal(14, "", ReversedChange::CouponUse { coupon_id: "coffee".to_owned() })),
        ),
    ]
}

/// One envelope of each kind, every field given.
fn samples() -> Vec<(&'static str, Envelope)> {
    let multiplier: Decimal = "1.25".parse().expect("decimal");
    let cost: Decimal = "19.90".parse().expect("decimal");
    vec![
        ("program_created", envelope(1, "", None, EventBody::ProgramCreated { name: "Corner Café".to_owned() })),
        (
            "formula_defined",
            envelope(
                2,
                "",
                None,
                EventBody::FormulaDefined { formula_id: "f1".to_owned(), name: "Weekday".to_owned(), multiplier },
            ),
        ),
        (
            "reward_defined",
            envelope(
                3,
                "",
                None,
                EventBody::RewardDefined {
                    reward_id: "cookie".to_owned(),
                    name: "Cookie".to_owned(),
                    points: 50,
                    expires_at: None,
                },
            ),
        ),
        (
            "reward_defined_expiring",
            envelope(
                3,
                "",
                None,
                EventBody::RewardDefined {
                    reward_id: "mug".to_owned(),
                    name: "Summer mug".to_owned(),
                    points: 400,
                    expires_at: Some(EXPIRES_AT),
                },
            ),
        ),
        ("points_added", envelope(4, MEMBER, None, EventBody::PointsAdded(added(120, "", None)))),
        (
            "points_added_expiring",
            envelope(
                5,
                MEMBER,
                Some(OCCURRED_AT),
                EventBody::PointsAdded(PointsAdded {
                    private_remark: "promo week".to_owned(),
                    branch_code: "b-01".to_owned(),
                    ..added(80, "ref-5", Some(EXPIRES_AT))
                }),
            ),
        ),
        (
            "points_added_formula",
            envelope(
                6,
                MEMBER,
                None,
                EventBody::PointsAdded(PointsAdded {
                    cost: Some(cost),
                    formula_id: "f1".to_owned(),
                    ..added(24, "ref-6", None)
                }),
            ),
        ),
        (
            "points_used",
            envelope(
                7,
                MEMBER,
                Some(OCCURRED_AT),
                EventBody::PointsUsed(PointsUsed {
                    points: 75,
                    remark: "cookie and tea".to_owned(),
                    private_remark: "till 2".to_owned(),
                    reference: "ref-7".to_owned(),
                    branch_code: "b-01".to_owned(),
                    reward_id: "cookie".to_owned(),
                    taken: takes(),
                }),
            ),
        ),
        (
            "points_add_reversed",
            envelope(
                8,
                MEMBER,
                None,
                EventBody::PointsAddReversed(PointsReversal {
                    transaction_id: 5,
                    points: 60,
                    lots: vec![
                        LotTake { lot: 5, points: 40, expires_at: Some(EXPIRES_AT) },
                        LotTake { lot: 4, points: 20, expires_at: None },
                    ],
                    reference: "ref-5".to_owned(),
                    earned: 80,
                }),
            ),
        ),
        (
            "points_use_reversed",
            envelope(
                9,
                MEMBER,
                None,
                EventBody::PointsUseReversed(PointsReversal {
                    transaction_id: 7,
                    points: 75,
                    lots: takes(),
                    reference: "ref-7".to_owned(),
                    earned: 0,
                }),
            ),
        ),
        ("points_expired", envelope(10, MEMBER, None, EventBody::PointsExpired { lot: 5, points: 40 })),
    ]
    .into_iter()
    .chain(later_samples())
    .chain(reversal_samples())
    .collect()
}

/// A bulk add of three items as the writer stores it: consecutive sequences, each
/// event's `prev_hash` the hash of the one before.
fn record_sample() -> (Vec<Envelope>, Vec<StoredEvent>) {
    let items = [("alice", 10, "bulk-1", None), ("bob", 20, "", Some(EXPIRES_AT)), ("alice", 30, "bulk-3", None)];
    let mut prev = prev_hash(11);
    let mut envelopes = Vec::new();
    let mut stored = Vec::new();
    for ((member, points, reference, expires_at), sequence) in items.into_iter().zip(11..) {
        let mut built = envelope(sequence, member, None, EventBody::PointsAdded(added(points, reference, expires_at)));
        built.prev_hash = prev;
        let encoded = envelope::encode(&built);
        prev = encoded.hash;
        envelopes.push(built);
        stored.push(encoded);
    }
    (envelopes, stored)
}

/// Reads a golden file, or writes `expected` there when updating.
fn golden(file: &str, expected: &[u8]) -> Vec<u8> {
    let path = golden_dir().join(file);
    if updating() {
        std::fs::create_dir_all(golden_dir()).expect("create tests/golden");
        // Tests run in parallel and share files: write aside, then rename, so that no
        // test reads a half-written file.
        let aside = golden_dir().join(format!(".{file}.{:?}", std::thread::current().id()));
        std::fs::write(&aside, expected).expect("write golden file");
        std::fs::rename(&aside, &path).expect("move golden file into place");
    }
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!("{}: {error}; a new sample is written with UPDATE_GOLDEN=1 (see tests/golden.rs)", path.display())
    })
}

fn hash_file(hash: &Hash) -> Vec<u8> {
    format!("{}\n", envelope::hex(hash)).into_bytes()
}

/// A record of `envelopes` as the writer builds one, with each event's hash.
fn writer_record(envelopes: &[Envelope]) -> (Vec<u8>, Vec<Hash>) {
    let mut builder = RecordBuilder::new(envelopes.len());
    let hashes = envelopes
        .iter()
        .map(|envelope| {
            builder.push(&EnvelopeRef {
                format: envelope.format,
                sequence: envelope.sequence,
                event_id: envelope.event_id,
                recorded_at: envelope.recorded_at,
                actor: &envelope.actor,
                prev_hash: &envelope.prev_hash,
                event: &envelope.event,
            })
        })
        .collect();
    (builder.finish(), hashes)
}

#[test]
fn every_event_kind_decodes_from_its_golden_bytes() {
    for (name, expected) in samples() {
        let encoded = envelope::encode(&expected);
        let bytes = golden(&format!("{name}.event"), &encoded.bytes);
        let decoded = envelope::decode(&bytes).unwrap_or_else(|error| panic!("{name}.event: {error}"));
        assert_eq!(decoded, expected, "{name}.event no longer decodes to the envelope it pins");
    }
}

#[test]
fn every_event_kind_encodes_to_its_golden_bytes() {
    for (name, expected) in samples() {
        let encoded = envelope::encode(&expected);
        let bytes = golden(&format!("{name}.event"), &encoded.bytes);
        assert!(encoded.bytes == bytes, "{name}: envelope::encode's bytes differ from {name}.event");
        let hash = *blake3::hash(&bytes).as_bytes();
        let (record, hashes) = writer_record(std::slice::from_ref(&expected));
        assert!(
            record == log::encode_record(&[StoredEvent { bytes, hash }]),
            "{name}: the writer's record of it does not hold the bytes of {name}.event"
        );
        assert_eq!(hashes, [hash], "{name}: the writer hashes the golden bytes");
    }
}

#[test]
fn every_event_kind_has_its_golden_hash() {
    for (name, expected) in samples() {
        let encoded = envelope::encode(&expected);
        let bytes = golden(&format!("{name}.event"), &encoded.bytes);
        let hash_text = golden(&format!("{name}.hash"), &hash_file(&encoded.hash));
        let hash = *blake3::hash(&bytes).as_bytes();
        assert_eq!(String::from_utf8_lossy(&hash_text), String::from_utf8_lossy(&hash_file(&hash)), "{name}.hash");
        assert_eq!(hash, encoded.hash, "{name}: the stored hash is BLAKE3 of the golden bytes");
    }
}

#[test]
fn a_bulk_record_decodes_and_encodes_to_its_golden_bytes() {
    let (envelopes, stored) = record_sample();
    let encoded = log::encode_record(&stored);
    let bytes = golden(&format!("{RECORD_SAMPLE}.record"), &encoded);
    assert!(encoded == bytes, "log::encode_record's bytes differ from {RECORD_SAMPLE}.record");
    let (written, hashes) = writer_record(&envelopes);
    assert!(written == bytes, "the writer's record bytes differ from {RECORD_SAMPLE}.record");
    assert_eq!(hashes, stored.iter().map(|event| event.hash).collect::<Vec<_>>(), "the writer's hashes");
    let first = envelopes[0].sequence;
    let decoded = log::decode_record(first, &bytes).expect("the golden record decodes");
    assert_eq!(decoded, stored, "{RECORD_SAMPLE}.record holds the pinned events and hashes");
    let mut prev = envelopes[0].prev_hash;
    for (event, expected) in decoded.iter().zip(&envelopes) {
        assert!(event.hash_matches(), "sequence {}: the stored hash is BLAKE3 of the bytes", expected.sequence);
        let envelope = envelope::decode(&event.bytes).expect("a golden event decodes");
        assert_eq!(&envelope, expected);
        assert_eq!(envelope.prev_hash, prev, "sequence {}: chained to the event before", expected.sequence);
        prev = event.hash;
    }
}

#[test]
fn every_event_kind_is_pinned() {
    let samples = samples();
    let names: BTreeSet<&str> = samples.iter().map(|(name, _)| *name).collect();
    assert_eq!(names.len(), samples.len(), "sample names are unique");
    for (name, sample) in &samples {
        let body = &sample.event.body;
        let (kind, pinned) = PINNED[body.index()];
        assert_eq!(kind, body.name(), "EventBody::index maps {} to the entry of {kind}", body.name());
        assert!(pinned.contains(name), "{name} is listed under {kind} in PINNED");
    }
    for (kind, pinned) in PINNED {
        assert!(!pinned.is_empty(), "{kind} has a golden sample");
        for name in pinned {
            let sample = samples.iter().find(|(sample, _)| sample == name);
            let (_, sample) = sample.unwrap_or_else(|| panic!("{kind}: PINNED names {name}, which samples() lacks"));
            assert_eq!(sample.event.body.name(), kind, "{name} is a {kind}");
        }
    }
}

#[test]
fn the_golden_directory_holds_only_pinned_files() {
    if updating() {
        return;
    }
    let mut expected: BTreeSet<String> =
        samples().iter().flat_map(|(name, _)| [format!("{name}.event"), format!("{name}.hash")]).collect();
    expected.insert(format!("{RECORD_SAMPLE}.record"));
    let found: BTreeSet<String> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(found, expected, "tests/golden holds exactly the pinned samples");
}
