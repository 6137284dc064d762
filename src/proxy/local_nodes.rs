//! Who is who on this machine: the nodes registered with this proxy, each
//! with the ALIVE2 connection it registered over, so that a link whose
//! handshake cannot be read (TLS distribution) can still be told which
//! node opened it — the process that holds the link's connecting socket
//! is the process that holds some registration's socket (see
//! `base/procfs.rs`). Looked up only on that slow path.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;

use crate::base::procfs::{connection_inode, processes_holding};
use crate::base::sync::lock;

/// A registration as the proxy sees it.
struct LocalNode {
    name: String,
    /// The node's end of its ALIVE2 connection, and ours.
    node_end: SocketAddr,
    epmd_end: SocketAddr,
    /// The process holding it, once looked up.
    pid: Option<u32>,
}

/// The nodes registered here, by registration id.
#[derive(Default)]
pub struct LocalNodes {
    nodes: Mutex<HashMap<u64, LocalNode>>,
}

impl LocalNodes {
    /// Registration `id` of `name` came over the connection between
    /// `node_end` (the node's socket) and `epmd_end` (ours).
    pub fn registered(&self, id: u64, name: &str, node_end: SocketAddr, epmd_end: SocketAddr) {
        let node = LocalNode {
            name: name.to_owned(),
            node_end,
            epmd_end,
            pid: None,
        };
        lock(&self.nodes).insert(id, node);
    }

    /// Registration `id` ended.
    pub fn unregistered(&self, id: u64) {
        lock(&self.nodes).remove(&id);
    }

    /// The registered node whose process opened the connection from
    /// `initiator_end` to our `proxy_end`, if the machine's `/proc` tells.
    pub fn opener_of(&self, initiator_end: SocketAddr, proxy_end: SocketAddr) -> Option<String> {
        let link_inode = connection_inode(initiator_end, proxy_end)?;
        // Registrations whose process is not known yet, by socket inode.
        let unknown: HashMap<u64, u64> = lock(&self.nodes)
            .iter()
            .filter(|(_, node)| node.pid.is_none())
            .filter_map(|(&id, node)| Some((connection_inode(node.node_end, node.epmd_end)?, id)))
            .collect();
        let mut wanted: HashSet<u64> = unknown.keys().copied().collect();
        wanted.insert(link_inode);
        let holders = processes_holding(&wanted);
        let opener = holders.get(&link_inode).copied()?;
        let mut nodes = lock(&self.nodes);
        for (inode, id) in unknown {
            if let (Some(&pid), Some(node)) = (holders.get(&inode), nodes.get_mut(&id)) {
                node.pid = Some(pid);
            }
        }
        let mut named = nodes.values().filter(|node| node.pid == Some(opener));
        match (named.next(), named.next()) {
            // One registration per process: an Erlang node registers once.
            (Some(node), None) => Some(node.name.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// Two connections from this process: one plays a registration, the
    /// other a link; the link's opener is the registered "node".
    #[test]
    fn names_the_registered_process_that_opened_a_link() {
        let epmd = TcpListener::bind("127.0.0.1:0").expect("bind");
        let alive = TcpStream::connect(epmd.local_addr().expect("address")).expect("connect");
        let (_alive_accepted, _) = epmd.accept().expect("accept");
        let nodes = LocalNodes::default();
        let node_end = alive.local_addr().expect("address");
        nodes.registered(1, "n1", node_end, epmd.local_addr().expect("address"));
        let proxy = TcpListener::bind("127.0.0.1:0").expect("bind");
        let link = TcpStream::connect(proxy.local_addr().expect("address")).expect("connect");
        let (accepted, initiator_end) = proxy.accept().expect("accept");
        let proxy_end = accepted.local_addr().expect("address");
        assert_eq!(
            nodes.opener_of(initiator_end, proxy_end),
            Some("n1".to_owned())
        );
        nodes.unregistered(1);
        assert_eq!(nodes.opener_of(initiator_end, proxy_end), None);
        drop(link);
    }
}
