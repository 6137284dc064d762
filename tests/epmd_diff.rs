//! Differential test: the real `epmd` (OTP 25, Debian `erlang-base`) and
//! epmdpxy run side by side, receive the same byte sequences, and must
//! answer byte for byte alike — except the fields that must differ (the
//! proxy port in PORT2_RESP, creation values, our own port in NAMES/DUMP,
//! DUMP's fd numbers), which are checked by rule, and the replies where we
//! knowingly differ from OTP 25.2.3, which are named `KNOWN DIFFERENCE`
//! and listed in docs/replacing-epmd.md.
//!
//! Each case is a list of steps (connect, send, pause, half-close, observe
//! what comes back, wait for the registry to hold given names). Both
//! daemons run every case at the same time, one thread each; then the
//! observations are compared. An observation reads until EOF or until the
//! connection has been quiet for a short while, so "closed without a
//! reply" and "kept open" are compared too. Both daemons run with a packet
//! timeout of 1 s, so a stuck connection is not waited on for a minute.
//!
//! These tests need only `epmd` (no `erl`): without it they are skipped
//! with a message, except under `CI`, where they fail.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{program_on_path, Proxy};

// ---------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------

/// After some reply bytes: this long without more means "kept open".
const QUIET_AFTER_DATA: Duration = Duration::from_millis(150);
/// Before any reply byte: this long without any means "kept open, silent".
/// Far below the 1 s packet timeout both daemons run with.
const QUIET_NO_DATA: Duration = Duration::from_millis(350);
/// How long the registry may take to show a registration or its end.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between the pieces of a split request.
const SPLIT_PAUSE: Duration = Duration::from_millis(40);
/// How long a killed daemon may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// The real epmd
// ---------------------------------------------------------------------------

/// Gate: true if `epmd` is on PATH. Without it: a failure under `CI`, a
/// skip note otherwise.
fn require_epmd() -> bool {
    if program_on_path("epmd") {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "`epmd` is not on PATH but CI is set: this test needs OTP's epmd \
             (e.g. `apt-get install -y erlang-base`)"
        );
    }
    eprintln!("SKIPPED: `epmd` is not on PATH; install Erlang/OTP (erlang-base) to run this test");
    false
}

/// A real `epmd -port P` on a free port; killed on drop (its stderr is
/// printed if the test is failing).
struct RealEpmd {
    port: u16,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl RealEpmd {
    /// Starts `epmd -port P -packet_timeout 1` plus `extra` flags.
    fn start(extra: &[&str]) -> RealEpmd {
        for _attempt in 0..10 {
            let port = free_port();
            let mut child = Command::new("epmd")
                .args(["-port", &port.to_string(), "-packet_timeout", "1"])
                .args(extra)
                .env_remove("ERL_EPMD_ADDRESS")
                .env_remove("ERL_EPMD_PORT")
                .env_remove("ERL_EPMD_RELAXED_COMMAND_CHECK")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("failed to spawn epmd");
            let log = Arc::new(Mutex::new(String::new()));
            if let Some(stderr) = child.stderr.take() {
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        if let Ok(mut log) = log.lock() {
                            log.push_str(&line);
                            log.push('\n');
                        }
                    }
                });
            }
            let mut epmd = RealEpmd { port, child, log };
            // epmd exits 0 at once if the port is taken: then try another.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = epmd.child.try_wait() {
                    break;
                }
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    thread::sleep(Duration::from_millis(20));
                    if let Ok(None) = epmd.child.try_wait() {
                        return epmd;
                    }
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            drop(epmd);
        }
        panic!("could not start a real epmd on a free port");
    }

    fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Waits for the process to exit; returns its exit code.
    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RealEpmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- real epmd (port {}) stderr ----\n{}---- end ----",
                self.port,
                self.log()
            );
        }
    }
}

/// A port nothing listens on right now. Binding `[::]:0` (dual-stack on
/// Linux) finds one free on IPv4 and IPv6 alike; IPv4 only without IPv6.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0))
        .or_else(|_| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

/// True if this machine can listen on ::1.
fn ipv6_loopback() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

// ---------------------------------------------------------------------------
// Request bytes
// ---------------------------------------------------------------------------

/// The node port every fake registration announces (nothing listens there).
const FAKE_NODE_PORT: u16 = 5123;
const NORMAL: u8 = 77;
const HIDDEN: u8 = 72;

/// A length prefix and `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// ALIVE2_REQ body, tag included.
fn alive2_body(
    port: u16,
    node_type: u8,
    high: u16,
    low: u16,
    name: &[u8],
    extra: &[u8],
) -> Vec<u8> {
    let mut body = vec![b'x'];
    body.extend_from_slice(&port.to_be_bytes());
    body.extend_from_slice(&[node_type, 0]);
    body.extend_from_slice(&high.to_be_bytes());
    body.extend_from_slice(&low.to_be_bytes());
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(&(extra.len() as u16).to_be_bytes());
    body.extend_from_slice(extra);
    body
}

/// A framed ALIVE2_REQ of a normal OTP 25 node (versions 6..5, no extra).
fn alive2(name: &[u8]) -> Vec<u8> {
    frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, name, b""))
}

/// A framed PORT_PLEASE2_REQ.
fn port2(name: &[u8]) -> Vec<u8> {
    let mut body = vec![b'z'];
    body.extend_from_slice(name);
    frame(&body)
}

/// The PORT2_RESP epmd gives for a registration (with the node's own port).
fn port2_found(
    port: u16,
    node_type: u8,
    high: u16,
    low: u16,
    name: &[u8],
    extra: &[u8],
) -> Vec<u8> {
    let mut out = vec![119, 0];
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&[node_type, 0]);
    out.extend_from_slice(&high.to_be_bytes());
    out.extend_from_slice(&low.to_be_bytes());
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&(extra.len() as u16).to_be_bytes());
    out.extend_from_slice(extra);
    out
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

/// How a connection ended when an observation stopped reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// EOF or reset.
    Closed,
    /// Still open after the quiet period.
    Open,
}

/// What one observation saw.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    bytes: Vec<u8>,
    end: End,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} then {:?}", show(&self.bytes), self.end)
    }
}

/// Bytes as printable text with escapes, shortened when long.
fn show(bytes: &[u8]) -> String {
    let text: String = bytes.escape_ascii().to_string();
    if text.len() > 200 {
        format!("{}...({} bytes)", &text[..200], bytes.len())
    } else {
        text
    }
}

/// What one side must show in a case where we knowingly differ.
#[derive(Clone, Debug)]
enum Expect {
    Exactly(Vec<u8>, End),
    /// A successful ALIVE2_X_RESP (any creation but 0), connection open.
    Alive2Ok,
    /// A PORT2_RESP equal to this one (with the node's own port) except
    /// for the port, which must be a live proxy listener.
    Port2Found(Vec<u8>),
}

/// How the two observations of one step are compared.
#[derive(Clone, Debug)]
enum Rule {
    /// Byte for byte, and the same end.
    Exact,
    /// NAMES/DUMP: 4-byte header = each daemon's own port; the rest equal
    /// (DUMP: after masking `fd = N`).
    Listing,
    /// ALIVE2 accepted: same reply but the creation, which must be
    /// non-zero (and 1..3 for a version-5 reply); connection open.
    Alive2Ok,
    /// ALIVE2 accepted, then the daemon closed the socket (it sent more).
    Alive2ThenClosed,
    /// As `Alive2Ok`, and the creation differs from the one observed at
    /// the named earlier step of the same case (a re-registration).
    Alive2Again(&'static str),
    /// PORT2_RESP found: equal except the port; ours must be a live proxy
    /// listener, not the node's own port.
    Port2Found,
    /// A reply where we knowingly differ from OTP 25.2.3.
    Known {
        why: &'static str,
        real: Expect,
        ours: Expect,
    },
}

#[derive(Clone, Debug)]
enum Step {
    /// Opens connection `c` over IPv6 loopback (others open on first use, over IPv4).
    ConnectV6(usize),
    Send(usize, Vec<u8>),
    Pause(Duration),
    /// Shuts down our sending side of `c` (EOF for the daemon).
    HalfClose(usize),
    /// Drops connection `c`.
    Close(usize),
    Observe(usize, &'static str, Rule),
    /// Reads until the daemon closes `c` or the time is up; compared
    /// byte for byte (for timeouts, which take about a second).
    ObserveUntilClosed(usize, Duration),
    /// Waits until NAMES lists exactly these names (newest first); the
    /// last NAMES reply is compared like an observation.
    Names(Vec<&'static str>),
}

struct Case {
    name: String,
    steps: Vec<Step>,
}

fn case(name: &str, steps: Vec<Step>) -> Case {
    Case {
        name: name.to_owned(),
        steps,
    }
}

fn send(c: usize, bytes: Vec<u8>) -> Step {
    Step::Send(c, bytes)
}

fn observe(c: usize, label: &'static str, rule: Rule) -> Step {
    Step::Observe(c, label, rule)
}

fn exact(c: usize) -> Step {
    Step::Observe(c, "reply", Rule::Exact)
}

fn names(list: &[&'static str]) -> Step {
    Step::Names(list.to_vec())
}

/// `bytes` sent in pieces cut at `cuts`, with a pause between pieces.
fn send_split(c: usize, bytes: &[u8], cuts: &[usize]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        if from > 0 {
            steps.push(Step::Pause(SPLIT_PAUSE));
        }
        steps.push(Step::Send(c, bytes[from..cut].to_vec()));
        from = cut;
    }
    steps
}

/// Concatenates step lists.
fn steps(parts: Vec<Vec<Step>>) -> Vec<Step> {
    parts.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------
// Running a case on one daemon
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Real,
    Ours,
}

/// Reads until EOF, an error, or a quiet period.
fn read_reply(stream: &mut TcpStream) -> Seen {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let quiet = if bytes.is_empty() {
            QUIET_NO_DATA
        } else {
            QUIET_AFTER_DATA
        };
        if stream.set_read_timeout(Some(quiet)).is_err() {
            return Seen {
                bytes,
                end: End::Closed,
            };
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return Seen {
                    bytes,
                    end: End::Closed,
                }
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Seen {
                    bytes,
                    end: End::Open,
                }
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            // A reset: the daemon closed with unread bytes.
            Err(_) => {
                return Seen {
                    bytes,
                    end: End::Closed,
                }
            }
        }
    }
}

/// Reads until EOF, an error, or `timeout`.
fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> Seen {
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Seen {
                bytes,
                end: End::Open,
            };
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return Seen {
                    bytes,
                    end: End::Closed,
                }
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                return Seen {
                    bytes,
                    end: End::Closed,
                }
            }
        }
    }
}

/// One NAMES request; the raw reply.
fn names_request(port: u16) -> Result<Vec<u8>, String> {
    let mut stream =
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(&frame(b"n"))
        .map_err(|e| format!("send NAMES: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| format!("read NAMES reply: {e}"))?;
    Ok(reply)
}

/// The names in a NAMES reply, in order.
fn listed_names(reply: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(reply.get(4..).unwrap_or_default())
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("name ")?;
            let at = rest.rfind(" at port ")?;
            Some(rest[..at].to_owned())
        })
        .collect()
}

/// Polls NAMES until it lists exactly `want`; returns the last reply.
fn settle_names(port: u16, want: &[&str]) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let reply = names_request(port)?;
        if listed_names(&reply) == want {
            return Ok(reply);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "NAMES still lists {:?} after {SETTLE_TIMEOUT:?}, want {want:?}",
                listed_names(&reply)
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `steps` against the daemon on `port`; returns the observations by
/// step index.
fn run_side(port: u16, steps: &[Step]) -> Result<Vec<(usize, Seen)>, String> {
    let mut conns: Vec<Option<TcpStream>> = Vec::new();
    let mut seen = Vec::new();
    fn slot(conns: &mut Vec<Option<TcpStream>>, c: usize) -> &mut Option<TcpStream> {
        if conns.len() <= c {
            conns.resize_with(c + 1, || None);
        }
        &mut conns[c]
    }
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::ConnectV6(c) => {
                let stream = TcpStream::connect((Ipv6Addr::LOCALHOST, port))
                    .map_err(|e| format!("step {index}: connect [::1]:{port}: {e}"))?;
                *slot(&mut conns, *c) = Some(stream);
            }
            Step::Send(c, bytes) => {
                let conn = slot(&mut conns, *c);
                if conn.is_none() {
                    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                        .map_err(|e| format!("step {index}: connect: {e}"))?;
                    let _ = stream.set_nodelay(true);
                    *conn = Some(stream);
                }
                if let Some(stream) = conn.as_mut() {
                    // A daemon that already closed may refuse the bytes:
                    // the next observation shows that.
                    let _ = stream.write_all(bytes);
                }
            }
            Step::Pause(pause) => thread::sleep(*pause),
            Step::HalfClose(c) => {
                if let Some(stream) = slot(&mut conns, *c) {
                    let _ = stream.shutdown(Shutdown::Write);
                }
            }
            Step::Close(c) => *slot(&mut conns, *c) = None,
            Step::Observe(c, _, _) => {
                let stream = slot(&mut conns, *c)
                    .as_mut()
                    .ok_or_else(|| format!("step {index}: observe on unopened connection {c}"))?;
                seen.push((index, read_reply(stream)));
            }
            Step::ObserveUntilClosed(c, timeout) => {
                let stream = slot(&mut conns, *c)
                    .as_mut()
                    .ok_or_else(|| format!("step {index}: observe on unopened connection {c}"))?;
                seen.push((index, read_until_closed(stream, *timeout)));
            }
            Step::Names(want) => {
                let reply = settle_names(port, want).map_err(|e| format!("step {index}: {e}"))?;
                seen.push((
                    index,
                    Seen {
                        bytes: reply,
                        end: End::Closed,
                    },
                ));
            }
        }
    }
    // Close every connection; a case must leave no registration behind.
    for conn in conns.iter_mut() {
        *conn = None;
    }
    settle_names(port, &[]).map_err(|e| format!("after the case: {e}"))?;
    Ok(seen)
}

// ---------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------

/// Context for the rules that look beyond the bytes.
struct Checker {
    real_port: u16,
    ours_port: u16,
    /// A stand-in node: a listener whose port some registrations announce,
    /// so a lookup of them can be followed through the proxy.
    node: Option<TcpListener>,
}

fn creation_of(reply: &[u8]) -> Option<u32> {
    match reply {
        [118, _, a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        [121, _, a, b] => Some(u32::from(u16::from_be_bytes([*a, *b]))),
        _ => None,
    }
}

/// Checks one side's ALIVE2 acceptance; returns its creation.
fn check_alive2_ok(seen: &Seen) -> Result<u32, String> {
    if seen.end != End::Open {
        return Err(format!("registration socket closed: {seen}"));
    }
    check_alive2_accepted(seen)
}

/// Checks that `seen` starts with an ALIVE2 acceptance; returns its creation.
fn check_alive2_accepted(seen: &Seen) -> Result<u32, String> {
    let creation =
        creation_of(&seen.bytes).ok_or_else(|| format!("not an ALIVE2 reply: {seen}"))?;
    if seen.bytes[1] != 0 {
        return Err(format!("result {} (refused): {seen}", seen.bytes[1]));
    }
    if creation == 0 {
        return Err("creation 0".to_owned());
    }
    if seen.bytes[0] == 121 && !(1..=3).contains(&creation) {
        return Err(format!("version-5 creation {creation} outside 1..=3"));
    }
    Ok(creation)
}

/// Replaces every `fd = <digits>` with `fd = #`.
fn mask_fds(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(b"fd = ") {
            out.extend_from_slice(b"fd = #");
            rest = &rest[5..];
            while rest.first().is_some_and(u8::is_ascii_digit) {
                rest = &rest[1..];
            }
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// Connects to the proxy port, sends a token, and waits for it to arrive
/// at the stand-in `node` (other connections the proxy made there for
/// earlier lookups are skipped).
fn check_relay(node: &TcpListener, proxy_port: u16) -> Result<(), String> {
    let token = format!("relay-check-{proxy_port}");
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy_port))
        .or_else(|_| TcpStream::connect((Ipv6Addr::LOCALHOST, proxy_port)))
        .map_err(|e| format!("proxy port {proxy_port} is not connectable: {e}"))?;
    client
        .write_all(token.as_bytes())
        .map_err(|e| format!("write to the proxy: {e}"))?;
    node.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match node.accept() {
            Ok((mut upstream, _)) => {
                let _ = upstream.set_nonblocking(false);
                let _ = upstream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut got = vec![0u8; token.len()];
                if upstream.read_exact(&mut got).is_ok() && got == token.as_bytes() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("stand-in node accept: {e}")),
        }
    }
    Err(format!(
        "bytes sent to proxy port {proxy_port} never reached the node"
    ))
}

/// Splits a PORT2 found reply into (port, everything else).
fn port2_parts(reply: &[u8]) -> Option<(u16, Vec<u8>)> {
    if reply.len() < 14 || reply[..2] != [119, 0] {
        return None;
    }
    let port = u16::from_be_bytes([reply[2], reply[3]]);
    let mut rest = reply.to_vec();
    rest[2] = 0;
    rest[3] = 0;
    Some((port, rest))
}

impl Checker {
    /// Checks that ours answered PORT2 with a live proxy port instead of
    /// `node_port`; if `node_port` is the stand-in node's, also that bytes
    /// sent to the proxy arrive there.
    fn check_proxy_port(&self, proxy_port: u16, node_port: u16) -> Result<(), String> {
        if let Some(node) = &self.node {
            if node.local_addr().map(|a| a.port()).ok() == Some(node_port) {
                return check_relay(node, proxy_port);
            }
        }
        if proxy_port == node_port || proxy_port == 0 {
            return Err(format!(
                "PORT2 gave port {proxy_port}, want a proxy port (node port {node_port})"
            ));
        }
        // The proxy listens where the lookup arrived: 127.0.0.1 or ::1.
        let addresses = [
            SocketAddr::from((Ipv4Addr::LOCALHOST, proxy_port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, proxy_port)),
        ];
        let mut errors = Vec::new();
        for address in addresses {
            match TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
                Ok(_) => return Ok(()),
                Err(e) => errors.push(format!("{address}: {e}")),
            }
        }
        Err(format!(
            "proxy port {proxy_port} is not connectable: {errors:?}"
        ))
    }

    fn check_expect(&self, side: Side, expect: &Expect, seen: &Seen) -> Result<(), String> {
        match expect {
            Expect::Exactly(bytes, end) => {
                let want = Seen {
                    bytes: bytes.clone(),
                    end: *end,
                };
                if *seen != want {
                    return Err(format!("{side:?} gave {seen}, want {want}"));
                }
            }
            Expect::Alive2Ok => {
                check_alive2_ok(seen).map_err(|e| format!("{side:?}: {e}"))?;
            }
            Expect::Port2Found(expected) => {
                let (port, rest) =
                    port2_parts(&seen.bytes).ok_or_else(|| format!("{side:?} gave {seen}"))?;
                let (node_port, want_rest) = port2_parts(expected).expect("a PORT2 reply");
                if rest != want_rest || seen.end != End::Closed {
                    return Err(format!(
                        "{side:?} gave {seen}, want {} then Closed (port aside)",
                        show(expected)
                    ));
                }
                if side == Side::Ours {
                    self.check_proxy_port(port, node_port)?;
                } else if port != node_port {
                    return Err(format!("real epmd gave port {port}, want {node_port}"));
                }
            }
        }
        Ok(())
    }

    /// Compares one step's observations. `earlier` finds the observation
    /// of a labelled step of the same case: (real, ours).
    fn compare(
        &self,
        rule: &Rule,
        real: &Seen,
        ours: &Seen,
        earlier: impl Fn(&str) -> Option<(Seen, Seen)>,
    ) -> Result<(), String> {
        let differ = || format!("real {real}\n      ours {ours}");
        match rule {
            Rule::Exact => {
                if real != ours {
                    return Err(differ());
                }
            }
            Rule::Listing => {
                for (seen, port, side) in [
                    (real, self.real_port, Side::Real),
                    (ours, self.ours_port, Side::Ours),
                ] {
                    if seen.bytes.get(..4) != Some(&u32::from(port).to_be_bytes()[..]) {
                        return Err(format!("{side:?} header is not its port {port}: {seen}"));
                    }
                }
                let (real_text, ours_text) =
                    (mask_fds(&real.bytes[4..]), mask_fds(&ours.bytes[4..]));
                if real_text != ours_text || real.end != ours.end {
                    let at = real_text
                        .iter()
                        .zip(&ours_text)
                        .position(|(a, b)| a != b)
                        .unwrap_or(real_text.len().min(ours_text.len()));
                    let from = at.saturating_sub(60);
                    return Err(format!(
                        "listings differ from byte {at} (fds masked):\n      real ...{}\n      ours ...{}\n      ends: real {:?}, ours {:?}",
                        show(&real_text[from..(at + 60).min(real_text.len())]),
                        show(&ours_text[from..(at + 60).min(ours_text.len())]),
                        real.end,
                        ours.end
                    ));
                }
            }
            Rule::Alive2Ok | Rule::Alive2Again(_) => {
                let real_creation = check_alive2_ok(real).map_err(|e| format!("real: {e}"))?;
                let ours_creation = check_alive2_ok(ours).map_err(|e| format!("ours: {e}"))?;
                if real.bytes.len() != ours.bytes.len() || real.bytes[..2] != ours.bytes[..2] {
                    return Err(differ());
                }
                if let Rule::Alive2Again(label) = rule {
                    let (real_before, ours_before) =
                        earlier(label).ok_or_else(|| format!("no step labelled {label}"))?;
                    if creation_of(&real_before.bytes) == Some(real_creation) {
                        return Err(format!("real epmd reused creation {real_creation}"));
                    }
                    if creation_of(&ours_before.bytes) == Some(ours_creation) {
                        return Err(format!(
                            "ours reused creation {ours_creation} for a re-registration"
                        ));
                    }
                }
            }
            Rule::Alive2ThenClosed => {
                for (seen, side) in [(real, Side::Real), (ours, Side::Ours)] {
                    check_alive2_accepted(seen).map_err(|e| format!("{side:?}: {e}"))?;
                    if seen.end != End::Closed {
                        return Err(format!("{side:?} kept the socket open: {seen}"));
                    }
                }
                if real.bytes.len() != ours.bytes.len() || real.bytes[..2] != ours.bytes[..2] {
                    return Err(differ());
                }
            }
            Rule::Port2Found => {
                let (real_port, real_rest) =
                    port2_parts(&real.bytes).ok_or_else(|| format!("real: {}", differ()))?;
                let (ours_port, ours_rest) =
                    port2_parts(&ours.bytes).ok_or_else(|| format!("ours: {}", differ()))?;
                if real_rest != ours_rest || real.end != ours.end {
                    return Err(format!("(port aside) {}", differ()));
                }
                self.check_proxy_port(ours_port, real_port)?;
            }
            Rule::Known {
                real: r, ours: o, ..
            } => {
                self.check_expect(Side::Real, r, real)?;
                self.check_expect(Side::Ours, o, ours)?;
            }
        }
        Ok(())
    }
}

/// Runs every case on both daemons and compares; panics listing every
/// mismatch. `node` is the stand-in node some cases register.
fn run_table(real: &RealEpmd, ours: &Proxy, cases: &[Case], node: Option<TcpListener>) {
    let checker = Checker {
        real_port: real.port,
        ours_port: ours.epmd_port,
        node,
    };
    let ipv6 = ipv6_loopback();
    if !ipv6 {
        eprintln!("NOTE: no IPv6 loopback here; the cases that connect over ::1 are skipped");
    }
    let mut failures = Vec::new();
    let mut known = Vec::new();
    for case in cases {
        let uses_ipv6 = case
            .steps
            .iter()
            .any(|step| matches!(step, Step::ConnectV6(_)));
        if uses_ipv6 && !ipv6 {
            continue;
        }
        let (real_seen, ours_seen) = thread::scope(|scope| {
            let real_run = scope.spawn(|| run_side(real.port, &case.steps));
            let ours_run = scope.spawn(|| run_side(ours.epmd_port, &case.steps));
            (
                real_run.join().expect("real side thread"),
                ours_run.join().expect("ours side thread"),
            )
        });
        let (real_seen, ours_seen) = match (real_seen, ours_seen) {
            (Ok(real), Ok(ours)) => (real, ours),
            (real, ours) => {
                failures.push(format!(
                    "[{}] could not run: real {:?}, ours {:?}",
                    case.name,
                    real.err(),
                    ours.err()
                ));
                continue;
            }
        };
        let labelled = |label: &str| {
            case.steps
                .iter()
                .enumerate()
                .find_map(|(index, step)| match step {
                    Step::Observe(_, l, _) if *l == label => {
                        let real = real_seen.iter().find(|(i, _)| *i == index)?.1.clone();
                        let ours = ours_seen.iter().find(|(i, _)| *i == index)?.1.clone();
                        Some((real, ours))
                    }
                    _ => None,
                })
        };
        for ((index, real), (_, ours)) in real_seen.iter().zip(&ours_seen) {
            let (label, rule) = match &case.steps[*index] {
                Step::Observe(_, label, rule) => (*label, rule.clone()),
                Step::ObserveUntilClosed(..) => ("until closed", Rule::Exact),
                _ => ("names", Rule::Listing),
            };
            if let Rule::Known { why, .. } = &rule {
                known.push(format!("[{}] {why}", case.name));
            }
            if let Err(why) = checker.compare(&rule, real, ours, labelled) {
                failures.push(format!("[{}] step {index} ({label}): {why}", case.name));
            }
        }
    }
    eprintln!(
        "{} cases, {} failures, {} known differences checked by rule{}{}",
        cases.len(),
        failures.len(),
        known.len(),
        if known.is_empty() { "" } else { ":\n  " },
        known.join("\n  ")
    );
    if !failures.is_empty() {
        panic!(
            "{} of the observations differ from the real epmd:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------

/// Registration (ALIVE2) cases, valid and refused.
fn registration_cases() -> Vec<Case> {
    let long_255 = "n".repeat(255);
    let long_256 = "n".repeat(256);
    // 255 four-byte characters: exactly 1020 bytes, the largest name.
    let wide_255 = "\u{10348}".repeat(255);
    let wide_1021 = format!("{}a", "\u{10348}".repeat(255));
    let extra_1020 = vec![7u8; 1020];
    let extra_1021 = vec![7u8; 1021];
    vec![
        case(
            "ALIVE2 v6 registers; reply v,0,creation; NAMES lists it",
            vec![
                send(0, alive2(b"reg")),
                observe(0, "alive", Rule::Alive2Ok),
                names(&["reg"]),
            ],
        ),
        case(
            "ALIVE2 v5 (HighVsn 5) gets the 16-bit reply y,0,creation 1..3",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 5, 5, b"old", b""))),
                observe(0, "alive", Rule::Alive2Ok),
                names(&["old"]),
            ],
        ),
        case(
            "ALIVE2 hidden node (type 72) registers",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, HIDDEN, 6, 5, b"hid", b""))),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"hid")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "ALIVE2 name already registered: refused 1/99, socket kept; first stays",
            vec![
                send(0, alive2(b"dup")),
                observe(0, "first", Rule::Alive2Ok),
                send(1, alive2(b"dup")),
                exact(1),
                names(&["dup"]),
                Step::Close(1),
                Step::Pause(Duration::from_millis(50)),
                names(&["dup"]),
            ],
        ),
        case(
            "ALIVE2 v5 name already registered: refused y,1,99",
            vec![
                send(0, alive2(b"dup5")),
                observe(0, "first", Rule::Alive2Ok),
                send(1, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 5, 5, b"dup5", b""))),
                exact(1),
            ],
        ),
        case(
            "re-registration after the node went: a different creation",
            vec![
                send(0, alive2(b"again")),
                observe(0, "first", Rule::Alive2Ok),
                Step::Close(0),
                names(&[]),
                send(1, alive2(b"again")),
                observe(1, "second", Rule::Alive2Again("first")),
            ],
        ),
        case(
            "two registrations: NAMES lists the newest first",
            vec![
                send(0, alive2(b"first")),
                observe(0, "a", Rule::Alive2Ok),
                send(1, frame(&alive2_body(4444, NORMAL, 6, 5, b"second", b""))),
                observe(1, "b", Rule::Alive2Ok),
                names(&["second", "first"]),
                Step::Close(1),
                names(&["first"]),
            ],
        ),
        case(
            "ALIVE2 name of 255 characters registers",
            vec![
                send(0, alive2(long_255.as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
            ],
        ),
        case(
            "ALIVE2 name of 256 characters: refused 1/99, socket kept",
            vec![send(0, alive2(long_256.as_bytes())), exact(0), names(&[])],
        ),
        case(
            "ALIVE2 name of 255 four-byte characters (1020 bytes) registers",
            vec![
                send(0, alive2(wide_255.as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
            ],
        ),
        case(
            "ALIVE2 name of 1021 bytes: refused 1/99",
            vec![send(0, alive2(wide_1021.as_bytes())), exact(0), names(&[])],
        ),
        case(
            "ALIVE2 name not UTF-8: refused 1/99",
            vec![send(0, alive2(b"bad\xff\xfe")), exact(0), names(&[])],
        ),
        case(
            "ALIVE2 name with a UTF-16 surrogate (ED A0 80): refused 1/99",
            vec![send(0, alive2(b"s\xed\xa0\x80")), exact(0)],
        ),
        case(
            "ALIVE2 name with an overlong NUL (C0 80): refused 1/99",
            vec![send(0, alive2(b"o\xc0\x80")), exact(0)],
        ),
        case(
            "ALIVE2 UTF-8 name registers and is listed",
            vec![
                send(0, alive2("nöde".as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
                names(&["nöde"]),
            ],
        ),
        case(
            "ALIVE2 extra of 1020 bytes registers; round-trips in PORT2",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"ext", &extra_1020))),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"ext")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "ALIVE2 extra of 1021 bytes: refused 1/99",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"ext2", &extra_1021))),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "ALIVE2 with a NUL in the name: closed, no reply",
            vec![send(0, alive2(b"nu\0ll")), exact(0), names(&[])],
        ),
        case(
            "ALIVE2 of 13 bytes (no name, no Elen): closed, no reply",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"", b""))),
                exact(0),
            ],
        ),
        case(
            "ALIVE2 of 11 bytes: closed, no reply",
            vec![send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"", b"")[..11])), exact(0)],
        ),
        case(
            "ALIVE2 Nlen larger than the packet: closed, no reply",
            vec![
                send(0, {
                    let mut body = alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"abc", b"");
                    body[9..11].copy_from_slice(&5u16.to_be_bytes());
                    frame(&body)
                }),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "ALIVE2 Elen larger than the packet: closed, no reply",
            vec![
                send(0, {
                    let mut body = alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"abc", b"xy");
                    body[14..16].copy_from_slice(&3u16.to_be_bytes());
                    frame(&body)
                }),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "ALIVE2 with bytes after Extra inside the packet: registers",
            vec![
                send(0, {
                    let mut body = alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"pad", b"e");
                    body.extend_from_slice(b"junk");
                    frame(&body)
                }),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"pad")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "ALIVE2 followed by garbage in the same write: closed, no reply",
            vec![
                send(0, [alive2(b"garb"), b"xyz".to_vec()].concat()),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "ALIVE2 split byte by byte, then registered",
            steps(vec![
                send_split(0, &alive2(b"split"), &[1, 2, 3, 8, 15]),
                vec![observe(0, "alive", Rule::Alive2Ok), names(&["split"])],
            ]),
        ),
        case(
            "ALIVE2 split, garbage in the last piece: served, then unregistered",
            steps(vec![
                send_split(0, &[alive2(b"late"), b"!".to_vec()].concat(), &[5]),
                vec![observe(0, "alive", Rule::Alive2ThenClosed), names(&[])],
            ]),
        ),
        case(
            "registered socket sends a byte later: unregistered and closed",
            vec![
                send(0, alive2(b"chatty")),
                observe(0, "alive", Rule::Alive2Ok),
                send(0, b"?".to_vec()),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "registered socket half-closes: unregistered and closed",
            vec![
                send(0, alive2(b"halfy")),
                observe(0, "alive", Rule::Alive2Ok),
                Step::HalfClose(0),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "refused registration socket later sends a byte: closed",
            vec![
                send(0, alive2(b"bad\xff")),
                exact(0),
                send(0, b"?".to_vec()),
                exact(0),
            ],
        ),
        case(
            "KNOWN DIFFERENCE: ALIVE2 with an empty name (14-byte packet)",
            vec![
                send(0, {
                    let mut body = alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"", b"");
                    body.push(0);
                    frame(&body)
                }),
                observe(
                    0,
                    "alive",
                    Rule::Known {
                        why: "OTP 25.2.3 registers the empty name (unreachable by PORT2); we refuse it with 1/99",
                        real: Expect::Alive2Ok,
                        ours: Expect::Exactly(vec![118, 1, 0, 0, 0, 99], End::Open),
                    },
                ),
            ],
        ),
    ]
}

/// Lookup (PORT_PLEASE2), NAMES and the other read-only requests.
/// `node_port`: a stand-in node's port, followed through the proxy.
fn lookup_cases(node_port: u16) -> Vec<Case> {
    let name_254 = "l".repeat(254);
    let name_255 = "l".repeat(255);
    let name_256 = "l".repeat(256);
    let extra = b"\x00\x01extra\xffbytes\x00".to_vec();
    vec![
        case(
            "PORT2 found: all fields as registered, port replaced; the proxy relays",
            vec![
                send(0, frame(&alive2_body(node_port, NORMAL, 6, 5, b"found", b""))),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"found")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "PORT2 for a v5 node with a non-empty extra: round-tripped",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, HIDDEN, 5, 5, b"ex5", &extra))),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"ex5")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "PORT2 with one trailing NUL: found",
            vec![
                send(0, alive2(b"tnul")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"tnul\0")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "PORT2 not found: w,1 then closed",
            vec![send(0, port2(b"nobody")), exact(0)],
        ),
        case(
            "PORT2 is case-sensitive: not found",
            vec![
                send(0, alive2(b"Case")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"case")),
                exact(1),
            ],
        ),
        case(
            "PORT2 for a name that went away: not found",
            vec![
                send(0, alive2(b"gone")),
                observe(0, "alive", Rule::Alive2Ok),
                Step::Close(0),
                names(&[]),
                send(1, port2(b"gone")),
                exact(1),
            ],
        ),
        case(
            "PORT2 with an empty name: closed, no reply",
            vec![send(0, port2(b"")), exact(0)],
        ),
        case(
            "PORT2 with only a NUL: closed, no reply",
            vec![send(0, port2(b"\0")), exact(0)],
        ),
        case(
            "PORT2 with a NUL inside the name: closed, no reply",
            vec![send(0, port2(b"ab\0cd")), exact(0)],
        ),
        case(
            "PORT2 with two trailing NULs: closed, no reply",
            vec![send(0, port2(b"ab\0\0")), exact(0)],
        ),
        case(
            "PORT2 name not UTF-8: closed, no reply",
            vec![send(0, port2(b"ab\xff")), exact(0)],
        ),
        case(
            "PORT2 name of 254 characters, not registered: w,1",
            vec![send(0, port2(name_254.as_bytes())), exact(0)],
        ),
        case(
            "PORT2 name of 254 characters, registered: found",
            vec![
                send(0, alive2(name_254.as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(name_254.as_bytes())),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "PORT2 name of 256 characters: closed, no reply",
            vec![send(0, port2(name_256.as_bytes())), exact(0)],
        ),
        case(
            "KNOWN DIFFERENCE: PORT2 for a registered 255-character name",
            vec![
                send(0, alive2(name_255.as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(name_255.as_bytes())),
                observe(
                    1,
                    "lookup",
                    Rule::Known {
                        why: "OTP 25.2.3 counts the terminating NUL and closes; we answer, as a 255-character name is valid",
                        real: Expect::Exactly(vec![], End::Closed),
                        ours: Expect::Port2Found(port2_found(
                            FAKE_NODE_PORT,
                            NORMAL,
                            6,
                            5,
                            name_255.as_bytes(),
                            b"",
                        )),
                    },
                ),
            ],
        ),
        case(
            "PORT2 split over three writes: found",
            steps(vec![
                vec![send(0, alive2(b"pieces")), observe(0, "alive", Rule::Alive2Ok)],
                send_split(1, &port2(b"pieces"), &[1, 4]),
                vec![observe(1, "lookup", Rule::Port2Found)],
            ]),
        ),
        case(
            "PORT2 followed by garbage in the same write: closed, no reply",
            vec![send(0, [port2(b"nobody"), b"zz".to_vec()].concat()), exact(0)],
        ),
        case(
            "PORT2 split, garbage after the request in the last piece: served",
            steps(vec![
                send_split(0, &[port2(b"nobody"), b"zz".to_vec()].concat(), &[4]),
                vec![exact(0)],
            ]),
        ),
        case("NAMES with nothing registered", vec![send(0, frame(b"n")), observe(0, "names", Rule::Listing)]),
        case(
            "NAMES with trailing bytes inside the packet: served",
            vec![send(0, frame(b"nabc")), observe(0, "names", Rule::Listing)],
        ),
        case(
            "NAMES in the largest accepted packet (3057 bytes)",
            vec![
                send(0, frame(&[b"n".to_vec(), vec![b'.'; 3056]].concat())),
                observe(0, "names", Rule::Listing),
            ],
        ),
        case(
            "NAMES with a hidden and a normal node",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, HIDDEN, 6, 5, b"h1", b""))),
                observe(0, "a", Rule::Alive2Ok),
                send(1, frame(&alive2_body(6001, NORMAL, 6, 5, b"v1", b""))),
                observe(1, "b", Rule::Alive2Ok),
                send(2, frame(b"n")),
                observe(2, "names", Rule::Listing),
            ],
        ),
        case(
            "NAMES over IPv6 loopback",
            vec![
                Step::ConnectV6(0),
                send(0, frame(b"n")),
                observe(0, "names", Rule::Listing),
            ],
        ),
        case(
            "PORT2 over IPv6 loopback: found",
            vec![
                send(0, alive2(b"six")),
                observe(0, "alive", Rule::Alive2Ok),
                Step::ConnectV6(1),
                send(1, port2(b"six")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "KILL refused while a node is registered: NO",
            vec![
                send(0, alive2(b"alive")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"k")),
                exact(1),
                names(&["alive"]),
            ],
        ),
        case(
            "STOP without -relaxed_command_check: closed, no reply; node stays",
            vec![
                send(0, alive2(b"stay")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"sstay")),
                exact(1),
                names(&["stay"]),
            ],
        ),
    ]
}

/// Framing: lengths, unknown tags, truncation, early closes.
fn framing_cases() -> Vec<Case> {
    vec![
        case(
            "zero length: closed, no reply",
            vec![send(0, vec![0, 0]), exact(0)],
        ),
        case(
            "zero length followed by bytes: closed, no reply",
            vec![send(0, vec![0, 0, b'n']), exact(0)],
        ),
        case(
            "length 3058 (one over the limit): closed, no reply",
            vec![send(0, 3058u16.to_be_bytes().to_vec()), exact(0)],
        ),
        case(
            "length 65535: closed, no reply",
            vec![send(0, vec![0xff, 0xff, b'n']), exact(0)],
        ),
        case(
            "unknown tag: closed, no reply",
            vec![send(0, frame(b"Q")), exact(0)],
        ),
        case(
            "unknown tag 0: closed, no reply",
            vec![send(0, frame(b"\0abc")), exact(0)],
        ),
        case(
            "ALIVE2_RESP tag sent as a request: closed, no reply",
            vec![send(0, frame(b"y\0\0\x01")), exact(0)],
        ),
        case(
            "only one byte of the length: kept open, then closed at EOF",
            vec![send(0, vec![0]), exact(0), Step::HalfClose(0), exact(0)],
        ),
        case(
            "truncated body: kept open, then closed at EOF, no reply",
            vec![
                send(0, port2(b"truncated")[..6].to_vec()),
                exact(0),
                Step::HalfClose(0),
                exact(0),
            ],
        ),
        case(
            "truncated ALIVE2, then EOF: nothing registered",
            vec![
                send(0, alive2(b"cut")[..10].to_vec()),
                Step::HalfClose(0),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "connection closed before sending anything",
            vec![Step::ConnectV6(0), Step::Close(0), names(&[])],
        ),
        case(
            "connection half-closed before sending anything",
            vec![send(0, vec![]), Step::HalfClose(0), exact(0)],
        ),
        case(
            "NAMES split over two writes",
            steps(vec![
                send_split(0, &frame(b"n"), &[1]),
                vec![observe(0, "names", Rule::Listing)],
            ]),
        ),
        case(
            "NAMES followed by garbage in the same write: closed, no reply",
            vec![send(0, [frame(b"n"), b"n".to_vec()].concat()), exact(0)],
        ),
        case(
            "two requests in one write: closed, no reply",
            vec![send(0, [frame(b"n"), frame(b"n")].concat()), exact(0)],
        ),
    ]
}

/// The packet timeout (1 s for both daemons here).
fn timeout_cases() -> Vec<Case> {
    // A request that never completes: the length, then one byte every
    // 300 ms, for about 2 s.
    let mut dribble = vec![send(0, vec![0, 20])];
    for _ in 0..7 {
        dribble.push(Step::Pause(Duration::from_millis(300)));
        dribble.push(send(0, b"n".to_vec()));
    }
    dribble.push(observe(
        0,
        "dribbled",
        Rule::Known {
            why: "OTP 25.2.3 restarts the packet timeout on every byte; we measure it from the \
                  connection's start (as newer OTP does), so dribbling cannot hold a connection",
            real: Expect::Exactly(vec![], End::Open),
            ours: Expect::Exactly(vec![], End::Closed),
        },
    ));
    vec![
        case(
            "idle connection: closed after the packet timeout, no reply",
            vec![
                send(0, vec![]),
                Step::ObserveUntilClosed(0, Duration::from_secs(5)),
            ],
        ),
        case(
            "incomplete request: closed after the packet timeout, no reply",
            vec![
                send(0, port2(b"slow")[..5].to_vec()),
                Step::ObserveUntilClosed(0, Duration::from_secs(5)),
            ],
        ),
        case(
            "registered socket: never timed out",
            vec![
                send(0, alive2(b"patient")),
                observe(0, "alive", Rule::Alive2Ok),
                Step::Pause(Duration::from_millis(2500)),
                names(&["patient"]),
            ],
        ),
        case(
            "KNOWN DIFFERENCE: a request dribbled byte by byte past the timeout",
            dribble,
        ),
    ]
}

/// DUMP, on a fresh pair: its old-name list is the history of the
/// daemon, so the nodes here go one at a time, in a known order.
fn dump_cases() -> Vec<Case> {
    vec![case(
        "DUMP with live and old names",
        vec![
            send(0, alive2(b"d1")),
            observe(0, "a", Rule::Alive2Ok),
            send(1, alive2(b"d2")),
            observe(1, "b", Rule::Alive2Ok),
            send(2, frame(&alive2_body(7000, HIDDEN, 5, 5, b"d3", b"xx"))),
            observe(2, "c", Rule::Alive2Ok),
            send(3, alive2(b"d4")),
            observe(3, "d", Rule::Alive2Ok),
            Step::Close(1),
            names(&["d4", "d3", "d1"]),
            Step::Close(3),
            names(&["d3", "d1"]),
            send(4, frame(b"d")),
            observe(4, "dump", Rule::Listing),
            // d2 comes back: it leaves the old list.
            send(5, alive2(b"d2")),
            observe(5, "e", Rule::Alive2Ok),
            send(6, frame(b"d")),
            observe(6, "dump again", Rule::Listing),
        ],
    )]
}

/// STOP and KILL, which need -relaxed_command_check.
fn relaxed_cases() -> Vec<Case> {
    vec![
        case(
            "STOP a registered node: STOPPED, its socket closed, unregistered",
            vec![
                send(0, alive2(b"victim")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"svictim")),
                exact(1),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "STOP an unknown name: NOEXIST then STOPPED",
            vec![send(0, frame(b"snobody")), exact(0)],
        ),
        case(
            "STOP with no name: closed, no reply",
            vec![send(0, frame(b"s")), exact(0)],
        ),
        case(
            "STOP reads a C string: `name\\0junk` stops `name`",
            vec![
                send(0, alive2(b"cstr")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"scstr\0junk")),
                exact(1),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "STOP with an empty C string: NOEXIST then STOPPED",
            vec![send(0, frame(b"s\0x")), exact(0)],
        ),
        case(
            "STOP with a non-UTF-8 name: NOEXIST then STOPPED; node stays",
            vec![
                send(0, alive2("st\u{fffd}p".as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"sst\xffp")),
                exact(1),
                names(&["st\u{fffd}p"]),
            ],
        ),
        case(
            "re-registration after STOP: a different creation",
            vec![
                send(0, alive2(b"phoenix")),
                observe(0, "first", Rule::Alive2Ok),
                send(1, frame(b"sphoenix")),
                exact(1),
                names(&[]),
                send(2, alive2(b"phoenix")),
                observe(2, "second", Rule::Alive2Again("first")),
            ],
        ),
    ]
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Runs `cases` split into `chunks` parts, each on its own pair of
/// daemons, at the same time (the cases wait on quiet periods, not CPU).
fn run_split(cases: &[Case], chunks: usize, real_args: &[&str], ours_args: &[&str]) {
    let size = cases.len().div_ceil(chunks).max(1);
    let results: Vec<_> = thread::scope(|scope| {
        let runs: Vec<_> = cases
            .chunks(size)
            .map(|chunk| {
                scope.spawn(move || {
                    let real = RealEpmd::start(real_args);
                    let ours = Proxy::start(ours_args);
                    run_table(&real, &ours, chunk, None);
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join()).collect()
    });
    for result in results {
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}

const OURS: &[&str] = &["--packet-timeout", "1"];
const OURS_RELAXED: &[&str] = &["--packet-timeout", "1", "--relaxed-command-check"];

#[test]
fn registrations_match_epmd() {
    if !require_epmd() {
        return;
    }
    run_split(&registration_cases(), 3, &[], OURS);
}

#[test]
fn lookups_match_epmd() {
    if !require_epmd() {
        return;
    }
    let node = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("stand-in node listener");
    let node_port = node.local_addr().expect("node address").port();
    let real = RealEpmd::start(&[]);
    let ours = Proxy::start(OURS);
    run_table(&real, &ours, &lookup_cases(node_port), Some(node));
}

#[test]
fn framing_matches_epmd() {
    if !require_epmd() {
        return;
    }
    run_split(&framing_cases(), 2, &[], OURS);
}

#[test]
fn timeouts_match_epmd() {
    if !require_epmd() {
        return;
    }
    // Each case waits a second or two: run them all at once.
    run_split(&timeout_cases(), timeout_cases().len(), &[], OURS);
}

#[test]
fn relaxed_stop_matches_epmd() {
    if !require_epmd() {
        return;
    }
    run_split(
        &relaxed_cases(),
        1,
        &["-relaxed_command_check"],
        OURS_RELAXED,
    );
}

/// True once nothing accepts connections on `port` any more.
fn stopped_listening(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
}

/// Polls `f` until true or `timeout`.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// DUMP: live nodes newest first, then the old names oldest first, in
/// epmd's exact text (fd numbers aside). A fresh pair, so that the old
/// names are exactly those this test made, unregistered one at a time.
#[test]
fn dump_matches_epmd() {
    if !require_epmd() {
        return;
    }
    run_split(&dump_cases(), 1, &[], OURS);
}

/// KILL with nothing registered: both answer OK and exit.
#[test]
fn kill_when_empty_matches_epmd() {
    if !require_epmd() {
        return;
    }
    let mut real = RealEpmd::start(&[]);
    let ours = Proxy::start(OURS);
    // Not a table case: run_table asks NAMES after each case, and both
    // daemons are gone by then.
    let real_seen = run_kill(real.port);
    let ours_seen = run_kill(ours.epmd_port);
    assert_eq!(real_seen, ours_seen, "KILL with nothing registered");
    assert_eq!(
        real_seen,
        Seen {
            bytes: b"OK".to_vec(),
            end: End::Closed
        }
    );
    assert_eq!(real.wait_exit(EXIT_TIMEOUT), Some(0), "real epmd exit code");
    assert!(
        eventually(EXIT_TIMEOUT, || stopped_listening(ours.epmd_port)),
        "epmdpxy still listens after KILL OK"
    );
}

/// KILL with nodes registered but -relaxed_command_check: OK and exit.
#[test]
fn relaxed_kill_matches_epmd() {
    if !require_epmd() {
        return;
    }
    let mut real = RealEpmd::start(&["-relaxed_command_check"]);
    let ours = Proxy::start(OURS_RELAXED);
    let mut observed = Vec::new();
    for port in [real.port, ours.epmd_port] {
        let mut node = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        node.write_all(&alive2(b"doomed")).expect("register");
        let registered = read_reply(&mut node);
        check_alive2_ok(&registered).expect("registered");
        let killed = run_kill(port);
        // The registration socket is closed by the exit.
        let after = read_reply(&mut node);
        observed.push((killed, after));
    }
    assert_eq!(observed[0], observed[1], "real vs ours");
    assert_eq!(observed[0].0.bytes, b"OK");
    assert_eq!(observed[0].1.end, End::Closed);
    assert_eq!(real.wait_exit(EXIT_TIMEOUT), Some(0), "real epmd exit code");
    assert!(
        eventually(EXIT_TIMEOUT, || stopped_listening(ours.epmd_port)),
        "epmdpxy still listens after KILL OK"
    );
}

fn run_kill(port: u16) -> Seen {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect for KILL");
    stream.write_all(&frame(b"k")).expect("send KILL");
    read_reply(&mut stream)
}

/// The table is as large as promised: every request type, at least 40 cases.
#[test]
fn table_covers_every_request_type() {
    let all: Vec<Case> = [
        registration_cases(),
        lookup_cases(FAKE_NODE_PORT),
        framing_cases(),
        timeout_cases(),
        relaxed_cases(),
        dump_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(all.len() >= 40, "only {} cases", all.len());
    for tag in [b'x', b'z', b'n', b'd', b'k', b's'] {
        let sent = all.iter().any(|case| {
            case.steps.iter().any(|step| match step {
                Step::Send(_, bytes) => bytes.get(2) == Some(&tag),
                _ => false,
            })
        });
        assert!(sent, "no case sends request tag {:?}", tag as char);
    }
}
