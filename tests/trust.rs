//! "OK means it happened" (issue 14), with real OTP nodes: a TLS cluster
//! is really cut, held and healed; a dynamically named node's link is
//! named and cut; a `-dist_listen false` node is cut with a truthful
//! reply; `fix` in full names removes a cut written with short names, and
//! a `fix` that removes nothing is an error (`epmdpxy ctl` exits 1).
//!
//! The nodes run with the default `connect_all` (what a real cluster
//! does) and `net_ticktime 2`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::erl::{await_mesh, await_views, islands};
use common::process::ScratchDir;
use common::proxy::epmdpxy_ctl;
use common::tls;
use common::{require_erl, require_program, wait_until, ErlNode, NodeOptions, Proxy};

/// Long enough for a node to notice a cut (net_ticktime 2) and for a
/// mesh to form or re-form under load.
const CONVERGE: Duration = Duration::from_secs(30);
/// How long a node may take to boot and register.
const BOOT: Duration = Duration::from_secs(20);

/// Starts `erl -sname NAME` against `proxy` with `extra` flags, and waits
/// until it is distributed.
fn start_node(proxy: &Proxy, base: &str, extra: &[&str]) -> ErlNode {
    let name = proxy.unique_name(base);
    let mut command = node_command(proxy, &["-sname", &name]);
    command.args(extra);
    let mut node = ErlNode::spawn(&mut command, &name);
    node.wait_distributed(BOOT);
    node
}

/// `erl` with the cookie, no epmd of its own, a short tick, and `naming`.
fn node_command(proxy: &Proxy, naming: &[&str]) -> Command {
    let mut command = Command::new("erl");
    command
        .arg("-noshell")
        .args(naming)
        .args(["-setcookie", &proxy.cookie(), "-start_epmd", "false"])
        .args([
            "-kernel",
            "net_ticktime",
            "2",
            "-kernel",
            "net_setuptime",
            "1",
        ])
        .env("ERL_EPMD_PORT", proxy.epmd_port.to_string());
    command
}

/// A self-signed certificate and the TLS distribution options file
/// (`-ssl_dist_optfile`) that uses it.
fn tls_options(dir: &ScratchDir) -> String {
    let (cert, key) = tls::make_cert(dir.path());
    let options = dir.path().join("ssl_dist.conf");
    let text = |path: &std::path::Path| path.to_string_lossy().into_owned();
    tls::write_options(&options, &text(&cert), &text(&key));
    text(&options)
}

/// The live links' lines (`links` without its head and END).
fn link_lines(proxy: &Proxy) -> Vec<String> {
    proxy.links()
}

/// Three TLS nodes mesh through the proxy, `cut a | b,c` holds for 5 s
/// while the nodes ping each other every second, and `fix` heals. Before
/// the proxy learnt TLS initiators from /proc, the reply said OK and a
/// and b kept seeing each other.
#[test]
fn a_tls_cluster_is_cut_held_and_healed() {
    if !require_erl() || !require_program("openssl", "openssl") {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    let dir = ScratchDir::new("tls");
    let options = tls_options(&dir);
    let tls = [
        "-proto_dist",
        "inet_tls",
        "-ssl_dist_optfile",
        options.as_str(),
    ];
    let mut nodes: Vec<ErlNode> = ["a", "b", "c"]
        .iter()
        .map(|base| start_node(&proxy, base, &tls))
        .collect();
    await_mesh(&mut nodes, CONVERGE, "a TLS mesh of 3");
    // Every end of every link is known, though no handshake was readable.
    let links = link_lines(&proxy);
    assert_eq!(links.len(), 3, "{links:#?}");
    for line in &links {
        assert!(line.contains("from_by=process"), "{line}");
        assert!(!line.contains("unknown"), "{line}");
    }
    let names: Vec<String> = nodes.iter().map(|n| n.short_name().to_owned()).collect();
    let cut = format!("cut {} | {},{}", names[0], names[1], names[2]);
    let reply = proxy.ctl(&cut);
    // Two links cross the cut (a few more while global reshuffles the
    // mesh); none is left uncovered.
    assert!(
        reply.starts_with(&format!("OK {cut} (")) && reply.ends_with(" live links held)"),
        "{reply}\n{:#?}",
        link_lines(&proxy)
    );

    let split = islands(3, &[&[0], &[1, 2]]);
    await_views(&mut nodes, &split, CONVERGE, "a alone, b and c together");
    // Held 5 s: every second each side tries the other, and fails.
    let began = Instant::now();
    let mut rounds = 0;
    while began.elapsed() < Duration::from_secs(5) || rounds < 4 {
        let round = Instant::now();
        let (b, c, a) = (
            nodes[1].full_name().to_owned(),
            nodes[2].full_name().to_owned(),
            nodes[0].full_name().to_owned(),
        );
        assert!(!nodes[0].ping(&b), "a reached b during the cut");
        assert!(!nodes[0].ping(&c), "a reached c during the cut");
        assert!(!nodes[1].ping(&a), "b reached a during the cut");
        assert!(nodes[1].ping(&c), "b lost c");
        rounds += 1;
        let rest = Duration::from_secs(1).saturating_sub(round.elapsed());
        std::thread::sleep(rest);
    }
    common::erl::check_views(&mut nodes, &split).unwrap_or_else(|why| panic!("after 5 s: {why}"));

    let fix = cut.replacen("cut", "fix", 1);
    assert_eq!(proxy.ctl(&fix), format!("OK {fix}"));
    await_mesh(&mut nodes, CONVERGE, "the TLS mesh again");
}

/// `-sname undefined`: the node asks the first node it connects to for a
/// name. The link's initiator comes from the target's `named:` status,
/// and a cut naming it holds the link.
#[test]
fn a_dynamically_named_node_is_named_and_cut() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    let mut host = start_node(&proxy, "host", &[]);
    let mut command = node_command(&proxy, &["-sname", "undefined"]);
    let mut guest = ErlNode::spawn(&mut command, "undefined");
    let target = host.full_name().to_owned();
    let connected = guest.eval(&format!("net_kernel:connect_node('{target}')"));
    assert_eq!(connected, "true", "{}", guest.output());
    let assigned = guest
        .eval("atom_to_list(node())")
        .trim_matches('"')
        .to_owned();
    assert!(assigned.contains('@'), "{assigned}");
    let links = link_lines(&proxy);
    let line = links
        .iter()
        .find(|line| line.contains(&format!(" -> {}", host.short_name())))
        .unwrap_or_else(|| panic!("no link to the host: {links:#?}"));
    assert!(
        line.contains(&format!(" {assigned} -> ")) && line.contains("from_by=status"),
        "the link is named by the status: {line}"
    );
    let alive = assigned.split('@').next().unwrap_or_default().to_owned();
    let cut = format!("cut {alive} | {}", host.short_name());
    assert_eq!(proxy.ctl(&cut), format!("OK {cut} (1 live link held)"));
    wait_until(CONVERGE, "the guest to lose the host", || {
        guest.nodes().is_empty()
    });
    assert!(
        host.nodes().is_empty(),
        "the host still sees {:?}",
        host.nodes()
    );
}

/// A `-dist_listen false` node never registers, but its links are named
/// by their handshake: a cut of it applies at once, and the reply does
/// not claim it is "not registered yet".
#[test]
fn a_dist_listen_false_node_is_cut_with_a_truthful_reply() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    let mut listener = start_node(&proxy, "lis", &[]);
    let mut client = start_node(&proxy, "cli", &["-dist_listen", "false"]);
    assert!(client.ping(listener.full_name()), "{}", client.output());
    assert!(!proxy
        .registered_names()
        .contains(&client.short_name().to_owned()));
    let cut = format!("cut {} | {}", client.short_name(), listener.short_name());
    let reply = proxy.ctl(&cut);
    assert_eq!(reply, format!("OK {cut} (1 live link held)"));
    wait_until(CONVERGE, "the client to lose the listener", || {
        client.nodes().is_empty()
    });
    assert!(listener.nodes().is_empty());
}

/// `fix` in full names removes a cut written with short names; a `fix`
/// that matches nothing in force is `ERR`, and `epmdpxy ctl` exits 1.
#[test]
fn fix_matches_by_meaning_and_a_fix_of_nothing_fails() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&[]);
    let mut nodes = proxy.start_nodes(&["p", "q"], &NodeOptions::default());
    await_mesh(&mut nodes, CONVERGE, "p and q");
    let (p, q) = (
        nodes[0].short_name().to_owned(),
        nodes[1].short_name().to_owned(),
    );
    let (p_full, q_full) = (
        nodes[0].full_name().to_owned(),
        nodes[1].full_name().to_owned(),
    );
    assert!(proxy.ctl(&format!("cut {p} | {q}")).starts_with("OK cut"));
    await_views(
        &mut nodes,
        &islands(2, &[&[0], &[1]]),
        CONVERGE,
        "p and q apart",
    );

    let control = proxy.control_port.to_string();
    let ctl = |line: &str| epmdpxy_ctl(None, &["--control-port", &control, line], "");
    let (code, out, err) = ctl(&format!("fix {p_full} | {q_full}"));
    let want = format!("OK fix {p_full} | {q_full}");
    assert_eq!((code, out.trim()), (0, want.as_str()), "{err}");
    assert!(proxy.ctl("status").starts_with("OK 0 faults"));
    await_mesh(&mut nodes, CONVERGE, "p and q together again");

    let (code, out, err) = ctl(&format!("fix {p} | {q}"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("ERR no such fault in force (nothing is in force)"),
        "{out}{err}"
    );
}
