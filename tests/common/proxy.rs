//! The epmdpxy binary under test: `Proxy` starts it on free ports, waits
//! for its ready line, talks to its control port, and kills it on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::erl::{ErlNode, NodeOptions};
use super::process::drain_lines;

/// Commands whose control-port reply spans several lines ending in `END`
/// (the proxy's own list, so the harness cannot fall behind it).
use epmdpxy::control::command::MULTI_LINE_COMMANDS;

/// How long the proxy may take to print its ready line.
const PROXY_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one control-port exchange may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `epmdpxy` on free ports. Killed on drop; its log is printed
/// if the test is panicking.
pub struct Proxy {
    pub epmd_port: u16,
    pub control_port: u16,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proxy {
    /// Starts the binary with `--port 0 --control-port 0` plus `args` and
    /// waits for its `ready epmd_port=P control_port=C` line on stderr.
    pub fn start(args: &[&str]) -> Proxy {
        let mut child = Command::new(env!("CARGO_BIN_EXE_epmdpxy"))
            .args(["--port", "0", "--control-port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to spawn epmdpxy");
        let stderr = child.stderr.take().expect("epmdpxy stderr is piped");

        // Every line goes into the log, and is also offered on a channel
        // until we saw "ready".
        let (log, line_rx) = drain_lines(stderr);

        let mut proxy = Proxy {
            epmd_port: 0,
            control_port: 0,
            child,
            log,
        };
        let deadline = Instant::now() + PROXY_READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match line_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((epmd_port, control_port)) = parse_ready_line(&line) {
                        proxy.epmd_port = epmd_port;
                        proxy.control_port = control_port;
                        return proxy;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "epmdpxy printed no ready line within {PROXY_READY_TIMEOUT:?}; stderr so far:\n{}",
                    proxy.log()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = proxy.child.wait();
                    panic!(
                        "epmdpxy closed stderr before its ready line (exit: {status:?}); stderr:\n{}",
                        proxy.log()
                    )
                }
            }
        }
    }

    /// Everything the proxy wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Sends one command line to the control port (new connection per call)
    /// and returns the reply: one line (`OK ...` / `ERR ...`), or for
    /// `status`, `nodes`, `links` and `help` the `OK <count> <things>`
    /// header, the items and the final `END`. Lines are joined with `\n`,
    /// without a trailing newline.
    pub fn ctl(&self, line: &str) -> String {
        let context = |what: &str| format!("control command {line:?}: {what}");
        let deadline = Instant::now() + CONTROL_TIMEOUT;
        let mut stream = TcpStream::connect(("127.0.0.1", self.control_port))
            .unwrap_or_else(|e| panic!("{}: {e}", context("connect")));
        stream
            .write_all(format!("{line}\n").as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", context("write")));

        let command = line.split_whitespace().next().unwrap_or("");
        let multi_line = MULTI_LINE_COMMANDS.contains(&command);
        let mut reader = BufReader::new(stream);
        let mut reply: Vec<String> = Vec::new();
        loop {
            // Each read may only use what is left of the overall deadline.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("{}; reply so far: {reply:?}", context("timed out"));
            }
            reader
                .get_ref()
                .set_read_timeout(Some(left))
                .unwrap_or_else(|e| panic!("{}: {e}", context("set_read_timeout")));
            let mut buf = Vec::new();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    if reply.is_empty() || multi_line {
                        panic!(
                            "{}; reply so far: {reply:?}",
                            context("connection closed before a complete reply")
                        );
                    }
                    break;
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("{}; reply so far: {reply:?}", context("timed out"))
                }
                Err(e) => panic!("{}: {e}; reply so far: {reply:?}", context("read")),
            }
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\n', '\r']).to_string();
            let is_first = reply.is_empty();
            let done = !multi_line || text == "END" || (is_first && text.starts_with("ERR"));
            reply.push(text);
            if done {
                break;
            }
        }
        reply.join("\n")
    }

    /// Short names currently registered, from the control `nodes` reply
    /// (`OK <count> nodes`, one `NAME port=...` line per node, `END`).
    pub fn registered_names(&self) -> Vec<String> {
        let reply = self.ctl("nodes");
        let mut lines = reply.lines();
        let header = lines.next().unwrap_or("");
        assert!(
            header.starts_with("OK"),
            "control `nodes` failed: {reply:?}"
        );
        let mut names: Vec<String> = lines
            .filter(|line| *line != "END" && !line.trim().is_empty())
            .filter_map(|line| line.split_whitespace().next().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// A node name unique to this proxy, so parallel tests never share names.
    pub fn unique_name(&self, base: &str) -> String {
        format!("{base}_{}", self.epmd_port)
    }

    /// A cookie unique to this proxy.
    pub fn cookie(&self) -> String {
        format!("epmdpxy_test_{}", self.epmd_port)
    }

    /// Starts a node registered with this proxy; its short name is
    /// `unique_name(base)` and its cookie `cookie()`.
    pub fn start_node(&self, base: &str, options: &NodeOptions) -> ErlNode {
        ErlNode::start(
            &self.unique_name(base),
            &self.cookie(),
            self.epmd_port,
            options,
        )
    }

    /// Starts one node per base name, in parallel (each boot takes ~1 s).
    /// A failed start re-panics here; nodes already started are dropped
    /// (and killed) on the way out.
    pub fn start_nodes(&self, bases: &[&str], options: &NodeOptions) -> Vec<ErlNode> {
        std::thread::scope(|scope| {
            let starting: Vec<_> = bases
                .iter()
                .map(|base| scope.spawn(move || self.start_node(base, options)))
                .collect();
            starting
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e))
                })
                .collect()
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- epmdpxy log ----\n{}---- end of epmdpxy log ----",
                self.log()
            );
        }
    }
}

/// Finds `epmd_port=P control_port=C` in a stderr line.
fn parse_ready_line(line: &str) -> Option<(u16, u16)> {
    let mut tokens = line.split_whitespace();
    tokens.find(|token| *token == "ready")?;
    let mut epmd_port = None;
    let mut control_port = None;
    for token in tokens {
        if let Some(value) = token.strip_prefix("epmd_port=") {
            epmd_port = value.parse().ok();
        } else if let Some(value) = token.strip_prefix("control_port=") {
            control_port = value.parse().ok();
        }
    }
    Some((epmd_port?, control_port?))
}
