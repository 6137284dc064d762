//! The control port: line-based sessions that read commands and apply them
//! to the shared partition state.
//!
//! Replies: one line starting `OK` or `ERR <why>`; `status`, `nodes`,
//! `links` and `help` answer `OK ...`, then data lines, then `END`;
//! `watch` answers `OK ...` and then streams `EVENT ...` lines until the
//! session sends `quit` or goes away.
//!
//! Exempt nodes: a command that names one (`cut`, `isolate`, `delay`,
//! `throttle`, `reset`) is refused with `ERR`, since the fault would never
//! apply to it; faults written so that they cover one anyway (`*@host`)
//! skip it, and `reset` leaves its links alone. Shapes and chaos only
//! choose among the registered nodes that are not exempt.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::chaos;
use super::command::{self, islands_text, Command, Target, END, HELP};
use super::events::Next;
use crate::epmd::server::node_type_label;
use crate::partition::shapes::{self, Layout, Seeded, Shape};
use crate::partition::{crosses, format_duration, pair_count, NodeName, Pattern, MAX_RULES};
use crate::proxy::link::Direction;
use crate::shared::Shared;
use crate::sync::{lock, read, spawn, write};
use crate::{log_info, log_warn};

/// Longest command line accepted, in bytes, without its `\n` or `\r\n`.
pub const MAX_LINE: usize = 4096;

/// Accepts control sessions forever, one thread each.
pub fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut accept_errors = crate::log::RateLimit::default();
    for incoming in listener.incoming() {
        match incoming {
            Ok(mut stream) => {
                let sessions = shared.control_sessions.fetch_add(1, Ordering::SeqCst);
                if sessions >= shared.settings.max_control_sessions {
                    shared.control_sessions.fetch_sub(1, Ordering::SeqCst);
                    let _ = stream.write_all(b"ERR too many control sessions\n");
                    continue;
                }
                let session_shared = Arc::clone(&shared);
                let spawned = spawn("control", move || {
                    session(&session_shared, stream);
                    session_shared
                        .control_sessions
                        .fetch_sub(1, Ordering::SeqCst);
                });
                if let Err(err) = spawned {
                    shared.control_sessions.fetch_sub(1, Ordering::SeqCst);
                    log_warn!("control: cannot start a session thread: {err}");
                }
            }
            Err(err) => {
                if let Some(held_back) = accept_errors.allow(Duration::from_secs(5)) {
                    log_warn!(
                        "control: accept failed: {err} ({held_back} more since the last report)"
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Reads lines of at most [`MAX_LINE`] bytes from a stream.
struct LineReader {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Skipping the rest of an over-long line.
    discarding: bool,
}

enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

impl LineReader {
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            if let Some(at) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=at).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                // The whole line counts, not only what was buffered before
                // its newline arrived in the same read.
                if std::mem::take(&mut self.discarding) || line.len() > MAX_LINE {
                    return Ok(Some(Line::TooLong));
                }
                return Ok(Some(match String::from_utf8(line) {
                    Ok(text) => Line::Text(text),
                    Err(_) => Line::NotUtf8,
                }));
            }
            // No newline yet: past MAX_LINE (plus a possible '\r') the line
            // is too long whatever follows, so stop keeping its bytes.
            if self.buffer.len() > MAX_LINE + 1 {
                self.buffer.clear();
                self.discarding = true;
            }
            let mut chunk = [0u8; 1024];
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            self.buffer
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

fn session(shared: &Arc<Shared>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut lines = LineReader {
        stream,
        buffer: Vec::new(),
        discarding: false,
    };
    log_info!("control: session from {peer} opened");
    while let Ok(Some(line)) = lines.next_line() {
        let reply = match line {
            Line::TooLong => vec![format!("ERR line too long (max {MAX_LINE} bytes)")],
            Line::NotUtf8 => vec!["ERR line is not UTF-8".to_owned()],
            Line::Text(text) if text.trim().is_empty() => continue,
            Line::Text(text) => match command::parse(&text) {
                Ok(Command::Quit) => {
                    let _ = out.write_all(b"OK bye\n");
                    break;
                }
                Ok(Command::Watch) => {
                    watch(shared, lines, out);
                    log_info!("control: session from {peer} closed after watch");
                    return;
                }
                Ok(command) => {
                    log_info!("control: {peer}: {}", text.trim());
                    execute(shared, &command)
                }
                Err(why) => vec![format!("ERR {why}")],
            },
        };
        let mut text = reply.join("\n");
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            break;
        }
    }
    log_info!("control: session from {peer} closed");
}

/// Turns the session into an event stream until `quit` or disconnect. A
/// helper thread reads the session's input, so `quit` is seen while the
/// stream is waiting for events.
fn watch(shared: &Shared, mut lines: LineReader, mut out: TcpStream) {
    let watcher = shared.events.subscribe();
    if out.write_all(b"OK watching (type quit to stop)\n").is_err() {
        watcher.close();
        return;
    }
    let input_watcher = Arc::clone(&watcher);
    let reader = spawn("control-watch", move || {
        loop {
            match lines.next_line() {
                Ok(Some(Line::Text(text))) if text.trim().eq_ignore_ascii_case("quit") => break,
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
        input_watcher.close();
    });
    if reader.is_err() {
        watcher.close();
        let _ = out.write_all(b"ERR no thread to read the session; watch ended\n");
        return;
    }
    loop {
        match watcher.next(Duration::from_secs(1)) {
            Next::Lines(events) => {
                let mut text = events.join("\n");
                text.push('\n');
                if out.write_all(text.as_bytes()).is_err() {
                    break;
                }
            }
            Next::Idle => continue,
            Next::Closed => {
                let _ = out.write_all(b"OK bye\n");
                break;
            }
        }
    }
    watcher.close();
    let _ = out.shutdown(std::net::Shutdown::Both);
}

/// `ERR n5 is exempt ...` if a pattern names an exempt node.
fn refuse_exempt<'p>(
    shared: &Shared,
    mut patterns: impl Iterator<Item = &'p Pattern>,
) -> Option<Vec<String>> {
    let faults = read(&shared.partitions);
    patterns.find_map(|pattern| {
        faults.exempt_overlap(pattern).map(|exempt| {
            let alias = if exempt == pattern {
                String::new()
            } else {
                format!(" (as {exempt})")
            };
            vec![format!(
                "ERR {pattern} is exempt{alias}: no fault applies to it; unexempt {exempt} first"
            )]
        })
    })
}

/// Runs a command; returns the reply lines.
pub fn execute(shared: &Arc<Shared>, command: &Command) -> Vec<String> {
    let named = match command {
        Command::Cut(target) => target.patterns(),
        Command::Isolate(nodes) => nodes.iter().collect(),
        Command::Delay(islands, _) | Command::Throttle(islands, _) | Command::Reset(islands) => {
            islands.iter().flatten().collect()
        }
        _ => Vec::new(),
    };
    if let Some(refusal) = refuse_exempt(shared, named.into_iter()) {
        return refusal;
    }
    let adds = match command {
        Command::Cut(Target::Islands(islands))
        | Command::Delay(islands, _)
        | Command::Throttle(islands, _) => pair_count(islands),
        Command::Cut(Target::OneWay { from, to }) => from.len() * to.len(),
        Command::Isolate(nodes) => nodes.len(),
        _ => 0,
    };
    let in_force = read(&shared.partitions).rule_count();
    if adds > 0 && in_force + adds > MAX_RULES {
        return vec![format!(
            "ERR too many faults: this names {adds} node pairs, {in_force} rules are in force, the limit is {MAX_RULES} (heal, or name fewer nodes)"
        )];
    }
    match command {
        Command::Cut(target) => cut(shared, target),
        Command::Fix(target) => fix(shared, target),
        Command::Isolate(nodes) => {
            let added = nodes
                .iter()
                .filter(|node| write(&shared.partitions).isolate(node))
                .count();
            let names = join(nodes);
            apply_hold(shared, "fault-applied", &format!("isolate {names}"));
            let mut reply = format!("OK isolate {names}");
            note_unregistered(shared, nodes.iter(), &mut reply);
            if added < nodes.len() {
                reply.push_str(" (some were isolated already)");
            }
            vec![reply]
        }
        Command::Rejoin(nodes) => {
            let removed = nodes
                .iter()
                .filter(|node| write(&shared.partitions).rejoin(node))
                .count();
            let names = join(nodes);
            applied(shared, "fault-removed", &format!("rejoin {names}"));
            if removed < nodes.len() {
                return vec![format!("OK rejoin {names} (some were not isolated)")];
            }
            vec![format!("OK rejoin {names}")]
        }
        Command::Delay(islands, delay) => {
            write(&shared.partitions).set_delay(islands, *delay);
            let text = command.to_string();
            applied(shared, "fault-applied", &text);
            vec![format!("OK {text}")]
        }
        Command::Throttle(islands, rate) => {
            write(&shared.partitions).set_rate(islands, *rate);
            let text = format!("throttle {} {rate}", islands_text(islands));
            applied(shared, "fault-applied", &text);
            vec![format!("OK {text}")]
        }
        Command::Clear(islands) => {
            let removed = write(&shared.partitions).clear(islands);
            let text = format!("clear {}", islands_text(islands));
            applied(shared, "fault-removed", &text);
            if removed == 0 {
                return vec![format!("OK {text} (no delay or throttle was in force)")];
            }
            vec![format!("OK {text}")]
        }
        Command::Reset(islands) => {
            let faults = read(&shared.partitions).clone();
            let doomed: Vec<_> = shared
                .links
                .snapshot()
                .into_iter()
                .filter(|link| {
                    link.initiator().is_some_and(|initiator| {
                        let exempt = faults.is_exempt(initiator) || faults.is_exempt(link.target());
                        !exempt && crosses(islands, initiator, link.target())
                    })
                })
                .collect();
            let text = format!("reset {}", islands_text(islands));
            let closed = doomed.len();
            log_info!("faults: {text} ({closed} links closed)");
            // Announced before the links close, so watchers see the cause
            // before its effects (the link-close events).
            shared
                .events
                .publish(&format!("fault-applied {text} links={closed}"));
            for link in doomed {
                link.close("reset by control");
            }
            shared.changes.bump();
            vec![format!("OK {text} ({closed} links closed)")]
        }
        Command::Heal => {
            write(&shared.partitions).heal();
            applied(shared, "fault-removed", "heal");
            vec!["OK healed".to_owned()]
        }
        Command::Sleep(duration) => {
            std::thread::sleep(*duration);
            vec![format!("OK slept {}", format_duration(*duration))]
        }
        Command::Shape(shape) => shape_command(shared, shape),
        Command::Seed(Some(seed)) => {
            *lock(&shared.seed) = Seeded::new(*seed);
            log_info!("faults: seed {seed}");
            shared.events.publish(&format!("seed {seed}"));
            vec![format!("OK seed {seed}")]
        }
        Command::Seed(None) => vec![format!("OK seed {}", lock(&shared.seed).seed)],
        Command::ChaosStart(config) => chaos::start(shared, config),
        Command::ChaosStop => chaos::stop(shared),
        Command::ChaosState => chaos::state(shared),
        Command::Exempt(nodes) => {
            let removed: usize = {
                let mut faults = write(&shared.partitions);
                nodes.iter().map(|node| faults.exempt(node)).sum()
            };
            let text = command.to_string();
            applied(shared, "exempt-changed", &text);
            let mut reply = format!("OK {text}");
            note_unregistered(shared, nodes.iter(), &mut reply);
            if removed > 0 {
                reply.push_str(" (the faults that named it were removed)");
            }
            vec![reply]
        }
        Command::Unexempt(nodes) => {
            let removed = nodes
                .iter()
                .filter(|node| write(&shared.partitions).unexempt(node))
                .count();
            let text = command.to_string();
            // A fault written as `*@host` may now hold its links.
            apply_hold(shared, "exempt-changed", &text);
            if removed < nodes.len() {
                return vec![format!("OK {text} (some were not exempt)")];
            }
            vec![format!("OK {text}")]
        }
        Command::Status => status(shared),
        Command::Nodes => nodes(shared),
        Command::Links => links(shared),
        Command::Help => {
            let mut lines = vec![format!("OK {} commands", HELP.len())];
            let width = HELP.iter().map(|(usage, _)| usage.len()).max().unwrap_or(0);
            lines.extend(
                HELP.iter()
                    .map(|(usage, what)| format!("{usage:width$}  {what}")),
            );
            lines.push(END.to_owned());
            lines
        }
        Command::Watch => vec!["ERR watch is only available in an interactive session".to_owned()],
        Command::Quit => vec!["OK bye".to_owned()],
    }
}

fn join(patterns: &[Pattern]) -> String {
    patterns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Logs and publishes a fault change, then wakes the relays.
fn applied(shared: &Shared, kind: &str, text: &str) {
    log_info!("faults: {text}");
    shared.events.publish(&format!("{kind} {text}"));
    shared.changes.bump();
}

/// After a fault that holds bytes: wakes the relays, then waits for writes
/// that started before it, so that once the reply is sent no byte crosses.
/// Returns how many could not be waited for.
fn apply_hold(shared: &Shared, kind: &str, text: &str) -> usize {
    applied(shared, kind, text);
    drain_held(shared)
}

/// Waits for the writes in progress on every held direction.
fn drain_held(shared: &Shared) -> usize {
    let faults = read(&shared.partitions).clone();
    let mut stuck = 0;
    for link in shared.links.snapshot() {
        for direction in [Direction::Up, Direction::Down] {
            if link.held_by(&faults, direction)
                && !link.drain_gate(direction, shared.settings.cut_patience)
            {
                stuck += 1;
            }
        }
    }
    stuck
}

fn cut(shared: &Shared, target: &Target) -> Vec<String> {
    {
        let mut faults = write(&shared.partitions);
        match target {
            Target::Islands(islands) => faults.cut(islands),
            Target::OneWay { from, to } => from
                .iter()
                .flat_map(|a| to.iter().map(move |b| (a, b)))
                .map(|(a, b)| faults.cut_one_way(a, b))
                .sum(),
        };
    }
    let stuck = apply_hold(shared, "fault-applied", &format!("cut {target}"));
    let mut reply = format!("OK cut {target}");
    note_unregistered(shared, target.patterns().into_iter(), &mut reply);
    if stuck > 0 {
        reply.push_str(&format!(
            " ({stuck} links were mid-write to a receiver that does not read)"
        ));
    }
    vec![reply]
}

fn fix(shared: &Shared, target: &Target) -> Vec<String> {
    let removed = {
        let mut faults = write(&shared.partitions);
        match target {
            Target::Islands(islands) => faults.fix(islands),
            Target::OneWay { from, to } => from
                .iter()
                .flat_map(|a| to.iter().map(move |b| (a, b)))
                .map(|(a, b)| faults.fix_one_way(a, b))
                .sum(),
        }
    };
    applied(shared, "fault-removed", &format!("fix {target}"));
    if removed == 0 {
        vec![format!("OK fix {target} (no such cut was in force)")]
    } else {
        vec![format!("OK fix {target}")]
    }
}

/// Appends "(not registered yet: ...)" for patterns that match no
/// registered node.
fn note_unregistered<'p>(
    shared: &Shared,
    patterns: impl Iterator<Item = &'p Pattern>,
    reply: &mut String,
) {
    let registry = lock(&shared.registry);
    let unknown: Vec<String> = patterns
        .filter(|pattern| match pattern {
            // Hosts are learnt from handshakes; do not claim they are unknown.
            Pattern::Host(_) => false,
            Pattern::Alive(alive) | Pattern::Full { alive, .. } => {
                !registry.nodes().iter().any(|node| node.name == *alive)
            }
        })
        .map(ToString::to_string)
        .collect();
    if !unknown.is_empty() {
        reply.push_str(&format!(
            " (not registered yet: {}; applies when they appear)",
            unknown.join(",")
        ));
    }
}

/// The registered nodes a shape or chaos step may cut: not exempt, and
/// named so that the control language can write the name. Sorted.
pub fn shape_nodes(shared: &Shared) -> Vec<String> {
    let registered: Vec<String> = lock(&shared.registry)
        .nodes()
        .iter()
        .map(|node| node.name.clone())
        .collect();
    let known: Vec<NodeName> = {
        let learned = lock(&shared.learned_names);
        registered
            .iter()
            .map(|name| {
                learned.get(name).cloned().unwrap_or_else(|| NodeName {
                    alive: name.clone(),
                    host: None,
                })
            })
            .collect()
    };
    let faults = read(&shared.partitions);
    let mut nodes: Vec<String> = registered
        .into_iter()
        .zip(known)
        .filter(|(name, node)| {
            Pattern::parse(name).is_ok_and(|p| p == Pattern::Alive(name.clone()))
                && !faults.is_exempt(node)
        })
        .map(|(name, _)| name)
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// `split ...`, `bridge`, `ring`: lays the shape out over the nodes now
/// registered, drawing from the proxy's seed.
fn shape_command(shared: &Shared, shape: &Shape) -> Vec<String> {
    let nodes = shape_nodes(shared);
    let layout = shapes::layout(shape, &nodes, &mut lock(&shared.seed).rng);
    match layout {
        Ok(layout) => apply_layout(shared, &layout),
        Err(why) => vec![format!("ERR {why}")],
    }
}

/// Applies every cut of a layout at once. Replies `OK <shape>: cut ...`,
/// or for `ring` `OK ring: N cuts`, the cut lines, `END`.
pub fn apply_layout(shared: &Shared, layout: &Layout) -> Vec<String> {
    let cuts: Vec<_> = layout
        .cuts
        .iter()
        .map(|islands| {
            islands
                .iter()
                .map(|island| island.iter().cloned().map(Pattern::Alive).collect())
                .collect::<Vec<Vec<Pattern>>>()
        })
        .collect();
    {
        let mut faults = write(&shared.partitions);
        // A node exempted since the layout was computed.
        let named = cuts.iter().flatten().flatten();
        if let Some(exempt) = named.clone().find(|p| faults.exempt_overlap(p).is_some()) {
            return vec![format!(
                "ERR {exempt} became exempt; {} not applied",
                layout.shape
            )];
        }
        for islands in &cuts {
            faults.cut(islands);
        }
    }
    for islands in &cuts {
        let text = format!("cut {}", islands_text(islands));
        log_info!("faults: {text} ({})", layout.shape);
        shared.events.publish(&format!("fault-applied {text}"));
    }
    shared.changes.bump();
    let stuck = drain_held(shared);
    let stuck_note = if stuck > 0 {
        format!(" ({stuck} links were mid-write to a receiver that does not read)")
    } else {
        String::new()
    };
    let head = match &layout.bridge {
        Some(bridge) => format!("{} {bridge}", layout.shape),
        None => layout.shape.to_string(),
    };
    let lines = layout.cut_lines();
    if layout.shape == Shape::Ring {
        let mut reply = vec![format!("OK ring: {} cuts{stuck_note}", lines.len())];
        reply.extend(lines);
        reply.push(END.to_owned());
        reply
    } else {
        vec![format!("OK {head}: {}{stuck_note}", lines.join("; "))]
    }
}

fn status(shared: &Shared) -> Vec<String> {
    let (faults, exempt) = {
        let set = read(&shared.partitions);
        let exempt: Vec<String> = set.exempt_patterns().map(ToString::to_string).collect();
        (set.describe(), exempt)
    };
    // Settings ride on the header, so the lines stay one per fault.
    let mut head = format!(
        "OK {} faults seed={}",
        faults.len(),
        lock(&shared.seed).seed
    );
    if !exempt.is_empty() {
        head.push_str(&format!(" exempt={}", exempt.join(",")));
    }
    if shared.chaos.is_running() {
        head.push_str(" chaos=running");
    }
    let mut lines = vec![head];
    lines.extend(faults);
    lines.push(END.to_owned());
    lines
}

fn nodes(shared: &Shared) -> Vec<String> {
    let registry = lock(&shared.registry);
    let mut lines = vec![format!("OK {} nodes", registry.nodes().len())];
    for node in registry.nodes() {
        lines.push(format!(
            "{} port={} type={} protocol={} versions={}-{} creation={} address={}",
            node.name,
            node.info.port,
            node_type_label(node.info.node_type),
            node.info.protocol,
            node.info.lowest_version,
            node.info.highest_version,
            node.creation,
            node.peer
        ));
    }
    lines.push(END.to_owned());
    lines
}

fn links(shared: &Shared) -> Vec<String> {
    let links = shared.links.snapshot();
    let faults = read(&shared.partitions).clone();
    let mut lines = vec![format!("OK {} links", links.len())];
    for link in links {
        // "held-up": bytes from the initiator to the target are held.
        let state = match (
            link.held_by(&faults, Direction::Up),
            link.held_by(&faults, Direction::Down),
        ) {
            (false, false) => "open",
            (true, true) => "cut",
            (true, false) => "held-up",
            (false, true) => "held-down",
        };
        let mut line = format!(
            "{} {} -> {} state={} up={} down={} proxy_port={} age={}s",
            link.id,
            link.initiator_label(),
            link.target(),
            state,
            link.bytes(Direction::Up),
            link.bytes(Direction::Down),
            link.proxy_port,
            link.opened.elapsed().as_secs()
        );
        // A node closed its side; the close is held (cut) or queued (delay).
        if let Some(closer) = link.pending_close() {
            line.push_str(&format!(" closed_by={closer}"));
        }
        lines.push(line);
    }
    lines.push(END.to_owned());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::events::Next;
    use crate::epmd::wire::NodeInfo;
    use crate::shared::Settings;
    use std::net::{IpAddr, Ipv4Addr};

    /// A proxy state with `names` registered (no sockets involved).
    fn shared_with(names: &[&str], settings: Settings) -> Arc<Shared> {
        let shared = Shared::new(settings);
        for (i, name) in names.iter().enumerate() {
            let info = NodeInfo {
                port: 40_000 + i as u16,
                node_type: 77,
                protocol: 0,
                highest_version: 6,
                lowest_version: 5,
                name: name.as_bytes().to_vec(),
                extra: Vec::new(),
            };
            lock(&shared.registry)
                .register(info, IpAddr::V4(Ipv4Addr::LOCALHOST), -1)
                .expect("registers");
        }
        shared
    }

    fn run(shared: &Arc<Shared>, line: &str) -> Vec<String> {
        let command = command::parse(line).unwrap_or_else(|why| panic!("{line}: {why}"));
        execute(shared, &command)
    }

    fn seeded(seed: u64) -> Settings {
        Settings {
            seed: Some(seed),
            ..Settings::default()
        }
    }

    #[test]
    fn shapes_reply_with_the_cuts_they_applied() {
        let shared = shared_with(&["n1", "n2", "n3", "n4", "n5"], seeded(42));
        assert_eq!(
            run(&shared, "split halves"),
            vec!["OK split halves: cut n1,n2 | n3,n4,n5"]
        );
        assert_eq!(run(&shared, "status")[0], "OK 6 faults seed=42");
        run(&shared, "heal");
        let ring = run(&shared, "ring");
        assert_eq!(ring.last().map(String::as_str), Some(END));
        assert!(ring[0].starts_with("OK ring: "), "{ring:?}");
        // The status lists exactly what the reply said, pair by pair.
        let cut_lines = &ring[1..ring.len() - 1];
        let pairs: usize = cut_lines
            .iter()
            .map(|line| line.split(" | ").nth(1).map_or(0, |b| b.split(',').count()))
            .sum();
        assert_eq!(
            run(&shared, "status")[0],
            format!("OK {pairs} faults seed=42")
        );
        // Same seed, same layouts.
        run(&shared, "seed 7");
        let first = run(&shared, "split random-halves");
        run(&shared, "seed 7");
        assert_eq!(run(&shared, "split random-halves"), first);
        assert_eq!(run(&shared, "seed"), vec!["OK seed 7"]);
        let sizes = run(&shared, "split sizes 4,2");
        assert!(sizes[0].starts_with("ERR split sizes 4,2: the sizes add up to 6, but there are 5"));
    }

    #[test]
    fn exempt_nodes_are_left_out_and_cannot_be_named() {
        let settings = Settings {
            exempt: vec![Pattern::parse("runner").expect("name")],
            ..seeded(1)
        };
        let shared = shared_with(&["n1", "n2", "n3", "runner"], settings);
        assert_eq!(
            run(&shared, "status")[0],
            "OK 0 faults seed=1 exempt=runner"
        );
        for refused in [
            "cut runner | n1",
            "cut n1 -> runner@host",
            "isolate n2,runner",
            "delay n1 | runner 1s",
            "throttle runner | n1 8kbps",
            "reset n1 | runner",
        ] {
            let reply = run(&shared, refused);
            assert!(reply[0].starts_with("ERR runner"), "{refused}: {reply:?}");
        }
        assert!(read(&shared.partitions).is_empty(), "nothing was stored");
        for shape in [
            "split halves",
            "split one",
            "split majority",
            "bridge",
            "ring",
        ] {
            run(&shared, "heal");
            let reply = run(&shared, shape).join("\n");
            assert!(reply.starts_with("OK"), "{reply}");
            assert!(!reply.contains("runner"), "{reply}");
        }
        // Exempting a node removes the faults that name it.
        run(&shared, "heal");
        run(&shared, "cut n1,n2 | n3");
        let reply = run(&shared, "exempt n3");
        assert_eq!(
            reply,
            vec!["OK exempt n3 (the faults that named it were removed)"]
        );
        assert_eq!(
            run(&shared, "status")[0],
            "OK 0 faults seed=1 exempt=n3,runner"
        );
        assert_eq!(
            run(&shared, "split halves"),
            vec!["OK split halves: cut n1 | n2"]
        );
        run(&shared, "exempt n2");
        assert_eq!(
            run(&shared, "split one"),
            vec!["ERR split one needs at least 2 nodes that are not exempt; there are 1"]
        );
        run(&shared, "unexempt n2");
        assert_eq!(
            run(&shared, "unexempt n3,n9"),
            vec!["OK unexempt n3,n9 (some were not exempt)"]
        );
        assert_eq!(run(&shared, "heal"), vec!["OK healed"]);
        assert_eq!(
            run(&shared, "status")[0],
            "OK 0 faults seed=1 exempt=runner"
        );
    }

    #[test]
    fn chaos_runs_steps_until_stopped_and_ends_healed() {
        let shared = shared_with(&["a", "b", "c", "d", "e"], seeded(3));
        let watcher = shared.events.subscribe();
        let reply = run(
            &shared,
            "chaos start seed 9 every 100ms for 50ms shapes ring,bridge faults isolate",
        );
        assert_eq!(
            reply,
            vec!["OK chaos start seed 9 every 100ms for 50ms shapes ring,bridge faults isolate"]
        );
        assert!(run(&shared, "chaos start")[0].starts_with("ERR chaos is running already"));
        assert!(run(&shared, "status")[0].ends_with(" chaos=running"));
        let mut events = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while events
            .iter()
            .filter(|e: &&String| e.contains(" chaos-heal "))
            .count()
            < 3
        {
            assert!(std::time::Instant::now() < deadline, "{events:#?}");
            if let Next::Lines(lines) = watcher.next(Duration::from_millis(100)) {
                events.extend(lines);
            }
        }
        let reply = run(&shared, "chaos stop");
        assert!(reply[0].starts_with("OK chaos stopped after "), "{reply:?}");
        assert_eq!(run(&shared, "status"), vec!["OK 0 faults seed=3", END]);
        assert_eq!(run(&shared, "chaos"), vec!["OK chaos is not running"]);
        while let Next::Lines(lines) = watcher.next(Duration::from_millis(100)) {
            events.extend(lines);
        }
        // The events replay from the seed: recompute them.
        let config = match command::parse(
            "chaos start seed 9 every 100ms for 50ms shapes ring,bridge faults isolate",
        ) {
            Ok(Command::ChaosStart(config)) => config,
            other => panic!("{other:?}"),
        };
        let mut planner = chaos::Planner::new(9, &config);
        let nodes: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let steps: Vec<&String> = events
            .iter()
            .filter(|e| e.contains(" chaos-step "))
            .collect();
        assert!(steps.len() >= 3);
        for step in &steps {
            let want = format!(" chaos-step {}", planner.next(&nodes).event_text());
            assert!(step.ends_with(&want), "{step} vs {want}");
        }
        let last = events.last().expect("events");
        assert!(
            last.ends_with(&format!(" chaos-stop steps={}", steps.len())),
            "{last}"
        );
        // A second stop still heals and says so.
        assert_eq!(
            run(&shared, "chaos stop"),
            vec!["OK chaos was not running; healed"]
        );
    }
}
