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
//! rounds so that background load hits them alike.

mod common;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{program_on_path, require_erl, wait_until, ErlNode, NodeOptions, Proxy};
use epmdpxy::epmd::wire::{
    encode_alive2_request, frame, parse_port2_reply, NodeInfo, NODE_TYPE_NORMAL,
    TAG_PORT_PLEASE2_REQ,
};
use epmdpxy::proxy::handshake::{encode_send_name_v6, encode_status_and_challenge_v6};

// ---------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// Figures of one row (direct, socat or epmdpxy).
#[derive(Default)]
struct RowFigures {
    label: String,
    bulk_up_gbit: f64,
    bulk_down_gbit: f64,
    /// CPU time of the relay process per GiB relayed during bulk (best
    /// round); `None` for direct.
    relay_cpu_ms_per_gib: Option<f64>,
    /// CPU time of the relay process over all ping-pong round trips.
    relay_cpu_pinging: Duration,
    ping: Vec<Duration>,
    split: Vec<Duration>,
    setups: u64,
    setup_elapsed: Duration,
    /// How a link setup is done on this row.
    setup_note: String,
}

impl RowFigures {
    fn setups_per_second(&self) -> f64 {
        self.setups as f64 / self.setup_elapsed.as_secs_f64().max(1e-9)
    }
}

/// `erpc:call` round trips through one EPMD.
struct ErpcFigures {
    label: String,
    calls: u64,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
}

/// One step of the full-mesh scale figure.
struct ScaleFigures {
    nodes: usize,
    real_nodes: usize,
    links: usize,
    threads: u64,
    rss_kib: u64,
    rss_per_link_kib: f64,
}

/// The proxy's CPU time on a busy link, then while that link is cut.
struct CutFigures {
    window: Duration,
    busy_cpu: Duration,
    busy_bytes: u64,
    cut_cpu: Duration,
    cut_bytes: u64,
    resumed: bool,
}

struct Report {
    machine: String,
    /// /proc/loadavg at the start and at the end of the run: the machine
    /// may be shared, and load skews every figure.
    load: (String, String),
    rows: Vec<RowFigures>,
    erpc: Vec<ErpcFigures>,
    scale: Vec<ScaleFigures>,
    scale_baseline: (u64, u64),
    cut: Option<CutFigures>,
    notes: Vec<String>,
}

fn run(sizes: &Sizes) -> Report {
    let mut notes = Vec::new();
    let mut machine = describe_machine();
    let load_at_start = load_average();
    let proxy = Proxy::start(&[]);
    let proxy_pid = pid_listening_on(proxy.control_port).expect("pid of the epmdpxy under test");
    let server_name = format!("benchsrv_{}", proxy.epmd_port);
    let server = FakeNode::start(&format!("{server_name}@localhost"));
    let _proxy_registration = register(proxy.epmd_port, &server_name, server.port);

    // OTP's own epmd answers the lookups of the direct and socat rows, so
    // every row's link setup includes one EPMD round trip.
    let real_epmd = if program_on_path("epmd") {
        Some(RealEpmd::start())
    } else {
        notes.push(
            "`epmd` not found: direct and socat link setups skip the lookup; \
             erpc is measured through epmdpxy only"
                .to_owned(),
        );
        None
    };
    let direct_name = format!("benchdirect_{}", proxy.epmd_port);
    let socat_name = format!("benchsocat_{}", proxy.epmd_port);

    let mut routes = vec![Route {
        figures: RowFigures {
            label: "direct".to_owned(),
            ..RowFigures::default()
        },
        data: Lookup::Fixed(server.port),
        setup: Lookup::Fixed(server.port),
        relay_pid: None,
        _children: Vec::new(),
        _registrations: Vec::new(),
    }];
    if let Some(epmd) = &real_epmd {
        routes[0].setup = Lookup::Epmd {
            port: epmd.port,
            name: direct_name.clone(),
        };
        routes[0]
            ._registrations
            .push(register(epmd.port, &direct_name, server.port));
    }
    if program_on_path("socat") {
        // One single-shot socat carries the data link; a `fork` one takes
        // the link setups (a child per connection, as a socat relay for
        // many links would run).
        let (data_socat, data_port) = Socat::start(server.port, false);
        let (fork_socat, fork_port) = Socat::start(server.port, true);
        let mut route = Route {
            figures: RowFigures {
                label: format!("socat -b {SOCAT_BUFFER}"),
                ..RowFigures::default()
            },
            data: Lookup::Fixed(data_port),
            setup: Lookup::Fixed(fork_port),
            relay_pid: Some(data_socat.pid()),
            _children: vec![data_socat, fork_socat],
            _registrations: Vec::new(),
        };
        if let Some(epmd) = &real_epmd {
            route.setup = Lookup::Epmd {
                port: epmd.port,
                name: socat_name.clone(),
            };
            route
                ._registrations
                .push(register(epmd.port, &socat_name, fork_port));
        }
        routes.push(route);
    } else {
        notes.push("`socat` not found: its row is missing".to_owned());
    }
    routes.push(Route {
        figures: RowFigures {
            label: "epmdpxy".to_owned(),
            ..RowFigures::default()
        },
        data: Lookup::Epmd {
            port: proxy.epmd_port,
            name: server_name.clone(),
        },
        setup: Lookup::Epmd {
            port: proxy.epmd_port,
            name: server_name.clone(),
        },
        relay_pid: Some(proxy_pid),
        _children: Vec::new(),
        _registrations: Vec::new(),
    });
    for route in &mut routes {
        route.figures.setup_note = match (&route.setup, route.figures.label.as_str()) {
            (Lookup::Fixed(_), _) => "connect + send_name, status and challenge + 1 echoed byte (no lookup)".to_owned(),
            (Lookup::Epmd { .. }, "epmdpxy") => {
                "PORT_PLEASE2 to epmdpxy + connect to the fresh proxy port + send_name, status and challenge + 1 echoed byte"
                    .to_owned()
            }
            (Lookup::Epmd { .. }, "direct") => {
                "PORT_PLEASE2 to OTP epmd + connect to the node + send_name, status and challenge + 1 echoed byte"
                    .to_owned()
            }
            (Lookup::Epmd { .. }, _) => {
                "PORT_PLEASE2 to OTP epmd (node registered with socat's port) + connect through socat `fork` + send_name, status and challenge + 1 echoed byte"
                    .to_owned()
            }
        };
    }

    // Bulk, ping-pong, split reply and link setups: one data link per row,
    // rows interleaved round by round.
    let initiator = format!("benchcli_{}@localhost", proxy.epmd_port);
    let mut links: Vec<TcpStream> = routes
        .iter()
        .map(|route| {
            let port = route.data.resolve().expect("data link lookup");
            connect_link(port, &initiator).expect("data link")
        })
        .collect();
    let rounds = sizes.rounds.max(1);
    for round in 0..rounds {
        for (route, link) in routes.iter_mut().zip(&mut links) {
            if round >= sizes.bulk_rounds {
                break;
            }
            let cpu_before = route.relay_pid.map(cpu_time);
            let up = bulk_up(link, sizes.bulk_bytes).expect("bulk up");
            let down = bulk_down(link, sizes.bulk_bytes).expect("bulk down");
            let figures = &mut route.figures;
            figures.bulk_up_gbit = figures.bulk_up_gbit.max(up);
            figures.bulk_down_gbit = figures.bulk_down_gbit.max(down);
            if let (Some(pid), Some(before)) = (route.relay_pid, cpu_before) {
                let gib = 2.0 * sizes.bulk_bytes as f64 / f64::from(1 << 30);
                let ms = cpu_time(pid).saturating_sub(before).as_secs_f64() * 1e3 / gib;
                figures.relay_cpu_ms_per_gib =
                    Some(figures.relay_cpu_ms_per_gib.map_or(ms, |best| best.min(ms)));
            }
        }
        let share = |total: usize| total / rounds + usize::from(round < total % rounds);
        for (route, link) in routes.iter_mut().zip(&mut links) {
            let cpu_before = route.relay_pid.map(cpu_time);
            let samples = round_trips(link, b'P', share(sizes.pings)).expect("ping-pong");
            if let (Some(pid), Some(before)) = (route.relay_pid, cpu_before) {
                route.figures.relay_cpu_pinging += cpu_time(pid).saturating_sub(before);
            }
            route.figures.ping.extend(samples);
        }
        for (route, link) in routes.iter_mut().zip(&mut links) {
            let samples = round_trips(link, b'S', share(sizes.splits)).expect("split reply");
            route.figures.split.extend(samples);
        }
        for route in &mut routes {
            let budget = sizes.setup_time / rounds as u32;
            let limit = share(sizes.setup_max);
            let (count, elapsed) =
                link_setups(&route.setup, &initiator, budget, limit).expect("link setup");
            route.figures.setups += count;
            route.figures.setup_elapsed += elapsed;
        }
    }
    drop(links);

    // A cut costs no CPU: on the same proxy and fake node.
    let cut = Some(cut_figures(
        &proxy,
        proxy_pid,
        &server,
        &server_name,
        sizes.cut_for,
    ));

    // erpc and the full mesh need real nodes.
    let mut erpc = Vec::new();
    let mut scale = Vec::new();
    let mut scale_baseline = (0, 0);
    if require_erl() {
        let mut erpc_routes = Vec::new();
        if let Some(epmd) = &real_epmd {
            erpc_routes.push(("OTP epmd", epmd.port));
        }
        erpc_routes.push(("epmdpxy", proxy.epmd_port));
        let otp;
        (erpc, otp) = erpc_figures(&erpc_routes, sizes.erpc_calls, sizes.erpc_rounds);
        machine.push_str(&format!(", OTP {}", otp.trim_matches('"')));
        drop(proxy);
        let (baseline, steps) = scale_figures(&mesh_sizes(sizes));
        scale_baseline = baseline;
        scale = steps;
    } else {
        notes.push("`erl` not found: the Erlang and scale figures are missing".to_owned());
    }
    drop(real_epmd);

    Report {
        machine,
        load: (load_at_start, load_average()),
        rows: routes.into_iter().map(|route| route.figures).collect(),
        erpc,
        scale,
        scale_baseline,
        cut,
        notes,
    }
}

// ---------------------------------------------------------------------------
// Routes and lookups
// ---------------------------------------------------------------------------

/// Where a link goes: a fixed port, or the port an EPMD hands out.
enum Lookup {
    Fixed(u16),
    Epmd { port: u16, name: String },
}

impl Lookup {
    fn resolve(&self) -> io::Result<u16> {
        match self {
            Lookup::Fixed(port) => Ok(*port),
            Lookup::Epmd { port, name } => port_please(*port, name),
        }
    }
}

/// One row: its figures and what keeps it alive.
struct Route {
    figures: RowFigures,
    data: Lookup,
    setup: Lookup,
    /// The process that relays the data link (socat, epmdpxy).
    relay_pid: Option<u32>,
    _children: Vec<ChildGuard>,
    _registrations: Vec<TcpStream>,
}

/// Registers `name` at `port` with the EPMD on `epmd_port` (ALIVE2); the
/// registration lasts as long as the returned socket is open.
fn register(epmd_port: u16, name: &str, port: u16) -> TcpStream {
    let info = NodeInfo {
        port,
        node_type: NODE_TYPE_NORMAL,
        protocol: 0,
        highest_version: 6,
        lowest_version: 5,
        name: name.as_bytes().to_vec(),
        extra: Vec::new(),
    };
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, epmd_port))
        .unwrap_or_else(|e| panic!("connect to EPMD {epmd_port} to register {name}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
        .write_all(&frame(&encode_alive2_request(&info)))
        .expect("ALIVE2 request");
    // HighVsn 6 gets ALIVE2_X_RESP: 'v', result, creation:32.
    let mut reply = [0u8; 6];
    stream.read_exact(&mut reply).expect("ALIVE2 reply");
    assert_eq!(
        &reply[..2],
        &[b'v', 0],
        "EPMD {epmd_port} refused {name}: {reply:?}"
    );
    stream
}

/// PORT_PLEASE2: the port the EPMD on `epmd_port` gives for `name`.
fn port_please(epmd_port: u16, name: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, epmd_port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut body = vec![TAG_PORT_PLEASE2_REQ];
    body.extend_from_slice(name.as_bytes());
    stream.write_all(&frame(&body))?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    match parse_port2_reply(&reply) {
        Some(Some(info)) => Ok(info.port),
        _ => Err(io::Error::other(format!(
            "lookup of {name} at EPMD {epmd_port} failed: {reply:?}"
        ))),
    }
}

/// Connects to `port`, sends the `send_name` of `initiator` and reads the
/// node's status and challenge.
fn connect_link(port: u16, initiator: &str) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(&send_name(initiator))?;
    read_status_and_challenge(&mut stream)?;
    Ok(stream)
}

/// Reads one handshake message (2-byte length, then the body).
fn read_message(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// Reads the `sok` status and the challenge a node answers `send_name`
/// with (the real handshake goes on with challenge_reply and ack; the
/// bench switches to its own commands instead).
fn read_status_and_challenge(stream: &mut TcpStream) -> io::Result<()> {
    let status = read_message(stream)?;
    if status != b"sok" {
        return Err(io::Error::other(format!("status {status:?}")));
    }
    read_message(stream)?;
    Ok(())
}

fn send_name(initiator: &str) -> Vec<u8> {
    // Flags as an OTP 25 node sends them; the proxy only reads the name.
    encode_send_name_v6(0x0d_7fbd, 1, initiator)
}

fn command_bytes(tag: u8, argument: u64) -> [u8; 9] {
    let mut bytes = [0u8; 9];
    bytes[0] = tag;
    bytes[1..].copy_from_slice(&argument.to_be_bytes());
    bytes
}

// ---------------------------------------------------------------------------
// Measurements on a link
// ---------------------------------------------------------------------------

fn gbit_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 * 8.0 / elapsed.as_secs_f64().max(1e-9) / 1e9
}

/// Sends `bytes` to the fake node; timed until its 1-byte answer.
fn bulk_up(link: &mut TcpStream, bytes: u64) -> io::Result<f64> {
    let chunk = vec![0x5a_u8; CHUNK];
    let start = Instant::now();
    link.write_all(&command_bytes(b'U', bytes))?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        link.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    let mut answer = [0u8; 1];
    link.read_exact(&mut answer)?;
    Ok(gbit_per_second(bytes, start.elapsed()))
}

/// Has the fake node send `bytes`; timed until the last one arrived.
fn bulk_down(link: &mut TcpStream, bytes: u64) -> io::Result<f64> {
    let mut buffer = vec![0u8; CHUNK];
    let start = Instant::now();
    link.write_all(&command_bytes(b'D', bytes))?;
    let mut left = bytes;
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let n = link.read(&mut buffer[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= n as u64;
    }
    Ok(gbit_per_second(bytes, start.elapsed()))
}

/// `count` 64-byte round trips with the fake node's `tag` behaviour
/// (`P` echo, `S` split reply); each reply is checked.
fn round_trips(link: &mut TcpStream, tag: u8, count: usize) -> io::Result<Vec<Duration>> {
    link.write_all(&command_bytes(tag, count as u64))?;
    let mut samples = Vec::with_capacity(count);
    let mut ping = [0u8; PING];
    let mut pong = [0u8; PING];
    for sequence in 0..count as u64 {
        ping[..8].copy_from_slice(&sequence.to_be_bytes());
        let start = Instant::now();
        link.write_all(&ping)?;
        link.read_exact(&mut pong)?;
        samples.push(start.elapsed());
        if pong != ping {
            return Err(io::Error::other("reply differs from the ping"));
        }
    }
    Ok(samples)
}

/// Sets up links one after another for up to `budget` or `limit` links:
/// lookup, connect, `send_name`, one byte echoed. Returns how many and the
/// time they took.
fn link_setups(
    lookup: &Lookup,
    initiator: &str,
    budget: Duration,
    limit: usize,
) -> io::Result<(u64, Duration)> {
    let mut first_message = send_name(initiator);
    first_message.extend_from_slice(&command_bytes(b'E', 0));
    first_message.push(0x42);
    let mut count = 0;
    let start = Instant::now();
    while count < limit.max(1) as u64 && (count == 0 || start.elapsed() < budget) {
        let port = lookup.resolve()?;
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.write_all(&first_message)?;
        read_status_and_challenge(&mut stream)?;
        let mut echoed = [0u8; 1];
        stream.read_exact(&mut echoed)?;
        if echoed[0] != 0x42 {
            return Err(io::Error::other("wrong echo"));
        }
        count += 1;
    }
    Ok((count, start.elapsed()))
}

// ---------------------------------------------------------------------------
// The fake node
// ---------------------------------------------------------------------------

/// A Rust stand-in for an Erlang node: a listener serving the command
/// protocol of the module doc, one thread per connection.
struct FakeNode {
    port: u16,
    /// Bytes received by `U` commands, over all connections.
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FakeNode {
    /// Starts a fake node whose challenge carries the full name `name`.
    fn start(name: &str) -> FakeNode {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the fake node");
        let port = listener.local_addr().expect("fake node address").port();
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_received, thread_stop) = (Arc::clone(&received), Arc::clone(&stop));
        let name: Arc<str> = Arc::from(name);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (received, name) = (Arc::clone(&thread_received), Arc::clone(&name));
                thread::spawn(move || {
                    let _ = serve(stream, &name, &received);
                });
            }
        });
        FakeNode {
            port,
            received,
            stop,
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the blocked accept
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn serve(mut stream: TcpStream, name: &str, received: &AtomicU64) -> io::Result<()> {
    // Erlang sets TCP_NODELAY on its distribution sockets.
    stream.set_nodelay(true)?;
    read_message(&mut stream)?; // send_name
                                // As a real node: status `sok`, then the challenge, which names us.
    stream.write_all(&encode_status_and_challenge_v6(
        0x0d_7fbd,
        0x1234_5678,
        1,
        name,
    ))?;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let mut command = [0u8; 9];
        match stream.read_exact(&mut command) {
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        let mut argument_bytes = [0u8; 8];
        argument_bytes.copy_from_slice(&command[1..]);
        let argument = u64::from_be_bytes(argument_bytes);
        match command[0] {
            b'U' => {
                let mut left = argument;
                while left > 0 {
                    let want = left.min(CHUNK as u64) as usize;
                    let n = stream.read(&mut buffer[..want])?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    received.fetch_add(n as u64, Ordering::SeqCst);
                    left -= n as u64;
                }
                stream.write_all(&[1])?;
            }
            b'D' => {
                let mut left = argument;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    stream.write_all(&buffer[..n])?;
                    left -= n as u64;
                }
            }
            b'P' => {
                let mut ping = [0u8; PING];
                for _ in 0..argument {
                    stream.read_exact(&mut ping)?;
                    stream.write_all(&ping)?;
                }
            }
            b'S' => {
                let mut ping = [0u8; PING];
                for _ in 0..argument {
                    stream.read_exact(&mut ping)?;
                    stream.write_all(&ping[..PING / 2])?;
                    thread::sleep(SPLIT_GAP);
                    stream.write_all(&ping[PING / 2..])?;
                }
            }
            b'E' => loop {
                let n = stream.read(&mut buffer)?;
                if n == 0 {
                    return Ok(());
                }
                stream.write_all(&buffer[..n])?;
            },
            other => {
                return Err(io::Error::other(format!("unknown command {other}")));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Child processes: socat and OTP's epmd
// ---------------------------------------------------------------------------

/// A child in its own process group; dropping it kills the group (socat
/// `fork` children included).
struct ChildGuard(Child);

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn spawn(command: &mut Command) -> ChildGuard {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        ChildGuard(child)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{}", self.0.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound and released; the child binds it next).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// True once something listens on `port` (from /proc/net/tcp, so that
/// probing does not use up a single-shot listener).
fn listening(port: u16) -> bool {
    listening_inode(port).is_some()
}

/// The socket inode of the TCP listener on `port`, if any.
fn listening_inode(port: u16) -> Option<u64> {
    let suffix = format!(":{port:04X}");
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 9 && fields[1].ends_with(&suffix) && fields[3] == "0A" {
                return fields[9].parse().ok();
            }
        }
    }
    None
}

struct Socat;

impl Socat {
    /// `socat -b 262144 TCP-LISTEN:P,nodelay,reuseaddr[,fork] TCP:127.0.0.1:S,nodelay`
    fn start(server_port: u16, fork: bool) -> (ChildGuard, u16) {
        let port = free_port();
        let fork = if fork { ",fork" } else { "" };
        let child = ChildGuard::spawn(Command::new("socat").args([
            "-b",
            SOCAT_BUFFER,
            &format!("TCP-LISTEN:{port},bind=127.0.0.1,nodelay,reuseaddr{fork}"),
            &format!("TCP:127.0.0.1:{server_port},nodelay"),
        ]));
        wait_until(Duration::from_secs(10), "socat listening", || {
            listening(port)
        });
        (child, port)
    }
}

/// OTP's `epmd -port P` in the foreground, killed on drop.
struct RealEpmd {
    port: u16,
    _child: ChildGuard,
}

impl RealEpmd {
    fn start() -> RealEpmd {
        let port = free_port();
        let child = ChildGuard::spawn(
            Command::new("epmd")
                .args(["-port", &port.to_string()])
                .env_remove("ERL_EPMD_PORT"),
        );
        wait_until(Duration::from_secs(10), "OTP epmd listening", || {
            listening(port)
        });
        RealEpmd {
            port,
            _child: child,
        }
    }
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

/// The pid of our child process that owns the listener on `port`.
fn pid_listening_on(port: u16) -> Option<u32> {
    let inode = listening_inode(port)?;
    let wanted = format!("socket:[{inode}]");
    let me = std::process::id();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if parent != Some(me) {
            continue;
        }
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy() == wanted) {
                return Some(pid);
            }
        }
    }
    None
}

/// (VmRSS in KiB, thread count) of `pid`.
fn rss_and_threads(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("Threads:"))
}

/// CPU time of every live thread of `pid` (nanosecond schedstat), so a
/// short window is measured more finely than /proc/PID/stat's 10 ms ticks.
fn cpu_time(pid: u32) -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let ns = fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok());
            total += ns.unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn describe_machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // not available_parallelism(): it counts only the CPUs we may run on
    let cpus = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let model = Some(cpuinfo.as_str())
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let socat = Command::new("socat")
        .arg("-V")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|line| line.starts_with("socat version"))
                .map(|line| line.split(" on ").next().unwrap_or(line).to_owned())
        })
        .unwrap_or_else(|| "no socat".to_owned());
    // `taskset -c 0 cargo test ...` pins every process of the run to one
    // CPU; say so, since it changes the latency figures.
    let allowed = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                .map(|list| list.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    format!("{cpus} CPUs ({model}), run on CPUs {allowed}, Linux {kernel}, {socat}")
}

// ---------------------------------------------------------------------------
// A cut costs no CPU
// ---------------------------------------------------------------------------

fn cut_figures(
    proxy: &Proxy,
    pid: u32,
    server: &FakeNode,
    server_name: &str,
    window: Duration,
) -> CutFigures {
    let initiator = format!("benchcut_{}", proxy.epmd_port);
    let port = port_please(proxy.epmd_port, server_name).expect("lookup for the cut link");
    let mut link = connect_link(port, &format!("{initiator}@localhost")).expect("cut link");
    link.write_all(&command_bytes(b'U', u64::MAX))
        .expect("start the upload");
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = link.try_clone().expect("clone");
    let writer_stop = Arc::clone(&stop);
    let streamer = thread::spawn(move || {
        let chunk = vec![0x5a_u8; CHUNK];
        // The write timeout would end the stream during a long cut; the
        // cut is shorter than IO_TIMEOUT.
        while !writer_stop.load(Ordering::SeqCst) {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });

    let flowing = |since: u64| server.received() > since + CHUNK as u64;
    let start_bytes = server.received();
    wait_until(Duration::from_secs(10), "bytes flowing", || {
        flowing(start_bytes)
    });
    let (busy_cpu, busy_bytes) = cpu_window(pid, server, window);

    let reply = proxy.ctl(&format!("cut {initiator} | {server_name}"));
    assert!(reply.starts_with("OK"), "cut: {reply}");
    // Bytes already in the proxy → node socket buffers still arrive; wait
    // until the node has received them all.
    let mut last = server.received();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        thread::sleep(Duration::from_millis(50));
        let now = server.received();
        if now == last {
            break;
        }
        assert!(Instant::now() < deadline, "bytes still cross the cut");
        last = now;
    }
    let (cut_cpu, cut_bytes) = cpu_window(pid, server, window);

    let reply = proxy.ctl(&format!("fix {initiator} | {server_name}"));
    assert!(reply.starts_with("OK"), "fix: {reply}");
    let healed_at = server.received();
    let mut resumed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if flowing(healed_at) {
            resumed = true;
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    let _ = link.shutdown(Shutdown::Both);
    let _ = streamer.join();
    CutFigures {
        window,
        busy_cpu,
        busy_bytes,
        cut_cpu,
        cut_bytes,
        resumed,
    }
}

/// The proxy's CPU time and the bytes the node received over `window`.
fn cpu_window(pid: u32, server: &FakeNode, window: Duration) -> (Duration, u64) {
    let cpu_before = cpu_time(pid);
    let bytes_before = server.received();
    thread::sleep(window); // the window *is* the measurement
    (
        cpu_time(pid).saturating_sub(cpu_before),
        server.received() - bytes_before,
    )
}

// ---------------------------------------------------------------------------
// Real Erlang nodes
// ---------------------------------------------------------------------------

/// Two real nodes registered with one EPMD, linked and warmed up.
struct ErpcPair {
    label: String,
    caller: ErlNode,
    callee: ErlNode,
    samples: Vec<Duration>,
}

impl ErpcPair {
    fn start(label: &str, epmd_port: u16) -> ErpcPair {
        let cookie = format!("bench_{epmd_port}");
        let options = NodeOptions {
            net_ticktime: 60,
            connect_all: false,
            hidden: false,
        };
        let mut caller =
            ErlNode::start(&format!("erpca_{epmd_port}"), &cookie, epmd_port, &options);
        let callee = ErlNode::start(&format!("erpcb_{epmd_port}"), &cookie, epmd_port, &options);
        let other = callee.full_name().to_owned();
        assert!(caller.ping(&other), "{label}: ping {other}");
        let warm_up = caller.eval(&format!(
            "lists:usort([erpc:call('{other}', erlang, node, []) || _ <- lists:seq(1, 200)])"
        ));
        assert_eq!(
            warm_up.replace('\'', ""),
            format!("[{other}]"),
            "{label}: warm-up"
        );
        ErpcPair {
            label: label.to_owned(),
            caller,
            callee,
            samples: Vec::new(),
        }
    }

    /// Times up to `calls` round trips inside the caller, for at most 5 s
    /// (the driver's reply deadline is 15 s), so that a stalling relay
    /// shows up as few, slow calls instead of a timeout.
    fn measure(&mut self, calls: usize) {
        let other = self.callee.full_name().to_owned();
        let expression = format!(
            "B = '{other}', \
             Deadline = erlang:monotonic_time(millisecond) + 5000, \
             Loop = fun L(0, Acc) -> Acc; \
                        L(K, Acc) -> case erlang:monotonic_time(millisecond) > Deadline of \
                            true -> Acc; \
                            false -> T0 = erlang:monotonic_time(), \
                                     B = erpc:call(B, erlang, node, []), \
                                     T1 = erlang:monotonic_time(), \
                                     L(K - 1, [erlang:convert_time_unit(T1 - T0, native, nanosecond) | Acc]) \
                        end end, \
             Loop({calls}, [])"
        );
        let reply = self.caller.eval(&expression);
        let samples = reply
            .trim_matches(['[', ']'])
            .split(',')
            .filter(|field| !field.trim().is_empty())
            .map(|field| field.trim().parse::<u64>().map(Duration::from_nanos))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{}: erpc samples {reply:?}: {e}", self.label));
        self.samples.extend(samples);
    }

    fn figures(&self) -> ErpcFigures {
        let total: Duration = self.samples.iter().sum();
        ErpcFigures {
            label: self.label.clone(),
            calls: self.samples.len() as u64,
            p50_us: micros(percentile(&self.samples, 0.5)),
            p99_us: micros(percentile(&self.samples, 0.99)),
            mean_us: micros(total) / self.samples.len().max(1) as f64,
        }
    }
}

/// `erpc:call(Other, erlang, node, [])` round trips through each EPMD in
/// `routes` (label, port), the pairs measured in interleaved rounds.
/// Also returns the OTP release the nodes run.
fn erpc_figures(routes: &[(&str, u16)], calls: usize, rounds: usize) -> (Vec<ErpcFigures>, String) {
    let mut pairs: Vec<ErpcPair> = routes
        .iter()
        .map(|&(label, port)| ErpcPair::start(label, port))
        .collect();
    let otp = pairs.first_mut().map_or_else(String::new, |pair| {
        pair.caller.eval(
            "erlang:system_info(otp_release) ++ \" (erts \" ++ erlang:system_info(version) ++ \")\"",
        )
    });
    let rounds = rounds.max(1);
    for round in 0..rounds {
        for pair in &mut pairs {
            pair.measure(calls / rounds + usize::from(round < calls % rounds));
        }
    }
    (pairs.iter().map(ErpcPair::figures).collect(), otp)
}

/// Real nodes in a full mesh through a fresh epmdpxy: RSS and threads of
/// the proxy at each node count. Returns the baseline (RSS KiB, threads)
/// with no node registered, and one step per node count.
fn scale_figures(mesh: &[usize]) -> ((u64, u64), Vec<ScaleFigures>) {
    let proxy = Proxy::start(&[]);
    let pid = pid_listening_on(proxy.control_port).expect("pid of the scale proxy");
    let baseline = rss_and_threads(pid);
    // Explicit links only (no transitive connects, no `global` reshuffling
    // while the mesh forms): node i pings every earlier node. 60 s ticks,
    // as in production, so links are idle.
    let options = NodeOptions {
        net_ticktime: 60,
        connect_all: false,
        hidden: false,
    };
    let mut nodes: Vec<ErlNode> = Vec::new();
    let mut steps = Vec::new();
    for &count in mesh {
        let first_new = nodes.len();
        // Boot in small parallel batches: 2 cores, ~1 s of CPU per boot.
        while nodes.len() < count {
            let batch = (count - nodes.len()).min(6);
            let started: Vec<ErlNode> = thread::scope(|scope| {
                let handles: Vec<_> = (0..batch)
                    .map(|k| {
                        let base = format!("mesh{}", nodes.len() + k);
                        let proxy = &proxy;
                        let options = &options;
                        scope.spawn(move || proxy.start_node(&base, options))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            nodes.extend(started);
        }
        let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_owned()).collect();
        for (index, node) in nodes.iter_mut().enumerate().skip(first_new.max(1)) {
            let targets: Vec<String> = names[..index].iter().map(|n| format!("'{n}'")).collect();
            let reply = node.eval(&format!(
                "lists:usort([net_adm:ping(X) || X <- [{}]])",
                targets.join(",")
            ));
            assert_eq!(
                reply,
                "[pong]",
                "{} pinging earlier nodes",
                node.short_name()
            );
        }
        let links = count * (count - 1) / 2;
        wait_until(Duration::from_secs(60), "every mesh link relayed", || {
            proxy_link_count(&proxy) == links
        });
        let (rss_kib, threads) = rss_and_threads(pid);
        steps.push(ScaleFigures {
            nodes: count,
            real_nodes: count,
            links,
            threads,
            rss_kib,
            rss_per_link_kib: rss_kib.saturating_sub(baseline.0) as f64 / links.max(1) as f64,
        });
    }
    drop(nodes);
    (baseline, steps)
}

/// The number of live links from the control port's `links` reply.
fn proxy_link_count(proxy: &Proxy) -> usize {
    let reply = proxy.ctl("links");
    reply
        .lines()
        .next()
        .and_then(|first| first.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("links reply {reply:?}"))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

fn percentile(samples: &[Duration], fraction: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 * fraction) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(index).copied().unwrap_or_default()
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

impl Report {
    fn row(&self, label: &str) -> Option<&RowFigures> {
        self.rows.iter().find(|row| row.label.starts_with(label))
    }

    fn render(&self, sizes: &Sizes) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        line(format!("## epmdpxy benchmark ({build} build)"));
        line(String::new());
        line(format!("Machine: {}", self.machine));
        line(format!(
            "Load average (1/5/15 min): {} at the start, {} at the end",
            self.load.0, self.load.1
        ));
        line(format!(
            "Sizes: bulk {} MiB each way (best of {} rounds), {} pings, {} split replies, link setups for {:?} (at most {}) per row, in {} interleaved rounds",
            sizes.bulk_bytes >> 20,
            sizes.bulk_rounds,
            sizes.pings,
            sizes.splits,
            sizes.setup_time,
            sizes.setup_max,
            sizes.rounds
        ));
        line(String::new());
        let Some(direct) = self.row("direct") else {
            return out;
        };
        let mut header = "| figure |".to_owned();
        let mut rule = "|---|".to_owned();
        for row in &self.rows {
            header.push_str(&format!(" {} |", row.label));
            rule.push_str("---:|");
        }
        line(header);
        line(rule);
        type Pick = fn(&RowFigures) -> f64;
        let figures: [(&str, Pick); 7] = [
            ("bulk up, Gbit/s", |r| r.bulk_up_gbit),
            ("bulk down, Gbit/s", |r| r.bulk_down_gbit),
            ("ping-pong p50, µs", |r| micros(percentile(&r.ping, 0.5))),
            ("ping-pong p99, µs", |r| micros(percentile(&r.ping, 0.99))),
            ("split reply p50, µs", |r| {
                micros(percentile(&r.split, 0.5))
            }),
            ("split reply p99, µs", |r| {
                micros(percentile(&r.split, 0.99))
            }),
            ("link setups/s", |r| r.setups_per_second()),
        ];
        for (name, pick) in figures {
            let base = pick(direct);
            let mut text = format!("| {name} |");
            for row in &self.rows {
                let value = pick(row);
                text.push_str(&format!(" {value:.1} ({:.2}×) |", value / base));
            }
            line(text);
        }
        let mut text = "| relay CPU per ping-pong round trip, µs |".to_owned();
        for row in &self.rows {
            if row.label == "direct" {
                text.push_str(" — |");
            } else {
                let per_ping = micros(row.relay_cpu_pinging) / row.ping.len().max(1) as f64;
                text.push_str(&format!(" {per_ping:.1} |"));
            }
        }
        line(text);
        let mut text = "| relay CPU during bulk, ms per GiB |".to_owned();
        for row in &self.rows {
            match row.relay_cpu_ms_per_gib {
                Some(ms) => text.push_str(&format!(" {ms:.0} |")),
                None => text.push_str(" — |"),
            }
        }
        line(text);
        line(String::new());
        line("Ratios are to `direct` in the same run (higher is better for Gbit/s and setups/s, lower for µs).".to_owned());
        for row in &self.rows {
            line(format!(
                "- link setup, {}: {} ({} setups)",
                row.label, row.setup_note, row.setups
            ));
        }

        if !self.erpc.is_empty() {
            line(String::new());
            line(
                "| `erpc:call(Other, erlang, node, [])` | calls | p50, µs | p99, µs | mean, µs |"
                    .to_owned(),
            );
            line("|---|---:|---:|---:|---:|".to_owned());
            let base = self.erpc.first().map_or(1.0, |e| e.p50_us);
            for e in &self.erpc {
                line(format!(
                    "| two OTP nodes via {} | {} | {:.1} ({:.2}×) | {:.1} | {:.1} |",
                    e.label,
                    e.calls,
                    e.p50_us,
                    e.p50_us / base,
                    e.p99_us,
                    e.mean_us
                ));
            }
        }

        if !self.scale.is_empty() {
            line(String::new());
            line(format!(
                "Full mesh through epmdpxy (fresh proxy; with no node: RSS {} KiB, {} threads):",
                self.scale_baseline.0, self.scale_baseline.1
            ));
            line(String::new());
            line(
                "| nodes (real) | links | threads | RSS, KiB | (RSS − idle RSS) per link, KiB |"
                    .to_owned(),
            );
            line("|---:|---:|---:|---:|---:|".to_owned());
            for s in &self.scale {
                line(format!(
                    "| {} ({}) | {} | {} | {} | {:.1} |",
                    s.nodes, s.real_nodes, s.links, s.threads, s.rss_kib, s.rss_per_link_kib
                ));
            }
        }

        if let Some(cut) = &self.cut {
            line(String::new());
            line(format!(
                "Cut of a busy link: epmdpxy CPU over {:?} while streaming: {:.1} ms ({:.0} MiB relayed); \
                 over {:?} while cut: {:.2} ms ({} bytes relayed); flow resumed after fix: {}",
                cut.window,
                micros(cut.busy_cpu) / 1e3,
                cut.busy_bytes as f64 / f64::from(1 << 20),
                cut.window,
                micros(cut.cut_cpu) / 1e3,
                cut.cut_bytes,
                cut.resumed
            ));
        }

        line(String::new());
        line("Targets (same run):".to_owned());
        for target in self.targets() {
            line(format!("- {target}"));
        }
        for note in &self.notes {
            line(format!("- note: {note}"));
        }
        out
    }

    /// Each target of issue 8 with its measured ratio.
    fn targets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let (Some(direct), Some(proxy)) = (self.row("direct"), self.row("epmdpxy")) else {
            return out;
        };
        if let Some(socat) = self.row("socat") {
            let up = proxy.bulk_up_gbit / socat.bulk_up_gbit;
            let down = proxy.bulk_down_gbit / socat.bulk_down_gbit;
            out.push(format!(
                "bulk ≥ 1.0× socat (aim 1.3×): up {up:.2}×, down {down:.2}× — {}",
                verdict(up >= 1.0 && down >= 1.0)
            ));
            let ping = micros(percentile(&proxy.ping, 0.5)) / micros(percentile(&socat.ping, 0.5));
            out.push(format!(
                "ping-pong p50 ≤ 0.8× socat: {ping:.2}× — {}",
                verdict(ping <= 0.8)
            ));
            let setups = proxy.setups_per_second() / socat.setups_per_second();
            out.push(format!(
                "link setups/s ≥ 1.5× socat: {setups:.2}× — {}",
                verdict(setups >= 1.5)
            ));
        }
        let split = micros(percentile(&proxy.split, 0.5)) / micros(percentile(&direct.split, 0.5));
        out.push(format!(
            "split reply p50 ≤ 1.1× direct: {split:.2}× — {}",
            verdict(split <= 1.1)
        ));
        if let (Some(epmd), Some(pxy)) = (
            self.erpc.iter().find(|e| e.label == "OTP epmd"),
            self.erpc.iter().find(|e| e.label == "epmdpxy"),
        ) {
            let ratio = pxy.p50_us / epmd.p50_us;
            out.push(format!(
                "erpc:call via epmdpxy ≤ 1.2× via OTP epmd: p50 {ratio:.2}× (mean {:.2}×) — {}",
                pxy.mean_us / epmd.mean_us,
                verdict(ratio <= 1.2)
            ));
        }
        if let Some(last) = self.scale.last() {
            out.push(format!(
                "≤ 100 KiB RSS per live link at N = {}: {:.1} KiB — {}",
                last.nodes,
                last.rss_per_link_kib,
                verdict(last.rss_per_link_kib <= 100.0)
            ));
        }
        if let Some(cut) = &self.cut {
            let share = cut.cut_cpu.as_secs_f64() / cut.window.as_secs_f64();
            out.push(format!(
                "a cut costs no CPU: {:.3}% of one core during the cut — {}",
                share * 100.0,
                verdict(share < 0.01)
            ));
        }
        out
    }

    /// Every figure was measured and is a plausible number. Not a timing
    /// check: only that the benchmark itself still works.
    fn assert_sane(&self, sizes: &Sizes) {
        let positive = |what: &str, value: f64| {
            assert!(
                value.is_finite() && value > 0.0,
                "{what} = {value}: not a sane measurement"
            );
        };
        assert!(self.row("direct").is_some() && self.row("epmdpxy").is_some());
        if program_on_path("socat") {
            assert!(
                self.row("socat").is_some(),
                "socat is installed but has no row"
            );
        }
        for row in &self.rows {
            let label = &row.label;
            positive(&format!("{label} bulk up"), row.bulk_up_gbit);
            positive(&format!("{label} bulk down"), row.bulk_down_gbit);
            assert_eq!(row.ping.len(), sizes.pings, "{label} ping samples");
            assert_eq!(row.split.len(), sizes.splits, "{label} split samples");
            positive(
                &format!("{label} ping p50"),
                micros(percentile(&row.ping, 0.5)),
            );
            assert!(percentile(&row.ping, 0.99) >= percentile(&row.ping, 0.5));
            // Each split reply waits for the node's 200 µs pause.
            assert!(
                percentile(&row.split, 0.5) >= SPLIT_GAP,
                "{label}: a split reply came back before the node sent its second half"
            );
            assert!(row.setups > 0, "{label}: no link set up");
            positive(&format!("{label} setups/s"), row.setups_per_second());
        }
        let cut = self.cut.as_ref().expect("cut figures");
        assert!(cut.busy_bytes > 0, "no bytes relayed before the cut");
        assert!(cut.resumed, "the busy link did not resume after fix");
        if program_on_path("erl") {
            let expected_erpc = if program_on_path("epmd") { 2 } else { 1 };
            assert_eq!(self.erpc.len(), expected_erpc, "erpc figures");
            for e in &self.erpc {
                assert!(e.calls > 0, "{}: no erpc call timed", e.label);
                positive(&format!("{} erpc p50", e.label), e.p50_us);
                assert!(e.p99_us >= e.p50_us);
            }
            let mesh = mesh_sizes(sizes);
            assert_eq!(self.scale.len(), mesh.len(), "scale steps");
            for (step, &nodes) in self.scale.iter().zip(&mesh) {
                assert_eq!(step.nodes, nodes);
                assert_eq!(step.links, nodes * (nodes - 1) / 2);
                // at least the registration threads plus two per link
                assert!(step.threads as usize >= nodes + 2 * step.links);
                assert!(step.rss_kib > 0);
            }
        }
    }
}
