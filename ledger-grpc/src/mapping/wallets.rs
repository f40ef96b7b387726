//! Credits and coupons between proto and domain.

use super::decimal_text;
use crate::pb;
use crate::status::bad_request;
use ledger_core::command::{CreditsChangeCommand, CreditsReceipt};
use ledger_store::views::{CouponView, CreditView};
use tonic::Status;

/// AddCredits and UseCredits carry the same fields.
pub fn credits_change(
    program: String,
    member: String,
    credit_id: String,
    amount: &str,
    remark: String,
    reference: String,
) -> Result<CreditsChangeCommand, Status> {
    let amount = super::decimal("amount", amount)?
        .ok_or_else(|| bad_request("amount", "amount: is required and may not be blank"))?;
    Ok(CreditsChangeCommand { program, member, credit_id, amount, remark, reference })
}

pub fn credits_receipt(receipt: CreditsReceipt) -> pb::CreditsReceipt {
    pb::CreditsReceipt {
        transaction_id: receipt.transaction_id,
        amount: decimal_text(receipt.amount),
        balance: decimal_text(receipt.balance),
        duplicate: receipt.duplicate,
    }
}

pub fn member_credit(view: CreditView) -> pb::MemberCredit {
    pb::MemberCredit { credit_id: view.credit_id, name: view.name, unit: view.unit, amount: decimal_text(view.amount) }
}

pub fn member_coupon(view: CouponView) -> pb::MemberCoupon {
    pb::MemberCoupon { coupon_id: view.coupon_id, name: view.name, count: view.count }
}
