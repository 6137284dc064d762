//! The argument parsers of the control language: islands and groups of
//! node names, durations, rates, shapes and `chaos start` options. Pure;
//! each error says what was wrong and what form is expected.

use std::time::Duration;

use crate::partition::chaos_plan::{ChaosConfig, ChaosFault, CHAOS_FAULTS, MIN_EVERY};
use crate::partition::rules::format_duration;
use crate::partition::shapes::{Shape, CHAOS_SHAPES};
use crate::partition::{Change, Delay, Islands, Pattern, Rate, Target};

/// `halves`, `random-halves`, `one`, `majority`, `sizes 2,2,1`.
pub fn parse_split(text: &str) -> Result<Shape, String> {
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

pub fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("bad seed '{}' (a whole number up to 2^64-1)", text.trim()))
}

/// What a `chaos` line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChaosWords {
    Start(ChaosConfig),
    Stop,
    /// Bare `chaos`.
    State,
}

/// `start [seed N] [every D] [for D] [shapes a,b] [faults c,d]`, `stop`, or
/// nothing.
pub fn parse_chaos(text: &str) -> Result<ChaosWords, String> {
    const USAGE: &str =
        "chaos start [seed N] [every 5s] [for 2s] [shapes halves,...] [faults delay,...] | chaos stop | chaos";
    let mut words = text.split_whitespace();
    match words.next().map(str::to_ascii_lowercase).as_deref() {
        None => return Ok(ChaosWords::State),
        Some("stop") if words.next().is_none() => return Ok(ChaosWords::Stop),
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
    Ok(ChaosWords::Start(config))
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

/// `A,B | C,D [| E]` or `A -> B`, for `command` (`cut` or `fix`).
pub fn parse_target(command: &str, text: &str) -> Result<Target, String> {
    let islands_usage = format!("{command} A,B | C,D");
    let one_way_usage = format!("{command} A -> B");
    if text.is_empty() {
        return Err(format!(
            "{command} needs islands: {islands_usage} or {one_way_usage}"
        ));
    }
    if let Some((from, to)) = text.split_once("->") {
        let missing = |side: &str| format!("nothing {side} -> in '{text}': {one_way_usage}");
        if from.trim().is_empty() {
            return Err(missing("before"));
        }
        if to.trim().is_empty() {
            return Err(missing("after"));
        }
        let from = parse_group(from, &one_way_usage)?;
        let to = parse_group(to, &one_way_usage)?;
        if from.iter().any(|name| to.contains(name)) {
            return Err("a node cannot be on both sides of ->".to_owned());
        }
        return Ok(Target::OneWay { from, to });
    }
    parse_islands(command, text, &islands_usage).map(Target::Islands)
}

/// `A,B | C,D [| E]`: at least two islands, none empty, no name twice.
/// Errors end with `usage`, the form `command` takes.
pub fn parse_islands(command: &str, text: &str, usage: &str) -> Result<Islands, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{command} needs islands: {usage}"));
    }
    let parts: Vec<&str> = text.split('|').collect();
    if let Some(empty) = parts.iter().position(|part| part.trim().is_empty()) {
        let number = empty + 1;
        return Err(format!("island {number} of '{text}' is empty: {usage}"));
    }
    if parts.len() < 2 {
        return Err(format!("{command} needs two islands or more: {usage}"));
    }
    let islands = parts
        .into_iter()
        .map(|part| parse_group(part, usage))
        .collect::<Result<Islands, String>>()?;
    let mut seen: Vec<&Pattern> = Vec::new();
    for name in islands.iter().flatten() {
        if seen.contains(&name) {
            return Err(format!("{name} is named twice"));
        }
        seen.push(name);
    }
    Ok(islands)
}

/// `isolate N[,M...]` and the like: the names after `command`.
pub fn parse_names(command: &str, text: &str) -> Result<Vec<Pattern>, String> {
    let usage = format!("{command} N");
    if text.trim().is_empty() {
        return Err(format!("{command} needs a node name: {usage}"));
    }
    parse_group(text, &usage)
}

/// Longest `sleep`.
pub const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Longest `delay` (and jitter).
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// `A | B 200ms jitter 50ms` → (`A | B`, [`200ms`, `jitter`, `50ms`]): the
/// islands, and the words after the last island's names. A word right
/// after the last `|` that `is_argument` takes is not a name: that island
/// is empty (`a | 200ms`).
fn split_arguments(text: &str, is_argument: fn(&str) -> bool) -> (String, Vec<String>) {
    let (before, last) = match text.rsplit_once('|') {
        Some((before, last)) => (Some(before), last),
        None => (None, text),
    };
    // `b , c 200ms`: the spaces around a comma do not end the names.
    let last = last.split(',').map(str::trim).collect::<Vec<_>>().join(",");
    let mut words: Vec<String> = last.split_whitespace().map(str::to_owned).collect();
    let group = match words.first() {
        Some(first) if !is_argument(first) => words.remove(0),
        _ => String::new(),
    };
    let islands = match before {
        Some(before) => format!("{} | {group}", before.trim()),
        None => group,
    };
    (islands.trim().to_owned(), words)
}

/// `A | B 64kbps`.
pub fn parse_throttle(text: &str) -> Result<Change, String> {
    const USAGE: &str = "throttle A | B 64kbps";
    let (islands, words) = split_arguments(text, |word| parse_rate(word).is_ok());
    let islands = parse_islands("throttle", &islands, USAGE)?;
    let rate = match words.as_slice() {
        [] => return Err(format!("throttle needs a rate: {USAGE}")),
        [rate] => parse_rate(rate).map_err(|why| format!("{why}: {USAGE}"))?,
        [_, extra, ..] => return Err(format!("'{extra}' after the rate: {USAGE}")),
    };
    Ok(Change::Throttle(islands, rate))
}

/// `A | B 200ms [jitter 50ms]`.
pub fn parse_delay(text: &str) -> Result<Change, String> {
    const USAGE: &str = "delay A | B 200ms [jitter 50ms]";
    let is_argument = |word: &str| word == "jitter" || parse_duration(word, MAX_DELAY).is_ok();
    let (islands, words) = split_arguments(text, is_argument);
    let islands = parse_islands("delay", &islands, USAGE)?;
    let duration =
        |word: &str| parse_duration(word, MAX_DELAY).map_err(|why| format!("{why}: {USAGE}"));
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let (base, jitter) = match words.as_slice() {
        [] | ["jitter", ..] => return Err(format!("delay needs a duration: {USAGE}")),
        [base] => (duration(base)?, Duration::ZERO),
        [_, "jitter"] => return Err(format!("jitter needs a duration: {USAGE}")),
        [base, "jitter", jitter] => (duration(base)?, duration(jitter)?),
        [_, extra, ..] => return Err(format!("'{extra}' after the duration: {USAGE}")),
    };
    if jitter > base {
        return Err("jitter cannot exceed the delay".to_owned());
    }
    Ok(Change::Delay(islands, Delay { base, jitter }))
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

/// `a, b ,c` → patterns; errors end with `usage`.
pub fn parse_group(text: &str, usage: &str) -> Result<Vec<Pattern>, String> {
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    if names.iter().any(|name| name.is_empty()) {
        return Err(format!("empty node name in '{}': {usage}", text.trim()));
    }
    names
        .into_iter()
        .map(|name| Pattern::parse(name).map_err(|err| format!("{err}: {usage}")))
        .collect()
}
