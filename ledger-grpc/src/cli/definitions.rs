//! `ledger formula` and `ledger reward`: a program's earning formulas and rewards.

use super::connect::Server;
use super::output::{Failure, Reply, fields, table};
use super::time;
use crate::pb;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum FormulaCommand {
    /// Defines (or redefines) a formula: points = floor(cost x MULTIPLIER).
    Define {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(value_name = "FORMULA_ID")]
        formula_id: String,
        name: String,
        /// A decimal such as 1.5.
        multiplier: String,
    },
    /// Lists a program's formulas.
    List {
        #[arg(long, value_name = "ID")]
        program: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RewardCommand {
    /// Defines (or redefines) a reward and its point cost.
    Define {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(value_name = "REWARD_ID")]
        reward_id: String,
        name: String,
        points: i64,
        /// After this time the reward cannot be used (RFC 3339 or Unix seconds); default never.
        #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
        expires_at: Option<prost_types::Timestamp>,
    },
    /// Lists a program's rewards.
    List {
        #[arg(long, value_name = "ID")]
        program: String,
    },
}

pub async fn run_formula(server: &Server, command: FormulaCommand) -> Result<Reply, Failure> {
    match command {
        FormulaCommand::Define { program, formula_id, name, multiplier } => {
            let request = pb::DefineFormulaRequest { program_id: program, formula_id, name, multiplier };
            let formula = server.points().define_formula(request).await?.into_inner();
            let text = fields(&[
                ("formula_id", formula.formula_id.clone()),
                ("name", formula.name.clone()),
                ("multiplier", formula.multiplier.clone()),
            ]);
            Ok(Reply::new(text, formula_json(&formula)))
        }
        FormulaCommand::List { program } => {
            let reply = server.points().list_formulas(pb::ListFormulasRequest { program_id: program }).await?;
            let formulas = reply.into_inner().formulas;
            let rows: Vec<Vec<String>> = formulas
                .iter()
                .map(|formula| vec![formula.formula_id.clone(), formula.name.clone(), formula.multiplier.clone()])
                .collect();
            let text = table(&["FORMULA", "NAME", "MULTIPLIER"], &rows, "no formulas");
            Ok(Reply::new(text, json!({ "formulas": formulas.iter().map(formula_json).collect::<Vec<_>>() })))
        }
    }
}

pub async fn run_reward(server: &Server, command: RewardCommand) -> Result<Reply, Failure> {
    match command {
        RewardCommand::Define { program, reward_id, name, points, expires_at } => {
            let request = pb::DefineRewardRequest { program_id: program, reward_id, name, points, expires_at };
            let reward = server.points().define_reward(request).await?.into_inner();
            let text = fields(&[
                ("reward_id", reward.reward_id.clone()),
                ("name", reward.name.clone()),
                ("points", reward.points.to_string()),
                ("expires_at", time::show(reward.expires_at)),
            ]);
            Ok(Reply::new(text, reward_json(&reward)))
        }
        RewardCommand::List { program } => {
            let reply = server.points().list_rewards(pb::ListRewardsRequest { program_id: program }).await?;
            let rewards = reply.into_inner().rewards;
            let rows: Vec<Vec<String>> = rewards
                .iter()
                .map(|reward| {
                    let expires_at = time::show(reward.expires_at);
                    vec![reward.reward_id.clone(), reward.name.clone(), reward.points.to_string(), expires_at]
                })
                .collect();
            let text = table(&["REWARD", "NAME", "POINTS", "EXPIRES_AT"], &rows, "no rewards");
            Ok(Reply::new(text, json!({ "rewards": rewards.iter().map(reward_json).collect::<Vec<_>>() })))
        }
    }
}

fn formula_json(formula: &pb::Formula) -> Value {
    json!({
        "program_id": formula.program_id,
        "formula_id": formula.formula_id,
        "name": formula.name,
        "multiplier": formula.multiplier,
    })
}

fn reward_json(reward: &pb::Reward) -> Value {
    json!({
        "program_id": reward.program_id,
        "reward_id": reward.reward_id,
        "name": reward.name,
        "points": reward.points,
        "expires_at": time::json(reward.expires_at),
    })
}
