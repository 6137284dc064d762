//! The one-shot proxy listener a PORT_PLEASE2 answer hands out: bound on a
//! fresh port, it accepts exactly one connection, connects to the real
//! node, and hands both sockets to the relay. A listener nobody connects to
//! expires after `--listener-timeout`; at most `--max-pending-listeners`
//! wait at once.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::link::Link;
use super::relay::relay;
use super::room::Proxy;
use crate::base::net::connect_first;
use crate::base::sync::{lock, spawn};
use crate::events::Event;
use crate::{log_info, log_warn};

/// How long each upstream address is tried.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the proxy knows about the node a link goes to: where to reach it.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The name it registered with.
    pub name: String,
    /// Where the node registered from (nodes register over loopback).
    pub address: IpAddr,
    /// The address of this host the lookup arrived on: a node bound to
    /// one interface (`inet_dist_use_interface`) listens there, not on
    /// loopback.
    pub host_address: IpAddr,
    pub port: u16,
}

/// Why no listener could be handed out (the lookup is answered "not found").
#[derive(Debug)]
pub enum ListenError {
    /// `--max-pending-listeners` are waiting already.
    TooMany(usize),
    /// The address would not take a listener.
    Bind(IpAddr, io::Error),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::TooMany(max) => write!(
                f,
                "{max} proxy listeners are already waiting for their connection (--max-pending-listeners)"
            ),
            ListenError::Bind(address, err) => {
                write!(f, "cannot open a proxy listener on {address}: {err}")
            }
        }
    }
}

/// A one-shot proxy listener, bound and not yet accepted. It holds one of
/// the `--max-pending-listeners` places until it is served.
pub struct PendingListener {
    listener: TcpListener,
    pub port: u16,
    slot: PendingSlot,
}

/// One place among the pending listeners; given back on drop.
struct PendingSlot(Arc<Proxy>);

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.0.pending_listeners.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where a one-shot listener stands; the PORT_PLEASE2 thread waits on it
/// and wakes the listener when nobody connected in time.
#[derive(Default)]
struct AcceptWait {
    state: Mutex<AcceptState>,
    changed: Condvar,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum AcceptState {
    #[default]
    Waiting,
    Accepted,
    Expired,
}

impl PendingListener {
    /// Binds a fresh listener on `address`, port chosen by the system, if
    /// a place among the pending listeners is free.
    pub fn open(proxy: &Arc<Proxy>, address: IpAddr) -> Result<PendingListener, ListenError> {
        let before = proxy.pending_listeners.fetch_add(1, Ordering::SeqCst);
        let slot = PendingSlot(Arc::clone(proxy));
        let max = proxy.settings.max_pending_listeners;
        if before >= max {
            return Err(ListenError::TooMany(max));
        }
        let bind = || {
            let listener = TcpListener::bind(SocketAddr::new(address, 0))?;
            let port = listener.local_addr()?.port();
            Ok((listener, port))
        };
        let (listener, port) = bind().map_err(|err| ListenError::Bind(address, err))?;
        Ok(PendingListener {
            listener,
            port,
            slot,
        })
    }

    /// Starts the link thread, then waits (on the calling thread) until the
    /// initiator connects or `--listener-timeout` passes; then the
    /// listener is closed.
    pub fn serve(self, upstream: Upstream) {
        let proxy = Arc::clone(&self.slot.0);
        let timeout = proxy.settings.listener_timeout;
        let wait = Arc::new(AcceptWait::default());
        let wake_address = match self.listener.local_addr() {
            Ok(address) => address,
            Err(err) => {
                log_warn!(
                    "proxy listener for {} lost its address: {err}",
                    upstream.name
                );
                return;
            }
        };
        let (port, name) = (self.port, upstream.name.clone());
        let link_wait = Arc::clone(&wait);
        let spawned = spawn("link", move || {
            accept_and_relay(&proxy, self, upstream, &link_wait)
        });
        if let Err(err) = spawned {
            log_warn!(
                "cannot start a link thread for {name} (port {port}): {err}; refusing the link"
            );
            return;
        }
        let state = lock(&wait.state);
        let (mut state, _) = wait
            .changed
            .wait_timeout_while(state, timeout, |state| *state == AcceptState::Waiting)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *state == AcceptState::Waiting {
            *state = AcceptState::Expired;
            drop(state);
            log_info!("proxy listener {port} for {name}: nobody connected in {timeout:?}, closed");
            // Wake the blocked accept(); it sees Expired and closes.
            let _ = TcpStream::connect_timeout(&wake_address, Duration::from_secs(1));
        }
    }
}

/// The link thread: accepts the one connection, reaches the real node,
/// and relays (it becomes the Up copier).
fn accept_and_relay(
    proxy: &Arc<Proxy>,
    listener: PendingListener,
    upstream: Upstream,
    wait: &AcceptWait,
) {
    let accepted = listener.listener.accept();
    {
        let mut state = lock(&wait.state);
        if *state == AcceptState::Expired {
            return;
        }
        *state = AcceptState::Accepted;
        wait.changed.notify_all();
    }
    let port = listener.port;
    drop(listener); // one connection only
    let client = match accepted {
        Ok((client, _)) => client,
        Err(err) => {
            log_warn!(
                "proxy listener {port} for {}: accept failed: {err}",
                upstream.name
            );
            return;
        }
    };
    let node = match connect_upstream(&upstream) {
        Ok(node) => node,
        Err(err) => {
            proxy.events.publish(&Event::LinkFailed {
                to: upstream.name.clone(),
                proxy_port: port,
                node_port: upstream.port,
                error: err.to_string(),
            });
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    };
    // Without TCP_NODELAY on both sockets, Erlang's small split writes meet
    // Nagle + delayed ACK and stall for ~40 ms.
    if client
        .set_nodelay(true)
        .and(node.set_nodelay(true))
        .is_err()
    {
        log_warn!(
            "link to {} via port {port}: socket setup failed; closing",
            upstream.name
        );
        return;
    };
    let learned = proxy.learned.get(&upstream.name);
    let id = proxy.links.next_id();
    let (here, sockets) = (proxy.here(), (client, node));
    let link = Arc::new(Link::new(id, &upstream.name, learned, here, port, sockets));
    proxy.links.insert(Arc::clone(&link));
    relay(proxy, &link);
}

/// Connects to the real node: where it registered from, then the address
/// the lookup arrived on, then loopback.
fn connect_upstream(upstream: &Upstream) -> io::Result<TcpStream> {
    let mut candidates = vec![upstream.address];
    for fallback in [
        upstream.host_address,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        if !candidates.contains(&fallback) {
            candidates.push(fallback);
        }
    }
    let addresses: Vec<SocketAddr> = candidates
        .into_iter()
        .map(|address| SocketAddr::new(address, upstream.port))
        .collect();
    connect_first(&addresses, UPSTREAM_CONNECT_TIMEOUT)
}
