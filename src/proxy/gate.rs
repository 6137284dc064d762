//! The gates of a link: what decides, before every write, whether a
//! direction may carry bytes — and how the proxy makes a fault look like
//! the wire.
//!
//! - **Held**: the faults in force hold the direction (a cut). The pump
//!   waits at the gate and stops reading: backpressure, never loss.
//! - **Stalled**: the *other* direction is held, and this one's first
//!   write since then is [`ACK_STALL`] old. On a real network a one-way
//!   cut drops the cut side's ACKs too, so the reverse direction stops
//!   one retransmission timeout after its first unacknowledged send; and
//!   no close crosses a one-way cut either way while it lasts.
//! - **Reset**: `reset` marks the link; each end is reset when it next
//!   sends (as `iptables ... REJECT --reject-with tcp-reset` answers the
//!   next packet), never both at once unless both send.
//!
//! A control command that holds bytes takes every affected gate before it
//! replies ([`Gates::drain`]), so once it has replied no byte crosses.
//! A blocked pump does not wait at the gate: it keeps its bytes and watches
//! its source (`pump.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::base::sync::lock;

/// How long after one direction is held the other stalls: about one TCP
/// retransmission timeout on a LAN (Linux's minimum RTO is 200 ms).
pub const ACK_STALL: Duration = Duration::from_millis(200);

/// The two directions of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the node that connected (the initiator) to the node it asked for.
    Up = 0,
    /// From the node asked for back to the initiator.
    Down = 1,
}

impl Direction {
    pub fn index(self) -> usize {
        self as usize
    }

    /// The other direction of the same link.
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Up => Direction::Down,
            Direction::Down => Direction::Up,
        }
    }
}

/// Whether a direction may write now (`Link::try_admit`).
pub enum Admission<'l> {
    /// Open: the gate, held for one write.
    Open(MutexGuard<'l, ()>),
    /// A fault holds this direction (or stalls it).
    Held,
    /// A `reset` waits: the sender, having sent, is to be reset.
    Reset,
    /// The link is closed.
    Closed,
}

/// The per-direction state behind the gates.
#[derive(Default)]
pub struct Gates {
    /// Held for the duration of one write.
    locks: [Mutex<()>; 2],
    /// Per direction: when it first wrote while the other direction was
    /// held — the send whose ACK never comes back (`None`: not since the
    /// other direction was last open).
    stall_from: [Mutex<Option<Instant>>; 2],
    /// A `reset` waits for each end's next send.
    reset: AtomicBool,
}

impl Gates {
    /// Each end is reset when it next sends.
    pub fn reset_on_next_send(&self) {
        self.reset.store(true, Ordering::SeqCst);
    }

    /// True while a `reset` waits for an end to send.
    pub fn reset_pending(&self) -> bool {
        self.reset.load(Ordering::SeqCst)
    }

    /// True if `direction` may not carry bytes now: `held` (the faults
    /// hold it), or the other direction is held (`other_held`) and this
    /// one's first write since then is [`ACK_STALL`] old — as TCP stops
    /// one retransmission timeout after a send goes unacknowledged.
    pub fn blocked(&self, direction: Direction, held: bool, other_held: bool) -> bool {
        let mut stall_from = lock(&self.stall_from[direction.index()]);
        if !other_held {
            *stall_from = None;
        }
        held || stall_from.is_some_and(|first| first.elapsed() >= ACK_STALL)
    }

    /// A write in `direction` is about to go out: if the other direction
    /// is held, its ACK will never come back, and the stall clock starts.
    fn note_write(&self, direction: Direction, other_held: bool) {
        let mut stall_from = lock(&self.stall_from[direction.index()]);
        if other_held && stall_from.is_none() {
            *stall_from = Some(Instant::now());
        }
    }

    /// Whether `direction` may carry bytes now; if so its gate, to be held
    /// for the duration of one write. `closed`: the link is; `held` answers,
    /// under the gate, whether the faults hold (this direction, the other).
    /// A blocked direction does not wait here: its pump goes on watching
    /// its source.
    pub fn try_admit(
        &self,
        direction: Direction,
        closed: bool,
        held: impl FnOnce() -> (bool, bool),
    ) -> Admission<'_> {
        if closed {
            return Admission::Closed;
        }
        if self.reset_pending() {
            return Admission::Reset;
        }
        let gate = lock(&self.locks[direction.index()]);
        let (this, other) = held();
        if self.blocked(direction, this, other) {
            return Admission::Held;
        }
        self.note_write(direction, other);
        Admission::Open(gate)
    }

    /// Waits until no chunk is being written in `direction` (a write that
    /// started before a cut finishes before the cut is confirmed). Gives up
    /// after `patience` if the receiver does not read.
    pub fn drain(&self, direction: Direction, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            // A gate poisoned by a panicking pump is not held by anyone.
            match self.locks[direction.index()].try_lock() {
                Ok(_) | Err(TryLockError::Poisoned(_)) => return true,
                Err(TryLockError::WouldBlock) => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
