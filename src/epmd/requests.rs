//! The answers to EPMD requests, one function each, as OTP's epmd gives
//! them: ALIVE2 registers for as long as its connection lasts, PORT_PLEASE2
//! answers with a proxy listener's port instead of the node's, NAMES and
//! DUMP list the registry, KILL and STOP follow epmd's rules.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::room::Epmd;
use super::wire::{self, node_type_label, DumpEntry, NodeInfo};
use crate::base::sync::lock;
use crate::events::Event;
use crate::proxy::{PendingListener, Upstream};
use crate::{log_debug, log_info, log_warn};

/// ALIVE2_REQ: registers the node for as long as this connection is open.
pub fn alive2(epmd: &Epmd, stream: TcpStream, info: NodeInfo, peer: IpAddr) {
    let extended = wire::wants_extended_reply(info.highest_version);
    let name = info.name_str();
    let registered = lock(&epmd.registry).register(info, peer, stream.as_raw_fd());
    let registration = match registered {
        Ok(registration) => registration,
        Err(why) => {
            log_info!("node {name} refused: {why}");
            let reply = wire::encode_alive2_reply(extended, 1, wire::ERROR_CREATION);
            if (&stream).write_all(&reply).is_ok() {
                // epmd keeps a refused socket open until the peer goes.
                wait_for_anything(&stream);
            }
            return;
        }
    };
    let reply = wire::encode_alive2_reply(extended, 0, registration.creation);
    if let (Ok(node_end), Ok(epmd_end)) = (stream.peer_addr(), stream.local_addr()) {
        let local_nodes = &epmd.proxy.local_nodes;
        local_nodes.registered(registration.id, &name, node_end, epmd_end);
    }
    let stream = Arc::new(stream);
    epmd.keep_alive_socket(registration.id, Arc::clone(&stream));
    // Published before the reply: a watcher that starts once the node has
    // its answer has seen the node-up already or will not see it at all.
    epmd.events.publish(&Event::NodeUp {
        name: name.clone(),
        port: registration.info.port,
        node_type: node_type_label(registration.info.node_type),
        creation: registration.creation,
        peer,
    });
    if let Err(err) = (&*stream).write_all(&reply) {
        log_info!("node {name}: registration reply failed ({err}); unregistered");
    } else {
        // Anything more on this socket — data, EOF, error — ends the registration.
        wait_for_anything(&stream);
    }
    epmd.take_alive_socket(registration.id);
    epmd.proxy.local_nodes.unregistered(registration.id);
    lock(&epmd.registry).unregister(registration.id);
    // Published once the node is gone, so that what a watcher draws on it
    // (`watch matrix`) no longer shows the node.
    epmd.events.publish(&Event::NodeDown { name });
    let _ = stream.shutdown(Shutdown::Both);
}

/// Blocks until the peer sends something, closes, or the socket fails.
fn wait_for_anything(mut stream: &TcpStream) {
    let _ = stream.set_read_timeout(None);
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            _ => return,
        }
    }
}

/// PORT_PLEASE2_REQ: answers with a fresh proxy listener's port, then
/// waits (on this thread) for the listener to be used or to expire.
pub fn port_please2(epmd: &Arc<Epmd>, mut stream: TcpStream, name: &str, local: IpAddr) {
    let found = lock(&epmd.registry).find(name).cloned();
    let Some(node) = found else {
        log_debug!("epmd: lookup of {name}: not registered");
        let _ = stream.write_all(&wire::encode_port2_not_found());
        return;
    };
    // The asker reached us at `local`, so it can reach a listener there.
    let listener = match PendingListener::open(&epmd.proxy, local) {
        Ok(listener) => listener,
        Err(why) => {
            log_warn!("lookup of {name}: {why}; answered not found");
            let _ = stream.write_all(&wire::encode_port2_not_found());
            return;
        }
    };
    let reply = wire::encode_port2_found(&node.info, listener.port);
    if let Err(err) = stream.write_all(&reply) {
        log_debug!("epmd: lookup of {name}: reply failed: {err}");
        return;
    }
    let _ = stream.shutdown(Shutdown::Both);
    drop(stream);
    log_debug!(
        "epmd: lookup of {name}: proxy port {} for real port {}",
        listener.port,
        node.info.port
    );
    listener.serve(Upstream {
        name: node.name.clone(),
        address: node.peer,
        host_address: local,
        port: node.info.port,
    });
}

/// NAMES_REQ: our port, then every node, newest registration first.
pub fn names(epmd: &Epmd, mut stream: TcpStream) {
    let reply = {
        let registry = lock(&epmd.registry);
        let nodes = registry
            .nodes()
            .iter()
            .rev()
            .map(|node| (node.name.as_str(), node.info.port));
        wire::encode_names_reply(epmd.settings.port, nodes)
    };
    let _ = stream.write_all(&reply);
}

/// DUMP_REQ: live nodes (newest first), then old names (oldest first).
pub fn dump(epmd: &Epmd, mut stream: TcpStream) {
    let reply = {
        let registry = lock(&epmd.registry);
        let active = registry.nodes().iter().rev().map(|node| DumpEntry::Active {
            name: &node.name,
            port: node.info.port,
            fd: node.fd,
        });
        let old = registry.old_names().iter().map(|old| DumpEntry::Old {
            name: &old.name,
            port: old.port,
            fd: old.fd,
        });
        wire::encode_dump_reply(epmd.settings.port, active.chain(old))
    };
    let _ = stream.write_all(&reply);
}

/// KILL_REQ: refused while nodes are registered unless relaxed; on `OK`
/// the daemon is asked to exit.
pub fn kill(epmd: &Epmd, mut stream: TcpStream) {
    let empty = lock(&epmd.registry).is_empty();
    if !empty && !epmd.settings.relaxed_command_check {
        log_info!("epmd: kill refused: nodes are registered");
        let _ = stream.write_all(b"NO");
        return;
    }
    let _ = stream.write_all(b"OK");
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
    epmd.request_exit("killed by a KILL request (epmd -kill)");
}

/// STOP_REQ: only when relaxed; closes the node's registration.
pub fn stop(epmd: &Epmd, mut stream: TcpStream, name: &[u8]) {
    if !epmd.settings.relaxed_command_check {
        log_info!("epmd: stop refused: --relaxed-command-check is off");
        return;
    }
    // Names are compared as bytes, as epmd does: a name that is not UTF-8
    // matches nothing (every registered name is UTF-8).
    let name = std::str::from_utf8(name).unwrap_or_default();
    let found = if name.is_empty() {
        None
    } else {
        lock(&epmd.registry).find(name).map(|node| node.id)
    };
    let Some(id) = found else {
        // OTP's epmd sends both words here; its client reads 7 bytes.
        let _ = stream.write_all(b"NOEXISTSTOPPED");
        return;
    };
    if let Some(socket) = epmd.take_alive_socket(id) {
        let _ = socket.shutdown(Shutdown::Both);
    }
    lock(&epmd.registry).unregister(id);
    log_info!("node {name} stopped by a STOP request");
    let _ = stream.write_all(b"STOPPED");
}
