//! A typed method of `Ledger` for every command a caller may send, and the reads
//! the gRPC services made through `Ledger::read` closures (programs, formulas,
//! rewards), so that a program embedding the ledger never matches on `Outcome`.
//!
//! Each method builds its own `Command` variant and takes the one `Outcome`
//! variant `decide` answers it with (`ledger_core::decide`: one arm per command,
//! one variant per arm). The expiry sweep's `ExpirePoints` is no caller's
//! command: `Ledger::execute` refuses it (`internal_command`), and
//! `Ledger::sweep_expiry` runs the sweep itself, as the system actor.
//!
//! Every command method answers once its events are durable, and fails with
//! `LedgerError::Rejected` (the core's `Rejection`: its `reason()` is the
//! `ErrorInfo` reason of docs/API.md, its `field()` the field at fault, and
//! nothing is recorded), `LedgerError::Unavailable` (storage refuses writes:
//! a full, read-only or failing disk; the outcome of a write in flight is
//! unknown, so retry it with the same `reference`) or `LedgerError::Closed`.
//! Each method's doc names what it returns and the refusals particular to it;
//! every one refuses an unknown program (`PROGRAM_NOT_FOUND`) and malformed
//! fields (`INVALID_FIELD`: ids, names, remarks, amounts out of range).

use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::sweep::SYSTEM_ACTOR;
use crate::views;
use ledger_core::command::{
    CreateMemberCard, CreditsChangeCommand, CreditsReceipt, DefineCredit, DefineFormula, DefineReward, DefineShop,
    DeleteMemberCard, ExpirePoints, GrantCoupons, ImportPointStatements, ImportVoucherStatements, SetMemberLevels,
    UpdateMemberCard, UseCoupon,
};
use ledger_core::limits::EXPIRY_SWEEP_LOTS_MAX;
use ledger_core::tiers::CardView;
use ledger_core::{Command, FieldPath, Outcome, Rejection, Timestamp};
use rust_decimal::Decimal;

/// GrantCoupons' answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponsGranted {
    pub transaction_id: u64,
    /// The member's coupons of this id right after the grant (for a repeated
    /// reference, right after the original grant).
    pub count: u32,
}

/// UseCoupon's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponUsed {
    pub transaction_id: u64,
    /// The member's coupons of that id left after the use.
    pub remaining: u32,
    pub used_at: Timestamp,
}

/// ImportVoucherStatements' answer: statements new to the book, and those that
/// replaced an earlier version of the same (promotion, identifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VouchersImported {
    pub created: u32,
    pub updated: u32,
}

/// ImportPointStatements' answer: items applied (an item whose reference was
/// imported before changes nothing and is not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointStatementsImported {
    pub applied: u32,
}

/// SetMemberLevels' answer: the members set (each gets a `MemberLevelSet` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelsSet {
    pub updated: u32,
}

/// A program as `Ledger::programs` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramView {
    pub program: String,
    pub name: String,
    pub created_at: Timestamp,
}

/// A formula as `Ledger::formulas` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormulaView {
    pub formula_id: String,
    pub name: String,
    pub multiplier: Decimal,
}

/// A reward as `Ledger::rewards` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardView {
    pub reward_id: String,
    pub name: String,
    pub points: u64,
    pub expires_at: Option<Timestamp>,
}

impl Ledger {
    /// Defines (or redefines) a formula: AddPoints with its `formula_id` and a
    /// `cost` earns `floor(cost × multiplier)` points. Returns nothing; refuses a
    /// multiplier that is not positive (`INVALID_FIELD`).
    pub async fn define_formula(&self, command: DefineFormula, actor: &str) -> Result<(), LedgerError> {
        match self.execute(Command::DefineFormula(command), actor).await? {
            Outcome::FormulaDefined => Ok(()),
            other => wrong_outcome(other),
        }
    }

    /// Defines (or redefines) a reward: UsePoints with its `reward_id` and no
    /// points spends the reward's cost. Returns nothing; refuses a cost out of
    /// range (`INVALID_FIELD`).
    pub async fn define_reward(&self, command: DefineReward, actor: &str) -> Result<(), LedgerError> {
        match self.execute(Command::DefineReward(command), actor).await? {
            Outcome::RewardDefined => Ok(()),
            other => wrong_outcome(other),
        }
    }

    /// Defines (or renames) a credit type; credits are exact decimals of it.
    /// Returns nothing.
    pub async fn define_credit(&self, command: DefineCredit, actor: &str) -> Result<(), LedgerError> {
        match self.execute(Command::DefineCredit(command), actor).await? {
            Outcome::CreditDefined => Ok(()),
            other => wrong_outcome(other),
        }
    }

    /// Adds credits of a defined type to a member. Returns the receipt (its
    /// transaction id, the amount and the member's balance of that type after it;
    /// for a repeated `reference`, the first add's, with `duplicate` set and
    /// nothing recorded). Refuses a type not
    /// defined (`CREDIT_NOT_FOUND`), an amount that is not positive or too
    /// large, or a balance it would take past what a wallet holds
    /// (`INVALID_FIELD`), and a `reference` used by another kind of command
    /// (`REFERENCE_IN_USE`).
    pub async fn add_credits(&self, command: CreditsChangeCommand, actor: &str) -> Result<CreditsReceipt, LedgerError> {
        match self.execute(Command::AddCredits(command), actor).await? {
            Outcome::Credits(receipt) => Ok(receipt),
            other => wrong_outcome(other),
        }
    }

    /// Uses a member's credits. Returns the receipt (transaction id, amount,
    /// balance after; for a repeated `reference`, the first use's, `duplicate`
    /// set). Refuses a balance
    /// short of the amount (`INSUFFICIENT_CREDITS`), and otherwise as
    /// [`Ledger::add_credits`] does.
    pub async fn use_credits(&self, command: CreditsChangeCommand, actor: &str) -> Result<CreditsReceipt, LedgerError> {
        match self.execute(Command::UseCredits(command), actor).await? {
            Outcome::Credits(receipt) => Ok(receipt),
            other => wrong_outcome(other),
        }
    }

    /// Grants a member `count` coupons of one id. Returns the transaction id and
    /// the member's count of that coupon after the grant (for a repeated
    /// `reference`, the first grant's, and nothing is recorded). Refuses a `count` out
    /// of range or one that would take the member's count past `u32::MAX`
    /// (`INVALID_FIELD`), and a `reference` used by another kind of command
    /// (`REFERENCE_IN_USE`).
    pub async fn grant_coupons(&self, command: GrantCoupons, actor: &str) -> Result<CouponsGranted, LedgerError> {
        match self.execute(Command::GrantCoupons(command), actor).await? {
            Outcome::CouponsGranted { transaction_id, count } => Ok(CouponsGranted { transaction_id, count }),
            other => wrong_outcome(other),
        }
    }

    /// Uses one of a member's coupons. Returns the transaction id, the coupons
    /// of that id left and when it was used (for a repeated `reference`, the
    /// first use's, and nothing is recorded). Refuses a member who holds none of
    /// that coupon (`NO_COUPON`), and a `reference` used by another kind of
    /// command (`REFERENCE_IN_USE`).
    pub async fn use_coupon(&self, command: UseCoupon, actor: &str) -> Result<CouponUsed, LedgerError> {
        match self.execute(Command::UseCoupon(command), actor).await? {
            Outcome::CouponUsed { transaction_id, remaining, used_at } => {
                Ok(CouponUsed { transaction_id, remaining, used_at })
            }
            other => wrong_outcome(other),
        }
    }

    /// Names a shop of a brand's program, for the voucher report. Returns
    /// nothing; refuses a shop id out of range (`INVALID_FIELD`).
    pub async fn define_shop(&self, command: DefineShop, actor: &str) -> Result<(), LedgerError> {
        match self.execute(Command::DefineShop(command), actor).await? {
            Outcome::ShopDefined => Ok(()),
            other => wrong_outcome(other),
        }
    }

    /// Imports Echoss voucher statements, all or nothing: every problem of every
    /// item is named (`data[i].field`) and any problem refuses the whole import
    /// (`INVALID_FIELD`, one `Rejection::Many` naming them all; an item whose
    /// brand is no program, `PROGRAM_NOT_FOUND`). Returns how many statements
    /// were new and how many replaced an earlier version.
    pub async fn import_voucher_statements(
        &self,
        command: ImportVoucherStatements,
        actor: &str,
    ) -> Result<VouchersImported, LedgerError> {
        match self.execute(Command::ImportVoucherStatements(command), actor).await? {
            Outcome::VouchersImported { created, updated } => Ok(VouchersImported { created, updated }),
            other => wrong_outcome(other),
        }
    }

    /// Imports Echoss point statements, all or nothing, as voucher statements are
    /// (refusals as [`Ledger::import_voucher_statements`]; a use beyond a member's
    /// points, `INSUFFICIENT_POINTS`). Returns how many items applied (an item
    /// whose reference was imported before is not counted).
    pub async fn import_point_statements(
        &self,
        command: ImportPointStatements,
        actor: &str,
    ) -> Result<PointStatementsImported, LedgerError> {
        match self.execute(Command::ImportPointStatements(command), actor).await? {
            Outcome::PointStatementsImported { applied } => Ok(PointStatementsImported { applied }),
            other => wrong_outcome(other),
        }
    }

    /// Adds a member card (a tier); its id is the transaction id that created it.
    /// Returns the card at its level. Refuses a name another card has
    /// (`NAME_TAKEN`), a `lowest_amount` that does not fit between its
    /// neighbours' (`INVALID_FIELD`), and a program holding the most cards it
    /// may (`TOO_MANY_CARDS`).
    pub async fn create_member_card(&self, command: CreateMemberCard, actor: &str) -> Result<CardView, LedgerError> {
        match self.execute(Command::CreateMemberCard(command), actor).await? {
            Outcome::MemberCard(card) => Ok(card),
            other => wrong_outcome(other),
        }
    }

    /// Changes the fields of a card that are `Some`. Returns the card after the
    /// change, at its level. Refuses an unknown card (`CARD_NOT_FOUND`), a name
    /// another card has (`NAME_TAKEN`), and a `lowest_amount` that does not fit
    /// between its neighbours' (`INVALID_FIELD`).
    pub async fn update_member_card(&self, command: UpdateMemberCard, actor: &str) -> Result<CardView, LedgerError> {
        match self.execute(Command::UpdateMemberCard(command), actor).await? {
            Outcome::MemberCard(card) => Ok(card),
            other => wrong_outcome(other),
        }
    }

    /// Deletes a card; members pinned to it follow to the card that takes its
    /// place. Returns nothing; refuses an unknown card (`CARD_NOT_FOUND`) and the
    /// level-1 card (`LEVEL_ONE_CARD`).
    pub async fn delete_member_card(&self, command: DeleteMemberCard, actor: &str) -> Result<(), LedgerError> {
        match self.execute(Command::DeleteMemberCard(command), actor).await? {
            Outcome::MemberCardDeleted => Ok(()),
            other => wrong_outcome(other),
        }
    }

    /// Pins members to levels (level 0 unpins), all or nothing. Returns how many
    /// members were set. Refuses an empty list and malformed member ids
    /// (`INVALID_FIELD`) and a level no card has (`CARD_NOT_FOUND`).
    pub async fn set_member_levels(&self, command: SetMemberLevels, actor: &str) -> Result<LevelsSet, LedgerError> {
        match self.execute(Command::SetMemberLevels(command), actor).await? {
            Outcome::LevelsSet { updated } => Ok(LevelsSet { updated }),
            other => wrong_outcome(other),
        }
    }

    /// Runs one pass of the expiry sweep now: records `PointsExpired` for up to
    /// `lots_max` lots (at most `EXPIRY_SWEEP_LOTS_MAX`) and `HoldExpired` for
    /// pending holds whose time has come, as the system actor, and returns how
    /// many it recorded. Reads never count an expired lot or hold either way;
    /// the sweep makes the log say when each went. The timer
    /// (`Options::expiry_sweep_interval`) does this by itself; this is for a
    /// program that turned the timer off, and for tests. Refuses nothing of its
    /// own: only `Unavailable` and `Closed`, as every write.
    pub async fn sweep_expiry(&self, lots_max: usize) -> Result<usize, LedgerError> {
        let command = Command::ExpirePoints(ExpirePoints { lots_max: lots_max.min(EXPIRY_SWEEP_LOTS_MAX) });
        match self.submit(command, SYSTEM_ACTOR).await? {
            Outcome::PointsExpired { lots } => Ok(lots),
            other => wrong_outcome(other),
        }
    }

    /// Every program, by id. Refuses nothing of its own; like every read, it is
    /// `Unavailable` when a storage fault took back what it saw (retry it).
    pub async fn programs(&self) -> Result<Vec<ProgramView>, LedgerError> {
        self.read(|state| {
            let programs = state.programs.iter();
            programs
                .map(|(id, program)| ProgramView {
                    program: id.clone(),
                    name: program.name.clone(),
                    created_at: program.created_at,
                })
                .collect()
        })
        .await
    }

    /// A program's formulas, by id. Refuses an unknown program (`PROGRAM_NOT_FOUND`).
    pub async fn formulas(&self, program: &str) -> Result<Vec<FormulaView>, LedgerError> {
        self.read(|state| {
            let found = state.program(program).ok_or_else(|| views::unknown_program(program))?;
            let formulas = found.formulas.iter();
            Ok(formulas
                .map(|(id, formula)| FormulaView {
                    formula_id: id.clone(),
                    name: formula.name.clone(),
                    multiplier: formula.multiplier,
                })
                .collect())
        })
        .await?
    }

    /// A program's rewards, by id, expired ones included (with their time).
    /// Refuses an unknown program (`PROGRAM_NOT_FOUND`).
    pub async fn rewards(&self, program: &str) -> Result<Vec<RewardView>, LedgerError> {
        self.read(|state| {
            let found = state.program(program).ok_or_else(|| views::unknown_program(program))?;
            let rewards = found.rewards.iter();
            Ok(rewards
                .map(|(id, reward)| RewardView {
                    reward_id: id.clone(),
                    name: reward.name.clone(),
                    points: reward.points,
                    expires_at: reward.expires_at,
                })
                .collect())
        })
        .await?
    }
}

/// Refuses the commands only the ledger itself sends: `execute` is the door for
/// callers, and the sweep's `ExpirePoints` would let one record expiries as
/// whatever actor it named, at a time of its choosing.
pub(crate) fn internal_command(command: &Command) -> Result<(), LedgerError> {
    match command {
        Command::ExpirePoints(_) => Err(LedgerError::Rejected(Rejection::Invalid {
            field: FieldPath::new("command"),
            rule: "ExpirePoints is the expiry sweep's own command; call Ledger::sweep_expiry".to_owned(),
        })),
        _ => Ok(()),
    }
}

/// A command answered with another command's outcome. These methods build the
/// command themselves, `decide` answers each command with a single variant
/// (one arm per command), and the writer hands each submission the outcome
/// decided for it alone (`writer`, where a group's replies are paired with
/// their submissions), so no caller can get here: it would be a bug in the
/// core, whose answers nothing could then be trusted on, and a ledger stops on a
/// broken invariant rather than hand back a guess.
fn wrong_outcome(other: Outcome) -> ! {
    panic!("decide answered a command with another command's outcome: {other:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Options;
    use ledger_core::command::{AddPoints, PointStatementItem, VoucherImportItem};
    use std::path::PathBuf;

    const ACTOR: &str = "tests";

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ledger-operations-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// The timer is off so that the test's own sweep is the only one.
    fn open(dir: &std::path::Path) -> Ledger {
        Ledger::open_with(dir, Options { expiry_sweep_interval: None, ..Options::default() }).expect("open")
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    }

    #[test]
    fn execute_refuses_the_sweeps_command_and_records_nothing() {
        let dir = fresh_dir("internal");
        let ledger = open(&dir);
        runtime().block_on(async {
            ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
            let before = ledger.durable_sequence();
            let sweep = Command::ExpirePoints(ExpirePoints { lots_max: 10 });
            match ledger.execute(sweep, ACTOR).await {
                Err(LedgerError::Rejected(Rejection::Invalid { field, rule })) => {
                    assert_eq!(field.as_str(), "command");
                    assert!(rule.contains("sweep_expiry"), "{rule}");
                }
                other => panic!("ExpirePoints from a caller must be refused, got {other:?}"),
            }
            assert_eq!(ledger.durable_sequence(), before, "a refused command records nothing");
            // The sweep itself still runs, as the system actor.
            assert_eq!(ledger.sweep_expiry(10).await.expect("sweep"), 0, "nothing is due");
        });
        ledger.close().expect("close");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn every_typed_method_answers_its_own_result() {
        let dir = fresh_dir("typed");
        let ledger = open(&dir);
        runtime().block_on(async {
            ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
            let formula = DefineFormula {
                program: "cafe".into(),
                formula_id: "spend".into(),
                name: "1 per 10".into(),
                multiplier: "0.1".parse().expect("decimal"),
            };
            ledger.define_formula(formula, ACTOR).await.expect("formula");
            let reward = DefineReward {
                program: "cafe".into(),
                reward_id: "cookie".into(),
                name: "Cookie".into(),
                points: 30,
                expires_at: None,
            };
            ledger.define_reward(reward, ACTOR).await.expect("reward");
            let formulas = ledger.formulas("cafe").await.expect("formulas");
            assert_eq!(formulas.iter().map(|formula| formula.formula_id.as_str()).collect::<Vec<_>>(), ["spend"]);
            let rewards = ledger.rewards("cafe").await.expect("rewards");
            assert_eq!(
                rewards.iter().map(|reward| (reward.reward_id.as_str(), reward.points)).collect::<Vec<_>>(),
                [("cookie", 30)]
            );
            let programs = ledger.programs().await.expect("programs");
            assert_eq!(programs.iter().map(|program| program.name.as_str()).collect::<Vec<_>>(), ["Cafe"]);

            let credit = DefineCredit {
                program: "cafe".into(),
                credit_id: "wallet".into(),
                name: "Wallet".into(),
                unit: "TWD".into(),
            };
            ledger.define_credit(credit, ACTOR).await.expect("credit");
            let change = |amount: &str| CreditsChangeCommand {
                program: "cafe".into(),
                member: "alice".into(),
                credit_id: "wallet".into(),
                amount: amount.parse().expect("decimal"),
                remark: "top-up".into(),
                reference: String::new(),
            };
            assert_eq!(ledger.add_credits(change("12.50"), ACTOR).await.expect("add").balance.to_string(), "12.5");
            assert_eq!(ledger.use_credits(change("2.5"), ACTOR).await.expect("use").balance.to_string(), "10");

            let grant = GrantCoupons {
                program: "cafe".into(),
                member: "alice".into(),
                coupon_id: "latte".into(),
                name: "Latte".into(),
                count: 2,
                reference: String::new(),
            };
            assert_eq!(ledger.grant_coupons(grant, ACTOR).await.expect("grant").count, 2);
            let spend = UseCoupon {
                program: "cafe".into(),
                member: "alice".into(),
                coupon_id: "latte".into(),
                remark: "morning".into(),
                reference: String::new(),
            };
            assert_eq!(ledger.use_coupon(spend, ACTOR).await.expect("use coupon").remaining, 1);

            let card = |name: &str, lowest_amount| CreateMemberCard {
                program: "cafe".into(),
                name: name.into(),
                lowest_amount,
                ..CreateMemberCard::default()
            };
            let silver = ledger.create_member_card(card("Silver", 0), ACTOR).await.expect("silver");
            let gold = ledger.create_member_card(card("Gold", 1_000), ACTOR).await.expect("gold");
            assert_eq!((silver.level, gold.level), (1, 2));
            let rename = UpdateMemberCard {
                program: "cafe".into(),
                card_id: gold.card.card_id.clone(),
                name: Some("Golden".into()),
                ..UpdateMemberCard::default()
            };
            assert_eq!(ledger.update_member_card(rename, ACTOR).await.expect("update").card.name, "Golden");
            let levels = SetMemberLevels { program: "cafe".into(), levels: vec![("alice".into(), 2)] };
            assert_eq!(ledger.set_member_levels(levels, ACTOR).await.expect("levels"), LevelsSet { updated: 1 });
            assert_eq!(ledger.member("cafe", "alice").await.expect("alice").level_name, "Golden");
            let delete = DeleteMemberCard { program: "cafe".into(), card_id: gold.card.card_id };
            ledger.delete_member_card(delete, ACTOR).await.expect("delete");
            assert_eq!(ledger.member_cards("cafe").await.expect("cards").len(), 1);

            ledger.create_program("7", "Brand 7", ACTOR).await.expect("brand");
            let shop = DefineShop { program: "7".into(), shop_id: 3, name: "Shop 3".into() };
            ledger.define_shop(shop, ACTOR).await.expect("shop");
            let at = Timestamp(1_614_528_000_000_000);
            let voucher = VoucherImportItem {
                brand_id: 7,
                promotion_id: 1,
                voucher_identifier: "V1".into(),
                voucher_number: "N1".into(),
                voucher_name: "Coffee".into(),
                line_id: "L1".into(),
                sent_at: Some(at),
                brand_manager_id: 3,
                ..VoucherImportItem::default()
            };
            let import = ImportVoucherStatements { items: vec![voucher] };
            let imported = ledger.import_voucher_statements(import.clone(), ACTOR).await.expect("vouchers");
            assert_eq!(imported, VouchersImported { created: 1, updated: 0 });
            let again = ledger.import_voucher_statements(import, ACTOR).await.expect("vouchers again");
            assert_eq!(again, VouchersImported { created: 0, updated: 1 });
            let statement = PointStatementItem {
                brand_id: 7,
                promotion_id: 1,
                line_id: "L1".into(),
                change_reason: "COLLECT".into(),
                point_change_record: 10,
                changed_at: Some(at),
                brand_manager_id: 3,
                reference: "s1".into(),
            };
            let import = ImportPointStatements { items: vec![statement] };
            let imported = ledger.import_point_statements(import, ACTOR).await.expect("points");
            assert_eq!(imported, PointStatementsImported { applied: 1 });
            assert_eq!(ledger.member("7", "L1").await.expect("L1").points, 10);

            // A lot that expires a few milliseconds from now; once the clock has
            // passed it (a wait on the clock, not a guess at how long), the sweep
            // records its expiry.
            let expires_at = Timestamp(Timestamp::from_chrono(chrono::Utc::now()).micros() + 20_000);
            let add = AddPoints {
                program: "cafe".into(),
                member: "bob".into(),
                points: 5,
                remark: "visit".into(),
                expires_at: Some(expires_at),
                ..AddPoints::default()
            };
            ledger.add_points(add, ACTOR).await.expect("add");
            while Timestamp::from_chrono(chrono::Utc::now()) <= expires_at {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert_eq!(ledger.sweep_expiry(10).await.expect("sweep"), 1);
            assert_eq!(ledger.sweep_expiry(10).await.expect("sweep again"), 0, "each lot expires once");
        });
        assert_eq!(ledger.compare_with_replay().expect("replay"), None);
        ledger.close().expect("close");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// Polls a future on this thread, parking between polls: an executor that is
    /// not tokio's, to show that `Ledger` needs no runtime (its own threads do
    /// the work; its futures wait on tokio's channels, which any executor polls).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
        let mut context = std::task::Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            match future.as_mut().poll(&mut context) {
                std::task::Poll::Ready(output) => return output,
                std::task::Poll::Pending => std::thread::park(),
            }
        }
    }

    #[test]
    fn a_ledger_needs_no_tokio_runtime() {
        let dir = fresh_dir("executor");
        let ledger = open(&dir);
        assert!(tokio::runtime::Handle::try_current().is_err(), "the test runs outside any runtime");
        block_on(ledger.create_program("cafe", "Cafe", ACTOR)).expect("program");
        let add = AddPoints {
            program: "cafe".into(),
            member: "alice".into(),
            points: 7,
            remark: "visit".into(),
            ..AddPoints::default()
        };
        assert_eq!(block_on(ledger.add_points(add, ACTOR)).expect("add").balance, 7);
        assert_eq!(block_on(ledger.member("cafe", "alice")).expect("read").points, 7);
        // The backup too: it waits for a thread of its own, not tokio's pool.
        let file = dir.with_extension("backup");
        assert_eq!(block_on(ledger.backup(&file)).expect("backup").header.sequence, 2);
        ledger.close().expect("close");
        std::fs::remove_dir_all(&dir).expect("clean up");
        std::fs::remove_file(&file).expect("clean up");
    }
}
