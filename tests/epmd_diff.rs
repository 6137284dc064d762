//! Differential test: the real `epmd` (OTP 25, Debian `erlang-base`) and
//! epmdpxy run side by side, receive the same byte sequences, and must
//! answer byte for byte alike — except the fields that must differ (the
//! proxy port in PORT2_RESP, creation values, our own port in NAMES/DUMP,
//! DUMP's fd numbers), which are checked by rule, and the replies where we
//! knowingly differ from OTP 25.2.3, which are named `KNOWN DIFFERENCE`
//! and listed in docs/replacing-epmd.md.
//!
//! Each case is a list of steps (connect, send, pause, half-close, observe
//! what comes back, wait for the registry to hold given names). Both
//! daemons run every case at the same time, one thread each; then the
//! observations are compared. An observation reads until EOF or until the
//! connection has been quiet for a short while, so "closed without a
//! reply" and "kept open" are compared too. Both daemons run with a packet
//! timeout of 1 s, so a stuck connection is not waited on for a minute.
//!
//! These tests need only `epmd` (no `erl`): without it they are skipped
//! with a message, except under `CI`, where they fail.
//!
//! This file holds the tests; `epmd_diff/harness.rs` the steps, how a case
//! runs on one daemon and how two answers are compared; and
//! `epmd_diff/cases.rs` the case tables.

#[path = "epmd_diff/cases.rs"]
mod cases;
mod common;
#[path = "epmd_diff/harness.rs"]
mod harness;

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use cases::{
    dump_cases, framing_cases, lookup_cases, registration_cases, relaxed_cases, timeout_cases,
};
use common::epmd::RealEpmd;
use common::{require_epmd, Proxy};
use harness::{
    alive2, check_alive2_ok, frame, read_reply, run_table, Case, End, Seen, Step, FAKE_NODE_PORT,
};

/// How long a killed daemon may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A real `epmd -port P -packet_timeout 1` plus `extra` flags.
fn real_epmd(extra: &[&str]) -> RealEpmd {
    RealEpmd::start(&[&["-packet_timeout", "1"], extra].concat())
}

/// Runs `cases` split into `chunks` parts, each on its own pair of
/// daemons, at the same time (the cases wait on quiet periods, not CPU).
fn run_split(cases: &[Case], chunks: usize, real_args: &[&str], ours_args: &[&str]) {
    let size = cases.len().div_ceil(chunks).max(1);
    let results: Vec<_> = thread::scope(|scope| {
        let runs: Vec<_> = cases
            .chunks(size)
            .map(|chunk| {
                scope.spawn(move || {
                    let real = real_epmd(real_args);
                    let ours = Proxy::start(ours_args);
                    run_table(&real, &ours, chunk, None);
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join()).collect()
    });
    for result in results {
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}

const OURS: &[&str] = &["--packet-timeout", "1"];
const OURS_RELAXED: &[&str] = &["--packet-timeout", "1", "--relaxed-command-check"];

#[test]
fn registrations_match_epmd() {
    if !require_epmd() {
        return;
    }
    run_split(&registration_cases(), 3, &[], OURS);
}

#[test]
fn lookups_match_epmd() {
    if !require_epmd() {
        return;
    }
    let node = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("stand-in node listener");
    let node_port = node.local_addr().expect("node address").port();
    let real = real_epmd(&[]);
    let ours = Proxy::start(OURS);
    run_table(&real, &ours, &lookup_cases(node_port), Some(node));
}

#[test]
fn framing_matches_epmd() {
    if !require_epmd() {
        return;
    }
    run_split(&framing_cases(), 2, &[], OURS);
}

#[test]
fn timeouts_match_epmd() {
    if !require_epmd() {
        return;
    }
    // Each case waits a second or two: run them all at once.
    run_split(&timeout_cases(), timeout_cases().len(), &[], OURS);
}

#[test]
fn relaxed_stop_matches_epmd() {
    if !require_epmd() {
        return;
    }
    run_split(
        &relaxed_cases(),
        1,
        &["-relaxed_command_check"],
        OURS_RELAXED,
    );
}

/// True once nothing accepts connections on `port` any more.
fn stopped_listening(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
}

/// Polls `f` until true or `timeout`.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// DUMP: live nodes newest first, then the old names oldest first, in
/// epmd's exact text (fd numbers aside). A fresh pair, so that the old
/// names are exactly those this test made, unregistered one at a time.
#[test]
fn dump_matches_epmd() {
    if !require_epmd() {
        return;
    }
    run_split(&dump_cases(), 1, &[], OURS);
}

/// KILL with nothing registered: both answer OK and exit.
#[test]
fn kill_when_empty_matches_epmd() {
    if !require_epmd() {
        return;
    }
    let mut real = real_epmd(&[]);
    let ours = Proxy::start(OURS);
    // Not a table case: run_table asks NAMES after each case, and both
    // daemons are gone by then.
    let real_seen = run_kill(real.port);
    let ours_seen = run_kill(ours.epmd_port);
    assert_eq!(real_seen, ours_seen, "KILL with nothing registered");
    assert_eq!(
        real_seen,
        Seen {
            bytes: b"OK".to_vec(),
            end: End::Closed
        }
    );
    assert_eq!(real.wait_exit(EXIT_TIMEOUT), Some(0), "real epmd exit code");
    assert!(
        eventually(EXIT_TIMEOUT, || stopped_listening(ours.epmd_port)),
        "epmdpxy still listens after KILL OK"
    );
}

/// KILL with nodes registered but -relaxed_command_check: OK and exit.
#[test]
fn relaxed_kill_matches_epmd() {
    if !require_epmd() {
        return;
    }
    let mut real = real_epmd(&["-relaxed_command_check"]);
    let ours = Proxy::start(OURS_RELAXED);
    let mut observed = Vec::new();
    for port in [real.port, ours.epmd_port] {
        let mut node = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        node.write_all(&alive2(b"doomed")).expect("register");
        let registered = read_reply(&mut node);
        check_alive2_ok(&registered).expect("registered");
        let killed = run_kill(port);
        // The registration socket is closed by the exit.
        let after = read_reply(&mut node);
        observed.push((killed, after));
    }
    assert_eq!(observed[0], observed[1], "real vs ours");
    assert_eq!(observed[0].0.bytes, b"OK");
    assert_eq!(observed[0].1.end, End::Closed);
    assert_eq!(real.wait_exit(EXIT_TIMEOUT), Some(0), "real epmd exit code");
    assert!(
        eventually(EXIT_TIMEOUT, || stopped_listening(ours.epmd_port)),
        "epmdpxy still listens after KILL OK"
    );
}

fn run_kill(port: u16) -> Seen {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect for KILL");
    stream.write_all(&frame(b"k")).expect("send KILL");
    read_reply(&mut stream)
}

/// The table is as large as promised: every request type, at least 40 cases.
#[test]
fn table_covers_every_request_type() {
    let all: Vec<Case> = [
        registration_cases(),
        lookup_cases(FAKE_NODE_PORT),
        framing_cases(),
        timeout_cases(),
        relaxed_cases(),
        dump_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(all.len() >= 40, "only {} cases", all.len());
    for tag in [b'x', b'z', b'n', b'd', b'k', b's'] {
        let sent = all.iter().any(|case| {
            case.steps.iter().any(|step| match step {
                Step::Send(_, bytes) => bytes.get(2) == Some(&tag),
                _ => false,
            })
        });
        assert!(sent, "no case sends request tag {:?}", tag as char);
    }
}
