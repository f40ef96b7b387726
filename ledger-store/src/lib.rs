//! The ledger's storage: an append-only, hash-chained event log in sled, the
//! projections kept in step with it, group commit, recovery, replay and
//! verification. [`Ledger`] is the library API: the operations `ledgerd` serves
//! over gRPC and HTTP, in-process, with the same checks and the same typed
//! errors.
//!
//! # Opening
//!
//! [`Ledger::open`] opens the ledger in a directory, creating it when it is not
//! there; [`Ledger::open_with`] takes [`Options`]. The ones worth knowing:
//!
//! - [`Options::with_cache_mib`]: the memory budget (what `ledgerd --cache-mib`
//!   sets; 256 MiB by default). Members and references past it are read from
//!   disk when a command or read needs them.
//! - `expiry_sweep_interval`: how often a timer thread records the expiry of
//!   lots and holds whose time came (60 s by default); `None` turns the timer off,
//!   and [`Ledger::sweep_expiry`] then runs a pass when you call it. Reads never
//!   count an expired lot either way.
//! - `checkpoint_events` and `checkpoint_interval`: how much of the log a restart
//!   after a crash replays.
//! - `disk_free_min_bytes`: below this much free space (128 MiB by default)
//!   writes are refused as `LedgerError::Unavailable` until there is room again.
//!
//! One process at a time: sled locks the directory, so opening one that a running
//! `ledgerd` (or another `Ledger`) holds fails with [`StoreError::Locked`]. A
//! [`Ledger`] is cheap to clone, and clones share one writer: clone it into each
//! task or thread.
//!
//! # The runtime it needs
//!
//! None of its own. A `Ledger` runs its own threads (the writer, the flusher, the
//! syncer and the checkpointer of group commit, the expiry sweeper and the
//! background check of the hash chain), and its `async` methods only wait on
//! `tokio::sync` channels for their answers, which any executor can poll: the
//! examples use `#[tokio::main]` (`tokio` with its `macros` and `rt-multi-thread`
//! features), and a test of this crate drives it with a ten-line executor of its
//! own, outside any tokio runtime. Some methods block the calling thread:
//! [`Ledger::open`], [`Ledger::close`] (waits for the writer to finish),
//! [`Ledger::verify`] and [`Ledger::compare_with_replay`] (read the whole log) and
//! [`Ledger::events`] (reads as it iterates), [`Ledger::backup_file`] and
//! [`Ledger::backup_to`] (copy the whole ledger; [`Ledger::backup`] is the
//! `async` one, on a thread of its own); in an async server, call the long
//! ones from `tokio::task::spawn_blocking`. Reads of members that are not in
//! memory read their row from disk on the calling thread, as sled reads do.
//!
//! # Actors
//!
//! Every write takes an `actor`: a string recorded in each event it makes (the
//! envelope's `actor`, shown on each [`activities::Activity`]), so that an audit
//! can say who asked for every change. `ledgerd` records the id of the caller's
//! token; an embedding program records whatever names its user or job (`"pos-12"`,
//! `"nightly-import"`). It is not checked against anything and grants no
//! permission: deciding who may do what is the embedding program's job. The
//! ledger records its own events (the expiry sweep's) as `system`.
//!
//! # Durability, errors and references
//!
//! A write's `Ok` comes after the flush and `fdatasync` that made it durable: it
//! survives a crash or a power loss. Reads show only durable state. A write that
//! fails is one of [`LedgerError`]:
//!
//! - `Rejected`: the command broke a rule ([`ledger_core::Rejection`] names the
//!   field and the rule, and `reason()` the stable reason, as docs/API.md lists
//!   them); nothing changed.
//! - `Unavailable`: storage failed (a full disk, say); the write may or may not
//!   have happened. Retry it with the same `reference`: a command whose
//!   reference was used before answers the original result with `duplicate` set
//!   and changes nothing.
//! - `Closed`: the ledger is closed.
//!
//! [`Ledger::close`] stops the writer after the commands already queued,
//! checkpoints the projections and flushes; writes after it answer
//! `LedgerError::Closed`, and the directory stays locked until the last clone
//! is dropped. Dropping the last clone closes the ledger too, but only `close`
//! reports a failure.
//!
//! ```
//! use ledger_store::{Ledger, LedgerError, Options};
//! use std::time::Duration;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-open-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let options = Options {
//!         expiry_sweep_interval: Some(Duration::from_secs(600)),
//!         ..Options::with_cache_mib(64)
//!     };
//!     let ledger = Ledger::open_with(&dir, options)?;
//!     ledger.create_program("cafe", "Corner Cafe", "setup-script").await?;
//!     ledger.close()?;
//!     let refused = ledger.create_program("bakery", "Bakery", "setup-script").await;
//!     assert!(matches!(refused, Err(LedgerError::Closed(_))));
//!     // The directory is let go of when the last clone is dropped.
//!     drop(ledger);
//!
//!     // Reopened, it holds what it held.
//!     let ledger = Ledger::open(&dir)?;
//!     assert_eq!(ledger.programs().await?.len(), 1);
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
//!
//! # Points
//!
//! Add and use points one at a time ([`Ledger::add_points`],
//! [`Ledger::use_points`]) or in bulks of up to 1,000 items
//! ([`Ledger::bulk_add_points`], [`Ledger::bulk_use_points`]) that stop at the
//! first item that fails (`fail_at`), the items before it applied unless the bulk
//! is `atomic`. A `reference` makes a write idempotent. Formulas and rewards:
//! [`Ledger::define_formula`], [`Ledger::define_reward`].
//!
//! ```
//! use ledger_core::command::{AddPoints, BulkUsePoints, UsePoints};
//! use ledger_store::Ledger;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-points-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let ledger = Ledger::open(&dir)?;
//!     ledger.create_program("cafe", "Corner Cafe", "admin").await?;
//!
//!     let add = AddPoints {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         points: 120,
//!         remark: "latte".into(),
//!         reference: "order-1001".into(),
//!         ..AddPoints::default()
//!     };
//!     let receipt = ledger.add_points(add.clone(), "pos-12").await?;
//!     assert_eq!((receipt.points, receipt.balance, receipt.duplicate), (120, 120, false));
//!     // The same reference again (a retry): the original answer, nothing added.
//!     let again = ledger.add_points(add, "pos-12").await?;
//!     assert_eq!((again.transaction_id, again.balance, again.duplicate), (receipt.transaction_id, 120, true));
//!
//!     let spend = UsePoints {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         points: 20,
//!         remark: "cookie".into(),
//!         ..UsePoints::default()
//!     };
//!     assert_eq!(ledger.use_points(spend.clone(), "pos-12").await?.balance, 100);
//!
//!     // A bulk stops at the first item that fails: 90 is more than the 80 left.
//!     let items = vec![UsePoints { points: 20, ..spend.clone() }, UsePoints { points: 90, ..spend }];
//!     let bulk = BulkUsePoints { program: "cafe".into(), items, atomic: false, malformed: None };
//!     let result = ledger.bulk_use_points(bulk, "pos-12").await?;
//!     assert_eq!((result.applied_count, result.fail_at), (1, Some(1)));
//!     assert_eq!(result.failure.expect("the second item failed").reason(), "INSUFFICIENT_POINTS");
//!     assert_eq!(ledger.member("cafe", "alice").await?.points, 80);
//!
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
//!
//! # Credits
//!
//! Credits are exact decimals of a defined type ([`Ledger::define_credit`],
//! [`Ledger::add_credits`], [`Ledger::use_credits`]); a member's balances are on
//! [`views::MemberView::credits`].
//!
//! ```
//! use ledger_core::command::{CreditsChangeCommand, DefineCredit};
//! use ledger_store::{Ledger, LedgerError};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-credits-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let ledger = Ledger::open(&dir)?;
//!     ledger.create_program("cafe", "Corner Cafe", "admin").await?;
//!     let wallet = DefineCredit {
//!         program: "cafe".into(),
//!         credit_id: "wallet".into(),
//!         name: "Stored value".into(),
//!         unit: "TWD".into(),
//!     };
//!     ledger.define_credit(wallet, "admin").await?;
//!
//!     let change = |amount: &str, remark: &str| CreditsChangeCommand {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         credit_id: "wallet".into(),
//!         amount: amount.parse().expect("a decimal"),
//!         remark: remark.into(),
//!         ..CreditsChangeCommand::default()
//!     };
//!     let topped_up = ledger.add_credits(change("500", "top-up"), "cashier-3").await?;
//!     assert_eq!(topped_up.balance.to_string(), "500");
//!     let paid = ledger.use_credits(change("123.45", "lunch"), "pos-12").await?;
//!     assert_eq!(paid.balance.to_string(), "376.55");
//!
//!     // Using more than the balance is refused, and changes nothing.
//!     let refused = ledger.use_credits(change("1000", "too much"), "pos-12").await;
//!     let Err(LedgerError::Rejected(rejection)) = refused else { panic!("not refused: {refused:?}") };
//!     assert_eq!(rejection.reason(), "INSUFFICIENT_CREDITS");
//!     let alice = ledger.member("cafe", "alice").await?;
//!     assert_eq!(alice.credits[0].amount.to_string(), "376.55");
//!
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
//!
//! # Coupons
//!
//! A count of coupons per member and coupon id ([`Ledger::grant_coupons`],
//! [`Ledger::use_coupon`], [`Ledger::member_coupons`]).
//!
//! ```
//! use ledger_core::command::{GrantCoupons, UseCoupon};
//! use ledger_store::Ledger;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-coupons-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let ledger = Ledger::open(&dir)?;
//!     ledger.create_program("cafe", "Corner Cafe", "admin").await?;
//!
//!     let grant = GrantCoupons {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         coupon_id: "free-latte".into(),
//!         name: "Free latte".into(),
//!         count: 2,
//!         reference: "birthday-2026".into(),
//!     };
//!     assert_eq!(ledger.grant_coupons(grant, "crm").await?.count, 2);
//!     let redeem = UseCoupon {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         coupon_id: "free-latte".into(),
//!         remark: "redeemed at the counter".into(),
//!         ..UseCoupon::default()
//!     };
//!     assert_eq!(ledger.use_coupon(redeem, "pos-12").await?.remaining, 1);
//!     let coupons = ledger.member_coupons("cafe", "alice").await?;
//!     assert_eq!((coupons[0].coupon_id.as_str(), coupons[0].count), ("free-latte", 1));
//!
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
//!
//! # Voucher and point statements
//!
//! Echoss imports: a brand's program is named by its `brand_id` as a decimal
//! string. An import is all or nothing: any problem of any item refuses it,
//! naming every problem (`data[i].field`). Importing the same statement again
//! makes a new version of it ([`Ledger::import_voucher_statements`],
//! [`Ledger::import_point_statements`], [`Ledger::define_shop`],
//! [`Ledger::voucher_statement`], [`Ledger::voucher_report`]).
//!
//! ```
//! use ledger_core::Timestamp;
//! use ledger_core::command::{ImportPointStatements, ImportVoucherStatements, PointStatementItem, VoucherImportItem};
//! use ledger_core::vouchers::ReportQuery;
//! use ledger_store::Ledger;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-vouchers-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let ledger = Ledger::open(&dir)?;
//!     ledger.create_program("7", "Brand 7", "admin").await?;
//!
//!     let sent_at = Timestamp::from_micros(1_764_000_000_000_000);
//!     let voucher = VoucherImportItem {
//!         brand_id: 7,
//!         promotion_id: 1,
//!         voucher_identifier: "V-0001".into(),
//!         voucher_number: "0001".into(),
//!         voucher_name: "Free coffee".into(),
//!         line_id: "U123".into(),
//!         sent_at: Some(sent_at),
//!         brand_manager_id: 3,
//!         ..VoucherImportItem::default()
//!     };
//!     let imported = ledger.import_voucher_statements(ImportVoucherStatements { items: vec![voucher] }, "echoss").await?;
//!     assert_eq!((imported.created, imported.updated), (1, 0));
//!     let statement = ledger.voucher_statement(7, 1, "V-0001").await?;
//!     assert_eq!((statement.record.version, statement.record.statement.voucher_name.as_str()), (1, "Free coffee"));
//!     let report = ledger.voucher_report(7, ReportQuery { page_size: 50, ..ReportQuery::default() }).await?;
//!     assert_eq!(report.total_size, 1);
//!
//!     // Point statements move the member (its line id) of the brand's program.
//!     let collected = PointStatementItem {
//!         brand_id: 7,
//!         promotion_id: 1,
//!         line_id: "U123".into(),
//!         change_reason: "COLLECT".into(),
//!         point_change_record: 10,
//!         changed_at: Some(sent_at),
//!         brand_manager_id: 3,
//!         reference: "stmt-1".into(),
//!     };
//!     let imported = ledger.import_point_statements(ImportPointStatements { items: vec![collected] }, "echoss").await?;
//!     assert_eq!(imported.applied, 1);
//!     assert_eq!(ledger.member("7", "U123").await?.points, 10);
//!
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
//!
//! # Member cards and levels
//!
//! Up to five cards (tiers) a program, by `lowest_amount`; a member's level is the
//! highest card its qualifying amount reaches, unless pinned
//! ([`Ledger::create_member_card`], [`Ledger::update_member_card`],
//! [`Ledger::delete_member_card`], [`Ledger::set_member_levels`],
//! [`Ledger::member_cards`]).
//!
//! ```
//! use ledger_core::command::{CreateMemberCard, SetMemberLevels, UpdateMemberCard};
//! use ledger_store::Ledger;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-cards-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let ledger = Ledger::open(&dir)?;
//!     ledger.create_program("cafe", "Corner Cafe", "admin").await?;
//!
//!     let card = |name: &str, lowest_amount: i64| CreateMemberCard {
//!         program: "cafe".into(),
//!         name: name.into(),
//!         benefit: format!("{name} perks"),
//!         lowest_amount,
//!         ..CreateMemberCard::default()
//!     };
//!     let silver = ledger.create_member_card(card("Silver", 0), "admin").await?;
//!     let gold = ledger.create_member_card(card("Gold", 5_000), "admin").await?;
//!     assert_eq!((silver.level, gold.level), (1, 2));
//!
//!     let rename = UpdateMemberCard {
//!         program: "cafe".into(),
//!         card_id: gold.card.card_id.clone(),
//!         name: Some("Gold Plus".into()),
//!         ..UpdateMemberCard::default()
//!     };
//!     ledger.update_member_card(rename, "admin").await?;
//!     // Pin alice to level 2 whatever she has spent (level 0 would unpin her).
//!     let levels = SetMemberLevels { program: "cafe".into(), levels: vec![("alice".into(), 2)] };
//!     assert_eq!(ledger.set_member_levels(levels, "crm").await?.updated, 1);
//!     let alice = ledger.member("cafe", "alice").await?;
//!     assert_eq!((alice.level, alice.level_name.as_str(), alice.level_pinned), (2, "Gold Plus", true));
//!     // Each card's range ends below the next card's lowest amount.
//!     let cards = ledger.member_cards("cafe").await?;
//!     let ranges: Vec<(&str, u64, Option<u64>)> =
//!         cards.iter().map(|view| (view.card.name.as_str(), view.card.lowest_amount, view.highest_amount)).collect();
//!     assert_eq!(ranges, [("Silver", 0, Some(4_999)), ("Gold Plus", 5_000, None)]);
//!
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
//!
//! # Holds
//!
//! A hold sets points or credits aside until it is captured (whole or in part;
//! the rest goes back), voided, or expires; its id is its transaction id
//! ([`Ledger::hold_points`], [`Ledger::hold_credits`], [`Ledger::capture_hold`],
//! [`Ledger::void_hold`], [`Ledger::hold`], [`Ledger::holds`]).
//!
//! ```
//! use ledger_core::command::{AddPoints, CaptureHold, HoldPoints, VoidHold};
//! use ledger_core::holds::HoldState;
//! use ledger_store::Ledger;
//! use ledger_store::views::HoldQuery;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-holds-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let ledger = Ledger::open(&dir)?;
//!     ledger.create_program("cafe", "Corner Cafe", "admin").await?;
//!     let add = AddPoints {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         points: 100,
//!         remark: "welcome".into(),
//!         ..AddPoints::default()
//!     };
//!     ledger.add_points(add, "crm").await?;
//!
//!     let hold = |points: i64| HoldPoints {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         points,
//!         remark: "table 4".into(),
//!         ..HoldPoints::default() // expires after the default hold time
//!     };
//!     let held = ledger.hold_points(hold(60), "pos-12").await?;
//!     let alice = ledger.member("cafe", "alice").await?;
//!     assert_eq!((alice.points, alice.held_points), (40, 60));
//!
//!     // Capture 45 of the 60: the other 15 go back.
//!     let capture = CaptureHold {
//!         program: "cafe".into(),
//!         hold_id: held.hold_id.to_string(),
//!         amount: Some(45.into()),
//!         remark: "bill paid".into(),
//!         ..CaptureHold::default()
//!     };
//!     let captured = ledger.capture_hold(capture, "pos-12").await?;
//!     assert_eq!((captured.hold.state, captured.hold.captured), (HoldState::Captured, 45));
//!     assert_eq!(ledger.member("cafe", "alice").await?.points, 55);
//!
//!     let second = ledger.hold_points(hold(10), "pos-12").await?;
//!     let void = VoidHold {
//!         program: "cafe".into(),
//!         hold_id: second.hold_id.to_string(),
//!         remark: "cancelled".into(),
//!         ..VoidHold::default()
//!     };
//!     ledger.void_hold(void, "pos-12").await?;
//!     assert_eq!(ledger.hold("cafe", &second.hold_id.to_string()).await?.hold.state, HoldState::Voided);
//!     let query = HoldQuery { program: "cafe".into(), member: "alice".into(), page_size: 10, ..HoldQuery::default() };
//!     assert_eq!(ledger.holds(query).await?.holds.len(), 2);
//!     assert_eq!(ledger.member("cafe", "alice").await?.points, 55);
//!
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
//!
//! # Reversals
//!
//! [`Ledger::reverse_transaction`] undoes one earlier transaction (an add or use
//! of points, credits, a coupon grant or use) by its transaction id, once; the
//! reversed activity then shows `reversed_by`.
//!
//! ```
//! use ledger_core::command::{AddPoints, ReverseTransaction};
//! use ledger_store::{Ledger, LedgerError};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-reversals-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let ledger = Ledger::open(&dir)?;
//!     ledger.create_program("cafe", "Corner Cafe", "admin").await?;
//!     let add = AddPoints {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         points: 500,
//!         remark: "typo: meant 50".into(),
//!         ..AddPoints::default()
//!     };
//!     let mistake = ledger.add_points(add, "pos-12").await?;
//!
//!     let reverse = ReverseTransaction {
//!         program: "cafe".into(),
//!         transaction_id: mistake.transaction_id,
//!         remark: "wrong amount".into(),
//!         reference: "fix-1".into(),
//!         target: None, // the ledger reads the transaction from its log
//!     };
//!     let reversal = ledger.reverse_transaction(reverse.clone(), "supervisor-1").await?;
//!     assert_eq!((reversal.amount.to_string(), reversal.balance_after.to_string()), ("-500".into(), "0".into()));
//!     let activity = ledger.activity("cafe", mistake.transaction_id, "").await?;
//!     assert_eq!(activity.reversed_by, Some(reversal.transaction_id));
//!
//!     // Reversing it again under another reference is refused.
//!     let again = ReverseTransaction { reference: "fix-2".into(), ..reverse };
//!     let refused = ledger.reverse_transaction(again, "supervisor-1").await;
//!     let Err(LedgerError::Rejected(rejection)) = refused else { panic!("not refused: {refused:?}") };
//!     assert_eq!(rejection.reason(), "ALREADY_REVERSED");
//!
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
//!
//! # Reads and history
//!
//! Besides a member now ([`Ledger::member`], [`Ledger::members`]): a member as it
//! stood at any past time ([`Ledger::member_as_of`], folded from the log), the
//! activities ([`Ledger::activities`], newest first, with who did each), the raw
//! events with their hashes ([`Ledger::events`]), lots about to expire
//! ([`Ledger::expiring_points`]), and the audit: [`Ledger::verify`] checks the
//! hash chain and [`Ledger::compare_with_replay`] replays the log and compares.
//!
//! ```
//! use ledger_core::Timestamp;
//! use ledger_core::command::{AddPoints, UsePoints};
//! use ledger_store::Ledger;
//! use ledger_store::activities::ActivityQuery;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("ledger-doc-reads-{}", std::process::id()));
//! #   let _ = std::fs::remove_dir_all(&dir);
//!     let ledger = Ledger::open(&dir)?;
//!     ledger.create_program("cafe", "Corner Cafe", "admin").await?;
//!     let add = AddPoints {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         points: 120,
//!         remark: "latte".into(),
//!         ..AddPoints::default()
//!     };
//!     let added = ledger.add_points(add, "pos-12").await?;
//!     let spend = UsePoints {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         points: 20,
//!         remark: "cookie".into(),
//!         ..UsePoints::default()
//!     };
//!     ledger.use_points(spend, "pos-7").await?;
//!
//!     // Alice as she stood right after the add.
//!     let added_at = ledger.activity("cafe", added.transaction_id, "").await?.recorded_at;
//!     assert_eq!(ledger.member_as_of("cafe", "alice", added_at).await?.points, 120);
//!     assert_eq!(ledger.member("cafe", "alice").await?.points, 100);
//!
//!     let query = ActivityQuery {
//!         program: "cafe".into(),
//!         member: "alice".into(),
//!         page_size: 10,
//!         ..ActivityQuery::default()
//!     };
//!     let page = ledger.activities(query).await?;
//!     let seen: Vec<(String, &str)> =
//!         page.activities.iter().map(|activity| (activity.amount.to_string(), activity.actor.as_str())).collect();
//!     assert_eq!(seen, [("-20".to_owned(), "pos-7"), ("120".to_owned(), "pos-12")]);
//!
//!     // The log: the program's creation, the add and the use, each hash-chained
//!     // to the one before.
//!     let events = ledger.events(1, u64::MAX).collect::<Result<Vec<_>, _>>()?;
//!     let actors: Vec<&str> = events.iter().map(|event| event.envelope.actor.as_str()).collect();
//!     assert_eq!(actors, ["admin", "pos-12", "pos-7"]);
//!     let far = Timestamp::from_micros(added_at.micros() + 365 * 86_400 * 1_000_000);
//!     let query = ledger_store::history::ExpiringQuery { program: "cafe".into(), before: far, page_size: 10, after: None };
//!     assert!(ledger.expiring_points(query).await?.lots.is_empty(), "these points never expire");
//!
//!     let report = ledger.verify()?;
//!     assert!(report.ok, "{}", report.first_mismatch);
//!     assert_eq!(report.events, 3);
//!     assert_eq!(ledger.compare_with_replay()?, None);
//!
//!     ledger.close()?;
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```

pub mod activities;
pub mod activity;
pub mod audit;
pub mod backup;
pub mod disk;
pub mod durable;
pub mod envelope;
pub mod error;
pub mod fold;
pub mod history;
pub mod integrity;
pub mod ledger;
pub mod log;
pub mod operations;
pub mod projections;
pub mod rebuild;
pub mod replay;
pub mod resident;
pub mod salvage;
pub mod sweep;
pub mod tokens;
pub mod views;
pub mod writer;

pub use error::{LedgerError, StoreError};
pub use integrity::Integrity;
pub use ledger::{Health, Ledger, Options};
pub use operations::{
    CouponUsed, CouponsGranted, FormulaView, LevelsSet, PointStatementsImported, ProgramView, RewardView,
    VouchersImported,
};
pub use replay::Until;
