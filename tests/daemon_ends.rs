//! How the daemon ends (issue 17, item 10): every end it controls leaves
//! a last line that says why — a KILL request, a start-up failure — and
//! docs/troubleshooting.md lists every such reason the code can give, and
//! the ends that cannot leave a line (signals).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::run_text;
use common::{wait_until, Proxy};
use epmdpxy::epmd::wire;

const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The last non-empty line of `log`, without its timestamp.
fn last_line(log: &str) -> String {
    let line = log.lines().rfind(|line| !line.trim().is_empty());
    let line = line.unwrap_or_default();
    // `2026-12-03T02:44:40.319Z epmdpxy: ...`
    match line.split_once(' ') {
        Some((stamp, rest)) if stamp.ends_with('Z') => rest.to_owned(),
        _ => line.to_owned(),
    }
}

#[test]
fn a_kill_request_ends_it_with_a_last_line_saying_so() {
    let mut proxy = Proxy::start(&[]);
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.epmd_port)).expect("connect");
    stream
        .write_all(&wire::frame(&[wire::TAG_KILL_REQ]))
        .expect("send KILL");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("KILL answered");
    assert_eq!(reply, b"OK");
    assert_eq!(proxy.wait_exit(EXIT_TIMEOUT), Some(0), "exit code");
    let want = "epmdpxy: exiting: killed by a KILL request (epmd -kill)";
    wait_until(EXIT_TIMEOUT, "the last line to be read", || {
        last_line(&proxy.log()) == want
    });
}

#[test]
fn a_start_up_failure_ends_it_with_a_last_line_saying_why() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = taken.local_addr().expect("address").port().to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_epmdpxy"));
    command
        .args(["--port", &port, "--control-port", "0"])
        .env_remove("ERL_EPMD_ADDRESS");
    let (code, _, err) = run_text(&mut command, "", EXIT_TIMEOUT);
    assert_eq!(code, 1, "{err}");
    let last = last_line(&err);
    assert!(
        last.starts_with(&format!(
            "epmdpxy: cannot listen for EPMD on 127.0.0.1:{port}: "
        )),
        "{err}"
    );
    assert!(last.contains("is another epmd running?"), "{err}");
}

/// The reasons the code gives for ending: `request_exit("...")` calls and
/// the `lost` texts of the acceptors in src/daemon.rs (`{x}` becomes `<x>`).
fn reasons_in_the_code() -> Vec<String> {
    let mut reasons = Vec::new();
    for file in ["src/epmd/requests.rs", "src/daemon.rs"] {
        let text = std::fs::read_to_string(Path::new(ROOT).join(file)).expect(file);
        for line in text.lines() {
            let quoted = if line.contains("request_exit(\"") || line.contains("let lost = ") {
                line.split('"').nth(1)
            } else {
                None
            };
            if let Some(reason) = quoted {
                reasons.push(reason.replace('{', "<").replace('}', ">"));
            }
        }
    }
    reasons
}

#[test]
fn troubleshooting_lists_every_end_and_the_ends_without_a_line() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/troubleshooting.md"))
        .expect("docs/troubleshooting.md");
    let section = doc
        .split_once("## epmdpxy ended: why")
        .expect("troubleshooting.md has '## epmdpxy ended: why'")
        .1
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let reasons = reasons_in_the_code();
    assert!(reasons.len() >= 3, "found {reasons:?}");
    for reason in reasons {
        let line = format!("epmdpxy: exiting: {reason}");
        assert!(
            section.contains(&line),
            "troubleshooting.md does not list `{line}`"
        );
    }
    for signal in ["SIGKILL", "SIGTERM", "SIGINT"] {
        assert!(
            section.contains(signal),
            "troubleshooting.md does not say what {signal} does"
        );
    }
}
