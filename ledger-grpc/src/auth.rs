//! Who may call what (SPEC §11). Every RPC but health and reflection presents a
//! bearer token; the token's role and program decide.

use crate::status::status;
use ledger_core::Timestamp;
use ledger_store::Ledger;
use ledger_store::tokens::{Role, TokenError, TokenInfo};
use tonic::{Request, Status};

/// What a call needs.
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// AdminService, and the event feed of every program.
    Admin,
    /// A write in this program.
    Write(&'a str),
    /// A read in this program.
    Read(&'a str),
    /// Any valid token (VerifyLog reveals no program's data).
    AnyToken,
}

/// Why a call's token may not make it (SPEC §11); `status` gives each its code and
/// reason (TOKEN_*, WRONG_PROGRAM, ROLE_TOO_LOW).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing authorization metadata: send `authorization: Bearer <token>`")]
    Missing,
    #[error("authorization metadata must be `Bearer <token>`")]
    Malformed,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("a {role} token may not call this: it needs an {needed} token")]
    RoleTooLow { role: &'static str, needed: &'static str },
    #[error("this token is for program {token_program:?}, not {program:?}")]
    WrongProgram { token_program: String, program: String },
    /// RevokeToken of an id no token has.
    #[error("token_id: no token has id {token_id:?}")]
    UnknownTokenId { token_id: String },
}

/// The authenticated caller; its token id is the actor recorded on events.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
    pub program: String,
}

/// A write naming several programs (an Echoss import names its brand per item):
/// the token is counted once, and must be allowed to write in every program. With
/// none named, the token must still be one that may write somewhere.
pub fn check_writes<T>(ledger: &Ledger, request: &Request<T>, programs: &[String]) -> Result<Caller, Status> {
    let info = authenticate(ledger, request)?;
    // Noted before the token is refused a program, so that its refusal names it;
    // a program id is logged only once it is known to be a short, plain id.
    let named = if let [program] = programs { Some(program.as_str()) } else { None };
    let named = named.filter(|program| crate::mapping::read_id("program_id", program).is_ok());
    crate::observe::note_caller(&info.token_id, named);
    if programs.is_empty() {
        let own = info.program.clone();
        permit(&info, Access::Write(&own))?;
    }
    for program in programs {
        permit(&info, Access::Write(program))?;
    }
    Ok(Caller { token_id: info.token_id, role: info.role, program: info.program })
}

pub fn check<T>(ledger: &Ledger, request: &Request<T>, access: Access<'_>) -> Result<Caller, Status> {
    let info = authenticate(ledger, request)?;
    if let Access::Read(program) | Access::Write(program) = access {
        // Checked before the program is looked up, so that no refusal echoes a
        // caller's megabyte-long program id back.
        crate::mapping::read_id("program_id", program)?;
    }
    let named = if let Access::Read(program) | Access::Write(program) = access { Some(program) } else { None };
    crate::observe::note_caller(&info.token_id, named);
    permit(&info, access)?;
    Ok(Caller { token_id: info.token_id, role: info.role, program: info.program })
}

fn authenticate<T>(ledger: &Ledger, request: &Request<T>) -> Result<TokenInfo, Status> {
    let header = request.metadata().get("authorization").ok_or_else(|| status(AuthError::Missing))?;
    let secret = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| status(AuthError::Malformed))?;
    let now = Timestamp::from_chrono(chrono::Utc::now());
    ledger.tokens().authenticate(secret, now).map_err(|error| status(AuthError::Token(error)))
}

fn permit(info: &TokenInfo, access: Access<'_>) -> Result<(), Status> {
    let denied = |error: AuthError| Err(status(error));
    match (info.role, access) {
        (Role::Admin, _) | (_, Access::AnyToken) => Ok(()),
        (Role::Operator | Role::Viewer, Access::Admin) => {
            denied(AuthError::RoleTooLow { role: info.role.as_str(), needed: "ADMIN" })
        }
        (Role::Viewer, Access::Write(_)) => denied(AuthError::RoleTooLow { role: "VIEWER", needed: "OPERATOR" }),
        (Role::Operator, Access::Write(program)) | (Role::Operator | Role::Viewer, Access::Read(program)) => {
            if program == info.program {
                Ok(())
            } else {
                denied(AuthError::WrongProgram { token_program: info.program.clone(), program: program.to_owned() })
            }
        }
    }
}
