//! `matrix` and `watch matrix` end to end: the reachability matrix on
//! five real OTP nodes through cuts, a one-way cut and a heal (and what
//! the nodes themselves see meanwhile), and `watch matrix` drawing again
//! on every fault, exemption and node change, with fake nodes.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{check_views, fake, require_erl, wait_until, wait_until_ok, NodeOptions, Proxy};

/// How long a cut or a heal may take to show in every node's `nodes()`
/// (`net_ticktime 2`: a silent link is declared down after 2–3 s).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one line of a watch stream may take to arrive.
const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// A `matrix` answer, read back: the header, the mark of every (sender,
/// receiver) pair by node name, and the `links:` items.
struct Matrix {
    head: String,
    cells: BTreeMap<(String, String), char>,
    links: Vec<String>,
}

impl Matrix {
    /// Reads the lines of one answer (`OK ...` up to `END`). Every row
    /// must carry one mark per column.
    fn read(lines: &[String]) -> Matrix {
        let text = lines.join("\n");
        let head = lines.first().expect("a header").clone();
        assert!(head.starts_with("OK "), "{text}");
        let columns: Vec<&str> = lines
            .get(1)
            .map_or(vec![], |l| l.split_whitespace().collect());
        let mut cells = BTreeMap::new();
        let rows = lines
            .iter()
            .skip(2)
            .take_while(|l| !l.starts_with("legend: "));
        for row in rows {
            let mut words = row.split_whitespace();
            let from = words.next().expect("a row label");
            let marks: Vec<&str> = words.collect();
            assert_eq!(marks.len(), columns.len(), "row {from}:\n{text}");
            for (to, mark) in columns.iter().zip(marks) {
                assert_eq!(mark.chars().count(), 1, "{text}");
                let mark = mark.chars().next().expect("a mark");
                cells.insert((from.to_owned(), (*to).to_owned()), mark);
            }
        }
        assert_eq!(cells.len(), columns.len() * columns.len(), "{text}");
        let links = lines
            .iter()
            .skip_while(|l| !l.starts_with("links: "))
            .take_while(|l| *l != "END")
            .flat_map(|l| l.trim_start_matches("links: ").trim().split(", "))
            .map(|item| item.trim_end_matches(',').to_owned())
            .collect();
        assert_eq!(lines.last().map(String::as_str), Some("END"), "{text}");
        Matrix { head, cells, links }
    }

    /// Err names every cell that differs from `want(from, to)`.
    fn expect(&self, want: impl Fn(&str, &str) -> char) -> Result<(), String> {
        let wrong: Vec<String> = self
            .cells
            .iter()
            .filter(|((from, to), mark)| want(from, to) != **mark)
            .map(|((from, to), mark)| {
                format!("{from}->{to} is {mark:?}, want {:?}", want(from, to))
            })
            .collect();
        match wrong.is_empty() {
            true => Ok(()),
            false => Err(wrong.join("; ")),
        }
    }
}

fn matrix(proxy: &Proxy) -> Matrix {
    let reply = proxy.ctl("matrix");
    let lines: Vec<String> = reply.lines().map(str::to_owned).collect();
    Matrix::read(&lines)
}

/// The mark `want` wants of a pair of different nodes; `\` on the diagonal.
fn marks(want: impl Fn(&str, &str) -> char) -> impl Fn(&str, &str) -> char {
    move |from, to| if from == to { '\\' } else { want(from, to) }
}

/// Who each node should be connected to: the others of its group.
fn peers(groups: &[usize]) -> Vec<Vec<usize>> {
    let others = |i: usize| (0..groups.len()).filter(move |&j| j != i && groups[j] == groups[i]);
    (0..groups.len()).map(|i| others(i).collect()).collect()
}

#[test]
fn matrix_shows_islands_a_one_way_cut_and_the_heal_on_five_otp_nodes() {
    if !require_erl() {
        return;
    }
    let started = Instant::now();
    let proxy = Proxy::start(&["-v"]);
    // Default connect_all and global, as a real cluster runs.
    let mut nodes = proxy.start_nodes(&["n1", "n2", "n3", "n4", "n5"], &NodeOptions::default());
    let names: Vec<String> = nodes.iter().map(|n| n.short_name().to_owned()).collect();
    let full: Vec<String> = nodes.iter().map(|n| n.full_name().to_owned()).collect();
    let (n1, n2) = (names[0].clone(), names[1].clone());

    // Before any link: every node is there, and nothing is held.
    let first = matrix(&proxy);
    assert!(
        first.head.starts_with("OK 5 nodes, 0 live links"),
        "{}",
        first.head
    );
    assert_eq!(first.links, vec!["none"]);
    first.expect(marks(|_, _| '.')).expect("all reachable");

    // Two islands, drawn from the faults before a single link exists.
    let island = |name: &str| usize::from(name != n1 && name != n2);
    let spec = format!("{n1},{n2} | {},{},{}", names[2], names[3], names[4]);
    let reply = proxy.ctl(&format!("cut {spec}"));
    assert!(reply.starts_with("OK cut"), "{reply}");
    let split = marks(|a, b| if island(a) == island(b) { '.' } else { 'X' });
    matrix(&proxy).expect(&split).expect("two islands");

    // The nodes agree: inside an island they connect (n2 to n1 first, so
    // the proxy learns n1's full name from its handshake), and the
    // matrix counts those links and no others.
    for (from, to) in [(1, 0), (3, 2), (4, 2), (4, 3)] {
        let target = full[to].clone();
        wait_until(CONVERGE_TIMEOUT, "a ping inside an island", || {
            nodes[from].ping(&target)
        });
    }
    let groups = [0, 0, 1, 1, 1];
    wait_until_ok(CONVERGE_TIMEOUT, "the nodes to see two islands", || {
        check_views(&mut nodes, &peers(&groups))
    });
    let pair = |a: usize, b: usize| format!("{}-{}", names[a], names[b]);
    let inside = [pair(0, 1), pair(2, 3), pair(2, 4), pair(3, 4)];
    wait_until_ok(CONVERGE_TIMEOUT, "the links inside the islands", || {
        let drawn = matrix(&proxy);
        drawn.expect(&split)?;
        let pairs: Vec<&str> = drawn
            .links
            .iter()
            .filter_map(|l| l.split(' ').next())
            .collect();
        match pairs == inside {
            true => Ok(()),
            false => Err(format!("links {:?}", drawn.links)),
        }
    });
    eprintln!("two islands after {:?}", started.elapsed());

    // Heal: all reachable, and the mesh closes (one ping across; global
    // and connect_all do the rest, pairs still missing are pinged).
    assert_eq!(proxy.ctl("heal"), "OK healed");
    matrix(&proxy).expect(marks(|_, _| '.')).expect("healed");
    let target = full[2].clone();
    wait_until(CONVERGE_TIMEOUT, "n1 to reach n3 after the heal", || {
        nodes[0].ping(&target)
    });
    wait_until_ok(CONVERGE_TIMEOUT, "a full mesh", || {
        if check_views(&mut nodes, &peers(&[0; 5])).is_ok() {
            return Ok(());
        }
        for (i, j) in (0..5).flat_map(|i| (i + 1..5).map(move |j| (i, j))) {
            let target = full[j].clone();
            nodes[i].ping(&target);
        }
        Err("pinged every pair".to_owned())
    });

    // One way, named by full name: only n1 -> n2 is held. A host pattern
    // for another host does not match n1, whose host the proxy learnt.
    let reply = proxy.ctl(&format!("cut {} -> {n2}", full[0]));
    assert!(reply.starts_with("OK cut"), "{reply}");
    let reply = proxy.ctl(&format!("cut {n1}@no-such-host -> {}", names[2]));
    assert!(reply.starts_with("OK cut"), "{reply}");
    let one_way = marks(|a, b| if a == n1 && b == n2 { '>' } else { '.' });
    matrix(&proxy).expect(&one_way).expect("only n1 -> n2 held");
    // ... and it holds: n2 stops hearing n1 and drops it, and n1 sees n2
    // close. (What global then does to the others' links is its own
    // business: the matrix shows what the faults let through.)
    wait_until_ok(CONVERGE_TIMEOUT, "n1 and n2 to lose each other", || {
        let (seen_by_n1, seen_by_n2) = (nodes[0].nodes(), nodes[1].nodes());
        match (seen_by_n1.contains(&full[1]), seen_by_n2.contains(&full[0])) {
            (false, false) => Ok(()),
            seen => Err(format!("n1 sees n2, n2 sees n1: {seen:?}")),
        }
    });
    matrix(&proxy)
        .expect(&one_way)
        .expect("still only n1 -> n2 held");

    assert_eq!(proxy.ctl("heal"), "OK healed");
    matrix(&proxy)
        .expect(marks(|_, _| '.'))
        .expect("healed again");
    eprintln!("test took {:?}", started.elapsed());
}

/// A control session reading a watch stream line by line.
struct Watching {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Watching {
    fn start(proxy: &Proxy, command: &str) -> Watching {
        let stream = fake::connect(proxy.control_port, LINE_TIMEOUT);
        let mut writer = stream.try_clone().expect("clone");
        writer
            .write_all(format!("{command}\n").as_bytes())
            .expect("send");
        Watching {
            reader: BufReader::new(stream),
            writer,
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).expect("a line in time");
        assert!(read > 0, "the stream ended");
        line.trim_end_matches('\n').to_owned()
    }

    /// The next matrix of the stream (`OK ...` to `END`).
    fn matrix(&mut self) -> Matrix {
        let mut lines = vec![self.line()];
        while lines.last().map(String::as_str) != Some("END") {
            lines.push(self.line());
        }
        Matrix::read(&lines)
    }

    /// The next event line; it must be of `kind`.
    fn event(&mut self, kind: &str) -> String {
        let line = self.line();
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.get(..1), Some(&["EVENT"][..]), "{line}");
        assert_eq!(words.get(2), Some(&kind), "{line}");
        line
    }
}

/// A fake node registered as `name` for as long as it is kept.
fn register(proxy: &Proxy, name: &str) -> TcpStream {
    let mut stream = fake::connect(proxy.epmd_port, LINE_TIMEOUT);
    fake::alive2(&mut stream, &fake::node_info(name, 40_000));
    stream
}

#[test]
fn watch_matrix_draws_again_on_faults_exemptions_and_nodes_only() {
    let proxy = Proxy::start(&[]);
    let _a = register(&proxy, "a");
    let _b = register(&proxy, "b");
    let mut watch = Watching::start(&proxy, "watch matrix");
    assert_eq!(watch.line(), "OK watching the matrix (type quit to stop)");
    let first = watch.matrix();
    assert!(first.head.starts_with("OK 2 nodes"), "{}", first.head);
    first.expect(marks(|_, _| '.')).expect("nothing held");

    assert_eq!(proxy.ctl("cut a -> b"), "OK cut a -> b (0 live links held)");
    assert!(watch.event("fault-applied").ends_with(" cut a -> b"));
    let one_way = marks(|a, b| if (a, b) == ("a", "b") { '>' } else { '.' });
    watch.matrix().expect(&one_way).expect("a -> b held");

    let c = register(&proxy, "c");
    assert!(watch.event("node-up").contains(" name=c "));
    let three = watch.matrix();
    assert!(three.head.starts_with("OK 3 nodes"), "{}", three.head);
    three.expect(&one_way).expect("c reaches everyone");

    assert!(proxy.ctl("exempt c").starts_with("OK exempt c"));
    watch.event("exempt-changed");
    let exempt = marks(|a, b| match (a, b) {
        ("c", _) | (_, "c") => 'e',
        ("a", "b") => '>',
        _ => '.',
    });
    watch.matrix().expect(&exempt).expect("c exempt");

    // Events that cannot change the matrix are not streamed: the next
    // line after a seed is the heal's.
    assert_eq!(proxy.ctl("seed 5"), "OK seed 5");
    assert_eq!(proxy.ctl("heal"), "OK healed");
    watch.event("fault-removed");
    watch.matrix().expect(exempt_only(&["c"])).expect("healed");

    drop(c);
    watch.event("node-down");
    let two = watch.matrix();
    assert!(two.head.starts_with("OK 2 nodes"), "{}", two.head);

    watch.writer.write_all(b"quit\n").expect("quit");
    assert_eq!(watch.line(), "OK bye");
    let mut rest = String::new();
    assert_eq!(watch.reader.read_line(&mut rest).ok(), Some(0), "{rest}");
}

/// Everything reachable except the exempt nodes' pairs.
fn exempt_only(exempt: &'static [&'static str]) -> impl Fn(&str, &str) -> char {
    marks(
        move |a, b| match exempt.contains(&a) || exempt.contains(&b) {
            true => 'e',
            false => '.',
        },
    )
}

#[test]
fn ctl_prints_the_matrix_the_control_port_answers() {
    let proxy = Proxy::start(&[]);
    let _nodes = ["x", "y", "z"].map(|name| register(&proxy, name));
    assert!(proxy.ctl("cut x | y,z").starts_with("OK cut"));
    let output = Command::new(env!("CARGO_BIN_EXE_epmdpxy"))
        .args([
            "ctl",
            "--control-port",
            &proxy.control_port.to_string(),
            "matrix",
        ])
        .output()
        .expect("run ctl");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(printed.trim_end(), proxy.ctl("matrix"));
    let lines: Vec<String> = printed.lines().map(str::to_owned).collect();
    let want = marks(|a, b| if (a == "x") == (b == "x") { '.' } else { 'X' });
    Matrix::read(&lines)
        .expect(want)
        .expect("x cut from y and z");
    // a wrong form is refused with the right one
    let output = Command::new(env!("CARGO_BIN_EXE_epmdpxy"))
        .args(["ctl", "--control-port", &proxy.control_port.to_string()])
        .args(["watch", "matrices"])
        .output()
        .expect("run ctl");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("(watch | watch matrix)"), "{printed}");
}

/// The 5-node `matrix` answers in README and docs/control-protocol.md are
/// what the drawing code gives for that cut, with every pair linked once.
#[test]
fn the_documented_answers_are_drawn_as_shown() {
    use epmdpxy::control::command::{parse, Command};
    use epmdpxy::partition::matrix::{draw, mark, LinkCounts, Node};
    use epmdpxy::partition::names::KnownNodes;
    use epmdpxy::partition::{NodeName, PartitionSet};
    for (doc, prefix) in [("README.md", "node"), ("docs/control-protocol.md", "n")] {
        let path = format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let shown: Vec<&str> = text
            .lines()
            .map(|line| line.strip_prefix("    ").unwrap_or(line))
            .skip_while(|line| !line.starts_with("OK 5 nodes, 10 live links"))
            .take_while(|line| *line != "END")
            .collect();
        assert!(!shown.is_empty(), "{doc} shows no 5-node matrix");

        let names: Vec<String> = (1..=5).map(|i| format!("{prefix}{i}")).collect();
        let nodes: Vec<Node> = names
            .iter()
            .map(|name| Node::registered(name, NodeName::parse(name)))
            .collect();
        let mut set = PartitionSet::new();
        let cut = format!("cut {0}1,{0}2 | {0}3,{0}4,{0}5", prefix);
        let Ok(Command::Fault(change)) = parse(&cut) else {
            panic!("{cut}")
        };
        set.apply(&change, &KnownNodes::default()).expect("applies");
        let full = |name: &String| NodeName::parse(&format!("{name}@host"));
        let ends: Vec<(NodeName, NodeName)> = (0..5)
            .flat_map(|i| (i + 1..5).map(move |j| (i, j)))
            .map(|(i, j)| (full(&names[i]), NodeName::parse(&names[j])))
            .collect();
        let links = LinkCounts::count(&nodes, ends.iter().map(|(a, b)| (Some(a), b)));
        let drawing = draw(&nodes, |a, b| mark(&set, &a.name, &b.name), &links);
        let mut drawn = vec![format!("OK {}", drawing.head)];
        drawn.extend(drawing.lines);
        assert_eq!(shown, drawn, "{doc}");
    }
}
