//! The life of a link once both sockets are connected: read each side's
//! name as its handshake passes (the initiator's `send_name`, held until
//! read so that its first byte already obeys the cuts; the target's
//! challenge, which carries its full name), then run the two pumps — Down
//! on a thread of its own, Up on the link thread.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::buffer::RelayBuffer;
use super::handshake::{parse_assigned, parse_challenge, parse_send_name, SendName, MAX_SEND_NAME};
use super::link::{Direction, Learnt, Link};
use super::pump::{End, Pump};
use super::room::Proxy;
use crate::base::sync::spawn;
use crate::events::Event;
use crate::log_warn;
use crate::partition::NodeName;

/// Bytes read while looking for a name in the handshake, and how the
/// source ended if it did so first.
struct Handshake {
    name: Option<NodeName>,
    received: Vec<u8>,
    end: Option<End>,
}

/// Reads from `source` until `parse` finds a name or gives up (bounded by
/// [`MAX_SEND_NAME`] bytes). Nothing is forwarded meanwhile. With
/// `patience`, a source that has not said enough by then ends the link
/// (its bytes so far are still passed on first).
fn read_handshake(
    mut source: &TcpStream,
    buffer: &mut RelayBuffer,
    parse: fn(&[u8]) -> SendName,
    patience: Option<Duration>,
) -> Handshake {
    let deadline = patience.map(|patience| (Instant::now() + patience, patience));
    let mut received = Vec::new();
    let outcome = |received, name, end| Handshake {
        name,
        received,
        end,
    };
    let handshake = loop {
        if let Some((deadline, patience)) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || source.set_read_timeout(Some(left)).is_err() {
                let why = format!("no handshake within {patience:?}");
                break outcome(received, None, Some(End::Error(why)));
            }
        }
        match source.read(buffer.space()) {
            Ok(0) => break outcome(received, None, Some(End::Eof)),
            Ok(n) => {
                received.extend_from_slice(buffer.filled(n));
                match parse(&received) {
                    SendName::NeedMore if received.len() < MAX_SEND_NAME => continue,
                    SendName::Name(name) => {
                        break outcome(received, Some(NodeName::parse(&name)), None)
                    }
                    _ => break outcome(received, None, None),
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // a timed-out read: the deadline is checked at the top
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(err) => break outcome(received, None, Some(End::Error(err.to_string()))),
        }
    };
    if deadline.is_some() {
        let _ = source.set_read_timeout(None);
    }
    handshake
}

/// Reads the initiator's name, starts the Down thread and runs Up here.
/// Both threads use the link's own two sockets (`&TcpStream` reads and
/// writes): no duplicated descriptors, so a link costs two.
pub fn relay(proxy: &Arc<Proxy>, link: &Arc<Link>) {
    let mut buffer = RelayBuffer::new();
    // A node sends its name at once; a connection that stays silent (or
    // dribbles) must not hold a link, its threads and sockets forever.
    let patience = Some(proxy.settings.handshake_timeout);
    let handshake = read_handshake(link.client(), &mut buffer, parse_send_name, patience);
    let unreadable = handshake.name.is_none() && handshake.end.is_none();
    link.set_initiator(handshake.name);
    if unreadable {
        // TLS, a dynamic name, or garbage: the slow path.
        identify_opener(proxy, link);
    }
    // A cut naming the initiator may apply now.
    proxy.faults.changes().bump();
    proxy.events.publish(&Event::LinkOpen {
        id: link.id,
        from: link.initiator_label(),
        to: link.target().to_string(),
        proxy_port: link.proxy_port,
    });
    let (down_proxy, down_link) = (Arc::clone(proxy), Arc::clone(link));
    let spawned = spawn("relay-down", move || relay_down(&down_proxy, &down_link));
    if let Err(err) = spawned {
        let reason = format!("no thread for the return direction: {err}");
        log_warn!("link {} to {}: {reason}; closing", link.id, link.target());
        link.close(&reason);
        proxy.links.remove(link.id);
        return;
    }
    Pump::new(proxy, link, Direction::Up, buffer).run(handshake.received, handshake.end);
}

/// The process that opened `link` holds a registration's socket: that
/// node is the initiator (it is on this machine).
fn identify_opener(proxy: &Proxy, link: &Link) {
    let (Ok(initiator_end), Ok(proxy_end)) =
        (link.client().peer_addr(), link.client().local_addr())
    else {
        return;
    };
    if let Some(name) = proxy.local_nodes.opener_of(initiator_end, proxy_end) {
        link.learn_initiator(proxy.local_node(&name), Learnt::Process);
    }
}

/// The Down thread: reads the target's challenge (learning its full
/// name), then pumps.
fn relay_down(proxy: &Proxy, link: &Link) {
    let mut buffer = RelayBuffer::new();
    // No deadline here: while a cut holds the initiator's name, the
    // target rightly says nothing, and the link must stall, not close.
    let challenge = read_handshake(link.upstream(), &mut buffer, parse_challenge, None);
    if let Some(assigned) = parse_assigned(&challenge.received) {
        // A dynamic node name: the target named the initiator.
        link.learn_initiator(NodeName::parse(&assigned), Learnt::Status);
    }
    match challenge.name {
        Some(full) if link.learn_target(&full) => proxy.learned.learn(&full),
        Some(_) => {}
        // Encrypted (TLS) or not a challenge: the node registered here.
        None if challenge.end.is_none() => link.target_is_here(),
        None => {}
    }
    proxy.faults.changes().bump();
    Pump::new(proxy, link, Direction::Down, buffer).run(challenge.received, challenge.end);
}
