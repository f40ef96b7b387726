//! MembersService: one member, a page of members, manual levels.

use super::Api;
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, members_service_server::MembersService};
use crate::status::{bad_request, from_ledger};
use ledger_core::command::SetMemberLevels;
use ledger_core::{Command, Outcome};
use ledger_store::views::PageRequest;
use tonic::{Request, Response, Status};

/// ListMembers pages (SPEC §10).
pub const MEMBERS_PAGE_DEFAULT: usize = 10;
pub const MEMBERS_PAGE_MAX: usize = 100;

#[tonic::async_trait]
impl MembersService for Api {
    async fn get_member(&self, request: Request<pb::GetMemberRequest>) -> Result<Response<pb::Member>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let request = request.into_inner();
        let view = self.ledger.member(&request.program_id, &request.member_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::member(view)))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let request = request.into_inner();
        let after = if request.page_token.is_empty() { None } else { Some(decode_token(&request.page_token)?) };
        let page = PageRequest {
            page_size: mapping::page_size(request.page_size, MEMBERS_PAGE_DEFAULT, MEMBERS_PAGE_MAX),
            after,
            offset: usize::try_from(request.offset).unwrap_or(usize::MAX),
        };
        let listed = self.ledger.members(&request.program_id, page).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListMembersResponse {
            members: listed.members.into_iter().map(mapping::member).collect(),
            next_page_token: listed.next_after.map(|after| encode_token(&after)).unwrap_or_default(),
            total_size: listed.total,
        }))
    }

    async fn set_member_levels(
        &self,
        request: Request<pb::SetMemberLevelsRequest>,
    ) -> Result<Response<pb::SetMemberLevelsResponse>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let r = request.into_inner();
        let levels = r.levels.into_iter().map(|level| (level.member_id, level.level)).collect();
        let command = SetMemberLevels { program: r.program_id, levels };
        match self.ledger.execute(Command::SetMemberLevels(command), &caller.token_id).await.map_err(from_ledger)? {
            Outcome::LevelsSet { updated } => Ok(Response::new(pb::SetMemberLevelsResponse { updated })),
            other => unreachable!("SetMemberLevels answers with a count, got {other:?}"),
        }
    }
}

/// Member page tokens are the last member id of the page, hex-encoded so that any
/// id survives as a plain token.
fn encode_token(after: &str) -> String {
    after.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_token(token: &str) -> Result<String, Status> {
    let invalid = || bad_request("page_token", "page_token: not a token this server issued");
    if !token.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|at| token.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}
