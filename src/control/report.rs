//! The reports: `status` (every fault in force, in the syntax that
//! creates it), `nodes` (the registry), `links` (the live links and
//! what holds them) and `matrix` (who reaches whom, drawn by
//! [`crate::partition::matrix`]).

use super::reply::Reply;
use super::room::Control;
use crate::base::sync::lock;
use crate::base::words::count;
use crate::epmd::wire::node_type_label;
use crate::partition::matrix::{self, LinkCounts};
use crate::proxy::link::Direction;

/// `status`: `OK N fault(s) seed=S [exempt=...] [chaos=running]`, then one
/// line per fault. Settings ride on the header, so the lines stay one per
/// fault and can be fed back as commands.
pub fn status(control: &Control) -> Reply {
    let (faults, exempt) = {
        let set = control.faults.read();
        let exempt: Vec<String> = set.exempt_patterns().map(ToString::to_string).collect();
        (set.describe(), exempt)
    };
    let seed = lock(&control.seed).seed;
    let mut head = format!("{} seed={seed}", count(faults.len(), "fault"));
    if !exempt.is_empty() {
        head.push_str(&format!(" exempt={}", exempt.join(",")));
    }
    if control.chaos.is_running() {
        head.push_str(" chaos=running");
    }
    Reply::ok_with(head, faults)
}

/// `nodes`: one line per registered node.
pub fn nodes(control: &Control) -> Reply {
    let registry = lock(&control.epmd.registry);
    let lines = registry
        .nodes()
        .iter()
        .map(|node| {
            format!(
                "{} port={} type={} protocol={} versions={}-{} creation={} address={}",
                node.name,
                node.info.port,
                node_type_label(node.info.node_type),
                node.info.protocol,
                node.info.lowest_version,
                node.info.highest_version,
                node.creation,
                node.peer
            )
        })
        .collect();
    Reply::ok_with(count(registry.nodes().len(), "node"), lines)
}

/// `links`: one line per live link, with what holds it.
pub fn links(control: &Control) -> Reply {
    let links = control.proxy.links.snapshot();
    let faults = control.faults.snapshot();
    let lines = links
        .iter()
        .map(|link| {
            // "held-up": bytes from the initiator to the target are held.
            let state = match (
                link.held_by(&faults, Direction::Up),
                link.held_by(&faults, Direction::Down),
            ) {
                (false, false) => "open",
                (true, true) => "cut",
                (true, false) => "held-up",
                (false, true) => "held-down",
            };
            let mut line = format!(
                "{} {} -> {} state={} up={} down={} proxy_port={} age={}s",
                link.id,
                link.initiator_label(),
                link.target(),
                state,
                link.bytes(Direction::Up),
                link.bytes(Direction::Down),
                link.proxy_port,
                link.opened.elapsed().as_secs()
            );
            line.push_str(&link.learnt_note());
            if link.gates().reset_pending() {
                line.push_str(" reset=pending");
            }
            // A node closed its side; the close is held (cut) or queued (delay).
            if let Some(closer) = link.pending_close() {
                line.push_str(&format!(" closed_by={closer}"));
            }
            line
        })
        .collect();
    Reply::ok_with(count(links.len(), "link"), lines)
}

/// `matrix`: the registered nodes as rows (senders) and columns
/// (receivers), each cell computed from the faults in force, then the
/// legend and the live links per pair.
pub fn matrix(control: &Control) -> Reply {
    let nodes = control.registered_nodes();
    let links = control.proxy.links.snapshot();
    let ends = links.iter().map(|link| (link.initiator(), link.target()));
    let counts = LinkCounts::count(&nodes, ends);
    let faults = control.faults.snapshot();
    // A pair with a live link that waits to be reset (either way round).
    let resetting = |a: &matrix::Node, b: &matrix::Node| {
        links.iter().any(|link| {
            let ends = (link.initiator(), link.target());
            let between = |x: &matrix::Node, y: &matrix::Node| {
                ends.0.is_some_and(|i| i.alive == x.name.alive) && ends.1.alive == y.name.alive
            };
            link.gates().reset_pending() && (between(a, b) || between(b, a))
        })
    };
    let cell = |from: &matrix::Node, to: &matrix::Node| match matrix::mark(
        &faults, &from.name, &to.name,
    ) {
        matrix::Mark::Reachable if resetting(from, to) => matrix::Mark::ResetPending,
        mark => mark,
    };
    let drawing = matrix::draw(&nodes, cell, &counts);
    Reply::ok_with(drawing.head, drawing.lines)
}
