//! Generates the `ledger.v1` gRPC code from `proto/ledger/v1/*.proto`.
//!
//! No `protoc` is needed: protox parses the protos in pure Rust into a
//! `FileDescriptorSet`. Its encoded bytes are written to
//! `$OUT_DIR/ledger_descriptor.bin` for the reflection service, and the same
//! set drives tonic-prost-build's code generation.

use std::{error::Error, fs, path::PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../proto");
    let proto_dir = proto_root.join("ledger/v1");
    println!("cargo:rerun-if-changed={}", proto_root.display());

    // Every .proto of the package, named relative to the include root, sorted
    // so the descriptor set (and so the generated code) is deterministic.
    let mut files = Vec::new();
    for entry in fs::read_dir(&proto_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            let name = path.file_name().ok_or("proto file without a name")?;
            files.push(PathBuf::from("ledger/v1").join(name));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("no .proto files in {}", proto_dir.display()).into());
    }

    let fds = protox::compile(&files, [&proto_root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    fs::write(out_dir.join("ledger_descriptor.bin"), fds.encode_to_vec())?;

    // Undecodable requests answer INVALID_ARGUMENT, not tonic-prost's INTERNAL:
    // see `src/codec.rs`.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::ValidatingCodec")
        .compile_fds(fds)?;
    Ok(())
}
