//! The examples in docs/examples/ run here, as a user would run them:
//!
//! - `epmdpxy_ctl.erl` is compiled with `erlc` and drives a real partition
//!   of three nodes (cut, islands, fix, mesh again), observed from outside
//!   by the test harness; its start/stop and error paths are checked too.
//! - `partition_SUITE.erl` runs under `ct_run` (Debian `erlang-common-test`),
//!   together with the suite printed in docs/erlang.md.
//! - `epmdpxy_ctl.ex` and `partition_test.exs` run under `elixir` (Debian
//!   `elixir`), together with the test printed in docs/elixir.md.
//!
//! Each needs its tool: missing tools fail the test when env `CI` is set
//! and skip it with a message otherwise. The examples start their own
//! epmdpxy (the binary under test, passed in `$EPMDPXY`) and their own
//! `peer` nodes; only one example runs at a time, since each boots several
//! Erlang VMs and the machine is shared.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Mutex;
use std::time::Duration;

use common::erl::await_mesh;
use common::process::{run, ScratchDir};
use common::proxy::EPMDPXY;
use common::{
    require_erl, require_program, wait_until, wait_until_ok, ErlNode, NodeOptions, Proxy,
};

/// How long a cut or a fix may take to show in every node's `nodes()`.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a whole example run (`ct_run`, `elixir`) may take.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(180);

/// The examples boot several VMs each; run them one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples")
}

/// Runs an example (`ct_run`, `elixir`) to its end; its exit status and
/// everything it printed (stdout, then stderr).
fn run_example(command: &mut Command) -> (ExitStatus, String) {
    let output = run(command, "", EXAMPLE_TIMEOUT);
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status, printed)
}

/// The fenced code block of `language` in docs/`doc` that contains
/// `marker`: the examples printed in the docs run too.
fn doc_block(doc: &str, language: &str, marker: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(doc);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let fence = format!("```{language}\n");
    text.split(fence.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.contains(marker))
        .unwrap_or_else(|| panic!("docs/{doc} has no ```{language} block containing {marker:?}"))
        .to_owned()
}

/// Compiles docs/examples/epmdpxy_ctl.erl into `dir`.
fn compile_erlang_helper(dir: &Path) {
    let source = examples_dir().join("epmdpxy_ctl.erl");
    let output = Command::new("erlc")
        .args(["-Wall", "-Werror", "-o"])
        .arg(dir)
        .arg(&source)
        .output()
        .expect("failed to run erlc");
    assert!(
        output.status.success(),
        "erlc {} failed:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Evaluates `expr` in `node` and checks the printed result.
fn eval_expect(node: &mut ErlNode, expr: &str, want: &str) {
    let got = node.eval(expr);
    assert_eq!(got, want, "{expr}");
}

#[test]
fn erlang_helper_cuts_and_fixes_a_live_cluster() {
    if !require_erl() {
        return;
    }
    let _serial = one_at_a_time();
    let ebin = ScratchDir::new("erl-helper");
    compile_erlang_helper(ebin.path());

    // The cluster, observed by the harness. Default connect_all: a real
    // cluster's behaviour.
    let proxy = Proxy::start(&["-v"]);
    let options = NodeOptions::default();
    let mut nodes: Vec<ErlNode> = ["n1", "n2", "n3"]
        .iter()
        .map(|base| proxy.start_node(base, &options))
        .collect();
    await_mesh(&mut nodes, CONVERGE_TIMEOUT, "a full mesh of 3 nodes");
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();

    // The controller: an Erlang node that loads the helper. It registers
    // with a proxy of its own and has another cookie, so it is never part
    // of the cluster it cuts.
    let controller_proxy = Proxy::start(&[]);
    let mut controller = controller_proxy.start_node("ctl", &NodeOptions::default());
    eval_expect(
        &mut controller,
        &format!("code:add_patha(\"{}\")", ebin.text()),
        "true",
    );
    let port = proxy.control_port;
    let islands = format!("[['{}'], ['{}', '{}']]", names[0], names[1], names[2]);

    eval_expect(
        &mut controller,
        &format!("epmdpxy_ctl:cut({port}, {islands})"),
        "ok",
    );
    wait_until_ok(CONVERGE_TIMEOUT, "islands {n1} and {n2,n3}", || {
        let views: Vec<Vec<String>> = nodes.iter_mut().map(ErlNode::nodes).collect();
        let want = vec![vec![], vec![names[2].clone()], vec![names[1].clone()]];
        if views == want {
            Ok(())
        } else {
            Err(format!("views {views:?}"))
        }
    });
    // The multi-line replies come back as data lines.
    let status = controller.eval(&format!("epmdpxy_ctl:status({port})"));
    for other in &names[1..] {
        assert!(
            status.contains(&format!("<<\"cut {} | {other}\">>", names[0])),
            "status should list the cut {} | {other}: {status}",
            names[0]
        );
    }
    let links = controller.eval(&format!("epmdpxy_ctl:links({port})"));
    assert!(links.starts_with("{ok,[<<\""), "links: {links}");

    eval_expect(
        &mut controller,
        &format!("epmdpxy_ctl:fix({port}, {islands})"),
        "ok",
    );
    eval_expect(
        &mut controller,
        &format!("epmdpxy_ctl:status({port})"),
        "{ok,[]}",
    );
    // Links come back lazily: the first ping across reconnects.
    let across = names[1].clone();
    wait_until(CONVERGE_TIMEOUT, "n1 to reach n2 after the fix", || {
        nodes[0].ping(&across)
    });
    await_mesh(
        &mut nodes,
        CONVERGE_TIMEOUT,
        "a full mesh again after the fix",
    );

    // A generic command, and heal.
    eval_expect(
        &mut controller,
        &format!(
            "epmdpxy_ctl:command({port}, \"cut {} -> {}\")",
            names[0], names[1]
        ),
        "ok",
    );
    let one_way = controller.eval(&format!("epmdpxy_ctl:status({port})"));
    assert!(
        one_way.contains(&format!("cut {} -> {}", names[0], names[1])),
        "status after a one-way cut: {one_way}"
    );
    eval_expect(&mut controller, &format!("epmdpxy_ctl:heal({port})"), "ok");
    eval_expect(
        &mut controller,
        &format!("epmdpxy_ctl:status({port})"),
        "{ok,[]}",
    );
}

#[test]
fn erlang_helper_starts_stops_and_reports_errors() {
    if !require_erl() {
        return;
    }
    let _serial = one_at_a_time();
    let ebin = ScratchDir::new("erl-helper-life");
    compile_erlang_helper(ebin.path());
    let controller_proxy = Proxy::start(&[]);
    let mut erl = controller_proxy.start_node("life", &NodeOptions::default());
    eval_expect(
        &mut erl,
        &format!("code:add_patha(\"{}\")", ebin.text()),
        "true",
    );
    let binary = EPMDPXY;

    // start/1 finds the ports in the ready line.
    eval_expect(
        &mut erl,
        &format!(
            "{{ok, P}} = epmdpxy_ctl:start(#{{path => \"{binary}\", args => [\"-v\"]}}), \
             persistent_term:put(pxy, P), is_integer(epmdpxy_ctl:control_port(P))"
        ),
        "true",
    );
    let control_port: u16 = erl
        .eval("epmdpxy_ctl:control_port(persistent_term:get(pxy))")
        .parse()
        .expect("a port number");
    let epmd_port: u16 = erl
        .eval("epmdpxy_ctl:epmd_port(persistent_term:get(pxy))")
        .parse()
        .expect("a port number");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", epmd_port)).is_ok(),
        "nothing listens on the EPMD port {epmd_port}"
    );
    eval_expect(
        &mut erl,
        "epmdpxy_ctl:node_env(persistent_term:get(pxy))",
        &format!("[{{\"ERL_EPMD_PORT\",\"{epmd_port}\"}}]"),
    );

    // ERR replies become {error, Why}; a cut of names not registered yet
    // is an error and is undone, unless asked to wait for the nodes.
    eval_expect(
        &mut erl,
        "epmdpxy_ctl:command(persistent_term:get(pxy), \"frob\")",
        "{error,<<\"unknown command 'frob' (try help)\">>}",
    );
    eval_expect(
        &mut erl,
        "epmdpxy_ctl:cut(persistent_term:get(pxy), \"a | a\")",
        "{error,<<\"a is named twice\">>}",
    );
    eval_expect(
        &mut erl,
        "epmdpxy_ctl:cut(persistent_term:get(pxy), [a, [b, \"c\"]])",
        "{error,{not_registered,[<<\"a\">>,<<\"b\">>,<<\"c\">>]}}",
    );
    eval_expect(
        &mut erl,
        "epmdpxy_ctl:status(persistent_term:get(pxy))",
        "{ok,[]}",
    );
    eval_expect(
        &mut erl,
        "epmdpxy_ctl:cut(persistent_term:get(pxy), [a, [b, \"c\"]], #{pending => true})",
        "ok",
    );
    eval_expect(
        &mut erl,
        "epmdpxy_ctl:status(persistent_term:get(pxy))",
        "{ok,[<<\"cut a | b\">>,<<\"cut a | c\">>]}",
    );
    // No live link crosses the cut: it is blocked at once.
    eval_expect(
        &mut erl,
        "epmdpxy_ctl:wait_for_blocked(persistent_term:get(pxy), \"a | b,c\", 1000)",
        "ok",
    );
    let help = erl.eval("epmdpxy_ctl:request(persistent_term:get(pxy), \"help\")");
    assert!(
        help.starts_with("{ok,<<\"") && help.contains("<<\"heal "),
        "help: {help}"
    );
    // The log holds what epmdpxy printed, with -v the control events.
    let log = erl.eval("epmdpxy_ctl:log(persistent_term:get(pxy))");
    assert!(
        log.contains("ready epmd_port=") && log.contains("faults: cut a | b,c"),
        "log: {log}"
    );

    // stop/1 returns once the control port is closed.
    eval_expect(&mut erl, "epmdpxy_ctl:stop(persistent_term:get(pxy))", "ok");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", control_port)).is_err(),
        "the control port {control_port} is still open after stop/1"
    );
    eval_expect(
        &mut erl,
        &format!("epmdpxy_ctl:command({control_port}, \"status\")"),
        "{error,{connect,econnrefused}}",
    );

    // Start-up failures are errors, not hangs.
    eval_expect(
        &mut erl,
        "element(1, element(2, epmdpxy_ctl:start(#{path => \"/nonexistent/epmdpxy\"})))",
        "no_such_file",
    );
    let bad_flag = erl.eval(&format!(
        "epmdpxy_ctl:start(#{{path => \"{binary}\", args => [\"--no-such-flag\"]}})"
    ));
    assert!(
        bad_flag.starts_with("{error,{exited,") && bad_flag.contains("no-such-flag"),
        "start with a bad flag: {bad_flag}"
    );
}

#[test]
fn erlang_helper_is_killed_with_its_vm() {
    if !require_erl() {
        return;
    }
    let _serial = one_at_a_time();
    let ebin = ScratchDir::new("erl-helper-orphan");
    compile_erlang_helper(ebin.path());
    let controller_proxy = Proxy::start(&[]);
    let mut erl = controller_proxy.start_node("orphan", &NodeOptions::default());
    eval_expect(
        &mut erl,
        &format!("code:add_patha(\"{}\")", ebin.text()),
        "true",
    );
    let control_port: u16 = erl
        .eval(&format!(
            "{{ok, P}} = epmdpxy_ctl:start(#{{path => \"{}\"}}), epmdpxy_ctl:control_port(P)",
            EPMDPXY
        ))
        .parse()
        .expect("a port number");
    assert!(std::net::TcpStream::connect(("127.0.0.1", control_port)).is_ok());
    // The VM dies without stop/1 (the harness kills it with SIGKILL): the
    // watchdog sees its pipe close and takes epmdpxy along.
    drop(erl);
    wait_until(
        Duration::from_secs(10),
        "epmdpxy to exit with the VM that started it",
        || std::net::TcpStream::connect(("127.0.0.1", control_port)).is_err(),
    );
}

#[test]
fn common_test_suite_example_passes() {
    if !require_erl() || !require_program("ct_run", "erlang-common-test") {
        return;
    }
    let _serial = one_at_a_time();
    let dir = ScratchDir::new("ct");
    compile_erlang_helper(dir.path());
    std::fs::copy(
        examples_dir().join("partition_SUITE.erl"),
        dir.path().join("partition_SUITE.erl"),
    )
    .expect("copy the suite");
    std::fs::write(
        dir.path().join("split_SUITE.erl"),
        doc_block("erlang.md", "erlang", "-module(split_SUITE)."),
    )
    .expect("write the suite from docs/erlang.md");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("create the log directory");

    // ct_run's own node is distributed (`ct@host`) and would start a real
    // epmd; give it an epmdpxy of its own instead. The suite starts another
    // one for its cluster, and its peers are pointed there.
    let ct_epmd = Proxy::start(&[]);
    let mut command = Command::new("ct_run");
    command
        .args(["-noshell", "-dir"])
        .arg(dir.path())
        .arg("-pa")
        .arg(dir.path())
        .arg("-logdir")
        .arg(&logs)
        .args(["-erl_args", "-start_epmd", "false"])
        .current_dir(dir.path())
        .env("ERL_EPMD_PORT", ct_epmd.epmd_port.to_string())
        .env("EPMDPXY", EPMDPXY)
        .env_remove("ERL_FLAGS")
        .env_remove("ERL_AFLAGS")
        .env_remove("ERL_ZFLAGS");
    let (status, output) = run_example(&mut command);
    let complete = output.contains("TEST COMPLETE, 3 ok, 0 failed of 3 test cases");
    if !(status.success() && complete) {
        panic!(
            "ct_run of partition_SUITE and split_SUITE failed ({status}); output:\n{output}\n\
             test case logs under {}",
            logs.display()
        );
    }
}

#[test]
fn elixir_example_test_passes() {
    if !require_erl() || !require_program("elixir", "elixir") {
        return;
    }
    let _serial = one_at_a_time();
    // One script: the example test, then the test printed in docs/elixir.md
    // (the example's `ExUnit.start()` serves both).
    let dir = ScratchDir::new("elixir");
    let example = std::fs::read_to_string(examples_dir().join("partition_test.exs"))
        .expect("read partition_test.exs");
    let script = dir.path().join("partition_test.exs");
    std::fs::write(
        &script,
        format!(
            "{example}\n{}",
            doc_block("elixir.md", "elixir", "defmodule SplitTest")
        ),
    )
    .expect("write the test script");
    let mut command = Command::new("elixir");
    command
        .arg("-r")
        .arg(examples_dir().join("epmdpxy_ctl.ex"))
        .arg(&script)
        .env("EPMDPXY", EPMDPXY)
        // Elixir warns on every start without a UTF-8 locale.
        .env("LANG", "C.UTF-8")
        .env_remove("ERL_FLAGS")
        .env_remove("ERL_AFLAGS")
        .env_remove("ERL_ZFLAGS");
    let (status, output) = run_example(&mut command);
    if !(status.success() && output.contains("3 tests, 0 failures")) {
        panic!("elixir partition_test.exs + SplitTest failed ({status}); output:\n{output}");
    }
}
