//! What the hostile-input tests share: fake nodes that record what
//! reaches them (`Sink`), control sessions that hold many lines
//! (`Session`), the health check run after every batch of inputs, and one
//! EPMD exchange with the reply it must get.

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::rng::Rng;
use crate::common::{fake, wait_until, Proxy};
use epmdpxy::epmd::wire::{self, NodeInfo};

/// Deadline for any single exchange with the proxy: an input that is
/// neither answered nor closed within this is a hang.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Batches per fuzz run; the health check runs after each.
pub const BATCHES: usize = 10;

/// Client threads per batch.
pub const WORKERS: usize = 4;

/// Splits `bytes` into pieces sent by separate writes (sometimes).
pub fn split(rng: &mut Rng, bytes: Vec<u8>) -> Vec<Vec<u8>> {
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

/// Connects to `port`; the connect and every read may take up to
/// `EXCHANGE_TIMEOUT`.
pub fn connect(port: u16) -> TcpStream {
    fake::connect_within(port, EXCHANGE_TIMEOUT)
}

/// Registers `name` (real port `port`) and returns the open ALIVE2
/// connection (closing it unregisters) and the creation.
pub fn register(epmd_port: u16, name: &str, port: u16) -> (TcpStream, u32) {
    fake::register_node(epmd_port, &fake::node_info(name, port))
}

/// A fake node: a listener whose every accepted connection is read to EOF;
/// the bytes of each connection arrive on a channel, in accept order.
pub struct Sink {
    pub name: String,
    registration: Option<TcpStream>,
    received: Mutex<Receiver<Vec<u8>>>,
}

impl Sink {
    pub fn start(epmd_port: u16, name: &str) -> Sink {
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
    pub fn next_connection(&self, what: &str) -> Vec<u8> {
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

/// A persistent control session (many lines per connection).
pub struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    pub fn open(control_port: u16) -> Session {
        let stream = connect(control_port);
        Session {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, pieces: &[Vec<u8>]) -> io::Result<()> {
        for piece in pieces {
            self.writer.write_all(piece)?;
        }
        Ok(())
    }

    /// One reply line without its line ending; `None` on EOF.
    pub fn line(&mut self) -> io::Result<Option<String>> {
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
    pub fn reply(&mut self) -> io::Result<Option<Vec<String>>> {
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

    pub fn command(&mut self, line: &str) -> Vec<String> {
        self.send(&[format!("{line}\n").into_bytes()])
            .expect("send command");
        self.reply()
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .unwrap_or_else(|| panic!("{line}: session closed"))
    }
}

/// `OK <n> nodes|faults|links|commands [...]` opens a multi-line answer
/// (`status` adds `seed=...` and more after its count); one is singular
/// (`OK 1 fault`).
pub fn is_multi_line_header(line: &str) -> bool {
    let words: Vec<&str> = line.split(' ').collect();
    matches!(words.as_slice(), ["OK", count, kind, ..]
        if count.bytes().all(|b| b.is_ascii_digit())
            && ["node", "fault", "link", "command"]
                .iter()
                .any(|noun| kind.strip_suffix('s').unwrap_or(kind) == *noun))
}

/// True for the `status` answer of a proxy with no fault in force.
pub fn no_faults(lines: &[String]) -> bool {
    lines.len() == 2 && lines[0].starts_with("OK 0 faults") && lines[1] == "END"
}

/// Registered names, from the control `nodes` answer.
pub fn registered(proxy: &Proxy) -> BTreeSet<String> {
    proxy.registered_names().into_iter().collect()
}

/// Number of live links, from `links`.
pub fn link_count(proxy: &Proxy) -> usize {
    proxy.links().len()
}

pub fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// After a batch: no panic in the log, the registry holds exactly
/// `expected`, a fresh registration comes and goes, and a lookup of `sink`
/// hands out a listener that relays bytes to it byte for byte.
pub fn assert_healthy(proxy: &Proxy, sink: &Sink, expected: &BTreeSet<String>, context: &str) {
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

    let port = fake::lookup(proxy.epmd_port, &sink.name)
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

/// What the proxy must answer to one generated EPMD input.
#[derive(Clone, Debug)]
pub enum EpmdExpect {
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

pub fn alive2_body(name: &[u8], extra: &[u8], high: u16) -> Vec<u8> {
    let info = NodeInfo {
        highest_version: high,
        name: name.to_vec(),
        extra: extra.to_vec(),
        ..fake::node_info("", 4000)
    };
    wire::encode_alive2_request(&info)
}

/// Sends one input, half-closes, and reads until the proxy closes.
pub fn exchange(port: u16, pieces: &[Vec<u8>]) -> Result<Vec<u8>, String> {
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

pub fn check_epmd_reply(expect: &EpmdExpect, reply: &[u8], epmd_port: u16) -> Result<(), String> {
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
