//! PointsService: adds, uses, bulks, formulas and rewards (SPEC §3).

use super::Api;
use crate::auth::{self, Access};
use crate::mapping::{self, to_timestamp};
use crate::pb::{self, points_service_server::PointsService};
use crate::status::{from_ledger, status};
use ledger_core::{FieldPath, Rejection};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl PointsService for Api {
    async fn add_points(&self, request: Request<pb::AddPointsRequest>) -> Result<Response<pb::PointsReceipt>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::add_points(request.into_inner())?;
        let receipt = self.ledger.add_points(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::receipt(receipt)))
    }

    async fn use_points(&self, request: Request<pb::UsePointsRequest>) -> Result<Response<pb::PointsReceipt>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::use_points(request.into_inner())?;
        let receipt = self.ledger.use_points(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::receipt(receipt)))
    }

    async fn bulk_add_points(
        &self,
        request: Request<pb::BulkAddPointsRequest>,
    ) -> Result<Response<pb::BulkPointsResult>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::bulk_add_points(request.into_inner())?;
        let result = self.ledger.bulk_add_points(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::bulk_result(result)))
    }

    async fn bulk_use_points(
        &self,
        request: Request<pb::BulkUsePointsRequest>,
    ) -> Result<Response<pb::BulkPointsResult>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::bulk_use_points(request.into_inner())?;
        let result = self.ledger.bulk_use_points(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::bulk_result(result)))
    }

    async fn define_formula(
        &self,
        request: Request<pb::DefineFormulaRequest>,
    ) -> Result<Response<pb::Formula>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::define_formula(request.into_inner())?;
        let formula = pb::Formula {
            program_id: command.program.clone(),
            formula_id: command.formula_id.clone(),
            name: command.name.clone(),
            multiplier: mapping::decimal_text(command.multiplier),
        };
        self.ledger.define_formula(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(formula))
    }

    async fn list_formulas(
        &self,
        request: Request<pb::ListFormulasRequest>,
    ) -> Result<Response<pb::ListFormulasResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let program_id = request.into_inner().program_id;
        let formulas = self
            .ledger
            .read(|state| {
                let program = state.program(&program_id)?;
                Some(
                    program
                        .formulas
                        .iter()
                        .map(|(formula_id, formula)| pb::Formula {
                            program_id: program_id.clone(),
                            formula_id: formula_id.clone(),
                            name: formula.name.clone(),
                            multiplier: mapping::decimal_text(formula.multiplier),
                        })
                        .collect(),
                )
            })
            .await
            .map_err(from_ledger)?
            .ok_or_else(|| unknown_program(&program_id))?;
        Ok(Response::new(pb::ListFormulasResponse { formulas }))
    }

    async fn define_reward(&self, request: Request<pb::DefineRewardRequest>) -> Result<Response<pb::Reward>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let request = request.into_inner();
        let command = mapping::define_reward(request.clone())?;
        self.ledger.define_reward(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(pb::Reward {
            program_id: request.program_id,
            reward_id: request.reward_id,
            name: request.name,
            points: request.points,
            expires_at: request.expires_at,
        }))
    }

    async fn list_rewards(
        &self,
        request: Request<pb::ListRewardsRequest>,
    ) -> Result<Response<pb::ListRewardsResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let program_id = request.into_inner().program_id;
        let rewards = self
            .ledger
            .read(|state| {
                let program = state.program(&program_id)?;
                Some(
                    program
                        .rewards
                        .iter()
                        .map(|(reward_id, reward)| pb::Reward {
                            program_id: program_id.clone(),
                            reward_id: reward_id.clone(),
                            name: reward.name.clone(),
                            points: mapping::signed(reward.points),
                            expires_at: reward.expires_at.map(to_timestamp),
                        })
                        .collect(),
                )
            })
            .await
            .map_err(from_ledger)?
            .ok_or_else(|| unknown_program(&program_id))?;
        Ok(Response::new(pb::ListRewardsResponse { rewards }))
    }
}

pub fn unknown_program(program: &str) -> Status {
    status(Rejection::UnknownProgram { field: FieldPath::new("program_id"), program: program.to_owned() })
}
