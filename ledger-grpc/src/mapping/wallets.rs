//! Credits and coupons between proto and domain.

use super::Reading;
use super::decimal_text;
use crate::pb;
use ledger_core::Command;
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
    let mut reading = Reading::new();
    let amount = reading.required_decimal("amount", amount);
    let command = CreditsChangeCommand { program, member, credit_id, amount, remark, reference };
    // AddCredits and UseCredits check the same fields.
    reading.finish_command(command, Command::AddCredits)
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
    pb::MemberCredit {
        credit_id: view.credit_id,
        name: view.name,
        unit: view.unit,
        amount: decimal_text(view.amount),
        held: decimal_text(view.held),
    }
}

pub fn member_coupon(view: CouponView) -> pb::MemberCoupon {
    pb::MemberCoupon { coupon_id: view.coupon_id, name: view.name, count: view.count }
}
