//! One direction of a link, copying chunk by chunk ([`Pump`]). With no
//! delay or throttle in force it reads and writes straight from one
//! buffer; while the direction is delayed or throttled it reads with a
//! timeout into a bounded queue of timestamped chunks and writes each when
//! it is due, at the capped rate. Every write first passes the direction's
//! gate ([`Link::try_admit`]): a cut holds bytes, never drops them. A held
//! direction keeps its chunk and reads ahead a little (at most
//! [`HELD_READ_AHEAD`], then the sender feels backpressure), so that a
//! node closing its socket behind held bytes shows (`closed_by=` in
//! `links`) and the link can say, once the cut lifts, that the node
//! closed it during the cut. End-of-stream and errors queue behind the
//! data like a chunk: a FIN does not cross a cut.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::buffer::RelayBuffer;
use super::link::{Direction, Link};
use super::room::Proxy;
use crate::base::rng::Rng;
use crate::partition::Shaping;

/// How a direction's source ended.
pub enum End {
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

/// Bytes a held direction reads ahead of what it holds (queued, delivered
/// in order once the cut lifts) while it watches its source for a close.
pub const HELD_READ_AHEAD: usize = 64 * 1024;

/// How often a held direction looks at its source; a fault change wakes
/// it at once.
const HELD_POLL: Duration = Duration::from_millis(100);

/// Longest a held direction whose source has ended sleeps before it looks
/// at the faults again, should a wake-up ever be missed.
const HELD_RECHECK: Duration = Duration::from_secs(5);

/// What became of a write.
pub enum Delivery {
    Done,
    /// A fault holds the direction; this many bytes were written first.
    Held(usize),
    /// The link closed, or the write failed (and closed it).
    Failed,
}

/// One direction of a link: reads from `source`, writes to `sink`.
pub struct Pump<'a> {
    pub(super) proxy: &'a Proxy,
    pub(super) link: &'a Link,
    pub(super) direction: Direction,
    pub(super) source: &'a TcpStream,
    pub(super) sink: &'a TcpStream,
    pub(super) buffer: RelayBuffer,
    /// Chunks read while shaped, with the time each may be delivered.
    pub(super) queue: VecDeque<(Instant, Vec<u8>)>,
    pub(super) queued_bytes: usize,
    pub(super) end: Option<End>,
    /// Whether `source` has a read timeout set (shaped mode).
    pub(super) timed_reads: bool,
    /// When a throttled direction may write next.
    pub(super) next_send: Instant,
    /// Jitter, drawn from the proxy's seed and the link's id.
    pub(super) random: Rng,
    /// The receiver is gone: what the source sends is read and dropped,
    /// as a gone host's packets are, until the source ends.
    pub(super) discarding: bool,
    /// The sender is gone while this direction's shaped queue was full:
    /// its reset is lost with the packets the full queue drops, and the
    /// receiver finds out by its own tick.
    pub(super) close_lost: bool,
    /// The sender sends faster than the cap: its last read found at least
    /// as much as there was room for, or the queue stood at its limit
    /// (cleared by a read that finds nothing waiting, and by a hold).
    /// The queue count alone cannot tell: it falls to nothing while the
    /// chunk just taken from it is written out at the capped rate.
    pub(super) backlogged: bool,
}

impl<'a> Pump<'a> {
    /// The pump of `direction`: Up reads the initiator's socket and writes
    /// the node's, Down the other way round.
    pub fn new(
        proxy: &'a Proxy,
        link: &'a Link,
        direction: Direction,
        buffer: RelayBuffer,
    ) -> Pump<'a> {
        let (source, sink) = match direction {
            Direction::Up => (link.client(), link.upstream()),
            Direction::Down => (link.upstream(), link.client()),
        };
        Pump {
            proxy,
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
            random: proxy.jitter_rng(link.id, direction),
            discarding: false,
            close_lost: false,
            backlogged: false,
        }
    }

    /// Copies until the source ends or the link closes. `first` holds bytes
    /// already read (the handshake); `end` says if the source already ended.
    pub fn run(mut self, first: Vec<u8>, end: Option<End>) {
        if !first.is_empty() {
            let shaping = self.shaping();
            self.enqueue(first, &shaping);
        }
        self.end = end;
        while !self.link.is_closed() && self.step() {}
        self.proxy.retire(self.link);
    }

    fn shaping(&self) -> Shaping {
        self.link
            .shaped_by(&self.proxy.faults.read(), self.direction)
    }

    /// Does one unit of work; false when this direction is done.
    fn step(&mut self) -> bool {
        let shaping = self.shaping();
        if self.end.is_none() && self.link.sender_gone(self.direction) {
            // Its sender is gone (the other direction's write to it
            // failed): what it sent and the proxy did not read yet dies
            // with it; the queue goes out, then the close — unless the
            // queue is a full shaped one, which drops the reset too.
            let why = format!("{} is gone", self.link.sender(self.direction));
            self.end = Some(End::Error(why));
            self.close_lost = self.saturated(&shaping);
        }
        let now = Instant::now();
        let due = self.queue.front().is_some_and(|&(due, _)| due <= now);
        if due || self.end.is_some() {
            // The sender sent: a pending reset resets it, held or not.
            if self.link.gates().reset_pending() {
                self.reset_sender();
                return false;
            }
            // Read before looking, so that no fault change is missed.
            let seen = self.proxy.faults.changes().generation();
            if self.is_held() {
                self.while_held(seen, &shaping);
                return true;
            }
        }
        if due {
            let Some((due, chunk)) = self.queue.pop_front() else {
                return true;
            };
            self.queued_bytes -= chunk.len();
            return self.deliver_chunk(due, chunk, &shaping);
        }
        if self.end.is_some() {
            self.link.mark_ended(self.direction, false);
            if let Some(&(due, _)) = self.queue.front() {
                self.sleep_until(due);
                return true;
            }
            return !self.pass_end();
        }
        if shaping.is_none() && self.queue.is_empty() {
            return self.copy_directly();
        }
        if self.queued_bytes >= queue_limit(&shaping) {
            self.backlogged = true;
            if let Some(&(due, _)) = self.queue.front() {
                self.sleep_until(due);
            }
            return true;
        }
        let wait = self.queue.front().map_or(SHAPED_READ_TICK, |&(due, _)| {
            due.saturating_duration_since(now)
        });
        let wait = wait.clamp(Duration::from_millis(1), SHAPED_READ_TICK);
        self.read_ahead(wait, &shaping, queue_limit(&shaping));
        true
    }

    /// True if this direction is a shaped queue running full (its sender
    /// keeps it at the cap, or it holds at least half its limit): a
    /// bottleneck that drops what comes behind it.
    fn saturated(&self, shaping: &Shaping) -> bool {
        shaping.rate.is_some() && (self.backlogged || self.queued_bytes >= queue_limit(shaping) / 2)
    }

    /// True if a fault holds this direction now, or stalls it (see
    /// `gate.rs`).
    fn is_held(&self) -> bool {
        self.link
            .blocked_by(&self.proxy.faults.read(), self.direction)
    }

    /// Held, with bytes or an end to pass on: waits for a fault change
    /// (seen after `seen`), and meanwhile reads ahead a little, so that a
    /// source that closes behind the held bytes is seen to have closed.
    fn while_held(&mut self, seen: u64, shaping: &Shaping) {
        let changes = self.proxy.faults.changes();
        if self.end.is_some() {
            self.link.mark_ended(self.direction, true);
            changes.wait_past(seen, HELD_RECHECK);
            return;
        }
        changes.wait_past(seen, HELD_POLL);
        if changes.generation() == seen && self.queued_bytes < HELD_READ_AHEAD {
            self.read_ahead(Duration::from_millis(1), shaping, HELD_READ_AHEAD);
            // A cut, not the cap, stops the sender now: a close it held is
            // delivered when the cut lifts, as TCP retransmits its FIN.
            self.backlogged = false;
            self.close_lost = false;
        }
    }

    /// Delivers a queued chunk; what a hold leaves of it goes back to the
    /// front of the queue. False when the direction is done.
    fn deliver_chunk(&mut self, due: Instant, chunk: Vec<u8>, shaping: &Shaping) -> bool {
        match self.deliver(&chunk, shaping) {
            Delivery::Done => true,
            Delivery::Failed => false,
            Delivery::Held(written) => {
                self.hold_back(due, &chunk, written);
                true
            }
        }
    }

    /// Puts what a hold left of `data` (all but its first `written` bytes)
    /// at the front of the queue, to go first when the cut lifts.
    fn hold_back(&mut self, due: Instant, data: &[u8], written: usize) {
        let rest = data.get(written..).map(<[u8]>::to_vec).unwrap_or_default();
        self.queued_bytes += rest.len();
        self.queue.push_front((due, rest));
    }

    /// The unshaped path: one blocking read, written at once.
    fn copy_directly(&mut self) -> bool {
        // No queue here: a backlog behind an earlier cap is gone.
        self.backlogged = false;
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
                let data = buffer.filled(n);
                let delivery = self.deliver(data, &Shaping::default());
                if let Delivery::Held(written) = delivery {
                    self.hold_back(Instant::now(), data, written);
                }
                self.buffer = buffer;
                self.buffer.adapt(n);
                return !matches!(delivery, Delivery::Failed);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => self.end = Some(End::Error(err.to_string())),
        }
        true
    }

    /// The shaped (and held) path: a read bounded by `wait`, queued for
    /// later, while the queue holds less than `limit`.
    fn read_ahead(&mut self, wait: Duration, shaping: &Shaping, limit: usize) {
        if self.source.set_read_timeout(Some(wait)).is_ok() {
            self.timed_reads = true;
        }
        // No more than the queue has room for: the buffer may have grown
        // to 1 MiB, and a throttled sender must feel the queue's limit.
        let room = limit.saturating_sub(self.queued_bytes);
        let space = self.buffer.space_at_most(room);
        let offered = space.len();
        match self.source.read(space) {
            Ok(0) => {
                // A close behind a saturated shaped queue is dropped with it.
                self.close_lost = self.saturated(shaping);
                self.end = Some(End::Eof);
            }
            Ok(n) => {
                if n == offered {
                    self.backlogged = true;
                }
                let chunk = self.buffer.filled(n).to_vec();
                self.buffer.adapt(n);
                self.enqueue(chunk, shaping);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.backlogged = false;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                self.close_lost = self.saturated(shaping);
                self.end = Some(End::Error(err.to_string()));
            }
        }
    }

    /// Queues a chunk to be delivered after the delay (order kept).
    fn enqueue(&mut self, chunk: Vec<u8>, shaping: &Shaping) {
        let mut due = Instant::now();
        if let Some(delay) = shaping.delay {
            due += delay.base;
            let jitter_ms = delay.jitter.as_millis() as u64;
            if jitter_ms > 0 {
                let offset = self.random.next_u64() % (2 * jitter_ms + 1);
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

    /// Sleeps until `when`, waking early if the link closes.
    pub(super) fn sleep_until(&self, when: Instant) {
        loop {
            let changes = self.proxy.faults.changes();
            let seen = changes.generation();
            let now = Instant::now();
            if now >= when || self.link.is_closed() {
                return;
            }
            changes.wait_past(seen, when - now);
        }
    }
}
