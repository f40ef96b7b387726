//! The gRPC face of the ledger: the tonic server (`ledgerd`), the command-line
//! client (`ledger`), auth, and the mapping between proto and domain. Only this
//! crate knows protobuf.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod codec;
pub mod echoss;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod limits;
pub mod listener;
pub mod log_writer;
pub mod mapping;
pub mod nats;
pub mod observe;
pub mod pb;
pub mod server;
pub mod service;
pub mod status;
pub mod stop_signal;
pub mod tls;
