//! Shared harness for integration tests: the `epmdpxy` binary under test,
//! real Erlang nodes driven over stdin/stdout, and a polling helper.
//!
//! Every child process is owned by a guard whose `Drop` kills it, so a
//! panicking test leaves no `epmdpxy` or `beam.smp` behind.

#![allow(dead_code)]

pub mod fake;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the proxy may take to print its ready line.
const PROXY_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one control-port exchange may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an Erlang node may take to boot, register and answer.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one expression may take inside a node. Longer than the default
/// `net_setuptime` (7 s) so that a ping into a black hole still answers.
const EVAL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a node may take to halt after its stdin is closed.
const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Polling interval of `wait_until`.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Commands whose control-port reply spans several lines ending in `END`
/// (the proxy's own list, so the harness cannot fall behind it).
use epmdpxy::control::command::MULTI_LINE_COMMANDS;

// ---------------------------------------------------------------------------
// Erlang availability
// ---------------------------------------------------------------------------

/// True if `program` is an executable file in a directory of `PATH`.
pub fn program_on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(program);
        candidate
            .metadata()
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// True if `erl` is on `PATH`.
pub fn erl_available() -> bool {
    program_on_path("erl")
}

/// Gate for tests that need Erlang/OTP. Returns true if `erl` is there.
/// Without it: in CI (env `CI` set) the test fails, since a skipped test
/// must never pass silently there; elsewhere a skip note is printed and
/// false is returned so the test can return early.
pub fn require_erl() -> bool {
    if erl_available() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "`erl` is not on PATH but CI is set: this test needs Erlang/OTP \
             (e.g. `apt-get install -y erlang-base`)"
        );
    }
    eprintln!("SKIPPED: `erl` is not on PATH; install Erlang/OTP to run this test");
    false
}

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

/// Polls `f` every ~50 ms until it returns true; panics naming `what` after
/// `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    wait_until_ok(timeout, what, || {
        if f() {
            Ok(())
        } else {
            Err("condition still false".to_string())
        }
    });
}

/// Like `wait_until`, but `f` explains why it is not done yet; the last
/// explanation goes into the panic message.
pub fn wait_until_ok(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        let why_not = match f() {
            Ok(()) => return,
            Err(why_not) => why_not,
        };
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last observed: {why_not}");
        }
        thread::sleep(POLL_INTERVAL);
    }
}

// ---------------------------------------------------------------------------
// The proxy under test
// ---------------------------------------------------------------------------

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
        let mut command = Command::new(env!("CARGO_BIN_EXE_epmdpxy"));
        command
            .args(["--port", "0", "--control-port", "0"])
            .args(args);
        Proxy::start_command(command)
    }

    /// Starts an epmdpxy through `command` as given (another binary, or
    /// one run through `chroot`); it must print the ready line on stderr.
    /// The process `command` starts must be epmdpxy itself (a wrapper that
    /// execs, such as `chroot`, is fine): Drop kills that process.
    pub fn start_command(mut command: Command) -> Proxy {
        let mut child = command
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

    /// Like `start_node`, but `erl` is run through `prefix` (see
    /// `ErlNode::start_with_prefix`).
    pub fn start_node_with_prefix(
        &self,
        prefix: &[String],
        base: &str,
        options: &NodeOptions,
    ) -> ErlNode {
        ErlNode::start_with_prefix(
            prefix,
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

    /// `start_nodes` with `erl` run through `prefix` (empty: plain `erl`).
    pub fn start_nodes_with_prefix(
        &self,
        prefix: &[String],
        bases: &[&str],
        options: &NodeOptions,
    ) -> Vec<ErlNode> {
        std::thread::scope(|scope| {
            let starting: Vec<_> = bases
                .iter()
                .map(|base| scope.spawn(move || self.start_node_with_prefix(prefix, base, options)))
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

/// Writes `line` straight to the test's stderr, past libtest's capture,
/// so that it shows in a CI log even when the test passes (what ran, with
/// which OTP). Use it sparingly.
pub fn announce(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
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

// ---------------------------------------------------------------------------
// Erlang nodes
// ---------------------------------------------------------------------------

/// Prefix of the one line the driver prints per request.
pub const REPLY_MARKER: &str = "@@epmdpxy-reply@@ ";

/// The `-eval` program of every test node: read one expression per line
/// from stdin, evaluate it, print `REPLY_MARKER` plus the result on one
/// line (`~0p` never wraps). Exceptions are printed as
/// `{driver_exception,Class,Reason}`. EOF on stdin halts the node, so a
/// node never outlives the test that started it.
pub const DRIVER: &str = r#"
Loop = fun Loop() ->
    case io:get_line('') of
        eof -> erlang:halt(0);
        {error, _} -> erlang:halt(0);
        Line ->
            Result =
                try
                    {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Line)),
                    {ok, Exprs} = erl_parse:parse_exprs(Tokens),
                    {value, Value, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()),
                    Value
                catch
                    Class:Reason -> {driver_exception, Class, Reason}
                end,
            io:format("@@epmdpxy-reply@@ ~0p~n", [Result]),
            Loop()
    end
end,
Loop().
"#;

/// Start-up flags of an Erlang node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// `-kernel net_ticktime T` (seconds): a silent link is declared down
    /// after about this long.
    pub net_ticktime: u32,
    /// false adds `-connect_all false` (no transitive connections).
    pub connect_all: bool,
    /// true adds `-hidden`.
    pub hidden: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            net_ticktime: 2,
            connect_all: true,
            hidden: false,
        }
    }
}

/// A real `erl` node in its own process group, driven over stdin/stdout.
/// Dropping it kills the whole group (beam and its helper processes).
pub struct ErlNode {
    /// The `-sname` given at start, e.g. `n1_43211`.
    short_name: String,
    /// `name@host` as the node itself reports it.
    full_name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Receiver<String>,
    /// Everything the node printed that is not a reply (logs, errors).
    output: Arc<Mutex<String>>,
}

impl ErlNode {
    /// Starts `erl -sname NAME` against the EPMD on `epmd_port` and waits
    /// until it is distributed (hence registered) and answers requests.
    pub fn start(short_name: &str, cookie: &str, epmd_port: u16, options: &NodeOptions) -> ErlNode {
        ErlNode::start_with_prefix(&[], short_name, cookie, epmd_port, options)
    }

    /// Like `start`, but runs `PREFIX... erl ...`, e.g. `chroot ROOT erl`
    /// for an OTP from another root. The environment (`ERL_EPMD_PORT`)
    /// passes through; the prefix must exec `erl` in the same process (as
    /// `chroot` and `env` do) so that Drop's process-group kill reaches
    /// beam. An empty prefix is `start`.
    pub fn start_with_prefix(
        prefix: &[String],
        short_name: &str,
        cookie: &str,
        epmd_port: u16,
        options: &NodeOptions,
    ) -> ErlNode {
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg("erl");
                command
            }
            None => Command::new("erl"),
        };
        command
            .args(["-noshell", "-sname", short_name, "-setcookie", cookie])
            .args(["-start_epmd", "false"])
            .args(["-kernel", "net_ticktime", &options.net_ticktime.to_string()]);
        if !options.connect_all {
            command.args(["-connect_all", "false"]);
        }
        if options.hidden {
            command.arg("-hidden");
        }
        command
            .args(["-eval", DRIVER])
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            // Keep the node's flags exactly what this harness says.
            .env_remove("ERL_FLAGS")
            .env_remove("ERL_AFLAGS")
            .env_remove("ERL_ZFLAGS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: Drop can kill beam and its helpers at once.
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn erl for node {short_name}: {e}"));

        let stdin = child.stdin.take().expect("erl stdin is piped");
        let stdout = child.stdout.take().expect("erl stdout is piped");
        let stderr = child.stderr.take().expect("erl stderr is piped");
        let output = Arc::new(Mutex::new(String::new()));
        let (reply_tx, replies) = mpsc::channel::<String>();

        let stdout_log = Arc::clone(&output);
        thread::spawn(move || {
            for line in lossy_lines(stdout) {
                match line.strip_prefix(REPLY_MARKER) {
                    Some(reply) => {
                        if reply_tx.send(reply.to_string()).is_err() {
                            break;
                        }
                    }
                    None => append_line(&stdout_log, &line),
                }
            }
        });
        let stderr_log = Arc::clone(&output);
        thread::spawn(move || {
            for line in lossy_lines(stderr) {
                append_line(&stderr_log, &format!("[stderr] {line}"));
            }
        });

        let mut node = ErlNode {
            short_name: short_name.to_string(),
            full_name: String::new(),
            child,
            stdin: Some(stdin),
            replies,
            output,
        };
        // The driver only runs once boot is complete, and distribution
        // (including the EPMD registration) starts during boot, so a real
        // node name here means the node is registered and answering.
        let reply = node.eval_with_timeout("node().", NODE_START_TIMEOUT);
        let full_name = unquote_atom(&reply);
        if !full_name.contains('@') || full_name == "nonode@nohost" {
            panic!(
                "node {short_name} is not distributed (node() = {reply}); output:\n{}",
                node.output()
            );
        }
        node.full_name = full_name;
        node
    }

    /// The `-sname` the node was started with.
    pub fn short_name(&self) -> &str {
        &self.short_name
    }

    /// `name@host` as the node reports it.
    pub fn full_name(&self) -> &str {
        &self.full_name
    }

    /// Everything the node printed besides replies.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .map(|out| out.clone())
            .unwrap_or_default()
    }

    /// Evaluates one Erlang expression (one line; the final `.` may be
    /// omitted) inside the node and returns the result printed with `~0p`.
    pub fn eval(&mut self, expr: &str) -> String {
        self.eval_with_timeout(expr, EVAL_TIMEOUT)
    }

    fn eval_with_timeout(&mut self, expr: &str, timeout: Duration) -> String {
        let expr = expr.trim();
        assert!(
            !expr.contains('\n'),
            "the node driver reads one expression per line; got {expr:?}"
        );
        let mut request = expr.to_string();
        if !request.ends_with('.') {
            request.push('.');
        }
        request.push('\n');

        let name = self.short_name.clone();
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("node {name} was stopped; cannot eval {expr:?}"));
        if let Err(e) = stdin
            .write_all(request.as_bytes())
            .and_then(|()| stdin.flush())
        {
            panic!(
                "node {name}: cannot send {expr:?} ({e}); exit: {:?}; output:\n{}",
                self.child.try_wait(),
                self.output()
            );
        }
        match self.replies.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => panic!(
                "node {name}: no reply to {expr:?} within {timeout:?}; output:\n{}",
                self.output()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                // stdout closed: the node died. Give the stderr thread a
                // moment to collect the last words before reporting.
                let status = self.wait_for_exit(Duration::from_secs(2));
                panic!(
                    "node {name} exited before replying to {expr:?} (exit: {status:?}); output:\n{}",
                    self.output()
                )
            }
        }
    }

    /// `nodes()` as full names, sorted.
    pub fn nodes(&mut self) -> Vec<String> {
        let reply = self.eval("nodes().");
        let mut nodes = parse_atom_list(&reply)
            .unwrap_or_else(|| panic!("node {}: nodes() gave {reply:?}", self.short_name));
        nodes.sort();
        nodes
    }

    /// `net_adm:ping/1`; `node` is a full name or a short name on this
    /// node's host. True on `pong`.
    pub fn ping(&mut self, node: &str) -> bool {
        let target = self.qualify(node);
        let reply = self.eval(&format!("net_adm:ping('{target}')."));
        match reply.as_str() {
            "pong" => true,
            "pang" => false,
            other => panic!("node {}: ping {target} gave {other:?}", self.short_name),
        }
    }

    /// `name@host` for `name` on this node's host; full names pass through.
    pub fn qualify(&self, node: &str) -> String {
        if node.contains('@') {
            return node.to_string();
        }
        let host = self
            .full_name
            .split_once('@')
            .map(|(_, host)| host)
            .unwrap_or("");
        format!("{node}@{host}")
    }

    /// Closes stdin (the driver halts the node on EOF) and waits for the
    /// node to exit; a node that does not exit in time is killed.
    pub fn stop(mut self) {
        self.stdin = None;
        if self.wait_for_exit(NODE_STOP_TIMEOUT).is_none() {
            panic!(
                "node {} did not halt within {NODE_STOP_TIMEOUT:?} after stdin EOF; output:\n{}",
                self.short_name,
                self.output()
            );
        }
        // Drop kills any helper process left in the group.
    }

    fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                _ => return None,
            }
        }
    }
}

impl Drop for ErlNode {
    fn drop(&mut self) {
        self.stdin = None;
        kill_group(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "---- output of node {} ----\n{}---- end of node {} ----",
                self.short_name,
                self.output(),
                self.short_name
            );
        }
    }
}

/// `'n1@host'` or `n1@host` → `n1@host`.
fn unquote_atom(text: &str) -> String {
    let text = text.trim();
    text.strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or(text)
        .to_string()
}

/// Parses `['a@h','b@h']` (as printed by `~0p`) into names. Node names
/// contain no commas or quotes, so a plain split is enough.
fn parse_atom_list(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    Some(inner.split(',').map(unquote_atom).collect())
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// Lines of a byte stream, decoded lossily (logs may hold any bytes).
fn lossy_lines(source: impl Read) -> impl Iterator<Item = String> {
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

/// Checks that every node sees exactly the expected peers. `expected[i]`
/// lists indexes into `nodes`. Err describes every mismatch.
pub fn check_views(nodes: &mut [ErlNode], expected: &[Vec<usize>]) -> Result<(), String> {
    let full_names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let mut mismatches = Vec::new();
    for (node, peers) in nodes.iter_mut().zip(expected) {
        let mut want: Vec<String> = peers.iter().map(|&i| full_names[i].clone()).collect();
        want.sort();
        let seen = node.nodes();
        if seen != want {
            mismatches.push(format!(
                "{} sees {seen:?}, want {want:?}",
                node.short_name()
            ));
        }
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(mismatches.join("; "))
    }
}

/// Pings every expected peer a node does not see yet. Links are opened
/// lazily, and while a mesh forms `global` may drop a fresh link to
/// prevent overlapping partitions, so connecting is retried per poll.
/// Returns how many pings were sent.
pub fn connect_missing(nodes: &mut [ErlNode], expected: &[Vec<usize>]) -> usize {
    let full_names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let mut pings = 0;
    for (node, peers) in nodes.iter_mut().zip(expected) {
        let seen = node.nodes();
        for &peer in peers {
            if !seen.contains(&full_names[peer]) {
                node.ping(&full_names[peer]);
                pings += 1;
            }
        }
    }
    pings
}

/// Every node connected to every other one.
pub fn full_mesh(count: usize) -> Vec<Vec<usize>> {
    (0..count)
        .map(|i| (0..count).filter(|&j| j != i).collect())
        .collect()
}

/// Each node connected exactly to the other members of its island.
pub fn islands(count: usize, islands: &[&[usize]]) -> Vec<Vec<usize>> {
    (0..count)
        .map(|i| {
            let island = islands
                .iter()
                .find(|island| island.contains(&i))
                .expect("every node belongs to an island");
            island.iter().copied().filter(|&j| j != i).collect()
        })
        .collect()
}

/// Runs `command` in its own process group, collecting stdout and stderr
/// (stdout first), until it exits; after `timeout` the whole group is
/// killed and this panics. Returns the exit status and the output.
pub fn run_with_deadline(
    mut command: Command,
    what: &str,
    timeout: Duration,
) -> (std::process::ExitStatus, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let (out, out_lines) = drain_lines(child.stdout.take().expect("stdout is piped"));
    let (err, err_lines) = drain_lines(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            Ok(None) => {
                kill_group(&mut child);
                panic!("{what} did not finish within {timeout:?}");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    // The drain threads end at EOF, which follows the exit unless a
    // grandchild still holds a pipe: wait for them, but not forever.
    let drained = Instant::now() + Duration::from_secs(5);
    for lines in [out_lines, err_lines] {
        // Disconnected: the thread saw EOF; Timeout: give up.
        while lines
            .recv_timeout(drained.saturating_duration_since(Instant::now()))
            .is_ok()
        {}
    }
    let text = |log: &Mutex<String>| log.lock().map(|l| l.clone()).unwrap_or_default();
    (status, format!("{}{}", text(&out), text(&err)))
}
