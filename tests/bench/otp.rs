//! Real OTP nodes: `erpc:call` round trips through OTP's epmd and through
//! epmdpxy, and the full mesh whose cost per link is measured.

use std::time::Duration;

use super::report::{micros, percentile};
use super::run::{ErpcFigures, ScaleFigures};
use super::system::rss_and_threads;
use crate::common::{wait_until, ErlNode, NodeOptions, Proxy};

/// Two real nodes registered with one EPMD, linked and warmed up.
pub struct ErpcPair {
    pub label: String,
    pub caller: ErlNode,
    pub callee: ErlNode,
    pub samples: Vec<Duration>,
}

impl ErpcPair {
    pub fn start(label: &str, epmd_port: u16) -> ErpcPair {
        let cookie = format!("bench_{epmd_port}");
        let options = NodeOptions {
            net_ticktime: 60,
            connect_all: false,
            hidden: false,
        };
        let mut caller =
            ErlNode::start(&format!("erpca_{epmd_port}"), &cookie, epmd_port, &options);
        let callee = ErlNode::start(&format!("erpcb_{epmd_port}"), &cookie, epmd_port, &options);
        let other = callee.full_name().to_owned();
        assert!(caller.ping(&other), "{label}: ping {other}");
        let warm_up = caller.eval(&format!(
            "lists:usort([erpc:call('{other}', erlang, node, []) || _ <- lists:seq(1, 200)])"
        ));
        assert_eq!(
            warm_up.replace('\'', ""),
            format!("[{other}]"),
            "{label}: warm-up"
        );
        ErpcPair {
            label: label.to_owned(),
            caller,
            callee,
            samples: Vec::new(),
        }
    }

    /// Times up to `calls` round trips inside the caller, for at most 5 s
    /// (the driver's reply deadline is 15 s), so that a stalling relay
    /// shows up as few, slow calls instead of a timeout.
    pub fn measure(&mut self, calls: usize) {
        let other = self.callee.full_name().to_owned();
        let expression = format!(
            "B = '{other}', \
             Deadline = erlang:monotonic_time(millisecond) + 5000, \
             Loop = fun L(0, Acc) -> Acc; \
                        L(K, Acc) -> case erlang:monotonic_time(millisecond) > Deadline of \
                            true -> Acc; \
                            false -> T0 = erlang:monotonic_time(), \
                                     B = erpc:call(B, erlang, node, []), \
                                     T1 = erlang:monotonic_time(), \
                                     L(K - 1, [erlang:convert_time_unit(T1 - T0, native, nanosecond) | Acc]) \
                        end end, \
             Loop({calls}, [])"
        );
        let reply = self.caller.eval(&expression);
        let samples = reply
            .trim_matches(['[', ']'])
            .split(',')
            .filter(|field| !field.trim().is_empty())
            .map(|field| field.trim().parse::<u64>().map(Duration::from_nanos))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{}: erpc samples {reply:?}: {e}", self.label));
        self.samples.extend(samples);
    }

    pub fn figures(&self) -> ErpcFigures {
        let total: Duration = self.samples.iter().sum();
        ErpcFigures {
            label: self.label.clone(),
            calls: self.samples.len() as u64,
            p50_us: micros(percentile(&self.samples, 0.5)),
            p99_us: micros(percentile(&self.samples, 0.99)),
            mean_us: micros(total) / self.samples.len().max(1) as f64,
        }
    }
}

/// `erpc:call(Other, erlang, node, [])` round trips through each EPMD in
/// `routes` (label, port), the pairs measured in interleaved rounds.
/// Also returns the OTP release the nodes run.
pub fn erpc_figures(
    routes: &[(&str, u16)],
    calls: usize,
    rounds: usize,
) -> (Vec<ErpcFigures>, String) {
    let mut pairs: Vec<ErpcPair> = routes
        .iter()
        .map(|&(label, port)| ErpcPair::start(label, port))
        .collect();
    let otp = pairs.first_mut().map_or_else(String::new, |pair| {
        pair.caller.eval(
            "erlang:system_info(otp_release) ++ \" (erts \" ++ erlang:system_info(version) ++ \")\"",
        )
    });
    let rounds = rounds.max(1);
    for round in 0..rounds {
        for pair in &mut pairs {
            pair.measure(calls / rounds + usize::from(round < calls % rounds));
        }
    }
    (pairs.iter().map(ErpcPair::figures).collect(), otp)
}

/// Real nodes in a full mesh through a fresh epmdpxy: RSS and threads of
/// the proxy at each node count. Returns the baseline (RSS KiB, threads)
/// with no node registered, and one step per node count.
pub fn scale_figures(mesh: &[usize]) -> ((u64, u64), Vec<ScaleFigures>) {
    let proxy = Proxy::start(&[]);
    let pid = proxy.pid();
    let baseline = rss_and_threads(pid);
    // Explicit links only (no transitive connects, no `global` reshuffling
    // while the mesh forms): node i pings every earlier node. 60 s ticks,
    // as in production, so links are idle.
    let options = NodeOptions {
        net_ticktime: 60,
        connect_all: false,
        hidden: false,
    };
    let mut nodes: Vec<ErlNode> = Vec::new();
    let mut steps = Vec::new();
    for &count in mesh {
        let first_new = nodes.len();
        // Boot in small parallel batches: 2 cores, ~1 s of CPU per boot.
        while nodes.len() < count {
            let batch = (count - nodes.len()).min(6);
            let bases: Vec<String> = (0..batch)
                .map(|k| format!("mesh{}", nodes.len() + k))
                .collect();
            let bases: Vec<&str> = bases.iter().map(String::as_str).collect();
            nodes.extend(proxy.start_nodes(&bases, &options));
        }
        let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_owned()).collect();
        for (index, node) in nodes.iter_mut().enumerate().skip(first_new.max(1)) {
            let targets: Vec<String> = names[..index].iter().map(|n| format!("'{n}'")).collect();
            let reply = node.eval(&format!(
                "lists:usort([net_adm:ping(X) || X <- [{}]])",
                targets.join(",")
            ));
            assert_eq!(
                reply,
                "[pong]",
                "{} pinging earlier nodes",
                node.short_name()
            );
        }
        let links = count * (count - 1) / 2;
        wait_until(Duration::from_secs(60), "every mesh link relayed", || {
            proxy.links().len() == links
        });
        let (rss_kib, threads) = rss_and_threads(pid);
        steps.push(ScaleFigures {
            nodes: count,
            real_nodes: count,
            links,
            threads,
            rss_kib,
            rss_per_link_kib: rss_kib.saturating_sub(baseline.0) as f64 / links.max(1) as f64,
        });
    }
    drop(nodes);
    (baseline, steps)
}
