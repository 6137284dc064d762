//! Fake nodes: sockets that play an Erlang node on the wire, byte for byte
//! as a node would.
//!
//! A fake node registers with ALIVE2 and holds the registration while its
//! EPMD connection stays open; an initiator looks its target up with
//! PORT_PLEASE2, connects to the proxy port it is given and sends a
//! `send_name` first, so the proxy knows both ends of the link.
//!
//! `register`, `lookup` and `open_link` do the usual thing with `TIMEOUT`
//! on every read; the pieces below them take an already connected stream,
//! for callers that need other settings.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use epmdpxy::epmd::wire::{self, NodeInfo, NODE_TYPE_NORMAL};
use epmdpxy::proxy::handshake::encode_send_name_v6;

/// Distribution flags of a fake initiator's `send_name` (those of an
/// OTP 25 node; the proxy only reads the name).
pub const SEND_NAME_FLAGS: u64 = 0x0d_7fbd;

/// How long `register`, `lookup` and `open_link` wait for any one connect
/// or read.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How often `accept_within` looks for a connection.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

// ---------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------

/// Connects to 127.0.0.1:`port` (an unbounded connect) with TCP_NODELAY and
/// `timeout` on reads.
pub fn connect(port: u16, timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    tune(stream, timeout)
}

/// As `connect`, but the connect itself must also finish within `timeout`.
pub fn connect_within(port: u16, timeout: Duration) -> TcpStream {
    let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let stream = TcpStream::connect_timeout(&address, timeout)
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    tune(stream, timeout)
}

/// Accepts one connection on `listener` (a fake node's) within `timeout`.
/// The listener and the stream are left blocking.
pub fn accept_within(listener: &TcpListener, timeout: Duration) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    let accepted = loop {
        match listener.accept() {
            Ok((stream, _)) => break Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(ACCEPT_POLL)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                break Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {timeout:?}"),
                ))
            }
            Err(e) => break Err(e),
        }
    };
    listener.set_nonblocking(false)?;
    let stream = accepted?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

fn tune(stream: TcpStream, timeout: Duration) -> TcpStream {
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

// ---------------------------------------------------------------------------
// EPMD: ALIVE2 and PORT_PLEASE2
// ---------------------------------------------------------------------------

/// A normal (type 77) node `name` listening on `port`, distribution
/// versions 5 to 6, no extra data.
pub fn node_info(name: &str, port: u16) -> NodeInfo {
    NodeInfo {
        port,
        node_type: NODE_TYPE_NORMAL,
        protocol: 0,
        highest_version: 6,
        lowest_version: 5,
        name: name.as_bytes().to_vec(),
        extra: vec![],
    }
}

/// Sends ALIVE2 for `info` over `stream` (a connection to the EPMD port)
/// and panics unless it is accepted (`v`, result 0). Returns the creation.
/// The registration lasts while `stream` stays open.
pub fn alive2(stream: &mut TcpStream, info: &NodeInfo) -> u32 {
    let name = info.name_str();
    stream
        .write_all(&wire::frame(&wire::encode_alive2_request(info)))
        .expect("send ALIVE2");
    let mut reply = [0u8; 6];
    stream
        .read_exact(&mut reply)
        .unwrap_or_else(|e| panic!("ALIVE2 reply for {name}: {e}"));
    assert_eq!(
        &reply[..2],
        &[118, 0],
        "ALIVE2 of {name} refused: {reply:?}"
    );
    u32::from_be_bytes([reply[2], reply[3], reply[4], reply[5]])
}

/// Sends PORT_PLEASE2 for `name` over `stream` (a connection to the EPMD
/// port) and reads the reply to EOF: the node found, or `None` for "not
/// found". Panics on a malformed reply.
pub fn port_please2(stream: &mut TcpStream, name: &str) -> Option<NodeInfo> {
    let mut body = vec![wire::TAG_PORT_PLEASE2_REQ];
    body.extend_from_slice(name.as_bytes());
    stream.write_all(&wire::frame(&body)).expect("send PORT2");
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .unwrap_or_else(|e| panic!("PORT2 reply for {name}: {e}"));
    wire::parse_port2_reply(&reply)
        .unwrap_or_else(|| panic!("malformed PORT2 reply for {name}: {reply:?}"))
}

/// Registers `info` with the EPMD on `epmd_port`; returns the connection
/// that holds the registration (closing it unregisters) and the creation.
pub fn register_node(epmd_port: u16, info: &NodeInfo) -> (TcpStream, u32) {
    let mut stream = connect_within(epmd_port, TIMEOUT);
    let creation = alive2(&mut stream, info);
    (stream, creation)
}

/// Registers a normal node `name` listening on `port` (see `node_info`);
/// the registration lasts while the returned connection is open.
pub fn register(epmd_port: u16, name: &str, port: u16) -> TcpStream {
    register_node(epmd_port, &node_info(name, port)).0
}

/// Looks `name` up with PORT_PLEASE2: the port the EPMD hands out (a
/// proxy listener), or `None` for "not found".
pub fn lookup(epmd_port: u16, name: &str) -> Option<u16> {
    let info = port_please2(&mut connect_within(epmd_port, TIMEOUT), name)?;
    assert_eq!(info.name, name.as_bytes(), "PORT2 answered another node");
    Some(info.port)
}

// ---------------------------------------------------------------------------
// Links through the proxy
// ---------------------------------------------------------------------------

/// The `send_name` of a fake initiator `initiator@localhost` (OTP 23+
/// form, `SEND_NAME_FLAGS`).
pub fn send_name(initiator: &str, creation: u32) -> Vec<u8> {
    encode_send_name_v6(SEND_NAME_FLAGS, creation, &format!("{initiator}@localhost"))
}

/// Sends `initiator`'s `send_name` (creation 1) over `initiator_end` (a
/// connection to a proxy port), accepts the proxy's connection to the
/// target on `listener` and checks that the `send_name` arrived there byte
/// for byte. Returns the target's end, with `timeout` on reads.
pub fn relay_send_name(
    initiator_end: &mut TcpStream,
    initiator: &str,
    listener: &TcpListener,
    timeout: Duration,
) -> TcpStream {
    let hello = send_name(initiator, 1);
    initiator_end.write_all(&hello).expect("send_name");
    let mut target_end =
        accept_within(listener, timeout).expect("the proxy connects to the target");
    target_end.set_read_timeout(Some(timeout)).expect("timeout");
    let mut got = vec![0u8; hello.len()];
    target_end.read_exact(&mut got).expect("send_name relayed");
    assert_eq!(got, hello);
    target_end
}

/// A fake initiator's and a fake target's ends of one proxied link.
pub struct FakeLink {
    pub initiator: TcpStream,
    pub target: TcpStream,
}

/// Looks `target` up, connects to the proxy port as `initiator` (sending
/// its `send_name`) and accepts the proxy's connection on `listener`, the
/// target's. Both ends read with `TIMEOUT`.
pub fn open_link(
    epmd_port: u16,
    initiator: &str,
    target: &str,
    listener: &TcpListener,
) -> FakeLink {
    let port = lookup(epmd_port, target).unwrap_or_else(|| panic!("{target} not found"));
    let mut initiator_end = connect_within(port, TIMEOUT);
    let target_end = relay_send_name(&mut initiator_end, initiator, listener, TIMEOUT);
    FakeLink {
        initiator: initiator_end,
        target: target_end,
    }
}

/// A fake node registered as `name` with its own listener (where the proxy
/// connects the links to it), and the name of a fake initiator of links to
/// it. The registration lasts while this lives.
pub struct FakeTarget {
    pub name: String,
    pub initiator: String,
    pub listener: TcpListener,
    pub epmd_port: u16,
    _registration: TcpStream,
}

impl FakeTarget {
    /// Listens on a free loopback port and registers `name` there with the
    /// EPMD on `epmd_port`.
    pub fn register(epmd_port: u16, name: String, initiator: String) -> FakeTarget {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fake node's listener");
        let port = listener.local_addr().expect("its address").port();
        let registration = register(epmd_port, &name, port);
        FakeTarget {
            name,
            initiator,
            listener,
            epmd_port,
            _registration: registration,
        }
    }

    /// A link from the initiator to this node (see `open_link`).
    pub fn open_link(&self) -> FakeLink {
        open_link(self.epmd_port, &self.initiator, &self.name, &self.listener)
    }
}

/// Reads one handshake message: a 2-byte length, then the body.
pub fn read_message(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut body)?;
    Ok(body)
}
