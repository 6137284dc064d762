//! Shared harness for the integration tests. Every test binary includes it
//! with `mod common;` and uses the parts it needs:
//!
//! - `proxy`: `Proxy`, the epmdpxy binary under test, its control port and
//!   its `ctl` client;
//! - `erl`: real Erlang nodes (`ErlNode`) driven over stdin/stdout, and
//!   what the nodes of a cluster see of each other;
//! - `epmd`: OTP's own `epmd`, as a daemon (`RealEpmd`) and as a client;
//! - `fake`: sockets that play an Erlang node on the wire;
//! - `process`: child processes, their output and their process groups;
//! - `procfs`: what /proc says about listeners and processes;
//! - `recorder`: what real nodes observe, recorded inside them;
//! - `rng`: a seeded PRNG for generated inputs;
//! - here: the gates for what a test needs, free ports, and polling.
//!
//! Every child process is owned by a guard whose `Drop` kills it, so a
//! panicking test leaves no `epmdpxy` or `beam.smp` behind.

// Each test binary uses only part of the harness.
#![allow(dead_code, unused_imports)]

pub mod epmd;
pub mod erl;
pub mod fake;
pub mod netns;
pub mod process;
pub mod procfs;
pub mod proxy;
pub mod recorder;
pub mod rng;
pub mod tls;

pub use erl::{check_views, connect_missing, full_mesh, islands, ErlNode, NodeOptions};
pub use process::run_with_deadline;
pub use proxy::Proxy;

use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

/// Polling interval of `wait_until`, and of every other wait in the harness.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Gates: what a test needs
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

/// Gate for a test that needs `program` (from the Debian `package`).
/// Returns true if it is on `PATH`. Without it: in CI (env `CI` set) the
/// test fails, since a skipped test must never pass silently there;
/// elsewhere a skip note is printed and false is returned so the test can
/// return early.
pub fn require_program(program: &str, package: &str) -> bool {
    if program_on_path(program) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "`{program}` is not on PATH but CI is set: install it (`apt-get install -y {package}`)"
        );
    }
    eprintln!(
        "SKIPPED: `{program}` is not on PATH; install it (`apt-get install -y {package}`) to run this test"
    );
    false
}

/// Gate for tests that need Erlang/OTP's `erl` (see `require_program`).
pub fn require_erl() -> bool {
    require_program("erl", "erlang-base")
}

/// Gate for tests that need OTP's `epmd`, as a daemon or as a client (see
/// `require_program`).
pub fn require_epmd() -> bool {
    require_program("epmd", "erlang-base")
}

/// True if this machine can listen on ::1.
pub fn ipv6_loopback() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Gate for the IPv6 tests: true if this machine has an IPv6 loopback;
/// prints a skip note if not (in CI too: not every runner has one).
pub fn require_ipv6_loopback() -> bool {
    if ipv6_loopback() {
        return true;
    }
    eprintln!("SKIPPED: this machine has no IPv6 loopback (::1 cannot be bound)");
    false
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// A port nothing listens on right now, for a child that binds it next.
/// Binding `[::]:0` (dual-stack on Linux) finds one free on IPv4 and IPv6
/// alike; IPv4 only without IPv6.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0))
        .or_else(|_| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .expect("bind port 0");
    listener.local_addr().expect("local address").port()
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

/// Writes `line` straight to the test's stderr, past libtest's capture,
/// so that it shows in a CI log even when the test passes (what ran, with
/// which OTP). Use it sparingly.
pub fn announce(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
