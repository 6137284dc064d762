//! Real EPMD clients against epmdpxy: OTP's own `epmd -names`, `-kill`
//! and `-stop`, `net_adm:names/0` from a node, a hidden node, an
//! `erl -remsh` session through the proxy, and IPv6 (`--address ::1`,
//! both loopbacks by default, `-proto_dist inet6_tcp` nodes).
//!
//! Tests that start `erl` fail under `CI` when it is missing and are
//! skipped with a message otherwise; those that only run the `epmd`
//! client follow the same rule for `epmd`. The IPv6 tests are skipped
//! with a message on a machine without an IPv6 loopback.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::epmd::{epmd_client, epmd_names, names_request};
use common::process::kill_group;
use common::proxy::{field, items};
use common::{
    fake, program_on_path, require_epmd, require_erl, require_ipv6_loopback, wait_until,
    wait_until_ok, ErlNode, NodeOptions, Proxy,
};
use epmdpxy::epmd::wire::NodeInfo;
/// How long a registration, unregistration or exit may take to show.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an Erlang node may take to start and answer.
const NODE_TIMEOUT: Duration = Duration::from_secs(30);

/// The port every fake registration announces (nothing listens there).
const FAKE_NODE_PORT: u16 = 5123;

/// ALIVE2 for `name` (a v6 node on `FAKE_NODE_PORT`); panics unless
/// accepted. The registration lasts while the socket is open.
fn register_fake(port: u16, name: &str) -> TcpStream {
    fake::register(port, name, FAKE_NODE_PORT)
}

/// As `register_fake`, with the given node type (77 normal, 72 hidden).
fn register_fake_typed(port: u16, name: &str, node_type: u8) -> TcpStream {
    let info = NodeInfo {
        node_type,
        ..fake::node_info(name, FAKE_NODE_PORT)
    };
    fake::register_node(port, &info).0
}

/// NAMES over `address`; the node names listed.
fn names_over(address: IpAddr, port: u16) -> Result<String, String> {
    let reply = names_request(address, port)?;
    if reply.get(..4) != Some(&u32::from(port).to_be_bytes()[..]) {
        return Err(format!("bad NAMES header from {address}: {reply:?}"));
    }
    Ok(String::from_utf8_lossy(&reply[4..]).into_owned())
}

// ---------------------------------------------------------------------------
// epmd -names / -kill / -stop
// ---------------------------------------------------------------------------

/// `epmd -names` prints exactly what it prints for the real epmd; `-kill`
/// and `-stop` are refused while a node is alive and the check is strict.
#[test]
fn epmd_client_against_a_strict_proxy() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&[]);
    let node = proxy.start_node("n1", &NodeOptions::default());
    let port = node_port(&proxy, node.short_name());

    let printed = epmd_names(proxy.epmd_port);
    assert_eq!(
        printed,
        format!(
            "epmd: up and running on port {} with data:\nname {} at port {port}\n",
            proxy.epmd_port,
            node.short_name()
        )
    );

    let (code, printed) = epmd_client(proxy.epmd_port, &["-kill"]);
    assert_eq!(
        (code, printed.as_str()),
        (Some(1), "Killing not allowed - living nodes in database.\n")
    );
    let (code, printed) = epmd_client(proxy.epmd_port, &["-stop", node.short_name()]);
    assert_eq!(
        (code, printed.as_str()),
        (Some(1), "epmd: local epmd responded with <>\n"),
        "STOP without --relaxed-command-check is closed without a reply"
    );
    // Neither touched the registration.
    assert_eq!(proxy.registered_names(), vec![node.short_name().to_owned()]);
}

/// The port a node registered, from the control `nodes` reply.
fn node_port(proxy: &Proxy, name: &str) -> u16 {
    let reply = proxy.ctl("nodes");
    let port = items(&reply)
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| field(line, "port=")?.parse().ok());
    port.unwrap_or_else(|| panic!("{name} not in `nodes`: {reply}"))
}

#[test]
fn epmd_kill_when_empty_exits_zero() {
    if !require_epmd() {
        return;
    }
    let mut proxy = Proxy::start(&[]);
    let (code, printed) = epmd_client(proxy.epmd_port, &["-kill"]);
    assert_eq!((code, printed.as_str()), (Some(0), "Killed\n"));
    assert_eq!(
        proxy.wait_exit(SETTLE_TIMEOUT),
        Some(0),
        "epmdpxy exit code"
    );
}

/// `epmd -kill` refused while a (fake) node is registered; the proxy keeps
/// running. No `erl` needed.
#[test]
fn epmd_kill_refused_while_registered() {
    if !require_epmd() {
        return;
    }
    let mut proxy = Proxy::start(&[]);
    let registration = register_fake(proxy.epmd_port, "k1");
    let (code, printed) = epmd_client(proxy.epmd_port, &["-kill"]);
    assert_eq!(
        (code, printed.as_str()),
        (Some(1), "Killing not allowed - living nodes in database.\n")
    );
    assert_eq!(
        proxy.wait_exit(Duration::from_millis(300)),
        None,
        "epmdpxy exited"
    );
    drop(registration);
    // Once the node is gone, KILL is allowed.
    wait_until_ok(SETTLE_TIMEOUT, "k1 to unregister", || {
        let names = names_over(Ipv4Addr::LOCALHOST.into(), proxy.epmd_port)?;
        if names.is_empty() {
            Ok(())
        } else {
            Err(names)
        }
    });
    let (code, printed) = epmd_client(proxy.epmd_port, &["-kill"]);
    assert_eq!((code, printed.as_str()), (Some(0), "Killed\n"));
    assert_eq!(
        proxy.wait_exit(SETTLE_TIMEOUT),
        Some(0),
        "epmdpxy exit code"
    );
}

/// With `--relaxed-command-check` (here in epmd's own spelling):
/// `epmd -stop NAME` unregisters a real node, an unknown name gets
/// `NOEXIST`, and `epmd -kill` is accepted with a node alive, after which
/// epmdpxy exits 0.
#[test]
fn epmd_stop_and_kill_when_relaxed() {
    if !require_erl() {
        return;
    }
    let mut proxy = Proxy::start(&["-relaxed_command_check"]);
    let cookie = format!("epmdpxy_clients_{}", proxy.epmd_port);
    let name = format!("st_{}", proxy.epmd_port);
    let mut node = ErlNode::start(&name, &cookie, proxy.epmd_port, &NodeOptions::default());
    let listed = |port| names_over(Ipv4Addr::LOCALHOST.into(), port).unwrap_or_default();
    assert!(listed(proxy.epmd_port).contains(&name));

    let (code, printed) = epmd_client(proxy.epmd_port, &["-stop", &name]);
    assert_eq!((code, printed.as_str()), (Some(0), "STOPPED\n"));
    wait_until(
        SETTLE_TIMEOUT,
        "the stopped node to be unregistered",
        || !listed(proxy.epmd_port).contains(&name),
    );
    // The node itself lives on, unregistered (as with OTP's epmd).
    assert_eq!(node.eval("1 + 1."), "2");

    let (code, printed) = epmd_client(proxy.epmd_port, &["-stop", "nobody"]);
    assert_eq!((code, printed.as_str()), (Some(0), "NOEXIST\n"));

    let _alive = register_fake(proxy.epmd_port, "still_here");
    let (code, printed) = epmd_client(proxy.epmd_port, &["-kill"]);
    assert_eq!((code, printed.as_str()), (Some(0), "Killed\n"));
    assert_eq!(
        proxy.wait_exit(SETTLE_TIMEOUT),
        Some(0),
        "epmdpxy exit code"
    );
}

// ---------------------------------------------------------------------------
// Nodes as clients
// ---------------------------------------------------------------------------

/// `net_adm:names/0` inside a node lists every node, with the ports it
/// registered.
#[test]
fn net_adm_names_from_a_node() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&[]);
    let mut n1 = proxy.start_node("n1", &NodeOptions::default());
    let n2 = proxy.start_node("n2", &NodeOptions::default());
    let reply = n1.eval("net_adm:names().");
    let want = [n1.short_name(), n2.short_name()]
        .map(|name| format!("{{\"{name}\",{}}}", node_port(&proxy, name)));
    assert!(reply.starts_with("{ok,["), "net_adm:names() gave {reply}");
    for entry in &want {
        assert!(
            reply.contains(entry.as_str()),
            "{entry} missing from {reply}"
        );
    }
}

/// `erl -hidden` registers and connects to a normal node through the
/// proxy. OTP's `erl_epmd` registers every node, hidden or not, with node
/// type 77 (hiddenness travels in the distribution handshake); type 72 is
/// what C and other foreign nodes (erl_interface's `ei_publish`) send, and
/// `nodes` shows it as `type=hidden`.
#[test]
fn hidden_node_registers_and_connects() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&[]);
    let mut normal = proxy.start_node("vis", &NodeOptions::default());
    let hidden_options = NodeOptions {
        hidden: true,
        ..NodeOptions::default()
    };
    let mut hidden = proxy.start_node("hid", &hidden_options);
    let nodes = proxy.ctl("nodes");
    let line_of = |name: &str| {
        nodes
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in `nodes`:\n{nodes}"))
            .to_owned()
    };
    assert!(
        line_of(hidden.short_name()).contains(" type=normal "),
        "{nodes}"
    );
    assert!(
        line_of(normal.short_name()).contains(" type=normal "),
        "{nodes}"
    );
    {
        let foreign = proxy.unique_name("cnode");
        let _registration = register_fake_typed(proxy.epmd_port, &foreign, 72);
        let nodes = proxy.ctl("nodes");
        assert!(
            nodes
                .lines()
                .any(|l| l.starts_with(&format!("{foreign} ")) && l.contains(" type=hidden ")),
            "a type-72 registration is not shown as hidden:\n{nodes}"
        );
    }

    assert!(
        hidden.ping(normal.full_name()),
        "hidden node cannot reach the normal one"
    );
    let full = hidden.full_name().to_owned();
    assert!(
        normal.eval("nodes(hidden).").contains(&full),
        "the normal node does not see the hidden one as hidden"
    );
    assert_eq!(
        normal.nodes(),
        Vec::<String>::new(),
        "a hidden node is not in nodes()"
    );
    let links = proxy.ctl("links");
    assert!(
        links
            .lines()
            .any(|l| l.contains(hidden.short_name()) && l.contains(normal.short_name())),
        "no proxied link between the two:\n{links}"
    );
}

/// A child in its own process group, killed (group and all) on drop, whose
/// output is collected by a thread.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
}

impl Session {
    fn spawn(command: &mut Command) -> Session {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = Arc::clone(&output);
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut out) = output.lock() {
                        out.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Session {
            child,
            stdin,
            output,
        }
    }

    fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn send(&mut self, text: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(text.as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Waits until the output contains `needle`.
    fn wait_for(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.output().contains(needle) {
            if Instant::now() > deadline {
                panic!(
                    "no {needle:?} in the output within {timeout:?}; output:\n{}",
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stdin = None;
        kill_group(&mut self.child);
        if thread::panicking() {
            eprintln!("---- session output ----\n{}---- end ----", self.output());
        }
    }
}

/// `erl -remsh` through the proxy. OTP 25 only honours `-remsh` with a
/// terminal, so the session runs under `script` (util-linux, on every
/// Debian) which gives it a pseudo-terminal; the expression typed there
/// is evaluated on the remote node.
#[test]
fn remsh_session_through_the_proxy() {
    if !require_erl() {
        return;
    }
    if !program_on_path("script") {
        if std::env::var_os("CI").is_some() {
            panic!("`script` (util-linux) is not on PATH but CI is set");
        }
        eprintln!("SKIPPED: `script` (util-linux) is needed to give erl -remsh a terminal");
        return;
    }
    let proxy = Proxy::start(&[]);
    let target = proxy.start_node("remote", &NodeOptions::default());
    let shell_name = proxy.unique_name("rsh");
    // The same tick time as the target (common's default, 2 s), or the
    // target drops the link after a few seconds.
    let command_line = format!(
        "erl -sname {shell_name} -remsh {} -setcookie {} -start_epmd false -kernel net_ticktime 2",
        target.full_name(),
        proxy.cookie()
    );
    let mut session = Session::spawn(
        Command::new("script")
            .args(["-qfec", &command_line, "/dev/null"])
            .env("ERL_EPMD_PORT", proxy.epmd_port.to_string())
            .env_remove("ERL_FLAGS")
            .env_remove("ERL_AFLAGS")
            .env_remove("ERL_ZFLAGS"),
    );
    // The prompt names the remote node: the shell runs there.
    let prompt = format!("({})1>", target.full_name());
    session.wait_for(&prompt, NODE_TIMEOUT);
    // Evaluated on the target; the group leader (the terminal) lives on
    // the remsh node: the session crosses a distribution link.
    session.send("{remsh_check, node(), node(group_leader())}.\n");
    let answer = format!("{{remsh_check,{},{shell_name}@", target.full_name());
    session.wait_for(&answer, NODE_TIMEOUT);
    let links = proxy.ctl("links");
    assert!(
        links
            .lines()
            .any(|l| l.contains(&shell_name) && l.contains(target.short_name())),
        "the remsh connection is not a proxied link:\n{links}"
    );
    // ^G q leaves the shell; the remote node stays up.
    session.send("\x07");
    session.send("q\n");
    drop(session);
    let mut target = target;
    assert_eq!(target.eval("ok."), "ok");
}

// ---------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------

/// By default both 127.0.0.1 and ::1 answer.
#[test]
fn default_listens_on_both_loopbacks() {
    if !require_ipv6_loopback() {
        return;
    }
    let proxy = Proxy::start(&[]);
    for address in [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()] {
        assert_eq!(names_over(address, proxy.epmd_port), Ok(String::new()));
    }
}

/// `--address ::1` (and epmd's `-address ::1`) listens there; loopback
/// IPv4 is added as epmd adds it; OTP's client (which tries ::1 first)
/// works; a lookup over ::1 gets a proxy listener on ::1.
#[test]
fn address_flag_ipv6() {
    if !require_ipv6_loopback() || !require_epmd() {
        return;
    }
    for flag in ["--address", "-address"] {
        let proxy = Proxy::start(&[flag, "::1"]);
        for address in [Ipv6Addr::LOCALHOST.into(), Ipv4Addr::LOCALHOST.into()] {
            assert_eq!(
                names_over(address, proxy.epmd_port),
                Ok(String::new()),
                "{flag} ::1"
            );
        }
        let _registration = register_fake(proxy.epmd_port, "six");
        assert_eq!(
            epmd_names(proxy.epmd_port),
            format!(
                "epmd: up and running on port {} with data:\nname six at port 5123\n",
                proxy.epmd_port
            )
        );
    }
}

/// `ERL_EPMD_ADDRESS=::1` acts as `--address ::1`: the log names only the
/// addresses it asked for plus IPv4 loopback.
#[test]
fn erl_epmd_address_is_honoured() {
    if !require_ipv6_loopback() {
        return;
    }
    let proxy = Proxy::start_with_env(&[], &[("ERL_EPMD_ADDRESS", "::1")]);
    let log = proxy.log();
    let line = log.lines().next().unwrap_or_default();
    assert!(
        line.contains(" addresses=::1,127.0.0.1 "),
        "ERL_EPMD_ADDRESS=::1 gave: {line}"
    );
}

/// An Erlang node run with `-proto_dist inet6_tcp` for the IPv6 test: it
/// prints its name, then evaluates `-eval` code. Killed (with its process
/// group) on drop.
fn inet6_node(proxy: &Proxy, base: &str, program: &str) -> Session {
    Session::spawn(
        Command::new("erl")
            .args(["-noshell", "-sname", &proxy.unique_name(base)])
            .args(["-proto_dist", "inet6_tcp", "-setcookie", &proxy.cookie()])
            .args(["-start_epmd", "false", "-eval", program])
            .env("ERL_EPMD_PORT", proxy.epmd_port.to_string())
            .env_remove("ERL_FLAGS")
            .env_remove("ERL_AFLAGS")
            .env_remove("ERL_ZFLAGS"),
    )
}

/// Two `-proto_dist inet6_tcp` nodes: the first registers over ::1, the
/// second looks it up over ::1 and connects through the proxy.
#[test]
fn inet6_nodes_register_and_connect_through_the_proxy() {
    if !require_erl() || !require_ipv6_loopback() {
        return;
    }
    let proxy = Proxy::start(&[]);
    let first = inet6_node(
        &proxy,
        "six1",
        "io:format(\"started ~s~n\", [node()]), receive after infinity -> ok end.",
    );
    first.wait_for("started ", NODE_TIMEOUT);
    let first_name = proxy.unique_name("six1");
    wait_until(SETTLE_TIMEOUT, "the inet6 node to register", || {
        proxy.registered_names().contains(&first_name)
    });
    let nodes = proxy.ctl("nodes");
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with(&first_name) && l.contains("address=::1")),
        "the inet6 node did not register over ::1:\n{nodes}"
    );
    let full = first
        .output()
        .lines()
        .find_map(|l| l.strip_prefix("started ").map(str::trim).map(str::to_owned))
        .expect("first node's name");
    let second = inet6_node(
        &proxy,
        "six2",
        &format!(
            "io:format(\"ping ~p~n\", [net_adm:ping('{full}')]), receive after infinity -> ok end."
        ),
    );
    second.wait_for("ping ", NODE_TIMEOUT);
    assert!(
        second.output().contains("ping pong"),
        "inet6 ping failed: {}",
        second.output()
    );
    let links = proxy.ctl("links");
    assert!(
        links.lines().any(|l| l.contains(&first_name)),
        "the inet6 connection is not a proxied link:\n{links}"
    );
}

/// `--address ::` (every address, dual-stack, as epmd's default covers):
/// both loopbacks answer, and a lookup over IPv4 gets a proxy that relays
/// to the node.
#[test]
fn address_any_ipv6_is_dual_stack() {
    if !require_ipv6_loopback() {
        return;
    }
    let proxy = Proxy::start(&["--address", "::"]);
    for address in [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()] {
        assert_eq!(names_over(address, proxy.epmd_port), Ok(String::new()));
    }
    // A stand-in node: a listener registered under the name "dual".
    let node = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("stand-in node");
    let node_port = node.local_addr().expect("address").port();
    let _registration = fake::register(proxy.epmd_port, "dual", node_port);
    let proxy_port = fake::lookup(proxy.epmd_port, "dual").expect("PORT2 finds dual");
    assert_ne!(proxy_port, node_port);
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy_port)).expect("proxy port");
    client.write_all(b"through").expect("send");
    let mut upstream = fake::accept_within(&node, SETTLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("the proxy never connected to the node: {e}"));
    upstream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = [0u8; 7];
    upstream.read_exact(&mut got).expect("relayed bytes");
    assert_eq!(&got, b"through");
}
