//! Stored bytes into the envelope and log-record decoders: an error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ledger_grpc::fuzzing::event_decoding(data));
