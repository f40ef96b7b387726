//! The `ledger` client's Echoss JSON, bulk JSON/CSV files and time flags: an error, never a panic, and every time accepted is one the server takes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ledger_grpc::fuzzing::files(data));
