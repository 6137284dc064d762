//! Shared harness for the integration tests. Every test binary includes it
//! with `mod common;` and uses the parts it needs:
//!
//! - `proxy`: `Proxy`, the epmdpxy binary under test, and its control port;
//! - `erl`: real Erlang nodes (`ErlNode`) driven over stdin/stdout, and
//!   checks of what each node sees;
//! - `epmd`: OTP's own `epmd`;
//! - `fake`: sockets that play an Erlang node on the wire;
//! - `process`: child processes, their output and their process groups;
//! - here: the gates for tools a test needs, and polling.
//!
//! Every child process is owned by a guard whose `Drop` kills it, so a
//! panicking test leaves no `epmdpxy` or `beam.smp` behind.

// Each test binary uses only part of the harness.
#![allow(dead_code, unused_imports)]

pub mod epmd;
pub mod erl;
pub mod fake;
pub mod process;
pub mod proxy;

pub use erl::{check_views, ErlNode, NodeOptions};
pub use proxy::Proxy;

use std::thread;
use std::time::{Duration, Instant};

/// Polling interval of `wait_until`.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Erlang availability
// ---------------------------------------------------------------------------

/// True if `program` is an executable file in a directory of `PATH`.
pub fn program_on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(program);
        candidate
            .metadata()
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// True if `erl` is on `PATH`.
pub fn erl_available() -> bool {
    program_on_path("erl")
}

/// Gate for tests that need Erlang/OTP. Returns true if `erl` is there.
/// Without it: in CI (env `CI` set) the test fails, since a skipped test
/// must never pass silently there; elsewhere a skip note is printed and
/// false is returned so the test can return early.
pub fn require_erl() -> bool {
    if erl_available() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "`erl` is not on PATH but CI is set: this test needs Erlang/OTP \
             (e.g. `apt-get install -y erlang-base`)"
        );
    }
    eprintln!("SKIPPED: `erl` is not on PATH; install Erlang/OTP to run this test");
    false
}

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

/// Polls `f` every ~50 ms until it returns true; panics naming `what` after
/// `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    wait_until_ok(timeout, what, || {
        if f() {
            Ok(())
        } else {
            Err("condition still false".to_string())
        }
    });
}

/// Like `wait_until`, but `f` explains why it is not done yet; the last
/// explanation goes into the panic message.
pub fn wait_until_ok(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        let why_not = match f() {
            Ok(()) => return,
            Err(why_not) => why_not,
        };
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last observed: {why_not}");
        }
        thread::sleep(POLL_INTERVAL);
    }
}
