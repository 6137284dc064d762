//! The node registry: who is registered, under which creation, and which
//! names were registered before (for DUMP). Pure bookkeeping; the server
//! owns the sockets and calls in here under a mutex.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::wire::{NodeInfo, Refusal};

/// A registered node.
#[derive(Clone, Debug)]
pub struct Registration {
    /// Unique per registration; the ALIVE2 connection uses it to unregister.
    pub id: u64,
    pub info: NodeInfo,
    /// The name as text (registrations are always valid UTF-8).
    pub name: String,
    pub creation: u32,
    /// Where the node registered from: the proxy connects there.
    pub peer: IpAddr,
    /// The ALIVE2 socket's file descriptor (shown by DUMP, as epmd does).
    pub fd: i32,
}

/// A name that was registered once and is not now.
#[derive(Clone, Debug)]
pub struct OldName {
    pub name: String,
    pub port: u16,
    pub fd: i32,
    /// The creation its last incarnation had.
    pub creation: u32,
}

/// The registry itself.
#[derive(Debug)]
pub struct Registry {
    /// Live registrations, oldest first.
    nodes: Vec<Registration>,
    /// Names that were registered and are gone, oldest unregistration first.
    old: Vec<OldName>,
    /// One counter for creations, seeded from the clock.
    creation_counter: u32,
    next_id: u64,
}

/// Old names epmd keeps (`MAX_UNREG_COUNT`): a *new* name registering
/// while more than this many are remembered evicts the oldest one.
pub const MAX_OLD_NAMES: usize = 1000;
/// Hard bound on the old-name list. epmd only evicts on a new
/// registration, so the list can outgrow `MAX_OLD_NAMES` when over a
/// thousand live nodes go at once; this keeps it bounded regardless.
const HARD_MAX_OLD_NAMES: usize = 10 * MAX_OLD_NAMES;

impl Default for Registry {
    fn default() -> Registry {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Registry::with_seed(seconds as u32)
    }
}

impl Registry {
    /// A registry whose creation counter starts at `seed`.
    pub fn with_seed(seed: u32) -> Registry {
        Registry {
            nodes: Vec::new(),
            old: Vec::new(),
            creation_counter: seed,
            next_id: 1,
        }
    }

    /// Registers a node, or says why not. Returns the new registration.
    pub fn register(
        &mut self,
        info: NodeInfo,
        peer: IpAddr,
        fd: i32,
    ) -> Result<Registration, Refusal> {
        super::wire::check_registration(&info)?;
        let name = String::from_utf8(info.name.clone()).map_err(|_| Refusal::NameNotUtf8)?;
        if self.find(&name).is_some() {
            return Err(Refusal::AlreadyRegistered);
        }
        let previous = self
            .old
            .iter()
            .position(|old| old.name == name)
            .map(|at| self.old.remove(at));
        if previous.is_none() && self.old.len() > MAX_OLD_NAMES {
            self.old.remove(0);
        }
        let creation = self.next_creation(&info, previous.map(|old| old.creation));
        let registration = Registration {
            id: self.next_id,
            info,
            name,
            creation,
            peer,
            fd,
        };
        self.next_id += 1;
        self.nodes.push(registration.clone());
        Ok(registration)
    }

    /// A new creation: never 0, and different from the name's previous one.
    /// Nodes that only speak version 5 get 1..=3, as epmd gives them.
    fn next_creation(&mut self, info: &NodeInfo, previous: Option<u32>) -> u32 {
        loop {
            self.creation_counter = self.creation_counter.wrapping_add(1).max(4);
            let creation = if super::wire::wants_extended_reply(info.highest_version) {
                self.creation_counter
            } else {
                self.creation_counter % 3 + 1
            };
            if Some(creation) != previous {
                return creation;
            }
        }
    }

    /// Removes the registration `id` (its connection closed). Returns it.
    pub fn unregister(&mut self, id: u64) -> Option<Registration> {
        let at = self.nodes.iter().position(|node| node.id == id)?;
        let gone = self.nodes.remove(at);
        if self.old.len() >= HARD_MAX_OLD_NAMES {
            self.old.remove(0);
        }
        self.old.push(OldName {
            name: gone.name.clone(),
            port: gone.info.port,
            fd: gone.fd,
            creation: gone.creation,
        });
        Some(gone)
    }

    /// The live registration of `name`.
    pub fn find(&self, name: &str) -> Option<&Registration> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// Live registrations, oldest first.
    pub fn nodes(&self) -> &[Registration] {
        &self.nodes
    }

    /// Names registered before and not now, oldest first.
    pub fn old_names(&self) -> &[OldName] {
        &self.old
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epmd::wire::NODE_TYPE_NORMAL;
    use std::net::Ipv4Addr;

    fn info(name: &str, high: u16) -> NodeInfo {
        NodeInfo {
            port: 1000,
            node_type: NODE_TYPE_NORMAL,
            protocol: 0,
            highest_version: high,
            lowest_version: 5,
            name: name.as_bytes().to_vec(),
            extra: vec![],
        }
    }

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn register_find_unregister() {
        let mut reg = Registry::with_seed(100);
        let a = reg.register(info("a", 6), LOCAL, 5).expect("registers");
        assert_eq!(a.creation, 101);
        assert_eq!(
            reg.register(info("a", 6), LOCAL, 6).err(),
            Some(Refusal::AlreadyRegistered)
        );
        assert!(reg.find("a").is_some());
        assert_eq!(reg.unregister(a.id).map(|r| r.name), Some("a".to_string()));
        assert!(reg.find("a").is_none());
        assert_eq!(reg.old_names().len(), 1);
        let again = reg
            .register(info("a", 6), LOCAL, 7)
            .expect("registers again");
        assert_ne!(again.creation, a.creation);
        assert!(reg.old_names().is_empty(), "a live name is not old");
        assert!(reg.unregister(a.id).is_none(), "a stale id removes nothing");
    }

    #[test]
    fn creation_never_zero_and_changes() {
        // the counter wraps past u32::MAX; 0..=3 are skipped
        let mut reg = Registry::with_seed(u32::MAX - 1);
        let mut last = None;
        for _ in 0..10 {
            let node = reg.register(info("n", 6), LOCAL, 1).expect("registers");
            assert!(node.creation >= 4);
            assert_ne!(Some(node.creation), last);
            last = Some(node.creation);
            reg.unregister(node.id);
        }
    }

    #[test]
    fn version5_creations_are_small_and_change() {
        let mut reg = Registry::with_seed(0);
        let mut last = None;
        for _ in 0..10 {
            let node = reg.register(info("old", 5), LOCAL, 1).expect("registers");
            assert!((1..=3).contains(&node.creation));
            assert_ne!(Some(node.creation), last);
            last = Some(node.creation);
            reg.unregister(node.id);
        }
    }

    #[test]
    fn old_names_are_bounded_like_epmd() {
        let mut reg = Registry::with_seed(0);
        for i in 0..=MAX_OLD_NAMES + 1 {
            let node = reg
                .register(info(&format!("n{i}"), 6), LOCAL, 1)
                .expect("registers");
            reg.unregister(node.id);
        }
        // 1002 registered and gone: the last new name evicted the oldest.
        assert_eq!(reg.old_names().len(), MAX_OLD_NAMES + 1);
        assert_eq!(reg.old_names()[0].name, "n1");
        // A returning name leaves the list without evicting anything.
        let back = reg.register(info("n5", 6), LOCAL, 1).expect("registers");
        assert_eq!(reg.old_names().len(), MAX_OLD_NAMES);
        assert!(reg.old_names().iter().all(|old| old.name != "n5"));
        reg.unregister(back.id);
        assert_eq!(reg.old_names().last().map(|o| o.name.as_str()), Some("n5"));
    }

    #[test]
    fn refusals() {
        let mut reg = Registry::with_seed(0);
        assert_eq!(
            reg.register(info(&"x".repeat(256), 6), LOCAL, 1).err(),
            Some(Refusal::NameTooLong)
        );
        assert!(reg.is_empty());
    }
}
