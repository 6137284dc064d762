//! The control language: one command per line, parsed by pure functions.
//!
//! ```text
//! cut A,B | C,D [| E...]     cut every pair across different islands
//! cut A -> B                 one way: bytes from A to B are held
//! fix <same forms>           undo exactly that cut
//! heal                       remove every fault
//! status | nodes | links | help | quit
//! ```

use crate::partition::{Islands, Pattern};

/// A parsed control command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Cut(Target),
    Fix(Target),
    Heal,
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

/// The commands whose answer spans several lines, ending with [`END`].
pub const MULTI_LINE_COMMANDS: &[&str] = &["status", "nodes", "links", "help"];

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
    ("heal", "remove every fault"),
    (
        "status",
        "every fault in force, in the syntax that creates it",
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
        "heal" => no_arguments(Command::Heal),
        "status" => no_arguments(Command::Status),
        "nodes" => no_arguments(Command::Nodes),
        "links" => no_arguments(Command::Links),
        "help" => no_arguments(Command::Help),
        "quit" | "exit" => no_arguments(Command::Quit),
        "" => Err("empty command".to_owned()),
        other => Err(format!("unknown command '{other}' (try help)")),
    }
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
    Ok(Target::Islands(islands))
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
    fn simple_commands() {
        assert_eq!(parse("heal"), Ok(Command::Heal));
        assert_eq!(parse("status"), Ok(Command::Status));
        assert_eq!(parse("NODES"), Ok(Command::Nodes));
        assert_eq!(parse("links"), Ok(Command::Links));
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("quit"), Ok(Command::Quit));
    }

    #[test]
    fn help_covers_every_command_word() {
        for word in [
            "cut", "fix", "heal", "status", "nodes", "links", "help", "quit",
        ] {
            assert!(
                HELP.iter()
                    .any(|(usage, _)| usage.split_whitespace().next() == Some(word)),
                "{word}"
            );
        }
        for word in MULTI_LINE_COMMANDS {
            assert!(HELP.iter().any(|(usage, _)| usage.starts_with(word)));
        }
    }
}
