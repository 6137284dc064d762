//! The control language: one command per line, parsed by pure functions
//! ([`parse`]; the argument parsers are in `parse.rs`), and printed back
//! as the line that creates it. Fault commands are partition
//! [`Change`]s; the rest ask for reports, shapes, chaos or the session.
//!
//! ```text
//! cut A,B | C,D [| E...]     cut every pair across different islands
//! cut A -> B                 one way: bytes from A to B are held
//! fix <same forms>           undo exactly that cut
//! isolate N[,M] / rejoin N   cut N from everyone, including later nodes
//! delay A | B 200ms [jitter 50ms]
//! throttle A | B 64kbps
//! reset A | B                close the live links between them now
//! clear A | B                remove delay and throttle between them
//! heal                       remove every fault
//! watch                      stream events until quit
//! watch matrix               draw the matrix again on every change until quit
//! sleep 2s                   wait (for scripts)
//! split halves|random-halves|one|majority|sizes 2,2,1
//! bridge | ring               the Jepsen shapes (see partition::shapes)
//! seed [N]                    the seed of the random shapes
//! chaos start [seed N] [every 5s] [for 2s] [shapes a,b] [faults c,d]
//! chaos stop | chaos          stop (and heal) | show the run
//! exempt N / unexempt N       N is never cut, isolated, delayed or reset
//! matrix                     who reaches whom: rows send, columns receive
//! status | nodes | links | help | quit
//! ```

use std::fmt;
use std::time::Duration;

use super::parse::{
    parse_chaos, parse_delay, parse_duration, parse_islands, parse_names, parse_seed, parse_split,
    parse_target, parse_throttle, ChaosWords, MAX_SLEEP,
};
use crate::partition::chaos_plan::ChaosConfig;
use crate::partition::rules::format_duration;
use crate::partition::shapes::Shape;
use crate::partition::{Change, Pattern};

/// A parsed control command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `cut`, `fix`, `isolate`, `rejoin`, `delay`, `throttle`, `reset`,
    /// `clear`, `heal`, `exempt`, `unexempt`.
    Fault(Change),
    Watch,
    /// `watch matrix`: the matrix, drawn again after every fault change
    /// and node up or down.
    WatchMatrix,
    Sleep(Duration),
    /// `split ...`, `bridge`, `ring`.
    Shape(Shape),
    /// `seed N` sets the seed; bare `seed` shows it.
    Seed(Option<u64>),
    ChaosStart(ChaosConfig),
    ChaosStop,
    /// Bare `chaos`: is a run going?
    ChaosState,
    Status,
    Nodes,
    Links,
    Matrix,
    Help,
    Quit,
}

/// The line that parses back to the command.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Fault(change) => write!(f, "{change}"),
            Command::Watch => f.write_str("watch"),
            Command::WatchMatrix => f.write_str("watch matrix"),
            Command::Sleep(duration) => write!(f, "sleep {}", format_duration(*duration)),
            Command::Shape(shape) => write!(f, "{shape}"),
            Command::Seed(Some(seed)) => write!(f, "seed {seed}"),
            Command::Seed(None) => f.write_str("seed"),
            Command::ChaosStart(config) => write!(f, "chaos start {config}"),
            Command::ChaosStop => f.write_str("chaos stop"),
            Command::ChaosState => f.write_str("chaos"),
            Command::Status => f.write_str("status"),
            Command::Nodes => f.write_str("nodes"),
            Command::Links => f.write_str("links"),
            Command::Matrix => f.write_str("matrix"),
            Command::Help => f.write_str("help"),
            Command::Quit => f.write_str("quit"),
        }
    }
}

/// The commands whose answer spans several lines, ending with [`END`]
/// (when the first line is `OK`; an `ERR` is one line). Clients read it
/// (`epmdpxy ctl`, the Erlang and Elixir helpers carry a copy).
pub const MULTI_LINE_COMMANDS: &[&str] = &["status", "nodes", "links", "matrix", "help", "ring"];

/// The last line of a multi-line answer.
pub const END: &str = "END";

impl Command {
    /// True if its `OK` answer spans several lines and ends with [`END`]:
    /// its first word is one of [`MULTI_LINE_COMMANDS`].
    pub fn multi_line(&self) -> bool {
        let line = self.to_string();
        let word = line.split_whitespace().next().unwrap_or_default();
        MULTI_LINE_COMMANDS.contains(&word)
    }
}

/// Parses one line (without its line ending).
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    let word = word.to_ascii_lowercase();
    let names = |change: fn(Vec<Pattern>) -> Change| {
        parse_names(&word, rest).map(|nodes| Command::Fault(change(nodes)))
    };
    let no_arguments = |command: Command| {
        if rest.is_empty() {
            Ok(command)
        } else {
            Err(format!("{word} takes no arguments"))
        }
    };
    match word.as_str() {
        "cut" => parse_target(&word, rest).map(|target| Command::Fault(Change::Cut(target))),
        "fix" => parse_target(&word, rest).map(|target| Command::Fault(Change::Fix(target))),
        "isolate" => names(Change::Isolate),
        "rejoin" => names(Change::Rejoin),
        "delay" => parse_delay(rest).map(Command::Fault),
        "throttle" => parse_throttle(rest).map(Command::Fault),
        "reset" => parse_islands(&word, rest, "reset A | B")
            .map(|islands| Command::Fault(Change::Reset(islands))),
        "clear" => parse_islands(&word, rest, "clear A | B")
            .map(|islands| Command::Fault(Change::Clear(islands))),
        "heal" => no_arguments(Command::Fault(Change::Heal)),
        "watch" => match rest.to_ascii_lowercase().as_str() {
            "" => Ok(Command::Watch),
            "matrix" => Ok(Command::WatchMatrix),
            _ => Err(format!(
                "watch takes no argument or 'matrix' (watch | watch matrix), not '{rest}'"
            )),
        },
        "sleep" => parse_duration(rest, MAX_SLEEP).map(Command::Sleep),
        "split" => parse_split(rest).map(Command::Shape),
        "bridge" => no_arguments(Command::Shape(Shape::Bridge)),
        "ring" => no_arguments(Command::Shape(Shape::Ring)),
        "seed" if rest.is_empty() => Ok(Command::Seed(None)),
        "seed" => parse_seed(rest).map(|seed| Command::Seed(Some(seed))),
        "chaos" => parse_chaos(rest).map(|words| match words {
            ChaosWords::Start(config) => Command::ChaosStart(config),
            ChaosWords::Stop => Command::ChaosStop,
            ChaosWords::State => Command::ChaosState,
        }),
        "exempt" => names(Change::Exempt),
        "unexempt" => names(Change::Unexempt),
        "status" => no_arguments(Command::Status),
        "nodes" => no_arguments(Command::Nodes),
        "links" => no_arguments(Command::Links),
        "matrix" => no_arguments(Command::Matrix),
        "help" => no_arguments(Command::Help),
        "quit" | "exit" => no_arguments(Command::Quit),
        "" => Err("empty command".to_owned()),
        other => Err(format!("unknown command '{other}' (try help)")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::help::HELP;
    use super::super::parse::parse_rate;
    use super::*;
    use crate::partition::chaos_plan::ChaosFault;
    use crate::partition::{Delay, Pattern, Rate, Target};

    fn names(list: &[&str]) -> Vec<Pattern> {
        list.iter()
            .map(|name| Pattern::parse(name).expect("valid"))
            .collect()
    }

    #[test]
    fn cut_islands() {
        let parsed = parse("cut node1,node2 | node3,node4,node5").expect("parses");
        let expected = Command::Fault(Change::Cut(Target::Islands(vec![
            names(&["node1", "node2"]),
            names(&["node3", "node4", "node5"]),
        ])));
        assert_eq!(parsed, expected);
        assert_eq!(
            parse("  CUT a|b|c  "),
            Ok(Command::Fault(Change::Cut(Target::Islands(vec![
                names(&["a"]),
                names(&["b"]),
                names(&["c"])
            ]))))
        );
        assert_eq!(
            parse("fix a , b|c"),
            Ok(Command::Fault(Change::Fix(Target::Islands(vec![
                names(&["a", "b"]),
                names(&["c"])
            ]))))
        );
        assert_eq!(
            parse("cut a@h1 | *@h2").map(|c| format!("{c:?}").contains("Host")),
            Ok(true)
        );
    }

    #[test]
    fn one_way() {
        assert_eq!(
            parse("cut a -> b,c"),
            Ok(Command::Fault(Change::Cut(Target::OneWay {
                from: names(&["a"]),
                to: names(&["b", "c"])
            })))
        );
        assert!(parse("cut a -> a").is_err());
        assert!(parse("cut a ->").is_err());
    }

    #[test]
    fn display_round_trips() {
        for line in ["cut a,b | c", "cut a -> b", "cut x@h | *@g | z"] {
            let Ok(Command::Fault(Change::Cut(target))) = parse(line) else {
                panic!("{line}")
            };
            assert_eq!(format!("cut {target}"), line);
        }
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "cut",
            "cut a",
            "cut a |",
            "cut | b",
            "cut a,,b | c",
            "cut a | a",
            "frob",
            "heal now",
            "cut a b | c",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn fault_commands() {
        let ab = vec![names(&["a"]), names(&["b"])];
        let ms = Duration::from_millis;
        assert_eq!(
            parse("isolate n1,n2"),
            Ok(Command::Fault(Change::Isolate(names(&["n1", "n2"]))))
        );
        assert_eq!(
            parse("rejoin n1"),
            Ok(Command::Fault(Change::Rejoin(names(&["n1"]))))
        );
        assert_eq!(
            parse("delay a | b 200ms"),
            Ok(Command::Fault(Change::Delay(
                ab.clone(),
                Delay {
                    base: ms(200),
                    jitter: ms(0)
                }
            )))
        );
        assert_eq!(
            parse("delay a | b 1s jitter 50ms"),
            Ok(Command::Fault(Change::Delay(
                ab.clone(),
                Delay {
                    base: ms(1000),
                    jitter: ms(50)
                }
            )))
        );
        assert_eq!(
            parse("throttle a | b 64kbps"),
            Ok(Command::Fault(Change::Throttle(
                ab.clone(),
                Rate {
                    bits_per_second: 64_000
                }
            )))
        );
        assert_eq!(
            parse("reset a | b"),
            Ok(Command::Fault(Change::Reset(ab.clone())))
        );
        assert_eq!(parse("clear a | b"), Ok(Command::Fault(Change::Clear(ab))));
        assert_eq!(parse("watch"), Ok(Command::Watch));
        assert_eq!(parse("watch Matrix"), Ok(Command::WatchMatrix));
        assert_eq!(
            parse("watch me"),
            Err("watch takes no argument or 'matrix' (watch | watch matrix), not 'me'".into())
        );
        assert_eq!(parse("sleep 2s"), Ok(Command::Sleep(ms(2000))));
        for bad in [
            "isolate",
            "delay a | b",
            "delay a | b soon",
            "delay a 200ms",
            "delay a | b 100ms jitter 200ms",
            "delay a | b 2h",
            "throttle a | b",
            "throttle a | b 64",
            "throttle a | b 0kbps",
            "throttle a | b -5kbps",
            "reset a",
            "sleep",
            "sleep 5h",
            "watch matrix now",
            "matrix now",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn units() {
        let rate = |t: &str| parse_rate(t).map(|r| r.bits_per_second);
        assert_eq!(rate("64kbps"), Ok(64_000));
        assert_eq!(rate("64Kbps"), Ok(64_000));
        assert_eq!(rate("1.5mbps"), Ok(1_500_000));
        assert_eq!(rate("100bps"), Ok(100));
        assert_eq!(rate("1gbps"), Ok(1_000_000_000));
        assert_eq!(rate("2B/s"), Ok(16));
        assert_eq!(rate("64KiB/s"), Ok(524_288));
        assert_eq!(rate("1MiB/s"), Ok(8_388_608));
        assert!(rate("1kib/s").is_err());
        let max = Duration::from_secs(10);
        assert_eq!(parse_duration("250ms", max), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s", max), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("1m", max).is_err());
        assert!(parse_duration("ms", max).is_err());
        assert!(parse_duration("1e3s", max).is_err());
        assert!(parse_duration("3", max).is_err());
        assert!(parse_duration("0.5ms", max).is_err(), "sub-millisecond");
        assert!(parse_duration("1.2345s", max).is_err(), "sub-millisecond");
        assert_eq!(
            parse_duration("1.234s", max),
            Ok(Duration::from_millis(1234))
        );
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse("heal"), Ok(Command::Fault(Change::Heal)));
        assert_eq!(parse("status"), Ok(Command::Status));
        assert_eq!(parse("NODES"), Ok(Command::Nodes));
        assert_eq!(parse("links"), Ok(Command::Links));
        assert_eq!(parse("MATRIX"), Ok(Command::Matrix));
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("quit"), Ok(Command::Quit));
    }

    /// Every word `parse` knows. Kept next to the test that checks it
    /// against HELP; a word missing here is caught by the second loop.
    const COMMAND_WORDS: &[&str] = &[
        "cut", "fix", "isolate", "rejoin", "delay", "throttle", "reset", "clear", "heal", "watch",
        "sleep", "split", "bridge", "ring", "seed", "chaos", "exempt", "unexempt", "status",
        "nodes", "links", "matrix", "help", "quit",
    ];

    #[test]
    fn help_covers_every_command_word() {
        for word in COMMAND_WORDS {
            assert!(
                HELP.iter()
                    .any(|(usage, _)| usage.split_whitespace().next() == Some(word)),
                "{word} is not in HELP"
            );
            let parsed = parse(word);
            assert!(
                !parsed
                    .as_ref()
                    .is_err_and(|why| why.starts_with("unknown command")),
                "{word}: {parsed:?}"
            );
        }
        for (usage, _) in HELP {
            let word = usage.split_whitespace().next().unwrap_or_default();
            assert!(COMMAND_WORDS.contains(&word), "{word} is in HELP only");
        }
        // Any word parse accepts must be in COMMAND_WORDS: try every
        // lower-case word of HELP's descriptions and a few more.
        for (_, what) in HELP {
            for word in what.split(|c: char| !c.is_ascii_alphabetic()) {
                let known = !parse(word)
                    .as_ref()
                    .is_err_and(|why| why.starts_with("unknown command") || why == "empty command");
                assert!(
                    !known || COMMAND_WORDS.contains(&word) || word == "exit",
                    "parse knows '{word}' but COMMAND_WORDS does not"
                );
            }
        }
        for word in MULTI_LINE_COMMANDS {
            assert!(HELP.iter().any(|(usage, _)| usage.starts_with(word)));
        }
    }

    #[test]
    fn shapes_and_seed() {
        assert_eq!(parse("split halves"), Ok(Command::Shape(Shape::Halves)));
        assert_eq!(
            parse("SPLIT Random-Halves"),
            Ok(Command::Shape(Shape::RandomHalves))
        );
        assert_eq!(parse("split one"), Ok(Command::Shape(Shape::One)));
        assert_eq!(parse("split majority"), Ok(Command::Shape(Shape::Majority)));
        assert_eq!(
            parse("split sizes 2, 2,1"),
            Ok(Command::Shape(Shape::Sizes(vec![2, 2, 1])))
        );
        assert_eq!(parse("bridge"), Ok(Command::Shape(Shape::Bridge)));
        assert_eq!(parse("ring"), Ok(Command::Shape(Shape::Ring)));
        assert_eq!(parse("seed 42"), Ok(Command::Seed(Some(42))));
        assert_eq!(parse("seed"), Ok(Command::Seed(None)));
        assert_eq!(
            parse("seed 18446744073709551615"),
            Ok(Command::Seed(Some(u64::MAX)))
        );
        assert_eq!(
            parse("exempt n1,n2"),
            Ok(Command::Fault(Change::Exempt(names(&["n1", "n2"]))))
        );
        assert_eq!(
            parse("unexempt n1"),
            Ok(Command::Fault(Change::Unexempt(names(&["n1"]))))
        );
        for bad in [
            "split",
            "split thirds",
            "split halves now",
            "split sizes",
            "split sizes 3",
            "split sizes 2,0",
            "split sizes 2,,1",
            "split sizes 2,-1",
            "split sizes 99999999999999999999,1",
            "bridge n1",
            "ring 3",
            "seed -1",
            "seed 18446744073709551616",
            "seed 1.5",
            "exempt",
            "unexempt a,",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn chaos_commands() {
        let ms = Duration::from_millis;
        assert_eq!(parse("chaos"), Ok(Command::ChaosState));
        assert_eq!(parse("chaos stop"), Ok(Command::ChaosStop));
        assert_eq!(
            parse("chaos start"),
            Ok(Command::ChaosStart(ChaosConfig::default()))
        );
        assert_eq!(
            parse("chaos start every 3s for 1s shapes halves, ring faults delay,reset seed 7"),
            Ok(Command::ChaosStart(ChaosConfig {
                seed: Some(7),
                every: ms(3000),
                hold: ms(1000),
                shapes: vec![Shape::Halves, Shape::Ring],
                faults: vec![ChaosFault::Delay, ChaosFault::Reset],
            }))
        );
        // naming only faults runs only faults
        assert_eq!(
            parse("chaos start faults isolate"),
            Ok(Command::ChaosStart(ChaosConfig {
                shapes: Vec::new(),
                faults: vec![ChaosFault::Isolate],
                ..ChaosConfig::default()
            }))
        );
        for bad in [
            "chaos go",
            "chaos stop now",
            "chaos start every",
            "chaos start every 1s for 2s",
            "chaos start every 10ms for 0s",
            "chaos start shapes",
            "chaos start shapes squares",
            "chaos start shapes sizes",
            "chaos start faults cut",
            "chaos start every 2s every 3s",
            "chaos start seed x",
            "chaos start often",
            "chaos start every 2h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn commands_print_as_they_parse() {
        for line in [
            "cut a,b | c",
            "cut a -> b",
            "fix a | b",
            "isolate a,b",
            "rejoin a",
            "delay a | b 200ms",
            "delay a | b,c 1s jitter 50ms",
            "throttle a | b 64kbps",
            "reset a | b | c",
            "clear a | b",
            "heal",
            "watch",
            "watch matrix",
            "sleep 2s",
            "split halves",
            "split random-halves",
            "split one",
            "split majority",
            "split sizes 2,2,1",
            "bridge",
            "ring",
            "seed 42",
            "seed",
            "chaos start every 5s for 2s shapes halves faults reset",
            "chaos start seed 3 every 1s for 500ms faults delay",
            "chaos stop",
            "chaos",
            "exempt a,b@h",
            "unexempt a",
            "status",
            "nodes",
            "links",
            "matrix",
            "help",
            "quit",
        ] {
            let command = parse(line).unwrap_or_else(|why| panic!("{line}: {why}"));
            assert_eq!(command.to_string(), line);
        }
    }

    /// What chaos applies parses back as the same control commands, and a
    /// run's config as the `chaos start` that recreates it.
    #[test]
    fn chaos_plans_parse_back_as_commands() {
        use crate::partition::chaos_plan::{Planner, CHAOS_FAULTS};
        let config = ChaosConfig {
            faults: CHAOS_FAULTS.iter().map(|(_, fault)| *fault).collect(),
            ..ChaosConfig::default()
        };
        let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let mut planner = Planner::new(1, &config);
        for _ in 0..300 {
            let step = planner.next(&nodes);
            let text = step.plan.expect("5 nodes fit every action").to_string();
            for line in text.split("; ") {
                let command = parse(line).unwrap_or_else(|why| panic!("{line}: {why}"));
                assert_eq!(command.to_string(), line);
            }
        }
        let config = ChaosConfig {
            seed: Some(42),
            every: Duration::from_millis(1500),
            hold: Duration::from_secs(1),
            shapes: vec![Shape::Halves, Shape::Ring],
            faults: vec![ChaosFault::Reset],
        };
        assert_eq!(
            parse(&format!("chaos start {config}")),
            Ok(Command::ChaosStart(config))
        );
    }
}
