//! Nothing lost: 8 proxied links carry verifiable byte streams in both
//! directions (≥ 1 GiB in all) while a driver applies ≥ 100 short random
//! cut/fix cycles. Every stream must arrive complete, in order and byte for
//! byte; during each cut the proxy's own per-link byte counters (control
//! `links`: `up=`/`down=`) must not move in a held direction, which proves
//! no byte crossed the cut.
//!
//! The nodes are fakes played by this test, as a real node would behave on
//! the wire: each registers with ALIVE2, the initiator looks the target up
//! with PORT_PLEASE2, connects to the proxy port it is given and sends a
//! `send_name` first, so the proxy knows both ends and cuts apply.
//!
//! Stream format: 4 KiB blocks; each starts with the stream id and the
//! block's sequence number (8 bytes each, big-endian), the other 4080 bytes
//! come from a PRNG table at an offset that depends on both. The receiver
//! regenerates every block and compares, so any lost, repeated, reordered
//! or altered byte fails the test at the first wrong block.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::rng::{seed, Rng};
use common::{fake, wait_until, Proxy};

const LINKS: usize = 8;
/// Each direction of each link carries at least this much.
const BYTES_PER_STREAM: u64 = 64 << 20;
/// Bytes per second each stream is paced at (16 streams: ~200 MiB/s).
const PACE_PER_STREAM: u64 = 12 << 20;
/// At least this many cut/fix cycles, all while the streams flow.
const MIN_CYCLES: usize = 100;
const BLOCK: usize = 4096;
const HEADER: usize = 16;
const TABLE: usize = 1 << 20;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Stream contents
// ---------------------------------------------------------------------------

/// Pseudo-random bytes the blocks are cut from.
fn table(seed: u64) -> Arc<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(TABLE + BLOCK);
    while bytes.len() < TABLE + BLOCK {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    Arc::new(bytes)
}

/// Block `seq` of stream `stream`.
fn fill_block(table: &[u8], stream: u64, seq: u64, out: &mut [u8]) {
    out[..8].copy_from_slice(&stream.to_be_bytes());
    out[8..HEADER].copy_from_slice(&seq.to_be_bytes());
    let at = (seq
        .wrapping_mul(4093)
        .wrapping_add(stream.wrapping_mul(7919))
        % TABLE as u64) as usize;
    out[HEADER..].copy_from_slice(&table[at..at + BLOCK - HEADER]);
}

/// Writes whole blocks until `stop` is set and at least `quota` bytes went
/// out; then half-closes. Returns the bytes written. Paced at
/// `PACE_PER_STREAM` so the run does not starve other work on the machine:
/// unpaced, a debug build moves over 1 GB/s here.
fn write_stream(
    mut sink: TcpStream,
    table: Arc<Vec<u8>>,
    stream: u64,
    quota: u64,
    stop: Arc<AtomicBool>,
) -> u64 {
    const BATCH: usize = 16;
    let mut buffer = vec![0u8; BLOCK * BATCH];
    let mut seq = 0u64;
    let mut written = 0u64;
    let started = Instant::now();
    while written < quota || !stop.load(Ordering::Relaxed) {
        let allowed = started.elapsed().as_secs_f64() * PACE_PER_STREAM as f64;
        if written as f64 > allowed {
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        for block in buffer.chunks_mut(BLOCK) {
            fill_block(&table, stream, seq, block);
            seq += 1;
        }
        if let Err(e) = sink.write_all(&buffer) {
            panic!("stream {stream:#x}: write failed after {written} bytes: {e}");
        }
        written += buffer.len() as u64;
    }
    sink.shutdown(Shutdown::Write).expect("half-close");
    written
}

/// Reads until EOF, checking every byte; returns the bytes read. `progress`
/// is updated as bytes arrive.
fn read_stream(
    mut source: TcpStream,
    table: Arc<Vec<u8>>,
    stream: u64,
    progress: Arc<AtomicU64>,
) -> u64 {
    let mut expected = vec![0u8; BLOCK];
    let mut buffer = vec![0u8; 256 * 1024];
    let mut offset = 0u64; // bytes verified so far
    fill_block(&table, stream, 0, &mut expected);
    loop {
        let n = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("stream {stream:#x}: read failed after {offset} bytes: {e}"),
        };
        let mut data = &buffer[..n];
        while !data.is_empty() {
            let in_block = (offset % BLOCK as u64) as usize;
            let take = data.len().min(BLOCK - in_block);
            if data[..take] != expected[in_block..in_block + take] {
                let seq = offset / BLOCK as u64;
                panic!(
                    "stream {stream:#x}: wrong bytes at offset {offset} (block {seq}, +{in_block}): got {:?}..., want {:?}...",
                    &data[..take.min(24)],
                    &expected[in_block..in_block + take.min(24)]
                );
            }
            offset += take as u64;
            data = &data[take..];
            if offset.is_multiple_of(BLOCK as u64) {
                fill_block(&table, stream, offset / BLOCK as u64, &mut expected);
            }
        }
        progress.store(offset, Ordering::Relaxed);
    }
    offset
}

// ---------------------------------------------------------------------------
// Fake nodes
// ---------------------------------------------------------------------------

/// One proxied link: the initiator's and the target's ends.
struct Link {
    initiator: String,
    target: String,
    initiator_end: TcpStream,
    target_end: TcpStream,
}

fn open_link(epmd_port: u16, initiator: &str, target: &str, listener: &TcpListener) -> Link {
    let link = fake::open_link(epmd_port, initiator, target, listener);
    for end in [&link.initiator, &link.target] {
        end.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        end.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    }
    Link {
        initiator: initiator.to_owned(),
        target: target.to_owned(),
        initiator_end: link.initiator,
        target_end: link.target,
    }
}

// ---------------------------------------------------------------------------
// The proxy's view: `links`
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counters {
    up: u64,
    down: u64,
}

/// `(state, counters)` per link, indexed like `links`; found by target name.
fn link_table(proxy: &Proxy, links: &[Link]) -> Vec<(String, Counters)> {
    let reply = proxy.ctl("links");
    links
        .iter()
        .map(|link| {
            let line = reply
                .lines()
                .find(|line| {
                    let mut words = line.split(' ');
                    words.nth(3) == Some(link.target.as_str())
                })
                .unwrap_or_else(|| panic!("no link to {} in:\n{reply}", link.target));
            let field = |key: &str| {
                line.split(' ')
                    .find_map(|word| word.strip_prefix(key))
                    .unwrap_or_else(|| panic!("no {key} in {line}"))
                    .to_owned()
            };
            let number = |key: &str| field(key).parse::<u64>().expect("a byte count");
            assert!(
                line.contains(&format!(" {}@localhost -> ", link.initiator)),
                "initiator not known: {line}"
            );
            (
                field("state="),
                Counters {
                    up: number("up="),
                    down: number("down="),
                },
            )
        })
        .collect()
}

/// A random cut: the command's argument and, per link, which directions
/// it holds (up, down).
fn random_cut(rng: &mut Rng, links: &[Link]) -> (String, Vec<(bool, bool)>) {
    let mut next = |n: usize| rng.below(n);
    let mut held = vec![(false, false); links.len()];
    let a = next(links.len());
    let spec = match next(4) {
        0 => {
            // islands: some initiators against their targets
            let mut chosen = vec![a];
            for i in 0..links.len() {
                if i != a && next(3) == 0 {
                    chosen.push(i);
                }
            }
            for &i in &chosen {
                held[i] = (true, true);
            }
            let initiators: Vec<&str> = chosen
                .iter()
                .map(|&i| links[i].initiator.as_str())
                .collect();
            let targets: Vec<&str> = chosen.iter().map(|&i| links[i].target.as_str()).collect();
            format!("{} | {}", initiators.join(","), targets.join(","))
        }
        1 => {
            held[a] = (true, false);
            format!("{} -> {}", links[a].initiator, links[a].target)
        }
        2 => {
            held[a] = (false, true);
            format!("{} -> {}", links[a].target, links[a].initiator)
        }
        _ => {
            // every initiator's host to one target: only that link's up side
            held[a] = (true, false);
            format!("*@localhost -> {}", links[a].target)
        }
    };
    (spec, held)
}

fn state_for(held: (bool, bool)) -> &'static str {
    match held {
        (false, false) => "open",
        (true, true) => "cut",
        (true, false) => "held-up",
        (false, true) => "held-down",
    }
}

#[test]
fn streams_survive_random_cuts_byte_exact() {
    let seed = seed("SOAK_SEED", "soak");
    let started = Instant::now();
    // -v: the proxy logs each link's byte counts when it closes.
    let proxy = Proxy::start(&["-v"]);
    let table = table(seed);

    // 8 targets listening, 8 initiators; all registered.
    let mut registrations = Vec::new();
    let mut links = Vec::new();
    for i in 0..LINKS {
        let initiator = format!("soakI{i}_{}", proxy.epmd_port);
        let target = format!("soakT{i}_{}", proxy.epmd_port);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind target");
        let port = listener.local_addr().expect("address").port();
        registrations.push(fake::register(proxy.epmd_port, &target, port));
        registrations.push(fake::register(proxy.epmd_port, &initiator, 1));
        links.push(open_link(proxy.epmd_port, &initiator, &target, &listener));
    }
    assert_eq!(link_table(&proxy, &links).len(), LINKS);

    // Two streams per link: up (initiator → target) and down.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    let mut progress = Vec::new();
    for (i, link) in links.iter().enumerate() {
        for (direction, from, to) in [
            (0u64, &link.initiator_end, &link.target_end),
            (1u64, &link.target_end, &link.initiator_end),
        ] {
            let stream = ((i as u64) << 1) | direction;
            let (table_w, table_r, stop) =
                (Arc::clone(&table), Arc::clone(&table), Arc::clone(&stop));
            let sink = from.try_clone().expect("clone");
            let source = to.try_clone().expect("clone");
            let seen = Arc::new(AtomicU64::new(0));
            progress.push(Arc::clone(&seen));
            writers.push(thread::spawn(move || {
                write_stream(sink, table_w, stream, BYTES_PER_STREAM, stop)
            }));
            readers.push(thread::spawn(move || {
                read_stream(source, table_r, stream, seen)
            }));
        }
    }

    // The driver: short random cuts while the streams flow.
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut cycles = 0;
    let mut held_directions = 0;
    loop {
        let total: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        if cycles >= MIN_CYCLES && total >= BYTES_PER_STREAM * (2 * LINKS) as u64 {
            break;
        }
        let (spec, held) = random_cut(&mut rng, &links);
        let reply = proxy.ctl(&format!("cut {spec}"));
        // The reply counts the live links the cut holds: one per held link.
        let holds = held.iter().filter(|h| **h != (false, false)).count();
        let want = match holds {
            1 => format!("OK cut {spec} (1 live link held)"),
            n => format!("OK cut {spec} ({n} live links held)"),
        };
        assert_eq!(reply, want, "cycle {cycles}");
        let before = link_table(&proxy, &links);
        for (i, ((state, _), &h)) in before.iter().zip(&held).enumerate() {
            assert_eq!(state, state_for(h), "cycle {cycles} `cut {spec}`: link {i}");
        }
        // The cut lasts 10-60 ms: long enough for many chunks, short
        // against any tick timeout a real node would have.
        thread::sleep(Duration::from_millis(10 + rng.below(50) as u64));
        let during = link_table(&proxy, &links);
        for (i, (((_, was), (_, now)), &(up, down))) in
            before.iter().zip(&during).zip(&held).enumerate()
        {
            if up {
                assert_eq!(
                    now.up, was.up,
                    "cycle {cycles} `cut {spec}`: bytes crossed up on link {i}"
                );
                held_directions += 1;
            }
            if down {
                assert_eq!(
                    now.down, was.down,
                    "cycle {cycles} `cut {spec}`: bytes crossed down on link {i}"
                );
                held_directions += 1;
            }
        }
        let reply = proxy.ctl(&format!("fix {spec}"));
        assert_eq!(reply, format!("OK fix {spec}"), "cycle {cycles}");
        cycles += 1;
        thread::sleep(Duration::from_millis(rng.below(30) as u64));
    }
    let cycles_done_at = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let status = proxy.ctl("status");
    assert!(
        status.starts_with("OK 0 faults") && status.lines().count() == 2,
        "{status}"
    );

    let written: Vec<u64> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();
    let read: Vec<u64> = readers
        .into_iter()
        .map(|r| r.join().expect("reader"))
        .collect();
    for (stream, (w, r)) in written.iter().zip(&read).enumerate() {
        assert_eq!(r, w, "stream {stream}: {w} bytes written, {r} arrived");
        assert!(*w >= BYTES_PER_STREAM);
    }
    // The proxy counted the same bytes (plus the send_name going up): its
    // `link N closed: I -> T (U bytes up, D bytes down; ...)` lines.
    for (i, link) in links.iter().enumerate() {
        let hello = fake::send_name(&link.initiator, 1);
        let want = format!(
            "{}@localhost -> {} ({} bytes up, {} bytes down;",
            link.initiator,
            link.target,
            written[2 * i] + hello.len() as u64,
            written[2 * i + 1]
        );
        wait_until(IO_TIMEOUT, "the proxy to log the link closed", || {
            proxy.log().contains(&want)
        });
    }
    let total: u64 = read.iter().sum();
    assert!(total >= 1 << 30, "only {total} bytes");
    let log = proxy.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "soak: {total} bytes verified over {} streams, {cycles} cut/fix cycles ({held_directions} held directions checked) done at {cycles_done_at:?}, total {:?}",
        2 * LINKS,
        started.elapsed()
    );
    drop(links);
    drop(registrations);
}
