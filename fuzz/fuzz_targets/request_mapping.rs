//! A selector byte and protobuf bytes into every request type, mapped and decided: INVALID_ARGUMENT or a decision, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ledger_grpc::fuzzing::request_mapping(data));
