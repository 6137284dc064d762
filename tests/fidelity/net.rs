//! The wire of the fidelity test: three "hosts" as Linux network
//! namespaces on a bridge (10.203.0.1–3; the bridge lives in a fourth
//! namespace, so nothing touches the machine's own network), and the real
//! packet faults applied inside them with `iptables` and `tc`.
//!
//! Every fault is applied where a real network would apply it: a lost
//! packet is dropped on its way *in* to the receiving host (`INPUT ...
//! DROP`), so the sender's TCP stack behaves as on a lossy wire
//! (retransmissions, a stalled window), never as on a local firewall
//! (`OUTPUT` drops make `connect` fail at once with `EPERM`). A reset is
//! `REJECT --reject-with tcp-reset` on the way in, for the one connection
//! it resets; a slow link is an `htb` class for the one destination with a
//! `tbf` under it (this kernel has no `prio` and no `netem`).
//!
//! `Network` owns the namespaces (`common::netns::Bridged`) and deletes
//! them on drop; names carry the PID and a clock value, so a crashed run
//! cannot break the next one, and the next run deletes what a killed run
//! left behind.

use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::common::netns;
use crate::common::process::run;

/// Hosts 1..=HOSTS.
pub const HOSTS: usize = 3;
/// How long one `ip`, `iptables`, `tc` or `ss` run may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Namespace names of every run start with this.
const NETNS_PREFIX: &str = "epmdpxy-fi-";

/// The hosts' subnet (a /24): host N is `<SUBNET>.N`.
const SUBNET: &str = "10.203.0";

/// The address of host `host` (1-based) on the bridge.
pub fn address(host: usize) -> String {
    format!("{SUBNET}.{host}")
}

/// The namespaces of one run. Declare it before the processes that run
/// inside, so that they are killed first.
pub struct Network {
    hosts: netns::Bridged,
}

/// Runs `program args` (already wrapped as needed) to its end; Err carries
/// the command and its stderr.
fn checked(command: &mut Command) -> Result<String, String> {
    let output = run(command, "", COMMAND_TIMEOUT);
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(format!(
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

impl Network {
    /// Builds the bridge and the hosts. Err if this machine cannot (no
    /// namespaces, bridges or veth pairs): the caller fails or skips.
    pub fn build() -> Result<Network, String> {
        let net = Network {
            hosts: netns::Bridged::build(NETNS_PREFIX, SUBNET, HOSTS)?,
        };
        for host in 1..=HOSTS {
            // Load iptables' and tc's kernel parts now, not at the first
            // fault (whose timing is measured).
            net.sh(
                host,
                "iptables -w -L INPUT -n >/dev/null && tc qdisc show dev eth0",
            )?;
        }
        Ok(net)
    }

    /// `ip netns exec HOST program`: a command run inside host `host`.
    pub fn exec(&self, host: usize, program: &str) -> Command {
        self.hosts.exec(host, program)
    }

    /// Runs a shell script inside host `host`; its stdout.
    pub fn sh(&self, host: usize, script: &str) -> Result<String, String> {
        checked(self.exec(host, "sh").args(["-c", script]))
    }

    /// Runs one script per host at the same time (a fault that spans hosts
    /// should start everywhere at once); Err names every failure.
    pub fn sh_each(&self, scripts: &[(usize, String)]) -> Result<(), String> {
        let failures: Vec<String> = thread::scope(|scope| {
            let running: Vec<_> = scripts
                .iter()
                .map(|(host, script)| scope.spawn(move || self.sh(*host, script)))
                .collect();
            running
                .into_iter()
                .filter_map(|handle| match handle.join() {
                    Ok(Ok(_)) => None,
                    Ok(Err(why)) => Some(why),
                    Err(_) => Some("a fault thread panicked".to_owned()),
                })
                .collect()
        });
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Removes every packet fault from every host: the `INPUT` rules and
    /// the shaping.
    pub fn clear_faults(&self) -> Result<(), String> {
        let script = "iptables -w -F INPUT && { tc qdisc del dev eth0 root 2>/dev/null || true; }";
        let scripts: Vec<(usize, String)> = (1..=HOSTS).map(|h| (h, script.to_owned())).collect();
        self.sh_each(&scripts)
    }

    /// The established TCP connections of host `host` with `peer_host`, as
    /// (local port, peer port), EPMD's own port left out: the distribution
    /// links between the two hosts' nodes.
    pub fn dist_connections(
        &self,
        host: usize,
        peer_host: usize,
    ) -> Result<Vec<(u16, u16)>, String> {
        let filter = format!("dst {}", address(peer_host));
        let out = checked(
            self.exec(host, "ss")
                .args(["-Htn", "state", "established", &filter]),
        )?;
        let port = |endpoint: &str| -> Option<u16> { endpoint.rsplit_once(':')?.1.parse().ok() };
        let mut found = Vec::new();
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            // Recv-Q Send-Q Local:Port Peer:Port
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(peer)) = (
                fields.get(2).and_then(|f| port(f)),
                fields.get(3).and_then(|f| port(f)),
            ) else {
                return Err(format!("cannot read `ss` line {line:?}"));
            };
            if local != 4369 && peer != 4369 {
                found.push((local, peer));
            }
        }
        Ok(found)
    }
}

// ---------------------------------------------------------------------------
// The real faults, as shell scripts per host
// ---------------------------------------------------------------------------

/// Every packet from `from` to `to` is lost: dropped on its way into `to`.
pub fn drop_rule(from: usize, to: usize) -> (usize, String) {
    (
        to,
        format!("iptables -w -A INPUT -s {} -j DROP", address(from)),
    )
}

/// The scripts that lose every packet between the hosts of `left` and
/// those of `right`, both ways.
pub fn cut_scripts(left: &[usize], right: &[usize]) -> Vec<(usize, String)> {
    let mut per_host: Vec<(usize, String)> = Vec::new();
    for &a in left {
        for &b in right {
            for (host, rule) in [drop_rule(a, b), drop_rule(b, a)] {
                match per_host.iter_mut().find(|(h, _)| *h == host) {
                    Some((_, script)) => {
                        script.push_str(" && ");
                        script.push_str(&rule);
                    }
                    None => per_host.push((host, rule)),
                }
            }
        }
    }
    per_host
}

/// Resets the one connection (`host_port` on `host`, `peer_port` on
/// `peer`) when either end next sends: each host answers the other's next
/// segment of it with a RST, as a middlebox that resets a connection does.
/// The RSTs themselves pass (else each host's rule would eat the other's
/// RST and the ends would only tick out).
pub fn reset_scripts(
    host: usize,
    host_port: u16,
    peer: usize,
    peer_port: u16,
) -> Vec<(usize, String)> {
    let rule = |from: usize, sport: u16, dport: u16| {
        format!(
            "iptables -w -A INPUT -p tcp -s {} --sport {sport} --dport {dport} \
             ! --tcp-flags RST RST -j REJECT --reject-with tcp-reset",
            address(from)
        )
    };
    vec![
        (peer, rule(host, host_port, peer_port)),
        (host, rule(peer, peer_port, host_port)),
    ]
}

/// Shapes the traffic from `host` to `peer` to `rate` (tc syntax, e.g.
/// `256kbit`) with a tbf holding at most `queue` of it (tc's `latency`):
/// an htb root sends everything else through an unlimited class.
pub fn shape_script(host: usize, peer: usize, rate: &str, queue: &str) -> (usize, String) {
    let script = [
        "tc qdisc add dev eth0 root handle 1: htb default 10".to_owned(),
        "tc class add dev eth0 parent 1: classid 1:10 htb rate 10gbit".to_owned(),
        "tc class add dev eth0 parent 1: classid 1:20 htb rate 10gbit".to_owned(),
        format!("tc qdisc add dev eth0 parent 1:20 handle 20: tbf rate {rate} burst 5kb latency {queue}"),
        format!(
            "tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst {}/32 flowid 1:20",
            address(peer)
        ),
    ]
    .join(" && ");
    (host, script)
}
