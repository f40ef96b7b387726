//! Loga `POST /api/points/bulk_add_point` and `POST /api/points/bulk_use_point`:
//! the seed's parallel arrays, one value per item (`cuid[]`, `point[]`,
//! `remark[]`, `reference[]`, `branch[]`, `created[]`, `expired[]` in unix
//! seconds) beside `card_id` and `token`, as a JSON object or as the PHP-style
//! form the seed's `cuid[]` names come from (`cuid[]=m1&cuid[]=m2&...`).
//!
//! The answer is Loga's: `code`, `msg`, `data.users[] {cuid, point}` (the
//! remaining points of every member an applied item touched), `data.transaction
//! {start, end}` and, when an item failed, `fail_at` with code 503 (the items
//! before it stay applied, as in Loga). Such an answer, and success (code 200),
//! are HTTP 200: the request was processed, and a client must not retry it
//! whole. A request refused whole (a bad token, a bad array) has the HTTP status
//! of its code. Beside Loga's fields: `reason` (SPEC §13) and `errors` (every
//! problem), with field paths named the way the caller sent them (`point[2]`,
//! not the service's `items[2].points`).

use super::{grpc_request, http_status, reason, renamed_head, violations};
use crate::auth::{self, Access};
use crate::pb::{self, points_service_server::PointsService};
use crate::service::Api;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Loga's result codes: success, and "an item failed, see fail_at".
const CODE_SUCCESS: u16 = 200;
const CODE_ITEM_FAILED: u16 = 503;
/// The SPEC §13 reason of a body this module refuses itself.
const INVALID: &str = "INVALID_FIELD";

pub async fn bulk_add_point(State(api): State<Api>, parts: http::request::Parts, body: Bytes) -> Response {
    bulk(&api, parts, &body, Kind::Add).await
}

pub async fn bulk_use_point(State(api): State<Api>, parts: http::request::Parts, body: Bytes) -> Response {
    bulk(&api, parts, &body, Kind::Use).await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Use,
}

async fn bulk(api: &Api, mut parts: http::request::Parts, body: &[u8], kind: Kind) -> Response {
    // A body that does not read as a bulk at all reveals nothing of the ledger
    // and names nothing to authorize: refused before auth, like a gRPC request
    // that does not decode.
    let body = match BulkBody::parse(body) {
        Ok(body) => body,
        Err(reason) => return refused_whole(StatusCode::BAD_REQUEST, reason, Some(INVALID.to_owned()), Vec::new()),
    };
    // Loga sends the token in the body; a bearer header, when there is one, wins.
    let body_token = body.token.as_deref().filter(|_| !parts.headers.contains_key(http::header::AUTHORIZATION));
    if let Some(value) = body_token.and_then(|token| HeaderValue::try_from(format!("Bearer {}", token.trim())).ok()) {
        parts.headers.insert(http::header::AUTHORIZATION, value);
    }
    let mut problems = Vec::new();
    let program_id = text(&mut problems, "card_id", &body.card_id);
    let items = body.items(kind, &mut problems);
    let atomic = flag(&mut problems, "atomic", body.atomic.as_ref());
    if !problems.is_empty() {
        return refused(api, parts, &program_id, problems);
    }
    let answer = match kind {
        Kind::Add => {
            let items = items.into_iter().map(Item::into_add).collect();
            let request = grpc_request(parts, pb::BulkAddPointsRequest { program_id, items, atomic });
            PointsService::bulk_add_points(api, request).await
        }
        Kind::Use => {
            let items = items.into_iter().map(Item::into_use).collect();
            let request = grpc_request(parts, pb::BulkUsePointsRequest { program_id, items, atomic });
            PointsService::bulk_use_points(api, request).await
        }
    };
    match answer {
        Ok(result) => processed(result.into_inner(), kind),
        Err(status) => failed(&status),
    }
}

/// Values the arrays could not give. The same auth code as the service's
/// decides first, so a caller with a bad token learns nothing of its body, and
/// the call counts against the token's quota like any other.
fn refused(api: &Api, parts: http::request::Parts, program_id: &str, problems: Vec<FieldError>) -> Response {
    let request = grpc_request(parts, ());
    let allowed = if program_id.is_empty() {
        auth::check_writes(&api.ledger, &request, &[])
    } else {
        auth::check(&api.ledger, &request, Access::Write(program_id))
    };
    if let Err(status) = allowed {
        return failed(&status);
    }
    let msg: Vec<String> =
        problems.iter().map(|problem| format!("{}: {}", problem.field, problem.description)).collect();
    refused_whole(StatusCode::BAD_REQUEST, msg.join("; "), Some(INVALID.to_owned()), problems)
}

/// An error of the service, for the request as a whole: nothing was applied.
fn failed(status: &tonic::Status) -> Response {
    let errors: Vec<FieldError> = violations(status)
        .into_iter()
        .map(|(field, description)| FieldError { field: loga_field(&field), description })
        .collect();
    let mut msg = renamed_head(status.message(), |field| Some(loga_field(field)));
    for (field, _) in violations(status) {
        msg = msg.replace(&field, &loga_field(&field));
    }
    refused_whole(http_status(status.code()), msg, reason(status), errors)
}

fn refused_whole(http: StatusCode, msg: String, reason: Option<String>, errors: Vec<FieldError>) -> Response {
    let answer = Answer { code: http.as_u16(), msg, data: None, fail_at: None, reason, errors };
    (http, Json(answer)).into_response()
}

/// The bulk ran: every item applied (code 200), or it stopped at `fail_at` (code 503).
fn processed(result: pb::BulkPointsResult, kind: Kind) -> Response {
    let users: Vec<User> =
        result.balances.iter().map(|balance| User { cuid: balance.member_id.clone(), point: balance.points }).collect();
    // Loga's bulk use answers `data.point.now`, one customer's remaining points.
    let point = match (kind, users.as_slice()) {
        (Kind::Use, [user]) => Some(PointNow { now: user.point }),
        _ => None,
    };
    let data = Data {
        users,
        transaction: Transaction { start: result.first_transaction_id, end: result.last_transaction_id },
        point,
        duplicates: result.duplicates,
    };
    let answer = match result.fail_at {
        None => Answer {
            code: CODE_SUCCESS,
            msg: "Success".to_owned(),
            data: Some(data),
            fail_at: None,
            reason: None,
            errors: Vec::new(),
        },
        Some(fail_at) => {
            let failure = result.failure.unwrap_or_default();
            let field = loga_field(&failure.field);
            let msg = if failure.field.is_empty() {
                failure.message
            } else {
                failure.message.replace(&failure.field, &field)
            };
            let errors = if field.is_empty() {
                Vec::new()
            } else {
                let description = msg.strip_prefix(&format!("{field}: ")).unwrap_or(&msg).to_owned();
                vec![FieldError { field, description }]
            };
            Answer {
                code: CODE_ITEM_FAILED,
                msg,
                data: Some(data),
                fail_at: Some(fail_at),
                reason: Some(failure.code),
                errors,
            }
        }
    };
    (StatusCode::OK, Json(answer)).into_response()
}

/// The service's field path as the caller named it: `items[2].points` is `point[2]`.
fn loga_field(field: &str) -> String {
    match field {
        "program_id" => return "card_id".to_owned(),
        "items" => return "cuid".to_owned(),
        _ => {}
    }
    let Some((index, name)) = field.strip_prefix("items[").and_then(|rest| rest.split_once("].")) else {
        return field.to_owned();
    };
    let array = match name {
        "member_id" => "cuid",
        "points" => "point",
        "remark" => "remark",
        "reference" => "reference",
        "branch_code" => "branch",
        "occurred_at" => "created",
        "expires_at" => "expired",
        _ => return field.to_owned(),
    };
    format!("{array}[{index}]")
}

/// The body as sent. Names may carry PHP's `[]` (`cuid[]`), as the seed writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    #[serde(default)]
    token: Option<String>,
    /// Loga's device id, sent with its token; nothing here needs it.
    #[serde(default, rename = "uuid")]
    _device: Option<Scalar>,
    card_id: Scalar,
    #[serde(alias = "cuid[]")]
    cuid: Vec<Scalar>,
    #[serde(alias = "point[]")]
    point: Vec<Scalar>,
    #[serde(default, alias = "remark[]")]
    remark: Vec<Scalar>,
    #[serde(default, alias = "reference[]")]
    reference: Vec<Scalar>,
    #[serde(default, alias = "branch[]")]
    branch: Vec<Scalar>,
    #[serde(default, alias = "created[]")]
    created: Vec<Scalar>,
    #[serde(default, alias = "expired[]")]
    expired: Vec<Scalar>,
    /// Ours, not Loga's: all-or-nothing (SPEC §3).
    #[serde(default)]
    atomic: Option<Scalar>,
}

/// The arrays of a form body; any other name is a single value.
const ARRAYS: [&str; 7] = ["cuid", "point", "remark", "reference", "branch", "created", "expired"];

impl BulkBody {
    /// JSON when the body is an object, else a form: `curl -d '{...}'` labels
    /// JSON as a form, so the content type is not trusted.
    fn parse(body: &[u8]) -> Result<BulkBody, String> {
        let json = body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
        let parsed = if json { serde_json::from_slice(body) } else { serde_json::from_value(form(body)) };
        parsed.map_err(|error| format!("the body is not a bulk request: {error}"))
    }

    /// One item per `cuid`; every value that cannot be read is a problem.
    fn items(&self, kind: Kind, problems: &mut Vec<FieldError>) -> Vec<Item> {
        let count = self.cuid.len();
        let arrays = [
            ("point", &self.point, true),
            ("remark", &self.remark, true),
            ("reference", &self.reference, false),
            ("branch", &self.branch, false),
            ("created", &self.created, false),
            ("expired", &self.expired, false),
        ];
        for (name, values, required) in arrays {
            if values.len() != count && (required || !values.is_empty()) {
                let description = format!("has {} values for {count} cuid values: one value per item", values.len());
                problems.push(FieldError { field: name.to_owned(), description });
            }
        }
        if kind == Kind::Use && !self.expired.is_empty() {
            let description = "points used have no expiry: bulk_use_point takes no expired[]".to_owned();
            problems.push(FieldError { field: "expired".to_owned(), description });
        }
        let absent = Scalar::Null;
        let at = |values: &[Scalar], index: usize| values.get(index).unwrap_or(&absent).clone();
        (0..count)
            .map(|index| Item {
                member_id: text(problems, &format!("cuid[{index}]"), &self.cuid[index]),
                points: whole(problems, &format!("point[{index}]"), &at(&self.point, index)),
                remark: text(problems, &format!("remark[{index}]"), &at(&self.remark, index)),
                reference: text(problems, &format!("reference[{index}]"), &at(&self.reference, index)),
                branch_code: text(problems, &format!("branch[{index}]"), &at(&self.branch, index)),
                occurred_at: unix(problems, &format!("created[{index}]"), &at(&self.created, index)),
                expires_at: unix(problems, &format!("expired[{index}]"), &at(&self.expired, index)),
            })
            .collect()
    }
}

/// A form body as the JSON object it stands for: `cuid[]=a&cuid[]=b` (or
/// `cuid[0]=a&cuid[1]=b`, in index order) is `"cuid": ["a", "b"]`; every value
/// is text, which the items read as numbers where numbers belong.
fn form(body: &[u8]) -> Value {
    let mut arrays: Vec<(&str, FormValues)> = ARRAYS.iter().map(|name| (*name, Vec::new())).collect();
    let mut object = Map::new();
    for (key, value) in form_urlencoded::parse(body) {
        let (name, index) = match key.split_once('[') {
            Some((name, rest)) => (name, rest.strip_suffix(']').and_then(|index| index.parse().ok())),
            None => (key.as_ref(), None),
        };
        match arrays.iter_mut().find(|(array, _)| *array == name) {
            Some((_, values)) => values.push((index, value.into_owned())),
            None => {
                object.insert(key.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    for (name, mut values) in arrays {
        if values.is_empty() {
            continue;
        }
        values.sort_by_key(|(index, _)| *index);
        object.insert(name.to_owned(), values.into_iter().map(|(_, value)| Value::String(value)).collect());
    }
    Value::Object(object)
}

/// A form array's values, each with the index it was sent with (`cuid[3]`), if any.
type FormValues = Vec<(Option<usize>, String)>;

/// One value of an array (or `card_id`) as JSON or a form gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Integer(i64),
    Number(f64),
    Text(String),
    Flag(bool),
    Null,
}

/// Ids and remarks: text, or a whole number meaning its decimal text; absent is empty.
fn text(problems: &mut Vec<FieldError>, field: &str, value: &Scalar) -> String {
    match value {
        Scalar::Text(text) => text.clone(),
        Scalar::Integer(number) => number.to_string(),
        Scalar::Null => String::new(),
        Scalar::Number(_) | Scalar::Flag(_) => {
            problems.push(FieldError { field: field.to_owned(), description: "must be text".to_owned() });
            String::new()
        }
    }
}

/// Points: a whole number, or text holding one. Their range is the service's rule.
fn whole(problems: &mut Vec<FieldError>, field: &str, value: &Scalar) -> i64 {
    let number = match value {
        Scalar::Integer(number) => Some(*number),
        Scalar::Text(text) => text.trim().parse().ok(),
        Scalar::Number(_) | Scalar::Flag(_) | Scalar::Null => None,
    };
    number.unwrap_or_else(|| {
        problems.push(FieldError {
            field: field.to_owned(),
            description: format!("{} is not a whole number", shown(value)),
        });
        0
    })
}

/// A time in unix seconds; absent, empty and 0 all mean "not given", as a form
/// of parallel arrays must send something for every item. The range is the
/// service's rule, which names the item.
fn unix(problems: &mut Vec<FieldError>, field: &str, value: &Scalar) -> Option<prost_types::Timestamp> {
    let seconds = match value {
        Scalar::Null => return None,
        Scalar::Text(text) if text.trim().is_empty() => return None,
        Scalar::Integer(seconds) => Some(*seconds),
        Scalar::Text(text) => text.trim().parse().ok(),
        Scalar::Number(_) | Scalar::Flag(_) => None,
    };
    match seconds {
        Some(0) => None,
        Some(seconds) => Some(prost_types::Timestamp { seconds, nanos: 0 }),
        None => {
            let description = format!("{} is not a time in unix seconds", shown(value));
            problems.push(FieldError { field: field.to_owned(), description });
            None
        }
    }
}

fn flag(problems: &mut Vec<FieldError>, field: &str, value: Option<&Scalar>) -> bool {
    match value {
        None | Some(Scalar::Null) => false,
        Some(Scalar::Flag(flag)) => *flag,
        Some(Scalar::Integer(0)) => false,
        Some(Scalar::Integer(1)) => true,
        Some(Scalar::Text(text)) if ["", "0", "false", "no"].contains(&text.trim()) => false,
        Some(Scalar::Text(text)) if ["1", "true", "yes"].contains(&text.trim()) => true,
        Some(other) => {
            problems.push(FieldError {
                field: field.to_owned(),
                description: format!("{} is not true or false", shown(other)),
            });
            false
        }
    }
}

/// A wrong value in words.
fn shown(value: &Scalar) -> String {
    match value {
        Scalar::Integer(number) => number.to_string(),
        Scalar::Number(number) => number.to_string(),
        Scalar::Text(text) => format!("{text:?}"),
        Scalar::Flag(flag) => flag.to_string(),
        Scalar::Null => "null".to_owned(),
    }
}

/// One item, read from the arrays.
struct Item {
    member_id: String,
    points: i64,
    remark: String,
    reference: String,
    branch_code: String,
    occurred_at: Option<prost_types::Timestamp>,
    expires_at: Option<prost_types::Timestamp>,
}

impl Item {
    fn into_add(self) -> pb::BulkAddItem {
        pb::BulkAddItem {
            member_id: self.member_id,
            points: self.points,
            remark: self.remark,
            reference: self.reference,
            branch_code: self.branch_code,
            occurred_at: self.occurred_at,
            expires_at: self.expires_at,
        }
    }

    fn into_use(self) -> pb::BulkUseItem {
        pb::BulkUseItem {
            member_id: self.member_id,
            points: self.points,
            remark: self.remark,
            reward_id: String::new(),
            reference: self.reference,
            branch_code: self.branch_code,
            occurred_at: self.occurred_at,
        }
    }
}

#[derive(Serialize)]
struct Answer {
    code: u16,
    msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fail_at: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

#[derive(Serialize)]
struct Data {
    users: Vec<User>,
    transaction: Transaction,
    #[serde(skip_serializing_if = "Option::is_none")]
    point: Option<PointNow>,
    /// Indexes skipped because their reference was used before (nothing changed for them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    duplicates: Vec<u32>,
}

#[derive(Serialize)]
struct User {
    cuid: String,
    /// Remaining points.
    point: i64,
}

/// First and last transaction ids applied; both 0 when none was.
#[derive(Serialize)]
struct Transaction {
    start: u64,
    end: u64,
}

#[derive(Serialize)]
struct PointNow {
    now: i64,
}

#[derive(Debug, Serialize)]
struct FieldError {
    field: String,
    description: String,
}

#[cfg(test)]
mod tests {
    use super::{BulkBody, Kind, loga_field};

    #[test]
    fn service_paths_read_as_the_arrays_sent() {
        assert_eq!(loga_field("items[2].points"), "point[2]");
        assert_eq!(loga_field("items[0].member_id"), "cuid[0]");
        assert_eq!(loga_field("items[10].occurred_at"), "created[10]");
        assert_eq!(loga_field("items"), "cuid");
        assert_eq!(loga_field("program_id"), "card_id");
        assert_eq!(loga_field("items[1].reward_id"), "items[1].reward_id");
    }

    #[test]
    fn a_form_body_reads_as_its_json_object() {
        let form = "token=t&uuid=d&card_id=c1&cuid[]=m1&cuid[]=m2&point[1]=7&point[0]=5&remark[]=a&remark[]=b\
                    &created[]=&created[]=1700000000";
        let body = BulkBody::parse(form.as_bytes()).unwrap();
        let mut problems = Vec::new();
        let items = body.items(Kind::Add, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(body.token.as_deref(), Some("t"));
        assert_eq!((items[0].member_id.as_str(), items[0].points), ("m1", 5));
        assert_eq!((items[1].member_id.as_str(), items[1].points), ("m2", 7));
        assert_eq!(items[0].occurred_at, None);
        assert_eq!(items[1].occurred_at.map(|time| time.seconds), Some(1_700_000_000));
    }

    #[test]
    fn every_bad_value_and_length_is_a_problem() {
        let json = r#"{"card_id": "c1", "cuid": ["m1", "m2"], "point": [1.5, "x"], "remark": ["a"],
                       "created": [true, 1], "expired": [1, 2]}"#;
        let body = BulkBody::parse(json.as_bytes()).unwrap();
        let mut problems = Vec::new();
        body.items(Kind::Use, &mut problems);
        let fields: Vec<&str> = problems.iter().map(|problem| problem.field.as_str()).collect();
        assert_eq!(fields, ["remark", "expired", "point[0]", "created[0]", "point[1]"]);
        assert!(BulkBody::parse(br#"{"card_id": "c1", "cuid": ["m1"], "point": [1], "pointz": 1}"#).is_err());
    }
}
