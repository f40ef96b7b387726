//! `ledger token`: issue, list and revoke API tokens (ADMIN).

use super::connect::Server;
use super::output::{Failure, Reply, fields, or_dash, table};
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
    /// Lists every token, revoked ones included: ids, roles, programs, expiry and requests
    /// left; never a secret.
    List,
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
        TokenCommand::List => {
            let reply = server.admin().list_tokens(pb::ListTokensRequest {}).await?.into_inner();
            let limit = |value: Option<u64>| value.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
            let rows: Vec<Vec<String>> = reply
                .tokens
                .iter()
                .map(|token| {
                    vec![
                        token.token_id.clone(),
                        token.role().as_str_name().to_owned(),
                        or_dash(&token.program_id),
                        or_dash(&token.name),
                        time::show(token.expires_at),
                        limit(token.requests_left),
                        if token.revoked { "revoked" } else { "active" }.to_owned(),
                    ]
                })
                .collect();
            let text = table(
                &["TOKEN_ID", "ROLE", "PROGRAM", "NAME", "EXPIRES_AT", "REQUESTS_LEFT", "STATE"],
                &rows,
                "no tokens",
            );
            let tokens: Vec<_> = reply
                .tokens
                .iter()
                .map(|token| {
                    json!({
                        "token_id": token.token_id,
                        "name": token.name,
                        "role": token.role().as_str_name(),
                        "program_id": token.program_id,
                        "expires_at": time::json(token.expires_at),
                        "max_requests": token.max_requests,
                        "requests_left": token.requests_left,
                        "revoked": token.revoked,
                    })
                })
                .collect();
            Ok(Reply::new(text, json!({ "tokens": tokens })))
        }
        TokenCommand::Revoke { token_id } => {
            server.admin().revoke_token(pb::RevokeTokenRequest { token_id: token_id.clone() }).await?;
            Ok(Reply::new(format!("revoked {token_id}"), json!({ "revoked": token_id })))
        }
    }
}
