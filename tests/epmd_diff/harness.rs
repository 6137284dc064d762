//! The machinery of the differential test: the request bytes, a case as
//! a list of steps, running a case against one daemon, and comparing what
//! the two daemons answered, byte for byte or by rule.
//!
//! The request and reply bytes are built here by hand, not with
//! `epmdpxy::epmd::wire`: what the test expects must not come from the
//! code under test.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::epmd::{names_reply, RealEpmd};
use crate::common::{fake, ipv6_loopback, Proxy};

// ---------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------

/// After some reply bytes: this long without more means "kept open".
pub const QUIET_AFTER_DATA: Duration = Duration::from_millis(150);
/// Before any reply byte: this long without any means "kept open, silent".
/// Far below the 1 s packet timeout both daemons run with.
pub const QUIET_NO_DATA: Duration = Duration::from_millis(350);
/// How long the registry may take to show a registration or its end.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between the pieces of a split request.
pub const SPLIT_PAUSE: Duration = Duration::from_millis(40);

// ---------------------------------------------------------------------------
// Request bytes
// ---------------------------------------------------------------------------

/// The node port every fake registration announces (nothing listens there).
pub const FAKE_NODE_PORT: u16 = 5123;
pub const NORMAL: u8 = 77;
pub const HIDDEN: u8 = 72;

/// A length prefix and `body`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// ALIVE2_REQ body, tag included.
pub fn alive2_body(
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
pub fn alive2(name: &[u8]) -> Vec<u8> {
    frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, name, b""))
}

/// A framed PORT_PLEASE2_REQ.
pub fn port2(name: &[u8]) -> Vec<u8> {
    let mut body = vec![b'z'];
    body.extend_from_slice(name);
    frame(&body)
}

/// The PORT2_RESP epmd gives for a registration (with the node's own
/// port): `w`, result 0, then the fields of the ALIVE2_REQ that made it.
pub fn port2_found(
    port: u16,
    node_type: u8,
    high: u16,
    low: u16,
    name: &[u8],
    extra: &[u8],
) -> Vec<u8> {
    let mut out = vec![119, 0];
    out.extend_from_slice(&alive2_body(port, node_type, high, low, name, extra)[1..]);
    out
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

/// How a connection ended when an observation stopped reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// EOF or reset.
    Closed,
    /// Still open after the quiet period.
    Open,
}

/// What one observation saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub bytes: Vec<u8>,
    pub end: End,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} then {:?}", show(&self.bytes), self.end)
    }
}

/// Bytes as printable text with escapes, shortened when long.
pub fn show(bytes: &[u8]) -> String {
    let text: String = bytes.escape_ascii().to_string();
    if text.len() > 200 {
        format!("{}...({} bytes)", &text[..200], bytes.len())
    } else {
        text
    }
}

/// What one side must show in a case where we knowingly differ.
#[derive(Clone, Debug)]
pub enum Expect {
    Exactly(Vec<u8>, End),
    /// A successful ALIVE2_X_RESP (any creation but 0), connection open.
    Alive2Ok,
    /// A PORT2_RESP equal to this one (with the node's own port) except
    /// for the port, which must be a live proxy listener.
    Port2Found(Vec<u8>),
}

/// How the two observations of one step are compared.
#[derive(Clone, Debug)]
pub enum Rule {
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
pub enum Step {
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

pub struct Case {
    pub name: String,
    pub steps: Vec<Step>,
}

pub fn case(name: &str, steps: Vec<Step>) -> Case {
    Case {
        name: name.to_owned(),
        steps,
    }
}

pub fn send(c: usize, bytes: Vec<u8>) -> Step {
    Step::Send(c, bytes)
}

pub fn observe(c: usize, label: &'static str, rule: Rule) -> Step {
    Step::Observe(c, label, rule)
}

pub fn exact(c: usize) -> Step {
    Step::Observe(c, "reply", Rule::Exact)
}

pub fn names(list: &[&'static str]) -> Step {
    Step::Names(list.to_vec())
}

/// `bytes` sent in pieces cut at `cuts`, with a pause between pieces.
pub fn send_split(c: usize, bytes: &[u8], cuts: &[usize]) -> Vec<Step> {
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
pub fn steps(parts: Vec<Vec<Step>>) -> Vec<Step> {
    parts.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------
// Running a case on one daemon
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Real,
    Ours,
}

/// Reads until EOF, an error, or a quiet period.
pub fn read_reply(stream: &mut TcpStream) -> Seen {
    read_observation(stream, None)
}

/// Reads until EOF, an error, or `timeout`.
pub fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> Seen {
    read_observation(stream, Some(Instant::now() + timeout))
}

/// Reads until EOF or an error (`Closed`), or until no more bytes come
/// (`Open`): before `deadline` if there is one, else within a quiet period.
fn read_observation(stream: &mut TcpStream, deadline: Option<Instant>) -> Seen {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        let wait = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None if bytes.is_empty() => QUIET_NO_DATA,
            None => QUIET_AFTER_DATA,
        };
        if wait.is_zero() {
            break End::Open;
        }
        if stream.set_read_timeout(Some(wait)).is_err() {
            break if deadline.is_some() {
                End::Open
            } else {
                End::Closed
            };
        }
        match stream.read(&mut buf) {
            Ok(0) => break End::Closed,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            // Quiet for a while: kept open; with a deadline, read on.
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if deadline.is_none() {
                    break End::Open;
                }
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            // A reset: the daemon closed with unread bytes.
            Err(_) => break End::Closed,
        }
    };
    Seen { bytes, end }
}

/// The names in a NAMES reply, in order.
pub fn listed_names(reply: &[u8]) -> Vec<String> {
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
pub fn settle_names(port: u16, want: &[&str]) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let reply = names_reply(port)?;
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
pub fn run_side(port: u16, steps: &[Step]) -> Result<Vec<(usize, Seen)>, String> {
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
pub struct Checker {
    real_port: u16,
    ours_port: u16,
    /// A stand-in node: a listener whose port some registrations announce,
    /// so a lookup of them can be followed through the proxy.
    node: Option<TcpListener>,
}

pub fn creation_of(reply: &[u8]) -> Option<u32> {
    match reply {
        [118, _, a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        [121, _, a, b] => Some(u32::from(u16::from_be_bytes([*a, *b]))),
        _ => None,
    }
}

/// Checks one side's ALIVE2 acceptance; returns its creation.
pub fn check_alive2_ok(seen: &Seen) -> Result<u32, String> {
    if seen.end != End::Open {
        return Err(format!("registration socket closed: {seen}"));
    }
    check_alive2_accepted(seen)
}

/// Checks that `seen` starts with an ALIVE2 acceptance; returns its creation.
pub fn check_alive2_accepted(seen: &Seen) -> Result<u32, String> {
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
pub fn mask_fds(bytes: &[u8]) -> Vec<u8> {
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
pub fn check_relay(node: &TcpListener, proxy_port: u16) -> Result<(), String> {
    let token = format!("relay-check-{proxy_port}");
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy_port))
        .or_else(|_| TcpStream::connect((Ipv6Addr::LOCALHOST, proxy_port)))
        .map_err(|e| format!("proxy port {proxy_port} is not connectable: {e}"))?;
    client
        .write_all(token.as_bytes())
        .map_err(|e| format!("write to the proxy: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(mut upstream) = fake::accept_within(node, left) else {
            return Err(format!(
                "bytes sent to proxy port {proxy_port} never reached the node"
            ));
        };
        let _ = upstream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut got = vec![0u8; token.len()];
        if upstream.read_exact(&mut got).is_ok() && got == token.as_bytes() {
            return Ok(());
        }
    }
}

/// Splits a PORT2 found reply into (port, everything else).
pub fn port2_parts(reply: &[u8]) -> Option<(u16, Vec<u8>)> {
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
pub fn run_table(real: &RealEpmd, ours: &Proxy, cases: &[Case], node: Option<TcpListener>) {
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
