//! Child processes: their output read line by line, process groups
//! killed whole.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

/// Lines of a byte stream, decoded lossily (logs may hold any bytes).
pub fn lossy_lines(source: impl Read) -> impl Iterator<Item = String> {
    let mut reader = BufReader::new(source);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                Some(line.trim_end_matches(['\n', '\r']).to_string())
            }
        }
    })
}

/// Appends `line` and a newline to `log`.
pub fn append_line(log: &Mutex<String>, line: &str) {
    if let Ok(mut log) = log.lock() {
        log.push_str(line);
        log.push('\n');
    }
}

/// Drains `source` on a thread for as long as it is open: every line
/// (decoded lossily) is appended to the returned log and also offered on
/// the returned channel (ignored once its receiver is gone).
pub fn drain_lines(source: impl Read + Send + 'static) -> (Arc<Mutex<String>>, Receiver<String>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (line_tx, line_rx) = mpsc::channel::<String>();
    let writer = Arc::clone(&log);
    thread::spawn(move || {
        for line in lossy_lines(source) {
            append_line(&writer, &line);
            let _ = line_tx.send(line);
        }
    });
    (log, line_rx)
}

/// Kills a child that leads its own process group (`process_group(0)`)
/// together with everything in that group, then reaps it. The child's pid
/// is the group id, so `kill -9 -PGID` takes beam and its helpers along.
pub fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-9", "--", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}
