//! Fake nodes: sockets that play an Erlang node on the wire, byte for byte
//! as a node would, plus readers for the control port's item lists.
//!
//! A fake node registers with ALIVE2 and holds the registration while its
//! EPMD connection stays open; an initiator looks its target up with
//! PORT_PLEASE2, connects to the proxy port it is given and sends a
//! `send_name` first, so the proxy knows both ends of the link.
//!
//! The pieces take an already connected stream where the test files open
//! their sockets differently (timeouts, bounded connects), so every
//! caller keeps exactly its own settings and assertions.

// Each test binary uses only some of these.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use epmdpxy::epmd::wire::{self, NodeInfo, NODE_TYPE_NORMAL};
use epmdpxy::proxy::handshake::encode_send_name_v6;

/// Distribution flags of a fake initiator's `send_name`.
pub const SEND_NAME_FLAGS: u64 = 0x0d_7fbd;

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
    let (mut target_end, _) = listener.accept().expect("the proxy connects to the target");
    target_end.set_read_timeout(Some(timeout)).expect("timeout");
    let mut got = vec![0u8; hello.len()];
    target_end.read_exact(&mut got).expect("send_name relayed");
    assert_eq!(got, hello);
    target_end
}

// ---------------------------------------------------------------------------
// Control replies
// ---------------------------------------------------------------------------

/// The item lines of a multi-line control reply (`nodes`, `links`, ...):
/// the lines after the header, without `END`.
pub fn items(reply: &str) -> impl Iterator<Item = &str> {
    reply.lines().skip(1).filter(|line| *line != "END")
}

/// The value of `key=` (e.g. `"port="`) among the words of an item line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key))
}
