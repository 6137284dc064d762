//! The control language: one command per line, parsed by pure functions.
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
//! sleep 2s                   wait (for scripts)
//! split halves|random-halves|one|majority|sizes 2,2,1
//! bridge | ring               the Jepsen shapes (see partition::shapes)
//! seed [N]                    the seed of the random shapes
//! chaos start [seed N] [every 5s] [for 2s] [shapes a,b] [faults c,d]
//! chaos stop | chaos          stop (and heal) | show the run
//! exempt N / unexempt N       N is never cut, isolated, delayed or reset
//! status | nodes | links | help | quit
//! ```

use std::fmt;
use std::time::Duration;

use super::chaos::{ChaosConfig, ChaosFault, CHAOS_FAULTS, MIN_EVERY};
use crate::partition::shapes::{Shape, CHAOS_SHAPES};
use crate::partition::{format_duration, Delay, Islands, Pattern, Rate};

/// A parsed control command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Cut(Target),
    Fix(Target),
    Isolate(Vec<Pattern>),
    Rejoin(Vec<Pattern>),
    Delay(Islands, Delay),
    Throttle(Islands, Rate),
    Reset(Islands),
    Clear(Islands),
    Heal,
    Watch,
    Sleep(Duration),
    /// `split ...`, `bridge`, `ring`.
    Shape(Shape),
    /// `seed N` sets the seed; bare `seed` shows it.
    Seed(Option<u64>),
    ChaosStart(ChaosConfig),
    ChaosStop,
    /// Bare `chaos`: is a run going?
    ChaosState,
    Exempt(Vec<Pattern>),
    Unexempt(Vec<Pattern>),
    Status,
    Nodes,
    Links,
    Help,
    Quit,
}

/// What a `cut` or `fix` applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every pair across different islands, both ways.
    Islands(Islands),
    /// One direction between two groups.
    OneWay {
        from: Vec<Pattern>,
        to: Vec<Pattern>,
    },
}

impl Target {
    /// Every pattern named.
    pub fn patterns(&self) -> Vec<&Pattern> {
        match self {
            Target::Islands(islands) => islands.iter().flatten().collect(),
            Target::OneWay { from, to } => from.iter().chain(to).collect(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = |names: &[Pattern]| {
            names
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Target::Islands(islands) => {
                let text: Vec<String> = islands.iter().map(|island| group(island)).collect();
                f.write_str(&text.join(" | "))
            }
            Target::OneWay { from, to } => write!(f, "{} -> {}", group(from), group(to)),
        }
    }
}

/// Names joined with commas.
fn group_text(names: &[Pattern]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Islands as `a,b | c`.
pub fn islands_text(islands: &Islands) -> String {
    islands
        .iter()
        .map(|island| group_text(island))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The line that parses back to the command.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Cut(target) => write!(f, "cut {target}"),
            Command::Fix(target) => write!(f, "fix {target}"),
            Command::Isolate(nodes) => write!(f, "isolate {}", group_text(nodes)),
            Command::Rejoin(nodes) => write!(f, "rejoin {}", group_text(nodes)),
            Command::Delay(islands, delay) => {
                write!(
                    f,
                    "delay {} {}",
                    islands_text(islands),
                    format_duration(delay.base)
                )?;
                if !delay.jitter.is_zero() {
                    write!(f, " jitter {}", format_duration(delay.jitter))?;
                }
                Ok(())
            }
            Command::Throttle(islands, rate) => {
                write!(f, "throttle {} {rate}", islands_text(islands))
            }
            Command::Reset(islands) => write!(f, "reset {}", islands_text(islands)),
            Command::Clear(islands) => write!(f, "clear {}", islands_text(islands)),
            Command::Heal => f.write_str("heal"),
            Command::Watch => f.write_str("watch"),
            Command::Sleep(duration) => write!(f, "sleep {}", format_duration(*duration)),
            Command::Shape(shape) => write!(f, "{shape}"),
            Command::Seed(Some(seed)) => write!(f, "seed {seed}"),
            Command::Seed(None) => f.write_str("seed"),
            Command::ChaosStart(config) => write!(f, "chaos start {config}"),
            Command::ChaosStop => f.write_str("chaos stop"),
            Command::ChaosState => f.write_str("chaos"),
            Command::Exempt(nodes) => write!(f, "exempt {}", group_text(nodes)),
            Command::Unexempt(nodes) => write!(f, "unexempt {}", group_text(nodes)),
            Command::Status => f.write_str("status"),
            Command::Nodes => f.write_str("nodes"),
            Command::Links => f.write_str("links"),
            Command::Help => f.write_str("help"),
            Command::Quit => f.write_str("quit"),
        }
    }
}

/// The commands whose answer spans several lines, ending with [`END`]
/// (when the first line is `OK`; an `ERR` is one line).
pub const MULTI_LINE_COMMANDS: &[&str] = &["status", "nodes", "links", "help", "ring"];

/// The last line of a multi-line answer.
pub const END: &str = "END";

/// One line per command, for `help` (and the docs, which a test compares).
pub const HELP: &[(&str, &str)] = &[
    (
        "cut A,B | C,D [| E...]",
        "cut every link between nodes of different islands, both ways",
    ),
    (
        "cut A -> B",
        "cut one way: bytes from A to B are held, B to A still flow",
    ),
    ("fix A,B | C,D [| E...]", "undo that cut (also: fix A -> B)"),
    (
        "isolate N[,M...]",
        "cut N from every other node, including nodes that register later",
    ),
    ("rejoin N[,M...]", "undo isolate"),
    (
        "delay A | B 200ms [jitter 50ms]",
        "deliver each chunk between the islands that much later, in order",
    ),
    (
        "throttle A | B 64kbps",
        "cap each link between the islands, each way (bps, kbps, mbps, gbps, B/s, KiB/s, MiB/s)",
    ),
    (
        "reset A | B",
        "close every live link between the islands now; new links are allowed",
    ),
    (
        "clear A | B",
        "remove delay and throttle between the islands",
    ),
    ("heal", "remove every fault"),
    (
        "watch",
        "stream events (nodes, links, faults), one line each, until quit",
    ),
    ("sleep 2s", "wait before answering (for scripts; ms, s, m)"),
    (
        "split halves",
        "cut the registered nodes (sorted by name) into two halves, smaller first",
    ),
    (
        "split random-halves",
        "cut random halves (random choices draw from the seed)",
    ),
    ("split one", "cut one random node from the rest"),
    ("split majority", "cut a random majority from the rest"),
    (
        "split sizes 2,2,1",
        "cut random islands of those sizes (they must add up to the node count)",
    ),
    (
        "bridge",
        "cut random halves, but one node keeps its links to both",
    ),
    (
        "ring",
        "cut so every node sees a majority and no two see the same one (one cut per line, then END)",
    ),
    (
        "seed [N]",
        "set the seed of the random shapes (no N: show it; start-up prints the first)",
    ),
    (
        "chaos start [OPTIONS]",
        "repeat: random shape or fault, hold, heal, wait; OPTIONS: seed N, every 5s, for 2s, shapes halves,random-halves,one,majority,bridge,ring, faults delay,throttle,reset,isolate",
    ),
    ("chaos stop", "stop the chaos run and heal"),
    ("chaos", "show the chaos run, if any"),
    (
        "exempt N[,M...]",
        "never cut, isolate, delay or reset N (removes the faults that name it)",
    ),
    ("unexempt N[,M...]", "undo exempt"),
    (
        "status",
        "every fault in force, in the syntax that creates it (header: seed, exempt nodes, chaos)",
    ),
    (
        "nodes",
        "registered nodes: name, real port, type, versions, creation",
    ),
    ("links", "live links: id, from, to, state, bytes each way"),
    ("help", "this list"),
    ("quit", "close this session"),
];

/// Parses one line (without its line ending).
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    let word = word.to_ascii_lowercase();
    let no_arguments = |command: Command| {
        if rest.is_empty() {
            Ok(command)
        } else {
            Err(format!("{word} takes no arguments"))
        }
    };
    match word.as_str() {
        "cut" => parse_target(rest).map(Command::Cut),
        "fix" => parse_target(rest).map(Command::Fix),
        "isolate" => parse_group(rest).map(Command::Isolate),
        "rejoin" => parse_group(rest).map(Command::Rejoin),
        "delay" => parse_delay(rest),
        "throttle" => {
            let (islands, rate) = split_last(rest, "throttle A | B 64kbps")?;
            Ok(Command::Throttle(
                parse_islands(islands)?,
                parse_rate(rate)?,
            ))
        }
        "reset" => parse_islands(rest).map(Command::Reset),
        "clear" => parse_islands(rest).map(Command::Clear),
        "heal" => no_arguments(Command::Heal),
        "watch" => no_arguments(Command::Watch),
        "sleep" => parse_duration(rest, MAX_SLEEP).map(Command::Sleep),
        "split" => parse_split(rest).map(Command::Shape),
        "bridge" => no_arguments(Command::Shape(Shape::Bridge)),
        "ring" => no_arguments(Command::Shape(Shape::Ring)),
        "seed" if rest.is_empty() => Ok(Command::Seed(None)),
        "seed" => parse_seed(rest).map(|seed| Command::Seed(Some(seed))),
        "chaos" => parse_chaos(rest),
        "exempt" => parse_group(rest).map(Command::Exempt),
        "unexempt" => parse_group(rest).map(Command::Unexempt),
        "status" => no_arguments(Command::Status),
        "nodes" => no_arguments(Command::Nodes),
        "links" => no_arguments(Command::Links),
        "help" => no_arguments(Command::Help),
        "quit" | "exit" => no_arguments(Command::Quit),
        "" => Err("empty command".to_owned()),
        other => Err(format!("unknown command '{other}' (try help)")),
    }
}

/// `halves`, `random-halves`, `one`, `majority`, `sizes 2,2,1`.
fn parse_split(text: &str) -> Result<Shape, String> {
    const USAGE: &str = "split halves|random-halves|one|majority|sizes 2,2,1";
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    };
    let shape = match word.to_ascii_lowercase().as_str() {
        "halves" => Shape::Halves,
        "random-halves" => Shape::RandomHalves,
        "one" => Shape::One,
        "majority" => Shape::Majority,
        "sizes" => {
            let sizes = rest
                .split(',')
                .map(|size| match size.trim().parse::<usize>() {
                    Ok(size) if (1..=MAX_NODES).contains(&size) => Ok(size),
                    _ => Err(format!("bad island size '{}' in {USAGE}", size.trim())),
                })
                .collect::<Result<Vec<usize>, String>>()?;
            if sizes.len() < 2 || sizes.len() > MAX_NODES {
                return Err(format!("split sizes needs two or more sizes, e.g. {USAGE}"));
            }
            return Ok(Shape::Sizes(sizes));
        }
        _ => return Err(format!("usage: {USAGE}")),
    };
    if rest.is_empty() {
        Ok(shape)
    } else {
        Err(format!("usage: {USAGE}"))
    }
}

/// Largest island size `split sizes` accepts (and most islands).
const MAX_NODES: usize = 100_000;

fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("bad seed '{}' (a whole number up to 2^64-1)", text.trim()))
}

/// `start [seed N] [every D] [for D] [shapes a,b] [faults c,d]`, `stop`, or
/// nothing.
fn parse_chaos(text: &str) -> Result<Command, String> {
    const USAGE: &str =
        "chaos start [seed N] [every 5s] [for 2s] [shapes halves,...] [faults delay,...] | chaos stop | chaos";
    let mut words = text.split_whitespace();
    match words.next().map(str::to_ascii_lowercase).as_deref() {
        None => return Ok(Command::ChaosState),
        Some("stop") if words.next().is_none() => return Ok(Command::ChaosStop),
        Some("start") => {}
        _ => return Err(format!("usage: {USAGE}")),
    }
    let mut config = ChaosConfig::default();
    let (mut every, mut hold, mut seed) = (None, None, None);
    let (mut shapes, mut faults) = (None, None);
    while let Some(key) = words.next() {
        let key = key.to_ascii_lowercase();
        let Some(mut value) = words.next().map(str::to_owned) else {
            return Err(format!("chaos start: '{key}' needs a value"));
        };
        if key == "shapes" || key == "faults" {
            // `a, b` is read as `a,b`
            while value.ends_with(',') {
                match words.next() {
                    Some(more) => value.push_str(more),
                    None => break,
                }
            }
        }
        let slot_taken = match key.as_str() {
            "seed" => seed.replace(parse_seed(&value)?).is_some(),
            "every" => every.replace(parse_duration(&value, MAX_SLEEP)?).is_some(),
            "for" => hold.replace(parse_duration(&value, MAX_SLEEP)?).is_some(),
            "shapes" => shapes
                .replace(parse_menu(&value, CHAOS_SHAPES, "shape")?)
                .is_some(),
            "faults" => faults
                .replace(parse_menu::<ChaosFault>(&value, CHAOS_FAULTS, "fault")?)
                .is_some(),
            _ => {
                return Err(format!(
                    "chaos start: unknown option '{key}'; usage: {USAGE}"
                ))
            }
        };
        if slot_taken {
            return Err(format!("chaos start: '{key}' given twice"));
        }
    }
    config.seed = seed;
    config.every = every.unwrap_or(config.every);
    config.hold = hold.unwrap_or(config.hold);
    if shapes.is_some() || faults.is_some() {
        // Naming either replaces the default menu.
        config.shapes = shapes.unwrap_or_default();
        config.faults = faults.unwrap_or_default();
    }
    if config.every < MIN_EVERY {
        return Err(format!(
            "chaos start: every must be at least {}",
            format_duration(MIN_EVERY)
        ));
    }
    if config.hold > config.every {
        return Err("chaos start: 'for' cannot be longer than 'every'".to_owned());
    }
    Ok(Command::ChaosStart(config))
}

/// `a,b,c` → the menu items of those names.
fn parse_menu<T: Clone>(text: &str, menu: &[(&str, T)], what: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .map(|name| {
            let name = name.trim().to_ascii_lowercase();
            menu.iter()
                .find(|(known, _)| *known == name)
                .map(|(_, item)| item.clone())
                .ok_or_else(|| {
                    let known: Vec<&str> = menu.iter().map(|(known, _)| *known).collect();
                    format!("unknown {what} '{name}' (one of {})", known.join(","))
                })
        })
        .collect()
}

/// `A,B | C,D [| E]` or `A -> B`.
fn parse_target(text: &str) -> Result<Target, String> {
    if text.is_empty() {
        return Err("expected islands, e.g. cut a,b | c".to_owned());
    }
    if let Some((from, to)) = text.split_once("->") {
        let from = parse_group(from)?;
        let to = parse_group(to)?;
        if from.iter().any(|name| to.contains(name)) {
            return Err("a node cannot be on both sides of ->".to_owned());
        }
        return Ok(Target::OneWay { from, to });
    }
    parse_islands(text).map(Target::Islands)
}

/// `A,B | C,D [| E]`: at least two islands, no name twice.
fn parse_islands(text: &str) -> Result<Islands, String> {
    if text.is_empty() {
        return Err("expected islands, e.g. a,b | c".to_owned());
    }
    let islands = text
        .split('|')
        .map(parse_group)
        .collect::<Result<Islands, String>>()?;
    if islands.len() < 2 {
        return Err("expected at least two islands separated by |".to_owned());
    }
    let mut seen: Vec<&Pattern> = Vec::new();
    for name in islands.iter().flatten() {
        if seen.contains(&name) {
            return Err(format!("{name} is named twice"));
        }
        seen.push(name);
    }
    Ok(islands)
}

/// Longest `sleep`.
pub const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Longest `delay` (and jitter).
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// Splits off the last whitespace-separated word: `a | b 64kbps` →
/// (`a | b`, `64kbps`).
fn split_last<'t>(text: &'t str, usage: &str) -> Result<(&'t str, &'t str), String> {
    match text.rsplit_once(char::is_whitespace) {
        Some((rest, last)) if !rest.trim().is_empty() => Ok((rest.trim(), last)),
        _ => Err(format!("usage: {usage}")),
    }
}

/// `A | B 200ms [jitter 50ms]`.
fn parse_delay(text: &str) -> Result<Command, String> {
    const USAGE: &str = "delay A | B 200ms [jitter 50ms]";
    let (rest, last) = split_last(text, USAGE)?;
    let (islands, base, jitter) = match split_last(rest, USAGE) {
        Ok((head, "jitter")) => {
            let (islands, base) = split_last(head, USAGE)?;
            (islands, base, parse_duration(last, MAX_DELAY)?)
        }
        _ => (rest, last, Duration::ZERO),
    };
    let base = parse_duration(base, MAX_DELAY)?;
    if jitter > base {
        return Err("jitter cannot exceed the delay".to_owned());
    }
    Ok(Command::Delay(
        parse_islands(islands)?,
        Delay { base, jitter },
    ))
}

/// `1.5mbps` → (1.5, "mbps"): a plain decimal number, then its unit.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit))
}

/// `200ms`, `2s`, `1.5s`, `1m`, up to `max`.
pub fn parse_duration(text: &str, max: Duration) -> Result<Duration, String> {
    let text = text.trim();
    let (value, unit) =
        number_and_unit(text).ok_or_else(|| format!("bad duration '{text}' (e.g. 200ms, 2s)"))?;
    let millis = match unit {
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => return Err(format!("bad duration '{text}': unit must be ms, s or m")),
    };
    // Whole milliseconds only, so `status` prints exactly what is in force.
    if !millis.is_finite() || (millis - millis.round()).abs() > 1e-6 {
        return Err(format!(
            "bad duration '{text}': durations are whole milliseconds"
        ));
    }
    let duration = Duration::from_millis(millis.round() as u64);
    if duration > max {
        return Err(format!(
            "duration '{text}' is longer than {}s",
            max.as_secs()
        ));
    }
    Ok(duration)
}

/// `64kbps`, `1.5mbps`, `512KiB/s`...: bit units are powers of 1000 (case
/// does not matter), byte units powers of 1024.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let (value, unit) =
        number_and_unit(text).ok_or_else(|| format!("bad rate '{text}' (e.g. 64kbps)"))?;
    let bits_per_unit = match unit.to_ascii_lowercase().as_str() {
        "bps" => 1.0,
        "kbps" => 1e3,
        "mbps" => 1e6,
        "gbps" => 1e9,
        _ => match unit {
            "B/s" => 8.0,
            "KiB/s" => 8.0 * 1024.0,
            "MiB/s" => 8.0 * 1024.0 * 1024.0,
            _ => {
                return Err(format!(
                    "bad rate '{text}': unit must be bps, kbps, mbps, gbps, B/s, KiB/s or MiB/s"
                ))
            }
        },
    };
    let bits = value * bits_per_unit;
    if !(8.0..=1e12).contains(&bits) {
        return Err(format!("rate '{text}' out of range (1 B/s to 1000 gbps)"));
    }
    Ok(Rate {
        bits_per_second: bits.round() as u64,
    })
}

/// `a, b ,c` → patterns.
fn parse_group(text: &str) -> Result<Vec<Pattern>, String> {
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    if names.iter().any(|name| name.is_empty()) {
        return Err(format!("empty node name in '{}'", text.trim()));
    }
    names
        .into_iter()
        .map(|name| Pattern::parse(name).map_err(|err| err.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<Pattern> {
        list.iter()
            .map(|name| Pattern::parse(name).expect("valid"))
            .collect()
    }

    #[test]
    fn cut_islands() {
        let parsed = parse("cut node1,node2 | node3,node4,node5").expect("parses");
        let expected = Command::Cut(Target::Islands(vec![
            names(&["node1", "node2"]),
            names(&["node3", "node4", "node5"]),
        ]));
        assert_eq!(parsed, expected);
        assert_eq!(
            parse("  CUT a|b|c  "),
            Ok(Command::Cut(Target::Islands(vec![
                names(&["a"]),
                names(&["b"]),
                names(&["c"])
            ])))
        );
        assert_eq!(
            parse("fix a , b|c"),
            Ok(Command::Fix(Target::Islands(vec![
                names(&["a", "b"]),
                names(&["c"])
            ])))
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
            Ok(Command::Cut(Target::OneWay {
                from: names(&["a"]),
                to: names(&["b", "c"])
            }))
        );
        assert!(parse("cut a -> a").is_err());
        assert!(parse("cut a ->").is_err());
    }

    #[test]
    fn display_round_trips() {
        for line in ["cut a,b | c", "cut a -> b", "cut x@h | *@g | z"] {
            let Ok(Command::Cut(target)) = parse(line) else {
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
            Ok(Command::Isolate(names(&["n1", "n2"])))
        );
        assert_eq!(parse("rejoin n1"), Ok(Command::Rejoin(names(&["n1"]))));
        assert_eq!(
            parse("delay a | b 200ms"),
            Ok(Command::Delay(
                ab.clone(),
                Delay {
                    base: ms(200),
                    jitter: ms(0)
                }
            ))
        );
        assert_eq!(
            parse("delay a | b 1s jitter 50ms"),
            Ok(Command::Delay(
                ab.clone(),
                Delay {
                    base: ms(1000),
                    jitter: ms(50)
                }
            ))
        );
        assert_eq!(
            parse("throttle a | b 64kbps"),
            Ok(Command::Throttle(
                ab.clone(),
                Rate {
                    bits_per_second: 64_000
                }
            ))
        );
        assert_eq!(parse("reset a | b"), Ok(Command::Reset(ab.clone())));
        assert_eq!(parse("clear a | b"), Ok(Command::Clear(ab)));
        assert_eq!(parse("watch"), Ok(Command::Watch));
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
            "watch me",
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
        assert_eq!(parse("heal"), Ok(Command::Heal));
        assert_eq!(parse("status"), Ok(Command::Status));
        assert_eq!(parse("NODES"), Ok(Command::Nodes));
        assert_eq!(parse("links"), Ok(Command::Links));
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("quit"), Ok(Command::Quit));
    }

    /// Every word `parse` knows. Kept next to the test that checks it
    /// against HELP; a word missing here is caught by the second loop.
    const COMMAND_WORDS: &[&str] = &[
        "cut", "fix", "isolate", "rejoin", "delay", "throttle", "reset", "clear", "heal", "watch",
        "sleep", "split", "bridge", "ring", "seed", "chaos", "exempt", "unexempt", "status",
        "nodes", "links", "help", "quit",
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
            Ok(Command::Exempt(names(&["n1", "n2"])))
        );
        assert_eq!(parse("unexempt n1"), Ok(Command::Unexempt(names(&["n1"]))));
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
            "help",
            "quit",
        ] {
            let command = parse(line).unwrap_or_else(|why| panic!("{line}: {why}"));
            assert_eq!(command.to_string(), line);
        }
    }
}
