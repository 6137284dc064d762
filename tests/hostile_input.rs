//! Hostile input against every port epmdpxy listens on: the EPMD port, the
//! control port and the one-shot proxy listeners, plus the limits that keep
//! a misbehaving client from holding resources, and who may do what.
//!
//! The generators are driven by a seeded PRNG (std only). The seed is
//! printed at the start and in every failure; set `HOSTILE_SEED=<n>` to
//! replay a run. Each fuzz test sends its inputs in batches; after every
//! batch the proxy must still be alive, have printed no panic, accept a real
//! registration and a real lookup (relaying bytes through the listener it
//! hands out), and hold exactly the nodes it should (control `nodes`).
//!
//! Per-input expectations are checked where the protocol fixes the answer
//! (e.g. an oversized EPMD request is closed with no reply, a lookup of an
//! unknown name gets `[119, 1]`, an over-long control line gets
//! `ERR line too long`); everything else must at least be answered or
//! closed within a deadline, so a hang fails the test too.

mod common;

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::proxy::items;
use common::{fake, wait_until, wait_until_ok, Proxy};
use epmdpxy::epmd::wire::{self, NodeInfo};
use epmdpxy::proxy::handshake::{encode_send_name_v5, encode_send_name_v6, DFLAG_NAME_ME};

/// Deadline for any single exchange with the proxy: an input that is
/// neither answered nor closed within this is a hang.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Inputs per port (the issue asks for ≥ 10,000 on EPMD and control).
const EPMD_INPUTS: usize = 10_000;
const CONTROL_LINES: usize = 10_000;
const LISTENER_INPUTS: usize = 3_000;
/// Batches per fuzz run; the health check runs after each.
const BATCHES: usize = 10;
/// Client threads per batch.
const WORKERS: usize = 4;

// ---------------------------------------------------------------------------
// A small seeded PRNG (splitmix64)
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    fn printable(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| b' ' + self.below(95) as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A child generator for a worker thread.
    fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// The run's seed: `HOSTILE_SEED` or the clock.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: HOSTILE_SEED={seed}");
    seed
}

/// Splits `bytes` into pieces sent by separate writes (sometimes).
fn split(rng: &mut Rng, bytes: Vec<u8>) -> Vec<Vec<u8>> {
    if bytes.len() < 2 || !rng.percent(30) {
        return vec![bytes];
    }
    let pieces = rng.range(2, 8.min(bytes.len()));
    let mut cuts: Vec<usize> = (0..pieces - 1)
        .map(|_| rng.range(1, bytes.len() - 1))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for cut in cuts {
        out.push(bytes[from..cut].to_vec());
        from = cut;
    }
    out.push(bytes[from..].to_vec());
    out
}

// ---------------------------------------------------------------------------
// Fake nodes: registrations, lookups, a sink that records what arrives
// ---------------------------------------------------------------------------

fn connect(port: u16) -> TcpStream {
    fake::connect_within(port, EXCHANGE_TIMEOUT)
}

/// Registers `name` (real port `port`) and returns the open ALIVE2
/// connection (closing it unregisters) and the creation.
fn register(epmd_port: u16, name: &str, port: u16) -> (TcpStream, u32) {
    let mut stream = connect(epmd_port);
    let creation = fake::alive2(&mut stream, &fake::node_info(name, port));
    (stream, creation)
}

/// PORT_PLEASE2: `Some(proxy port)` or `None` for "not found".
fn lookup(epmd_port: u16, name: &str) -> Option<u16> {
    let info = fake::port_please2(&mut connect(epmd_port), name)?;
    assert_eq!(info.name, name.as_bytes(), "PORT2 answered another node");
    Some(info.port)
}

/// A fake node: a listener whose every accepted connection is read to EOF;
/// the bytes of each connection arrive on a channel, in accept order.
struct Sink {
    name: String,
    registration: Option<TcpStream>,
    received: Mutex<Receiver<Vec<u8>>>,
}

impl Sink {
    fn start(epmd_port: u16, name: &str) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let port = listener.local_addr().expect("sink address").port();
        let (tx, received) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let tx = tx.clone();
                // One reader per connection, so a slow one blocks no other.
                thread::spawn(move || {
                    let mut data = Vec::new();
                    let _ = stream.read_to_end(&mut data);
                    let _ = tx.send(data);
                });
            }
        });
        let (registration, _) = register(epmd_port, name, port);
        Sink {
            name: name.to_owned(),
            registration: Some(registration),
            received: Mutex::new(received),
        }
    }

    /// The bytes of the next connection that ended.
    fn next_connection(&self, what: &str) -> Vec<u8> {
        self.received
            .lock()
            .expect("sink channel")
            .recv_timeout(EXCHANGE_TIMEOUT)
            .unwrap_or_else(|_| panic!("{what}: sink {} got no connection", self.name))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(registration) = self.registration.take() {
            let _ = registration.shutdown(Shutdown::Both);
        }
    }
}

// ---------------------------------------------------------------------------
// Control sessions and health checks
// ---------------------------------------------------------------------------

/// A persistent control session (many lines per connection).
struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    fn open(control_port: u16) -> Session {
        let stream = connect(control_port);
        Session {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, pieces: &[Vec<u8>]) -> io::Result<()> {
        for piece in pieces {
            self.writer.write_all(piece)?;
        }
        Ok(())
    }

    /// One reply line without its line ending; `None` on EOF.
    fn line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        if buf.pop() != Some(b'\n') {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut line"));
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "reply not UTF-8"))
    }

    /// A whole reply: one line, or a multi-line answer up to `END`.
    fn reply(&mut self) -> io::Result<Option<Vec<String>>> {
        let Some(first) = self.line()? else {
            return Ok(None);
        };
        let multi = is_multi_line_header(&first);
        let mut lines = vec![first];
        if multi {
            loop {
                match self.line()? {
                    Some(line) => {
                        let end = line == "END";
                        lines.push(line);
                        if end {
                            break;
                        }
                    }
                    None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no END")),
                }
            }
        }
        Ok(Some(lines))
    }

    fn command(&mut self, line: &str) -> Vec<String> {
        self.send(&[format!("{line}\n").into_bytes()])
            .expect("send command");
        self.reply()
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .unwrap_or_else(|| panic!("{line}: session closed"))
    }
}

/// `OK <n> nodes|faults|links|commands [...]` opens a multi-line answer
/// (`status` adds `seed=...` and more after its count).
fn is_multi_line_header(line: &str) -> bool {
    let words: Vec<&str> = line.split(' ').collect();
    matches!(words.as_slice(), ["OK", count, kind, ..]
        if count.bytes().all(|b| b.is_ascii_digit())
            && ["nodes", "faults", "links", "commands"].contains(kind))
}

/// True for the `status` answer of a proxy with no fault in force.
fn no_faults(lines: &[String]) -> bool {
    lines.len() == 2 && lines[0].starts_with("OK 0 faults") && lines[1] == "END"
}

/// Registered names, from the control `nodes` answer.
fn registered(proxy: &Proxy) -> BTreeSet<String> {
    let reply = proxy.ctl("nodes");
    let header = reply.lines().next().unwrap_or_default();
    assert!(header.starts_with("OK "), "nodes: {reply}");
    items(&reply)
        .filter_map(|line| line.split(' ').next().map(str::to_owned))
        .collect()
}

/// Number of live links, from `links`.
fn link_count(proxy: &Proxy) -> usize {
    items(&proxy.ctl("links")).count()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// After a batch: no panic in the log, the registry holds exactly
/// `expected`, a fresh registration comes and goes, and a lookup of `sink`
/// hands out a listener that relays bytes to it byte for byte.
fn assert_healthy(proxy: &Proxy, sink: &Sink, expected: &BTreeSet<String>, context: &str) {
    let log = proxy.log();
    assert!(
        !log.contains("panicked"),
        "{context}: the proxy panicked:\n{log}"
    );
    assert_eq!(&registered(proxy), expected, "{context}: registry");

    let probe = format!("probe{}", proxy.epmd_port);
    let (registration, creation) = register(proxy.epmd_port, &probe, 1);
    assert!(creation >= 4, "{context}: creation {creation}");
    let mut with_probe = expected.clone();
    with_probe.insert(probe.clone());
    assert_eq!(registered(proxy), with_probe, "{context}: probe registered");
    drop(registration);
    wait_until(EXCHANGE_TIMEOUT, "the probe to unregister", || {
        registered(proxy) == *expected
    });

    let port = lookup(proxy.epmd_port, &sink.name)
        .unwrap_or_else(|| panic!("{context}: lookup of {} failed", sink.name));
    let mut link = connect(port);
    let mut sent = fake::send_name(&probe, 7);
    sent.extend_from_slice(b"health check payload");
    link.write_all(&sent).expect("write via the proxy");
    drop(link);
    assert_eq!(
        sink.next_connection(context),
        sent,
        "{context}: bytes relayed to {}",
        sink.name
    );
}

// ---------------------------------------------------------------------------
// The EPMD port
// ---------------------------------------------------------------------------

/// What the proxy must answer to one generated EPMD input.
#[derive(Clone, Debug)]
enum EpmdExpect {
    /// Closed with no reply at all.
    Closed,
    /// Exactly these bytes, then closed.
    Exactly(Vec<u8>),
    /// ALIVE2 accepted (`v`/`y`, result 0).
    Registered { extended: bool },
    /// ALIVE2 refused with result 1, creation 99.
    Refused { extended: bool },
    /// PORT2 found, naming `name`.
    Found(String),
    /// NAMES: our port, and a line for `name`.
    Names(String),
    /// DUMP: our port, an active line for `name`.
    Dump(String),
    /// Anything, as long as the connection ends in time.
    Any,
}

struct EpmdInput {
    what: &'static str,
    pieces: Vec<Vec<u8>>,
    expect: EpmdExpect,
}

/// A valid, complete request body (no prefix) and its expected answer.
fn valid_epmd_request(rng: &mut Rng, sentinel: &str) -> (Vec<u8>, EpmdExpect) {
    match rng.below(7) {
        0 | 1 => {
            let mut info = fake::node_info(&format!("fz{}", rng.next_u64()), 5000);
            info.highest_version = *rng.pick(&[5, 6, 6, 7]);
            info.node_type = *rng.pick(&[77, 72, 0, 255]);
            let extra_len = rng.below(40);
            info.extra = rng.bytes(extra_len);
            let extended = info.highest_version >= 6;
            (
                wire::encode_alive2_request(&info),
                EpmdExpect::Registered { extended },
            )
        }
        2 => {
            let mut body = vec![wire::TAG_PORT_PLEASE2_REQ];
            body.extend_from_slice(format!("nobody{}", rng.next_u64()).as_bytes());
            (body, EpmdExpect::Exactly(vec![119, 1]))
        }
        3 => (
            vec![wire::TAG_NAMES_REQ],
            EpmdExpect::Names(sentinel.to_owned()),
        ),
        4 => (
            vec![wire::TAG_DUMP_REQ],
            EpmdExpect::Dump(sentinel.to_owned()),
        ),
        // A node is registered (the sentinel), so KILL must say NO.
        5 => (
            vec![wire::TAG_KILL_REQ],
            EpmdExpect::Exactly(b"NO".to_vec()),
        ),
        // STOP without --relaxed-command-check: closed silently.
        _ => {
            let mut body = vec![wire::TAG_STOP_REQ];
            body.extend_from_slice(sentinel.as_bytes());
            (body, EpmdExpect::Closed)
        }
    }
}

fn alive2_body(name: &[u8], extra: &[u8], high: u16) -> Vec<u8> {
    let info = NodeInfo {
        highest_version: high,
        name: name.to_vec(),
        extra: extra.to_vec(),
        ..fake::node_info("", 4000)
    };
    wire::encode_alive2_request(&info)
}

fn epmd_input(rng: &mut Rng, sentinel: &str) -> EpmdInput {
    let (what, bytes, expect): (&'static str, Vec<u8>, EpmdExpect) = match rng.below(14) {
        0 => {
            let len = rng.range(1, 40);
            ("random bytes", rng.bytes(len), EpmdExpect::Any)
        }
        1 => {
            let len = rng.range(40, 6000);
            ("random block", rng.bytes(len), EpmdExpect::Any)
        }
        2 => {
            // L = 0, or L > 3057: closed without reading on
            let len: u16 = *rng.pick(&[0, 3058, 3059, 4096, 0xffff]);
            let mut bytes = len.to_be_bytes().to_vec();
            let body = rng.range(0, 4000);
            bytes.extend(rng.bytes(body));
            ("oversized length", bytes, EpmdExpect::Closed)
        }
        3 => {
            let (body, _) = valid_epmd_request(rng, sentinel);
            let framed = wire::frame(&body);
            let cut = rng.below(framed.len());
            (
                "truncated request",
                framed[..cut].to_vec(),
                EpmdExpect::Closed,
            )
        }
        4 => {
            let mut tag = rng.next_u64() as u8;
            while b"xzndks".contains(&tag) {
                tag = tag.wrapping_add(1);
            }
            let mut body = vec![tag];
            let len = rng.below(100);
            body.extend(rng.bytes(len));
            ("unknown tag", wire::frame(&body), EpmdExpect::Closed)
        }
        5 => {
            // ALIVE2 whose lengths or name are malformed: closed, no reply
            let name = format!("m{}", rng.below(1000));
            let mut body = alive2_body(name.as_bytes(), b"ex", 6);
            match rng.below(4) {
                0 => body[9..11].copy_from_slice(&(rng.range(20, 0xffff) as u16).to_be_bytes()),
                1 => {
                    let at = 11 + name.len();
                    body[at..at + 2].copy_from_slice(&(rng.range(3, 0xffff) as u16).to_be_bytes());
                }
                2 => body[11 + rng.below(name.len())] = 0,
                _ => body.truncate(rng.range(1, 13)),
            }
            ("malformed ALIVE2", wire::frame(&body), EpmdExpect::Closed)
        }
        6 => {
            // well-formed ALIVE2 that epmd refuses with result 1
            let high = *rng.pick(&[5, 6]);
            let body = match rng.below(4) {
                0 => alive2_body(&[0xff, 0xfe, b'a'], b"", high),
                1 => alive2_body("a".repeat(256).as_bytes(), b"", high),
                2 => alive2_body(b"okname", &vec![1; 1021], high),
                _ => alive2_body(sentinel.as_bytes(), b"", high),
            };
            let extended = high >= 6;
            (
                "refused ALIVE2",
                wire::frame(&body),
                EpmdExpect::Refused { extended },
            )
        }
        7 => {
            // PORT2 names epmd closes on
            let mut body = vec![wire::TAG_PORT_PLEASE2_REQ];
            match rng.below(5) {
                0 => {}
                1 => body.push(0),
                2 => body.extend_from_slice(b"a\0b"),
                3 => body.extend_from_slice(&[0xc3, 0x28]),
                _ => body.extend_from_slice("b".repeat(256).as_bytes()),
            }
            ("bad PORT2 name", wire::frame(&body), EpmdExpect::Closed)
        }
        8 if rng.percent(20) => {
            // a lookup of the sentinel: answered with a proxy listener
            // nobody connects to (it expires, see unused_proxy_listeners_expire)
            let mut body = vec![wire::TAG_PORT_PLEASE2_REQ];
            body.extend_from_slice(sentinel.as_bytes());
            if rng.percent(50) {
                body.push(0);
            }
            (
                "PORT2 sentinel",
                wire::frame(&body),
                EpmdExpect::Found(sentinel.to_owned()),
            )
        }
        9 => {
            // a valid request sent in several pieces
            let (body, expect) = valid_epmd_request(rng, sentinel);
            let framed = wire::frame(&body);
            let pieces = rng.range(2, framed.len().clamp(2, 6));
            let mut out = Vec::new();
            let chunk = framed.len().div_ceil(pieces);
            for piece in framed.chunks(chunk) {
                out.push(piece.to_vec());
            }
            return EpmdInput {
                what: "split request",
                pieces: out,
                expect,
            };
        }
        10 => {
            // bytes after the request in the same write: closed unserved,
            // or served if they arrive late
            let (body, _) = valid_epmd_request(rng, sentinel);
            let mut framed = wire::frame(&body);
            let more = rng.range(1, 50);
            framed.extend(rng.bytes(more));
            ("trailing bytes", framed, EpmdExpect::Any)
        }
        11 => {
            // a valid request with a few bytes flipped
            let (body, _) = valid_epmd_request(rng, sentinel);
            let mut framed = wire::frame(&body);
            for _ in 0..rng.range(1, 3) {
                let at = rng.below(framed.len());
                framed[at] ^= 1 << rng.below(8);
            }
            ("mutated request", framed, EpmdExpect::Any)
        }
        12 => {
            // the largest request epmd reads: 3057 bytes (NAMES + padding)
            let mut body = vec![wire::TAG_NAMES_REQ];
            body.extend(rng.bytes(wire::MAX_REQUEST_LEN - 1));
            (
                "max-size NAMES",
                wire::frame(&body),
                EpmdExpect::Names(sentinel.to_owned()),
            )
        }
        _ => {
            let (body, expect) = valid_epmd_request(rng, sentinel);
            ("valid request", wire::frame(&body), expect)
        }
    };
    EpmdInput {
        what,
        pieces: split(rng, bytes),
        expect,
    }
}

/// Sends one input, half-closes, and reads until the proxy closes.
fn exchange(port: u16, pieces: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut stream = TcpStream::connect_timeout(&address, EXCHANGE_TIMEOUT)
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(EXCHANGE_TIMEOUT));
    for piece in pieces {
        if stream.write_all(piece).is_err() {
            break; // the proxy closed early: allowed
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut reply = Vec::new();
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(reply),
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "not closed within {:?} (got {} bytes)",
                    started.elapsed(),
                    reply.len()
                ))
            }
            // a reset (we sent bytes it did not read) is a close too
            Err(_) => return Ok(reply),
        }
    }
}

fn check_epmd_reply(expect: &EpmdExpect, reply: &[u8], epmd_port: u16) -> Result<(), String> {
    let port_prefix = u32::from(epmd_port).to_be_bytes();
    let ok = match expect {
        EpmdExpect::Any => true,
        EpmdExpect::Closed => reply.is_empty(),
        EpmdExpect::Exactly(bytes) => reply == bytes.as_slice(),
        EpmdExpect::Registered { extended: true } => reply.len() == 6 && reply[..2] == [118, 0],
        EpmdExpect::Registered { extended: false } => reply.len() == 4 && reply[..2] == [121, 0],
        EpmdExpect::Refused { extended: true } => reply == [118, 1, 0, 0, 0, 99],
        EpmdExpect::Refused { extended: false } => reply == [121, 1, 0, 99],
        EpmdExpect::Found(name) => matches!(
            wire::parse_port2_reply(reply),
            Some(Some(info)) if info.name == name.as_bytes()
        ),
        EpmdExpect::Names(name) => {
            reply.starts_with(&port_prefix)
                && String::from_utf8_lossy(reply).contains(&format!("name {name} at port "))
        }
        EpmdExpect::Dump(name) => {
            reply.starts_with(&port_prefix)
                && String::from_utf8_lossy(reply).contains(&format!("active name     <{name}>"))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, got {reply:?}"))
    }
}

#[test]
fn epmd_port_survives_generated_garbage() {
    let seed = seed("epmd_port_survives_generated_garbage");
    let mut rng = Rng::new(seed);
    // Short listener timeout: the fuzzer's lookups of the sentinel open
    // listeners nobody connects to.
    let proxy = Proxy::start(&["--listener-timeout", "2"]);
    let sink = Sink::start(proxy.epmd_port, &format!("sentinel{}", proxy.epmd_port));
    let expected = names(&[&sink.name]);
    assert_healthy(&proxy, &sink, &expected, "before fuzzing");

    let per_worker = EPMD_INPUTS / BATCHES / WORKERS;
    let mut tried = 0;
    let mut by_kind = std::collections::BTreeMap::<&str, usize>::new();
    for batch in 0..BATCHES {
        let results: Vec<Vec<&'static str>> = thread::scope(|scope| {
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let mut rng = rng.fork();
                    let sentinel = sink.name.clone();
                    let epmd_port = proxy.epmd_port;
                    scope.spawn(move || {
                        let mut kinds = Vec::new();
                        for i in 0..per_worker {
                            let input = epmd_input(&mut rng, &sentinel);
                            let reply = exchange(epmd_port, &input.pieces);
                            let verdict = reply.and_then(|reply| {
                                check_epmd_reply(&input.expect, &reply, epmd_port)
                            });
                            if let Err(why) = verdict {
                                panic!(
                                    "seed {seed} batch {batch} input {i} ({}): {why}; sent {:?}",
                                    input.what, input.pieces
                                );
                            }
                            kinds.push(input.what);
                        }
                        kinds
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for kind in results.into_iter().flatten() {
            tried += 1;
            *by_kind.entry(kind).or_default() += 1;
        }
        assert_healthy(
            &proxy,
            &sink,
            &expected,
            &format!("seed {seed}, after EPMD batch {batch}"),
        );
    }
    assert!(tried >= EPMD_INPUTS, "only {tried} inputs");
    eprintln!("EPMD inputs tried: {tried} {by_kind:?}");
}

// ---------------------------------------------------------------------------
// The control port
// ---------------------------------------------------------------------------

/// What the control port must answer to one generated line.
#[derive(Clone, Debug)]
enum ControlExpect {
    /// A reply starting `OK` or `ERR ` (or `OK bye` and a close).
    OkOrErr,
    Ok,
    Err,
    /// `ERR`, but not the over-long-line one (the line is within the limit).
    ErrWithinLimit,
    TooLong,
    NotUtf8,
}

const TOO_LONG: &str = "ERR line too long";

/// Words the soup generator strings together.
const WORDS: &[&str] = &[
    "cut",
    "fix",
    "heal",
    "status",
    "nodes",
    "links",
    "help",
    "CUT",
    "Fix",
    "|",
    "->",
    ",",
    "a",
    "b",
    "c",
    "n1@h",
    "*@h",
    "*",
    "@",
    "-",
    ">",
    "||",
    "a,b",
    "a|b",
    "x->y",
    "\t",
    "\0",
    "é",
    "\u{3000}",
    "\u{feff}",
    "\r",
    "quit",
    "exit",
    "cut a | a",
    "99999999999999999999",
];

fn control_line(rng: &mut Rng) -> (&'static str, Vec<u8>, ControlExpect) {
    let (what, mut line, expect) = match rng.below(10) {
        0 => {
            let len = rng.range(1, 200);
            ("printable", rng.printable(len), ControlExpect::OkOrErr)
        }
        1 => {
            let len = rng.range(1, 300);
            ("random bytes", rng.bytes(len), ControlExpect::OkOrErr)
        }
        2 => {
            let len = rng.range(0, 200);
            let mut bytes = rng.printable(len);
            bytes.insert(rng.below(bytes.len() + 1), 0xff);
            ("not UTF-8", bytes, ControlExpect::NotUtf8)
        }
        3 | 4 => {
            let mut text = String::new();
            for _ in 0..rng.range(1, 12) {
                let word: &str = WORDS[rng.below(WORDS.len())];
                text.push_str(word);
                if rng.percent(60) {
                    text.push(' ');
                }
            }
            ("word soup", text.into_bytes(), ControlExpect::OkOrErr)
        }
        5 => {
            let commands = [
                "status",
                "nodes",
                "links",
                "help",
                "heal",
                "cut a | b",
                "cut a,b | c,d | e",
                "cut x -> y",
                "fix a | b",
                "fix x -> y",
                "cut n1@h | *@g",
            ];
            let mut text = String::new();
            for _ in 0..rng.below(3) {
                text.push(*rng.pick(&[' ', '\t']));
            }
            let command = rng.pick(&commands);
            if rng.percent(30) {
                text.push_str(&command.to_uppercase());
            } else {
                text.push_str(command);
            }
            for _ in 0..rng.below(3) {
                text.push(' ');
            }
            ("valid command", text.into_bytes(), ControlExpect::Ok)
        }
        6 => {
            let bad = [
                "heal now",
                "cut",
                "cut a",
                "cut a |",
                "cut | b",
                "cut a,,b | c",
                "cut a | a",
                "cut a -> a",
                "status please",
                "frob",
                "cut a b | c",
                "cut a@b@c | d",
                "fix ->",
            ];
            (
                "invalid command",
                rng.pick(&bad).as_bytes().to_vec(),
                ControlExpect::Err,
            )
        }
        7 => {
            // over the limit: 4097 bytes up to a megabyte
            let len = if rng.percent(3) {
                rng.range(100_000, 1_000_000)
            } else {
                rng.range(4097, 20_000)
            };
            let bytes = if rng.percent(50) {
                rng.printable(len)
            } else {
                rng.bytes(len)
            };
            ("over-long line", bytes, ControlExpect::TooLong)
        }
        8 => {
            // exactly at the limit, or just under
            let len = 4096 - rng.below(3);
            let mut bytes = b"zz".to_vec();
            bytes.extend(rng.printable(len - 2));
            ("line at the limit", bytes, ControlExpect::ErrWithinLimit)
        }
        _ => {
            let len = rng.range(1, 64);
            let mut bytes = rng.printable(len);
            bytes.push(b'\r'); // CRLF ending
            ("CRLF line", bytes, ControlExpect::OkOrErr)
        }
    };
    // One line per input: no newline inside.
    for byte in &mut line {
        if *byte == b'\n' {
            *byte = b'N';
        }
    }
    // Blank lines get no reply at all (tested on their own): keep every
    // generated line non-blank so each one is answered.
    let blank = std::str::from_utf8(&line).is_ok_and(|text| text.trim().is_empty());
    if blank {
        line.push(b'x');
    }
    (what, line, expect)
}

fn check_control_reply(expect: &ControlExpect, reply: &[String]) -> Result<(), String> {
    let first = reply.first().map(String::as_str).unwrap_or("");
    let ok = match expect {
        ControlExpect::OkOrErr => first.starts_with("OK") || first.starts_with("ERR "),
        ControlExpect::Ok => first.starts_with("OK"),
        ControlExpect::Err => first.starts_with("ERR "),
        ControlExpect::ErrWithinLimit => first.starts_with("ERR ") && !first.starts_with(TOO_LONG),
        ControlExpect::TooLong => first.starts_with(TOO_LONG),
        ControlExpect::NotUtf8 => first == "ERR line is not UTF-8",
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, got {reply:?}"))
    }
}

/// Runs `lines` generated lines over sessions of random length; returns
/// (lines sent, sessions opened).
fn control_worker(control_port: u16, rng: &mut Rng, lines: usize, context: &str) -> (usize, usize) {
    let mut sent = 0;
    let mut sessions = 0;
    while sent < lines {
        let mut session = Session::open(control_port);
        sessions += 1;
        let length = rng.range(20, 200);
        for _ in 0..length {
            if sent == lines {
                break;
            }
            let (what, mut line, expect) = control_line(rng);
            line.push(b'\n');
            let shown = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
            sent += 1;
            let pieces = split(rng, line);
            if let Err(e) = session.send(&pieces) {
                panic!("{context}: line {sent} ({what}) {shown:?}: write failed: {e}");
            }
            let reply = match session.reply() {
                Ok(Some(reply)) => reply,
                Ok(None) => panic!("{context}: line {sent} ({what}) {shown:?}: session closed"),
                Err(e) => panic!("{context}: line {sent} ({what}) {shown:?}: {e}"),
            };
            if let Err(why) = check_control_reply(&expect, &reply) {
                panic!("{context}: line {sent} ({what}) {shown:?}: {why}");
            }
            if reply == ["OK bye"] {
                // `quit`/`exit` ends the session: EOF must follow.
                assert!(
                    matches!(session.line(), Ok(None)),
                    "{context}: the session stayed open after OK bye"
                );
                break;
            }
        }
    }
    (sent, sessions)
}

#[test]
fn control_port_survives_generated_garbage() {
    let seed = seed("control_port_survives_generated_garbage");
    let mut rng = Rng::new(seed);
    let proxy = Proxy::start(&[]);
    let sink = Sink::start(proxy.epmd_port, &format!("sentinel{}", proxy.epmd_port));
    let expected = names(&[&sink.name]);
    assert_healthy(&proxy, &sink, &expected, "before fuzzing");

    let per_worker = CONTROL_LINES / BATCHES / WORKERS;
    let (mut lines, mut sessions) = (0, 0);
    for batch in 0..BATCHES {
        let context = format!("seed {seed}, control batch {batch}");
        let counts: Vec<(usize, usize)> = thread::scope(|scope| {
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let mut rng = rng.fork();
                    let context = &context;
                    let port = proxy.control_port;
                    scope.spawn(move || control_worker(port, &mut rng, per_worker, context))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for (l, s) in counts {
            lines += l;
            sessions += s;
        }
        // Fuzzed `cut`s are real faults: remove them, then check.
        assert_eq!(proxy.ctl("heal"), "OK healed", "{context}");
        let status = proxy.ctl("status");
        assert!(
            no_faults(&status.lines().map(str::to_owned).collect::<Vec<_>>()),
            "{context}: {status}"
        );
        assert_healthy(&proxy, &sink, &expected, &context);
    }
    // Every fuzz session has ended: the session counter must be back to
    // zero, so the full allowance of 64 sessions is available again.
    let held: Vec<Session> = (0..64).map(|_| Session::open(proxy.control_port)).collect();
    for (i, mut session) in held.into_iter().enumerate() {
        let reply = session.command("status");
        assert!(
            reply[0].starts_with("OK"),
            "session {i} after fuzzing: {reply:?}"
        );
    }
    assert!(lines >= CONTROL_LINES, "only {lines} lines");
    eprintln!("control lines tried: {lines} over {sessions} sessions");
}

// ---------------------------------------------------------------------------
// Control limits
// ---------------------------------------------------------------------------

/// A line of at most 4096 bytes (line ending not counted) is read as a
/// command; a longer one, however it arrives, is answered
/// `ERR line too long` and the session goes on.
#[test]
fn control_line_length_limit() {
    let proxy = Proxy::start(&[]);
    let mut session = Session::open(proxy.control_port);
    let line = |len: usize| {
        let mut bytes = b"zz".to_vec();
        bytes.resize(len, b'q');
        bytes
    };
    let cases: Vec<(usize, &str, bool)> = vec![
        (4096, "\n", false),
        (4096, "\r\n", false),
        (4097, "\n", true),
        (4097, "\r\n", true),
        (5000, "\n", true),
        (5119, "\n", true),
        (1 << 20, "\n", true),
    ];
    for (len, ending, too_long) in cases {
        for pieces in [1, 3, 4099] {
            let mut bytes = line(len);
            bytes.extend_from_slice(ending.as_bytes());
            let piece = bytes.len().div_ceil(pieces);
            let chunks: Vec<Vec<u8>> = bytes.chunks(piece).map(<[u8]>::to_vec).collect();
            session.send(&chunks).expect("send");
            let reply = session.reply().expect("reply").expect("session open");
            let what = format!("{len} bytes + {ending:?} in {} writes", chunks.len());
            if too_long {
                assert_eq!(reply, ["ERR line too long (max 4096 bytes)"], "{what}");
            } else {
                assert!(
                    reply[0].starts_with("ERR unknown command"),
                    "{what}: {reply:?}"
                );
            }
            // The session goes on.
            let status = session.command("status");
            assert!(
                no_faults(&status),
                "{what}: the session goes on: {status:?}"
            );
        }
    }
}

/// Blank lines are skipped without a reply.
#[test]
fn control_blank_lines_get_no_reply() {
    let proxy = Proxy::start(&[]);
    let mut session = Session::open(proxy.control_port);
    session
        .send(&[b"\n \n\t\r\n\r\n".to_vec()])
        .expect("send blank lines");
    let status = session.command("status");
    assert!(no_faults(&status), "{status:?}");
}

/// At most 64 control sessions at once (`--max-control-sessions`): the next
/// one is told so and closed; once one ends, a new one is accepted.
#[test]
fn control_session_limit() {
    check_session_limit(&[], 64);
    check_session_limit(&["--max-control-sessions", "3"], 3);
}

fn check_session_limit(args: &[&str], limit: usize) {
    let proxy = Proxy::start(args);
    let mut held: Vec<Session> = (0..limit)
        .map(|_| Session::open(proxy.control_port))
        .collect();
    for session in &mut held {
        let status = session.command("status");
        assert!(no_faults(&status), "{status:?}");
    }
    let mut refused = Session::open(proxy.control_port);
    assert_eq!(
        refused.line().expect("refusal").as_deref(),
        Some("ERR too many control sessions")
    );
    assert!(matches!(refused.line(), Ok(None)), "refused session closed");
    // The held sessions still work.
    let status = held[limit - 1].command("status");
    assert!(no_faults(&status), "{status:?}");
    drop(held.pop());
    wait_until(EXCHANGE_TIMEOUT, "a session slot to free up", || {
        let mut session = Session::open(proxy.control_port);
        session.send(&[b"status\n".to_vec()]).is_ok()
            && matches!(session.reply(), Ok(Some(r)) if r[0].starts_with("OK"))
    });
}

// ---------------------------------------------------------------------------
// Proxy listeners
// ---------------------------------------------------------------------------

/// Garbage in place of a handshake, in pieces.
fn listener_input(rng: &mut Rng) -> (&'static str, Vec<u8>) {
    let flags = 0x0d_7fbd_u64;
    match rng.below(11) {
        0 => ("nothing", Vec::new()),
        1 => {
            let len = rng.range(1, 64);
            ("random bytes", rng.bytes(len))
        }
        2 => {
            let len = rng.range(64, 8192);
            ("random block", rng.bytes(len))
        }
        3 => {
            // a length prefix promising more than ever comes
            let mut bytes = vec![0xff, 0xff];
            let len = rng.range(0, 3000);
            bytes.extend(rng.bytes(len));
            ("huge length prefix", bytes)
        }
        4 => {
            let mut bytes = vec![0x16, 0x03, 0x01];
            let len = rng.range(0, 600);
            bytes.extend(rng.bytes(len));
            ("TLS-like hello", bytes)
        }
        5 => {
            let mut bytes = encode_send_name_v6(flags, 42, "fz@localhost");
            let len = rng.range(0, 5000);
            bytes.extend(rng.bytes(len));
            ("send_name + garbage", bytes)
        }
        6 => {
            let mut bytes = encode_send_name_v5(5, 0x7fbd, "old@localhost");
            let len = rng.range(0, 500);
            bytes.extend(rng.bytes(len));
            ("old send_name + garbage", bytes)
        }
        7 => (
            "dynamic name",
            encode_send_name_v6(DFLAG_NAME_ME | flags, 0, "localhost"),
        ),
        8 => {
            let whole = encode_send_name_v6(flags, 1, "cut@localhost");
            let cut = rng.below(whole.len());
            ("truncated send_name", whole[..cut].to_vec())
        }
        9 => {
            let name = match rng.below(5) {
                0 => "a\0b@h".to_owned(),
                1 => "noat".to_owned(),
                2 => format!("{}@h", "x".repeat(2000)),
                3 => "sp ace@h".to_owned(),
                _ => "\u{202e}rtl@h".to_owned(),
            };
            ("hostile send_name", encode_send_name_v6(flags, 1, &name))
        }
        _ => {
            let mut name_bytes = encode_send_name_v6(flags, 3, "n@h");
            let last = name_bytes.len() - 1;
            name_bytes[last] = 0xff; // not UTF-8
            ("send_name not UTF-8", name_bytes)
        }
    }
}

#[test]
fn proxy_listeners_relay_garbage_verbatim() {
    let seed = seed("proxy_listeners_relay_garbage_verbatim");
    let mut rng = Rng::new(seed);
    let proxy = Proxy::start(&[]);
    let sentinel = Sink::start(proxy.epmd_port, &format!("sentinel{}", proxy.epmd_port));
    let sinks: Vec<Sink> = (0..WORKERS)
        .map(|w| Sink::start(proxy.epmd_port, &format!("lsink{w}_{}", proxy.epmd_port)))
        .collect();
    let mut expected = names(&[&sentinel.name]);
    expected.extend(sinks.iter().map(|s| s.name.clone()));
    assert_healthy(&proxy, &sentinel, &expected, "before fuzzing");

    let per_worker = LISTENER_INPUTS / BATCHES / WORKERS;
    let mut tried = 0;
    let mut relayed = 0usize;
    for batch in 0..BATCHES {
        let context = format!("seed {seed}, listener batch {batch}");
        let counts: Vec<(usize, usize)> = thread::scope(|scope| {
            let workers: Vec<_> = sinks
                .iter()
                .map(|sink| {
                    let mut rng = rng.fork();
                    let context = &context;
                    let epmd_port = proxy.epmd_port;
                    scope.spawn(move || {
                        let mut bytes = 0;
                        for i in 0..per_worker {
                            let (what, sent) = listener_input(&mut rng);
                            let port = lookup(epmd_port, &sink.name)
                                .unwrap_or_else(|| panic!("{context}: lookup failed"));
                            let mut stream = connect(port);
                            let pieces = split(&mut rng, sent.clone());
                            for piece in &pieces {
                                stream.write_all(piece).expect("write to the listener");
                            }
                            if rng.percent(20) {
                                // half-close and wait: the sink's close must
                                // come back through the proxy as EOF
                                stream.shutdown(Shutdown::Write).expect("shutdown");
                                let mut back = Vec::new();
                                stream.read_to_end(&mut back).unwrap_or_else(|e| {
                                    panic!("{context} input {i} ({what}): no EOF back: {e}")
                                });
                                assert!(back.is_empty(), "{context}: the sink wrote nothing");
                            }
                            drop(stream);
                            let got = sink.next_connection(context);
                            assert!(
                                got == sent,
                                "{context} input {i} ({what}): sent {} bytes {:?}, the node got {} bytes {:?}",
                                sent.len(),
                                &sent[..sent.len().min(64)],
                                got.len(),
                                &got[..got.len().min(64)]
                            );
                            // a one-shot listener accepts one connection only
                            if rng.percent(5) {
                                let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                                assert!(
                                    TcpStream::connect_timeout(&address, EXCHANGE_TIMEOUT).is_err(),
                                    "{context}: listener {port} accepted a second connection"
                                );
                            }
                            bytes += sent.len();
                        }
                        (per_worker, bytes)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for (n, bytes) in counts {
            tried += n;
            relayed += bytes;
        }
        wait_until(EXCHANGE_TIMEOUT, "every fuzzed link to close", || {
            link_count(&proxy) == 0
        });
        assert_healthy(&proxy, &sentinel, &expected, &context);
    }
    assert!(tried >= LISTENER_INPUTS, "only {tried} inputs");
    eprintln!("proxy listener inputs tried: {tried}, {relayed} bytes relayed verbatim");
}

// ---------------------------------------------------------------------------
// Resource limits
// ---------------------------------------------------------------------------

/// The pid of the `epmdpxy` child listening on `port`: the process whose
/// open files include that listening socket.
fn pid_listening_on(port: u16) -> u32 {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            if local_port == Some(port) && fields.get(3) == Some(&"0A") {
                inodes.push(format!("socket:[{}]", fields[9]));
            }
        }
    }
    assert!(!inodes.is_empty(), "nothing listens on {port}");
    let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_epmdpxy")).expect("binary path");
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/exe")).ok() != Some(binary.clone()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.to_string_lossy() == *i) {
                    return pid;
                }
            }
        }
    }
    panic!("no epmdpxy process holds the listener on {port}");
}

/// (open file descriptors, threads) of a process.
fn resources(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let threads = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (fds, threads)
}

/// A proxy listener nobody connects to is closed after `--listener-timeout`:
/// its socket and threads go away (no leak), and its port refuses.
#[test]
fn unused_proxy_listeners_expire() {
    let proxy = Proxy::start(&["--listener-timeout", "1"]);
    let sink = Sink::start(proxy.epmd_port, &format!("idle{}", proxy.epmd_port));
    let pid = pid_listening_on(proxy.epmd_port);
    let (fds, threads) = resources(pid);
    let ports: Vec<u16> = (0..200)
        .map(|_| lookup(proxy.epmd_port, &sink.name).expect("lookup"))
        .collect();
    let (fds_open, threads_open) = resources(pid);
    assert!(
        fds_open >= fds + 100 && threads_open >= threads + 100,
        "200 waiting listeners show: fds {fds} -> {fds_open}, threads {threads} -> {threads_open}"
    );
    wait_until_ok(Duration::from_secs(15), "the listeners to expire", || {
        let now = resources(pid);
        if now == (fds, threads) {
            Ok(())
        } else {
            Err(format!(
                "fds, threads: {now:?}, at start {:?}",
                (fds, threads)
            ))
        }
    });
    for port in &ports[..10] {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
        assert!(
            TcpStream::connect_timeout(&address, EXCHANGE_TIMEOUT).is_err(),
            "expired listener {port} still accepts"
        );
    }
    assert_eq!(link_count(&proxy), 0);
}

/// At most `--max-pending-listeners` listeners wait at once; further
/// lookups are answered "not found" with a logged reason, and answered
/// again once a listener is connected to or expires.
#[test]
fn pending_listener_limit() {
    let proxy = Proxy::start(&["--max-pending-listeners", "5", "--listener-timeout", "4"]);
    let sink = Sink::start(proxy.epmd_port, &format!("busy{}", proxy.epmd_port));
    let ports: Vec<u16> = (0..5)
        .map(|i| lookup(proxy.epmd_port, &sink.name).unwrap_or_else(|| panic!("lookup {i}")))
        .collect();
    assert_eq!(lookup(proxy.epmd_port, &sink.name), None, "6th lookup");
    wait_until(EXCHANGE_TIMEOUT, "the refusal to be logged", || {
        proxy.log().contains("--max-pending-listeners")
    });
    // Connecting to one frees its place at once.
    let mut link = connect(ports[0]);
    link.write_all(b"hello").expect("write");
    drop(link);
    assert_eq!(sink.next_connection("first listener"), b"hello");
    // (freed when the lookup's thread sees the accept: poll for it)
    let mut port = None;
    wait_until(EXCHANGE_TIMEOUT, "a place freed by a connection", || {
        port = lookup(proxy.epmd_port, &sink.name);
        port.is_some()
    });
    let port = port.expect("a place freed by a connection");
    assert_eq!(lookup(proxy.epmd_port, &sink.name), None, "full again");
    drop(connect(port));
    sink.next_connection("second listener");
    // One place is free now; the other four listeners expire after 4 s and
    // free theirs: five lookups are answered again (each new one holds a
    // place again, so this needs the expired four).
    let mut answered = 0;
    wait_until(
        Duration::from_secs(15),
        "expired listeners to free places",
        || {
            if lookup(proxy.epmd_port, &sink.name).is_some() {
                answered += 1;
            }
            answered == 5
        },
    );
}

/// The largest EPMD request is 3057 bytes (as OTP's epmd); a length prefix
/// of 0 or above 3057 closes the connection without a reply, before any
/// body byte is read.
#[test]
fn epmd_request_size_limit() {
    let proxy = Proxy::start(&[]);
    let sink = Sink::start(proxy.epmd_port, &format!("big{}", proxy.epmd_port));
    let mut body = vec![wire::TAG_NAMES_REQ];
    body.resize(wire::MAX_REQUEST_LEN, b'.');
    let reply = exchange(proxy.epmd_port, &[wire::frame(&body)]).expect("3057 bytes");
    check_epmd_reply(
        &EpmdExpect::Names(sink.name.clone()),
        &reply,
        proxy.epmd_port,
    )
    .expect("a 3057-byte NAMES is served");
    body.push(b'.');
    let reply = exchange(proxy.epmd_port, &[wire::frame(&body)]).expect("3058 bytes");
    assert!(reply.is_empty(), "3058 bytes answered {reply:?}");
    // 0xffff announced, nothing sent after: closed at once, not after a wait
    let mut stream = connect(proxy.epmd_port);
    stream.write_all(&[0xff, 0xff]).expect("prefix");
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("closed without waiting for the body");
    assert!(rest.is_empty());
    let reply = exchange(proxy.epmd_port, &[vec![0, 0]]).expect("length 0");
    assert!(reply.is_empty(), "length 0 answered {reply:?}");
}

/// A client that does not complete its request within `--packet-timeout`
/// (counted from the accept, so dribbling does not help) is closed; a
/// registration connection never times out.
#[test]
fn epmd_idle_clients_are_closed() {
    let proxy = Proxy::start(&["--packet-timeout", "1"]);
    let (registration, _) = register(proxy.epmd_port, &format!("stays{}", proxy.epmd_port), 1);

    let mut silent = connect(proxy.epmd_port);
    let mut dribbler = connect(proxy.epmd_port);
    let started = Instant::now();
    // 3000 bytes announced; at most 40 are sent, one every 100 ms
    dribbler.write_all(&3000u16.to_be_bytes()).expect("prefix");
    let mut dribble_closed = false;
    for _ in 0..40 {
        thread::sleep(Duration::from_millis(100));
        if dribbler.write_all(b"z").is_err() {
            dribble_closed = true;
            break;
        }
    }
    let mut rest = Vec::new();
    let read = dribbler.read_to_end(&mut rest).map_err(|e| e.kind());
    let timed_out = matches!(
        read,
        Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
    );
    assert!(
        dribble_closed || !timed_out,
        "a dribbling client is still connected after {:?}",
        started.elapsed()
    );
    assert!(rest.is_empty(), "the dribbler got {rest:?}");
    let mut nothing = Vec::new();
    assert_eq!(
        silent.read_to_end(&mut nothing).map_err(|e| e.kind()),
        Ok(0),
        "a silent client is closed by the proxy"
    );
    // Far past the timeout, the registration is still there.
    assert!(started.elapsed() > Duration::from_secs(1));
    assert!(registered(&proxy).contains(&format!("stays{}", proxy.epmd_port)));
    drop(registration);
}

// ---------------------------------------------------------------------------
// Nobody gets in
// ---------------------------------------------------------------------------

/// This machine's non-loopback IPv4 address (the one its default route
/// uses), if it has one. No packet is sent: a UDP "connect" only picks a
/// route.
fn outside_address() -> Option<Ipv4Addr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.1:9").ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_unspecified() => Some(v4),
        _ => None,
    }
}

fn skip_without_outside_address(test: &str) -> Option<Ipv4Addr> {
    let address = outside_address();
    if address.is_none() {
        eprintln!("SKIPPED {test}: this machine has no non-loopback IPv4 address");
    }
    address
}

/// A TCP connection from `source` (a local address) to `destination`:
/// std cannot bind before connecting, so this calls the C library.
fn connect_from(source: Ipv4Addr, destination: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    #[repr(C)]
    struct SockaddrIn {
        family: u16,
        port: [u8; 2],
        address: [u8; 4],
        zero: [u8; 8],
    }
    extern "C" {
        fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
        fn bind(fd: i32, address: *const SockaddrIn, len: u32) -> i32;
        fn connect(fd: i32, address: *const SockaddrIn, len: u32) -> i32;
        fn close(fd: i32) -> i32;
    }
    const AF_INET: i32 = 2;
    const SOCK_STREAM: i32 = 1;
    const SOCK_CLOEXEC: i32 = 0o2_000_000;
    let SocketAddr::V4(destination) = destination else {
        return Err(io::Error::other("IPv4 only"));
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| SockaddrIn {
        family: AF_INET as u16,
        port: port.to_be_bytes(),
        address: ip.octets(),
        zero: [0; 8],
    };
    let from = sockaddr(source, 0);
    let to = sockaddr(*destination.ip(), destination.port());
    let len = std::mem::size_of::<SockaddrIn>() as u32;
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // address structs live across the calls that read them.
    unsafe {
        let fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        if bind(fd, &from, len) != 0 || connect(fd, &to, len) != 0 {
            let err = io::Error::last_os_error();
            close(fd);
            return Err(err);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

fn refuses(address: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&address, EXCHANGE_TIMEOUT).map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionRefused)
    )
}

/// By default both ports listen on loopback only; `--address` widens EPMD
/// (and the proxy listeners) but the control port stays on 127.0.0.1
/// unless `--control-address` moves it, which logs a warning.
#[test]
fn ports_bind_to_loopback_by_default() {
    let Some(outside) = skip_without_outside_address("ports_bind_to_loopback_by_default") else {
        return;
    };
    let at = |port| SocketAddr::from((outside, port));
    let warning = "has no authentication";

    let proxy = Proxy::start(&[]);
    assert!(
        refuses(at(proxy.epmd_port)),
        "EPMD reachable on {outside} by default"
    );
    assert!(
        refuses(at(proxy.control_port)),
        "control reachable on {outside} by default"
    );
    assert!(!proxy.log().contains(warning));

    let proxy = Proxy::start(&["--address", "0.0.0.0"]);
    let sink = Sink::start(proxy.epmd_port, &format!("wide{}", proxy.epmd_port));
    let reply = exchange(proxy.epmd_port, &[wire::frame(&[wire::TAG_NAMES_REQ])]);
    assert!(reply.is_ok_and(|r| r.len() > 4), "EPMD on loopback too");
    TcpStream::connect_timeout(&at(proxy.epmd_port), EXCHANGE_TIMEOUT)
        .expect("EPMD reachable on the wide address");
    assert!(
        refuses(at(proxy.control_port)),
        "control reachable on {outside} though only --address was given"
    );
    assert!(!proxy.log().contains(warning), "{}", proxy.log());
    drop(sink);

    let proxy = Proxy::start(&["--control-address", "0.0.0.0"]);
    let mut session = TcpStream::connect_timeout(&at(proxy.control_port), EXCHANGE_TIMEOUT)
        .expect("control on the wide address");
    session.write_all(b"status\n").expect("status");
    let mut reply = [0u8; 2];
    session.read_exact(&mut reply).expect("reply");
    assert_eq!(&reply, b"OK");
    assert!(
        proxy.log().contains(warning),
        "no warning for a control port off loopback:\n{}",
        proxy.log()
    );
}

/// Registration, DUMP, KILL and STOP are only for local peers (loopback, or
/// the address the connection arrived on); anyone may look up and list.
/// Even with `--relaxed-command-check`, a remote KILL or STOP is closed
/// without an answer and changes nothing.
#[test]
fn kill_and_stop_only_from_local_peers() {
    let Some(outside) = skip_without_outside_address("kill_and_stop_only_from_local_peers") else {
        return;
    };
    let proxy = Proxy::start(&["--relaxed-command-check"]);
    let sink = Sink::start(proxy.epmd_port, &format!("local{}", proxy.epmd_port));
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, proxy.epmd_port));
    // From `outside` to 127.0.0.1: the peer is neither loopback nor the
    // address it connected to.
    let remote = |body: &[u8]| -> Vec<u8> {
        let mut stream = connect_from(outside, loopback).expect("connect from outside");
        stream
            .set_read_timeout(Some(EXCHANGE_TIMEOUT))
            .expect("timeout");
        stream.write_all(&wire::frame(body)).expect("send");
        let _ = stream.shutdown(Shutdown::Write);
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).expect("closed in time");
        reply
    };
    let mut stop = vec![wire::TAG_STOP_REQ];
    stop.extend_from_slice(sink.name.as_bytes());
    assert_eq!(remote(&[wire::TAG_KILL_REQ]), b"", "remote KILL");
    assert_eq!(remote(&stop), b"", "remote STOP");
    assert_eq!(remote(&[wire::TAG_DUMP_REQ]), b"", "remote DUMP");
    let intruder = alive2_body(b"intruder", b"", 6);
    assert_eq!(remote(&intruder), b"", "remote ALIVE2");
    assert_eq!(registered(&proxy), names(&[&sink.name]), "nothing changed");
    // Lookups and NAMES are for anyone.
    let names_reply = remote(&[wire::TAG_NAMES_REQ]);
    check_epmd_reply(
        &EpmdExpect::Names(sink.name.clone()),
        &names_reply,
        proxy.epmd_port,
    )
    .expect("remote NAMES");
    let mut port2 = vec![wire::TAG_PORT_PLEASE2_REQ];
    port2.extend_from_slice(sink.name.as_bytes());
    check_epmd_reply(
        &EpmdExpect::Found(sink.name.clone()),
        &remote(&port2),
        proxy.epmd_port,
    )
    .expect("remote lookup");

    // The same from loopback is obeyed (relaxed): STOP, then KILL.
    assert_eq!(
        exchange(proxy.epmd_port, &[wire::frame(&stop)]).expect("STOP"),
        b"STOPPED"
    );
    assert_eq!(registered(&proxy), BTreeSet::new(), "stopped");
    let kill = exchange(proxy.epmd_port, &[wire::frame(&[wire::TAG_KILL_REQ])]).expect("KILL");
    assert_eq!(kill, b"OK");
    wait_until(EXCHANGE_TIMEOUT, "the proxy to exit after KILL", || {
        refuses(SocketAddr::from((Ipv4Addr::LOCALHOST, proxy.control_port)))
    });
}

/// A connection to a proxy listener that never completes its first
/// handshake message — silent, or dribbling — is closed after
/// `--handshake-timeout`, and its link goes away, even though the node
/// behind it already gave up. What it did send is passed on first.
#[test]
fn silent_initiators_are_closed_after_the_handshake_timeout() {
    let proxy = Proxy::start(&["-v", "--handshake-timeout", "1"]);
    let sink = Sink::start(proxy.epmd_port, &format!("patient{}", proxy.epmd_port));
    let port = lookup(proxy.epmd_port, &sink.name).expect("lookup");
    let mut silent = connect(port);
    let port = lookup(proxy.epmd_port, &sink.name).expect("lookup");
    let mut dribbler = connect(port);
    let hello = fake::send_name("slow", 1);
    let started = Instant::now();
    let mut sent = Vec::new();
    for &byte in &hello[..hello.len() - 1] {
        if dribbler.write_all(&[byte]).is_err() || started.elapsed() > Duration::from_secs(4) {
            break;
        }
        sent.push(byte);
        thread::sleep(Duration::from_millis(150));
    }
    for (what, stream) in [("silent", &mut silent), ("dribbling", &mut dribbler)] {
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest).map_err(|e| e.kind());
        assert!(
            !matches!(
                read,
                Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
            ),
            "the {what} initiator is still connected after {:?}",
            started.elapsed()
        );
    }
    // Both sink connections end; the dribbler's bytes arrived first.
    let mut got = [
        sink.next_connection("first"),
        sink.next_connection("second"),
    ];
    got.sort();
    assert_eq!(got[0], b"");
    assert!(
        sent.starts_with(&got[1]) && !got[1].is_empty(),
        "{got:?} vs {sent:?}"
    );
    wait_until(EXCHANGE_TIMEOUT, "both links to be gone", || {
        link_count(&proxy) == 0
    });
    wait_until(EXCHANGE_TIMEOUT, "the reason to be logged", || {
        proxy.log().matches("no handshake within 1s").count() == 2
    });
}
