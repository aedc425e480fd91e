//! The `fluxbase` binary, built by this crate so the black-box tests can run the real command
//! line (`CARGO_BIN_EXE_fluxbase-under-test`: cargo builds it before the tests, which it does
//! not do for another crate's binary). The same one line as `server/src/main.rs`.
fn main() -> std::process::ExitCode {
    fluxbase_server::cli::main()
}
