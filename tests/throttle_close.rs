//! A node that gives up on a throttled link it was flooding (issue 15,
//! case 4). On a real shaped link (`tc tbf`) the queue toward the other
//! node is full, so the reset the closing node sends is dropped with the
//! packets that do not fit: the other node hears nothing and ticks out on
//! its own. Through epmdpxy the close must be lost the same way — not
//! relayed once the queue has drained, which made the other node report
//! `connection_closed` a quarter second later, before its own tick.
//!
//! Fake nodes flood each other through `throttle 256kbps`; the initiator
//! then closes with unread bytes (a reset), and the target must see its
//! stream go quiet, neither ended nor reset, for well past the time the
//! queue takes to drain. The link ends when the target closes in turn.
//! And only a full queue loses a close: once a lifted cap has let the
//! backlog through, a close under a new cap arrives.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{wait_until, Proxy};

/// How long the target listens after the initiator's reset: the throttled
/// queue (a quarter second of traffic) drains long before.
const QUIET_FOR: Duration = Duration::from_secs(3);

/// Bytes the target must have received before the initiator gives up: one
/// second of traffic at the cap, so the queue is surely full.
const SATURATED_AFTER: usize = 32_000;

/// Writes `stream` full until `stop` is set (or a write fails), then
/// returns the stream, not closed, and how many bytes it wrote.
fn flood(mut stream: TcpStream, stop: Arc<AtomicBool>) -> thread::JoinHandle<(TcpStream, usize)> {
    thread::spawn(move || {
        let chunk = vec![0x5a_u8; 4096];
        let mut written = 0;
        let _ = stream.set_write_timeout(Some(Duration::from_millis(50)));
        while !stop.load(Ordering::SeqCst) {
            match stream.write(&chunk) {
                Ok(n) => written += n,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        (stream, written)
    })
}

/// Reads `stream` into `received` until it ends or fails; returns how it
/// ended and when.
fn count_until_end(
    mut stream: TcpStream,
    received: Arc<AtomicUsize>,
) -> thread::JoinHandle<(String, Instant)> {
    thread::spawn(move || {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => return ("end of stream".to_owned(), Instant::now()),
                Ok(n) => {
                    received.fetch_add(n, Ordering::SeqCst);
                }
                Err(err) => return (format!("{err}"), Instant::now()),
            }
        }
    })
}

#[test]
fn a_reset_behind_a_full_throttled_queue_is_lost() {
    let proxy = Proxy::start(&[]);
    let target = proxy.fake_target();
    let link = target.open_link();
    let throttle = format!("throttle {} | {} 256kbps", target.initiator, target.name);
    assert_eq!(
        proxy.ctl(&throttle),
        format!("OK {throttle} (1 live link shaped)")
    );

    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicUsize::new(0));
    let target_reader = count_until_end(
        link.target.try_clone().expect("clone"),
        Arc::clone(&received),
    );
    let target_stop = Arc::new(AtomicBool::new(false));
    let target_writer = flood(link.target, Arc::clone(&target_stop));
    let initiator_writer = flood(link.initiator, Arc::clone(&stop));
    wait_until(
        Duration::from_secs(20),
        "the throttled link to run full",
        || received.load(Ordering::SeqCst) >= SATURATED_AFTER,
    );

    // The initiator gives up: closed with the target's bytes unread, it
    // sends a reset.
    stop.store(true, Ordering::SeqCst);
    let (initiator_end, _) = initiator_writer.join().expect("the flood stops");
    drop(initiator_end);
    let closed_at = Instant::now();

    // The target hears nothing more than what was queued: no reset, no end.
    while closed_at.elapsed() < QUIET_FOR {
        if target_reader.is_finished() {
            let (how, at) = target_reader.join().expect("the reader");
            panic!(
                "the initiator's close crossed the full queue: the target saw {how} \
                 {:.2} s after it\n{}",
                at.duration_since(closed_at).as_secs_f64(),
                proxy.log()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    let links = proxy.links();
    assert_eq!(links.len(), 1, "the link waits for the target: {links:?}");

    // The target gives up too (its own tick timeout): the link ends.
    target_stop.store(true, Ordering::SeqCst);
    let (target_end, _) = target_writer.join().expect("the target's flood stops");
    target_end.shutdown(Shutdown::Both).expect("close");
    drop(target_end);
    let (how, _) = target_reader.join().expect("the reader ends");
    assert_eq!(how, "end of stream", "the target's own close");
    wait_until(
        Duration::from_secs(10),
        "the target's close to end the link",
        || proxy.links().is_empty(),
    );
}

/// A cap lifted while its sender flooded, and set again once the sender
/// went quiet: the backlog is gone, so the sender's next close is not lost
/// in a queue that is no longer full — it reaches the target.
#[test]
fn a_close_after_the_backlog_is_gone_is_delivered() {
    let proxy = Proxy::start(&[]);
    let target = proxy.fake_target();
    let link = target.open_link();
    let islands = format!("{} | {}", target.initiator, target.name);
    proxy.ctl_ok(&format!("throttle {islands} 256kbps"));
    let received = Arc::new(AtomicUsize::new(0));
    let target_reader = count_until_end(link.target, Arc::clone(&received));
    let stop = Arc::new(AtomicBool::new(false));
    let initiator_writer = flood(link.initiator, Arc::clone(&stop));
    let saturated = || received.load(Ordering::SeqCst) >= SATURATED_AFTER;
    wait_until(
        Duration::from_secs(20),
        "the throttled link to run full",
        saturated,
    );

    // Lifted while flooding; then the flood stops and everything arrives.
    proxy.ctl_ok(&format!("clear {islands}"));
    stop.store(true, Ordering::SeqCst);
    let (mut initiator_end, written) = initiator_writer.join().expect("the flood stops");
    let all_arrived = || received.load(Ordering::SeqCst) == written;
    wait_until(Duration::from_secs(20), "every byte to arrive", all_arrived);

    // Capped again; the quiet sender says a last word and closes.
    proxy.ctl_ok(&format!("throttle {islands} 256kbps"));
    initiator_end.write_all(b"bye").expect("last words");
    initiator_end.shutdown(Shutdown::Write).expect("close");
    let ended = || target_reader.is_finished();
    wait_until(
        Duration::from_secs(10),
        "the close to reach the target",
        ended,
    );
    let (how, _) = target_reader.join().expect("the reader");
    assert_eq!(how, "end of stream");
    assert_eq!(received.load(Ordering::SeqCst), written + 3);
}
