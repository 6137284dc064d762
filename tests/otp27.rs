//! OTP 27 through epmdpxy: the real-OTP core loop (register, mesh, cut,
//! held past the tick, fix, mesh) with OTP 27 nodes, with a mixed cluster
//! of the host's OTP (25 on Debian 12) and OTP 27 nodes, and with such a
//! mixed cluster on TLS distribution.
//!
//! OTP 27 comes from a Debian trixie root (`debootstrap --variant=minbase
//! trixie` plus `erlang-base` and `erlang-ssl`), built and cached by `.ci/otp27-root`; its
//! place is `$EPMDPXY_OTP27_ROOT`, default /var/cache/epmdpxy/trixie-root.
//! Each node runs as `chroot ROOT erl ...`: the root shares the host's
//! network, so its nodes reach epmdpxy on 127.0.0.1, and its /etc/hosts
//! is the host's (copied by the script), so the host name resolves alike.
//!
//! /proc is not mounted in the root: OTP 27's erl boots, distributes and
//! runs these tests without it (measured), so a test that crashes or is
//! killed can leave no mount behind.
//!
//! Without the root (or `chroot` rights) the tests are skipped with a
//! note, except when `CI` is set, where they fail. What ran is printed
//! past libtest's capture, so the CI log shows it.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    announce, check_views, connect_missing, full_mesh, islands, require_erl, run_with_deadline,
    wait_until, wait_until_ok, ErlNode, NodeOptions, Proxy,
};

/// Where `.ci/otp27-root` puts the root unless told otherwise.
const DEFAULT_ROOT: &str = "/var/cache/epmdpxy/trixie-root";
/// The environment variable that overrides it (`.ci/run` exports it).
const ROOT_ENV: &str = "EPMDPXY_OTP27_ROOT";
/// The release the root must have.
const ROOT_RELEASE: &str = "27";
/// How long the probe `erl` in the root may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a cut or a heal may take to show in every node's `nodes()`.
/// With `net_ticktime 2` a silent link is declared down after 2–3 s.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long connect_all alone gets to rebuild the mesh after a fix before
/// missing pairs are pinged directly.
const MERGE_GRACE: Duration = Duration::from_secs(5);
/// The tick of every node (`-kernel net_ticktime`).
const TICK_SECONDS: u32 = 2;
/// How long the islands must stay apart once the cut shows: three ticks,
/// so a tick that got through the cut would have rejoined them.
const HELD: Duration = Duration::from_secs(3 * TICK_SECONDS as u64);

/// The root's path: `$EPMDPXY_OTP27_ROOT`, else the default.
fn root_path() -> PathBuf {
    std::env::var_os(ROOT_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// Checks that `chroot ROOT erl` runs and is OTP 27; the command prefix
/// for nodes in it.
fn probe_root() -> Result<Vec<String>, String> {
    let root = root_path();
    let fix = "build it with `sudo .ci/otp27-root` (debootstrap trixie + erlang-base)";
    if !root.join("usr/bin/erl").is_file() {
        return Err(format!(
            "no OTP 27 root at {} ({ROOT_ENV}); {fix}",
            root.display()
        ));
    }
    let root = root.to_string_lossy().into_owned();
    let mut command = Command::new("chroot");
    command
        .args([root.as_str(), "erl", "-noshell", "-start_epmd", "false"])
        .args([
            "-eval",
            "io:format(\"~s~n\", [erlang:system_info(otp_release)]), halt().",
        ]);
    let (status, output) = run_with_deadline(command, PROBE_TIMEOUT);
    match output.trim() {
        ROOT_RELEASE if status.success() => Ok(vec!["chroot".to_owned(), root]),
        _ => Err(format!(
            "`chroot {root} erl` does not run OTP {ROOT_RELEASE} ({status}): {:?}; {fix}",
            output.trim()
        )),
    }
}

/// Gate: the prefix for OTP 27 nodes, or `None` after a skip note (a
/// failure when `CI` is set).
fn require_otp27(test: &str) -> Option<Vec<String>> {
    match probe_root() {
        Ok(prefix) => Some(prefix),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: {why}; CI is set, so this test must run")
        }
        Err(why) => {
            announce(&format!("SKIPPED otp27::{test}: {why}"));
            None
        }
    }
}

/// `"27 (erts 15.2.7)"` as the node reports it.
fn release_of(node: &mut ErlNode) -> String {
    let reply = node.eval(
        "erlang:system_info(otp_release) ++ \" (erts \" ++ erlang:system_info(version) ++ \")\"",
    );
    reply.trim_matches('"').to_owned()
}

/// Asserts every node runs `release` and returns its description (for the
/// log line), e.g. `OTP 27 (erts 15.2.7) on a_1@vm,b_1@vm`.
fn expect_release(nodes: &mut [&mut ErlNode], release: &str) -> String {
    let mut seen = Vec::new();
    for node in nodes.iter_mut() {
        let reported = release_of(node);
        assert!(
            reported.starts_with(&format!("{release} ")),
            "node {} should run OTP {release}, reports {reported:?}",
            node.full_name()
        );
        seen.push((reported, node.full_name().to_owned()));
    }
    let names: Vec<&str> = seen.iter().map(|(_, name)| name.as_str()).collect();
    let described = seen.first().map(|(r, _)| r.as_str()).unwrap_or("?");
    format!("OTP {described} on {}", names.join(","))
}

/// The core loop over running nodes: all registered; a full mesh; `cut
/// left | right` shows as two islands; the cut holds for `HELD` past that
/// and a ping across fails; `fix` and the mesh is whole again.
fn core_loop(proxy: &Proxy, nodes: &mut [ErlNode], left: &[usize], right: &[usize]) {
    let started = Instant::now();
    let mut want: Vec<String> = nodes.iter().map(|n| n.short_name().to_owned()).collect();
    want.sort();
    assert_eq!(proxy.registered_names(), want, "every node registered");

    let mesh = full_mesh(nodes.len());
    wait_until_ok(CONVERGE_TIMEOUT, "a full mesh", || {
        connect_missing(nodes, &mesh);
        check_views(nodes, &mesh)
    });
    eprintln!("full mesh after {:?}", started.elapsed());

    let side = |indexes: &[usize], nodes: &[ErlNode]| {
        let names: Vec<&str> = indexes.iter().map(|&i| nodes[i].short_name()).collect();
        names.join(",")
    };
    let spec = format!("{} | {}", side(left, nodes), side(right, nodes));
    let reply = proxy.ctl(&format!("cut {spec}"));
    assert!(reply.starts_with("OK cut"), "cut {spec}: {reply:?}");
    let cut_at = Instant::now();
    let split = islands(nodes.len(), &[left, right]);
    wait_until_ok(CONVERGE_TIMEOUT, &format!("islands {spec}"), || {
        check_views(nodes, &split)
    });
    let apart_at = Instant::now();
    eprintln!("partition visible after {:?}", cut_at.elapsed());

    // Held: a new link across is held too (the ping gives up after
    // net_setuptime), and for HELD the islands stay apart at every poll.
    let across = nodes[right[0]].full_name().to_owned();
    assert!(
        !nodes[left[0]].ping(&across),
        "a ping across the cut {spec} got through"
    );
    while apart_at.elapsed() < HELD {
        if let Err(why) = check_views(nodes, &split) {
            panic!("the cut {spec} did not hold: {why}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check_views(nodes, &split).unwrap_or_else(|why| panic!("the cut {spec} did not hold: {why}"));
    eprintln!("cut held for {:?}", apart_at.elapsed());

    let reply = proxy.ctl(&format!("fix {spec}"));
    assert!(reply.starts_with("OK"), "fix {spec}: {reply:?}");
    let fixed_at = Instant::now();
    wait_until(CONVERGE_TIMEOUT, "a ping across after the fix", || {
        nodes[left[0]].ping(&across)
    });
    let mut extra_pings = 0;
    wait_until_ok(CONVERGE_TIMEOUT, "a full mesh again after the fix", || {
        if fixed_at.elapsed() > MERGE_GRACE {
            extra_pings += connect_missing(nodes, &mesh);
        }
        check_views(nodes, &mesh)
    });
    eprintln!(
        "full mesh again after {:?} ({extra_pings} extra pings); loop took {:?}",
        fixed_at.elapsed(),
        started.elapsed()
    );
}

fn options() -> NodeOptions {
    // Default connect_all and global, as a real cluster runs.
    NodeOptions {
        net_ticktime: TICK_SECONDS,
        connect_all: true,
        hidden: false,
    }
}

#[test]
fn otp27_core_loop() {
    let Some(prefix) = require_otp27("otp27_core_loop") else {
        return;
    };
    let started = Instant::now();
    let proxy = Proxy::start(&["-v"]);
    let mut nodes = proxy.start_nodes_with_prefix(&prefix, &["a", "b", "c", "d"], &options());
    let ran = expect_release(&mut nodes.iter_mut().collect::<Vec<_>>(), ROOT_RELEASE);
    core_loop(&proxy, &mut nodes, &[0, 1], &[2, 3]);
    announce(&format!(
        "otp27::otp27_core_loop ran {ran} (root {}) in {:.1?}",
        prefix[1],
        started.elapsed()
    ));
}

#[test]
fn mixed_host_otp_and_otp27_cluster() {
    if !require_erl() {
        return;
    }
    let Some(prefix) = require_otp27("mixed_host_otp_and_otp27_cluster") else {
        return;
    };
    let started = Instant::now();
    let proxy = Proxy::start(&["-v"]);
    let options = options();
    let (host, root) = std::thread::scope(|scope| {
        let host = scope.spawn(|| proxy.start_nodes(&["h1", "h2"], &options));
        let root = scope.spawn(|| proxy.start_nodes_with_prefix(&prefix, &["r1", "r2"], &options));
        let join = |handle: std::thread::ScopedJoinHandle<'_, Vec<ErlNode>>| {
            handle
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        };
        (join(host), join(root))
    });
    // [h1, r1, h2, r2]: each island mixes both releases, and the cut
    // crosses both (h1-h2, r1-r2) and mixed pairs (h1-r2, r1-h2).
    let mut nodes: Vec<ErlNode> = Vec::new();
    for (h, r) in host.into_iter().zip(root) {
        nodes.push(h);
        nodes.push(r);
    }
    let host_release = release_of(&mut nodes[0]);
    assert!(
        !host_release.starts_with(&format!("{ROOT_RELEASE} ")),
        "the host's erl is OTP {host_release}: a mixed cluster needs another release than {ROOT_RELEASE}"
    );
    let host_major = host_release.split(' ').next().unwrap_or("").to_owned();
    let (mut evens, mut odds): (Vec<&mut ErlNode>, Vec<&mut ErlNode>) = (Vec::new(), Vec::new());
    for (i, node) in nodes.iter_mut().enumerate() {
        if i % 2 == 0 {
            evens.push(node);
        } else {
            odds.push(node);
        }
    }
    let ran_host = expect_release(&mut evens, &host_major);
    let ran_root = expect_release(&mut odds, ROOT_RELEASE);
    core_loop(&proxy, &mut nodes, &[0, 1], &[2, 3]);
    announce(&format!(
        "otp27::mixed_host_otp_and_otp27_cluster ran {ran_host} with {ran_root} (root {}) in {:.1?}",
        prefix[1],
        started.elapsed()
    ));
}

/// Starts a TLS-distribution node (`-proto_dist inet_tls`) through
/// `prefix` (empty: the host's `erl`), reading its options at `optfile`
/// as the node sees it.
fn tls_node(proxy: &Proxy, prefix: &[String], base: &str, optfile: &str) -> ErlNode {
    let name = proxy.unique_name(base);
    let mut command = common::erl::erl_command(prefix);
    command
        .args(["-noshell", "-sname", &name, "-setcookie", &proxy.cookie()])
        .args(["-start_epmd", "false", "-connect_all", "true"])
        .args(["-kernel", "net_ticktime", &TICK_SECONDS.to_string()])
        .args(["-proto_dist", "inet_tls", "-ssl_dist_optfile", optfile])
        .env("ERL_EPMD_PORT", proxy.epmd_port.to_string());
    let mut node = ErlNode::spawn(&mut command, &name);
    node.wait_distributed(Duration::from_secs(30));
    node
}

/// TLS distribution across releases: two OTP 25 and two OTP 27 nodes,
/// all with encrypted handshakes, are meshed, cut, held and healed through
/// epmdpxy, which learns every link's ends from the processes that opened
/// them (issue "OK means it happened").
#[test]
fn mixed_tls_cluster_is_cut_and_healed() {
    if !require_erl() || !common::require_program("openssl", "openssl") {
        return;
    }
    let Some(prefix) = require_otp27("mixed_tls_cluster_is_cut_and_healed") else {
        return;
    };
    let started = Instant::now();
    // The certificate lives inside the root, so both sides can read it:
    // the host's nodes by its full path, the root's by its own.
    let inside = format!("/tmp/epmdpxy-tls-{}", std::process::id());
    let outside = format!("{}{inside}", prefix[1]);
    std::fs::create_dir_all(&outside).expect("a directory in the root");
    let _cleanup = RemoveOnDrop(PathBuf::from(&outside));
    let (cert, key) = common::tls::make_cert(std::path::Path::new(&outside));
    let host_options = format!("{outside}/host.conf");
    let root_options = format!("{inside}/root.conf");
    let text = |path: &std::path::Path| path.to_string_lossy().into_owned();
    common::tls::write_options(
        std::path::Path::new(&host_options),
        &text(&cert),
        &text(&key),
    );
    common::tls::write_options(
        std::path::Path::new(&format!("{outside}/root.conf")),
        &format!("{inside}/cert.pem"),
        &format!("{inside}/key.pem"),
    );
    let proxy = Proxy::start(&["-v"]);
    let mut nodes = vec![
        tls_node(&proxy, &[], "th1", &host_options),
        tls_node(&proxy, &prefix, "tr1", &root_options),
        tls_node(&proxy, &[], "th2", &host_options),
        tls_node(&proxy, &prefix, "tr2", &root_options),
    ];
    core_loop(&proxy, &mut nodes, &[0, 1], &[2, 3]);
    // Every link's initiator was learnt from its process, none unknown.
    let links = proxy.links();
    assert!(
        !links.is_empty() && links.iter().all(|l| l.contains("from_by=process")),
        "{links:#?}"
    );
    announce(&format!(
        "otp27::mixed_tls_cluster_is_cut_and_healed ran TLS distribution on OTP 25 and 27 (root {}) in {:.1?}",
        prefix[1],
        started.elapsed()
    ));
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
