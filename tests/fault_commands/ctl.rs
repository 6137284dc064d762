//! Without Erlang: the `epmdpxy ctl` client's exit codes and scenarios
//! from stdin, `status` lines that replay to the same `status`, durations
//! `status` can print exactly, and the cap on fault rules.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::proxy::epmdpxy_ctl;
use crate::common::Proxy;

/// Runs `epmdpxy ctl --control-port PORT ARGS...` with `stdin`; returns the
/// exit code, stdout and stderr. Fails the test after 20 s.
fn run_ctl(port: u16, args: &[&str], stdin: &str) -> (i32, String, String) {
    let port = port.to_string();
    let mut words = vec!["--control-port", port.as_str()];
    words.extend_from_slice(args);
    epmdpxy_ctl(None, &words, stdin)
}

#[test]
fn ctl_exit_codes_and_scenarios_from_stdin() {
    let proxy = Proxy::start(&[]);
    let port = proxy.control_port;

    let (code, out, err) = run_ctl(port, &["status"], "");
    assert_eq!(code, 0, "status: {out}{err}");
    assert!(
        out.starts_with("OK 0 faults") && out.lines().count() == 2,
        "{out}"
    );

    // Words are joined with spaces, so `|` may come as its own argument.
    let (code, out, err) = run_ctl(port, &["cut", "x1", "|", "y1"], "");
    assert_eq!(code, 0, "cut: {out}{err}");
    assert!(out.starts_with("OK cut x1 | y1"), "{out}");

    // `->` as a word of its own is a command word too, not an option.
    let (code, out, err) = run_ctl(port, &["cut", "x2", "->", "y2"], "");
    assert_eq!(code, 0, "cut ->: {out}{err}");
    assert!(out.starts_with("OK cut x2 -> y2"), "{out}");
    let (code, out, err) = run_ctl(port, &["fix", "x2", "->", "y2"], "");
    assert_eq!((code, out.as_str()), (0, "OK fix x2 -> y2\n"), "{err}");

    let (code, out, err) = run_ctl(port, &["frobnicate", "x1"], "");
    assert_eq!(code, 1, "unknown command: {out}{err}");
    assert!(out.starts_with("ERR "), "{out}");
    let (code, out, _) = run_ctl(port, &["delay x1 | y1 fast"], "");
    assert_eq!(code, 1, "bad duration: {out}");
    assert!(out.starts_with("ERR "), "{out}");

    // Nobody listening: exit 2.
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let (code, out, err) = run_ctl(closed_port, &["status"], "");
    assert_eq!(code, 2, "no control port: {out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("cannot connect"), "{err}");
    let (code, _, err) = run_ctl(closed_port, &["-"], "status\n");
    assert_eq!(code, 2, "no control port with -: {err}");

    // A scenario on stdin stops at the first ERR: later lines are not sent.
    let scenario =
        "# a scenario\n\nisolate s1\nsleep 1s\n  throttle x1 | y1 64kbps\nfrobnicate\nisolate s2\n";
    let started = Instant::now();
    let (code, out, err) = run_ctl(port, &["-"], scenario);
    let took = started.elapsed();
    assert_eq!(code, 1, "scenario with an error: {out}{err}");
    let replies: Vec<&str> = out.lines().collect();
    assert_eq!(
        replies.len(),
        4,
        "one reply per command up to the ERR: {out}"
    );
    assert!(replies[0].starts_with("OK isolate s1"), "{out}");
    assert_eq!(replies[1], "OK slept 1s");
    assert!(
        replies[2].starts_with("OK throttle x1 | y1 64kbps"),
        "{out}"
    );
    assert!(replies[3].starts_with("ERR "), "{out}");
    assert!(took >= Duration::from_secs(1), "sleep 1s took {took:?}");
    let status = proxy.ctl_ok("status");
    // the header also carries the seed: compare the fault lines
    let faults: Vec<&str> = status.lines().skip(1).collect();
    assert!(status.starts_with("OK 3 faults"), "{status}");
    assert_eq!(
        faults,
        [
            "cut x1 | y1",
            "isolate s1",
            "throttle x1 | y1 64kbps",
            "END"
        ],
        "the commands after the ERR must not be applied"
    );

    // A clean scenario exits 0.
    let (code, out, err) = run_ctl(port, &["-"], "heal\nstatus\n");
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "OK healed");
    assert!(lines[1].starts_with("OK 0 faults seed="), "{out}");
    assert_eq!(lines[2], "END");
}

#[test]
fn status_lines_replay_to_the_same_status() {
    let proxy = Proxy::start(&[]);
    let faults = [
        "cut r1,r2 | r3",
        "cut r4 -> r5",
        "cut r6 | r7 | r8",
        "cut r9@hosta -> *@hostb",
        "cut r10 -> r11",
        "cut r11 -> r10",
        "isolate r12,r13",
        "isolate *@hostc",
        "delay r1 | r3 300ms jitter 50ms",
        "delay r2 | r4@hosta,r5 1.5s",
        "delay r6 | r7 2s",
        "delay r6 | r7 250ms",
        "throttle r1 | r2,r3 64kbps",
        "throttle r6 | r7 64KiB/s",
        "throttle r8 | r9 1.5mbps",
        "delay r8 | r9 10ms",
        "cut R14 | r14",
    ];
    for fault in faults {
        proxy.ctl_ok(fault);
    }
    // Removing part of a fault leaves the rest described.
    proxy.ctl_ok("fix r2 | r3");
    proxy.ctl_ok("clear r1 | r2");

    let status = proxy.ctl_ok("status");
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines.last(), Some(&"END"), "{status}");
    let fault_lines = &lines[1..lines.len() - 1];
    assert!(
        lines[0].starts_with(&format!("OK {} faults", fault_lines.len())),
        "{status}"
    );
    eprintln!("status to replay:\n{status}");
    for expected in [
        "cut r1 | r3",
        "cut r4 -> r5",
        "cut r10 | r11",
        "isolate *@hostc",
        "delay r1 | r3 300ms jitter 50ms",
        "delay r6 | r7 250ms",
        "throttle r1 | r3 64kbps",
    ] {
        assert!(
            fault_lines.contains(&expected),
            "{expected:?} missing:\n{status}"
        );
    }
    assert!(
        !fault_lines
            .iter()
            .any(|l| l.contains("cut r2 | r3") || l.contains("r1 | r2 64kbps")),
        "removed faults still described:\n{status}"
    );

    assert_eq!(
        replay_status(&proxy),
        status,
        "status after replaying status"
    );
}

/// Heals, feeds the fault lines of `status` back one by one, and returns
/// the new `status`.
fn replay_status(proxy: &Proxy) -> String {
    let status = proxy.ctl_ok("status");
    proxy.ctl_ok("heal");
    let healed = proxy.ctl_ok("status");
    assert!(
        healed.starts_with("OK 0 faults") && healed.lines().count() == 2,
        "{healed}"
    );
    for line in status.lines().skip(1).filter(|line| *line != "END") {
        proxy.ctl_ok(line);
    }
    proxy.ctl_ok("status")
}

/// Durations are accepted with a decimal point, so `status` must show
/// them without rounding: a delay of 0.5 ms is not "0ms", and a jitter of
/// 0.4 ms must not replay as no jitter at all.
#[test]
fn sub_millisecond_durations_are_refused_so_status_stays_exact() {
    // `status` must replay exactly, so a duration it could not print
    // exactly is refused up front instead of being rounded.
    let proxy = Proxy::start(&[]);
    for line in ["delay p1 | p2 1.2345s jitter 0.4ms", "delay p3 | p4 0.5ms"] {
        let reply = proxy.ctl(line);
        assert!(
            reply.starts_with("ERR") && reply.contains("whole milliseconds"),
            "{line}: {reply}"
        );
    }
    proxy.ctl_ok("delay p1 | p2 1.234s jitter 1ms");
    let status = proxy.ctl_ok("status");
    assert!(
        status.contains("delay p1 | p2 1234ms jitter 1ms"),
        "{status}"
    );
    assert_eq!(
        replay_status(&proxy),
        status,
        "status after replaying status"
    );
}

/// One control line may name hundreds of nodes; the rules every relayed
/// chunk is checked against are capped (10,000), so such a line is refused
/// as a whole and nothing of it is applied.
#[test]
fn the_number_of_fault_rules_is_capped() {
    let proxy = Proxy::start(&[]);
    let island = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // 2 × 100 × 100 = 20,000 directed pairs
    let reply = proxy.ctl(&format!("cut {} | {}", island("a", 100), island("b", 100)));
    assert!(reply.starts_with("ERR too many faults"), "{reply}");
    let status = proxy.ctl_ok("status");
    assert!(
        status.starts_with("OK 0 faults"),
        "nothing was applied: {status}"
    );
    // 2 × 50 × 50 = 5,000 pairs fit, twice more do not
    proxy.ctl_ok(&format!("cut {} | {}", island("a", 50), island("b", 50)));
    proxy.ctl_ok(&format!(
        "delay {} | {} 10ms",
        island("c", 50),
        island("d", 49)
    ));
    let reply = proxy.ctl(&format!(
        "throttle {} | {} 1mbps",
        island("e", 10),
        island("f", 10)
    ));
    assert!(reply.starts_with("ERR too many faults"), "{reply}");
    // status shows each both-ways pair once: 2,500 cuts + 2,450 delays
    assert!(proxy.ctl_ok("status").starts_with("OK 4950 faults"));
}
