//! The original EPMDPXY's own API (issue 18): `docs/examples/epmdpxy.erl`
//! typed into a plain `erl` shell, line by line, as that project's README
//! has it, and `docs/examples/epmdpxy.ex` run by `elixir`.
//!
//! The shell is `erl -pa DIR` with stdin and stdout piped: OTP runs its
//! real Eshell without a terminal (prompts `N> `, no echo; EOF ends the
//! VM). `erl -noshell` would not do: it starts no shell, so typed lines go
//! unread. DIR holds nothing but `epmdpxy_ctl` and `epmdpxy`, compiled
//! from the two files, as docs/erlang.md tells a user to. The shell is not
//! distributed (no `-sname`), as in the seed's README.
//!
//! The tests need `erl` (and `elixir` for the last): missing, they fail
//! when env `CI` is set and are skipped elsewhere. They run one at a time;
//! each boots one to four VMs.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::process::{drain_lines, kill_group};
use common::{
    check_views, require_erl, require_program, wait_until, wait_until_ok, ErlNode, NodeOptions,
};

/// How long one typed line may take to answer: start/1 waits up to 10 s
/// for the ready line, stop/0 up to 5 s for the control port to close.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a cut or a fix may take to show in every node's `nodes()`.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long epmdpxy may take to exit once stop/0 returned or its VM died.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The nodes' `net_ticktime` (NodeOptions::default()): a cut shows as
/// `nodedown` after 0.75 to 1.25 times this.
const TICKTIME: Duration = Duration::from_secs(2);
/// How long `elixir` may take to compile the two modules and run the script.
const ELIXIR_TIMEOUT: Duration = Duration::from_secs(120);

/// The tests boot several VMs each; run them one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn epmdpxy_binary() -> &'static str {
    env!("CARGO_BIN_EXE_epmdpxy")
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples")
}

/// What every shell test starts with: `erl` is required (see
/// `require_erl`: None means skip), one test at a time, the two modules
/// compiled into a directory named after `label`, and a shell on them.
fn seed_shell(label: &str, env: &[(&str, &str)]) -> Option<(MutexGuard<'static, ()>, Shell)> {
    if !require_erl() {
        return None;
    }
    let serial = one_at_a_time();
    let ebin = compile_seed_api(label);
    Some((serial, Shell::start(&ebin, env)))
}

/// Compiles the two files a user needs into a directory of their own and
/// returns it.
fn compile_seed_api(label: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("seed_api-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let output = Command::new("erlc")
        .args(["-Wall", "-Werror", "-o"])
        .arg(&dir)
        .arg(examples_dir().join("epmdpxy_ctl.erl"))
        .arg(examples_dir().join("epmdpxy.erl"))
        .output()
        .expect("failed to run erlc");
    assert!(
        output.status.success(),
        "erlc epmdpxy_ctl.erl epmdpxy.erl failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

/// The environment of every VM these tests start: `$EPMDPXY` is the
/// binary under test, and nothing inherited (`ERL_EPMD_PORT`, `ERL_FLAGS`
/// and the like) adds flags a test did not choose.
fn vm_env(command: &mut Command) -> &mut Command {
    command
        .env("EPMDPXY", epmdpxy_binary())
        .env_remove("ERL_EPMD_PORT")
        .env_remove("ERL_FLAGS")
        .env_remove("ERL_AFLAGS")
        .env_remove("ERL_ZFLAGS")
}

/// A port nothing listens on right now, on 127.0.0.1 and ::1 (epmdpxy
/// listens on both).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0))
        .or_else(|_| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

// ---------------------------------------------------------------------------
// A plain erl shell, typed into
// ---------------------------------------------------------------------------

/// `erl` (no `-sname`, no `-noshell`) with stdin and stdout piped, in its
/// own process group; dropping it kills the group. Its transcript (each
/// prompt, the line typed and what the shell printed) is printed when a
/// test fails.
struct Shell {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Everything the shell printed on stdout, as it came.
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The number of the prompt the shell waits at.
    prompt: u32,
    /// Where that prompt ends in `stdout`.
    read_to: usize,
    transcript: String,
}

impl Shell {
    /// Starts the shell with `ebin` in its code path and `$EPMDPXY` set to
    /// the binary under test, plus `env`, and waits for its first prompt.
    fn start(ebin: &Path, env: &[(&str, &str)]) -> Shell {
        let mut command = Command::new("erl");
        vm_env(&mut command)
            .arg("-pa")
            .arg(ebin)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: Drop kills beam and its helpers at once.
            .process_group(0);
        let mut child = command.spawn().expect("failed to spawn erl");
        let stdin = child.stdin.take();
        // The prompt has no newline after it: read stdout as it comes.
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut source = child.stdout.take().expect("stdout is piped");
        let sink = Arc::clone(&stdout);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = source.read(&mut chunk) {
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            }
        });
        let (stderr, _) = drain_lines(child.stderr.take().expect("stderr is piped"));
        let mut shell = Shell {
            child,
            stdin,
            stdout,
            stderr,
            prompt: 1,
            read_to: 0,
            transcript: String::new(),
        };
        let banner = shell.await_prompt(1, "the first prompt");
        shell.transcript = format!("{banner}1> ");
        shell
    }

    /// Types `line` and returns what the shell printed before its next
    /// prompt, without the final newline.
    fn type_line(&mut self, line: &str) -> String {
        let stdin = self.stdin.as_mut().expect("the shell's stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot type {line:?}: {e}"));
        let next = self.prompt + 1;
        let printed = self.await_prompt(next, line);
        self.prompt = next;
        let printed = printed.strip_suffix('\n').unwrap_or(&printed).to_string();
        self.transcript
            .push_str(&format!("{line}\n{printed}\n{next}> "));
        printed
    }

    /// Types `line` and checks that the shell printed exactly `want`.
    fn expect(&mut self, line: &str, want: &str) {
        let got = self.type_line(line);
        assert_eq!(got, want, "{line}");
    }

    /// Waits for `\n<number>> ` after what was read so far; returns the
    /// text before it and moves past it.
    fn await_prompt(&mut self, number: u32, what: &str) -> String {
        let prompt = format!("\n{number}> ");
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            let text = self.stdout.lock().map(|t| t.clone()).unwrap_or_default();
            if let Some(at) = text[self.read_to..].find(&prompt) {
                let start = self.read_to;
                self.read_to += at + prompt.len();
                return text[start..start + at + 1].to_string();
            }
            if Instant::now() >= deadline {
                panic!(
                    "no prompt {number}> within {LINE_TIMEOUT:?} after {what:?}; printed since:\n{}",
                    &text[self.read_to..]
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The OS process of the VM (`erl` execs `erlexec`, which execs
    /// `beam.smp`).
    fn vm_pid(&self) -> u32 {
        self.child.id()
    }

    /// The epmdpxy processes this VM started (through the port's `sh`
    /// watchdog, under `erl_child_setup`).
    fn epmdpxy_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if is_epmdpxy(pid) && descends_from(pid, self.vm_pid()) {
                pids.push(pid);
            }
        }
        pids
    }

    /// The one epmdpxy this VM runs.
    fn the_epmdpxy(&self) -> EpmdpxyProcess {
        match self.epmdpxy_pids()[..] {
            [pid] => EpmdpxyProcess(pid),
            ref pids => panic!("want one epmdpxy under the shell's VM, found {pids:?}"),
        }
    }
}

/// An epmdpxy process a shell started. If it is still running when this
/// is dropped (a test failed), it is killed, so no failure leaves it behind.
struct EpmdpxyProcess(u32);

impl EpmdpxyProcess {
    fn is_running(&self) -> bool {
        is_epmdpxy(self.0)
    }
}

impl Drop for EpmdpxyProcess {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.stdin = None;
        kill_group(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "---- erl shell transcript ----\n{}\n---- stdout after the last prompt ----\n{}\n---- stderr ----\n{}---- end of erl shell ----",
                self.transcript,
                self.stdout
                    .lock()
                    .map(|t| t[self.read_to..].to_string())
                    .unwrap_or_default(),
                self.stderr.lock().map(|t| t.clone()).unwrap_or_default()
            );
        }
    }
}

/// True if process `pid` runs the binary under test (a zombie has no
/// command line, and a reused pid another one).
fn is_epmdpxy(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| cmdline.split(|&b| b == 0).next() == Some(epmdpxy_binary().as_bytes()))
        .unwrap_or(false)
}

/// True if `ancestor` is the parent of `pid`, or its parent's parent, ...
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut current = pid;
    for _ in 0..8 {
        // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{current}/stat")) else {
            return false;
        };
        let Some(parent) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok())
        else {
            return false;
        };
        if parent == ancestor {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        current = parent;
    }
    false
}

/// Types `epmdpxy:start(Port).` with a free port and returns the port. A
/// port taken between our check and epmdpxy's bind is tried again.
fn start_on_free_port(shell: &mut Shell) -> u16 {
    for _ in 0..3 {
        let port = free_port();
        let reply = shell.type_line(&format!("epmdpxy:start({port})."));
        if reply == "ok" {
            return port;
        }
        assert!(
            reply.contains("Address already in use"),
            "epmdpxy:start({port}) gave {reply}"
        );
    }
    panic!("three free ports were taken before epmdpxy could bind them");
}

/// `{ok,#{control_port => C,epmd_port => P,...}}` → (P, C).
fn proxy_ports(shell: &mut Shell) -> (u16, u16) {
    let reply = shell.type_line("epmdpxy:proxy().");
    let value = |key: &str| -> u16 {
        reply
            .split_once(&format!("{key} => "))
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in epmdpxy:proxy() = {reply}"))
    };
    (value("epmd_port"), value("control_port"))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// The seed README's session: start on a port, three nodes register and
/// mesh, `cut_cables` splits node1 off (seen in the nodes' own `nodes()`
/// after the tick time), `fix_cables` heals and one ping meshes them again.
/// The nodes run with the default `connect_all` (true), as a real cluster
/// does: that is why one ping from node1 to node2 brings node3 back too.
#[test]
fn seed_readme_session_cuts_and_fixes_three_nodes() {
    let Some((_serial, mut shell)) = seed_shell("session", &[]) else {
        return;
    };
    let port = start_on_free_port(&mut shell);

    // node1..node3: -sname nodeN -start_epmd false, ERL_EPMD_PORT=port,
    // net_ticktime 2 (ErlNode::start and NodeOptions::default()).
    let cookie = format!("seed_api_{port}");
    let options = NodeOptions::default();
    let mut nodes: Vec<ErlNode> = ["node1", "node2", "node3"]
        .iter()
        .map(|name| ErlNode::start(name, &cookie, port, &options))
        .collect();
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let full_mesh = [vec![1, 2], vec![0, 2], vec![0, 1]];
    wait_until_ok(CONVERGE_TIMEOUT, "a full mesh of node1..node3", || {
        for (from, to) in [(0, 1), (0, 2), (1, 2)] {
            nodes[from].ping(&names[to]);
        }
        check_views(&mut nodes, &full_mesh)
    });

    // All three are registered, so the cut comes without a note.
    shell.expect("epmdpxy:cut_cables([node1], [node2, node3]).", "ok");
    let cut_at = Instant::now();
    wait_until_ok(
        CONVERGE_TIMEOUT,
        "node1 split off from node2, node3",
        || check_views(&mut nodes, &[vec![], vec![2], vec![1]]),
    );
    // A cut holds bytes, it does not close links: the nodes find out from
    // their ticks, no sooner than 0.75 × net_ticktime. A split within half
    // of it would mean the links were closed instead.
    let split_after = cut_at.elapsed();
    assert!(
        split_after >= TICKTIME / 2,
        "node1 was split off {split_after:?} after the cut, before any tick could run out"
    );
    shell.expect(
        "epmdpxy:status().",
        "{ok,[<<\"cut node1 | node2\">>,<<\"cut node1 | node3\">>]}",
    );

    shell.expect("epmdpxy:fix_cables([node1], [node2, node3]).", "ok");
    shell.expect("epmdpxy:status().", "{ok,[]}");
    // Links come back lazily: one ping opens node1 - node2, and connect_all
    // (global) opens node1 - node3 without another.
    wait_until(
        CONVERGE_TIMEOUT,
        "node1 to reach node2 after the fix",
        || nodes[0].ping(&names[1]),
    );
    wait_until_ok(
        CONVERGE_TIMEOUT,
        "the full mesh again after one ping",
        || check_views(&mut nodes, &full_mesh),
    );

    shell.expect("epmdpxy:stop().", "ok");
    println!(
        "split seen {split_after:?} after the cut; erl shell transcript:\n{}",
        shell.transcript
    );
}

/// What the proxy refuses comes back as `{error, Why}`; notes on an `OK`
/// are printed in the shell; a crash in the shell does not stop the proxy.
#[test]
fn seed_api_returns_refusals_and_prints_notes() {
    let Some((_serial, mut shell)) = seed_shell("errors", &[]) else {
        return;
    };

    shell.expect(
        "epmdpxy:cut_cables([node1], [node2]).",
        "{error,not_started}",
    );
    let port = start_on_free_port(&mut shell);
    shell.expect(
        &format!("epmdpxy:start({port})."),
        "{error,already_started}",
    );
    shell.expect(
        "epmdpxy:cut_cables([node1], [node1]).",
        "{error,<<\"node1 is named twice\">>}",
    );
    shell.expect(
        "epmdpxy:command(\"frob\").",
        "{error,<<\"unknown command 'frob' (try help)\">>}",
    );
    shell.expect(
        "epmdpxy:command(\"exempt n9\").",
        "epmdpxy: exempt n9 (not registered yet: n9; applies when they appear)\nok",
    );
    let refused = shell.type_line("epmdpxy:isolate(n9).");
    assert!(
        refused.starts_with("{error,<<\"n9 is exempt"),
        "isolate of an exempt node: {refused}"
    );

    // Bare and full names; names not registered yet are cut, and said so.
    shell.expect(
        "epmdpxy:cut_cables([n1], ['n2@elsewhere', \"n3\"]).",
        "epmdpxy: cut n1 | n2@elsewhere,n3 (not registered yet: n1,n2@elsewhere,n3; \
         applies when they appear) (0 live links held)\nok",
    );
    shell.expect(
        "epmdpxy:fix_cables([n7], [n8]).",
        "{error,<<\"no such fault in force (in force: cut n1 | n3; cut n1 | n2@elsewhere)\">>}",
    );

    // The shell replaces its evaluator after an exception; the proxy is
    // nobody's linked process, so it carries on.
    let crash = shell.type_line("1/0.");
    assert!(crash.starts_with("** exception error"), "1/0: {crash}");
    shell.expect(
        "epmdpxy:status().",
        "{ok,[<<\"cut n1 | n3\">>,<<\"cut n1 | n2@elsewhere\">>]}",
    );
    shell.expect("epmdpxy:heal().", "ok");
    shell.expect(
        "epmdpxy:isolate([n1, n2]).",
        "epmdpxy: isolate n1,n2 (not registered yet: n1,n2; applies when they appear) \
         (0 live links held)\nok",
    );
    shell.expect("epmdpxy:rejoin(n1).", "ok");
    shell.expect("epmdpxy:status().", "{ok,[<<\"isolate n2\">>]}");
    shell.expect("epmdpxy:stop().", "ok");
}

/// start/0 takes `$ERL_EPMD_PORT` as the seed's did (here 0: a free port,
/// so never 4369), stop/0 ends the epmdpxy process, and a stopped proxy
/// can be started again.
#[test]
fn seed_api_stop_ends_the_binary() {
    let Some((_serial, mut shell)) = seed_shell("stop", &[("ERL_EPMD_PORT", "0")]) else {
        return;
    };

    shell.expect("epmdpxy:start().", "ok");
    let (epmd_port, control_port) = proxy_ports(&mut shell);
    assert!(
        epmd_port != 0 && epmd_port != 4369,
        "start/0 with ERL_EPMD_PORT=0 should pick a free port, got {epmd_port}"
    );
    let epmdpxy = shell.the_epmdpxy();
    assert!(TcpStream::connect(("127.0.0.1", control_port)).is_ok());

    shell.expect("epmdpxy:stop().", "ok");
    wait_until(
        EXIT_TIMEOUT,
        "the epmdpxy process to exit after stop/0",
        || !epmdpxy.is_running(),
    );
    assert!(
        TcpStream::connect(("127.0.0.1", control_port)).is_err(),
        "the control port {control_port} still accepts after stop/0"
    );
    shell.expect("epmdpxy:stop().", "{error,not_started}");
    shell.expect("epmdpxy:status().", "{error,not_started}");

    // Stopped means startable again.
    shell.expect("epmdpxy:start(0).", "ok");
    let again = shell.the_epmdpxy();
    shell.expect("epmdpxy:stop().", "ok");
    wait_until(EXIT_TIMEOUT, "the second epmdpxy to exit", || {
        !again.is_running()
    });
}

/// The VM that started epmdpxy dies by SIGKILL (no stop/0, no clean
/// halt): the watchdog takes epmdpxy along. Only the VM's own process is
/// killed, not its process group, so nothing else can stop epmdpxy.
#[test]
fn seed_api_binary_dies_with_the_shell_vm() {
    let Some((_serial, mut shell)) = seed_shell("orphan", &[]) else {
        return;
    };
    start_on_free_port(&mut shell);
    let epmdpxy = shell.the_epmdpxy();

    let killed_at = Instant::now();
    shell.child.kill().expect("SIGKILL the VM");
    let _ = shell.child.wait();
    wait_until(
        EXIT_TIMEOUT,
        "epmdpxy to exit with the VM that started it",
        || !epmdpxy.is_running(),
    );
    println!("epmdpxy gone {:?} after its VM", killed_at.elapsed());
}

/// The Elixir module, compiled by `elixir -r` with the helper it needs, on
/// the same calls; the script checks each result by pattern matching.
#[test]
fn elixir_seed_api_smoke() {
    if !require_erl() || !require_program("elixir", "elixir") {
        return;
    }
    let _serial = one_at_a_time();
    let script = r#"
{:error, :not_started} = Epmdpxy.status()
:ok = Epmdpxy.start(0)
{:error, :already_started} = Epmdpxy.start(0)
{:ok, %{control_port: control_port}} = Epmdpxy.proxy()
:ok = Epmdpxy.cut_cables([:node1, "node2"], [:"node3@elsewhere"])
{:ok, ["cut node1 | node3@elsewhere", "cut node2 | node3@elsewhere"]} = Epmdpxy.status()
:ok = Epmdpxy.fix_cables([:node1, "node2"], [:"node3@elsewhere"])
{:error, "a is named twice"} = Epmdpxy.cut_cables([:a], [:a])
:ok = Epmdpxy.command("exempt n9")
{:error, "n9 is exempt" <> _} = Epmdpxy.isolate(:n9)
:ok = Epmdpxy.isolate([:n1])
:ok = Epmdpxy.rejoin(:n1)
:ok = Epmdpxy.heal()
{:ok, []} = Epmdpxy.status()
:ok = Epmdpxy.stop()
{:error, :econnrefused} = :gen_tcp.connect({127, 0, 0, 1}, control_port, [])
{:error, :not_started} = Epmdpxy.stop()
IO.puts("seed api smoke: all matched")
"#;
    let dir = compile_seed_api("elixir");
    let path = dir.join("seed_api_smoke.exs");
    std::fs::write(&path, script).expect("write the script");
    let mut command = Command::new("elixir");
    vm_env(&mut command)
        .arg("-r")
        .arg(examples_dir().join("epmdpxy_ctl.ex"))
        .arg("-r")
        .arg(examples_dir().join("epmdpxy.ex"))
        .arg(&path)
        // Elixir warns on every start without a UTF-8 locale.
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("failed to run elixir");
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || done.send(child.wait_with_output()));
    let output = match finished.recv_timeout(ELIXIR_TIMEOUT) {
        Ok(output) => output.expect("wait for elixir"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("elixir still running after {ELIXIR_TIMEOUT:?}");
        }
    };
    let status = output.status;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        status.success() && output.contains("seed api smoke: all matched"),
        "the Elixir smoke script failed ({status}):\n{output}"
    );
    assert!(
        output.contains(
            "epmdpxy: cut node1,node2 | node3@elsewhere (not registered yet: \
             node1,node2,node3@elsewhere; applies when they appear)"
        ),
        "the note on a cut of unregistered names was not printed:\n{output}"
    );
    assert!(
        !output.contains("warning"),
        "compiling epmdpxy_ctl.ex and epmdpxy.ex warned:\n{output}"
    );
}
