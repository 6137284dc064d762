//! OTP's own `epmd`, run as a client against a daemon.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::POLL_INTERVAL;

/// Runs the real epmd client `epmd -port P -names` and returns what it
/// printed (stdout, then stderr). `ERL_EPMD_PORT` is removed so only
/// `-port` decides where it asks. Killed if it takes over 10 s.
pub fn epmd_names(port: u16) -> String {
    let mut child = Command::new("epmd")
        .args(["-port", &port.to_string(), "-names"])
        .env_remove("ERL_EPMD_PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to run `epmd -port {port} -names`: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`epmd -port {port} -names` did not finish within 10 s");
        }
        thread::sleep(POLL_INTERVAL);
    }
    // The replies are a few lines, far below a pipe buffer, so reading
    // after exit cannot have blocked the child.
    let mut printed = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut printed);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut printed);
    }
    printed
}
