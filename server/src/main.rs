//! The `fluxbase` binary; everything lives in the library so tests can drive it.

/// mimalloc instead of the system allocator: a request allocates and frees many small buffers
/// (headers, JSON, protocol messages) across threads, where glibc's malloc took ~8% of the
/// server's CPU under load (measured with perf during `make bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fluxbase_server::cli::main()
}
