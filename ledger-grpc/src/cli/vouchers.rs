//! `ledger vouchers report|get` and `ledger shop define`: the imported Echoss
//! voucher statements as the report reads them, and the shop names it shows.
//! Ids are Echoss integers; the program is the brand.

use super::connect::Server;
use super::output::{Failure, Reply, fields, or_dash, table};
use super::time;
use crate::pb;
use chrono::{FixedOffset, NaiveDate};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum VouchersCommand {
    /// The voucher-statement report: filtered, sorted (newest first by default) and paged,
    /// with the total count.
    Report(ReportArgs),
    /// Shows the latest version of one statement.
    Get {
        /// The Echoss brand_id (the program).
        #[arg(long, value_name = "ID")]
        brand: i64,
        /// The Echoss promotion_id.
        #[arg(long, value_name = "ID")]
        promotion: i64,
        /// The statement's voucher_identifier.
        #[arg(long, value_name = "TEXT")]
        identifier: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ShopCommand {
    /// Names a shop (an Echoss brand_manager_id) for the report, which shows and sorts by it.
    Define {
        /// The Echoss brand_id (the program).
        #[arg(long, value_name = "ID")]
        brand: i64,
        /// The brand_manager_id the statements carry.
        #[arg(long, value_name = "ID")]
        shop: i64,
        /// What the report shows for it.
        #[arg(long)]
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The Echoss brand_id (the program).
    #[arg(long, value_name = "ID")]
    pub brand: i64,
    /// Only this promotion_id.
    #[arg(long, value_name = "ID")]
    pub promotion: Option<i64>,
    /// Only statements redeemed at this shop (brand_manager_id).
    #[arg(long, value_name = "ID")]
    pub shop: Option<i64>,
    /// Only vouchers whose name contains this text.
    #[arg(long, value_name = "SUBSTR", default_value = "", hide_default_value = true)]
    pub name: String,
    /// Only vouchers sent on this day (in --utc-offset).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = time::parse_day)]
    pub sent_on: Option<NaiveDate>,
    /// Only vouchers used on this day (in --utc-offset).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = time::parse_day)]
    pub used_on: Option<NaiveDate>,
    /// Only vouchers cancelled on this day (in --utc-offset).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = time::parse_day)]
    pub cancelled_on: Option<NaiveDate>,
    /// The offset the days above are in, and the table's times [default: +00:00].
    #[arg(long, value_name = "+HH:MM", value_parser = time::parse_utc_offset, allow_hyphen_values = true)]
    pub utc_offset: Option<FixedOffset>,
    /// What to sort by.
    #[arg(long, value_name = "FIELD", default_value = "sent_at",
          value_parser = ["sent_at", "used_at", "cancelled_at", "shop_name"])]
    pub order_by: String,
    /// Oldest (or A to Z) first; the default is newest first.
    #[arg(long)]
    pub ascending: bool,
    /// Default 20, at most 100 (larger is taken as 100).
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub page_size: u32,
    /// The next_page_token of the previous page.
    #[arg(long, value_name = "TOKEN", default_value = "", hide_default_value = true)]
    pub page_token: String,
}

pub async fn run(server: &Server, command: VouchersCommand) -> Result<Reply, Failure> {
    match command {
        VouchersCommand::Report(args) => report(server, args).await,
        VouchersCommand::Get { brand, promotion, identifier } => {
            let request = pb::GetVoucherStatementRequest {
                brand_id: brand,
                promotion_id: promotion,
                voucher_identifier: identifier,
            };
            let reply = server.vouchers().get_voucher_statement(request).await?.into_inner();
            let mut statement =
                reply.statement.ok_or_else(|| Failure::message("the server's reply holds no statement"))?;
            // The reply's own state and version are the contract for a get (SPEC §10).
            statement.state = reply.state;
            statement.version = reply.version;
            Ok(Reply::new(statement_text(&statement), statement_json(&statement)))
        }
    }
}

pub async fn run_shop(server: &Server, command: ShopCommand) -> Result<Reply, Failure> {
    match command {
        ShopCommand::Define { brand, shop, name } => {
            let request = pb::DefineShopRequest { brand_id: brand, shop_id: shop, name };
            let shop = server.vouchers().define_shop(request).await?.into_inner();
            let text = fields(&[
                ("brand_id", shop.brand_id.to_string()),
                ("shop_id", shop.shop_id.to_string()),
                ("name", shop.name.clone()),
            ]);
            Ok(Reply::new(text, json!({ "brand_id": shop.brand_id, "shop_id": shop.shop_id, "name": shop.name })))
        }
    }
}

async fn report(server: &Server, args: ReportArgs) -> Result<Reply, Failure> {
    let day = |day: Option<NaiveDate>| day.map(|day| day.to_string()).unwrap_or_default();
    let request = pb::ListVoucherStatementsRequest {
        brand_id: args.brand,
        promotion_id: args.promotion,
        shop_id: args.shop,
        voucher_name: args.name,
        sent_on: day(args.sent_on),
        used_on: day(args.used_on),
        cancelled_on: day(args.cancelled_on),
        utc_offset: args.utc_offset.map(|offset| offset.to_string()).unwrap_or_default(),
        order_by: args.order_by,
        ascending: args.ascending,
        page_size: args.page_size,
        page_token: args.page_token,
    };
    let page = server.vouchers().list_voucher_statements(request).await?.into_inner();
    let offset = args.utc_offset.unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero is an offset"));
    let rows: Vec<Vec<String>> = page.statements.iter().map(|statement| report_row(statement, offset)).collect();
    let header =
        ["PROMOTION", "VOUCHER", "NUMBER", "NAME", "LINE_ID", "STATE", "SENT_AT", "USED_AT", "CANCELLED_AT", "SHOP"];
    let mut text = table(&header, &rows, "no voucher statements");
    text.push_str(&fields(&[
        ("times_in", format!("UTC{offset}")),
        ("total_size", page.total_size.to_string()),
        ("next_page_token", or_dash(&page.next_page_token)),
    ]));
    let json = json!({
        "statements": page.statements.iter().map(statement_json).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
        "total_size": page.total_size,
    });
    Ok(Reply::new(text, json))
}

fn report_row(statement: &pb::VoucherStatement, offset: FixedOffset) -> Vec<String> {
    vec![
        statement.promotion_id.to_string(),
        statement.voucher_identifier.clone(),
        statement.voucher_number.clone(),
        statement.voucher_name.clone(),
        statement.line_id.clone(),
        state_word(statement).to_owned(),
        time::show_in(statement.sent_at, offset),
        time::show_in(statement.used_at, offset),
        time::show_in(statement.cancelled_at, offset),
        shop(statement),
    ]
}

fn statement_text(statement: &pb::VoucherStatement) -> String {
    fields(&[
        ("brand_id", statement.brand_id.to_string()),
        ("promotion_id", statement.promotion_id.to_string()),
        ("voucher_identifier", statement.voucher_identifier.clone()),
        ("voucher_number", statement.voucher_number.clone()),
        ("voucher_name", statement.voucher_name.clone()),
        ("line_id", statement.line_id.clone()),
        ("state", state_word(statement).to_owned()),
        ("sent_at", time::show(statement.sent_at)),
        ("used_at", time::show(statement.used_at)),
        ("cancelled_at", time::show(statement.cancelled_at)),
        ("shop", shop(statement)),
        ("version", statement.version.to_string()),
        ("updated_at", time::show(statement.updated_at)),
    ])
}

/// `ISSUED`, `USED`, `CANCELLED`: the enum's name without its prefix.
fn state_word(statement: &pb::VoucherStatement) -> &'static str {
    let name = statement.state().as_str_name();
    name.strip_prefix("VOUCHER_STATE_").unwrap_or(name)
}

/// The shop's id and, when defined, its name; `-` for none (brand_manager_id 0).
fn shop(statement: &pb::VoucherStatement) -> String {
    match (statement.brand_manager_id, statement.shop_name.as_str()) {
        (0, _) => "-".to_owned(),
        (id, "") => id.to_string(),
        (id, name) => format!("{id} {name}"),
    }
}

fn statement_json(statement: &pb::VoucherStatement) -> Value {
    json!({
        "brand_id": statement.brand_id,
        "promotion_id": statement.promotion_id,
        "voucher_identifier": statement.voucher_identifier,
        "voucher_number": statement.voucher_number,
        "voucher_name": statement.voucher_name,
        "line_id": statement.line_id,
        "sent_at": time::json(statement.sent_at),
        "used_at": time::json(statement.used_at),
        "cancelled_at": time::json(statement.cancelled_at),
        "brand_manager_id": statement.brand_manager_id,
        "shop_name": statement.shop_name,
        "state": statement.state().as_str_name(),
        "version": statement.version,
        "updated_at": time::json(statement.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::{report_row, statement_json};
    use crate::pb;

    #[test]
    fn a_report_row_shows_times_in_the_offset_the_state_and_the_shop() {
        let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let statement = pb::VoucherStatement {
            brand_id: 1,
            promotion_id: 2,
            voucher_identifier: "222".to_owned(),
            voucher_number: "V00A004S0013FCS00804".to_owned(),
            voucher_name: "瓦城 288元 平日好運金".to_owned(),
            line_id: "b3f3".to_owned(),
            sent_at: at(1_613_527_615),
            used_at: at(1_613_531_215),
            brand_manager_id: 3,
            shop_name: "信義店".to_owned(),
            state: pb::VoucherState::Used.into(),
            version: 2,
            ..pb::VoucherStatement::default()
        };
        let offset = super::time::parse_utc_offset("+08:00").unwrap();
        assert_eq!(
            report_row(&statement, offset),
            [
                "2",
                "222",
                "V00A004S0013FCS00804",
                "瓦城 288元 平日好運金",
                "b3f3",
                "USED",
                "2021-02-17 10:06:55",
                "2021-02-17 11:06:55",
                "-",
                "3 信義店"
            ]
        );
        let json = statement_json(&statement);
        assert_eq!(json["state"], "VOUCHER_STATE_USED");
        assert_eq!(json["used_at"], "2021-02-17T03:06:55Z");
        assert!(json["cancelled_at"].is_null());
    }
}
