//! The table of live links ([`LinkTable`]) and the full names learnt from
//! handshakes ([`LearnedNames`]), so that a host pattern (`*@host`)
//! matches a node from the first byte of its next link.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::link::Link;
use crate::base::sync::lock;
use crate::partition::NodeName;

/// Every live link, by id.
#[derive(Default)]
pub struct LinkTable {
    links: Mutex<BTreeMap<u64, Arc<Link>>>,
    next_id: AtomicU64,
}

impl LinkTable {
    /// A snapshot of the live links, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<Link>> {
        lock(&self.links).values().cloned().collect()
    }

    pub fn insert(&self, link: Arc<Link>) {
        lock(&self.links).insert(link.id, link);
    }

    pub fn remove(&self, id: u64) {
        lock(&self.links).remove(&id);
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Full names read from handshakes, by registered name (`n1` → `n1@host`).
#[derive(Default)]
pub struct LearnedNames {
    names: Mutex<HashMap<String, NodeName>>,
}

impl LearnedNames {
    /// The full name of the node registered as `alive`, if a handshake
    /// has shown it.
    pub fn get(&self, alive: &str) -> Option<NodeName> {
        lock(&self.names).get(alive).cloned()
    }

    /// Remembers `full` (its alive part is the key).
    pub fn learn(&self, full: &NodeName) {
        lock(&self.names).insert(full.alive.clone(), full.clone());
    }
}
