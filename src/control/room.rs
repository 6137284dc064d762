//! The control room's state, [`Control`]: its settings, the proxy's
//! random stream (`seed`), the chaos run, the open sessions, and the
//! handles it was given — the faults (changed only through their door),
//! the EPMD room (the registry, for `nodes` and shapes), the proxy room
//! (links, for `links`, `reset` and cuts that wait for writes) and the
//! event stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::chaos_slot::ChaosSlot;
use crate::base::rng::Seeded;
use crate::base::sync::lock;
use crate::epmd::Epmd;
use crate::events::Events;
use crate::partition::matrix::Node;
use crate::partition::names::KnownNodes;
use crate::partition::{Faults, Pattern};
use crate::proxy::Proxy;

/// How the control port behaves; fixed at start-up.
#[derive(Clone, Debug)]
pub struct ControlSettings {
    /// At most this many control sessions at once.
    pub max_sessions: usize,
}

impl Default for ControlSettings {
    fn default() -> ControlSettings {
        ControlSettings { max_sessions: 64 }
    }
}

/// The control room.
pub struct Control {
    pub settings: ControlSettings,
    pub faults: Faults,
    pub epmd: Arc<Epmd>,
    pub proxy: Arc<Proxy>,
    pub events: Arc<Events>,
    /// The random stream of shapes and chaos runs.
    pub seed: Mutex<Seeded>,
    pub chaos: ChaosSlot,
    sessions: AtomicUsize,
}

impl Control {
    pub fn new(settings: ControlSettings, epmd: Arc<Epmd>, seed: u64) -> Arc<Control> {
        let proxy = Arc::clone(&epmd.proxy);
        Arc::new(Control {
            settings,
            faults: proxy.faults.clone(),
            events: Arc::clone(&epmd.events),
            epmd,
            proxy,
            seed: Mutex::new(Seeded::new(seed)),
            chaos: ChaosSlot::default(),
            sessions: AtomicUsize::new(0),
        })
    }

    /// Takes a session place; false (and nothing taken) when all
    /// `max_sessions` are in use.
    pub fn open_session(&self) -> bool {
        let before = self.sessions.fetch_add(1, Ordering::SeqCst);
        if before >= self.settings.max_sessions {
            self.close_session();
            return false;
        }
        true
    }

    /// Gives a session place back.
    pub fn close_session(&self) {
        self.sessions.fetch_sub(1, Ordering::SeqCst);
    }

    /// Restarts the random stream of shapes, chaos and jitter from `seed`.
    pub fn set_seed(&self, seed: u64) {
        *lock(&self.seed) = Seeded::new(seed);
        self.proxy.set_seed(seed);
    }

    /// The registered nodes, sorted by name, each with its full name once
    /// the proxy has learnt it from a handshake: as faults see them.
    pub fn registered_nodes(&self) -> Vec<Node> {
        let mut names: Vec<String> = lock(&self.epmd.registry)
            .nodes()
            .iter()
            .map(|node| node.name.clone())
            .collect();
        names.sort();
        let node = |name: &String| {
            let known = self.proxy.learned.get(name);
            Node::registered(name, known.unwrap_or_else(|| self.proxy.local_node(name)))
        };
        names.iter().map(node).collect()
    }

    /// The registered nodes a shape or chaos step may cut: not exempt, and
    /// named so that the control language can write the name. Sorted.
    pub fn shape_nodes(&self) -> Vec<String> {
        let nodes = self.registered_nodes();
        let faults = self.faults.read();
        nodes
            .into_iter()
            .filter(|node| {
                let name = &node.label;
                Pattern::parse(name).is_ok_and(|p| p == Pattern::Alive(name.clone()))
                    && !faults.is_exempt(&node.name)
            })
            .map(|node| node.label)
            .collect()
    }

    /// The nodes known by name: every registered node (on the host a
    /// handshake showed, else on this machine) and every live link's end
    /// whose handshake named it (e.g. a `-dist_listen false` node).
    pub fn known_nodes(&self) -> KnownNodes {
        let mut known = KnownNodes::default();
        for link in self.proxy.links.snapshot() {
            for node in link.initiator().into_iter().chain([link.target()]) {
                known.insert(&node.alive, node.host.clone());
            }
        }
        for node in lock(&self.epmd.registry).nodes() {
            let host = match self.proxy.learned.get(&node.name) {
                Some(full) => full.host,
                None => self.proxy.here(),
            };
            known.insert(&node.name, host);
        }
        known
    }

    /// The patterns among `patterns` that name no registered node and no
    /// end of a live link (host patterns are never said to: a host may
    /// be any node's).
    pub fn unregistered<'p>(&self, patterns: impl Iterator<Item = &'p Pattern>) -> Vec<String> {
        let links = self.proxy.links.snapshot();
        let registry = lock(&self.epmd.registry);
        let live = |pattern: &Pattern| {
            links.iter().any(|link| {
                let ends = link.initiator().into_iter().chain([link.target()]);
                ends.into_iter().any(|node| pattern.matches(node))
            })
        };
        patterns
            .filter(|pattern| match pattern {
                Pattern::Host(_) => false,
                Pattern::Alive(alive) | Pattern::Full { alive, .. } => {
                    !registry.nodes().iter().any(|node| node.name == *alive) && !live(pattern)
                }
            })
            .map(ToString::to_string)
            .collect()
    }
}
