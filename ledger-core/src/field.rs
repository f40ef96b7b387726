//! The path of a field in a request, as a caller would write it: `points`,
//! `items[3].remark`, `data[1].line_id`. Errors carry one so that gRPC can return it
//! as a `google.rpc.BadRequest` field violation.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn new(name: &str) -> FieldPath {
        FieldPath(name.to_owned())
    }

    /// `items[3]` + `remark` = `items[3].remark`.
    pub fn item(list: &str, index: usize, name: &str) -> FieldPath {
        FieldPath(format!("{list}[{index}].{name}"))
    }

    /// An entry of a list of plain values: `kinds[1]`.
    pub fn indexed(list: &str, index: usize) -> FieldPath {
        FieldPath(format!("{list}[{index}]"))
    }

    /// Moves a path of a single item under a list: `points` → `items[3].points`.
    pub fn under(self, list: &str, index: usize) -> FieldPath {
        FieldPath(format!("{list}[{index}].{}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
