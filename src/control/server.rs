//! The control port: line-based sessions that read commands and apply them
//! to the shared partition state.
//!
//! Replies: one line starting `OK` or `ERR <why>`; `status`, `nodes`,
//! `links` and `help` answer `OK ...`, then data lines, then `END`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::command::{self, Command, Target, END, HELP};
use crate::epmd::server::node_type_label;
use crate::partition::Pattern;
use crate::proxy::link::Direction;
use crate::shared::Shared;
use crate::sync::{lock, read, spawn, write};
use crate::{log_info, log_warn};

/// Longest command line accepted, in bytes, without its `\n` or `\r\n`.
pub const MAX_LINE: usize = 4096;

/// Accepts control sessions forever, one thread each.
pub fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
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
                log_warn!("control: accept failed: {err}");
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

fn session(shared: &Shared, stream: TcpStream) {
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

/// Runs a command; returns the reply lines.
pub fn execute(shared: &Shared, command: &Command) -> Vec<String> {
    match command {
        Command::Cut(target) => cut(shared, target),
        Command::Fix(target) => fix(shared, target),
        Command::Heal => {
            write(&shared.partitions).heal();
            log_info!("faults: healed");
            shared.changes.bump();
            vec!["OK healed".to_owned()]
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
        Command::Quit => vec!["OK bye".to_owned()],
    }
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
    shared.changes.bump();
    let stuck = wait_for_in_flight_writes(shared);
    log_info!("faults: cut {target}");
    let mut reply = format!("OK cut {target}");
    let unknown = unregistered(shared, target);
    if !unknown.is_empty() {
        reply.push_str(&format!(
            " (not registered yet: {}; applies when they appear)",
            unknown.join(",")
        ));
    }
    if stuck > 0 {
        reply.push_str(&format!(
            " ({stuck} links were mid-write to a receiver that does not read)"
        ));
    }
    vec![reply]
}

/// After a cut: waits for writes that started before it, so that once the
/// reply is sent no byte crosses. Returns how many could not be waited for.
fn wait_for_in_flight_writes(shared: &Shared) -> usize {
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
    log_info!("faults: fix {target}");
    shared.changes.bump();
    if removed == 0 {
        vec![format!("OK fix {target} (no such cut was in force)")]
    } else {
        vec![format!("OK fix {target}")]
    }
}

/// The patterns of `target` that match no registered node.
fn unregistered(shared: &Shared, target: &Target) -> Vec<String> {
    let registry = lock(&shared.registry);
    let registered: Vec<crate::partition::NodeName> = registry
        .nodes()
        .iter()
        .map(|node| crate::partition::NodeName::parse(&node.name))
        .collect();
    let mut unknown = Vec::new();
    for pattern in target.patterns() {
        let matched = match pattern {
            // Hosts are learnt from handshakes; do not claim they are unknown.
            Pattern::Host(_) => true,
            Pattern::Alive(alive) | Pattern::Full { alive, .. } => {
                registered.iter().any(|n| n.alive == *alive)
            }
        };
        if !matched {
            unknown.push(pattern.to_string());
        }
    }
    unknown
}

fn status(shared: &Shared) -> Vec<String> {
    let faults = read(&shared.partitions).describe();
    let mut lines = vec![format!("OK {} faults", faults.len())];
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
        lines.push(format!(
            "{} {} -> {} state={} up={} down={} proxy_port={} age={}s",
            link.id,
            link.initiator_label(),
            link.target,
            state,
            link.bytes(Direction::Up),
            link.bytes(Direction::Down),
            link.proxy_port,
            link.opened.elapsed().as_secs()
        ));
    }
    lines.push(END.to_owned());
    lines
}
