//! A proxied link's state ([`Link`]: its two ends as far as they are
//! known, byte counters, its gates (`gate.rs`), which sources have closed
//! and how it closed). The table of live links is `table.rs`.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

pub use super::gate::Direction;
use super::gate::{Admission, Gates};

use crate::base::sync::lock;
use crate::partition::names::Host;
use crate::partition::{Faults, NodeName, PartitionSet, Shaping};

/// A direction's source is still open.
const RUNNING: u8 = 0;
/// Its source has closed; the close waits behind queued bytes.
const ENDED: u8 = 1;
/// Its source has closed and a cut held the close.
const ENDED_IN_CUT: u8 = 2;

/// How an end of a link was learnt when its handshake did not name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learnt {
    /// The process that opened the link holds a registration's socket.
    Process,
    /// The target's status assigned the initiator its name (`named:`).
    Status,
    /// The target is the node registered here under the name looked up.
    Registration,
}

impl std::fmt::Display for Learnt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Learnt::Process => "process",
            Learnt::Status => "status",
            Learnt::Registration => "registration",
        })
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
    /// registered name on this machine (it registered here), so `n1`
    /// applies from the first byte, and `n1@h` or `*@h` too when `h` is
    /// one of this machine's names or addresses. A host named otherwise
    /// applies once the challenge shows it.
    target_here: NodeName,
    /// How the target's full name was learnt, when not from its challenge.
    target_by: OnceLock<Learnt>,
    /// The node that connected as its handshake named it; set once the
    /// handshake has been read (`None` inside: it could not be read).
    initiator: OnceLock<Option<NodeName>>,
    /// The initiator learnt another way, when the handshake could not
    /// name it: from the process that opened the link, or from the name
    /// the target assigned it (dynamic node names).
    initiator_late: OnceLock<(NodeName, Learnt)>,
    pub proxy_port: u16,
    pub opened: Instant,
    bytes: [AtomicU64; 2],
    gates: Gates,
    closed: AtomicBool,
    /// Directions that have finished (2 = link gone).
    finished: AtomicU8,
    /// Per direction: `RUNNING`, or its source has closed (`ENDED`; under
    /// a cut `ENDED_IN_CUT`), whether or not the close was passed on.
    ended: [AtomicU8; 2],
    close_reason: Mutex<Option<String>>,
    /// Per direction: a write to its receiver failed (that node is gone).
    receiver_gone: [AtomicBool; 2],
    client: TcpStream,
    upstream: TcpStream,
}

impl Link {
    /// A new link to the node registered as `target` (its full name, if
    /// an earlier link taught it), over the two connected sockets.
    pub fn new(
        id: u64,
        target: &str,
        learned: Option<NodeName>,
        here: Host,
        proxy_port: u16,
        sockets: (TcpStream, TcpStream),
    ) -> Link {
        let (client, upstream) = sockets;
        let target_full = OnceLock::new();
        if let Some(full) = learned {
            let _ = target_full.set(full);
        }
        Link {
            id,
            target_alive: NodeName::parse(target),
            target_full,
            target_here: NodeName::on(target, here),
            target_by: OnceLock::new(),
            initiator: OnceLock::new(),
            initiator_late: OnceLock::new(),
            proxy_port,
            opened: Instant::now(),
            bytes: Default::default(),
            gates: Gates::default(),
            closed: AtomicBool::new(false),
            finished: AtomicU8::new(0),
            ended: [AtomicU8::new(RUNNING), AtomicU8::new(RUNNING)],
            close_reason: Mutex::new(None),
            receiver_gone: Default::default(),
            client,
            upstream,
        }
    }

    /// The initiator's socket (its connection to the proxy listener).
    pub fn client(&self) -> &TcpStream {
        &self.client
    }

    /// The socket to the real node.
    pub fn upstream(&self) -> &TcpStream {
        &self.upstream
    }

    /// Records the initiator as read from its handshake (`None`: unreadable).
    pub fn set_initiator(&self, name: Option<NodeName>) {
        let _ = self.initiator.set(name);
    }

    /// Records the initiator learnt after its handshake (see [`Learnt`]);
    /// false if it was known already.
    pub fn learn_initiator(&self, name: NodeName, by: Learnt) -> bool {
        self.initiator().is_none() && self.initiator_late.set((name, by)).is_ok()
    }

    /// The target's challenge could not be read: from now on it is the
    /// node registered here, on this machine.
    pub fn target_is_here(&self) {
        if self.target_full.set(self.target_here.clone()).is_ok() {
            let _ = self.target_by.set(Learnt::Registration);
        }
    }

    /// How each end was learnt, when not from the handshake: e.g.
    /// ` from_by=process to_by=registration` (empty when both were read).
    pub fn learnt_note(&self) -> String {
        let mut note = String::new();
        if let Some((_, by)) = self.initiator_late.get() {
            note.push_str(&format!(" from_by={by}"));
        }
        if let Some(by) = self.target_by.get() {
            note.push_str(&format!(" to_by={by}"));
        }
        note
    }

    /// Records the target's full name from its challenge (unless an
    /// earlier link taught it); false if it is not the node this link was
    /// opened to.
    pub fn learn_target(&self, full: &NodeName) -> bool {
        if full.alive != self.target_alive.alive {
            return false;
        }
        let _ = self.target_full.set(full.clone());
        true
    }

    /// Counts bytes written in `direction`.
    pub fn count(&self, direction: Direction, bytes: usize) {
        self.bytes[direction.index()].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The source of `direction` has closed; the close waits to be passed
    /// on, held by a cut if `in_cut`.
    pub fn mark_ended(&self, direction: Direction, in_cut: bool) {
        let state = if in_cut { ENDED_IN_CUT } else { ENDED };
        self.ended[direction.index()].fetch_max(state, Ordering::Relaxed);
    }

    /// What decides, before every write, whether a direction may carry
    /// bytes (see `gate.rs`).
    pub fn gates(&self) -> &Gates {
        &self.gates
    }

    /// A write in `direction` failed: its receiver is gone.
    pub fn receiver_gone(&self, direction: Direction) {
        self.receiver_gone[direction.index()].store(true, Ordering::SeqCst);
    }

    /// True if the node sending in `direction` is gone (a write to it, in
    /// the other direction, failed).
    pub fn sender_gone(&self, direction: Direction) -> bool {
        let direction = direction.opposite();
        self.receiver_gone[direction.index()].load(Ordering::SeqCst)
    }

    /// Called once per direction when it is done; true for the second.
    pub fn finish_direction(&self) -> bool {
        self.finished.fetch_add(1, Ordering::SeqCst) == 1
    }

    /// The target: its full name when known, else its registered name.
    pub fn target(&self) -> &NodeName {
        self.target_full.get().unwrap_or(&self.target_alive)
    }

    /// The initiator, if known yet.
    pub fn initiator(&self) -> Option<&NodeName> {
        let late = self.initiator_late.get().map(|(name, _)| name);
        self.initiator.get().and_then(Option::as_ref).or(late)
    }

    /// True once the handshake was read and no way told who sent it.
    pub fn initiator_unknowable(&self) -> bool {
        self.initiator.get().is_some() && self.initiator().is_none()
    }

    /// The initiator for display: its name, `?` while the handshake is
    /// pending, `unknown` when it could not be learnt.
    pub fn initiator_label(&self) -> String {
        match (self.initiator(), self.initiator.get()) {
            (Some(name), _) => name.to_string(),
            (None, None) => "?".to_owned(),
            (None, Some(_)) => "unknown".to_owned(),
        }
    }

    /// Who has closed their side while the close waits to be passed on
    /// (e.g. held by a cut), for `links`: a node's name, or `both`.
    pub fn pending_close(&self) -> Option<String> {
        self.closers(ENDED)
    }

    /// Why the link ends when a cut held a node's close: `closed by
    /// <node> during the cut` (or `by both`), else `None`.
    pub fn close_in_cut(&self) -> Option<String> {
        let who = self.closers(ENDED_IN_CUT)?;
        Some(format!("closed by {who} during the cut"))
    }

    /// The senders whose direction has reached `state` or beyond.
    fn closers(&self, state: u8) -> Option<String> {
        let ended =
            |direction: Direction| self.ended[direction.index()].load(Ordering::Relaxed) >= state;
        match (ended(Direction::Up), ended(Direction::Down)) {
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
    /// for good: bytes *to* the target are matched as if it were on one
    /// of this machine's names (it registered here; its answer to them is
    /// how the proxy learns the host it calls itself), bytes *from* it as
    /// if it were on every host (it may answer `alive` and send its name
    /// only later, and must not cross a cut meanwhile).
    fn ends(&self, direction: Direction) -> (Option<&NodeName>, Option<&NodeName>) {
        match (direction, self.target_full.get()) {
            (Direction::Up, Some(target)) => (self.initiator(), Some(target)),
            (Direction::Up, None) => (self.initiator(), Some(&self.target_here)),
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

    /// True if `direction` may not carry bytes now: the faults hold it, or
    /// stall it (see `gate.rs`).
    pub fn blocked_by(&self, faults: &PartitionSet, direction: Direction) -> bool {
        let held = self.held_by(faults, direction);
        let other_held = self.held_by(faults, direction.opposite());
        self.gates.blocked(direction, held, other_held)
    }

    /// Whether `direction` may carry bytes now; if so its gate, held for
    /// one write (see [`Gates::try_admit`]).
    pub fn try_admit(&self, faults: &Faults, direction: Direction) -> Admission<'_> {
        let held = || {
            let faults = faults.read();
            let this = self.held_by(&faults, direction);
            (this, self.held_by(&faults, direction.opposite()))
        };
        self.gates.try_admit(direction, self.is_closed(), held)
    }

    /// Waits for the write in progress in `direction`, up to `patience`;
    /// false if it did not end (a receiver that does not read).
    pub fn drain_gate(&self, direction: Direction, patience: std::time::Duration) -> bool {
        self.gates.drain(direction, patience)
    }

    /// Who sends in `direction`, for log lines.
    pub fn sender(&self, direction: Direction) -> String {
        match direction {
            Direction::Up => self.initiator_label(),
            Direction::Down => self.target().to_string(),
        }
    }

    /// Who receives in `direction`, for log lines.
    pub fn receiver(&self, direction: Direction) -> String {
        match direction {
            Direction::Up => self.target().to_string(),
            Direction::Down => self.initiator_label(),
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

    pub fn record_reason(&self, reason: &str) {
        let mut slot = lock(&self.close_reason);
        if slot.is_none() {
            *slot = Some(reason.to_owned());
        }
    }

    pub fn reason(&self) -> String {
        lock(&self.close_reason)
            .clone()
            .unwrap_or_else(|| "closed".to_owned())
    }
}
