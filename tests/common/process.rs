//! Child processes: output read line by line, daemons killed on drop,
//! commands run to their end under a deadline, process groups killed whole.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::POLL_INTERVAL;

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

/// Waits up to `timeout` for `child` to exit; its exit status, or `None`
/// if it still runs.
pub fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            _ => return None,
        }
    }
}

/// Sends SIGKILL to the process group `group` (a child started with
/// `process_group(0)` leads the group whose id is its pid). Nothing
/// happens if the group is gone.
fn kill_group_id(group: u32) {
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Kills a child that leads its own process group (`process_group(0)`)
/// together with everything in that group, then reaps it. The child's pid
/// is the group id, so `kill -9 -PGID` takes beam and its helpers along.
/// For a child without a group of its own, only the child is killed.
pub fn kill_group(child: &mut Child) {
    kill_group_id(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------
// Daemons
// ---------------------------------------------------------------------------

/// A long-running child: the proxy under test, OTP's `epmd`, `socat`.
/// Its stdin and stdout are null and its stderr is collected line by line.
/// Dropping it kills it (with its process group, if the command was given
/// one) and, if the test is failing, prints what it wrote to stderr.
pub struct Daemon {
    /// Names the process in messages, e.g. `epmdpxy`.
    label: String,
    child: Child,
    log: Arc<Mutex<String>>,
    /// Every stderr line, for `wait_for_line` (in a mutex: a `Proxy` is
    /// shared by the threads that start nodes).
    lines: Mutex<Receiver<String>>,
}

impl Daemon {
    /// Spawns `command`; `label` names it in messages.
    pub fn spawn(command: &mut Command, label: &str) -> Daemon {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {label} ({command:?}): {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (log, lines) = drain_lines(stderr);
        Daemon {
            label: label.to_owned(),
            child,
            log,
            lines: Mutex::new(lines),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Reads the stderr lines not read yet until `pick` gives a value for
    /// one, for at most `timeout`. Err says why not: the time ran out, or
    /// stderr closed (the exit status is included).
    pub fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = match self.lines.lock() {
                Ok(lines) => lines.recv_timeout(left),
                Err(_) => return Err("another reader panicked".to_owned()),
            };
            match next {
                Ok(line) => {
                    if let Some(found) = pick(&line) {
                        return Ok(found);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("nothing of the kind within {timeout:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    return Err(format!("stderr closed (exit: {status:?})"));
                }
            }
        }
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        wait_for_exit(&mut self.child, timeout)?.code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "---- {} stderr ----\n{}---- end of {} stderr ----",
                self.label,
                self.log(),
                self.label
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Commands run to their end
// ---------------------------------------------------------------------------

/// `run` with no input, for a command whose output is read as one text:
/// its exit status and its stdout then stderr.
pub fn run_with_deadline(mut command: Command, timeout: Duration) -> (ExitStatus, String) {
    let output = run(&mut command, "", timeout);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

/// Runs `command` to its end with `input` on its stdin and returns its
/// exit status and output. It runs in a process group of its own, killed
/// once the command has exited (children it left behind may hold its pipes
/// open) or after `timeout`, which fails the test with what it printed so
/// far. stdout and stderr are read while it runs, so it never blocks on a
/// full pipe.
pub fn run(command: &mut Command, input: &str, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let group = child.id();
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read_all(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read_all(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    if let Some(mut stdin) = child.stdin.take() {
        // A child that exits without reading is fine: ignore EPIPE. Dropping
        // stdin closes it.
        let _ = stdin.write_all(input.as_bytes());
    }
    let (exit_tx, exit_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let _ = exit_tx.send(child.wait());
    });
    let exit = exit_rx.recv_timeout(timeout);
    kill_group_id(group);
    let _ = waiter.join();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match exit {
        Ok(Ok(status)) => Output {
            status,
            stdout,
            stderr,
        },
        Ok(Err(e)) => panic!("waiting for {command:?}: {e}"),
        Err(_) => panic!(
            "{command:?} did not finish within {timeout:?}; output so far:\n{}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// `run`, returning (exit code or -1, stdout, stderr) as text.
pub fn run_text(command: &mut Command, input: &str, timeout: Duration) -> (i32, String, String) {
    let output = run(command, input, timeout);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A scratch directory, removed on drop unless the test is failing (then
/// its path is printed so logs can be read).
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(label: &str) -> ScratchDir {
        let path = std::env::temp_dir().join(format!(
            "epmdpxy-{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        ScratchDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn text(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
