//! The EPMD port: ≥ 10,000 generated inputs (garbage, truncated, split,
//! mutated and valid requests), each checked against the answer the
//! protocol fixes; the request size limit; and the packet timeout.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use super::harness::{
    alive2_body, assert_healthy, check_epmd_reply, connect, exchange, names, register, registered,
    split, EpmdExpect, Sink, BATCHES, WORKERS,
};
use crate::common::rng::{seed, Rng};
use crate::common::{fake, Proxy};
use epmdpxy::epmd::wire;

/// Inputs per port (the issue asks for ≥ 10,000 on EPMD and control).
const EPMD_INPUTS: usize = 10_000;

struct EpmdInput {
    what: &'static str,
    pieces: Vec<Vec<u8>>,
    expect: EpmdExpect,
}

/// A valid, complete request body (no prefix) and its expected answer.
fn valid_epmd_request(rng: &mut Rng, sentinel: &str) -> (Vec<u8>, EpmdExpect) {
    match rng.below(7) {
        0 | 1 => {
            let mut info = fake::node_info(&format!("fz{}", rng.next_u64()), 5000);
            info.highest_version = *rng.pick(&[5, 6, 6, 7]);
            info.node_type = *rng.pick(&[77, 72, 0, 255]);
            let extra_len = rng.below(40);
            info.extra = rng.bytes(extra_len);
            let extended = info.highest_version >= 6;
            (
                wire::encode_alive2_request(&info),
                EpmdExpect::Registered { extended },
            )
        }
        2 => {
            let mut body = vec![wire::TAG_PORT_PLEASE2_REQ];
            body.extend_from_slice(format!("nobody{}", rng.next_u64()).as_bytes());
            (body, EpmdExpect::Exactly(vec![119, 1]))
        }
        3 => (
            vec![wire::TAG_NAMES_REQ],
            EpmdExpect::Names(sentinel.to_owned()),
        ),
        4 => (
            vec![wire::TAG_DUMP_REQ],
            EpmdExpect::Dump(sentinel.to_owned()),
        ),
        // A node is registered (the sentinel), so KILL must say NO.
        5 => (
            vec![wire::TAG_KILL_REQ],
            EpmdExpect::Exactly(b"NO".to_vec()),
        ),
        // STOP without --relaxed-command-check: closed silently.
        _ => {
            let mut body = vec![wire::TAG_STOP_REQ];
            body.extend_from_slice(sentinel.as_bytes());
            (body, EpmdExpect::Closed)
        }
    }
}

fn epmd_input(rng: &mut Rng, sentinel: &str) -> EpmdInput {
    let (what, bytes, expect): (&'static str, Vec<u8>, EpmdExpect) = match rng.below(14) {
        0 => {
            let len = rng.range(1, 40);
            ("random bytes", rng.bytes(len), EpmdExpect::Any)
        }
        1 => {
            let len = rng.range(40, 6000);
            ("random block", rng.bytes(len), EpmdExpect::Any)
        }
        2 => {
            // L = 0, or L > 3057: closed without reading on
            let len: u16 = *rng.pick(&[0, 3058, 3059, 4096, 0xffff]);
            let mut bytes = len.to_be_bytes().to_vec();
            let body = rng.range(0, 4000);
            bytes.extend(rng.bytes(body));
            ("oversized length", bytes, EpmdExpect::Closed)
        }
        3 => {
            let (body, _) = valid_epmd_request(rng, sentinel);
            let framed = wire::frame(&body);
            let cut = rng.below(framed.len());
            (
                "truncated request",
                framed[..cut].to_vec(),
                EpmdExpect::Closed,
            )
        }
        4 => {
            let mut tag = rng.next_u64() as u8;
            while b"xzndks".contains(&tag) {
                tag = tag.wrapping_add(1);
            }
            let mut body = vec![tag];
            let len = rng.below(100);
            body.extend(rng.bytes(len));
            ("unknown tag", wire::frame(&body), EpmdExpect::Closed)
        }
        5 => {
            // ALIVE2 whose lengths or name are malformed: closed, no reply
            let name = format!("m{}", rng.below(1000));
            let mut body = alive2_body(name.as_bytes(), b"ex", 6);
            match rng.below(4) {
                0 => body[9..11].copy_from_slice(&(rng.range(20, 0xffff) as u16).to_be_bytes()),
                1 => {
                    let at = 11 + name.len();
                    body[at..at + 2].copy_from_slice(&(rng.range(3, 0xffff) as u16).to_be_bytes());
                }
                2 => body[11 + rng.below(name.len())] = 0,
                _ => body.truncate(rng.range(1, 13)),
            }
            ("malformed ALIVE2", wire::frame(&body), EpmdExpect::Closed)
        }
        6 => {
            // well-formed ALIVE2 that epmd refuses with result 1
            let high = *rng.pick(&[5, 6]);
            let body = match rng.below(4) {
                0 => alive2_body(&[0xff, 0xfe, b'a'], b"", high),
                1 => alive2_body("a".repeat(256).as_bytes(), b"", high),
                2 => alive2_body(b"okname", &vec![1; 1021], high),
                _ => alive2_body(sentinel.as_bytes(), b"", high),
            };
            let extended = high >= 6;
            (
                "refused ALIVE2",
                wire::frame(&body),
                EpmdExpect::Refused { extended },
            )
        }
        7 => {
            // PORT2 names epmd closes on
            let mut body = vec![wire::TAG_PORT_PLEASE2_REQ];
            match rng.below(5) {
                0 => {}
                1 => body.push(0),
                2 => body.extend_from_slice(b"a\0b"),
                3 => body.extend_from_slice(&[0xc3, 0x28]),
                _ => body.extend_from_slice("b".repeat(256).as_bytes()),
            }
            ("bad PORT2 name", wire::frame(&body), EpmdExpect::Closed)
        }
        8 if rng.percent(20) => {
            // a lookup of the sentinel: answered with a proxy listener
            // nobody connects to (it expires, see unused_proxy_listeners_expire)
            let mut body = vec![wire::TAG_PORT_PLEASE2_REQ];
            body.extend_from_slice(sentinel.as_bytes());
            if rng.percent(50) {
                body.push(0);
            }
            (
                "PORT2 sentinel",
                wire::frame(&body),
                EpmdExpect::Found(sentinel.to_owned()),
            )
        }
        9 => {
            // a valid request sent in several pieces
            let (body, expect) = valid_epmd_request(rng, sentinel);
            let framed = wire::frame(&body);
            let pieces = rng.range(2, framed.len().clamp(2, 6));
            let mut out = Vec::new();
            let chunk = framed.len().div_ceil(pieces);
            for piece in framed.chunks(chunk) {
                out.push(piece.to_vec());
            }
            return EpmdInput {
                what: "split request",
                pieces: out,
                expect,
            };
        }
        10 => {
            // bytes after the request in the same write: closed unserved,
            // or served if they arrive late
            let (body, _) = valid_epmd_request(rng, sentinel);
            let mut framed = wire::frame(&body);
            let more = rng.range(1, 50);
            framed.extend(rng.bytes(more));
            ("trailing bytes", framed, EpmdExpect::Any)
        }
        11 => {
            // a valid request with a few bytes flipped
            let (body, _) = valid_epmd_request(rng, sentinel);
            let mut framed = wire::frame(&body);
            for _ in 0..rng.range(1, 3) {
                let at = rng.below(framed.len());
                framed[at] ^= 1 << rng.below(8);
            }
            ("mutated request", framed, EpmdExpect::Any)
        }
        12 => {
            // the largest request epmd reads: 3057 bytes (NAMES + padding)
            let mut body = vec![wire::TAG_NAMES_REQ];
            body.extend(rng.bytes(wire::MAX_REQUEST_LEN - 1));
            (
                "max-size NAMES",
                wire::frame(&body),
                EpmdExpect::Names(sentinel.to_owned()),
            )
        }
        _ => {
            let (body, expect) = valid_epmd_request(rng, sentinel);
            ("valid request", wire::frame(&body), expect)
        }
    };
    EpmdInput {
        what,
        pieces: split(rng, bytes),
        expect,
    }
}

#[test]
fn epmd_port_survives_generated_garbage() {
    let seed = seed("HOSTILE_SEED", "epmd_port_survives_generated_garbage");
    let mut rng = Rng::new(seed);
    // Short listener timeout: the fuzzer's lookups of the sentinel open
    // listeners nobody connects to.
    let proxy = Proxy::start(&["--listener-timeout", "2"]);
    let sink = Sink::start(proxy.epmd_port, &format!("sentinel{}", proxy.epmd_port));
    let expected = names(&[&sink.name]);
    assert_healthy(&proxy, &sink, &expected, "before fuzzing");

    let per_worker = EPMD_INPUTS / BATCHES / WORKERS;
    let mut tried = 0;
    let mut by_kind = BTreeMap::<&str, usize>::new();
    for batch in 0..BATCHES {
        let results: Vec<Vec<&'static str>> = thread::scope(|scope| {
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let mut rng = rng.fork();
                    let sentinel = sink.name.clone();
                    let epmd_port = proxy.epmd_port;
                    scope.spawn(move || {
                        let mut kinds = Vec::new();
                        for i in 0..per_worker {
                            let input = epmd_input(&mut rng, &sentinel);
                            let reply = exchange(epmd_port, &input.pieces);
                            let verdict = reply.and_then(|reply| {
                                check_epmd_reply(&input.expect, &reply, epmd_port)
                            });
                            if let Err(why) = verdict {
                                panic!(
                                    "seed {seed} batch {batch} input {i} ({}): {why}; sent {:?}",
                                    input.what, input.pieces
                                );
                            }
                            kinds.push(input.what);
                        }
                        kinds
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for kind in results.into_iter().flatten() {
            tried += 1;
            *by_kind.entry(kind).or_default() += 1;
        }
        assert_healthy(
            &proxy,
            &sink,
            &expected,
            &format!("seed {seed}, after EPMD batch {batch}"),
        );
    }
    assert!(tried >= EPMD_INPUTS, "only {tried} inputs");
    eprintln!("EPMD inputs tried: {tried} {by_kind:?}");
}

/// The largest EPMD request is 3057 bytes (as OTP's epmd); a length prefix
/// of 0 or above 3057 closes the connection without a reply, before any
/// body byte is read.
#[test]
fn epmd_request_size_limit() {
    let proxy = Proxy::start(&[]);
    let sink = Sink::start(proxy.epmd_port, &format!("big{}", proxy.epmd_port));
    let mut body = vec![wire::TAG_NAMES_REQ];
    body.resize(wire::MAX_REQUEST_LEN, b'.');
    let reply = exchange(proxy.epmd_port, &[wire::frame(&body)]).expect("3057 bytes");
    check_epmd_reply(
        &EpmdExpect::Names(sink.name.clone()),
        &reply,
        proxy.epmd_port,
    )
    .expect("a 3057-byte NAMES is served");
    body.push(b'.');
    let reply = exchange(proxy.epmd_port, &[wire::frame(&body)]).expect("3058 bytes");
    assert!(reply.is_empty(), "3058 bytes answered {reply:?}");
    // 0xffff announced, nothing sent after: closed at once, not after a wait
    let mut stream = connect(proxy.epmd_port);
    stream.write_all(&[0xff, 0xff]).expect("prefix");
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("closed without waiting for the body");
    assert!(rest.is_empty());
    let reply = exchange(proxy.epmd_port, &[vec![0, 0]]).expect("length 0");
    assert!(reply.is_empty(), "length 0 answered {reply:?}");
}

/// A client that does not complete its request within `--packet-timeout`
/// (counted from the accept, so dribbling does not help) is closed; a
/// registration connection never times out.
#[test]
fn epmd_idle_clients_are_closed() {
    let proxy = Proxy::start(&["--packet-timeout", "1"]);
    let (registration, _) = register(proxy.epmd_port, &format!("stays{}", proxy.epmd_port), 1);

    let mut silent = connect(proxy.epmd_port);
    let mut dribbler = connect(proxy.epmd_port);
    let started = Instant::now();
    // 3000 bytes announced; at most 40 are sent, one every 100 ms
    dribbler.write_all(&3000u16.to_be_bytes()).expect("prefix");
    let mut dribble_closed = false;
    for _ in 0..40 {
        thread::sleep(Duration::from_millis(100));
        if dribbler.write_all(b"z").is_err() {
            dribble_closed = true;
            break;
        }
    }
    let mut rest = Vec::new();
    let read = dribbler.read_to_end(&mut rest).map_err(|e| e.kind());
    let timed_out = matches!(
        read,
        Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
    );
    assert!(
        dribble_closed || !timed_out,
        "a dribbling client is still connected after {:?}",
        started.elapsed()
    );
    assert!(rest.is_empty(), "the dribbler got {rest:?}");
    let mut nothing = Vec::new();
    assert_eq!(
        silent.read_to_end(&mut nothing).map_err(|e| e.kind()),
        Ok(0),
        "a silent client is closed by the proxy"
    );
    // Far past the timeout, the registration is still there.
    assert!(started.elapsed() > Duration::from_secs(1));
    assert!(registered(&proxy).contains(&format!("stays{}", proxy.epmd_port)));
    drop(registration);
}
