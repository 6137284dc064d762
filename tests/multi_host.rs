//! One epmdpxy per host: `epmdpxy ctl --at` sends each command to every
//! listed proxy, and a cut given to all of them splits a cluster that spans
//! hosts.
//!
//! - `ctl_at_*`: two proxies on loopback (no root, no Erlang needed): the
//!   fan-out, the address prefixes, `$EPMDPXY_AT`, and the exit codes.
//! - `three_hosts_*`: three "hosts" built as Linux network namespaces joined
//!   by a bridge, each running its own epmdpxy as the EPMD on 4369 and two
//!   OTP nodes started with `-name x@10.200.0.N`. One `ctl --at` command
//!   cuts host 1 from hosts 2 and 3; Erlang sees the two islands, links
//!   opened during the cut fail in both directions (a link crosses only the
//!   proxy of the host it goes *to*, so each direction meets a different
//!   proxy holding the same cut), one command heals, and the mesh forms
//!   again. Needs root and iproute2: skipped with a message elsewhere, but
//!   fails when env `CI` is set, so `.ci/run` (root on Debian) always runs it.
//!
//! The nodes use the default `connect_all` (a real cluster: one ping
//! connects everyone, and `global` prevents overlapping partitions). Hosts
//! 1 and 2 give epmdpxy their address (loopback is added), host 3 gives
//! `0.0.0.0`; the second node of each host listens on the host's address
//! only (`inet_dist_use_interface`), while every node registers over
//! loopback. The nodes are `common::ErlNode`s spawned inside the
//! namespaces with `-name`.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::netns;
use common::process::{run_text, Daemon};
use common::proxy::{epmdpxy_ctl, EPMDPXY};
use common::{check_views, require_erl, wait_until, wait_until_ok, ErlNode, Proxy};

/// How long one `epmdpxy ctl` run may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// `epmdpxy ctl ARGS` on loopback, with `EPMDPXY_AT` as given (or unset).
fn ctl(at_env: Option<&str>, args: &[&str]) -> (i32, String, String) {
    epmdpxy_ctl(at_env, args, "")
}

#[test]
fn ctl_at_sends_each_command_to_every_proxy() {
    // fixed seeds: they show in the status header compared below
    let one = Proxy::start(&["--seed", "1"]);
    let two = Proxy::start(&["--seed", "2"]);
    let a = format!("127.0.0.1:{}", one.control_port);
    let b = format!("127.0.0.1:{}", two.control_port);
    let both = format!("{a},{b}");

    let (code, out, err) = ctl(None, &["--at", &both, "cut n1 | n2"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "one answer per proxy: {out}");
    assert!(
        lines[0].starts_with(&format!("{a}: OK cut n1 | n2")),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("{b}: OK cut n1 | n2")),
        "{out}"
    );
    for proxy in [&one, &two] {
        assert!(
            proxy.ctl("status").lines().any(|l| l == "cut n1 | n2"),
            "every proxy holds the cut: {}",
            proxy.ctl("status")
        );
    }

    // Multi-line answers: every line carries its proxy's address, in order.
    let (code, out, _) = ctl(None, &["--at", &both, "status"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            format!("{a}: OK 1 fault seed=1"),
            format!("{a}: cut n1 | n2"),
            format!("{a}: END"),
            format!("{b}: OK 1 fault seed=2"),
            format!("{b}: cut n1 | n2"),
            format!("{b}: END"),
        ],
        "{out}"
    );

    // The list may come from the environment instead.
    let (code, out, err) = ctl(Some(&both), &["heal"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out, format!("{a}: OK healed\n{b}: OK healed\n"));
    for proxy in [&one, &two] {
        let status = proxy.ctl("status");
        assert!(
            status.starts_with("OK 0 faults") && status.lines().count() == 2,
            "{status}"
        );
    }

    // An explicit single target beats the environment, and its output is
    // the plain single-target form.
    let port = one.control_port.to_string();
    let (code, out, _) = ctl(Some(&both), &["--control-port", &port, "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("OK 0 faults") && out.lines().count() == 2,
        "{out}"
    );
    // ... but --at together with --control-port is a usage error.
    let (code, _, err) = ctl(None, &["--at", &both, "--control-port", &port, "heal"]);
    assert_eq!(code, 64, "{err}");

    // A script on stdin: each command goes to every proxy before the next.
    let script = "# one fault everywhere\ncut n3 | n4\n\nstatus\nheal\n";
    let (code, out, err) = epmdpxy_ctl(Some(&both), &["-"], script);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let per_proxy = |answer: &[&str]| -> Vec<String> {
        [&a, &b]
            .iter()
            .flat_map(|proxy| answer.iter().map(move |line| format!("{proxy}: {line}")))
            .collect()
    };
    let mut want = per_proxy(&["OK cut n3 | n4"]);
    want.extend(per_proxy(&["OK 1 fault", "cut n3 | n4", "END"]));
    want.extend(per_proxy(&["OK healed"]));
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), want.len(), "{out}");
    for (got, want) in got.iter().zip(&want) {
        // `starts_with`: the cut's answer adds a note about unregistered names.
        assert!(
            got.starts_with(want.as_str()),
            "{got:?} should start {want:?}:\n{out}"
        );
    }

    // ERR (here from both proxies): exit 1, every answer printed.
    let (code, out, _) = ctl(None, &["--at", &both, "cut n1 |"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().count() == 2 && out.lines().all(|l| l.contains(": ERR ")));

    // A proxy that cannot be reached: exit 2, and nothing is sent to the
    // others (a fault on part of the cluster would be worse than none).
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let with_dead = format!("{a},127.0.0.1:{closed_port}");
    let (code, out, err) = ctl(None, &["--at", &with_dead, "cut n1 | n2"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(&format!("127.0.0.1:{closed_port}: ")),
        "the failure names the address: {err}"
    );
    let status = one.ctl("status");
    assert!(
        status.starts_with("OK 0 faults") && status.lines().count() == 2,
        "nothing was sent: {status}"
    );

    // A bad list is a usage error, found before anything is sent.
    let (code, _, err) = ctl(None, &["--at", "127.0.0.1:0", "heal"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("the form is HOST[:PORT]"), "{err}");
}

// ---------------------------------------------------------------------------
// Three hosts as network namespaces
// ---------------------------------------------------------------------------

/// Hosts 1..=3 get 10.200.0.1 .. 10.200.0.3 on a bridge that lives in a
/// fourth namespace, so nothing is added to the machine's own network.
const HOSTS: usize = 3;
const EPMD_PORT: &str = "4369";
const CONTROL_PORT: &str = "4370";
/// How long a cut or a heal may take to show in every node's `nodes()`
/// (`net_ticktime 2`: a silent link is declared down after 2–3 s).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to boot on a busy machine.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(40);

fn host_address(host: usize) -> String {
    format!("{SUBNET}.{host}")
}

fn control_at(host: usize) -> String {
    format!("{}:{CONTROL_PORT}", host_address(host))
}

/// Namespace names of one run start with this; the PID keeps parallel
/// runs apart and lets a later run remove what a killed run left behind.
const NETNS_PREFIX: &str = "epmdpxy-mh-";

/// The hosts' subnet (a /24): host N is `<SUBNET>.N`.
const SUBNET: &str = "10.200.0";

/// The namespaces of one run; deleted on drop (every exit path). Declare it
/// before the processes that run inside, so they are killed first.
type Network = netns::Bridged;

/// Gate for the namespace test: true if it can run here. Without root or
/// iproute2 (or where namespaces cannot be made) it prints why and returns
/// false — or panics when env `CI` is set, since `.ci/run` must run it.
fn can_build_namespaces() -> Result<(), String> {
    if !common::program_on_path("ip") {
        return Err("`ip` (iproute2) is not on PATH".to_owned());
    }
    let euid = std::fs::metadata("/proc/self").map(|meta| meta.uid());
    if euid.ok() != Some(0) {
        return Err("creating network namespaces needs root".to_owned());
    }
    Ok(())
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("the three-host namespace test cannot run but CI is set: {why}");
    }
    eprintln!("SKIPPED: the three-host namespace test: {why}");
}

/// An epmdpxy running inside one host's namespace as its EPMD, on the
/// standard ports. Not a `Proxy`: that one picks free ports on the test's
/// own loopback, where it also reaches the control port; this one's is on
/// the host's address, reached with `ctl_from_host`.
fn start_host_proxy(net: &Network, host: usize, listen: &str) -> Daemon {
    let address = host_address(host);
    let mut daemon = Daemon::spawn(
        net.exec(host, EPMDPXY)
            .args(["--port", EPMD_PORT, "--control-port", CONTROL_PORT])
            // The test reaches the control ports from another namespace;
            // this prints the no-authentication warning, fine here.
            .args(["--address", listen, "--control-address", &address, "-v"]),
        &format!("epmdpxy on host {host}"),
    );
    let ready = daemon.wait_for_line(Duration::from_secs(20), |line| {
        line.contains(" ready ").then(|| line.to_owned())
    });
    match ready {
        Ok(line) => assert!(
            line.contains(&format!("addresses={listen},"))
                || line.contains(&format!("addresses={listen} ")),
            "host {host}: EPMD serves {listen}: {line}"
        ),
        Err(why) => panic!("host {host}: no ready line ({why}); log:\n{}", daemon.log()),
    }
    daemon
}

/// A real OTP node inside a host's namespace, `-name alive@10.200.0.N`,
/// registered with that host's proxy. Returns once spawned; the caller
/// waits for it with `wait_ready`.
fn spawn_host_node(
    net: &Network,
    host: usize,
    alive: &str,
    cookie: &str,
    extra: &[&str],
) -> ErlNode {
    let name = format!("{alive}@{}", host_address(host));
    ErlNode::spawn(
        net.exec(host, "erl")
            .args(["-noshell", "-name", &name, "-setcookie", cookie])
            .args(extra)
            .args(["-start_epmd", "false"])
            .args(["-kernel", "net_ticktime", "2"])
            .args(["-kernel", "net_setuptime", "3"])
            .env("ERL_EPMD_PORT", EPMD_PORT),
        &name,
    )
}

/// Waits until `node` is distributed (so registered) under the name it
/// was given, and answers.
fn wait_ready(node: &mut ErlNode) {
    node.wait_distributed(NODE_START_TIMEOUT);
    assert_eq!(
        node.full_name(),
        node.short_name(),
        "node() of {}; output:\n{}",
        node.short_name(),
        node.output()
    );
}

/// Runs `epmdpxy ctl` inside `host`'s namespace (from where every host's
/// control address is reachable over the bridge). Returns (exit code,
/// stdout); prints stderr when it fails.
fn ctl_from_host(net: &Network, host: usize, at_env: Option<&str>, args: &[&str]) -> (i32, String) {
    let mut command = net.exec(host, EPMDPXY);
    command.arg("ctl").args(args);
    match at_env {
        Some(value) => command.env("EPMDPXY_AT", value),
        None => command.env_remove("EPMDPXY_AT"),
    };
    command.env_remove("EPMDPXY_CONTROL");
    let (code, stdout, stderr) = run_text(&mut command, "", CTL_TIMEOUT);
    if code != 0 {
        eprintln!("ctl {args:?} exited {code}: stdout:\n{stdout}stderr:\n{stderr}");
    }
    (code, stdout)
}

/// The peers each node must see (indexes into `names`, for
/// `check_views`): every other node for which `together(a, b)` holds.
fn views(names: &[String], together: impl Fn(&str, &str) -> bool) -> Vec<Vec<usize>> {
    names
        .iter()
        .enumerate()
        .map(|(i, me)| {
            (0..names.len())
                .filter(|&j| j != i && together(me, &names[j]))
                .collect()
        })
        .collect()
}

fn host_of(name: &str) -> &str {
    name.split_once('@').map_or("", |(_, host)| host)
}

#[test]
fn three_hosts_one_command_cuts_and_heals_the_cluster() {
    if !require_erl() {
        return;
    }
    if let Err(why) = can_build_namespaces() {
        return skip_or_fail(&why);
    }
    let net = match Network::build(NETNS_PREFIX, SUBNET, HOSTS) {
        Ok(net) => net,
        Err(why) => return skip_or_fail(&why),
    };
    // Hosts 1 and 2 name their address (loopback is added), host 3 listens
    // on every address.
    let _proxies: Vec<Daemon> = (1..=HOSTS)
        .map(|h| match h {
            3 => start_host_proxy(&net, h, "0.0.0.0"),
            _ => start_host_proxy(&net, h, &host_address(h)),
        })
        .collect();
    let every_proxy = (1..=HOSTS).map(control_at).collect::<Vec<_>>().join(",");

    // The bridge forwards once its ports are up; every control port answering
    // from host 1 proves the hosts reach each other.
    wait_until(
        Duration::from_secs(20),
        "every control port reachable",
        || ctl_from_host(&net, 1, None, &["--at", &every_proxy, "status"]).0 == 0,
    );

    // The same two names on every host, as real clusters have them
    // (app@host1, app@host2, ...): n1 and n2.
    let cookie = format!("epmdpxy_mh_{}", std::process::id());
    let mut nodes: Vec<ErlNode> = Vec::new();
    for host in 1..=HOSTS {
        for alive in ["n1", "n2"] {
            // n2 listens on its host's address only, not on loopback: the
            // proxy must still reach it.
            let interface = format!("{{10,200,0,{host}}}");
            let extra: &[&str] = match alive {
                "n2" => &["-kernel", "inet_dist_use_interface", &interface],
                _ => &[],
            };
            nodes.push(spawn_host_node(&net, host, alive, &cookie, extra));
        }
    }
    for node in &mut nodes {
        wait_ready(node);
    }
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_owned()).collect();
    let [h1n1, h1n2, h2n1, _, _, h3n2] = [0, 1, 2, 3, 4, 5].map(|i| names[i].clone());

    // Each proxy has exactly its host's two nodes (they registered over
    // loopback), and `ctl --at` labels each answer with its proxy.
    let (code, out) = ctl_from_host(&net, 1, None, &["--at", &every_proxy, "nodes"]);
    assert_eq!(code, 0, "{out}");
    for host in 1..=HOSTS {
        let label = format!("{}: ", control_at(host));
        let mut registered: Vec<&str> = out
            .lines()
            .filter_map(|line| line.strip_prefix(&label))
            .filter(|line| !line.starts_with("OK") && *line != "END")
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        registered.sort_unstable();
        assert_eq!(registered, ["n1", "n2"], "host {host}: {out}");
    }

    // Before any link no proxy knows its nodes' hosts. A fault on n1 of
    // host 1 must not hold a link to n1 of host 2 (whose proxy only knows
    // "n1" until n1 answers), yet must hold the link to n1 of host 1.
    let narrow = "cut n1@10.200.0.1 | n2@10.200.0.3";
    let (code, out) = ctl_from_host(&net, 3, None, &["--at", &every_proxy, narrow]);
    assert_eq!(code, 0, "{out}");
    assert!(
        nodes[5].ping(&h2n1),
        "{narrow} must not cut {h3n2} from {h2n1}"
    );
    assert!(
        !nodes[5].ping(&h1n1),
        "{narrow} must cut {h3n2} from {h1n1}"
    );
    let (code, out) = ctl_from_host(&net, 3, None, &["--at", &every_proxy, "heal"]);
    assert_eq!(code, 0, "{out}");

    // One ping per peer from h1n1; connect_all makes the full mesh.
    let mesh = views(&names, |_, _| true);
    wait_until_ok(CONVERGE_TIMEOUT, "the full mesh", || {
        let seen = nodes[0].nodes();
        for other in names[1..].iter().filter(|o| !seen.contains(o)) {
            nodes[0].ping(other);
        }
        check_views(&mut nodes, &mesh)
    });

    // One command, sent from host 1 to all three proxies, cuts host 1 off.
    let islands = "cut *@10.200.0.1 | *@10.200.0.2,*@10.200.0.3";
    let (code, out) = ctl_from_host(&net, 1, None, &["--at", &every_proxy, islands]);
    assert_eq!(code, 0, "{out}");
    // Each proxy counts the live links it now holds: together, every link
    // between host 1's two nodes and the other four (one link per pair in
    // the full mesh), each held by the proxy of its target.
    let mut held = 0;
    for (h, line) in (1..=HOSTS).zip(out.lines()) {
        let head = format!("{}: OK {islands} (", control_at(h));
        let count = line
            .strip_prefix(&head)
            .and_then(|rest| {
                rest.strip_suffix(" live links held)")
                    .or(rest.strip_suffix(" live link held)"))
            })
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{line:?} should read {head}N live links held)\n{out}"));
        held += count;
    }
    assert_eq!(out.lines().count(), HOSTS, "{out}");
    assert_eq!(held, 2 * 4, "links held across the cut:\n{out}");

    let split = views(&names, |a, b| {
        (host_of(a) == "10.200.0.1") == (host_of(b) == "10.200.0.1")
    });
    wait_until_ok(CONVERGE_TIMEOUT, "the two islands", || {
        check_views(&mut nodes, &split)
    });

    // Links opened during the cut fail both ways: h1n1 -> h3n2 crosses
    // host 3's proxy, h3n2 -> h1n1 crosses host 1's, and both hold the cut.
    assert!(
        !nodes[0].ping(&h3n2),
        "{h1n1} reached {h3n2} during the cut"
    );
    assert!(
        !nodes[5].ping(&h1n1),
        "{h3n2} reached {h1n1} during the cut"
    );
    assert!(
        !nodes[2].ping(&h1n2),
        "{h2n1} reached {h1n2} during the cut"
    );
    // Inside each island links still work.
    assert!(nodes[0].ping(&h1n2));
    assert!(nodes[2].ping(&h3n2));
    check_views(&mut nodes, &split).unwrap_or_else(|why| panic!("after the pings: {why}"));

    // One command heals every host; this time the list comes from the
    // environment and the command from host 2.
    let (code, out) = ctl_from_host(&net, 2, Some(&every_proxy), &["heal"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.ends_with(": OK healed")).count(),
        HOSTS
    );

    // Reconnects are lazy: one ping across rejoins the islands.
    wait_until_ok(CONVERGE_TIMEOUT, "the full mesh again", || {
        if !nodes[5].ping(&h1n1) {
            return Err(format!("{h3n2} cannot reach {h1n1} yet"));
        }
        check_views(&mut nodes, &mesh)
    });
    // Dropped in reverse order: the nodes, the proxies, then the network.
}
