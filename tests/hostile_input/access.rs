//! Nobody gets in: both ports listen on loopback unless told otherwise,
//! and registration, DUMP, KILL and STOP are only for local peers (tried
//! from this machine's own non-loopback address).

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};

use super::harness::{
    alive2_body, check_epmd_reply, exchange, names, registered, EpmdExpect, Sink, EXCHANGE_TIMEOUT,
};
use crate::common::{wait_until, Proxy};
use epmdpxy::epmd::wire;

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
