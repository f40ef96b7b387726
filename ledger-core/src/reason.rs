//! The error reasons of SPEC §13: the names every caller branches on, over gRPC
//! (`google.rpc.ErrorInfo.reason`), over HTTP and in a bulk item's `failure.code`.
//! They are one vocabulary: the core's rejections name theirs here
//! (`Rejection::reason`), and the server names its own (tokens, roles, storage,
//! caps) from the same list. These names never change; new ones may be added.

/// The domain of every `google.rpc.ErrorInfo` the ledger returns.
pub const DOMAIN: &str = "ledger.v1";

// INVALID_ARGUMENT
pub const INVALID_FIELD: &str = "INVALID_FIELD";

// NOT_FOUND
pub const PROGRAM_NOT_FOUND: &str = "PROGRAM_NOT_FOUND";
pub const MEMBER_NOT_FOUND: &str = "MEMBER_NOT_FOUND";
pub const FORMULA_NOT_FOUND: &str = "FORMULA_NOT_FOUND";
pub const REWARD_NOT_FOUND: &str = "REWARD_NOT_FOUND";
pub const CREDIT_NOT_FOUND: &str = "CREDIT_NOT_FOUND";
pub const CARD_NOT_FOUND: &str = "CARD_NOT_FOUND";
pub const VOUCHER_NOT_FOUND: &str = "VOUCHER_NOT_FOUND";
pub const TRANSACTION_NOT_FOUND: &str = "TRANSACTION_NOT_FOUND";
pub const HOLD_NOT_FOUND: &str = "HOLD_NOT_FOUND";
/// Not in SPEC §13's table (added): RevokeToken of a token id no token has.
pub const TOKEN_NOT_FOUND: &str = "TOKEN_NOT_FOUND";

// FAILED_PRECONDITION
pub const INSUFFICIENT_POINTS: &str = "INSUFFICIENT_POINTS";
pub const INSUFFICIENT_CREDITS: &str = "INSUFFICIENT_CREDITS";
pub const NO_COUPON: &str = "NO_COUPON";
pub const REWARD_EXPIRED: &str = "REWARD_EXPIRED";
pub const TOO_MANY_CARDS: &str = "TOO_MANY_CARDS";
pub const LEVEL_ONE_CARD: &str = "LEVEL_ONE_CARD";
pub const HOLD_NOT_PENDING: &str = "HOLD_NOT_PENDING";
pub const ALREADY_REVERSED: &str = "ALREADY_REVERSED";
pub const NOT_REVERSIBLE: &str = "NOT_REVERSIBLE";
/// Not in SPEC §13's table (added): a change that would take a balance past
/// `POINTS_BALANCE_MAX`.
pub const BALANCE_LIMIT: &str = "BALANCE_LIMIT";

// ALREADY_EXISTS
pub const PROGRAM_EXISTS: &str = "PROGRAM_EXISTS";
pub const NAME_TAKEN: &str = "NAME_TAKEN";
pub const REFERENCE_IN_USE: &str = "REFERENCE_IN_USE";

// UNAUTHENTICATED
pub const TOKEN_MISSING: &str = "TOKEN_MISSING";
pub const TOKEN_UNKNOWN: &str = "TOKEN_UNKNOWN";
pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";
pub const TOKEN_REVOKED: &str = "TOKEN_REVOKED";
pub const TOKEN_EXHAUSTED: &str = "TOKEN_EXHAUSTED";

// PERMISSION_DENIED
pub const WRONG_PROGRAM: &str = "WRONG_PROGRAM";
pub const ROLE_TOO_LOW: &str = "ROLE_TOO_LOW";

// UNAVAILABLE
pub const STORAGE_UNAVAILABLE: &str = "STORAGE_UNAVAILABLE";
pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";

// RESOURCE_EXHAUSTED (the server's caps, `ledger-grpc` `limits`)
pub const TOO_MANY_REQUESTS: &str = "TOO_MANY_REQUESTS";
pub const TOO_MANY_STREAMS: &str = "TOO_MANY_STREAMS";
/// An HTTP body past `limits::JSON_REQUEST_BYTES_MAX`.
pub const REQUEST_TOO_LARGE: &str = "REQUEST_TOO_LARGE";

// INTERNAL: a bug of the server, never the caller's fault.
pub const INTERNAL: &str = "INTERNAL";
// UNIMPLEMENTED: an HTTP route, method or encoding the server does not offer.
pub const UNIMPLEMENTED: &str = "UNIMPLEMENTED";
// DEADLINE_EXCEEDED: the caller's own deadline passed before the answer.
pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";
