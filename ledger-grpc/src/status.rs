//! Every error to a gRPC status, in one place (SPEC §10, §13): `status` is the one
//! function that builds an error `Status`, an exhaustive match over every error a
//! call can end with. Each status carries a `google.rpc.ErrorInfo` (domain
//! `ledger.v1`, a reason from `ledger_core::reason`, metadata naming what it is
//! about); INVALID_ARGUMENT also carries a `google.rpc.BadRequest` with one field
//! violation per problem of the request. The HTTP face turns these statuses into
//! its own errors generically, so both transports say the same.
//!
//! Codes: INVALID_ARGUMENT when the input is wrong whatever the state,
//! FAILED_PRECONDITION when the state says no, NOT_FOUND, ALREADY_EXISTS,
//! UNAUTHENTICATED and PERMISSION_DENIED for tokens and roles, RESOURCE_EXHAUSTED
//! for the server's caps, UNAVAILABLE when storage fails or the server stops (the
//! caller may retry).

use crate::auth::AuthError;
use ledger_core::{FieldPath, Rejection, RejectionClass, reason};
use ledger_store::LedgerError;
use ledger_store::tokens::TokenError;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The domain of every `google.rpc.ErrorInfo` the server returns.
pub const ERROR_DOMAIN: &str = reason::DOMAIN;

/// Every error a call can end with, whoever found it.
#[derive(Debug)]
pub enum ApiError {
    /// The ledger refused (a typed `Rejection`, reads included) or failed.
    Ledger(LedgerError),
    /// The caller's token, or what its role and program allow (`auth`).
    Auth(AuthError),
    /// A cap of the server (`limits`): RESOURCE_EXHAUSTED.
    Exhausted(Exhausted),
    /// A bug of the server, never the caller's fault.
    Internal(String),
    /// A route, method or encoding the server does not offer (HTTP callers).
    Unimplemented(String),
    /// The caller's own deadline (`connect-timeout-ms`) passed before the answer.
    DeadlineExceeded(String),
}

/// A cap a call would pass: its reason (`TOO_MANY_REQUESTS`,
/// `TOO_MANY_STREAMS`), the words, the cap and whose it is (`server`, `token`).
#[derive(Debug)]
pub struct Exhausted {
    pub reason: &'static str,
    pub message: String,
    pub limit: usize,
    pub scope: &'static str,
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> ApiError {
        ApiError::Ledger(error)
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> ApiError {
        ApiError::Ledger(LedgerError::Rejected(rejection))
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        ApiError::Auth(error)
    }
}

impl From<Exhausted> for ApiError {
    fn from(exhausted: Exhausted) -> ApiError {
        ApiError::Exhausted(exhausted)
    }
}

/// The status of `error`: the one place an error status is built.
pub fn status(error: impl Into<ApiError>) -> Status {
    let error = error.into();
    let message = error_message(&error);
    match error {
        ApiError::Ledger(LedgerError::Rejected(rejection)) => rejected(&rejection, message),
        ApiError::Ledger(LedgerError::Unavailable(_)) => {
            with_info(Code::Unavailable, message, reason::STORAGE_UNAVAILABLE, Vec::new())
        }
        ApiError::Ledger(LedgerError::Closed(_)) => {
            with_info(Code::Unavailable, message, reason::SHUTTING_DOWN, Vec::new())
        }
        ApiError::Auth(auth) => {
            let (code, reason, metadata) = match auth {
                AuthError::Missing | AuthError::Malformed => (Code::Unauthenticated, reason::TOKEN_MISSING, header()),
                AuthError::Token(TokenError::Unknown) => (Code::Unauthenticated, reason::TOKEN_UNKNOWN, header()),
                AuthError::Token(TokenError::Expired) => (Code::Unauthenticated, reason::TOKEN_EXPIRED, header()),
                AuthError::Token(TokenError::Revoked) => (Code::Unauthenticated, reason::TOKEN_REVOKED, header()),
                AuthError::Token(TokenError::UsedUp) => (Code::Unauthenticated, reason::TOKEN_EXHAUSTED, header()),
                AuthError::Token(TokenError::Storage(_)) => {
                    (Code::Unavailable, reason::STORAGE_UNAVAILABLE, Vec::new())
                }
                AuthError::RoleTooLow { role, needed } => {
                    let metadata = vec![("role", role.to_owned()), ("required_role", needed.to_owned())];
                    (Code::PermissionDenied, reason::ROLE_TOO_LOW, metadata)
                }
                AuthError::WrongProgram { token_program, program } => {
                    let metadata = vec![("program_id", program), ("token_program_id", token_program)];
                    (Code::PermissionDenied, reason::WRONG_PROGRAM, metadata)
                }
                AuthError::UnknownTokenId { token_id } => {
                    let metadata = vec![("field", "token_id".to_owned()), ("token_id", token_id)];
                    (Code::NotFound, reason::TOKEN_NOT_FOUND, metadata)
                }
            };
            with_info(code, message, reason, metadata)
        }
        ApiError::Exhausted(Exhausted { reason, limit, scope, .. }) => {
            let metadata = vec![("limit", limit.to_string()), ("scope", scope.to_owned())];
            with_info(Code::ResourceExhausted, message, reason, metadata)
        }
        ApiError::Internal(_) => with_info(Code::Internal, message, reason::INTERNAL, Vec::new()),
        ApiError::Unimplemented(_) => with_info(Code::Unimplemented, message, reason::UNIMPLEMENTED, Vec::new()),
        ApiError::DeadlineExceeded(_) => {
            with_info(Code::DeadlineExceeded, message, reason::DEADLINE_EXCEEDED, Vec::new())
        }
    }
}

/// A ledger error's status (the services' `map_err`).
pub fn from_ledger(error: LedgerError) -> Status {
    status(error)
}

/// A rejection's status: the request's own problems found at the edge, or the core's.
pub fn from_rejection(rejection: Rejection) -> Status {
    status(rejection)
}

/// INVALID_ARGUMENT (INVALID_FIELD) for one problem the edge found: `field`
/// broke `rule` (the rule alone, without the field in front).
pub fn invalid_field(field: &str, rule: impl Into<String>) -> Status {
    status(Rejection::Invalid { field: FieldPath::new(field), rule: rule.into() })
}

/// The words of an error, as its `Display` says them.
fn error_message(error: &ApiError) -> String {
    match error {
        ApiError::Ledger(error) => error.to_string(),
        ApiError::Auth(error) => error.to_string(),
        ApiError::Exhausted(exhausted) => exhausted.message.clone(),
        ApiError::Internal(what) => format!("internal error (a bug of the server, not of the request): {what}"),
        ApiError::Unimplemented(what) | ApiError::DeadlineExceeded(what) => what.clone(),
    }
}

fn rejected(rejection: &Rejection, message: String) -> Status {
    let metadata = rejection.metadata();
    let code = match rejection.class() {
        RejectionClass::InvalidArgument => Code::InvalidArgument,
        RejectionClass::NotFound => Code::NotFound,
        RejectionClass::FailedPrecondition => Code::FailedPrecondition,
        RejectionClass::AlreadyExists => Code::AlreadyExists,
    };
    let mut details = info(rejection.reason(), metadata);
    if code == Code::InvalidArgument {
        for problem in rejection.problems() {
            details.add_bad_request_violation(problem.field().to_string(), problem.rule());
        }
    }
    Status::with_error_details(code, message, details)
}

/// What an auth error is about: the metadata it was read from.
fn header() -> Vec<(&'static str, String)> {
    vec![("header", "authorization".to_owned())]
}

fn info(reason: &str, metadata: Vec<(&'static str, String)>) -> ErrorDetails {
    let metadata: HashMap<String, String> = metadata.into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

fn with_info(code: Code, message: String, reason: &str, metadata: Vec<(&'static str, String)>) -> Status {
    Status::with_error_details(code, message, info(reason, metadata))
}

/// The code as the gRPC spec spells it (`tonic::Code`'s `Display` gives a
/// sentence instead): what scripts, logs and dashboards name it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiError, status};
    use ledger_store::LedgerError;
    use tonic::Code;
    use tonic_types::StatusExt;

    fn reason(error: ApiError) -> (Code, String, String) {
        let status = status(error);
        let info = status.get_details_error_info().expect("every error carries an ErrorInfo");
        (status.code(), info.domain, info.reason)
    }

    #[test]
    fn storage_and_shutdown_are_unavailable_with_their_reasons() {
        let storage = reason(ApiError::Ledger(LedgerError::Unavailable("disk full".into())));
        assert_eq!(storage, (Code::Unavailable, "ledger.v1".to_owned(), "STORAGE_UNAVAILABLE".to_owned()));
        let closing = reason(ApiError::Ledger(LedgerError::Closed("the ledger is closed")));
        assert_eq!(closing, (Code::Unavailable, "ledger.v1".to_owned(), "SHUTTING_DOWN".to_owned()));
        let bug = reason(ApiError::Internal("an unexpected outcome".into()));
        assert_eq!(bug, (Code::Internal, "ledger.v1".to_owned(), "INTERNAL".to_owned()));
    }
}
