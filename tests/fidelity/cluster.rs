//! One run of a scenario: an EPMD per host (OTP's real `epmd` for the
//! REAL run, an `epmdpxy` for the PROXY run), three OTP nodes
//! `fN@10.203.0.N` (one per host, default `connect_all`, so `global` and
//! its prevention of overlapping partitions act as in a real cluster;
//! `net_ticktime 2`, `net_setuptime 3`), and what the nodes observe.
//!
//! What a node observes is recorded *inside* it, by `common::recorder`:
//! every nodeup and nodedown with its reason, pings and bulk sends, each
//! stamped with the wall clock, so asking never changes what happens.

use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::common::process::{run_text, Daemon};
use crate::common::proxy::EPMDPXY;
use crate::common::recorder;
pub use crate::common::recorder::{now_ms, Seen};
use crate::common::{wait_until, wait_until_ok, ErlNode};
use crate::net::{address, Network, HOSTS};

/// `-kernel net_ticktime` of every node, in seconds.
pub const TICKTIME_S: u32 = 2;
/// `-kernel net_setuptime` of every node, in seconds.
pub const SETUPTIME_S: u32 = 3;
const EPMD_PORT: &str = "4369";
const CONTROL_PORT: &str = "4370";
/// How long a node may take to boot on a busy machine.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(40);
/// How long an EPMD may take to answer once started.
const EPMD_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the nodes may take to form the full mesh.
const MESH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the cluster idles after meshing, before a scenario's fault.
const AT_REST: Duration = Duration::from_secs(1);
/// How long one `epmdpxy ctl` run may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// Which EPMD the hosts run, and so how faults are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// OTP's `epmd`; faults are packet faults (iptables, tc).
    Real,
    /// One epmdpxy per host; faults are `epmdpxy ctl --at` commands.
    Proxy,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Real => "REAL",
            Mode::Proxy => "epmdpxy",
        }
    }
}

/// `f2@10.203.0.2` → `f2`: how the table names nodes.
pub fn alias(full: &str) -> &str {
    full.split_once('@').map_or(full, |(alive, _)| alive)
}

/// The EPMDs and nodes of one run. Fields drop in order: nodes first, then
/// the EPMDs they registered with.
pub struct Cluster<'n> {
    nodes: Vec<ErlNode>,
    /// Held only to be killed on drop (their logs print if the test fails).
    _daemons: Vec<Daemon>,
    pub net: &'n Network,
    pub mode: Mode,
}

impl<'n> Cluster<'n> {
    /// Starts an EPMD of `mode` in every host, then node `fN` in host N, and
    /// installs the recorders. The nodes are not connected yet.
    pub fn start(net: &'n Network, mode: Mode) -> Cluster<'n> {
        // Nothing of an earlier run may linger in the wire.
        net.clear_faults()
            .unwrap_or_else(|why| panic!("clearing faults: {why}"));
        let daemons: Vec<Daemon> = (1..=HOSTS).map(|h| start_epmd(net, h, mode)).collect();
        let cookie = format!("fidelity_{}", std::process::id());
        let mut nodes: Vec<ErlNode> = (1..=HOSTS)
            .map(|host| {
                let name = format!("f{host}@{}", address(host));
                ErlNode::spawn(
                    net.exec(host, "erl")
                        .args(["-noshell", "-name", &name, "-setcookie", &cookie])
                        .args(["-start_epmd", "false"])
                        .args(["-kernel", "net_ticktime", &TICKTIME_S.to_string()])
                        .args(["-kernel", "net_setuptime", &SETUPTIME_S.to_string()])
                        .env("ERL_EPMD_PORT", EPMD_PORT),
                    &name,
                )
            })
            .collect();
        for node in &mut nodes {
            node.wait_distributed(NODE_START_TIMEOUT);
            assert_eq!(
                node.full_name(),
                node.short_name(),
                "node() of {}",
                node.short_name()
            );
            recorder::install(node);
        }
        Cluster {
            nodes,
            _daemons: daemons,
            net,
            mode,
        }
    }

    /// The full name of node `i` (0-based: `f1` is 0).
    pub fn name(&self, i: usize) -> String {
        self.nodes[i].full_name().to_owned()
    }

    /// Pings until every node sees the two others, then lets `global`
    /// finish its synchronisation on every node, so no late disconnect of
    /// the meshing falls into the scenario.
    pub fn mesh(&mut self) {
        let names: Vec<String> = (0..HOSTS).map(|i| self.name(i)).collect();
        wait_until_ok(MESH_TIMEOUT, "the full mesh", || {
            let mut missing = Vec::new();
            for (i, node) in self.nodes.iter_mut().enumerate() {
                let seen = node.nodes();
                for (j, other) in names.iter().enumerate() {
                    if i != j && !seen.contains(other) {
                        node.ping(other);
                        missing.push(format!("{} misses {}", alias(&names[i]), alias(other)));
                    }
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(missing.join(", "))
            }
        });
        for node in &mut self.nodes {
            assert_eq!(
                node.eval("global:sync()"),
                "ok",
                "global:sync() on {}",
                node.short_name()
            );
        }
        // A cluster at rest, as a fault usually finds it: only ticks flow.
        // Right after the meshing's traffic a delayed ACK (40 ms) may still
        // be due, and on the wire that pure ACK is what meets a reset first
        // (docs/fidelity.md).
        thread::sleep(AT_REST);
    }

    /// `nodes()` of every node, as aliases, sorted.
    pub fn views(&mut self) -> Vec<Vec<String>> {
        self.nodes
            .iter_mut()
            .map(|node| node.nodes().iter().map(|n| alias(n).to_owned()).collect())
            .collect()
    }

    /// Everything the recorder of node `i` saw, oldest first.
    pub fn recorded(&mut self, i: usize) -> Vec<Seen> {
        recorder::recorded(&mut self.nodes[i])
    }

    /// Spawns `net_adm:ping(to)` inside node `from`; its result lands in
    /// the recorder as `ping To {pong|pang,Millis}` stamped when it started.
    pub fn spawn_ping(&mut self, from: usize, to: usize) {
        let peer = self.name(to);
        recorder::spawn_ping(&mut self.nodes[from], &peer);
    }

    /// Spawns, inside node `from`, the send of one message of `bytes` bytes
    /// to the recorder of node `to` (which swallows it and notes `bulk`).
    pub fn send_bulk(&mut self, from: usize, to: usize, bytes: usize) {
        let peer = self.name(to);
        recorder::spawn_bulk_send(&mut self.nodes[from], &peer, bytes);
    }

    /// `epmdpxy ctl --at <every host's proxy> COMMAND`, run in host 1
    /// (every control address is reachable over the bridge). Panics unless
    /// every proxy answers OK; returns the answers.
    pub fn ctl(&self, command: &str) -> String {
        assert_eq!(self.mode, Mode::Proxy, "ctl {command:?} in a REAL run");
        let every = (1..=HOSTS)
            .map(|h| format!("{}:{CONTROL_PORT}", address(h)))
            .collect::<Vec<_>>()
            .join(",");
        let (code, out, err) = run_text(
            self.net
                .exec(1, EPMDPXY)
                .args(["ctl", "--at", &every, command])
                .env_remove("EPMDPXY_AT"),
            "",
            CTL_TIMEOUT,
        );
        assert_eq!(code, 0, "ctl {command:?}: stdout:\n{out}stderr:\n{err}");
        out
    }
}

/// Starts host `host`'s EPMD on the standard port and waits until it
/// answers there.
fn start_epmd(net: &Network, host: usize, mode: Mode) -> Daemon {
    use std::os::unix::process::CommandExt;
    let addr = address(host);
    match mode {
        Mode::Real => {
            let mut daemon = Daemon::spawn(
                net.exec(host, "epmd")
                    .args(["-port", EPMD_PORT])
                    .env_remove("ERL_EPMD_ADDRESS")
                    .process_group(0),
                &format!("epmd on host {host}"),
            );
            wait_until(EPMD_START_TIMEOUT, "the real epmd to answer", || {
                if let Some(status) = daemon.exited() {
                    panic!("epmd on host {host} exited: {status}; {}", daemon.log());
                }
                let mut names: Command = net.exec(host, "epmd");
                names.args(["-port", EPMD_PORT, "-names"]);
                run_text(&mut names, "", CTL_TIMEOUT).0 == 0
            });
            daemon
        }
        Mode::Proxy => {
            let mut daemon = Daemon::spawn(
                net.exec(host, EPMDPXY)
                    .args(["--port", EPMD_PORT, "--control-port", CONTROL_PORT])
                    // The test reaches the control ports over the bridge; this
                    // prints the no-authentication warning, fine here.
                    .args(["--address", &addr, "--control-address", &addr, "-v"])
                    .process_group(0),
                &format!("epmdpxy on host {host}"),
            );
            if let Err(why) = daemon.wait_for_line(EPMD_START_TIMEOUT, |line| {
                line.contains(" ready ").then_some(())
            }) {
                panic!(
                    "epmdpxy on host {host}: no ready line ({why}); log:\n{}",
                    daemon.log()
                );
            }
            daemon
        }
    }
}
