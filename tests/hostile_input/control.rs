//! The control port: ≥ 10,000 generated lines (garbage, word soup,
//! valid and invalid commands, over-long lines) over sessions of random
//! length; the line length limit, blank lines, and the session limit.

use std::thread;

use super::harness::{
    assert_healthy, names, no_faults, split, Session, Sink, BATCHES, EXCHANGE_TIMEOUT, WORKERS,
};
use crate::common::rng::{seed, Rng};
use crate::common::{wait_until, Proxy};

/// Lines sent to the control port (the issue asks for ≥ 10,000).
const CONTROL_LINES: usize = 10_000;

/// What the control port must answer to one generated line.
#[derive(Clone, Debug)]
enum ControlExpect {
    /// A reply starting `OK` or `ERR ` (or `OK bye` and a close).
    OkOrErr,
    Ok,
    /// `OK`, or the refusal of a `fix` whose cut is not in force.
    OkOrNoSuchFault,
    Err,
    /// `ERR`, but not the over-long-line one (the line is within the limit).
    ErrWithinLimit,
    TooLong,
    NotUtf8,
}

const TOO_LONG: &str = "ERR line too long";

/// Words the soup generator strings together.
const WORDS: &[&str] = &[
    "cut",
    "fix",
    "heal",
    "status",
    "nodes",
    "links",
    "help",
    "CUT",
    "Fix",
    "|",
    "->",
    ",",
    "a",
    "b",
    "c",
    "n1@h",
    "*@h",
    "*",
    "@",
    "-",
    ">",
    "||",
    "a,b",
    "a|b",
    "x->y",
    "\t",
    "\0",
    "é",
    "\u{3000}",
    "\u{feff}",
    "\r",
    "quit",
    "exit",
    "cut a | a",
    "99999999999999999999",
];

fn control_line(rng: &mut Rng) -> (&'static str, Vec<u8>, ControlExpect) {
    let (what, mut line, expect) = match rng.below(10) {
        0 => {
            let len = rng.range(1, 200);
            ("printable", rng.printable(len), ControlExpect::OkOrErr)
        }
        1 => {
            let len = rng.range(1, 300);
            ("random bytes", rng.bytes(len), ControlExpect::OkOrErr)
        }
        2 => {
            let len = rng.range(0, 200);
            let mut bytes = rng.printable(len);
            bytes.insert(rng.below(bytes.len() + 1), 0xff);
            ("not UTF-8", bytes, ControlExpect::NotUtf8)
        }
        3 | 4 => {
            let mut text = String::new();
            for _ in 0..rng.range(1, 12) {
                let word: &str = WORDS[rng.below(WORDS.len())];
                text.push_str(word);
                if rng.percent(60) {
                    text.push(' ');
                }
            }
            ("word soup", text.into_bytes(), ControlExpect::OkOrErr)
        }
        5 => {
            let commands = [
                "status",
                "nodes",
                "links",
                "help",
                "heal",
                "cut a | b",
                "cut a,b | c,d | e",
                "cut x -> y",
                "fix a | b",
                "fix x -> y",
                "cut n1@h | *@g",
            ];
            let mut text = String::new();
            for _ in 0..rng.below(3) {
                text.push(*rng.pick(&[' ', '\t']));
            }
            let command = rng.pick(&commands);
            if rng.percent(30) {
                text.push_str(&command.to_uppercase());
            } else {
                text.push_str(command);
            }
            for _ in 0..rng.below(3) {
                text.push(' ');
            }
            // A fix of a cut that is not in force is refused, and says so.
            let expect = if command.starts_with("fix") {
                ControlExpect::OkOrNoSuchFault
            } else {
                ControlExpect::Ok
            };
            ("valid command", text.into_bytes(), expect)
        }
        6 => {
            let bad = [
                "heal now",
                "cut",
                "cut a",
                "cut a |",
                "cut | b",
                "cut a,,b | c",
                "cut a | a",
                "cut a -> a",
                "status please",
                "frob",
                "cut a b | c",
                "cut a@b@c | d",
                "fix ->",
            ];
            (
                "invalid command",
                rng.pick(&bad).as_bytes().to_vec(),
                ControlExpect::Err,
            )
        }
        7 => {
            // over the limit: 4097 bytes up to a megabyte
            let len = if rng.percent(3) {
                rng.range(100_000, 1_000_000)
            } else {
                rng.range(4097, 20_000)
            };
            let bytes = if rng.percent(50) {
                rng.printable(len)
            } else {
                rng.bytes(len)
            };
            ("over-long line", bytes, ControlExpect::TooLong)
        }
        8 => {
            // exactly at the limit, or just under
            let len = 4096 - rng.below(3);
            let mut bytes = b"zz".to_vec();
            bytes.extend(rng.printable(len - 2));
            ("line at the limit", bytes, ControlExpect::ErrWithinLimit)
        }
        _ => {
            let len = rng.range(1, 64);
            let mut bytes = rng.printable(len);
            bytes.push(b'\r'); // CRLF ending
            ("CRLF line", bytes, ControlExpect::OkOrErr)
        }
    };
    // One line per input: no newline inside.
    for byte in &mut line {
        if *byte == b'\n' {
            *byte = b'N';
        }
    }
    // Blank lines get no reply at all (tested on their own): keep every
    // generated line non-blank so each one is answered.
    let blank = std::str::from_utf8(&line).is_ok_and(|text| text.trim().is_empty());
    if blank {
        line.push(b'x');
    }
    (what, line, expect)
}

fn check_control_reply(expect: &ControlExpect, reply: &[String]) -> Result<(), String> {
    let first = reply.first().map(String::as_str).unwrap_or("");
    let ok = match expect {
        ControlExpect::OkOrErr => first.starts_with("OK") || first.starts_with("ERR "),
        ControlExpect::Ok => first.starts_with("OK"),
        ControlExpect::OkOrNoSuchFault => {
            first.starts_with("OK") || first.starts_with("ERR no such fault in force")
        }
        ControlExpect::Err => first.starts_with("ERR "),
        ControlExpect::ErrWithinLimit => first.starts_with("ERR ") && !first.starts_with(TOO_LONG),
        ControlExpect::TooLong => first.starts_with(TOO_LONG),
        ControlExpect::NotUtf8 => first == "ERR line is not UTF-8",
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, got {reply:?}"))
    }
}

/// Runs `lines` generated lines over sessions of random length; returns
/// (lines sent, sessions opened).
fn control_worker(control_port: u16, rng: &mut Rng, lines: usize, context: &str) -> (usize, usize) {
    let mut sent = 0;
    let mut sessions = 0;
    while sent < lines {
        let mut session = Session::open(control_port);
        sessions += 1;
        let length = rng.range(20, 200);
        for _ in 0..length {
            if sent == lines {
                break;
            }
            let (what, mut line, expect) = control_line(rng);
            line.push(b'\n');
            let shown = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
            sent += 1;
            let pieces = split(rng, line);
            if let Err(e) = session.send(&pieces) {
                panic!("{context}: line {sent} ({what}) {shown:?}: write failed: {e}");
            }
            let reply = match session.reply() {
                Ok(Some(reply)) => reply,
                Ok(None) => panic!("{context}: line {sent} ({what}) {shown:?}: session closed"),
                Err(e) => panic!("{context}: line {sent} ({what}) {shown:?}: {e}"),
            };
            if let Err(why) = check_control_reply(&expect, &reply) {
                panic!("{context}: line {sent} ({what}) {shown:?}: {why}");
            }
            if reply == ["OK bye"] {
                // `quit`/`exit` ends the session: EOF must follow.
                assert!(
                    matches!(session.line(), Ok(None)),
                    "{context}: the session stayed open after OK bye"
                );
                break;
            }
        }
    }
    (sent, sessions)
}

#[test]
fn control_port_survives_generated_garbage() {
    let seed = seed("HOSTILE_SEED", "control_port_survives_generated_garbage");
    let mut rng = Rng::new(seed);
    let proxy = Proxy::start(&[]);
    let sink = Sink::start(proxy.epmd_port, &format!("sentinel{}", proxy.epmd_port));
    let expected = names(&[&sink.name]);
    assert_healthy(&proxy, &sink, &expected, "before fuzzing");

    let per_worker = CONTROL_LINES / BATCHES / WORKERS;
    let (mut lines, mut sessions) = (0, 0);
    for batch in 0..BATCHES {
        let context = format!("seed {seed}, control batch {batch}");
        let counts: Vec<(usize, usize)> = thread::scope(|scope| {
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let mut rng = rng.fork();
                    let context = &context;
                    let port = proxy.control_port;
                    scope.spawn(move || control_worker(port, &mut rng, per_worker, context))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for (l, s) in counts {
            lines += l;
            sessions += s;
        }
        // Fuzzed `cut`s are real faults: remove them, then check.
        assert_eq!(proxy.ctl("heal"), "OK healed", "{context}");
        let status = proxy.ctl("status");
        assert!(
            no_faults(&status.lines().map(str::to_owned).collect::<Vec<_>>()),
            "{context}: {status}"
        );
        assert_healthy(&proxy, &sink, &expected, &context);
    }
    // Every fuzz session has ended: the session counter must be back to
    // zero, so the full allowance of 64 sessions is available again.
    let held: Vec<Session> = (0..64).map(|_| Session::open(proxy.control_port)).collect();
    for (i, mut session) in held.into_iter().enumerate() {
        let reply = session.command("status");
        assert!(
            reply[0].starts_with("OK"),
            "session {i} after fuzzing: {reply:?}"
        );
    }
    assert!(lines >= CONTROL_LINES, "only {lines} lines");
    eprintln!("control lines tried: {lines} over {sessions} sessions");
}

/// A line of at most 4096 bytes (line ending not counted) is read as a
/// command; a longer one, however it arrives, is answered
/// `ERR line too long` and the session goes on.
#[test]
fn control_line_length_limit() {
    let proxy = Proxy::start(&[]);
    let mut session = Session::open(proxy.control_port);
    let line = |len: usize| {
        let mut bytes = b"zz".to_vec();
        bytes.resize(len, b'q');
        bytes
    };
    let cases: Vec<(usize, &str, bool)> = vec![
        (4096, "\n", false),
        (4096, "\r\n", false),
        (4097, "\n", true),
        (4097, "\r\n", true),
        (5000, "\n", true),
        (5119, "\n", true),
        (1 << 20, "\n", true),
    ];
    for (len, ending, too_long) in cases {
        for pieces in [1, 3, 4099] {
            let mut bytes = line(len);
            bytes.extend_from_slice(ending.as_bytes());
            let piece = bytes.len().div_ceil(pieces);
            let chunks: Vec<Vec<u8>> = bytes.chunks(piece).map(<[u8]>::to_vec).collect();
            session.send(&chunks).expect("send");
            let reply = session.reply().expect("reply").expect("session open");
            let what = format!("{len} bytes + {ending:?} in {} writes", chunks.len());
            if too_long {
                assert_eq!(reply, ["ERR line too long (max 4096 bytes)"], "{what}");
            } else {
                assert!(
                    reply[0].starts_with("ERR unknown command"),
                    "{what}: {reply:?}"
                );
            }
            // The session goes on.
            let status = session.command("status");
            assert!(
                no_faults(&status),
                "{what}: the session goes on: {status:?}"
            );
        }
    }
}

/// Blank lines are skipped without a reply.
#[test]
fn control_blank_lines_get_no_reply() {
    let proxy = Proxy::start(&[]);
    let mut session = Session::open(proxy.control_port);
    session
        .send(&[b"\n \n\t\r\n\r\n".to_vec()])
        .expect("send blank lines");
    let status = session.command("status");
    assert!(no_faults(&status), "{status:?}");
}

/// At most 64 control sessions at once (`--max-control-sessions`): the next
/// one is told so and closed; once one ends, a new one is accepted.
#[test]
fn control_session_limit() {
    check_session_limit(&[], 64);
    check_session_limit(&["--max-control-sessions", "3"], 3);
}

fn check_session_limit(args: &[&str], limit: usize) {
    let proxy = Proxy::start(args);
    let mut held: Vec<Session> = (0..limit)
        .map(|_| Session::open(proxy.control_port))
        .collect();
    for session in &mut held {
        let status = session.command("status");
        assert!(no_faults(&status), "{status:?}");
    }
    let mut refused = Session::open(proxy.control_port);
    assert_eq!(
        refused.line().expect("refusal").as_deref(),
        Some("ERR too many control sessions")
    );
    assert!(matches!(refused.line(), Ok(None)), "refused session closed");
    // The held sessions still work.
    let status = held[limit - 1].command("status");
    assert!(no_faults(&status), "{status:?}");
    drop(held.pop());
    wait_until(EXCHANGE_TIMEOUT, "a session slot to free up", || {
        let mut session = Session::open(proxy.control_port);
        session.send(&[b"status\n".to_vec()]).is_ok()
            && matches!(session.reply(), Ok(Some(r)) if r[0].starts_with("OK"))
    });
}
