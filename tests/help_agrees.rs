//! `epmdpxy --help`, `help` on the control port, the control grammar's
//! HELP table, docs/control-protocol.md and README.md must list the same
//! control commands: adding a command without documenting it fails here.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use epmdpxy::control::help::HELP;

/// First word of every usage line in the HELP table.
fn from_help_table() -> BTreeSet<String> {
    HELP.iter()
        .filter_map(|(usage, _)| usage.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The comma-separated list under "Control commands" in `--help`.
fn from_cli_help() -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_epmdpxy"))
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text
        .lines()
        .skip_while(|line| !line.contains("Control commands"));
    lines.next().expect("--help has a 'Control commands' note");
    // the list runs until the pointer to the grammar
    let list: Vec<&str> = lines
        .take_while(|line| !line.contains("(grammar"))
        .collect();
    assert!(
        !list.is_empty(),
        "the command list follows the note:\n{text}"
    );
    list.join(",")
        .split(',')
        .map(|word| word.trim().to_owned())
        .filter(|word| !word.is_empty())
        .collect()
}

/// Every backticked word that starts a `### ` heading of the protocol doc.
fn from_protocol_doc() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/control-protocol.md"
    ))
    .expect("docs/control-protocol.md");
    let mut words = BTreeSet::new();
    for heading in doc.lines().filter(|line| line.starts_with("### ")) {
        for quoted in heading.split('`').skip(1).step_by(2) {
            if let Some(word) = quoted.split_whitespace().next() {
                words.insert(word.to_owned());
            }
        }
    }
    words
}

/// The first word of each row of README's control command table.
fn from_readme() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .lines()
        .skip_while(|line| !line.starts_with("| command |"))
        .skip(2);
    let mut words = BTreeSet::new();
    for row in table.take_while(|line| line.starts_with('|')) {
        for quoted in row
            .split('|')
            .nth(1)
            .unwrap_or_default()
            .split('`')
            .skip(1)
            .step_by(2)
        {
            if let Some(word) = quoted.split_whitespace().next() {
                words.insert(word.to_owned());
            }
        }
    }
    words
}

#[test]
fn every_list_of_commands_agrees() {
    let table = from_help_table();
    assert!(table.len() >= 23, "HELP lists too little: {table:?}");
    assert_eq!(from_cli_help(), table, "`epmdpxy --help` vs the HELP table");
    assert_eq!(
        from_protocol_doc(),
        table,
        "docs/control-protocol.md headings vs the HELP table"
    );
    assert_eq!(
        from_readme(),
        table,
        "README's command table vs the HELP table"
    );
}

/// The control `help` answer, read back: its header, and each usage with
/// its description (a description may continue on indented lines).
fn control_help(proxy: &common::Proxy) -> (String, Vec<(String, String)>) {
    let reply = proxy.ctl("help");
    let mut lines = reply.lines();
    let head = lines.next().unwrap_or_default().to_owned();
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in lines.take_while(|line| *line != "END") {
        match (line.starts_with(' '), entries.last_mut()) {
            (true, Some((_, what))) => {
                what.push(' ');
                what.push_str(line.trim());
            }
            _ => {
                let (usage, what) = line.split_once("  ").unwrap_or((line, ""));
                entries.push((usage.trim().to_owned(), what.trim().to_owned()));
            }
        }
    }
    (head, entries)
}

#[test]
fn control_help_lists_the_table() {
    let proxy = common::Proxy::start(&[]);
    let (head, entries) = control_help(&proxy);
    assert_eq!(head, format!("OK {} commands", HELP.len()));
    let words: BTreeSet<String> = entries
        .iter()
        .filter_map(|(usage, _)| usage.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert_eq!(words, from_help_table(), "control `help` vs the HELP table");
    // Every usage and description, whole, in order, however wrapped.
    let table: Vec<(String, String)> = HELP
        .iter()
        .map(|(usage, what)| (usage.to_string(), what.to_string()))
        .collect();
    assert_eq!(entries, table);
}

/// A terminal shows `help` without wrapping it: no line is wider than
/// `help::WIDTH` (the `chaos start` line once took 206 columns).
#[test]
fn control_help_fits_its_width() {
    let proxy = common::Proxy::start(&[]);
    let reply = proxy.ctl("help");
    let wide: Vec<&str> = reply
        .lines()
        .filter(|line| line.chars().count() > epmdpxy::control::help::WIDTH)
        .collect();
    assert!(
        wide.is_empty(),
        "lines wider than the width:\n{}",
        wide.join("\n")
    );
}

/// The words between the first `open` after `marker` and the next `close`
/// in `file` (under docs/examples/), without quotes and commas.
fn helper_list(file: &str, marker: &str, open: char, close: char) -> Vec<String> {
    let path = format!("{}/docs/examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let after = text
        .split_once(marker)
        .unwrap_or_else(|| panic!("{file} has no {marker}"))
        .1;
    let list = after
        .split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .unwrap_or_else(|| panic!("{file}: no list after {marker}"))
        .0;
    list.split([',', ' '])
        .map(|word| word.trim().trim_matches('"'))
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The Erlang and Elixir helpers carry a copy of the commands whose
/// answer ends with `END`: a command missing there hangs their reader.
#[test]
fn the_helpers_know_every_multi_line_command() {
    use epmdpxy::control::command::MULTI_LINE_COMMANDS;
    let want: Vec<String> = MULTI_LINE_COMMANDS.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        helper_list("epmdpxy_ctl.erl", "-define(MULTI_LINE,", '[', ']'),
        want,
        "docs/examples/epmdpxy_ctl.erl"
    );
    assert_eq!(
        helper_list("epmdpxy_ctl.ex", "@multi_line ~w", '(', ')'),
        want,
        "docs/examples/epmdpxy_ctl.ex"
    );
}
