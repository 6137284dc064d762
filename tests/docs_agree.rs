//! The numbers and texts the docs quote, read from the binary and the
//! code, so that they cannot drift again (issue 17, items 2, 6 and 8):
//! the `help` count, the `status` header, singular counts, every limit in
//! docs/limits.md, the defaults `--help` gives and README repeats, the
//! HELP rows shapes-and-chaos.md copies, every test the docs name, every
//! link between the docs, and the newcomer's first steps in README.
//! (`help_agrees.rs` keeps the lists of commands in step.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use epmdpxy::control::help::HELP;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// README.md and every docs/*.md, by path.
fn docs() -> BTreeMap<String, String> {
    let mut docs = BTreeMap::new();
    docs.insert("README.md".to_owned(), read("README.md"));
    let dir = std::fs::read_dir(Path::new(ROOT).join("docs")).expect("docs/");
    for entry in dir.map(|entry| entry.expect("docs entry").path()) {
        if entry.extension().is_some_and(|ext| ext == "md") {
            let name = entry.file_name().expect("name").to_string_lossy();
            let path = format!("docs/{name}");
            docs.insert(path.clone(), read(&path));
        }
    }
    docs
}

/// Every `(path, line number, line, number)` of the docs where `word`
/// follows a number: `OK 32 commands` for `commands`.
fn counted(word: &str) -> Vec<(String, usize, String, usize)> {
    let mut found = Vec::new();
    for (path, text) in docs() {
        for (index, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            for pair in words.windows(2) {
                let noun = pair[1].trim_matches(|c: char| !c.is_alphanumeric());
                if let (Ok(n), true) = (
                    pair[0].trim_start_matches('(').parse::<usize>(),
                    noun == word,
                ) {
                    found.push((path.clone(), index + 1, line.to_owned(), n));
                }
            }
        }
    }
    found
}

/// The first line of the control port's answer to `command`.
fn head(proxy: &common::Proxy, command: &str) -> String {
    proxy
        .ctl(command)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_help_count_the_docs_quote_is_the_binarys() {
    let proxy = common::Proxy::start(&[]);
    let want = head(&proxy, "help");
    assert_eq!(want, format!("OK {} commands", HELP.len()));
    let quoted = counted("commands");
    assert!(!quoted.is_empty(), "the docs quote no `OK N commands`");
    for (path, number, line, n) in quoted {
        assert_eq!(
            n,
            HELP.len(),
            "{path}:{number}: {line}\nthe binary says {want}"
        );
    }
}

/// `OK 2 faults seed=42 exempt=runner`: the form `status` answers in.
fn is_status_header(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let (Some("OK"), Some(n), Some(noun), Some(seed)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    let Ok(n) = n.parse::<usize>() else {
        return false;
    };
    let noun_fits = noun == if n == 1 { "fault" } else { "faults" };
    let seed_fits = seed
        .strip_prefix("seed=")
        .is_some_and(|s| s.parse::<u64>().is_ok());
    let rest_fits = words.all(|w| w.starts_with("exempt=") || w == "chaos=running");
    noun_fits && seed_fits && rest_fits
}

#[test]
fn every_status_header_the_docs_show_is_one_the_binary_prints() {
    let proxy = common::Proxy::start(&["--seed", "42"]);
    assert!(is_status_header(&head(&proxy, "status")));
    proxy.ctl_ok("cut a | b");
    let one = head(&proxy, "status");
    assert_eq!(one, "OK 1 fault seed=42");
    assert!(is_status_header(&one));
    let mut shown = 0;
    for (path, text) in docs() {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim().trim_matches('`');
            let words: Vec<&str> = line.split_whitespace().take(3).collect();
            if let ["OK", n, noun] = words.as_slice() {
                let is_count = n.parse::<usize>().is_ok();
                if is_count && (*noun == "faults" || *noun == "fault") {
                    shown += 1;
                    assert!(
                        is_status_header(line),
                        "{path}:{}: `{line}` is not how `status` answers (e.g. `{one}`)",
                        index + 1
                    );
                }
            }
        }
    }
    assert!(shown >= 3, "the docs show `status` answers: {shown}");
}

/// Nouns the replies count; `1 <noun>s` is never right.
const COUNTED: &[&str] = &[
    "fault", "node", "link", "command", "cut", "step", "event", "rule", "pair", "byte",
];

#[test]
fn no_doc_says_one_of_a_plural() {
    let mut wrong = Vec::new();
    for (path, text) in docs() {
        for (index, line) in text.lines().enumerate() {
            let words: Vec<&str> = line
                .split_whitespace()
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                .filter(|w| *w != "live") // `1 live links`
                .collect();
            for pair in words.windows(2) {
                let plural = COUNTED.iter().any(|noun| pair[1] == format!("{noun}s"));
                if pair[0] == "1" && plural {
                    wrong.push(format!("{path}:{}: {line}", index + 1));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "one of a plural:\n{}", wrong.join("\n"));
}

/// The cells of the docs/limits.md row whose first cell starts with `label`.
fn limits_row(limits: &str, label: &str) -> Vec<String> {
    let row = limits
        .lines()
        .find(|line| line.starts_with(&format!("| {label}")))
        .unwrap_or_else(|| panic!("docs/limits.md has no row '{label}'"));
    row.split(" | ")
        .map(|cell| cell.trim_matches(['|', ' ']).to_owned())
        .collect()
}

/// `--help`'s option descriptions, by long name, continuation lines joined.
fn cli_options() -> BTreeMap<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_epmdpxy"))
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut options: BTreeMap<String, String> = BTreeMap::new();
    let mut current = None;
    for line in text.lines().skip_while(|line| *line != "Options:").skip(1) {
        if line.trim().is_empty() {
            break;
        }
        let trimmed = line.trim_start();
        let mut described = Vec::new();
        if trimmed.starts_with('-') && line.len() - trimmed.len() == 2 {
            let mut words = trimmed.split_whitespace().peekable();
            while let Some(word) = words.next_if(|w| w.starts_with('-')) {
                if let Some(long) = word.trim_end_matches(',').strip_prefix("--") {
                    current = Some(long.to_owned());
                }
            }
            described.extend(words);
        } else {
            described.extend(trimmed.split_whitespace());
        }
        if let Some(name) = &current {
            let entry = options.entry(name.clone()).or_default();
            for word in described {
                if !entry.is_empty() {
                    entry.push(' ');
                }
                entry.push_str(word);
            }
        }
    }
    options
}

/// The number after `(default: ` in `--help` for `--name`.
fn cli_default(options: &BTreeMap<String, String>, name: &str) -> String {
    let text = options
        .get(name)
        .unwrap_or_else(|| panic!("--help has no --{name}"));
    let after = text.split_once("(default: ").map(|(_, rest)| rest);
    let value = after.and_then(|rest| rest.split([')', ';', ' ']).next());
    value
        .unwrap_or_else(|| panic!("--{name} gives no default: {text}"))
        .to_owned()
}

/// `8 KiB`, `1 MiB`.
fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{} KiB", b / 1024),
    }
}

/// Each docs/limits.md row (by the start of its first cell) and what its
/// value must say, from the code's constants and `--help`'s defaults.
fn limits_in_the_code() -> Vec<(&'static str, String)> {
    use epmdpxy::epmd::{registry, wire};
    let options = cli_options();
    let flag = |name: &str| cli_default(&options, name);
    let rules = epmdpxy::partition::rules::MAX_RULES;
    let patience = epmdpxy::proxy::ProxySettings::default().cut_patience;
    vec![
        (
            "Request size",
            format!("`L` ≤ {} bytes", wire::MAX_REQUEST_LEN),
        ),
        (
            "Time to send a complete request",
            format!("{} s", flag("packet-timeout")),
        ),
        (
            "Node name in ALIVE2",
            format!(
                "≤ {} bytes, ≤ {} UTF-8 characters",
                wire::MAX_NAME_BYTES,
                wire::MAX_NAME_CHARS
            ),
        ),
        (
            "`extra` field in ALIVE2",
            format!("≤ {} bytes", wire::MAX_EXTRA_BYTES),
        ),
        (
            "Name in PORT_PLEASE2",
            format!("1–{} UTF-8 characters", wire::MAX_NAME_CHARS),
        ),
        (
            "Old names remembered for DUMP",
            registry::MAX_OLD_NAMES.to_string(),
        ),
        (
            "Time a listener waits",
            format!("{} s", flag("listener-timeout")),
        ),
        ("Listeners waiting at once", flag("max-pending-listeners")),
        (
            "Time for the initiator's first handshake",
            format!("{} s", flag("handshake-timeout")),
        ),
        (
            "Handshake bytes examined",
            epmdpxy::proxy::handshake::MAX_SEND_NAME.to_string(),
        ),
        (
            "Copy buffer per direction",
            format!(
                "{}, growing to {}",
                size(epmdpxy::proxy::buffer::MIN_BUFFER),
                size(epmdpxy::proxy::buffer::MAX_BUFFER)
            ),
        ),
        (
            "Bytes held by a cut",
            size(epmdpxy::proxy::pump::HELD_READ_AHEAD),
        ),
        (
            "Wait for a write in progress",
            format!("{} s", patience.as_secs()),
        ),
        (
            "Line length",
            format!("{} bytes", epmdpxy::control::session::MAX_LINE),
        ),
        ("Sessions at once", flag("max-control-sessions")),
        (
            "Fault rules in force",
            format!("{},{:03}", rules / 1000, rules % 1000),
        ),
    ]
}

#[test]
fn every_limit_in_limits_md_is_the_codes() {
    let limits = read("docs/limits.md");
    let mut wrong = Vec::new();
    for (label, want) in limits_in_the_code() {
        let value = &limits_row(&limits, label)[1];
        if !value.contains(&want) {
            wrong.push(format!(
                "{label}: docs/limits.md says '{value}', the code {want}"
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn readme_repeats_the_defaults_help_gives() {
    let options = cli_options();
    let readme = read("README.md");
    let section = readme
        .split_once("## Options")
        .and_then(|(_, rest)| rest.split("\n## ").next())
        .expect("README has an Options section");
    let flat = section.split_whitespace().collect::<Vec<_>>().join(" ");
    for (name, default) in [
        ("port", "4369".to_owned()),
        ("control-port", cli_default(&options, "control-port")),
        ("control-address", cli_default(&options, "control-address")),
    ] {
        let said = flat
            .split_once(&format!("`--{name}` ("))
            .and_then(|(_, rest)| rest.split(')').next())
            .unwrap_or_else(|| panic!("README's Options do not give --{name}'s default"));
        assert!(
            said.contains(&default),
            "README: --{name} ({said}); --help: {default}"
        );
        let help = &options[name];
        assert!(help.contains(&default), "--help: --{name} {help}");
    }
    // The EPMD addresses: loopback and the host name's loopback addresses
    // (Debian's 127.0.1.1), in both.
    let help = &options["address"];
    for text in [help.as_str(), flat.as_str()] {
        assert!(text.contains("127.0.0.1") && text.contains("::1"), "{text}");
        assert!(
            text.contains("host name") && text.contains("127.0.1.1"),
            "{text}"
        );
    }
}

#[test]
fn shapes_and_chaos_copies_the_help_rows_verbatim() {
    let doc = read("docs/shapes-and-chaos.md");
    let table = doc
        .split_once("HELP rows")
        .expect("shapes-and-chaos.md quotes HELP rows")
        .1;
    let mut copied = 0;
    for row in table.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let usage = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .replace("\\|", "|");
        let what = cells[1].trim_end_matches(" |").replace("\\|", "|");
        let entry = HELP.iter().find(|(u, _)| *u == usage);
        let (_, want) = entry.unwrap_or_else(|| panic!("{usage} is not a HELP row"));
        assert_eq!(&what, want, "shapes-and-chaos.md's row for {usage}");
        copied += 1;
    }
    assert!(copied >= 10, "rows found: {copied}");
}

/// Where `tests/<file>.rs` keeps module `module`: a `#[path]` attribute
/// right before `mod module;`, else tests/<file>/<module>.rs.
fn module_file(file: &str, module: &str) -> String {
    let text = read(&format!("tests/{file}.rs"));
    let mut path = None;
    for line in text.lines() {
        if let Some(p) = line.trim().strip_prefix("#[path = \"") {
            path = p.split('"').next().map(str::to_owned);
        } else if line.trim() == format!("mod {module};") {
            return format!(
                "tests/{}",
                path.unwrap_or_else(|| format!("{file}/{module}.rs"))
            );
        } else {
            path = None;
        }
    }
    format!("tests/{file}/{module}.rs")
}

/// True if the test named `file::module::...::name` exists: a `#[test]`
/// function `name` in the file that holds that module.
fn test_exists(test: &str) -> bool {
    let parts: Vec<&str> = test.split("::").collect();
    let (Some((name, path)), true) = (parts.split_last(), parts.len() >= 2) else {
        return false;
    };
    let mut file = format!("tests/{}.rs", path[0]);
    for (depth, module) in path.iter().enumerate().skip(1) {
        if depth > 1 {
            return false; // modules of modules are not used in tests/
        }
        file = module_file(path[0], module);
    }
    let Ok(text) = std::fs::read_to_string(Path::new(ROOT).join(&file)) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        line.trim_start().starts_with(&format!("fn {name}("))
            && lines[..i]
                .iter()
                .rev()
                .take(3)
                .any(|l| l.trim() == "#[test]")
    })
}

#[test]
fn every_test_the_docs_name_exists() {
    let stems: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("tests"))
        .expect("tests/")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let stem = path.file_stem()?.to_string_lossy().into_owned();
            (path.extension()? == "rs").then_some(stem)
        })
        .collect();
    let mut named = 0;
    let mut missing = Vec::new();
    for (path, text) in docs() {
        for quoted in text.split('`').skip(1).step_by(2) {
            let Some((first, _)) = quoted.split_once("::") else {
                continue;
            };
            let last = quoted.rsplit("::").next().unwrap_or_default();
            // A test name is a sentence: `unused_proxy_listeners_expire`;
            // `chaos::start` is a function of src/.
            let sentence = last.matches('_').count() >= 2;
            if stems.iter().any(|stem| stem == first) && sentence {
                named += 1;
                if !test_exists(quoted) {
                    missing.push(format!("{path}: {quoted}"));
                }
            }
        }
        for word in text.split(|c: char| c.is_whitespace() || c == '`' || c == '(' || c == ')') {
            if let Some(file) = word.strip_prefix("tests/").filter(|w| w.ends_with(".rs")) {
                if !Path::new(ROOT).join("tests").join(file).exists() {
                    missing.push(format!("{path}: {word}"));
                }
            }
        }
    }
    assert!(named >= 15, "the docs name {named} tests");
    assert!(
        missing.is_empty(),
        "named but not found:\n{}",
        missing.join("\n")
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_link_between_the_docs_arrives() {
    let docs = docs();
    let anchors = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix('#'))
            .map(|heading| anchor(heading.trim_start_matches('#')))
            .collect()
    };
    let mut broken = Vec::new();
    for (path, text) in &docs {
        for (_, rest) in text.match_indices("](").map(|(i, _)| text.split_at(i + 2)) {
            let target = rest.split(')').next().unwrap_or_default();
            if target.starts_with("http") || !(target.contains(".md") || target.starts_with('#')) {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let dir = Path::new(path)
                .parent()
                .expect("dir")
                .to_string_lossy()
                .into_owned();
            let resolved = match (file, dir.as_str()) {
                ("", _) => path.clone(),
                (file, "") => file.to_owned(),
                (file, dir) => format!("{dir}/{file}"),
            };
            match docs.get(&resolved) {
                None => broken.push(format!("{path}: {target} (no {resolved})")),
                Some(doc)
                    if !fragment.is_empty() && !anchors(doc).contains(&fragment.to_owned()) =>
                {
                    broken.push(format!("{path}: {target} (no heading #{fragment})"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that go nowhere:\n{}",
        broken.join("\n")
    );
}

/// The text of README's `## title` section.
fn readme_section(title: &str) -> String {
    let readme = read("README.md");
    let start = readme
        .find(&format!("## {title}\n"))
        .unwrap_or_else(|| panic!("README has no '## {title}'"));
    let section = &readme[start + title.len() + 4..];
    section.split("\n## ").next().unwrap_or_default().to_owned()
}

/// A newcomer's first command must not fight a system epmd for 4369, and
/// the nodes it starts next must point at the port it chose.
#[test]
fn readme_starts_on_a_port_of_its_own() {
    let run = readme_section("Run it");
    let first = run
        .lines()
        .find(|line| line.starts_with("    "))
        .expect("a command")
        .trim();
    assert!(
        first.starts_with("cargo run --release -- --port "),
        "the first command: {first}"
    );
    let port = first
        .split_whitespace()
        .skip_while(|word| *word != "--port")
        .nth(1)
        .expect("a port");
    assert_ne!(port, "4369", "the system epmd's port");
    let nodes: Vec<&str> = run
        .lines()
        .filter(|l| l.contains("ERL_EPMD_PORT="))
        .collect();
    assert!(!nodes.is_empty(), "README starts nodes");
    for line in nodes {
        assert!(line.contains(&format!("ERL_EPMD_PORT={port} ")), "{line}");
    }
    // How to type into the control port without a netcat.
    let cut = readme_section("Cut and heal");
    assert!(cut.contains("apt-get install netcat-openbsd"), "{cut}");
    assert!(cut.contains("`epmdpxy ctl`"), "{cut}");
}

/// What OTP 25's `global` adds to a cut meets every newcomer: README says
/// it where the cut is shown, and links to the measured details.
#[test]
fn readme_warns_of_global_where_it_cuts() {
    let cut = readme_section("Cut and heal");
    let flat = cut.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("`global`"), "{flat}");
    assert!(
        flat.contains("one-way cut drops the pair both ways"),
        "{flat}"
    );
    assert!(flat.contains("empty `nodes()`"), "{flat}");
    assert!(
        flat.contains("](docs/erlang.md#5-what-otp-25-does-in-a-partition)"),
        "{flat}"
    );
    let erlang = read("docs/erlang.md");
    assert!(erlang.contains("one-way cut drops the pair both ways"));
}
