//! The test harness shared by `points.rs` and `properties.rs`: a tiny in-memory
//! store that does what the real one does around the pure core (decide with a
//! `Context`, stamp each event with consecutive sequences, apply, keep the log), and
//! builders that keep the tests short.

#![allow(dead_code)] // Each test binary uses its own part of the harness.

use ledger_core::command::{
    AddPoints, BulkAddPoints, BulkUsePoints, CreateProgram, DefineFormula, DefineReward, ExpirePoints, UsePoints,
};
use ledger_core::{Command, Context, Decision, Event, Outcome, Rejection, Stamp, State, Timestamp, decide};
use rust_decimal::Decimal;
use std::fmt::Write;
use std::str::FromStr;

/// The program every `Store::new` starts with.
pub const PROGRAM: &str = "p";

pub struct Store {
    pub state: State,
    pub next_sequence: u64,
    pub at: Timestamp,
    /// Every applied event with the stamp it was applied with.
    pub log: Vec<(Stamp, Event)>,
}

impl Store {
    /// A store at time 0 that holds program `p` (sequence 1).
    pub fn new() -> Store {
        let mut store = Store::empty();
        store.step(&create_program(PROGRAM)).expect("create the test program");
        store
    }

    pub fn empty() -> Store {
        Store { state: State::default(), next_sequence: 1, at: Timestamp::from_micros(0), log: Vec::new() }
    }

    /// Decides the command and applies every event of the decision, exactly as the
    /// real store does; returns the whole decision.
    pub fn decide(&mut self, command: &Command) -> Result<Decision, Rejection> {
        let context = Context { at: self.at, next_sequence: self.next_sequence };
        // The real store reads the transaction a reversal names from its log.
        let mut command = command.clone();
        if let Command::ReverseTransaction(reverse) = &mut command {
            reverse.target = self
                .log
                .iter()
                .find(|(stamp, _)| stamp.sequence == reverse.transaction_id)
                .map(|(_, event)| event.clone());
        }
        let decision = decide(&self.state, &command, context)?;
        for event in &decision.events {
            let stamp = Stamp { sequence: self.next_sequence, recorded_at: self.at };
            self.state.apply(stamp, event);
            self.log.push((stamp, event.clone()));
            self.next_sequence += 1;
        }
        Ok(decision)
    }

    pub fn run(&mut self, command: &Command) -> Result<Outcome, Rejection> {
        self.decide(command).map(|decision| decision.outcome)
    }

    /// Runs one step; a clock step moves the clock to an absolute time.
    pub fn step(&mut self, step: &Step) -> Result<Outcome, Rejection> {
        match step {
            Step::Run(command) => self.run(command),
            Step::At(micros) => {
                assert!(*micros >= self.at.micros(), "the clock never goes back");
                self.at = Timestamp::from_micros(*micros);
                Ok(Outcome::FormulaDefined)
            }
            Step::Apply(event) => {
                let stamp = Stamp { sequence: self.next_sequence, recorded_at: self.at };
                self.state.apply(stamp, event);
                self.log.push((stamp, event.clone()));
                self.next_sequence += 1;
                Ok(Outcome::FormulaDefined)
            }
        }
    }

    /// The state the recorded log rebuilds from nothing.
    pub fn replay(&self) -> State {
        let mut state = State::default();
        for (stamp, event) in &self.log {
            state.apply(*stamp, event);
        }
        state
    }

    pub fn live_points(&self, member: &str) -> u64 {
        self.state.member(PROGRAM, member).map_or(0, |member| member.live_points(self.at))
    }
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

/// One step of a test script: a command, or the clock moving to a time.
// Steps live in short test scripts, where boxing commands would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Step {
    Run(Command),
    At(i64),
    /// An event appended as if the log held it, without `decide`: how a test puts
    /// a member where no command sequence gets in a test's time (a balance at the
    /// edge of its type).
    Apply(Event),
}

pub fn at(micros: i64) -> Step {
    Step::At(micros)
}

pub fn create_program(program: &str) -> Step {
    Step::Run(Command::CreateProgram(CreateProgram { program: program.to_owned(), name: format!("Program {program}") }))
}

pub fn formula(formula_id: &str, multiplier: &str) -> Step {
    Step::Run(Command::DefineFormula(DefineFormula {
        program: PROGRAM.to_owned(),
        formula_id: formula_id.to_owned(),
        name: format!("Formula {formula_id}"),
        multiplier: decimal(multiplier),
    }))
}

pub fn reward(reward_id: &str, points: i64, expires_at: Option<i64>) -> Step {
    Step::Run(Command::DefineReward(DefineReward {
        program: PROGRAM.to_owned(),
        reward_id: reward_id.to_owned(),
        name: format!("Reward {reward_id}"),
        points,
        expires_at: expires_at.map(Timestamp::from_micros),
    }))
}

/// An add of `points` to `member` of program `p`, with a remark.
pub fn add(member: &str, points: i64) -> Step {
    Step::Run(Command::AddPoints(AddPoints {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        points,
        remark: "earned".to_owned(),
        ..AddPoints::default()
    }))
}

/// A use of `points` by `member` of program `p`, with a remark.
pub fn spend(member: &str, points: i64) -> Step {
    Step::Run(Command::UsePoints(UsePoints {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        points,
        remark: "spent".to_owned(),
        ..UsePoints::default()
    }))
}

pub fn bulk_add(items: Vec<Step>) -> Step {
    let items = items.into_iter().map(Step::into_add).collect();
    Step::Run(Command::BulkAddPoints(BulkAddPoints {
        program: PROGRAM.to_owned(),
        items,
        atomic: false,
        malformed: None,
    }))
}

pub fn bulk_use(items: Vec<Step>) -> Step {
    let items = items.into_iter().map(Step::into_use).collect();
    Step::Run(Command::BulkUsePoints(BulkUsePoints {
        program: PROGRAM.to_owned(),
        items,
        atomic: false,
        malformed: None,
    }))
}

pub fn expire(lots_max: usize) -> Step {
    Step::Run(Command::ExpirePoints(ExpirePoints { lots_max }))
}

pub fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal literal")
}

/// Modifiers: each applies to the commands that have the field and panics on the
/// others, so that a test cannot silently set a field that does not exist.
impl Step {
    fn command(&mut self) -> &mut Command {
        match self {
            Step::Run(command) => command,
            Step::At(_) | Step::Apply(_) => panic!("a clock or event step has no fields"),
        }
    }

    pub fn into_command(self) -> Command {
        match self {
            Step::Run(command) => command,
            Step::At(_) | Step::Apply(_) => panic!("a clock or event step is not a command"),
        }
    }

    fn into_add(self) -> AddPoints {
        match self.into_command() {
            Command::AddPoints(add) => add,
            other => panic!("not an add: {other:?}"),
        }
    }

    fn into_use(self) -> UsePoints {
        match self.into_command() {
            Command::UsePoints(spend) => spend,
            other => panic!("not a use: {other:?}"),
        }
    }

    pub fn reference(mut self, reference: &str) -> Step {
        match self.command() {
            Command::AddPoints(add) => add.reference = reference.to_owned(),
            Command::UsePoints(spend) => spend.reference = reference.to_owned(),
            other => panic!("no reference on {other:?}"),
        }
        self
    }

    pub fn replace(mut self) -> Step {
        match self.command() {
            Command::AddPoints(add) => add.replace_duplicate = true,
            Command::UsePoints(spend) => spend.replace_duplicate = true,
            other => panic!("no replace_duplicate on {other:?}"),
        }
        self
    }

    pub fn remark(mut self, remark: &str) -> Step {
        match self.command() {
            Command::AddPoints(add) => add.remark = remark.to_owned(),
            Command::UsePoints(spend) => spend.remark = remark.to_owned(),
            other => panic!("no remark on {other:?}"),
        }
        self
    }

    pub fn program(mut self, program: &str) -> Step {
        match self.command() {
            Command::AddPoints(add) => add.program = program.to_owned(),
            Command::UsePoints(spend) => spend.program = program.to_owned(),
            Command::BulkAddPoints(bulk) => bulk.program = program.to_owned(),
            Command::BulkUsePoints(bulk) => bulk.program = program.to_owned(),
            Command::DefineFormula(define) => define.program = program.to_owned(),
            Command::DefineReward(define) => define.program = program.to_owned(),
            other => panic!("no program on {other:?}"),
        }
        self
    }

    pub fn expires(mut self, micros: i64) -> Step {
        match self.command() {
            Command::AddPoints(add) => add.expires_at = Some(Timestamp::from_micros(micros)),
            other => panic!("no expires_at on {other:?}"),
        }
        self
    }

    /// `cost` may be empty for none, `formula_id` empty for none.
    pub fn cost(mut self, cost: &str, formula_id: &str) -> Step {
        match self.command() {
            Command::AddPoints(add) => {
                add.cost = (!cost.is_empty()).then(|| decimal(cost));
                add.formula_id = formula_id.to_owned();
            }
            other => panic!("no cost on {other:?}"),
        }
        self
    }

    pub fn reward(mut self, reward_id: &str) -> Step {
        match self.command() {
            Command::UsePoints(spend) => spend.reward_id = reward_id.to_owned(),
            other => panic!("no reward_id on {other:?}"),
        }
        self
    }

    pub fn atomic(mut self) -> Step {
        match self.command() {
            Command::BulkAddPoints(bulk) => bulk.atomic = true,
            Command::BulkUsePoints(bulk) => bulk.atomic = true,
            other => panic!("no atomic on {other:?}"),
        }
        self
    }
}

/// Checks what must hold after every step, whatever the command: the log replays
/// into the live state, and every member's points equal its lots and its events.
pub fn check_invariants(store: &Store) {
    assert_eq!(store.replay(), store.state, "replaying the log gives the live state");
    for (program_id, program) in &store.state.programs {
        for (member_id, member) in &program.members {
            let from_events: i128 = store
                .log
                .iter()
                .filter(|(_, event)| event.program == *program_id && event.member == *member_id)
                .map(|(_, event)| event.body.points_delta())
                .sum();
            assert_eq!(i128::from(member.points), from_events, "{member_id}: points equal the sum of its events");
            assert_eq!(member.points, member.lots.total(), "{member_id}: points equal its lots' remainders");
            // What pending holds took is out of the lots until they settle; one
            // past its time already counts as given back.
            let pending: u64 = member
                .holds
                .values()
                .filter(|hold| hold.is_points() && hold.state == ledger_core::holds::HoldState::Pending)
                .map(|hold| hold.amount)
                .sum();
            let live = member.live_points(store.at);
            assert!(live <= member.points + pending, "{member_id}: live points within points and what is held");
            assert!(
                live + member.held_points(store.at) <= member.points + pending,
                "{member_id}: live and held points within points and what is held"
            );
        }
    }
}

/// Runs `given` (every step must succeed), then `when`, and renders what `when`
/// answered, the events it appended and the members they name, for a snapshot.
pub fn render(given: &[Step], when: &Step) -> String {
    let mut store = Store::new();
    for step in given {
        if let Err(rejection) = store.step(step) {
            panic!("given step {step:?} was rejected: {rejection}");
        }
    }
    let before = store.state.clone();
    let logged = store.log.len();
    let result = store.step(when);
    check_invariants(&store);
    let mut out = String::new();
    match &result {
        Ok(outcome) => render_outcome(&mut out, outcome),
        Err(rejection) => {
            assert_eq!(store.state, before, "a rejected command changes nothing");
            let _ = write!(out, "rejected {} {:?}: {rejection}", rejection.reason(), rejection.class());
        }
    }
    let appended = &store.log[logged..];
    let mut members: Vec<&str> = Vec::new();
    for (stamp, event) in appended {
        let _ = write!(out, "\n#{} {}", stamp.sequence, render_event(event));
        if !event.member.is_empty() && !members.contains(&event.member.as_str()) {
            members.push(&event.member);
        }
    }
    if let Step::Run(Command::UsePoints(UsePoints { member, .. }) | Command::AddPoints(AddPoints { member, .. })) = when
        && !members.contains(&member.as_str())
    {
        members.push(member);
    }
    for member in members {
        out.push('\n');
        out.push_str(&render_member(&store, member));
    }
    out
}

pub fn render_outcome(out: &mut String, outcome: &Outcome) {
    match outcome {
        Outcome::Points(receipt) => {
            let _ =
                write!(out, "tx {}: {} points, balance {}", receipt.transaction_id, receipt.points, receipt.balance);
            if receipt.duplicate {
                out.push_str(", duplicate");
            }
            if receipt.replaced {
                out.push_str(", replaced");
            }
        }
        Outcome::Bulk(bulk) => {
            let _ = write!(out, "applied {}", bulk.applied_count);
            if let Some(fail_at) = bulk.fail_at {
                let failure = bulk.failure.as_ref().expect("a failed bulk says why");
                let _ = write!(out, ", fail_at {fail_at} {} {:?}: {failure}", failure.reason(), failure.class());
            }
            let _ = write!(out, ", tx {}..{}", bulk.first_transaction_id, bulk.last_transaction_id);
            let balances: Vec<String> =
                bulk.balances.iter().map(|(member, points)| format!("{member}={points}")).collect();
            let _ = write!(out, ", balances [{}], duplicates {:?}", balances.join(" "), bulk.duplicates);
        }
        Outcome::PointsExpired { lots } => {
            let _ = write!(out, "expired {lots} lots");
        }
        Outcome::ProgramCreated { program, name, created_at } => {
            let _ = write!(out, "program {program:?} {name:?} created at {}", created_at.micros());
        }
        Outcome::FormulaDefined => out.push_str("formula defined"),
        Outcome::Hold(view) => {
            let hold = &view.hold;
            let _ = write!(
                out,
                "hold {} of {}: {} {}{}, captured {}, expires {}, settled by {}",
                view.hold_id,
                view.member,
                hold.state.as_str(),
                hold.decimal(hold.amount),
                if hold.is_points() { String::new() } else { format!(" {}", hold.credit_id) },
                hold.decimal(hold.captured),
                hold.expires_at.micros(),
                hold.settled_transaction_id
            );
            if view.duplicate {
                out.push_str(", duplicate");
            }
        }
        Outcome::RewardDefined => out.push_str("reward defined"),
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

pub fn render_event(event: &Event) -> String {
    use ledger_core::event::EventBody;
    let takes = |takes: &[ledger_core::event::LotTake]| {
        let takes: Vec<String> = takes.iter().map(|take| format!("{}:{}", take.lot, take.points)).collect();
        takes.join(" ")
    };
    let body = match &event.body {
        EventBody::PointsAdded(added) => {
            let mut text = format!("add {}", added.points);
            if let Some(expires_at) = added.expires_at {
                let _ = write!(text, " expires {}", expires_at.micros());
            }
            if let Some(cost) = added.cost {
                let _ = write!(text, " cost {cost} formula {}", added.formula_id);
            }
            if !added.reference.is_empty() {
                let _ = write!(text, " ref {}", added.reference);
            }
            text
        }
        EventBody::PointsUsed(used) => {
            let mut text = format!("use {} from [{}]", used.points, takes(&used.taken));
            if !used.reward_id.is_empty() {
                let _ = write!(text, " reward {}", used.reward_id);
            }
            if !used.reference.is_empty() {
                let _ = write!(text, " ref {}", used.reference);
            }
            text
        }
        EventBody::PointsAddReversed(reversal) => {
            format!("add #{} reversed: {} from [{}]", reversal.transaction_id, reversal.points, takes(&reversal.lots))
        }
        EventBody::PointsUseReversed(reversal) => {
            format!("use #{} reversed: {} to [{}]", reversal.transaction_id, reversal.points, takes(&reversal.lots))
        }
        EventBody::PointsExpired { lot, points } => format!("lot {lot} expired: {points}"),
        EventBody::PointsHeld(hold) => {
            format!("hold {} from [{}] until {}", hold.points, takes(&hold.taken), hold.expires_at.micros())
        }
        EventBody::CreditsHeld(hold) => {
            format!("hold {} {} until {}", hold.amount, hold.credit_id, hold.expires_at.micros())
        }
        EventBody::HoldCaptured(settled) | EventBody::HoldVoided(settled) | EventBody::HoldExpired(settled) => {
            format!(
                "{} #{}: captured {}, released {} to [{}]",
                event.body.name(),
                settled.hold,
                settled.captured,
                settled.released,
                takes(&settled.released_lots)
            )
        }
        EventBody::TransactionReversed(reversal) => {
            use ledger_core::event::ReversedChange;
            let change = match &reversal.change {
                ReversedChange::PointsAdd { points, lots, earned } => {
                    format!("add: {points} from [{}], earned {earned}", takes(lots))
                }
                ReversedChange::PointsUse { points, lots } => format!("use: {points} to [{}]", takes(lots)),
                other => format!("{other:?}"),
            };
            let mut text = format!("reverse #{} {change}", reversal.transaction_id);
            if !reversal.reference.is_empty() {
                let _ = write!(text, " ref {}", reversal.reference);
            }
            text
        }
        other => other.name().to_owned(),
    };
    if event.member.is_empty() { body } else { format!("{} {body}", event.member) }
}

/// `m1: points 70, live 70, lots [3:70@50 4:10]` (`@` the lot's expiry).
pub fn render_member(store: &Store, member: &str) -> String {
    let shown = member.escape_debug();
    let Some(found) = store.state.member(PROGRAM, member) else {
        return format!("{shown}: no events");
    };
    let lots: Vec<String> = found
        .lots
        .iter()
        .map(|lot| match lot.expires_at {
            Some(expires_at) => format!("{}:{}@{}", lot.lot, lot.remaining, expires_at.micros()),
            None => format!("{}:{}", lot.lot, lot.remaining),
        })
        .collect();
    let mut text =
        format!("{shown}: points {}, live {}, lots [{}]", found.points, found.live_points(store.at), lots.join(" "));
    if !found.holds.is_empty() {
        let holds: Vec<String> = found
            .holds
            .iter()
            .map(|(id, hold)| format!("{id}:{}{}", hold.state_at(store.at).as_str(), hold_amounts(hold)))
            .collect();
        let _ = write!(text, ", held {}, holds [{}]", found.held_points(store.at), holds.join(" "));
        for (credit_id, units) in &found.credits {
            let _ = write!(
                text,
                ", credits {credit_id} {} held {}",
                ledger_core::credits::decimal(found.available_credits(credit_id, store.at)),
                ledger_core::credits::decimal(found.held_credits(credit_id, store.at))
            );
            let _ = units;
        }
    }
    text
}

fn hold_amounts(hold: &ledger_core::holds::Hold) -> String {
    if hold.captured == 0 {
        format!(" {}", hold.decimal(hold.amount))
    } else {
        format!(" {} captured {}", hold.decimal(hold.amount), hold.decimal(hold.captured))
    }
}
