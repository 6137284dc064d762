//! The epmdpxy binary under test: `Proxy` starts it on free ports, waits
//! for its ready line, talks to its control port, and kills it on drop;
//! `Watch` follows its event stream; `epmdpxy_ctl` runs its `ctl` client.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::erl::{ErlNode, NodeOptions};
use super::fake::FakeTarget;
use super::process::{run_text, Daemon};

/// Commands whose control-port reply spans several lines ending in `END`
/// (the proxy's own list, so the harness cannot fall behind it).
use epmdpxy::control::command::MULTI_LINE_COMMANDS;

/// The binary under test.
pub const EPMDPXY: &str = env!("CARGO_BIN_EXE_epmdpxy");

/// How long the proxy may take to print its ready line.
const PROXY_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one control-port exchange may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `epmdpxy ctl` run may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `epmdpxy` on free ports. Killed on drop; its log is printed
/// if the test is panicking.
pub struct Proxy {
    pub epmd_port: u16,
    pub control_port: u16,
    daemon: Daemon,
}

impl Proxy {
    /// Starts the binary with `--port 0 --control-port 0` plus `args` and
    /// waits for its `ready epmd_port=P control_port=C` line on stderr.
    pub fn start(args: &[&str]) -> Proxy {
        Proxy::launch(Command::new(EPMDPXY), args, &[])
    }

    /// As `start`, with the environment variables `env` set (the proxy
    /// reads `ERL_EPMD_ADDRESS` and `ERL_EPMD_RELAXED_COMMAND_CHECK`).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Proxy {
        Proxy::launch(Command::new(EPMDPXY), args, env)
    }

    /// As `start`, under `ulimit -n max_files`, so that its file
    /// descriptors run out: a shell sets the limit, then execs the binary
    /// in its own place (so `pid` is the proxy's).
    pub fn start_with_max_files(max_files: u32, args: &[&str]) -> Proxy {
        let mut shell = Command::new("sh");
        shell.args([
            "-c",
            &format!("ulimit -n {max_files} && exec \"$0\" \"$@\""),
            EPMDPXY,
        ]);
        Proxy::launch(shell, args, &[])
    }

    /// Runs `command` (the binary, or a wrapper that execs it) with the
    /// port flags and `args`; none of the EPMD variables of the test's own
    /// environment reach it, only `env`.
    fn launch(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Proxy {
        command
            .args(["--port", "0", "--control-port", "0"])
            .args(args)
            .env_remove("ERL_EPMD_ADDRESS")
            .env_remove("ERL_EPMD_RELAXED_COMMAND_CHECK")
            .envs(env.iter().copied());
        Proxy::start_command(command)
    }

    /// Starts an epmdpxy through `command` exactly as given (another
    /// binary, or one run through `chroot`) and waits for its ready line.
    /// The process `command` starts must be epmdpxy itself (a wrapper that
    /// execs, such as `chroot`, is fine): Drop kills that process.
    pub fn start_command(mut command: Command) -> Proxy {
        let mut daemon = Daemon::spawn(&mut command, "epmdpxy");
        match daemon.wait_for_line(PROXY_READY_TIMEOUT, parse_ready_line) {
            Ok((epmd_port, control_port)) => Proxy {
                epmd_port,
                control_port,
                daemon,
            },
            Err(why) => panic!(
                "epmdpxy printed no ready line: {why}; stderr so far:\n{}",
                daemon.log()
            ),
        }
    }

    /// The proxy's process id.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Waits up to `timeout` for the proxy to exit (after a KILL); its exit
    /// code, or `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.daemon.wait_exit(timeout)
    }

    /// Everything the proxy wrote to stderr so far.
    pub fn log(&self) -> String {
        self.daemon.log()
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

    /// Sends a control command and asserts the reply starts with `OK`.
    pub fn ctl_ok(&self, line: &str) -> String {
        let reply = self.ctl(line);
        assert!(reply.starts_with("OK"), "`{line}` answered {reply:?}");
        reply
    }

    /// The lines of the control `links` reply, one per live link.
    pub fn links(&self) -> Vec<String> {
        items(&self.ctl("links")).map(str::to_owned).collect()
    }

    /// A node name unique to this proxy, so parallel tests never share names.
    pub fn unique_name(&self, base: &str) -> String {
        format!("{base}_{}", self.epmd_port)
    }

    /// A fake node registered here as `unique_name("t")`, and the name
    /// `unique_name("i")` for a fake initiator of links to it.
    pub fn fake_target(&self) -> FakeTarget {
        FakeTarget::register(self.epmd_port, self.unique_name("t"), self.unique_name("i"))
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
        self.start_nodes_with_prefix(&[], bases, options)
    }

    /// `start_nodes` with `erl` run through `prefix` (e.g. `chroot ROOT`;
    /// empty: plain `erl`), see `ErlNode::start_with_prefix`.
    pub fn start_nodes_with_prefix(
        &self,
        prefix: &[String],
        bases: &[&str],
        options: &NodeOptions,
    ) -> Vec<ErlNode> {
        std::thread::scope(|scope| {
            let starting: Vec<_> = bases
                .iter()
                .map(|base| {
                    scope.spawn(move || {
                        let name = self.unique_name(base);
                        let (cookie, port) = (self.cookie(), self.epmd_port);
                        ErlNode::start_with_prefix(prefix, &name, &cookie, port, options)
                    })
                })
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

/// How long `Watch::open` and `Watch::quit` wait for the answer.
const WATCH_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Watch::wait_for` waits for its line.
const WATCH_EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A control session in `watch` mode: a thread reads its lines as they
/// come; the test takes them with `next_line`, `wait_for` or `events`.
pub struct Watch {
    stream: TcpStream,
    lines: Receiver<String>,
    /// Every line taken so far, after `OK watching`.
    seen: Vec<String>,
}

impl Watch {
    /// Opens a control session, sends `watch` and waits for `OK watching`.
    pub fn open(proxy: &Proxy) -> Watch {
        let mut stream =
            TcpStream::connect(("127.0.0.1", proxy.control_port)).expect("connect to control");
        stream.write_all(b"watch\n").expect("send watch");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut watch = Watch {
            stream,
            lines,
            seen: Vec::new(),
        };
        let first = watch.next_line(WATCH_REPLY_TIMEOUT);
        assert!(first.starts_with("OK watching"), "watch answered {first:?}");
        watch.seen.clear();
        watch
    }

    /// The next line, waiting up to `timeout` for it.
    pub fn next_line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("watch: nothing within {timeout:?}; seen: {:#?}", self.seen)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("watch stream ended; seen: {:#?}", self.seen)
            }
        }
    }

    /// Reads until a line contains every one of `parts`.
    pub fn wait_for(&mut self, parts: &[&str]) {
        let deadline = Instant::now() + WATCH_EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(left.max(Duration::from_millis(1)));
            if parts.iter().all(|p| line.contains(p)) {
                return;
            }
        }
    }

    /// The text after `EVENT <time> ` of every event line that has arrived
    /// so far (without waiting for more).
    pub fn events(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen
            .iter()
            .filter_map(|line| line.strip_prefix("EVENT "))
            .filter_map(|rest| rest.split_once(' ').map(|(_, text)| text.to_string()))
            .collect()
    }

    /// Sends `quit`, reads up to `OK bye`, returns every line seen before it.
    pub fn quit(mut self) -> Vec<String> {
        self.stream.write_all(b"quit\n").expect("send quit");
        loop {
            if self.next_line(WATCH_REPLY_TIMEOUT) == "OK bye" {
                break;
            }
        }
        self.seen.pop();
        self.seen
    }
}

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

/// Runs `epmdpxy ctl ARGS` with `input` on its stdin and `EPMDPXY_AT` set
/// to `at` (or removed); returns (exit code, stdout, stderr). Fails the
/// test if it runs longer than 20 s.
pub fn epmdpxy_ctl(at: Option<&str>, args: &[&str], input: &str) -> (i32, String, String) {
    let mut command = Command::new(EPMDPXY);
    command.arg("ctl").args(args);
    match at {
        Some(value) => command.env("EPMDPXY_AT", value),
        None => command.env_remove("EPMDPXY_AT"),
    };
    command.env_remove("EPMDPXY_CONTROL");
    run_text(&mut command, input, CTL_TIMEOUT)
}
