//! Errors to gRPC status, in one place (SPEC §10): INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` field violation when the input is wrong whatever the
//! state, FAILED_PRECONDITION when the state says no, NOT_FOUND, ALREADY_EXISTS,
//! UNAVAILABLE when storage fails and the caller may retry.

use ledger_core::{Rejection, RejectionClass};
use ledger_store::LedgerError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub fn from_ledger(error: LedgerError) -> Status {
    match error {
        LedgerError::Rejected(rejection) => from_rejection(&rejection),
        LedgerError::Unavailable(reason) => Status::unavailable(reason),
        LedgerError::NotFound(message) => Status::not_found(message),
        LedgerError::InvalidArgument { field, rule } => bad_request(&field, &format!("{field}: {rule}")),
    }
}

pub fn from_rejection(rejection: &Rejection) -> Status {
    let message = rejection.to_string();
    if let Rejection::Many { problems } = rejection {
        let violations: Vec<(String, String)> = problems
            .iter()
            .map(|problem| {
                let field = problem.field().as_str().to_owned();
                let text = problem.to_string();
                let rule = text.strip_prefix(&format!("{field}: ")).unwrap_or(&text).to_owned();
                (field, rule)
            })
            .collect();
        return bad_request_many(&message, &violations);
    }
    match rejection.class() {
        RejectionClass::InvalidArgument => bad_request(rejection.field().as_str(), &message),
        RejectionClass::NotFound => Status::not_found(message),
        RejectionClass::FailedPrecondition => Status::failed_precondition(message),
        RejectionClass::AlreadyExists => Status::already_exists(message),
    }
}

/// INVALID_ARGUMENT naming `field`, with the field violation clients read. The
/// message names the field; the violation's description is the rule alone.
pub fn bad_request(field: &str, message: &str) -> Status {
    let rule = message.strip_prefix(field).and_then(|rest| rest.strip_prefix(": ")).unwrap_or(message);
    let details = ErrorDetails::with_bad_request_violation(field, rule);
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// INVALID_ARGUMENT listing several field violations at once.
pub fn bad_request_many(message: &str, violations: &[(String, String)]) -> Status {
    let mut details = ErrorDetails::new();
    for (field, description) in violations {
        details.add_bad_request_violation(field.clone(), description.clone());
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
}
