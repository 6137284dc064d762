//! Proxied distribution links: the one-shot listener a PORT_PLEASE2 opens,
//! the connection to the real node, and the two copy threads that relay
//! bytes while honouring the partition state.
//!
//! Each direction copies chunk by chunk. Before writing a chunk it takes the
//! direction's *gate* and checks the partition state; while the pair is cut
//! it waits (no CPU) on the change notifier and does not read further, so
//! the sender feels backpressure and nothing is dropped. A control command
//! that cuts a pair takes the gates of the affected links before it replies,
//! so once the reply is sent no further byte crosses. End-of-stream and
//! errors are queued behind the data like a chunk: a FIN does not cross a
//! cut either.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::handshake::{parse_send_name, SendName, MAX_SEND_NAME};
use crate::partition::NodeName;
use crate::shared::Shared;
use crate::sync::{lock, read, spawn};
use crate::{log_info, log_warn};

/// The two directions of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the node that connected (the initiator) to the node it asked for.
    Up = 0,
    /// From the node asked for back to the initiator.
    Down = 1,
}

impl Direction {
    fn index(self) -> usize {
        self as usize
    }
}

/// One live proxied connection.
pub struct Link {
    pub id: u64,
    /// The node that was looked up (it accepts the connection).
    pub target: NodeName,
    /// The node that connected; set once the handshake has been read
    /// (`None` inside: it could not be read).
    initiator: OnceLock<Option<NodeName>>,
    pub proxy_port: u16,
    pub opened: Instant,
    bytes: [AtomicU64; 2],
    gates: [Mutex<()>; 2],
    closed: AtomicBool,
    /// Directions that have finished (2 = link gone).
    finished: AtomicU8,
    close_reason: Mutex<Option<String>>,
    client: TcpStream,
    upstream: TcpStream,
}

impl Link {
    /// The initiator, if known yet.
    pub fn initiator(&self) -> Option<&NodeName> {
        self.initiator.get().and_then(Option::as_ref)
    }

    /// The initiator for display: its name, `?` while the handshake is
    /// pending, `unknown` when it could not be read.
    pub fn initiator_label(&self) -> String {
        match self.initiator.get() {
            None => "?".to_owned(),
            Some(None) => "unknown".to_owned(),
            Some(Some(name)) => name.to_string(),
        }
    }

    pub fn bytes(&self, direction: Direction) -> u64 {
        self.bytes[direction.index()].load(Ordering::Relaxed)
    }

    /// Source and destination node of `direction`.
    fn ends(&self, direction: Direction) -> (Option<&NodeName>, Option<&NodeName>) {
        match direction {
            Direction::Up => (self.initiator(), Some(&self.target)),
            Direction::Down => (Some(&self.target), self.initiator()),
        }
    }

    /// True if the partition state holds `direction` of this link now.
    pub fn held_by(&self, faults: &crate::partition::PartitionSet, direction: Direction) -> bool {
        match self.ends(direction) {
            (Some(from), Some(to)) => faults.holds(Some(from), to),
            _ => false,
        }
    }

    /// Waits until no chunk is being written in `direction` (a write that
    /// started before a cut finishes before the cut is confirmed). Gives up
    /// after `patience` if the receiver does not read.
    pub fn drain_gate(&self, direction: Direction, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            if self.gates[direction.index()].try_lock().is_ok() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Closes both connections at once (reset, or an error on one side).
    pub fn close(&self, reason: &str) {
        self.record_reason(reason);
        if !self.closed.swap(true, Ordering::SeqCst) {
            let _ = self.client.shutdown(Shutdown::Both);
            let _ = self.upstream.shutdown(Shutdown::Both);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn record_reason(&self, reason: &str) {
        let mut slot = lock(&self.close_reason);
        if slot.is_none() {
            *slot = Some(reason.to_owned());
        }
    }

    fn reason(&self) -> String {
        lock(&self.close_reason)
            .clone()
            .unwrap_or_else(|| "closed".to_owned())
    }
}

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

    fn insert(&self, link: Arc<Link>) {
        lock(&self.links).insert(link.id, link);
    }

    fn remove(&self, id: u64) {
        lock(&self.links).remove(&id);
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
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

/// What the proxy knows about the node a link goes to.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
}

/// A one-shot proxy listener, bound and not yet accepted.
pub struct ProxyListener {
    listener: TcpListener,
    pub port: u16,
}

impl ProxyListener {
    /// Binds a fresh listener on `address`, port chosen by the system.
    pub fn bind(address: IpAddr) -> io::Result<ProxyListener> {
        let listener = TcpListener::bind(SocketAddr::new(address, 0))?;
        let port = listener.local_addr()?.port();
        Ok(ProxyListener { listener, port })
    }

    /// Starts the link thread, then waits (on the calling thread) until the
    /// initiator connects or `timeout` passes; on timeout the listener is
    /// closed.
    pub fn serve(self, shared: Arc<Shared>, target: Target, timeout: Duration) {
        let wait = Arc::new(AcceptWait::default());
        let wake_address = match self.listener.local_addr() {
            Ok(address) => address,
            Err(err) => {
                log_warn!("proxy listener for {} lost its address: {err}", target.name);
                return;
            }
        };
        let link_wait = Arc::clone(&wait);
        let port = self.port;
        let name = target.name.clone();
        let spawned = spawn("link", move || {
            accept_and_relay(shared, self, target, &link_wait)
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

fn accept_and_relay(
    shared: Arc<Shared>,
    listener: ProxyListener,
    target: Target,
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
                target.name
            );
            return;
        }
    };
    let upstream = match connect_upstream(&target) {
        Ok(upstream) => upstream,
        Err(err) => {
            log_warn!(
                "link to {} via port {port}: cannot reach the node at port {}: {err}; closing the incoming side",
                target.name,
                target.port
            );
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    };
    // Without TCP_NODELAY on both sockets, Erlang's small split writes meet
    // Nagle + delayed ACK and stall for ~40 ms.
    let nodelay = client.set_nodelay(true).and(upstream.set_nodelay(true));
    let clones = client
        .try_clone()
        .and_then(|c| Ok((c, upstream.try_clone()?)));
    let (Ok(()), Ok((client_reader, upstream_reader))) = (nodelay, clones) else {
        log_warn!(
            "link to {} via port {port}: socket setup failed; closing",
            target.name
        );
        return;
    };
    let link = Arc::new(Link {
        id: shared.links.next_id(),
        target: NodeName::parse(&target.name),
        initiator: OnceLock::new(),
        proxy_port: port,
        opened: Instant::now(),
        bytes: Default::default(),
        gates: Default::default(),
        closed: AtomicBool::new(false),
        finished: AtomicU8::new(0),
        close_reason: Mutex::new(None),
        client,
        upstream,
    });
    shared.links.insert(Arc::clone(&link));
    relay(&shared, &link, client_reader, upstream_reader);
}

/// Connects to the real node: where it registered from, then loopback.
fn connect_upstream(target: &Target) -> io::Result<TcpStream> {
    let mut candidates = vec![target.address];
    for fallback in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        if !candidates.contains(&fallback) {
            candidates.push(fallback);
        }
    }
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address to try");
    for address in candidates {
        match TcpStream::connect_timeout(
            &SocketAddr::new(address, target.port),
            Duration::from_secs(5),
        ) {
            Ok(stream) => return Ok(stream),
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

/// Reads the initiator's name, starts the Down thread and runs Up here.
fn relay(shared: &Arc<Shared>, link: &Arc<Link>, mut client: TcpStream, upstream: TcpStream) {
    let mut buffer = RelayBuffer::new();
    let mut pending = Vec::new();
    let mut initial_end = None;
    // A node sends its name at once; a connection that stays silent (or
    // dribbles) must not hold the link, its threads and sockets forever.
    let patience = shared.settings.handshake_timeout;
    let deadline = Instant::now() + patience;
    let initiator = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || client.set_read_timeout(Some(left)).is_err() {
            initial_end = Some(End::Error(format!("no handshake within {patience:?}")));
            break None;
        }
        match client.read(buffer.space()) {
            Ok(0) => {
                initial_end = Some(End::Eof);
                break None;
            }
            Ok(n) => {
                pending.extend_from_slice(buffer.filled(n));
                match parse_send_name(&pending) {
                    SendName::NeedMore if pending.len() < MAX_SEND_NAME => continue,
                    SendName::Name(name) => break Some(NodeName::parse(&name)),
                    _ => break None,
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // the deadline is checked at the top
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(err) => {
                initial_end = Some(End::Error(err.to_string()));
                break None;
            }
        }
    };
    let _ = client.set_read_timeout(None);
    let _ = link.initiator.set(initiator);
    // The target may have learnt nothing yet, but a cut may now apply.
    shared.changes.bump();
    log_info!(
        "link {} opened: {} -> {} via proxy port {}",
        link.id,
        link.initiator_label(),
        link.target,
        link.proxy_port
    );
    let down_shared = Arc::clone(shared);
    let down_link = Arc::clone(link);
    let down_writer = match link.client.try_clone() {
        Ok(writer) => writer,
        Err(err) => return finish_early(shared, link, &format!("socket clone failed: {err}")),
    };
    let spawned = spawn("relay-down", move || {
        pump(
            &down_shared,
            &down_link,
            Direction::Down,
            upstream,
            down_writer,
            RelayBuffer::new(),
            None,
            Vec::new(),
        );
    });
    if let Err(err) = spawned {
        return finish_early(
            shared,
            link,
            &format!("no thread for the return direction: {err}"),
        );
    }
    let up_writer = match link.upstream.try_clone() {
        Ok(writer) => writer,
        Err(err) => {
            link.close(&format!("socket clone failed: {err}"));
            return;
        }
    };
    pump(
        shared,
        link,
        Direction::Up,
        client,
        up_writer,
        buffer,
        initial_end,
        pending,
    );
}

fn finish_early(shared: &Shared, link: &Link, reason: &str) {
    log_warn!("link {} to {}: {reason}; closing", link.id, link.target);
    link.close(reason);
    shared.links.remove(link.id);
}

/// How a direction's source ended.
enum End {
    Eof,
    Error(String),
}

/// Copies one direction until its source ends or the link closes.
#[allow(clippy::too_many_arguments)]
fn pump(
    shared: &Shared,
    link: &Link,
    direction: Direction,
    mut source: TcpStream,
    mut sink: TcpStream,
    mut buffer: RelayBuffer,
    mut end: Option<End>,
    first_chunk: Vec<u8>,
) {
    let mut chunk_len = first_chunk.len();
    let mut carry = first_chunk;
    loop {
        if end.is_none() && carry.is_empty() {
            match source.read(buffer.space()) {
                Ok(0) => end = Some(End::Eof),
                Ok(n) => chunk_len = n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => end = Some(End::Error(err.to_string())),
            }
        }
        let Some(gate) = admit(shared, link, direction) else {
            break;
        };
        if !carry.is_empty() {
            // bytes read while looking for the handshake
            let data = std::mem::take(&mut carry);
            if let Err(err) = sink.write_all(&data) {
                drop(gate);
                link.close(&format!(
                    "write to {} failed: {err}",
                    receiver(link, direction)
                ));
                break;
            }
            link.bytes[direction.index()].fetch_add(data.len() as u64, Ordering::Relaxed);
            chunk_len = 0;
            continue;
        }
        match &end {
            None => {
                let data = buffer.filled(chunk_len);
                if let Err(err) = sink.write_all(data) {
                    drop(gate);
                    link.close(&format!(
                        "write to {} failed: {err}",
                        receiver(link, direction)
                    ));
                    break;
                }
                link.bytes[direction.index()].fetch_add(chunk_len as u64, Ordering::Relaxed);
                buffer.adapt(chunk_len);
            }
            Some(End::Eof) => {
                // pass the FIN on; the other direction may still flow
                let _ = sink.shutdown(Shutdown::Write);
                link.record_reason(&format!("{} closed", sender(link, direction)));
                break;
            }
            Some(End::Error(err)) => {
                drop(gate);
                link.close(&format!(
                    "read from {} failed: {err}",
                    sender(link, direction)
                ));
                break;
            }
        }
    }
    finish_direction(shared, link);
}

fn sender(link: &Link, direction: Direction) -> String {
    match direction {
        Direction::Up => link.initiator_label(),
        Direction::Down => link.target.to_string(),
    }
}

fn receiver(link: &Link, direction: Direction) -> String {
    match direction {
        Direction::Up => link.target.to_string(),
        Direction::Down => link.initiator_label(),
    }
}

/// Waits until `direction` may carry bytes; returns its gate, held for the
/// duration of one write. `None` once the link is closed.
fn admit<'a>(shared: &Shared, link: &'a Link, direction: Direction) -> Option<MutexGuard<'a, ()>> {
    loop {
        let seen = shared.changes.generation();
        if link.is_closed() {
            return None;
        }
        let gate = lock(&link.gates[direction.index()]);
        if !link.held_by(&read(&shared.partitions), direction) {
            return Some(gate);
        }
        drop(gate);
        // Woken by any fault change or link close; the timeout is a safety net.
        shared.changes.wait_past(seen, Duration::from_secs(5));
    }
}

/// Called once per direction; the second call retires the link.
fn finish_direction(shared: &Shared, link: &Link) {
    if link.finished.fetch_add(1, Ordering::SeqCst) == 1 {
        link.close("closed");
        shared.links.remove(link.id);
        log_info!(
            "link {} closed: {} -> {} ({} bytes up, {} bytes down; {})",
            link.id,
            link.initiator_label(),
            link.target,
            link.bytes(Direction::Up),
            link.bytes(Direction::Down),
            link.reason()
        );
    } else {
        // The other direction may be blocked waiting on a cut that will
        // never lift for a dead link; it re-checks on the next change.
        shared.changes.bump();
    }
}

/// A copy buffer that grows while reads fill it (bulk transfer) and shrinks
/// back when traffic is small again, so idle links keep little memory.
struct RelayBuffer {
    bytes: Vec<u8>,
}

const MIN_BUFFER: usize = 8 * 1024;
const MAX_BUFFER: usize = 256 * 1024;

impl RelayBuffer {
    fn new() -> RelayBuffer {
        RelayBuffer {
            bytes: vec![0; MIN_BUFFER],
        }
    }

    fn space(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn filled(&self, n: usize) -> &[u8] {
        self.bytes.get(..n).unwrap_or(&self.bytes)
    }

    /// Grows after a full read, shrinks after a small one.
    fn adapt(&mut self, last_read: usize) {
        let size = self.bytes.len();
        if last_read == size && size < MAX_BUFFER {
            self.bytes = vec![0; size * 2];
        } else if size > MIN_BUFFER && last_read < MIN_BUFFER / 4 {
            self.bytes = vec![0; MIN_BUFFER];
        }
    }
}
