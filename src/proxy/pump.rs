//! One direction of a link, copying chunk by chunk ([`Pump`]). With no
//! delay or throttle in force it reads and writes straight from one
//! buffer; while the direction is delayed or throttled it reads with a
//! timeout into a bounded queue of timestamped chunks and writes each when
//! it is due, at the capped rate. Every write first passes the direction's
//! gate ([`Link::admit`]): a cut holds bytes (the pump stops reading, so
//! the sender feels backpressure), never drops them. End-of-stream and
//! errors queue behind the data like a chunk: a FIN does not cross a cut.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::buffer::RelayBuffer;
use super::link::{Direction, Link};
use super::room::Proxy;
use crate::base::rng::Rng;
use crate::events::Event;
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

/// One direction of a link: reads from `source`, writes to `sink`.
pub struct Pump<'a> {
    proxy: &'a Proxy,
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
    /// Jitter, drawn from the proxy's seed and the link's id.
    random: Rng,
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
        retire(self.proxy, self.link);
    }

    fn shaping(&self) -> Shaping {
        self.link
            .shaped_by(&self.proxy.faults.read(), self.direction)
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
            self.link.mark_ended(self.direction);
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
            let Some(gate) = self.link.admit(&self.proxy.faults, self.direction) else {
                if self.link.gates().reset_pending() {
                    self.reset_sender();
                }
                return false;
            };
            if let Err(err) = self.sink.write_all(slice) {
                drop(gate);
                // The receiver is gone. Its own direction learns so when it
                // reads (EOF or reset) and passes that on behind the bytes
                // already on their way, as a real queue would; this one ends.
                let receiver = self.link.receiver(self.direction);
                self.link
                    .record_reason(&format!("write to {receiver} failed: {err}"));
                return false;
            }
            self.link.count(self.direction, slice.len());
            drop(gate);
            if let Some(rate) = shaping.rate {
                let cost = Duration::from_secs_f64(slice.len() as f64 / rate.bytes_per_second());
                self.next_send = self.next_send.max(Instant::now()) + cost;
            }
            rest = remaining;
        }
        true
    }

    /// A `reset` is pending and the sender sends: it is reset (its
    /// connection closed), and its bytes go nowhere. The other end is reset
    /// when it sends in turn.
    fn reset_sender(&self) {
        let sender = self.link.sender(self.direction);
        self.link.record_reason("reset by control");
        crate::log_info!("link {}: reset {sender} as it sent", self.link.id);
        let _ = self.source.shutdown(Shutdown::Both);
    }

    /// Passes the source's end on once the direction is open: a FIN as a
    /// FIN (the other direction may go on), an error by closing the link.
    fn pass_end(&mut self) {
        let Some(gate) = self.link.admit(&self.proxy.faults, self.direction) else {
            return;
        };
        match self.end.take() {
            Some(End::Error(err)) => {
                drop(gate);
                self.link.close(&format!(
                    "read from {} failed: {err}",
                    self.link.sender(self.direction)
                ));
            }
            _ => {
                let _ = self.sink.shutdown(Shutdown::Write);
                self.link
                    .record_reason(&format!("{} closed", self.link.sender(self.direction)));
            }
        }
    }

    /// Sleeps until `when`, waking early if the link closes.
    fn sleep_until(&self, when: Instant) {
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

/// Called once per direction when it is done; the second call retires the
/// link: closed, out of the table, and one `link-close` event.
pub fn retire(proxy: &Proxy, link: &Link) {
    if link.finish_direction() {
        link.close("closed");
        proxy.links.remove(link.id);
        proxy.events.publish(&Event::LinkClose {
            id: link.id,
            from: link.initiator_label(),
            to: link.target().to_string(),
            up: link.bytes(Direction::Up),
            down: link.bytes(Direction::Down),
            reason: link.reason(),
        });
    }
    // The other direction may be waiting on a cut or a delay; let it look
    // again (it sees the link closed, or goes on).
    proxy.faults.changes().bump();
}
