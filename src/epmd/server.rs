//! The EPMD listener: accepts connections and reads one request each the
//! way OTP's epmd does (same framing, same limits, same fate for the same
//! bytes), then hands it to its handler in `requests.rs` — local-only
//! requests only from a local peer.

use std::io::{self, Read};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use super::requests::{alive2, dump, kill, names, port_please2, stop};
use super::room::Epmd;
use super::wire::{self, Framing, Request};
use crate::base::net::accept_forever;
use crate::base::sync::spawn;
use crate::base::words::count;
use crate::{log_debug, log_warn};

/// Accepts EPMD connections forever, one thread each.
pub fn accept_loop(epmd: &Arc<Epmd>, listener: &TcpListener) {
    accept_forever(listener, "epmd", |stream| {
        let epmd = Arc::clone(epmd);
        if let Err(err) = spawn("epmd-conn", move || handle_connection(&epmd, stream)) {
            log_warn!("epmd: cannot start a thread for a new connection: {err}; closed it");
        }
    });
}

/// True for a peer allowed to register, dump, kill or stop: loopback, or
/// the same address the connection arrived on.
fn is_local_peer(peer: IpAddr, local: IpAddr) -> bool {
    let peer = canonical(peer);
    peer.is_loopback() || peer == canonical(local)
}

/// `::ffff:127.0.0.1` → `127.0.0.1`.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// epmd's input buffer (`INBUF_SIZE`, 3060): a request and its 2-byte
/// length must fit in one byte less.
const INBUF_SIZE: usize = wire::MAX_REQUEST_LEN + 3;

/// Why no request could be read.
#[derive(Debug)]
enum ReadFailure {
    Io(io::Error),
    /// Bad length prefix (0 or too large).
    BadLength(u16),
    /// More bytes than the request arrived before its length was known.
    Trailing {
        got: usize,
        want: usize,
    },
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Io(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                write!(f, "closed before a complete request")
            }
            ReadFailure::Io(err) => write!(f, "{err}"),
            ReadFailure::BadLength(len) => write!(f, "bad request length {len}"),
            ReadFailure::Trailing { got, want } => {
                write!(
                    f,
                    "{} arrived for a {want}-byte request",
                    count(*got, "byte")
                )
            }
        }
    }
}

/// One `read` before `deadline` into `buf`; 0 bytes is an error (EOF).
fn read_some(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => return Ok(n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Reads one request (the body after the length prefix) the way epmd's
/// `do_read` does, so that the same bytes meet the same fate:
/// - until the 2-byte length has arrived, each read takes whatever is
///   there (up to the buffer); if that is already more than the request,
///   the connection is closed unserved — a request followed by garbage in
///   the same write;
/// - after that, reads ask for exactly the missing bytes, so bytes sent
///   after the request in a later write stay unread (a registration
///   socket then sees them and ends the registration).
fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, ReadFailure> {
    let mut buf = vec![0u8; INBUF_SIZE - 1];
    let mut got = 0;
    while got < 2 {
        let space = buf.get_mut(got..).unwrap_or_default();
        got += read_some(stream, space, deadline).map_err(ReadFailure::Io)?;
    }
    let prefix = [
        buf.first().copied().unwrap_or(0),
        buf.get(1).copied().unwrap_or(0),
    ];
    let Framing::Body(len) = wire::framing(prefix) else {
        return Err(ReadFailure::BadLength(u16::from_be_bytes(prefix)));
    };
    let want = len + 2;
    if got > want {
        return Err(ReadFailure::Trailing { got, want });
    }
    while got < want {
        let space = buf.get_mut(got..want).unwrap_or_default();
        got += read_some(stream, space, deadline).map_err(ReadFailure::Io)?;
    }
    Ok(buf.get(2..want).unwrap_or_default().to_vec())
}

/// Reads one request and serves it.
fn handle_connection(epmd: &Arc<Epmd>, mut stream: TcpStream) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    // Measured from the start (newer epmd does too): dribbling bytes does
    // not keep a connection alive past the packet timeout.
    let deadline = Instant::now() + epmd.settings.packet_timeout;
    let body = match read_request(&mut stream, deadline) {
        Ok(body) => body,
        Err(why) => {
            log_debug!("epmd: {peer}: {why}; closed");
            return;
        }
    };
    let request = match wire::parse_request(&body) {
        Ok(request) => request,
        Err(why) => {
            log_debug!("epmd: {peer}: {why}; closed");
            return;
        }
    };
    let local_peer = is_local_peer(peer.ip(), local.ip());
    log_debug!("epmd: {peer}: {request:?}");
    match request {
        Request::Alive2(info) if local_peer => {
            // Under a dual-stack `::` listener IPv4 peers show as ::ffff:a.b.c.d.
            alive2(epmd, stream, info, canonical(peer.ip()))
        }
        Request::PortPlease2 { name } => port_please2(epmd, stream, &name, local.ip()),
        Request::Names => names(epmd, stream),
        Request::Dump if local_peer => dump(epmd, stream),
        Request::Kill if local_peer => kill(epmd, stream),
        Request::Stop { name } if local_peer => stop(epmd, stream, &name),
        _ => log_debug!("epmd: {peer}: request refused to a non-local peer; closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn local_peers() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let me = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert!(is_local_peer(lo, me));
        assert!(is_local_peer(IpAddr::V4(Ipv4Addr::new(127, 1, 2, 3)), me));
        assert!(is_local_peer(IpAddr::V6(Ipv6Addr::LOCALHOST), me));
        assert!(is_local_peer(me, me));
        assert!(!is_local_peer(other, me));
        assert!(is_local_peer(
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
            me
        ));
    }
}
