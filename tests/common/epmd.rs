//! OTP's own `epmd`: as a daemon beside the proxy (`RealEpmd`), and as the
//! client that asks a daemon (`epmd_client`); plus a raw NAMES request.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::process::{run, Daemon};
use super::procfs::holds_listener;
use super::{free_port, ipv6_loopback, POLL_INTERVAL};

/// How long `epmd` may take to listen once started.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one run of the `epmd` client may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a NAMES reply may take.
const NAMES_TIMEOUT: Duration = Duration::from_secs(5);

/// OTP's `epmd -port P` on a free port, in the foreground. Killed on drop;
/// its stderr is printed if the test is failing.
pub struct RealEpmd {
    pub port: u16,
    daemon: Daemon,
}

impl RealEpmd {
    /// Starts `epmd -port P ARGS` on a free port and waits until it listens
    /// there: on IPv4, and on IPv6 too where this machine has it (epmd
    /// opens one listener per family). None of the EPMD variables of the
    /// test's own environment reach it.
    pub fn start(args: &[&str]) -> RealEpmd {
        let ipv6 = ipv6_loopback();
        for _attempt in 0..10 {
            let port = free_port();
            let mut daemon = Daemon::spawn(
                Command::new("epmd")
                    .args(["-port", &port.to_string()])
                    .args(args)
                    .env_remove("ERL_EPMD_ADDRESS")
                    .env_remove("ERL_EPMD_PORT")
                    .env_remove("ERL_EPMD_RELAXED_COMMAND_CHECK"),
                &format!("real epmd (port {port})"),
            );
            // epmd exits at once if another process took the port since
            // it was found free: then try another.
            let deadline = Instant::now() + START_TIMEOUT;
            while daemon.exited().is_none() && Instant::now() < deadline {
                let pid = daemon.pid();
                if holds_listener(pid, port, false) && (!ipv6 || holds_listener(pid, port, true)) {
                    return RealEpmd { port, daemon };
                }
                thread::sleep(POLL_INTERVAL);
            }
        }
        panic!("could not start a real epmd on a free port");
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// Waits up to `timeout` for it to exit (after a KILL); its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.daemon.wait_exit(timeout)
    }
}

/// Runs OTP's `epmd -port P ARGS` as a client (`-names`, `-kill`, `-stop
/// NAME`) and returns its exit code and what it printed (stdout, then
/// stderr). `ERL_EPMD_PORT` is removed so only `-port` decides where it
/// asks. Fails the test if it takes over 10 s.
pub fn epmd_client(port: u16, args: &[&str]) -> (Option<i32>, String) {
    let output = run(
        Command::new("epmd")
            .args(["-port", &port.to_string()])
            .args(args)
            .env_remove("ERL_EPMD_PORT"),
        "",
        CLIENT_TIMEOUT,
    );
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), printed)
}

/// What `epmd -port P -names` prints.
pub fn epmd_names(port: u16) -> String {
    epmd_client(port, &["-names"]).1
}

/// One NAMES request to the daemon on `address`:`port`; the raw reply.
pub fn names_request(address: IpAddr, port: u16) -> Result<Vec<u8>, String> {
    let mut stream =
        TcpStream::connect((address, port)).map_err(|e| format!("connect {address}: {e}"))?;
    stream
        .write_all(&[0, 1, b'n'])
        .map_err(|e| format!("send NAMES to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(NAMES_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| format!("read NAMES reply from {address}: {e}"))?;
    Ok(reply)
}

/// `names_request` over IPv4 loopback.
pub fn names_reply(port: u16) -> Result<Vec<u8>, String> {
    names_request(Ipv4Addr::LOCALHOST.into(), port)
}
