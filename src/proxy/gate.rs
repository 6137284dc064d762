//! The gates of a link: what decides, before every write, whether a
//! direction may carry bytes — and how the proxy makes a fault look like
//! the wire.
//!
//! - **Held**: the faults in force hold the direction (a cut). The pump
//!   waits at the gate and stops reading: backpressure, never loss.
//! - **Stalled**: the *other* direction has been held for [`ACK_STALL`].
//!   On a real network a one-way cut drops the cut side's ACKs too, so the
//!   reverse direction stops about one retransmission timeout later; and
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
    /// Since when each direction has been held (`None`: it is not).
    held_since: [Mutex<Option<Instant>>; 2],
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

    /// Records whether `direction` is held now; returns since when it has
    /// been (`None` when it is not).
    fn note_held(&self, direction: Direction, held: bool) -> Option<Instant> {
        let mut since = lock(&self.held_since[direction.index()]);
        match (held, *since) {
            (false, _) => *since = None,
            (true, None) => *since = Some(Instant::now()),
            (true, Some(_)) => {}
        }
        *since
    }

    /// True if `direction` may not carry bytes now: `held` (the faults
    /// hold it), or the faults have held the other direction (`other_held`
    /// now) for [`ACK_STALL`]. Remembers since when each is held.
    pub fn blocked(&self, direction: Direction, held: bool, other_held: bool) -> bool {
        let held = self.note_held(direction, held);
        let other = self.note_held(direction.opposite(), other_held);
        held.is_some() || other.is_some_and(|since| since.elapsed() >= ACK_STALL)
    }

    /// Whether `direction` may carry bytes now; if so its gate, to be held
    /// for the duration of one write. `closed`: the link is; `blocked`
    /// answers under the gate (see [`Gates::blocked`]). A blocked direction
    /// does not wait here: its pump goes on watching its source.
    pub fn try_admit(
        &self,
        direction: Direction,
        closed: bool,
        blocked: impl FnOnce() -> bool,
    ) -> Admission<'_> {
        if closed {
            return Admission::Closed;
        }
        if self.reset_pending() {
            return Admission::Reset;
        }
        let gate = lock(&self.locks[direction.index()]);
        if blocked() {
            return Admission::Held;
        }
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
