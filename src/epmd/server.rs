//! The EPMD listener: accepts connections, reads one request each, and
//! answers it as OTP's epmd would — except PORT_PLEASE2, which is answered
//! with the port of a fresh one-shot proxy listener.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wire::{self, DumpEntry, Framing, NodeInfo, Request};
use crate::proxy::link::{ProxyListener, Target};
use crate::shared::Shared;
use crate::sync::{lock, spawn};
use crate::{log_debug, log_info, log_warn};

/// Accepts EPMD connections forever, one thread each.
pub fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut accept_errors = crate::log::RateLimit::default();
    for incoming in listener.incoming() {
        match incoming {
            Ok(stream) => {
                let shared = Arc::clone(&shared);
                if let Err(err) = spawn("epmd-conn", move || handle_connection(&shared, stream)) {
                    log_warn!("epmd: cannot start a thread for a new connection: {err}; closed it");
                }
            }
            Err(err) => {
                if let Some(held_back) = accept_errors.allow(Duration::from_secs(5)) {
                    log_warn!(
                        "epmd: accept failed: {err} ({held_back} more since the last report)"
                    );
                }
                // e.g. out of file descriptors: do not spin
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// True for a peer allowed to register, dump, kill or stop: loopback, or
/// the same address the connection arrived on.
fn is_local_peer(peer: IpAddr, local: IpAddr) -> bool {
    let peer = canonical(peer);
    peer.is_loopback() || peer == canonical(local)
}

/// `::ffff:127.0.0.1` → `127.0.0.1`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// epmd's input buffer (`INBUF_SIZE`, 3060): a request and its 2-byte
/// length must fit in one byte less.
const INBUF_SIZE: usize = wire::MAX_REQUEST_LEN + 3;

/// Why no request could be read.
#[derive(Debug)]
enum ReadFailure {
    Io(io::Error),
    /// Bad length prefix (0 or too large).
    BadLength(u16),
    /// More bytes than the request arrived before its length was known.
    Trailing {
        got: usize,
        want: usize,
    },
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Io(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                write!(f, "closed before a complete request")
            }
            ReadFailure::Io(err) => write!(f, "{err}"),
            ReadFailure::BadLength(len) => write!(f, "bad request length {len}"),
            ReadFailure::Trailing { got, want } => {
                write!(f, "{got} bytes arrived for a {want}-byte request")
            }
        }
    }
}

/// One `read` before `deadline` into `buf`; 0 bytes is an error (EOF).
fn read_some(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => return Ok(n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Reads one request (the body after the length prefix) the way epmd's
/// `do_read` does, so that the same bytes meet the same fate:
/// - until the 2-byte length has arrived, each read takes whatever is
///   there (up to the buffer); if that is already more than the request,
///   the connection is closed unserved — a request followed by garbage in
///   the same write;
/// - after that, reads ask for exactly the missing bytes, so bytes sent
///   after the request in a later write stay unread (a registration
///   socket then sees them and ends the registration).
fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, ReadFailure> {
    let mut buf = vec![0u8; INBUF_SIZE - 1];
    let mut got = 0;
    while got < 2 {
        let space = buf.get_mut(got..).unwrap_or_default();
        got += read_some(stream, space, deadline).map_err(ReadFailure::Io)?;
    }
    let prefix = [
        buf.first().copied().unwrap_or(0),
        buf.get(1).copied().unwrap_or(0),
    ];
    let Framing::Body(len) = wire::framing(prefix) else {
        return Err(ReadFailure::BadLength(u16::from_be_bytes(prefix)));
    };
    let want = len + 2;
    if got > want {
        return Err(ReadFailure::Trailing { got, want });
    }
    while got < want {
        let space = buf.get_mut(got..want).unwrap_or_default();
        got += read_some(stream, space, deadline).map_err(ReadFailure::Io)?;
    }
    Ok(buf.get(2..want).unwrap_or_default().to_vec())
}

/// Reads one request and serves it.
fn handle_connection(shared: &Arc<Shared>, mut stream: TcpStream) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    // Measured from the start (newer epmd does too): dribbling bytes does
    // not keep a connection alive past the packet timeout.
    let deadline = Instant::now() + shared.settings.packet_timeout;
    let body = match read_request(&mut stream, deadline) {
        Ok(body) => body,
        Err(why) => {
            log_debug!("epmd: {peer}: {why}; closed");
            return;
        }
    };
    let request = match wire::parse_request(&body) {
        Ok(request) => request,
        Err(why) => {
            log_debug!("epmd: {peer}: {why}; closed");
            return;
        }
    };
    let local_peer = is_local_peer(peer.ip(), local.ip());
    log_debug!("epmd: {peer}: {request:?}");
    match request {
        Request::Alive2(info) if local_peer => {
            // Under a dual-stack `::` listener IPv4 peers show as ::ffff:a.b.c.d.
            alive2(shared, stream, info, canonical(peer.ip()))
        }
        Request::PortPlease2 { name } => port_please2(shared, stream, &name, local.ip()),
        Request::Names => names(shared, stream),
        Request::Dump if local_peer => dump(shared, stream),
        Request::Kill if local_peer => kill(shared, stream),
        Request::Stop { name } if local_peer => stop(shared, stream, &name),
        _ => log_debug!("epmd: {peer}: request refused to a non-local peer; closed"),
    }
}

/// ALIVE2_REQ: registers the node for as long as this connection is open.
fn alive2(shared: &Shared, stream: TcpStream, info: NodeInfo, peer: IpAddr) {
    let extended = wire::wants_extended_reply(info.highest_version);
    let name = info.name_str();
    let registered = lock(&shared.registry).register(info, peer, stream.as_raw_fd());
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
    let stream = Arc::new(stream);
    lock(&shared.alive_sockets).insert(registration.id, Arc::clone(&stream));
    if let Err(err) = (&*stream).write_all(&reply) {
        log_info!("node {name}: registration reply failed ({err}); unregistered");
    } else {
        log_info!(
            "node {name} registered: port {} type {} creation {} from {peer}",
            registration.info.port,
            node_type_label(registration.info.node_type),
            registration.creation
        );
        shared.events.publish(&format!(
            "node-up name={name} port={} type={} creation={}",
            registration.info.port,
            node_type_label(registration.info.node_type),
            registration.creation
        ));
        // Anything more on this socket — data, EOF, error — ends the registration.
        wait_for_anything(&stream);
        log_info!("node {name} unregistered");
        shared.events.publish(&format!("node-down name={name}"));
    }
    lock(&shared.alive_sockets).remove(&registration.id);
    lock(&shared.registry).unregister(registration.id);
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

/// "normal" / "hidden" / the raw number.
pub fn node_type_label(node_type: u8) -> String {
    match node_type {
        wire::NODE_TYPE_NORMAL => "normal".to_owned(),
        wire::NODE_TYPE_HIDDEN => "hidden".to_owned(),
        other => other.to_string(),
    }
}

/// PORT_PLEASE2_REQ: answers with a fresh proxy listener's port.
fn port_please2(shared: &Arc<Shared>, mut stream: TcpStream, name: &str, local: IpAddr) {
    let found = lock(&shared.registry).find(name).cloned();
    let Some(node) = found else {
        log_debug!("epmd: lookup of {name}: not registered");
        let _ = stream.write_all(&wire::encode_port2_not_found());
        return;
    };
    // Each waiting listener holds a socket and two threads until it is
    // connected to or expires: bound how many a flood of lookups can open.
    let Some(_slot) = PendingSlot::take(shared) else {
        log_warn!(
            "lookup of {name}: {} proxy listeners are already waiting for their connection (--max-pending-listeners); answered not found",
            shared.settings.max_pending_listeners
        );
        let _ = stream.write_all(&wire::encode_port2_not_found());
        return;
    };
    // The asker reached us at `local`, so it can reach a listener there.
    let listener = match ProxyListener::bind(local) {
        Ok(listener) => listener,
        Err(err) => {
            log_warn!("lookup of {name}: cannot open a proxy listener on {local}: {err}; answered not found");
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
    let target = Target {
        name: node.name.clone(),
        address: node.peer,
        host_address: local,
        port: node.info.port,
    };
    listener.serve(Arc::clone(shared), target, shared.settings.listener_timeout);
}

/// One of the `--max-pending-listeners` places, held while a proxy
/// listener waits for its connection; given back on drop.
struct PendingSlot<'a>(&'a AtomicUsize);

impl PendingSlot<'_> {
    fn take(shared: &Shared) -> Option<PendingSlot<'_>> {
        let before = shared.pending_listeners.fetch_add(1, Ordering::SeqCst);
        let slot = PendingSlot(&shared.pending_listeners);
        (before < shared.settings.max_pending_listeners).then_some(slot)
    }
}

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// NAMES_REQ: our port, then every node, newest registration first.
fn names(shared: &Shared, mut stream: TcpStream) {
    let reply = {
        let registry = lock(&shared.registry);
        let nodes = registry
            .nodes()
            .iter()
            .rev()
            .map(|node| (node.name.as_str(), node.info.port));
        wire::encode_names_reply(shared.settings.epmd_port, nodes)
    };
    let _ = stream.write_all(&reply);
}

/// DUMP_REQ: live nodes (newest first), then old names (oldest first).
fn dump(shared: &Shared, mut stream: TcpStream) {
    let reply = {
        let registry = lock(&shared.registry);
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
        wire::encode_dump_reply(shared.settings.epmd_port, active.chain(old))
    };
    let _ = stream.write_all(&reply);
}

/// KILL_REQ: refused while nodes are registered unless relaxed; on `OK`
/// the proxy exits.
fn kill(shared: &Shared, mut stream: TcpStream) {
    let empty = lock(&shared.registry).is_empty();
    if !empty && !shared.settings.relaxed_command_check {
        log_info!("epmd: kill refused: nodes are registered");
        let _ = stream.write_all(b"NO");
        return;
    }
    let _ = stream.write_all(b"OK");
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
    log_warn!("epmd: killed by a KILL request; exiting");
    std::process::exit(0);
}

/// STOP_REQ: only when relaxed; closes the node's registration.
fn stop(shared: &Shared, mut stream: TcpStream, name: &[u8]) {
    if !shared.settings.relaxed_command_check {
        log_info!("epmd: stop refused: --relaxed-command-check is off");
        return;
    }
    // Names are compared as bytes, as epmd does: a name that is not UTF-8
    // matches nothing (every registered name is UTF-8).
    let name = std::str::from_utf8(name).unwrap_or_default();
    let found = if name.is_empty() {
        None
    } else {
        lock(&shared.registry).find(name).map(|node| node.id)
    };
    let Some(id) = found else {
        // OTP's epmd sends both words here; its client reads 7 bytes.
        let _ = stream.write_all(b"NOEXISTSTOPPED");
        return;
    };
    if let Some(socket) = lock(&shared.alive_sockets).remove(&id) {
        let _ = socket.shutdown(Shutdown::Both);
    }
    lock(&shared.registry).unregister(id);
    log_info!("node {name} stopped by a STOP request");
    let _ = stream.write_all(b"STOPPED");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn local_peers() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let me = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert!(is_local_peer(lo, me));
        assert!(is_local_peer(IpAddr::V4(Ipv4Addr::new(127, 1, 2, 3)), me));
        assert!(is_local_peer(IpAddr::V6(Ipv6Addr::LOCALHOST), me));
        assert!(is_local_peer(me, me));
        assert!(!is_local_peer(other, me));
        assert!(is_local_peer(
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
            me
        ));
    }
}
