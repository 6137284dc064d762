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
//!
//! While a direction is delayed or throttled it reads with a timeout into a
//! bounded queue of timestamped chunks and writes each when it is due, at
//! the capped rate; with no such fault it reads and writes straight from
//! one buffer. Each side's name is read from the handshake as it passes:
//! the initiator's `send_name` (held until read, so the first byte already
//! obeys the cuts) and the target's challenge (which carries its full name).
//! Until the target's host is known, faults naming a host do not apply to
//! it: at most the initiator's first message crosses such a cut, and the
//! challenge that answers it is held.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::handshake::{parse_challenge, parse_send_name, SendName, MAX_SEND_NAME};
use crate::partition::{NodeName, PartitionSet, Shaping};
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
    /// The node that was looked up (it accepts the connection), by the
    /// name it registered with.
    target_alive: NodeName,
    /// Its full name, once its challenge has been read (or learnt from an
    /// earlier link).
    target_full: OnceLock<NodeName>,
    /// The target as faults see it while its full name is not known: its
    /// registered name with an empty host, which no pattern names (a
    /// pattern's host is never empty). So `n1` applies from the first
    /// byte, but `n1@h1` or `*@h1` only once the host is known: with one
    /// proxy per host, the `app` registered here may well be `app@h2`,
    /// and holding its first link for a fault on `app@h1` would hold it
    /// for good (nothing would ever teach the proxy its host).
    target_host_unknown: NodeName,
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
    /// Directions whose source has closed, the close not yet passed on
    /// (held by a cut or queued behind delayed bytes).
    ended: [AtomicBool; 2],
    close_reason: Mutex<Option<String>>,
    client: TcpStream,
    upstream: TcpStream,
}

impl Link {
    /// The target: its full name when known, else its registered name.
    pub fn target(&self) -> &NodeName {
        self.target_full.get().unwrap_or(&self.target_alive)
    }

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

    /// Who has closed their side while the close waits to be passed on
    /// (e.g. held by a cut), for `links`.
    pub fn pending_close(&self) -> Option<String> {
        let ended = |direction: Direction| self.ended[direction.index()].load(Ordering::Relaxed);
        let (up, down) = (ended(Direction::Up), ended(Direction::Down));
        match (up, down) {
            (false, false) => None,
            (true, false) => Some(self.initiator_label()),
            (false, true) => Some(self.target().to_string()),
            (true, true) => Some("both".to_owned()),
        }
    }

    pub fn bytes(&self, direction: Direction) -> u64 {
        self.bytes[direction.index()].load(Ordering::Relaxed)
    }

    /// Source and destination node of `direction`, as faults see them.
    ///
    /// Until the target's host is known, the two directions err on
    /// opposite sides, so that neither a cut is crossed nor a link stuck
    /// for good: bytes *to* the target are matched as if it were on no
    /// named host (its answer to them is how the proxy learns the host),
    /// bytes *from* it as if it were on every host (it may answer
    /// `alive` and send its name only later, and must not cross a cut
    /// meanwhile).
    fn ends(&self, direction: Direction) -> (Option<&NodeName>, Option<&NodeName>) {
        match (direction, self.target_full.get()) {
            (Direction::Up, Some(target)) => (self.initiator(), Some(target)),
            (Direction::Up, None) => (self.initiator(), Some(&self.target_host_unknown)),
            (Direction::Down, Some(target)) => (Some(target), self.initiator()),
            (Direction::Down, None) => (Some(&self.target_alive), self.initiator()),
        }
    }

    /// True if the partition state holds `direction` of this link now.
    pub fn held_by(&self, faults: &PartitionSet, direction: Direction) -> bool {
        let (from, to) = self.ends(direction);
        faults.holds(from, to)
    }

    /// How the partition state slows `direction` of this link now.
    pub fn shaped_by(&self, faults: &PartitionSet, direction: Direction) -> Shaping {
        let (from, to) = self.ends(direction);
        faults.shaping(from, to)
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
    /// Where the node registered from (nodes register over loopback).
    pub address: IpAddr,
    /// The address of this host the lookup arrived on: a node bound to
    /// one interface (`inet_dist_use_interface`) listens there, not on
    /// loopback.
    pub host_address: IpAddr,
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
            shared.events.publish(&format!(
                "link-failed to={} proxy_port={port} reason=\"cannot reach the node: {err}\"",
                target.name
            ));
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    };
    // Without TCP_NODELAY on both sockets, Erlang's small split writes meet
    // Nagle + delayed ACK and stall for ~40 ms.
    if client
        .set_nodelay(true)
        .and(upstream.set_nodelay(true))
        .is_err()
    {
        log_warn!(
            "link to {} via port {port}: socket setup failed; closing",
            target.name
        );
        return;
    };
    let target_full = OnceLock::new();
    if let Some(full) = lock(&shared.learned_names).get(&target.name) {
        let _ = target_full.set(full.clone());
    }
    let link = Arc::new(Link {
        id: shared.links.next_id(),
        target_alive: NodeName::parse(&target.name),
        target_full,
        target_host_unknown: NodeName {
            alive: target.name.clone(),
            host: Some(String::new()),
        },
        initiator: OnceLock::new(),
        proxy_port: port,
        opened: Instant::now(),
        bytes: Default::default(),
        gates: Default::default(),
        closed: AtomicBool::new(false),
        finished: AtomicU8::new(0),
        ended: Default::default(),
        close_reason: Mutex::new(None),
        client,
        upstream,
    });
    shared.links.insert(Arc::clone(&link));
    relay(&shared, &link);
}

/// Connects to the real node: where it registered from, then the address
/// the lookup arrived on, then loopback.
fn connect_upstream(target: &Target) -> io::Result<TcpStream> {
    let mut candidates = vec![target.address];
    for fallback in [
        target.host_address,
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
fn relay(shared: &Arc<Shared>, link: &Arc<Link>) {
    let mut buffer = RelayBuffer::new();
    // A node sends its name at once; a connection that stays silent (or
    // dribbles) must not hold a link, its threads and sockets forever.
    let patience = Some(shared.settings.handshake_timeout);
    let handshake = read_handshake(&link.client, &mut buffer, parse_send_name, patience);
    let _ = link.initiator.set(handshake.name);
    // A cut naming the initiator may apply now.
    shared.changes.bump();
    log_info!(
        "link {} opened: {} -> {} via proxy port {}",
        link.id,
        link.initiator_label(),
        link.target(),
        link.proxy_port
    );
    shared.events.publish(&format!(
        "link-open id={} from={} to={} proxy_port={}",
        link.id,
        link.initiator_label(),
        link.target(),
        link.proxy_port
    ));
    let (down_shared, down_link) = (Arc::clone(shared), Arc::clone(link));
    let spawned = spawn("relay-down", move || {
        let mut buffer = RelayBuffer::new();
        // No deadline here: while a cut holds the initiator's name, the
        // target rightly says nothing, and the link must stall, not close.
        let challenge = read_handshake(&down_link.upstream, &mut buffer, parse_challenge, None);
        if let Some(full) = challenge.name {
            if full.alive == down_link.target_alive.alive {
                lock(&down_shared.learned_names).insert(full.alive.clone(), full.clone());
                let _ = down_link.target_full.set(full);
                down_shared.changes.bump();
            }
        }
        let pump = Pump::new(
            &down_shared,
            &down_link,
            Direction::Down,
            &down_link.upstream,
            &down_link.client,
            buffer,
        );
        pump.run(challenge.received, challenge.end);
    });
    if let Err(err) = spawned {
        return finish_early(
            shared,
            link,
            &format!("no thread for the return direction: {err}"),
        );
    }
    Pump::new(
        shared,
        link,
        Direction::Up,
        &link.client,
        &link.upstream,
        buffer,
    )
    .run(handshake.received, handshake.end);
}

fn finish_early(shared: &Shared, link: &Link, reason: &str) {
    log_warn!("link {} to {}: {reason}; closing", link.id, link.target());
    link.close(reason);
    shared.links.remove(link.id);
}

/// How a direction's source ended.
enum End {
    Eof,
    Error(String),
}

/// Bytes a shaped direction may hold in its queue before it stops reading
/// (so a slow link pushes back on its sender instead of buffering forever).
fn queue_limit(shaping: &Shaping) -> usize {
    match shaping.rate {
        // about a quarter second of traffic at the cap
        Some(rate) => ((rate.bytes_per_second() / 4.0) as usize).clamp(16 * 1024, 4 << 20),
        None => 4 << 20,
    }
}

/// Longest a shaped direction blocks in one read, so a fault change is
/// noticed even on a quiet link.
const SHAPED_READ_TICK: Duration = Duration::from_millis(250);

/// One direction of a link: reads from `source`, writes to `sink`.
struct Pump<'a> {
    shared: &'a Shared,
    link: &'a Link,
    direction: Direction,
    source: &'a TcpStream,
    sink: &'a TcpStream,
    buffer: RelayBuffer,
    /// Chunks read while shaped, with the time each may be delivered.
    queue: VecDeque<(Instant, Vec<u8>)>,
    queued_bytes: usize,
    end: Option<End>,
    /// Whether `source` has a read timeout set (shaped mode).
    timed_reads: bool,
    /// When a throttled direction may write next.
    next_send: Instant,
    /// Jitter randomness (xorshift).
    random: u64,
}

impl<'a> Pump<'a> {
    fn new(
        shared: &'a Shared,
        link: &'a Link,
        direction: Direction,
        source: &'a TcpStream,
        sink: &'a TcpStream,
        buffer: RelayBuffer,
    ) -> Pump<'a> {
        Pump {
            shared,
            link,
            direction,
            source,
            sink,
            buffer,
            queue: VecDeque::new(),
            queued_bytes: 0,
            end: None,
            timed_reads: false,
            next_send: Instant::now(),
            random: link.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// Copies until the source ends or the link closes. `first` holds bytes
    /// already read (the handshake); `end` says if the source already ended.
    fn run(mut self, first: Vec<u8>, end: Option<End>) {
        if !first.is_empty() {
            let shaping = self.shaping();
            self.enqueue(first, &shaping);
        }
        self.end = end;
        while !self.link.is_closed() && self.step() {}
        finish_direction(self.shared, self.link);
    }

    fn shaping(&self) -> Shaping {
        self.link
            .shaped_by(&read(&self.shared.partitions), self.direction)
    }

    /// Does one unit of work; false when this direction is done.
    fn step(&mut self) -> bool {
        let shaping = self.shaping();
        let now = Instant::now();
        if let Some(&(due, _)) = self.queue.front() {
            if due <= now {
                let Some((_, chunk)) = self.queue.pop_front() else {
                    return true;
                };
                self.queued_bytes -= chunk.len();
                return self.deliver(&chunk, &shaping);
            }
        }
        if self.end.is_some() {
            let direction = self.direction;
            self.link.ended[direction.index()].store(true, Ordering::Relaxed);
            if let Some(&(due, _)) = self.queue.front() {
                self.sleep_until(due);
                return true;
            }
            self.pass_end();
            return false;
        }
        if shaping.is_none() && self.queue.is_empty() {
            return self.copy_directly();
        }
        if self.queued_bytes >= queue_limit(&shaping) {
            if let Some(&(due, _)) = self.queue.front() {
                self.sleep_until(due);
            }
            return true;
        }
        let wait = self.queue.front().map_or(SHAPED_READ_TICK, |&(due, _)| {
            due.saturating_duration_since(now)
        });
        self.read_shaped(
            wait.clamp(Duration::from_millis(1), SHAPED_READ_TICK),
            &shaping,
        );
        true
    }

    /// The unshaped path: one blocking read, written at once.
    fn copy_directly(&mut self) -> bool {
        if self.timed_reads {
            let _ = self.source.set_read_timeout(None);
            self.timed_reads = false;
        }
        match self.source.read(self.buffer.space()) {
            Ok(0) => self.end = Some(End::Eof),
            Ok(n) => {
                // A delay or cap may have been set while this read waited:
                // then the chunk takes the shaped path like any later one.
                let shaping = self.shaping();
                if !shaping.is_none() {
                    let chunk = self.buffer.filled(n).to_vec();
                    self.buffer.adapt(n);
                    self.enqueue(chunk, &shaping);
                    return true;
                }
                let buffer = std::mem::take(&mut self.buffer);
                let delivered = self.deliver(buffer.filled(n), &Shaping::default());
                self.buffer = buffer;
                self.buffer.adapt(n);
                return delivered;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => self.end = Some(End::Error(err.to_string())),
        }
        true
    }

    /// The shaped path: a read bounded by `wait`, queued for later.
    fn read_shaped(&mut self, wait: Duration, shaping: &Shaping) {
        if self.source.set_read_timeout(Some(wait)).is_ok() {
            self.timed_reads = true;
        }
        // No more than the queue has room for: the buffer may have grown
        // to 1 MiB, and a throttled sender must feel the queue's limit.
        let room = queue_limit(shaping).saturating_sub(self.queued_bytes);
        match self.source.read(self.buffer.space_at_most(room)) {
            Ok(0) => self.end = Some(End::Eof),
            Ok(n) => {
                let chunk = self.buffer.filled(n).to_vec();
                self.buffer.adapt(n);
                self.enqueue(chunk, shaping);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => self.end = Some(End::Error(err.to_string())),
        }
    }

    /// Queues a chunk to be delivered after the delay (order kept).
    fn enqueue(&mut self, chunk: Vec<u8>, shaping: &Shaping) {
        let mut due = Instant::now();
        if let Some(delay) = shaping.delay {
            due += delay.base;
            let jitter_ms = delay.jitter.as_millis() as u64;
            if jitter_ms > 0 {
                let offset = self.next_random() % (2 * jitter_ms + 1);
                let offset = Duration::from_millis(offset);
                due = (due + offset).checked_sub(delay.jitter).unwrap_or(due);
            }
        }
        if let Some(&(last, _)) = self.queue.back() {
            due = due.max(last);
        }
        self.queued_bytes += chunk.len();
        self.queue.push_back((due, chunk));
    }

    fn next_random(&mut self) -> u64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    /// Writes `data` once the direction is open, at the capped rate if any.
    /// False if the link closed or the write failed.
    fn deliver(&mut self, data: &[u8], shaping: &Shaping) -> bool {
        let mut rest = data;
        while !rest.is_empty() {
            let slice_len = match shaping.rate {
                // a twentieth of a second of traffic per write
                Some(rate) => ((rate.bytes_per_second() / 20.0) as usize)
                    .clamp(1, 64 * 1024)
                    .min(rest.len()),
                None => rest.len(),
            };
            if shaping.rate.is_some() {
                self.sleep_until(self.next_send);
            }
            let (slice, remaining) = rest.split_at(slice_len);
            let Some(gate) = admit(self.shared, self.link, self.direction) else {
                return false;
            };
            if let Err(err) = self.sink.write_all(slice) {
                drop(gate);
                self.link.close(&format!(
                    "write to {} failed: {err}",
                    receiver(self.link, self.direction)
                ));
                return false;
            }
            let direction = self.direction;
            self.link.bytes[direction.index()].fetch_add(slice.len() as u64, Ordering::Relaxed);
            drop(gate);
            if let Some(rate) = shaping.rate {
                let cost = Duration::from_secs_f64(slice.len() as f64 / rate.bytes_per_second());
                self.next_send = self.next_send.max(Instant::now()) + cost;
            }
            rest = remaining;
        }
        true
    }

    /// Passes the source's end on once the direction is open: a FIN as a
    /// FIN (the other direction may go on), an error by closing the link.
    fn pass_end(&mut self) {
        let Some(gate) = admit(self.shared, self.link, self.direction) else {
            return;
        };
        match self.end.take() {
            Some(End::Error(err)) => {
                drop(gate);
                self.link.close(&format!(
                    "read from {} failed: {err}",
                    sender(self.link, self.direction)
                ));
            }
            _ => {
                let _ = self.sink.shutdown(Shutdown::Write);
                self.link
                    .record_reason(&format!("{} closed", sender(self.link, self.direction)));
            }
        }
    }

    /// Sleeps until `when`, waking early if the link closes.
    fn sleep_until(&self, when: Instant) {
        loop {
            let seen = self.shared.changes.generation();
            let now = Instant::now();
            if now >= when || self.link.is_closed() {
                return;
            }
            self.shared.changes.wait_past(seen, when - now);
        }
    }
}

fn sender(link: &Link, direction: Direction) -> String {
    match direction {
        Direction::Up => link.initiator_label(),
        Direction::Down => link.target().to_string(),
    }
}

fn receiver(link: &Link, direction: Direction) -> String {
    match direction {
        Direction::Up => link.target().to_string(),
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
        let (up, down) = (link.bytes(Direction::Up), link.bytes(Direction::Down));
        let reason = link.reason();
        log_info!(
            "link {} closed: {} -> {} ({up} bytes up, {down} bytes down; {reason})",
            link.id,
            link.initiator_label(),
            link.target(),
        );
        shared.events.publish(&format!(
            "link-close id={} from={} to={} up={up} down={down} reason=\"{reason}\"",
            link.id,
            link.initiator_label(),
            link.target(),
        ));
    }
    // The other direction may be waiting on a cut or a delay; let it look
    // again (it sees the link closed, or goes on).
    shared.changes.bump();
}

/// A copy buffer that grows while reads fill it (bulk transfer) and shrinks
/// back when traffic is small again, so idle links keep little memory.
#[derive(Default)]
struct RelayBuffer {
    bytes: Vec<u8>,
}

const MIN_BUFFER: usize = 8 * 1024;
/// Bulk reads of up to 1 MiB: on loopback the relay then spends ~25% less
/// CPU per byte than with 256 KiB, and relays ~20% faster; 4 MiB costs the
/// same CPU per byte (docs/performance.md).
const MAX_BUFFER: usize = 1024 * 1024;

impl RelayBuffer {
    fn new() -> RelayBuffer {
        RelayBuffer {
            bytes: vec![0; MIN_BUFFER],
        }
    }

    fn space(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The first `limit` bytes of the buffer (all of it if smaller), never
    /// less than one: a read into nothing returns 0, which means EOF.
    fn space_at_most(&mut self, limit: usize) -> &mut [u8] {
        let len = self.bytes.len().min(limit.max(1));
        self.bytes.split_at_mut(len).0
    }

    fn filled(&self, n: usize) -> &[u8] {
        self.bytes.get(..n).unwrap_or(&self.bytes)
    }

    /// Doubles after a read that filled the buffer, halves after one that
    /// used less than a quarter of it, and drops straight back to the
    /// minimum after a tiny one (a tick, a small message), so a link whose
    /// bulk transfer ended holds a large buffer only until its next read.
    fn adapt(&mut self, last_read: usize) {
        let size = self.bytes.len();
        let wanted = if last_read >= size {
            (size * 2).min(MAX_BUFFER)
        } else if last_read < MIN_BUFFER / 4 {
            MIN_BUFFER
        } else if last_read < size / 4 {
            (size / 2).max(MIN_BUFFER)
        } else {
            size
        };
        if wanted != size {
            self.bytes = vec![0; wanted];
        }
    }
}

#[cfg(test)]
mod relay_buffer_tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_on_full_reads() {
        let mut buffer = RelayBuffer::new();
        let mut sizes = vec![buffer.space().len()];
        for _ in 0..10 {
            let full = buffer.space().len();
            buffer.adapt(full);
            sizes.push(buffer.space().len());
        }
        assert_eq!(sizes.first(), Some(&MIN_BUFFER));
        assert!(sizes.windows(2).all(|pair| pair[1] >= pair[0]));
        assert_eq!(sizes.last(), Some(&MAX_BUFFER));
    }

    #[test]
    fn shrinks_by_halves_then_at_once_on_a_tiny_read() {
        let mut buffer = RelayBuffer::new();
        while buffer.space().len() < MAX_BUFFER {
            let full = buffer.space().len();
            buffer.adapt(full);
        }
        // a read using most of the buffer keeps it
        buffer.adapt(MAX_BUFFER / 2);
        assert_eq!(buffer.space().len(), MAX_BUFFER);
        // a moderate read halves it
        buffer.adapt(MAX_BUFFER / 8);
        assert_eq!(buffer.space().len(), MAX_BUFFER / 2);
        // a tick-sized read drops it to the minimum
        buffer.adapt(4);
        assert_eq!(buffer.space().len(), MIN_BUFFER);
        buffer.adapt(1);
        assert_eq!(buffer.space().len(), MIN_BUFFER);
    }

    #[test]
    fn space_at_most_caps_a_read() {
        let mut buffer = RelayBuffer::new();
        assert_eq!(buffer.space_at_most(100).len(), 100);
        assert_eq!(buffer.space_at_most(0).len(), 1);
        assert_eq!(buffer.space_at_most(usize::MAX).len(), MIN_BUFFER);
    }
}
