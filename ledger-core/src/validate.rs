//! Checks of single fields, shared by every command. Each returns the rejection
//! that names the field and the rule it broke.

use crate::field::FieldPath;
use crate::limits::{DECIMAL_SCALE_MAX, ID_BYTES_MAX, NAME_BYTES_MAX, REMARK_BYTES_MAX};
use crate::rejection::Rejection;
use rust_decimal::Decimal;

/// A required id: not blank, at most `ID_BYTES_MAX` bytes, no control characters
/// (they would make ids that print the same but differ).
pub fn id(field: &str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return Err(Rejection::Required { field: FieldPath::new(field) });
    }
    optional_id(field, value)
}

/// An optional id: empty means none.
pub fn optional_id(field: &str, value: &str) -> Result<(), Rejection> {
    max_bytes(field, value, ID_BYTES_MAX)?;
    if value.chars().any(char::is_control) {
        return Err(Rejection::Invalid {
            field: FieldPath::new(field),
            rule: "may not contain control characters".to_owned(),
        });
    }
    Ok(())
}

pub fn name(field: &str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return Err(Rejection::Required { field: FieldPath::new(field) });
    }
    max_bytes(field, value, NAME_BYTES_MAX)
}

pub fn remark(field: &str, value: &str) -> Result<(), Rejection> {
    max_bytes(field, value, REMARK_BYTES_MAX)
}

pub fn required_remark(field: &str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return Err(Rejection::Required { field: FieldPath::new(field) });
    }
    remark(field, value)
}

pub fn max_bytes(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    if value.len() > max {
        return Err(Rejection::TooLong { field: FieldPath::new(field), got: value.len(), max });
    }
    Ok(())
}

/// An integer amount in `min..=max`, turned into the `u64` events carry.
pub fn amount(field: &str, value: i64, min: u64, max: u64) -> Result<u64, Rejection> {
    match u64::try_from(value) {
        Ok(amount) if (min..=max).contains(&amount) => Ok(amount),
        _ => Err(Rejection::OutOfRange {
            field: FieldPath::new(field),
            got: i128::from(value),
            min: i128::from(min),
            max: i128::from(max),
        }),
    }
}

/// A positive decimal with at most `DECIMAL_SCALE_MAX` places.
pub fn positive_decimal(field: &str, value: Decimal) -> Result<Decimal, Rejection> {
    if value <= Decimal::ZERO {
        return Err(Rejection::Invalid {
            field: FieldPath::new(field),
            rule: format!("must be greater than 0, got {value}"),
        });
    }
    let normalized = value.normalize();
    if normalized.scale() > DECIMAL_SCALE_MAX {
        return Err(Rejection::Invalid {
            field: FieldPath::new(field),
            rule: format!("may have at most {DECIMAL_SCALE_MAX} decimal places, got {value}"),
        });
    }
    Ok(normalized)
}

/// A list with more items than it may hold: a count, not bytes.
pub fn count_out_of_range(field: &str, got: usize, max: usize) -> Rejection {
    let count = |value: usize| i128::try_from(value).unwrap_or(i128::MAX);
    Rejection::OutOfRange { field: FieldPath::new(field), got: count(got), min: 1, max: count(max) }
}

/// Every problem of a request, collected instead of returned at the first, so
/// that a caller fixes them all at once (SPEC §13: INVALID_ARGUMENT lists every
/// field violation). A command's checks of its own fields run through one of
/// these; `finish` answers `Ok` or the one rejection naming them all.
#[derive(Debug, Default)]
pub struct Problems {
    found: Vec<Rejection>,
}

impl Problems {
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Notes the problem of `result`, if any, and gives its value otherwise.
    pub fn check<T>(&mut self, result: Result<T, Rejection>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(rejection) => {
                self.push(rejection);
                None
            }
        }
    }

    pub fn push(&mut self, rejection: Rejection) {
        match rejection {
            Rejection::Many { problems } => self.found.extend(problems),
            single => self.found.push(single),
        }
    }

    /// Notes `more` except those about a field already named: a field that
    /// could not be read at all is not also reported as missing.
    pub fn extend_new(&mut self, more: Vec<Rejection>) {
        for problem in more {
            if !self.found.iter().any(|found| found.field() == problem.field()) {
                self.found.push(problem);
            }
        }
    }

    pub fn append(&mut self, more: Problems) {
        self.found.extend(more.found);
    }

    /// The problems of the fields a command is checked on before its reference
    /// (`self`), with those checked after it (`amounts`): a repeat of a reference
    /// is answered with the original before its amounts are looked at, as it
    /// always was, but a request refused anyway names every problem at once.
    /// `Ok` gives the amounts' problems back, to finish after the reference.
    pub fn then_after_reference(mut self, amounts: Problems) -> Result<Problems, Rejection> {
        if self.is_empty() {
            return Ok(amounts);
        }
        self.append(amounts);
        Err(self.finish().expect_err("problems were found"))
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub fn into_vec(self) -> Vec<Rejection> {
        self.found
    }

    pub fn finish(self) -> Result<(), Rejection> {
        Rejection::every(self.found)
    }
}
