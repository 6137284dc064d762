//! Socket helpers shared by the rooms: the accept loop every listener runs,
//! and connecting to the first of several addresses that answers.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::log::RateLimit;
use crate::log_warn;

/// How often a failing `accept` may be reported (the rest are counted).
const ACCEPT_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop waits for the condition to pass instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections forever and hands each to `serve`. `what` names the
/// listener in the log (`epmd: accept failed: ...`).
pub fn accept_forever(listener: &TcpListener, what: &str, mut serve: impl FnMut(TcpStream)) {
    let mut accept_errors = RateLimit::default();
    for incoming in listener.incoming() {
        match incoming {
            Ok(stream) => serve(stream),
            Err(err) => {
                if let Some(held_back) = accept_errors.allow(ACCEPT_REPORT_INTERVAL) {
                    log_warn!(
                        "{what}: accept failed: {err} ({held_back} more since the last report)"
                    );
                }
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Connects to the first address in `candidates` that accepts within
/// `timeout` each; the last error when none does.
pub fn connect_first(candidates: &[SocketAddr], timeout: Duration) -> io::Result<TcpStream> {
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address to try");
    for address in candidates {
        match TcpStream::connect_timeout(address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_to_the_first_address_that_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("address");
        let closed = {
            let spare = TcpListener::bind("127.0.0.1:0").expect("bind");
            spare.local_addr().expect("address")
        };
        let stream = connect_first(&[closed, open], Duration::from_secs(1)).expect("connects");
        assert_eq!(stream.peer_addr().expect("peer"), open);
        assert!(connect_first(&[closed], Duration::from_secs(1)).is_err());
        let none = connect_first(&[], Duration::from_secs(1)).expect_err("nothing to try");
        assert_eq!(none.kind(), io::ErrorKind::NotFound);
    }
}
