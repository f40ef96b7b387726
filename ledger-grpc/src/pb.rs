//! The `ledger.v1` protobuf messages and gRPC services, generated at build
//! time from `proto/ledger/v1/*.proto` (see `build.rs`).

// Generated code: lints are the generator's business, not ours.
#![allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    missing_docs,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]

tonic::include_proto!("ledger.v1");

/// The encoded `FileDescriptorSet` of every `ledger.v1` proto and its imports
/// (`google/protobuf/timestamp.proto`), with source comments.
///
/// The server reflection service (`tonic_reflection`, v1 and v1alpha) is built
/// from it, so that grpcurl and other tools can list and call the services
/// and encode JSON requests without having the `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ledger_descriptor");
