//! Benchmark: epmdpxy against direct loopback and a tuned `socat`, plus
//! real OTP nodes through epmdpxy against the same nodes through OTP's own
//! `epmd`.
//!
//! Full run (release build; prints one markdown table, about a minute; see
//! docs/performance.md for the figures and what they mean):
//!
//!     cargo test --release --test bench -- --ignored --nocapture
//!
//! `EPMDPXY_BENCH_MESH=10,30` (or empty) overrides the mesh sizes.
//!
//! `bench_smoke` runs on every `cargo test`: the same code with tiny sizes,
//! asserting only that each measurement produced sane numbers, so the
//! benchmark never rots. Timings are never asserted.
//!
//! The bench plays the Erlang nodes itself where it can. A fake node (a
//! Rust server) registers with ALIVE2 and keeps that socket open; a client
//! looks it up with PORT_PLEASE2, connects to the port it is given and
//! sends a `send_name` handshake message first; the fake node answers with
//! status `sok` and a challenge carrying its full name, as a real node
//! does (the proxy reads both to learn each side's name). The handshake
//! stops there: after it bytes are relayed raw, so the fake node runs a
//! tiny command protocol: 1 tag byte + a big-endian u64 argument, then
//!
//! - `U n`: read n bytes, answer 1 byte (bulk upload);
//! - `D n`: write n bytes (bulk download);
//! - `P n`: n times: read 64 bytes, write them back (ping-pong);
//! - `S n`: n times: read 64 bytes, write 32, sleep 200 µs, write the other
//!   32 (split reply: shows Nagle + delayed-ACK stalls in a relay);
//! - `E _`: echo everything until end of stream.
//!
//! Rows: `direct` connects straight to the fake node; `socat` goes through
//! `socat -b 262144 TCP-LISTEN:..,nodelay,reuseaddr TCP:..,nodelay`;
//! `epmdpxy` through the proxy. Every figure is also given as a ratio to
//! `direct` measured in the same run; rows are measured in interleaved
//!
//! This file holds the sizes and the two tests; the run is in `bench/`:
//! `run` (rows, routes, the cut), `link` (the fake node and what is
//! measured on a link), `otp` (real nodes: erpc and the full mesh),
//! `system` (socat, /proc, the machine) and `report` (the table).

mod common;
#[path = "bench/link.rs"]
mod link;
#[path = "bench/otp.rs"]
mod otp;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/run.rs"]
mod run;
#[path = "bench/system.rs"]
mod system;

use std::time::Duration;

use run::run;

/// How much each figure measures.
struct Sizes {
    /// Bulk bytes per direction per measurement.
    bulk_bytes: u64,
    /// Rows are measured in this many interleaved rounds; the figures
    /// other than bulk pool the samples of all rounds.
    rounds: usize,
    /// Bulk is measured in the first this many rounds; the best counts.
    bulk_rounds: usize,
    /// 64-byte round trips per row (all rounds together).
    pings: usize,
    /// Split replies per row (all rounds together).
    splits: usize,
    /// Time spent setting up links, per row (all rounds together).
    setup_time: Duration,
    /// At most this many link setups per row (keeps TIME_WAIT sockets in
    /// check).
    setup_max: usize,
    /// `erpc:call` round trips per route.
    erpc_calls: usize,
    /// The erpc pairs are measured in this many interleaved rounds.
    erpc_rounds: usize,
    /// Node counts of the full-mesh scale figure, ascending.
    mesh: &'static [usize],
    /// Length of the cut during which the proxy's CPU time is measured.
    cut_for: Duration,
}

const FULL: Sizes = Sizes {
    bulk_bytes: 1 << 30,
    rounds: 8,
    bulk_rounds: 5,
    pings: 30_000,
    splits: 6_000,
    setup_time: Duration::from_secs(3),
    setup_max: 4_000,
    erpc_calls: 40_000,
    erpc_rounds: 8,
    mesh: &[10, 30, 60],
    cut_for: Duration::from_secs(2),
};

const SMOKE: Sizes = Sizes {
    bulk_bytes: 1 << 20,
    rounds: 1,
    bulk_rounds: 1,
    pings: 200,
    splits: 20,
    setup_time: Duration::from_millis(200),
    setup_max: 20,
    erpc_calls: 20,
    erpc_rounds: 2,
    mesh: &[3],
    cut_for: Duration::from_millis(200),
};

/// The mesh sizes: `sizes.mesh`, or env `EPMDPXY_BENCH_MESH` (e.g.
/// `10,30`; empty skips the scale figure, for quick runs while tuning).
fn mesh_sizes(sizes: &Sizes) -> Vec<usize> {
    match std::env::var("EPMDPXY_BENCH_MESH") {
        Ok(list) => list
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.trim().parse().expect("EPMDPXY_BENCH_MESH: node counts"))
            .collect(),
        Err(_) => sizes.mesh.to_vec(),
    }
}

/// Socket timeout for every bench client: a stuck relay fails the run.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Copy size of the bench's own clients and fake nodes.
const CHUNK: usize = 256 * 1024;

const PING: usize = 64;

const SPLIT_GAP: Duration = Duration::from_micros(200);

/// socat's buffer size (`-b`), the "tuned socat".
const SOCAT_BUFFER: &str = "262144";

#[test]
fn bench_smoke() {
    let report = run(&SMOKE);
    println!("{}", report.render(&SMOKE));
    report.assert_sane(&SMOKE);
}

#[test]
#[ignore = "benchmark: cargo test --release --test bench -- --ignored --nocapture"]
fn bench_full() {
    if cfg!(debug_assertions) {
        eprintln!("NOTE: debug build; run with --release for meaningful figures");
    }
    let report = run(&FULL);
    println!("{}", report.render(&FULL));
    report.assert_sane(&FULL);
}
