//! `epmdpxy ctl` for a newcomer (issue 17): the control address from the
//! environment (`EPMDPXY_CONTROL=[host:]port`, so a proxy on another port
//! does not need `--control-port` on every call; flags beat it, and it
//! beats `EPMDPXY_AT`), and usage errors — no command, a bad value — exit
//! 64 with the right form on stderr, not 2 ("cannot connect").

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::process::run_text;
use common::Proxy;

const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// `epmdpxy ctl ARGS` with exactly the `EPMDPXY_*` variables in `env`;
/// (exit code, stdout, stderr).
fn ctl(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_epmdpxy"));
    command
        .arg("ctl")
        .args(args)
        .env_remove("EPMDPXY_AT")
        .env_remove("EPMDPXY_CONTROL")
        .envs(env.iter().copied());
    run_text(&mut command, "", CTL_TIMEOUT)
}

/// A port nothing listens on.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port().to_string()
}

#[test]
fn the_control_address_comes_from_the_environment() {
    let proxy = Proxy::start(&[]);
    let port = proxy.control_port.to_string();
    let dead = closed_port();
    let ok = |(code, out, err): (i32, String, String), what: &str| {
        assert_eq!(code, 0, "{what}: {out}{err}");
        assert!(out.starts_with("OK 0 faults"), "{what}: {out}");
    };
    ok(
        ctl(&[("EPMDPXY_CONTROL", &port)], &["status"]),
        "port alone",
    );
    let with_host = format!("127.0.0.1:{port}");
    ok(
        ctl(&[("EPMDPXY_CONTROL", &with_host)], &["status"]),
        "host:port",
    );
    let at_dead = format!("127.0.0.1:{dead}");
    ok(
        ctl(
            &[("EPMDPXY_CONTROL", &port), ("EPMDPXY_AT", &at_dead)],
            &["status"],
        ),
        "EPMDPXY_CONTROL beats EPMDPXY_AT",
    );
    ok(
        ctl(
            &[("EPMDPXY_CONTROL", &dead)],
            &["--control-port", &port, "status"],
        ),
        "--control-port beats EPMDPXY_CONTROL",
    );
    let (code, out, err) = ctl(
        &[("EPMDPXY_CONTROL", &port)],
        &["--control-port", &dead, "status"],
    );
    assert_eq!(
        code, 2,
        "the flag is used even when it leads nowhere: {out}{err}"
    );
}

#[test]
fn bad_values_and_a_missing_command_are_usage_errors() {
    // Nothing needs to listen: a usage error is found before connecting.
    let port = closed_port();
    // (environment, arguments, what stderr must say)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (&[], &[], "Usage: epmdpxy ctl"),
        (&[("EPMDPXY_CONTROL", &port)], &[], "no command given"),
        (
            &[("EPMDPXY_CONTROL", "localhost")],
            &["status"],
            "[host:]port",
        ),
        (&[("EPMDPXY_CONTROL", "99999")], &["status"], "[host:]port"),
        (&[("EPMDPXY_AT", "h:0")], &["status"], "HOST[:PORT]"),
        (&[], &["--at", "h:x", "status"], "HOST[:PORT]"),
        (
            &[],
            &["--at", "h", "--control-port", "1", "status"],
            "not both",
        ),
    ];
    for (env, args, says) in cases {
        let (code, out, err) = ctl(env, args);
        assert_eq!(code, 64, "{env:?} {args:?}: {out}{err}");
        assert!(out.is_empty(), "{env:?} {args:?}: {out}");
        assert!(
            err.contains(says),
            "{env:?} {args:?} should say {says:?}: {err}"
        );
    }
    // A flag argh cannot parse is a usage error too.
    let (code, _, err) = ctl(&[], &["--control-port", "many", "status"]);
    assert_eq!(code, 64, "{err}");
}
