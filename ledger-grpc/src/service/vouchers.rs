//! VouchersService: Echoss voucher and point statement imports, shops and the
//! voucher-statement report (SPEC §6, §7). The program is `brand_id` written as a
//! decimal string; an import is authorized for every brand it names.

use super::Api;
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, vouchers_service_server::VouchersService};
use crate::status::from_ledger;
use ledger_core::command::brand_program;
use ledger_core::{Command, Outcome};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl VouchersService for Api {
    async fn import_voucher_statements(
        &self,
        request: Request<pb::ImportVoucherStatementsRequest>,
    ) -> Result<Response<pb::ImportVoucherStatementsResponse>, Status> {
        let brands = brands(request.get_ref().data.iter().map(|item| item.brand_id));
        let caller = auth::check_writes(&self.ledger, &request, &brands)?;
        let command = mapping::voucher_statements(request.into_inner().data)?;
        let outcome = self.ledger.execute(Command::ImportVoucherStatements(command), &caller.token_id).await;
        match outcome.map_err(from_ledger)? {
            Outcome::VouchersImported { created, updated } => {
                Ok(Response::new(pb::ImportVoucherStatementsResponse { created, updated }))
            }
            other => unreachable!("an import answers with its counts, got {other:?}"),
        }
    }

    async fn import_point_statements(
        &self,
        request: Request<pb::ImportPointStatementsRequest>,
    ) -> Result<Response<pb::ImportPointStatementsResponse>, Status> {
        let brands = brands(request.get_ref().data.iter().map(|item| item.brand_id));
        let caller = auth::check_writes(&self.ledger, &request, &brands)?;
        let command = mapping::point_statements(request.into_inner().data)?;
        let outcome = self.ledger.execute(Command::ImportPointStatements(command), &caller.token_id).await;
        match outcome.map_err(from_ledger)? {
            Outcome::PointStatementsImported { applied } => {
                Ok(Response::new(pb::ImportPointStatementsResponse { applied }))
            }
            other => unreachable!("an import answers with its count, got {other:?}"),
        }
    }

    async fn define_shop(&self, request: Request<pb::DefineShopRequest>) -> Result<Response<pb::Shop>, Status> {
        let program = brand_program(request.get_ref().brand_id);
        let caller = auth::check(&self.ledger, &request, Access::Write(&program))?;
        let r = request.into_inner();
        let command = mapping::define_shop(r.clone());
        self.ledger.define_shop(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(pb::Shop { brand_id: r.brand_id, shop_id: r.shop_id, name: r.name }))
    }

    async fn get_voucher_statement(
        &self,
        request: Request<pb::GetVoucherStatementRequest>,
    ) -> Result<Response<pb::GetVoucherStatementResponse>, Status> {
        let program = brand_program(request.get_ref().brand_id);
        auth::check(&self.ledger, &request, Access::Read(&program))?;
        let r = request.into_inner();
        mapping::read_id("voucher_identifier", &r.voucher_identifier)?;
        let view = self
            .ledger
            .voucher_statement(r.brand_id, r.promotion_id, &r.voucher_identifier)
            .await
            .map_err(from_ledger)?;
        let (state, version) = (mapping::voucher_state(view.state), view.record.version);
        Ok(Response::new(pb::GetVoucherStatementResponse {
            statement: Some(mapping::voucher_statement(view)),
            state: state.into(),
            version,
        }))
    }

    async fn list_voucher_statements(
        &self,
        request: Request<pb::ListVoucherStatementsRequest>,
    ) -> Result<Response<pb::ListVoucherStatementsResponse>, Status> {
        let program = brand_program(request.get_ref().brand_id);
        auth::check(&self.ledger, &request, Access::Read(&program))?;
        let request = request.into_inner();
        let query = mapping::report_query(&request)?;
        let page = self.ledger.voucher_report(request.brand_id, query).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListVoucherStatementsResponse {
            statements: page.statements.into_iter().map(mapping::voucher_statement).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }
}

fn brands(ids: impl Iterator<Item = i64>) -> Vec<String> {
    let mut programs: Vec<String> = ids.map(brand_program).collect();
    programs.sort();
    programs.dedup();
    programs
}
