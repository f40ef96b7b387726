//! `ledger`: the command-line client of `ledgerd`, and offline audit of its data
//! directory. Everything lives in `ledger_grpc::cli`, where it can be tested.

fn main() -> std::process::ExitCode {
    ledger_grpc::cli::main()
}
