//! A lint, run as a test: code in `src/` must not be able to panic on what
//! arrives from the network, so the constructs that panic on bad data are
//! not allowed there at all.
//!
//! The rule, checked on every `.rs` file under `src/`, outside comments,
//! string and char literals, and items marked `#[cfg(test)]`:
//!
//! - no `.unwrap()`, `.expect(`, `.unwrap_unchecked(`;
//! - no `panic!`, `unreachable!`, `todo!`, `unimplemented!`, and no
//!   `assert!`/`assert_eq!`/`assert_ne!` (nor their `debug_` forms);
//! - no indexing or slicing with `[...]` directly after an expression
//!   (`buf[0]`, `data[..n]`, `f()[i]`): use `.get(..)`, `.first()`,
//!   `split_first()`, `chunks()`, iterators. Array types, `vec![...]`,
//!   attributes and patterns are not indexing and are not flagged.
//!
//! Two ways out, each needing a reason a reviewer can check:
//!
//! - a line that ends with a comment `// no-panic: <why this cannot panic>`
//!   is exempt (e.g. a lock that is already poison-tolerant, or an index
//!   bounded by a type);
//! - [`ALLOWED_INDEXES`] below lists index expressions that are bounded by
//!   construction wherever they appear (today: a two-variant enum indexing
//!   two-element arrays).
//!
//! The scanner is a small lexer, not a parser; its own tests (at the end)
//! show what it catches and what it leaves alone.

use std::path::{Path, PathBuf};

/// Index expressions allowed after `[`, with why they cannot be out of
/// bounds.
const ALLOWED_INDEXES: &[(&str, &str)] = &[(
    "direction.index()",
    "Direction has two variants (0 and 1) and indexes only [_; 2] arrays in Link",
)];

/// Calls and macros that panic on a bad value.
const FORBIDDEN: &[&str] = &[
    ".unwrap()",
    ".expect(",
    ".unwrap_unchecked(",
    "panic!(",
    "unreachable!(",
    "todo!(",
    "unimplemented!(",
    "assert!(",
    "assert_eq!(",
    "assert_ne!(",
];

const EXEMPT_MARKER: &str = "// no-panic:";

/// One violation: file, 1-based line, what was found, the line's text.
#[derive(Debug, PartialEq, Eq)]
struct Finding {
    file: String,
    line: usize,
    what: String,
    text: String,
}

/// Replaces comments and the contents of string and char literals with
/// spaces, keeping every newline, so line numbers still match.
fn blank_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        // line comment
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        // block comment (nested)
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            continue;
        }
        // raw string: r"..", r#".."#, br"..", with any number of #
        let raw_start = match (c, next) {
            ('r', Some('"' | '#')) => Some(i + 1),
            ('b', Some('r')) if matches!(chars.get(i + 2), Some('"' | '#')) => Some(i + 2),
            _ => None,
        };
        let is_ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if let (Some(mut j), false) = (raw_start, is_ident_before) {
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                for &skipped in &chars[i..=j] {
                    out.push(blank(skipped));
                }
                i = j + 1;
                loop {
                    if i >= chars.len() {
                        break;
                    }
                    if chars[i] == '"' && (1..=hashes).all(|h| chars.get(i + h) == Some(&'#')) {
                        for _ in 0..=hashes {
                            out.push(' ');
                        }
                        i += hashes + 1;
                        break;
                    }
                    out.push(blank(chars[i]));
                    i += 1;
                }
                continue;
            }
        }
        // string (also b"..")
        if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
            continue;
        }
        // char literal ('x', '\n', '\u{..}') vs lifetime ('a)
        if c == '\'' {
            let literal_end = if next == Some('\\') {
                // '\n', '\'', '\\', '\u{..}': the quote after the escaped char
                (i + 3..chars.len()).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = literal_end {
                for _ in i..=end {
                    out.push(' ');
                }
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Blanks every item marked `#[cfg(test)]`: from the attribute to the end
/// of the item (its matching `}`, or its `;`).
fn blank_test_items(code: &str) -> String {
    let mut out: Vec<char> = code.chars().collect();
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= out.len() {
        if out[i..i + marker.len()] != marker[..] {
            i += 1;
            continue;
        }
        let mut j = i + marker.len();
        let mut depth = 0; // braces
        let mut nesting = 0; // parentheses and brackets: `[u8; 2]` has a `;`
        while j < out.len() {
            match out[j] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                '(' | '[' => nesting += 1,
                ')' | ']' => nesting -= 1,
                ';' if depth == 0 && nesting == 0 => break,
                _ => {}
            }
            j += 1;
        }
        let end = (j + 1).min(out.len());
        for c in out.iter_mut().take(end).skip(i) {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = j + 1;
    }
    out.into_iter().collect()
}

/// The findings in one file's text.
fn scan(file: &str, source: &str) -> Vec<Finding> {
    let code = blank_test_items(&blank_comments_and_literals(source));
    let mut findings = Vec::new();
    for (number, (line, raw)) in code.lines().zip(source.lines()).enumerate() {
        if raw.contains(EXEMPT_MARKER) {
            continue;
        }
        let mut found = |what: String| {
            findings.push(Finding {
                file: file.to_owned(),
                line: number + 1,
                what,
                text: raw.trim().to_owned(),
            })
        };
        for forbidden in FORBIDDEN {
            // `debug_assert!(` contains `assert!(`: one finding either way
            let mut from = 0;
            while let Some(at) = line[from..].find(forbidden) {
                let start = from + at;
                let before = line[..start].chars().next_back();
                let part_of_longer_name = forbidden.starts_with(char::is_alphabetic)
                    && before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !line[..start].ends_with("debug_");
                if !part_of_longer_name {
                    found(format!("`{forbidden}`"));
                }
                from = start + forbidden.len();
            }
        }
        let chars: Vec<char> = line.chars().collect();
        for (at, &c) in chars.iter().enumerate() {
            if c != '[' || at == 0 {
                continue;
            }
            let before = chars[at - 1];
            if !(before.is_alphanumeric() || matches!(before, '_' | ')' | ']' | '?')) {
                continue;
            }
            // the index expression, up to the matching `]` on this line
            let mut depth = 0;
            let mut end = None;
            for (k, &d) in chars.iter().enumerate().skip(at) {
                match d {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(k);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let inside: String = match end {
                Some(end) => chars[at + 1..end].iter().collect(),
                None => chars[at + 1..].iter().collect(),
            };
            let inside = inside.trim();
            if !ALLOWED_INDEXES
                .iter()
                .any(|(allowed, _)| *allowed == inside)
            {
                found(format!("indexing `[{inside}]`"));
            }
        }
    }
    findings
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn src_has_no_panicking_constructs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 5, "found only {files:?}");
    let mut findings = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("read source");
        let name = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        findings.extend(scan(&name, &source));
    }
    let report: Vec<String> = findings
        .iter()
        .map(|f| format!("  {}:{}: {} in `{}`", f.file, f.line, f.what, f.text))
        .collect();
    assert!(
        findings.is_empty(),
        "code in src/ that can panic (see tests/no_panics_in_src.rs for the rule \
         and how to justify an exception):\n{}",
        report.join("\n")
    );
    eprintln!(
        "scanned {} files in src/: no panicking constructs",
        files.len()
    );
}

// ---------------------------------------------------------------------------
// The scanner's own tests
// ---------------------------------------------------------------------------

fn whats(source: &str) -> Vec<String> {
    scan("x.rs", source).into_iter().map(|f| f.what).collect()
}

#[test]
fn scanner_catches_panicking_code() {
    let bad = r#"
fn f(buf: &[u8], v: Vec<u8>) -> u8 {
    let n = read().unwrap();
    let m = parse(buf).expect("valid");
    let first = buf[0];
    let tail = &buf[1..n];
    let x = g()[2];
    let y = v.iter().nth(1)?[0];
    assert!(n > 0);
    debug_assert_eq!(n, 1);
    if n == 9 { panic!("no") }
    unreachable!()
}
"#;
    let found = whats(bad);
    for expected in [
        "`.unwrap()`",
        "`.expect(`",
        "indexing `[0]`",
        "indexing `[1..n]`",
        "indexing `[2]`",
        "`assert!(`",
        "`assert_eq!(`",
        "`panic!(`",
        "`unreachable!(`",
    ] {
        assert!(
            found.iter().any(|w| w == expected),
            "{expected} not caught; found {found:?}"
        );
    }
    assert_eq!(found.iter().filter(|w| *w == "indexing `[0]`").count(), 2);
}

#[test]
fn scanner_leaves_safe_code_alone() {
    let fine = r##"
//! Docs may say .unwrap() and buf[0].
/// Even `x.expect("y")` in a doc comment.
#[derive(Debug)]
struct S { a: [u8; 4], b: Vec<[u8; 2]> }
fn f(bytes: &[u8], v: &mut [u8]) -> Option<u8> {
    let text = "a.unwrap() and b[0] and panic!(x)";
    let raw = r#"quoted "buf[1]" and .expect("#;
    let c = '[';
    let d = b'[';
    let [a, b] = [1u8, 2];
    let list = vec![1, 2, 3];
    let ok = bytes.get(0).copied().unwrap_or(0);
    let gate = &self.gates[direction.index()];
    let e = x.unwrap_or_else(|| 0).max(1);
    let exempt = buf[0]; // no-panic: buf has a fixed size of 4
    /* block .unwrap() comment with buf[2] */
    fn lifetime<'a>(x: &'a [u8]) -> &'a [u8] { x }
    assert_ok();
    Some(ok)
}
#[cfg(test)]
mod tests {
    #[test]
    fn t() { let v = vec![1]; assert_eq!(v[0], 1); Some(1).unwrap(); }
}
#[cfg(test)]
fn helper() -> [u8; 1] { [[1][0]] }
#[cfg(test)]
use std::collections::HashMap;
fn after() -> char { '\'' }
"##;
    assert_eq!(whats(fine), Vec::<String>::new());
}

#[test]
fn code_after_a_test_module_is_still_scanned() {
    let source = "#[cfg(test)]\nmod tests { fn a() { x.unwrap(); } }\nfn b() { y.unwrap(); }\n";
    let findings = scan("x.rs", source);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].line, 3);
}
