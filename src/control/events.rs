//! The event stream behind `watch`: every part of the proxy publishes one
//! line per event; each watcher has its own bounded queue, so a slow
//! watcher loses events (and is told how many) instead of slowing the
//! proxy down.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use crate::sync::lock;

/// Events a watcher may fall behind by before new ones are dropped.
pub const WATCH_QUEUE: usize = 1024;

/// One watcher's queue.
#[derive(Default)]
pub struct Watcher {
    queue: Mutex<WatchQueue>,
    ready: Condvar,
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
                "EVENT {} dropped {} events (watcher too slow)",
                now(),
                queue.dropped
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
    crate::log::timestamp(SystemTime::now())
}

impl Events {
    /// Sends `EVENT <time> <text>` to every watcher. Never blocks on one.
    pub fn publish(&self, text: &str) {
        let mut watchers = lock(&self.watchers);
        if watchers.is_empty() {
            return;
        }
        watchers.retain(|watcher| !lock(&watcher.queue).closed);
        let line = format!("EVENT {} {text}", now());
        for watcher in watchers.iter() {
            watcher.push(&line);
        }
    }

    /// Registers a new watcher.
    pub fn subscribe(&self) -> Arc<Watcher> {
        let watcher = Arc::new(Watcher::default());
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
        events.publish("before anyone watches");
        let a = events.subscribe();
        let b = events.subscribe();
        events.publish("one");
        events.publish("two");
        for watcher in [&a, &b] {
            let Next::Lines(lines) = watcher.next(Duration::from_millis(10)) else {
                panic!("no lines")
            };
            assert_eq!(lines.len(), 2);
            assert!(
                lines[0].ends_with(" one") && lines[1].ends_with(" two"),
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
            events.publish(&format!("e{i}"));
        }
        let Next::Lines(lines) = watcher.next(Duration::from_millis(10)) else {
            panic!("no lines")
        };
        assert!(lines[0].contains("dropped 5 events"), "{}", lines[0]);
        assert_eq!(lines.len(), WATCH_QUEUE + 1);
    }

    #[test]
    fn closed_watchers_are_forgotten() {
        let events = Events::default();
        let watcher = events.subscribe();
        watcher.close();
        assert_eq!(watcher.next(Duration::from_millis(1)), Next::Closed);
        events.publish("x");
        assert!(lock(&events.watchers).is_empty());
    }
}
