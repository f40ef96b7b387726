//! `ledger program`: create and list programs (ADMIN).

use super::connect::Server;
use super::output::{Failure, Reply, fields, table};
use super::time;
use crate::pb;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum ProgramCommand {
    /// Creates a program.
    Create {
        /// The program id every other call names (at most 128 bytes).
        #[arg(value_name = "ID")]
        program_id: String,
        /// A name for people (at most 255 bytes).
        name: String,
    },
    /// Lists every program.
    List,
}

pub async fn run(server: &Server, command: ProgramCommand) -> Result<Reply, Failure> {
    match command {
        ProgramCommand::Create { program_id, name } => {
            let program = server.admin().create_program(pb::CreateProgramRequest { program_id, name }).await?;
            let program = program.into_inner();
            let text = fields(&[
                ("program_id", program.program_id.clone()),
                ("name", program.name.clone()),
                ("created_at", time::show(program.created_at)),
            ]);
            Ok(Reply::new(text, program_json(&program)))
        }
        ProgramCommand::List => {
            let reply = server.admin().list_programs(pb::ListProgramsRequest {}).await?.into_inner();
            let rows: Vec<Vec<String>> = reply
                .programs
                .iter()
                .map(|program| vec![program.program_id.clone(), program.name.clone(), time::show(program.created_at)])
                .collect();
            let text = table(&["PROGRAM", "NAME", "CREATED_AT"], &rows, "no programs");
            let json = json!({ "programs": reply.programs.iter().map(program_json).collect::<Vec<_>>() });
            Ok(Reply::new(text, json))
        }
    }
}

fn program_json(program: &pb::Program) -> Value {
    json!({
        "program_id": program.program_id,
        "name": program.name,
        "created_at": time::json(program.created_at),
    })
}
