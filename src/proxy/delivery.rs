//! What a pump writes ([`Pump::deliver`], [`Pump::pass_end`]): chunks at
//! the capped rate, each through the direction's gate (what a hold leaves
//! goes back to the pump's queue), the source's end of stream, and a
//! pending `reset` of the sender. A write to a receiver that is gone ends
//! only this direction: the receiver's own direction passes its close on,
//! behind the bytes it already queued.

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use super::gate::Admission;
use super::pump::{Delivery, End, Pump};
use crate::partition::Shaping;

/// Bytes a TCP segment carries besides its payload on an Ethernet link
/// (Ethernet 14, IPv4 20, TCP with timestamps 32): a cap counts them, as a
/// real shaper (`tc tbf`) does.
const SEGMENT_OVERHEAD: f64 = 66.0;
/// Payload per full segment (MSS at a 1500-byte MTU, with timestamps).
const SEGMENT_PAYLOAD: f64 = 1448.0;

/// What `payload` bytes weigh on the wire, headers included.
fn wire_bytes(payload: usize) -> f64 {
    let payload = payload as f64;
    payload + (payload / SEGMENT_PAYLOAD).ceil() * SEGMENT_OVERHEAD
}

impl Pump<'_> {
    /// Writes `data` at the capped rate if any, while the direction is
    /// open; stops where a fault holds it.
    pub(super) fn deliver(&mut self, data: &[u8], shaping: &Shaping) -> Delivery {
        if self.discarding {
            return Delivery::Done;
        }
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
            let gate = match self.link.try_admit(&self.proxy.faults, self.direction) {
                Admission::Open(gate) => gate,
                Admission::Held => return Delivery::Held(data.len() - rest.len()),
                Admission::Reset => {
                    self.reset_sender();
                    return Delivery::Failed;
                }
                Admission::Closed => return Delivery::Failed,
            };
            if let Err(err) = self.sink.write_all(slice) {
                drop(gate);
                // The receiver is gone. Its own direction passes that on
                // behind the bytes already on their way (its queue), as a
                // real queue would, and reads no more of what it sent: on
                // a real wire those bytes die with it. This one goes on
                // reading its source and drops what it reads, until the
                // source ends (by its own timeout, if nothing tells it).
                let why = format!("write to {} failed: {err}", self.receiver());
                self.link.record_reason(&self.close_reason(why));
                self.link.receiver_gone(self.direction);
                self.proxy.faults.changes().bump();
                self.discarding = true;
                self.queue.clear();
                self.queued_bytes = 0;
                return Delivery::Done;
            }
            self.link.count(self.direction, slice.len());
            drop(gate);
            if let Some(rate) = shaping.rate {
                let cost =
                    Duration::from_secs_f64(wire_bytes(slice.len()) / rate.bytes_per_second());
                self.next_send = self.next_send.max(Instant::now()) + cost;
            }
            rest = remaining;
        }
        Delivery::Done
    }

    /// Passes the source's end on if the direction is open: a FIN as a FIN
    /// (the other direction may go on), an error by closing the link.
    /// False while a fault holds it.
    pub(super) fn pass_end(&mut self) -> bool {
        if self.discarding {
            // Nothing to pass on to a receiver that is gone.
            return true;
        }
        if self.close_lost {
            crate::log_info!(
                "link {}: {} is gone; its reset is lost in the full queue",
                self.link.id,
                self.sender()
            );
            return true;
        }
        let gate = match self.link.try_admit(&self.proxy.faults, self.direction) {
            Admission::Open(gate) => gate,
            Admission::Held => return false,
            Admission::Reset => {
                self.reset_sender();
                return true;
            }
            Admission::Closed => return true,
        };
        match self.end.take() {
            Some(End::Error(err)) => {
                drop(gate);
                let why = format!("read from {} failed: {err}", self.sender());
                self.link.close(&self.close_reason(why));
            }
            _ => {
                let _ = self.sink.shutdown(Shutdown::Write);
                let why = format!("{} closed", self.sender());
                self.link.record_reason(&self.close_reason(why));
            }
        }
        true
    }

    /// A `reset` is pending and the sender sends: it is reset (its
    /// connection closed), and its bytes go nowhere. The other end is reset
    /// when it sends in turn.
    pub(super) fn reset_sender(&self) {
        self.link.record_reason("reset by control");
        crate::log_info!("link {}: reset {} as it sent", self.link.id, self.sender());
        let _ = self.source.shutdown(Shutdown::Both);
    }

    /// Why the link ends: a close a cut held says so (`closed by b during
    /// the cut`: a write that then fails, or a FIN passed on, is its
    /// consequence), else `otherwise`.
    fn close_reason(&self, otherwise: String) -> String {
        self.link.close_in_cut().unwrap_or(otherwise)
    }

    fn sender(&self) -> String {
        self.link.sender(self.direction)
    }

    fn receiver(&self) -> String {
        self.link.receiver(self.direction)
    }
}
