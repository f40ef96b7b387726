//! TiersService: member cards (SPEC §8). Levels themselves are read with the
//! member (MembersService), pinned with SetMemberLevels.

use super::Api;
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, tiers_service_server::TiersService};
use crate::status::from_ledger;
use ledger_core::command::{CreateMemberCard, DeleteMemberCard, UpdateMemberCard};
use ledger_core::{Command, Outcome};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl TiersService for Api {
    async fn create_member_card(
        &self,
        request: Request<pb::CreateMemberCardRequest>,
    ) -> Result<Response<pb::MemberCard>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let r = request.into_inner();
        let command = CreateMemberCard {
            program: r.program_id,
            name: r.name,
            benefit: r.benefit,
            lowest_amount: r.lowest_amount,
            image_url: r.image_url,
        };
        self.card(Command::CreateMemberCard(command), &caller.token_id).await
    }

    async fn update_member_card(
        &self,
        request: Request<pb::UpdateMemberCardRequest>,
    ) -> Result<Response<pb::MemberCard>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let r = request.into_inner();
        let command = UpdateMemberCard {
            program: r.program_id,
            card_id: r.card_id,
            name: r.name,
            benefit: r.benefit,
            lowest_amount: r.lowest_amount,
            image_url: r.image_url,
        };
        self.card(Command::UpdateMemberCard(command), &caller.token_id).await
    }

    async fn delete_member_card(
        &self,
        request: Request<pb::DeleteMemberCardRequest>,
    ) -> Result<Response<pb::DeleteMemberCardResponse>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let r = request.into_inner();
        let command = DeleteMemberCard { program: r.program_id, card_id: r.card_id };
        self.ledger.execute(Command::DeleteMemberCard(command), &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(pb::DeleteMemberCardResponse {}))
    }

    async fn list_member_cards(
        &self,
        request: Request<pb::ListMemberCardsRequest>,
    ) -> Result<Response<pb::ListMemberCardsResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let cards = self.ledger.member_cards(&request.get_ref().program_id).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListMemberCardsResponse { cards: cards.into_iter().map(mapping::card).collect() }))
    }
}

impl Api {
    async fn card(&self, command: Command, actor: &str) -> Result<Response<pb::MemberCard>, Status> {
        match self.ledger.execute(command, actor).await.map_err(from_ledger)? {
            Outcome::MemberCard(card) => Ok(Response::new(mapping::card(card))),
            other => unreachable!("a card change answers with the card, got {other:?}"),
        }
    }
}
