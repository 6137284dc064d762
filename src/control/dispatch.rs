//! Where each command goes: fault changes and shapes to `execute.rs`,
//! reports to `report.rs`, chaos to its runner, and the few the session
//! answers itself (seed, sleep, help).

use std::sync::Arc;

use super::command::Command;
use super::reply::Reply;
use super::room::Control;
use super::{chaos, execute, help, report};
use crate::base::sync::lock;
use crate::events::Event;
use crate::partition::rules::format_duration;

/// Runs one command and returns its answer (`watch` and `quit` are the
/// session's own; here they only answer what a script would see).
pub fn run(control: &Arc<Control>, command: &Command) -> Reply {
    match command {
        Command::Fault(change) => execute::change(control, change),
        Command::Shape(shape) => execute::shape(control, shape),
        Command::Sleep(duration) => {
            std::thread::sleep(*duration);
            Reply::ok(format!("slept {}", format_duration(*duration)))
        }
        Command::Seed(Some(seed)) => {
            control.set_seed(*seed);
            control.events.publish(&Event::Seed(*seed));
            Reply::ok(format!("seed {seed}"))
        }
        Command::Seed(None) => Reply::ok(format!("seed {}", lock(&control.seed).seed)),
        Command::ChaosStart(config) => chaos::start(control, config),
        Command::ChaosStop => chaos::stop(control),
        Command::ChaosState => chaos::state(control),
        Command::Status => report::status(control),
        Command::Nodes => report::nodes(control),
        Command::Links => report::links(control),
        Command::Matrix => report::matrix(control),
        Command::Help => help::reply(),
        Command::Watch | Command::WatchMatrix => {
            Reply::err("watch is only available in an interactive session")
        }
        Command::Quit => Reply::ok("bye"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::command::{self, END};
    use super::run as run_command;
    use super::*;
    use crate::epmd::wire::NodeInfo;
    use crate::epmd::{Epmd, EpmdSettings};
    use crate::events::{Events, Next};
    use crate::partition::chaos_plan::Planner;
    use crate::partition::{Faults, Pattern};
    use crate::proxy::{Proxy, ProxySettings};
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    /// Start-up options the tests vary.
    #[derive(Default)]
    struct Settings {
        seed: u64,
        exempt: Vec<Pattern>,
    }

    /// The rooms, with `names` registered (no sockets involved).
    fn shared_with(names: &[&str], settings: Settings) -> Arc<Control> {
        let events = Arc::new(Events::default());
        let faults = Faults::new(&settings.exempt);
        let proxy = Proxy::new(
            ProxySettings::default(),
            faults,
            Arc::clone(&events),
            settings.seed,
            vec!["testhost".to_owned()],
        );
        let (exit, _) = std::sync::mpsc::channel();
        let epmd = Epmd::new(EpmdSettings::default(), proxy, events, exit);
        let control = Control::new(Default::default(), epmd, settings.seed);
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
            lock(&control.epmd.registry)
                .register(info, IpAddr::V4(Ipv4Addr::LOCALHOST), -1)
                .expect("registers");
        }
        control
    }

    fn run(control: &Arc<Control>, line: &str) -> Vec<String> {
        let command = command::parse(line).unwrap_or_else(|why| panic!("{line}: {why}"));
        run_command(control, &command).lines(command.multi_line())
    }

    fn seeded(seed: u64) -> Settings {
        Settings {
            seed,
            ..Settings::default()
        }
    }

    /// Seeded, with the node `runner` exempt from the start.
    fn runner_exempt(seed: u64) -> Settings {
        Settings {
            exempt: vec![Pattern::parse("runner").expect("name")],
            ..seeded(seed)
        }
    }

    #[test]
    fn shapes_reply_with_the_cuts_they_applied() {
        let shared = shared_with(&["n1", "n2", "n3", "n4", "n5"], seeded(42));
        assert_eq!(
            run(&shared, "split halves"),
            vec!["OK split halves: cut n1,n2 | n3,n4,n5 (0 live links held)"]
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
    fn matrix_draws_the_registered_nodes_from_the_faults() {
        let settings = runner_exempt(1);
        let shared = shared_with(&["n3", "n1", "runner", "n2"], settings);
        run(&shared, "cut n1,n2 | n3");
        run(&shared, "cut n1 -> n2");
        run(&shared, "delay n2 | n3 1s");
        assert_eq!(
            run(&shared, "matrix").join("\n"),
            r"OK 4 nodes, 0 live links (rows send, columns receive)
       n1     n2     n3     runner
n1     \      >      X      e
n2     .      \      X      e
n3     X      X      \      e
runner e      e      e      \
legend: . reachable  X cut  > one way  ~ slowed  r reset  \ self  e exempt
links: none
END"
        );
        run(&shared, "heal");
        let healed = run(&shared, "matrix");
        let cells: String = healed[2..5].concat();
        assert!(!cells.contains(['X', '>', '~']), "{healed:?}");
    }

    #[test]
    fn exempt_nodes_are_left_out_and_cannot_be_named() {
        let settings = runner_exempt(1);
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
        assert!(shared.faults.read().is_empty(), "nothing was stored");
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
            vec!["OK split halves: cut n1 | n2 (0 live links held)"]
        );
        run(&shared, "exempt n2");
        assert_eq!(
            run(&shared, "split one"),
            vec!["ERR split one needs at least 2 nodes that are not exempt; there is 1"]
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
        let mut planner = Planner::new(9, &config);
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

    /// `fix` and `clear` remove a fault given in another spelling of the
    /// same registered nodes; one that removes nothing is an ERR.
    #[test]
    fn removals_match_by_meaning_and_refuse_when_nothing_matches() {
        let shared = shared_with(&["node1", "node2", "node3"], seeded(5));
        run(&shared, "cut node1 | node2,node3");
        let fixed = run(&shared, "fix node1@testhost | node2@testhost");
        assert_eq!(fixed, vec!["OK fix node1@testhost | node2@testhost"]);
        assert_eq!(
            run(&shared, "status"),
            vec!["OK 1 fault seed=5", "cut node1 | node3", END]
        );
        assert_eq!(
            run(&shared, "fix node1 | node2"),
            vec!["ERR no such fault in force (in force: cut node1 | node3)"]
        );
        assert_eq!(
            run(&shared, "fix node1@otherhost | node3"),
            vec!["ERR no such fault in force (in force: cut node1 | node3)"],
            "another host is another node"
        );
        run(&shared, "heal");
        assert_eq!(
            run(&shared, "clear node1 | node2"),
            vec!["ERR no such fault in force (nothing is in force)"]
        );
        run(&shared, "isolate node2");
        assert_eq!(
            run(&shared, "rejoin node2@testhost"),
            vec!["OK rejoin node2@testhost"]
        );
        assert!(shared.faults.read().is_empty());
    }
}
