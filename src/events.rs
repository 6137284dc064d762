//! What happened, told once: every room publishes an [`Event`]; publishing
//! logs its line (at the event's level) and hands `EVENT <time> <event>`
//! to every `watch` session. Each watcher has its own bounded queue, so a
//! slow watcher loses events (and is told how many) instead of slowing the
//! proxy down.
//!
//! The event kinds and their fields are the `watch` protocol
//! (docs/control-protocol.md): new fields go at the end of a line.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use crate::base::log;
use crate::base::sync::lock;
use crate::base::words::count;

/// One thing that happened, as `watch` shows it (`Display`) and as the log
/// tells it ([`Event::log_line`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A node registered (ALIVE2).
    NodeUp {
        name: String,
        port: u16,
        node_type: String,
        creation: u32,
        peer: IpAddr,
    },
    /// A registration ended.
    NodeDown { name: String },
    /// A proxied link carries bytes (its initiator is known or unknowable).
    LinkOpen {
        id: u64,
        from: String,
        to: String,
        proxy_port: u16,
    },
    /// Both directions of a link have ended.
    LinkClose {
        id: u64,
        from: String,
        to: String,
        up: u64,
        down: u64,
        reason: String,
    },
    /// The real node refused the upstream connection.
    LinkFailed {
        to: String,
        proxy_port: u16,
        node_port: u16,
        error: String,
    },
    /// A fault was applied; `links` counts the links a `reset` closed.
    FaultApplied { text: String, links: Option<usize> },
    /// A fault was removed.
    FaultRemoved { text: String },
    /// A node was exempted or unexempted.
    ExemptChanged { text: String },
    /// `seed N`.
    Seed(u64),
    /// A chaos run started (its `chaos start` arguments).
    ChaosStart { config: String },
    /// A chaos step (its event text: step, nodes, action, commands).
    ChaosStep { text: String },
    /// A chaos step was refused when applied.
    ChaosError { step: u64, reply: String },
    /// A chaos step was healed.
    ChaosHeal { step: u64 },
    /// A chaos run ended (the log also names its seed).
    ChaosStop { steps: u64, seed: u64 },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::NodeUp {
                name,
                port,
                node_type,
                creation,
                ..
            } => write!(
                f,
                "node-up name={name} port={port} type={node_type} creation={creation}"
            ),
            Event::NodeDown { name } => write!(f, "node-down name={name}"),
            Event::LinkOpen {
                id,
                from,
                to,
                proxy_port,
            } => write!(f, "link-open id={id} from={from} to={to} proxy_port={proxy_port}"),
            Event::LinkClose {
                id,
                from,
                to,
                up,
                down,
                reason,
            } => write!(
                f,
                "link-close id={id} from={from} to={to} up={up} down={down} reason=\"{reason}\""
            ),
            Event::LinkFailed {
                to,
                proxy_port,
                error,
                ..
            } => write!(
                f,
                "link-failed to={to} proxy_port={proxy_port} reason=\"cannot reach the node: {error}\""
            ),
            Event::FaultApplied { text, links: None } => write!(f, "fault-applied {text}"),
            Event::FaultApplied {
                text,
                links: Some(links),
            } => write!(f, "fault-applied {text} links={links}"),
            Event::FaultRemoved { text } => write!(f, "fault-removed {text}"),
            Event::ExemptChanged { text } => write!(f, "exempt-changed {text}"),
            Event::Seed(seed) => write!(f, "seed {seed}"),
            Event::ChaosStart { config } => write!(f, "chaos-start {config}"),
            Event::ChaosStep { text } => write!(f, "chaos-step {text}"),
            Event::ChaosError { step, reply } => {
                write!(f, "chaos-error step={step} reply=\"{reply}\"")
            }
            Event::ChaosHeal { step } => write!(f, "chaos-heal step={step}"),
            Event::ChaosStop { steps, .. } => write!(f, "chaos-stop steps={steps}"),
        }
    }
}

impl Event {
    /// The log line, or `None` for events only watchers see.
    pub fn log_line(&self) -> Option<String> {
        Some(match self {
            Event::NodeUp {
                name,
                port,
                node_type,
                creation,
                peer,
            } => format!(
                "node {name} registered: port {port} type {node_type} creation {creation} from {peer}"
            ),
            Event::NodeDown { name } => format!("node {name} unregistered"),
            Event::LinkOpen {
                id,
                from,
                to,
                proxy_port,
            } => format!("link {id} opened: {from} -> {to} via proxy port {proxy_port}"),
            Event::LinkClose {
                id,
                from,
                to,
                up,
                down,
                reason,
            } => format!(
                "link {id} closed: {from} -> {to} ({} up, {} down; {reason})",
                count(*up, "byte"),
                count(*down, "byte")
            ),
            Event::LinkFailed {
                to,
                proxy_port,
                node_port,
                error,
            } => format!(
                "link to {to} via port {proxy_port}: cannot reach the node at port {node_port}: {error}; closing the incoming side"
            ),
            Event::FaultApplied { text, links: None }
            | Event::FaultRemoved { text }
            | Event::ExemptChanged { text } => format!("faults: {text}"),
            Event::FaultApplied {
                text,
                links: Some(links),
            } => format!("faults: {text} ({} closed)", count(*links, "link")),
            Event::Seed(seed) => format!("faults: seed {seed}"),
            Event::ChaosStart { config } => format!("chaos: start {config}"),
            Event::ChaosStep { text } => format!("chaos: {text}"),
            Event::ChaosError { step, reply } => {
                format!("chaos: step {step} was refused: {reply}")
            }
            Event::ChaosHeal { .. } => return None,
            Event::ChaosStop { steps, seed } => {
                format!("chaos: stopped after {} (seed {seed}); healed", count(*steps, "step"))
            }
        })
    }

    /// How loud its log line is: problems and chaos runs always show,
    /// the rest with `-v`.
    fn log_level(&self) -> u8 {
        match self {
            Event::LinkFailed { .. }
            | Event::ChaosStart { .. }
            | Event::ChaosError { .. }
            | Event::ChaosStop { .. } => log::WARN,
            _ => log::INFO,
        }
    }
}

/// Events a watcher may fall behind by before new ones are dropped.
pub const WATCH_QUEUE: usize = 1024;

/// One watcher's queue.
#[derive(Default)]
pub struct Watcher {
    queue: Mutex<WatchQueue>,
    ready: Condvar,
    /// The events it is sent (`None`: all).
    wants: Option<fn(&Event) -> bool>,
}

#[derive(Default)]
struct WatchQueue {
    lines: VecDeque<String>,
    dropped: u64,
    closed: bool,
}

/// What a watcher gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Event lines, oldest first (a "dropped" notice comes first if any were lost).
    Lines(Vec<String>),
    /// Nothing happened within the wait.
    Idle,
    /// The watcher was closed.
    Closed,
}

impl Watcher {
    fn push(&self, line: &str) {
        let mut queue = lock(&self.queue);
        if queue.closed {
            return;
        }
        if queue.lines.len() >= WATCH_QUEUE {
            queue.dropped += 1;
        } else {
            queue.lines.push_back(line.to_owned());
        }
        self.ready.notify_one();
    }

    /// Waits up to `timeout` for events.
    pub fn next(&self, timeout: Duration) -> Next {
        let queue = lock(&self.queue);
        let (mut queue, _) = self
            .ready
            .wait_timeout_while(queue, timeout, |q| {
                q.lines.is_empty() && q.dropped == 0 && !q.closed
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if queue.closed {
            return Next::Closed;
        }
        let mut lines = Vec::new();
        if queue.dropped > 0 {
            lines.push(format!(
                "EVENT {} dropped {} (watcher too slow)",
                now(),
                count(queue.dropped, "event")
            ));
            queue.dropped = 0;
        }
        lines.extend(queue.lines.drain(..));
        if lines.is_empty() {
            Next::Idle
        } else {
            Next::Lines(lines)
        }
    }

    /// Ends the watch: `next` returns `Closed` from now on.
    pub fn close(&self) {
        lock(&self.queue).closed = true;
        self.ready.notify_all();
    }
}

/// Every watcher, and the publishing side.
#[derive(Default)]
pub struct Events {
    watchers: Mutex<Vec<Arc<Watcher>>>,
}

fn now() -> String {
    log::timestamp(SystemTime::now())
}

impl Events {
    /// Logs `event`, then sends `EVENT <time> <event>` to every watcher.
    /// Never blocks on a watcher.
    pub fn publish(&self, event: &Event) {
        if let Some(line) = event.log_line() {
            log::write(event.log_level(), format_args!("{line}"));
        }
        let mut watchers = lock(&self.watchers);
        if watchers.is_empty() {
            return;
        }
        watchers.retain(|watcher| !lock(&watcher.queue).closed);
        let line = format!("EVENT {} {event}", now());
        for watcher in watchers.iter() {
            if watcher.wants.is_none_or(|wants| wants(event)) {
                watcher.push(&line);
            }
        }
    }

    /// Registers a new watcher of every event.
    pub fn subscribe(&self) -> Arc<Watcher> {
        self.add(Watcher::default())
    }

    /// Registers a new watcher of the events `wants` says yes to.
    pub fn subscribe_to(&self, wants: fn(&Event) -> bool) -> Arc<Watcher> {
        self.add(Watcher {
            wants: Some(wants),
            ..Watcher::default()
        })
    }

    fn add(&self, watcher: Watcher) -> Arc<Watcher> {
        let watcher = Arc::new(watcher);
        lock(&self.watchers).push(Arc::clone(&watcher));
        watcher
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_watcher_gets_every_event_in_order() {
        let events = Events::default();
        events.publish(&Event::Seed(0));
        let a = events.subscribe();
        let b = events.subscribe();
        events.publish(&Event::Seed(1));
        events.publish(&Event::Seed(2));
        for watcher in [&a, &b] {
            let Next::Lines(lines) = watcher.next(Duration::from_millis(10)) else {
                panic!("no lines")
            };
            assert_eq!(lines.len(), 2);
            assert!(
                lines[0].ends_with(" seed 1") && lines[1].ends_with(" seed 2"),
                "{lines:?}"
            );
        }
        assert_eq!(a.next(Duration::from_millis(1)), Next::Idle);
    }

    #[test]
    fn slow_watchers_lose_events_and_are_told() {
        let events = Events::default();
        let watcher = events.subscribe();
        for i in 0..WATCH_QUEUE + 5 {
            events.publish(&Event::Seed(i as u64));
        }
        let Next::Lines(lines) = watcher.next(Duration::from_millis(10)) else {
            panic!("no lines")
        };
        assert!(lines[0].contains("dropped 5 events"), "{}", lines[0]);
        assert_eq!(lines.len(), WATCH_QUEUE + 1);
    }

    #[test]
    fn a_watcher_of_some_events_gets_only_those() {
        let events = Events::default();
        let all = events.subscribe();
        let some = events.subscribe_to(|event| {
            matches!(event, Event::FaultRemoved { .. } | Event::NodeDown { .. })
        });
        events.publish(&Event::Seed(1));
        events.publish(&Event::FaultRemoved {
            text: "heal".into(),
        });
        events.publish(&Event::NodeDown { name: "a".into() });
        let Next::Lines(lines) = some.next(Duration::from_millis(10)) else {
            panic!("no lines")
        };
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with(" fault-removed heal"), "{lines:?}");
        assert!(lines[1].ends_with(" node-down name=a"), "{lines:?}");
        assert!(matches!(all.next(Duration::from_millis(10)), Next::Lines(l) if l.len() == 3));
    }

    #[test]
    fn closed_watchers_are_forgotten() {
        let events = Events::default();
        let watcher = events.subscribe();
        watcher.close();
        assert_eq!(watcher.next(Duration::from_millis(1)), Next::Closed);
        events.publish(&Event::Seed(3));
        assert!(lock(&events.watchers).is_empty());
    }
}
