//! `ledger token`: issue and revoke API tokens (ADMIN).

use super::connect::Server;
use super::output::{Failure, Reply, fields, or_dash};
use super::time;
use crate::pb;
use clap::{Subcommand, ValueEnum};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issues a token and prints its secret, which the server never shows again.
    Issue {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The one program an OPERATOR or VIEWER token acts in; ignored for ADMIN.
        #[arg(long, value_name = "ID", default_value = "", hide_default_value = true)]
        program: String,
        /// A label for people; not a secret.
        #[arg(long, default_value = "", hide_default_value = true)]
        name: String,
        /// When the token stops working (RFC 3339 or Unix seconds); default never.
        #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
        expires_at: Option<prost_types::Timestamp>,
        /// Calls the token may make, accepted or not; default unlimited.
        #[arg(long, value_name = "N")]
        max_requests: Option<u64>,
    },
    /// Revokes a token at once.
    Revoke {
        /// The token's public id, as `token issue` printed it.
        token_id: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Admin,
    Operator,
    Viewer,
}

impl RoleArg {
    fn proto(self) -> pb::Role {
        match self {
            RoleArg::Admin => pb::Role::Admin,
            RoleArg::Operator => pb::Role::Operator,
            RoleArg::Viewer => pb::Role::Viewer,
        }
    }
}

pub async fn run(server: &Server, command: TokenCommand) -> Result<Reply, Failure> {
    match command {
        TokenCommand::Issue { role, program, name, expires_at, max_requests } => {
            let request = pb::IssueTokenRequest {
                role: role.proto().into(),
                program_id: program,
                name,
                expires_at,
                max_requests,
            };
            let issued = server.admin().issue_token(request).await?.into_inner();
            let role = issued.role().as_str_name();
            let text = fields(&[
                ("token", issued.token.clone()),
                ("token_id", issued.token_id.clone()),
                ("role", role.to_owned()),
                ("program_id", or_dash(&issued.program_id)),
                ("expires_at", time::show(issued.expires_at)),
                ("max_requests", issued.max_requests.map_or_else(|| "unlimited".to_owned(), |max| max.to_string())),
            ]);
            let json = json!({
                "token": issued.token,
                "token_id": issued.token_id,
                "role": role,
                "program_id": issued.program_id,
                "expires_at": time::json(issued.expires_at),
                "max_requests": issued.max_requests,
            });
            Ok(Reply::new(text, json))
        }
        TokenCommand::Revoke { token_id } => {
            server.admin().revoke_token(pb::RevokeTokenRequest { token_id: token_id.clone() }).await?;
            Ok(Reply::new(format!("revoked {token_id}"), json!({ "revoked": token_id })))
        }
    }
}
