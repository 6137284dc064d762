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

#[test]
fn control_help_lists_the_table() {
    let proxy = common::Proxy::start(&[]);
    let reply = proxy.ctl("help");
    let mut lines = reply.lines();
    assert_eq!(
        lines.next().map(|l| l.starts_with("OK")),
        Some(true),
        "{reply}"
    );
    let words: BTreeSet<String> = lines
        .take_while(|line| *line != "END")
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert_eq!(words, from_help_table(), "control `help` vs the HELP table");
}
