//! References (idempotency keys) of every kind: points, credits, coupons and point
//! statements (points add their own `replace_duplicate` on top). A
//! reference is unique per program across every kind: a repeat of the same kind is
//! answered with the original result; a reference that an other kind of
//! transaction used is refused, since answering a coupon use with a points receipt
//! would tell the caller nothing true.

use crate::field::FieldPath;
use crate::overlay::Overlay;
use crate::rejection::Rejection;
use crate::state::{ReferenceEntry, ReferenceKind};

/// The entry of an earlier transaction of `kind` with this reference, if any.
pub fn earlier(
    view: &Overlay<'_>,
    program: &str,
    reference: &str,
    kind: ReferenceKind,
) -> Result<Option<ReferenceEntry>, Rejection> {
    if reference.is_empty() {
        return Ok(None);
    }
    match view.reference(program, reference) {
        None => Ok(None),
        Some(entry) if entry.kind == kind => Ok(Some(entry.clone())),
        Some(entry) => Err(Rejection::ReferenceInUse {
            field: FieldPath::new("reference"),
            reference: reference.to_owned(),
            transaction_id: entry.transaction_id,
            rule: format!(
                "reference {reference:?} was used by transaction {}, {}, so it cannot name {}",
                entry.transaction_id,
                entry.kind.describe(),
                kind.describe()
            ),
        }),
    }
}
