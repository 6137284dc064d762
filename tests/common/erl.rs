//! Real Erlang nodes: `ErlNode` runs `erl` in its own process group and
//! drives it over stdin/stdout with a small evaluator (`DRIVER`); and what
//! the nodes of a cluster see of each other (`check_views`, `await_views`).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::process::{append_line, kill_group, lossy_lines, wait_for_exit};
use super::wait_until_ok;

/// How long an Erlang node may take to boot, register and answer.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one expression may take inside a node. Longer than the default
/// `net_setuptime` (7 s) so that a ping into a black hole still answers.
const EVAL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a node may take to halt after its stdin is closed.
const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

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

/// `erl`, run through `prefix` (e.g. `chroot ROOT`; empty: plain `erl`).
pub fn erl_command(prefix: &[String]) -> Command {
    match prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg("erl");
            command
        }
        None => Command::new("erl"),
    }
}

/// A real `erl` node in its own process group, driven over stdin/stdout.
/// Dropping it kills the whole group (beam and its helper processes).
pub struct ErlNode {
    /// The name given at start: `-sname n1_43211` (or, for a node from
    /// `spawn`, possibly `-name n1@10.200.0.1`).
    name: String,
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
        let mut command = erl_command(prefix);
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
        command.env("ERL_EPMD_PORT", epmd_port.to_string());
        let mut node = ErlNode::spawn(&mut command, short_name);
        node.wait_distributed(NODE_START_TIMEOUT);
        node
    }

    /// Spawns `command`: an `erl` command line, or a wrapper that execs one
    /// (`ip netns exec NS erl ...`), that names the node `name` with
    /// `-sname` or `-name`. The driver is added as its `-eval` program, and
    /// it runs in its own process group. Returns at once;
    /// `wait_distributed` waits for the node.
    pub fn spawn(command: &mut Command, name: &str) -> ErlNode {
        command
            .args(["-eval", DRIVER])
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
            .unwrap_or_else(|e| panic!("failed to spawn erl for node {name}: {e}"));

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

        ErlNode {
            name: name.to_string(),
            full_name: String::new(),
            child,
            stdin: Some(stdin),
            replies,
            output,
        }
    }

    /// Waits up to `timeout` until the node answers, and checks that it is
    /// distributed. The driver only runs once boot is complete, and
    /// distribution (including the EPMD registration) starts during boot,
    /// so a real node name here means the node is registered and answering.
    pub fn wait_distributed(&mut self, timeout: Duration) {
        let reply = self.eval_with_timeout("node().", timeout);
        let full_name = unquote_atom(&reply);
        if !full_name.contains('@') || full_name == "nonode@nohost" {
            panic!(
                "node {} is not distributed (node() = {reply}); output:\n{}",
                self.name,
                self.output()
            );
        }
        self.full_name = full_name;
    }

    /// The name the node was started with (`-sname`, or `-name`).
    pub fn short_name(&self) -> &str {
        &self.name
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

        let name = self.name.clone();
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
            .unwrap_or_else(|| panic!("node {}: nodes() gave {reply:?}", self.name));
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
            other => panic!("node {}: ping {target} gave {other:?}", self.name),
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
                self.name,
                self.output()
            );
        }
        // Drop kills any helper process left in the group.
    }

    fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_for_exit(&mut self.child, timeout)
    }
}

impl Drop for ErlNode {
    fn drop(&mut self) {
        self.stdin = None;
        kill_group(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "---- output of node {} ----\n{}---- end of node {} ----",
                self.name,
                self.output(),
                self.name
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

/// Every node connected to every other one (for `check_views`).
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

/// Pings every expected peer a node does not see yet. Links are opened
/// lazily, and while a mesh forms `global` may drop a fresh link to
/// prevent overlapping partitions, so callers retry this per poll.
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

/// Pings the peers each node is missing until every node sees exactly
/// its `expected` peers (see `check_views`), for up to `timeout`.
pub fn await_views(nodes: &mut [ErlNode], expected: &[Vec<usize>], timeout: Duration, what: &str) {
    wait_until_ok(timeout, what, || {
        connect_missing(nodes, expected);
        check_views(nodes, expected)
    });
}

/// Pings until each node sees exactly the others, for up to `timeout`.
pub fn await_mesh(nodes: &mut [ErlNode], timeout: Duration, what: &str) {
    await_views(nodes, &full_mesh(nodes.len()), timeout, what);
}
