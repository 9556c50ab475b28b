//! The `reprolab` command-line tool: train, resume, replay, rerun, diff,
//! export, bench. It parses arguments, reads and writes files and shows
//! progress; every decision about runs and backends is the driver's
//! (`reprolab::driver`).
//!
//! Exit status: 0 success (or identical), 1 runs differ / training stopped on
//! a non-finite value, 2 invalid input (settings, files, manifests) or an
//! internal error, 3 backend unavailable, 130 interrupted (the manifest of the
//! completed steps is written first).

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    // Mesa's Vulkan drivers complain on stderr when this is unset (headless
    // machines, CI); set before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    // A panic is a bug, but a user gets one line and status 2, not a trace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report it): {}", reprolab::error::panic_message(info));
    }));
    let code = std::panic::catch_unwind(cli::main).unwrap_or(2);
    std::process::exit(code);
}

#[cfg(not(target_arch = "wasm32"))]
mod cli;
