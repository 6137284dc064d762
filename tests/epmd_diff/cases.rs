//! The case tables of the differential test, one per kind of request:
//! registration (ALIVE2), lookups and the other read-only requests,
//! framing, the packet timeout, DUMP, and STOP with
//! `-relaxed_command_check`. Each case is run on both daemons by
//! `harness::run_table`.

use std::time::Duration;

use super::harness::{
    alive2, alive2_body, case, exact, frame, names, observe, port2, port2_found, send, send_split,
    steps, Case, End, Expect, Rule, Step, FAKE_NODE_PORT, HIDDEN, NORMAL,
};

/// Registration (ALIVE2) cases, valid and refused.
pub fn registration_cases() -> Vec<Case> {
    let long_255 = "n".repeat(255);
    let long_256 = "n".repeat(256);
    // 255 four-byte characters: exactly 1020 bytes, the largest name.
    let wide_255 = "\u{10348}".repeat(255);
    let wide_1021 = format!("{}a", "\u{10348}".repeat(255));
    let extra_1020 = vec![7u8; 1020];
    let extra_1021 = vec![7u8; 1021];
    vec![
        case(
            "ALIVE2 v6 registers; reply v,0,creation; NAMES lists it",
            vec![
                send(0, alive2(b"reg")),
                observe(0, "alive", Rule::Alive2Ok),
                names(&["reg"]),
            ],
        ),
        case(
            "ALIVE2 v5 (HighVsn 5) gets the 16-bit reply y,0,creation 1..3",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 5, 5, b"old", b""))),
                observe(0, "alive", Rule::Alive2Ok),
                names(&["old"]),
            ],
        ),
        case(
            "ALIVE2 hidden node (type 72) registers",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, HIDDEN, 6, 5, b"hid", b""))),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"hid")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "ALIVE2 name already registered: refused 1/99, socket kept; first stays",
            vec![
                send(0, alive2(b"dup")),
                observe(0, "first", Rule::Alive2Ok),
                send(1, alive2(b"dup")),
                exact(1),
                names(&["dup"]),
                Step::Close(1),
                Step::Pause(Duration::from_millis(50)),
                names(&["dup"]),
            ],
        ),
        case(
            "ALIVE2 v5 name already registered: refused y,1,99",
            vec![
                send(0, alive2(b"dup5")),
                observe(0, "first", Rule::Alive2Ok),
                send(1, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 5, 5, b"dup5", b""))),
                exact(1),
            ],
        ),
        case(
            "re-registration after the node went: a different creation",
            vec![
                send(0, alive2(b"again")),
                observe(0, "first", Rule::Alive2Ok),
                Step::Close(0),
                names(&[]),
                send(1, alive2(b"again")),
                observe(1, "second", Rule::Alive2Again("first")),
            ],
        ),
        case(
            "two registrations: NAMES lists the newest first",
            vec![
                send(0, alive2(b"first")),
                observe(0, "a", Rule::Alive2Ok),
                send(1, frame(&alive2_body(4444, NORMAL, 6, 5, b"second", b""))),
                observe(1, "b", Rule::Alive2Ok),
                names(&["second", "first"]),
                Step::Close(1),
                names(&["first"]),
            ],
        ),
        case(
            "ALIVE2 name of 255 characters registers",
            vec![
                send(0, alive2(long_255.as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
            ],
        ),
        case(
            "ALIVE2 name of 256 characters: refused 1/99, socket kept",
            vec![send(0, alive2(long_256.as_bytes())), exact(0), names(&[])],
        ),
        case(
            "ALIVE2 name of 255 four-byte characters (1020 bytes) registers",
            vec![
                send(0, alive2(wide_255.as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
            ],
        ),
        case(
            "ALIVE2 name of 1021 bytes: refused 1/99",
            vec![send(0, alive2(wide_1021.as_bytes())), exact(0), names(&[])],
        ),
        case(
            "ALIVE2 name not UTF-8: refused 1/99",
            vec![send(0, alive2(b"bad\xff\xfe")), exact(0), names(&[])],
        ),
        case(
            "ALIVE2 name with a UTF-16 surrogate (ED A0 80): refused 1/99",
            vec![send(0, alive2(b"s\xed\xa0\x80")), exact(0)],
        ),
        case(
            "ALIVE2 name with an overlong NUL (C0 80): refused 1/99",
            vec![send(0, alive2(b"o\xc0\x80")), exact(0)],
        ),
        case(
            "ALIVE2 UTF-8 name registers and is listed",
            vec![
                send(0, alive2("nöde".as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
                names(&["nöde"]),
            ],
        ),
        case(
            "ALIVE2 extra of 1020 bytes registers; round-trips in PORT2",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"ext", &extra_1020))),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"ext")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "ALIVE2 extra of 1021 bytes: refused 1/99",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"ext2", &extra_1021))),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "ALIVE2 with a NUL in the name: closed, no reply",
            vec![send(0, alive2(b"nu\0ll")), exact(0), names(&[])],
        ),
        case(
            "ALIVE2 of 13 bytes (no name, no Elen): closed, no reply",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"", b""))),
                exact(0),
            ],
        ),
        case(
            "ALIVE2 of 11 bytes: closed, no reply",
            vec![send(0, frame(&alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"", b"")[..11])), exact(0)],
        ),
        case(
            "ALIVE2 Nlen larger than the packet: closed, no reply",
            vec![
                send(0, {
                    let mut body = alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"abc", b"");
                    body[9..11].copy_from_slice(&5u16.to_be_bytes());
                    frame(&body)
                }),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "ALIVE2 Elen larger than the packet: closed, no reply",
            vec![
                send(0, {
                    let mut body = alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"abc", b"xy");
                    body[14..16].copy_from_slice(&3u16.to_be_bytes());
                    frame(&body)
                }),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "ALIVE2 with bytes after Extra inside the packet: registers",
            vec![
                send(0, {
                    let mut body = alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"pad", b"e");
                    body.extend_from_slice(b"junk");
                    frame(&body)
                }),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"pad")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "ALIVE2 followed by garbage in the same write: closed, no reply",
            vec![
                send(0, [alive2(b"garb"), b"xyz".to_vec()].concat()),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "ALIVE2 split byte by byte, then registered",
            steps(vec![
                send_split(0, &alive2(b"split"), &[1, 2, 3, 8, 15]),
                vec![observe(0, "alive", Rule::Alive2Ok), names(&["split"])],
            ]),
        ),
        case(
            "ALIVE2 split, garbage in the last piece: served, then unregistered",
            steps(vec![
                send_split(0, &[alive2(b"late"), b"!".to_vec()].concat(), &[5]),
                vec![observe(0, "alive", Rule::Alive2ThenClosed), names(&[])],
            ]),
        ),
        case(
            "registered socket sends a byte later: unregistered and closed",
            vec![
                send(0, alive2(b"chatty")),
                observe(0, "alive", Rule::Alive2Ok),
                send(0, b"?".to_vec()),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "registered socket half-closes: unregistered and closed",
            vec![
                send(0, alive2(b"halfy")),
                observe(0, "alive", Rule::Alive2Ok),
                Step::HalfClose(0),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "refused registration socket later sends a byte: closed",
            vec![
                send(0, alive2(b"bad\xff")),
                exact(0),
                send(0, b"?".to_vec()),
                exact(0),
            ],
        ),
        case(
            "KNOWN DIFFERENCE: ALIVE2 with an empty name (14-byte packet)",
            vec![
                send(0, {
                    let mut body = alive2_body(FAKE_NODE_PORT, NORMAL, 6, 5, b"", b"");
                    body.push(0);
                    frame(&body)
                }),
                observe(
                    0,
                    "alive",
                    Rule::Known {
                        why: "OTP 25.2.3 registers the empty name (unreachable by PORT2); we refuse it with 1/99",
                        real: Expect::Alive2Ok,
                        ours: Expect::Exactly(vec![118, 1, 0, 0, 0, 99], End::Open),
                    },
                ),
            ],
        ),
    ]
}

/// Lookup (PORT_PLEASE2), NAMES and the other read-only requests.
/// `node_port`: a stand-in node's port, followed through the proxy.
pub fn lookup_cases(node_port: u16) -> Vec<Case> {
    let name_254 = "l".repeat(254);
    let name_255 = "l".repeat(255);
    let name_256 = "l".repeat(256);
    let extra = b"\x00\x01extra\xffbytes\x00".to_vec();
    vec![
        case(
            "PORT2 found: all fields as registered, port replaced; the proxy relays",
            vec![
                send(0, frame(&alive2_body(node_port, NORMAL, 6, 5, b"found", b""))),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"found")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "PORT2 for a v5 node with a non-empty extra: round-tripped",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, HIDDEN, 5, 5, b"ex5", &extra))),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"ex5")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "PORT2 with one trailing NUL: found",
            vec![
                send(0, alive2(b"tnul")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"tnul\0")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "PORT2 not found: w,1 then closed",
            vec![send(0, port2(b"nobody")), exact(0)],
        ),
        case(
            "PORT2 is case-sensitive: not found",
            vec![
                send(0, alive2(b"Case")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(b"case")),
                exact(1),
            ],
        ),
        case(
            "PORT2 for a name that went away: not found",
            vec![
                send(0, alive2(b"gone")),
                observe(0, "alive", Rule::Alive2Ok),
                Step::Close(0),
                names(&[]),
                send(1, port2(b"gone")),
                exact(1),
            ],
        ),
        case(
            "PORT2 with an empty name: closed, no reply",
            vec![send(0, port2(b"")), exact(0)],
        ),
        case(
            "PORT2 with only a NUL: closed, no reply",
            vec![send(0, port2(b"\0")), exact(0)],
        ),
        case(
            "PORT2 with a NUL inside the name: closed, no reply",
            vec![send(0, port2(b"ab\0cd")), exact(0)],
        ),
        case(
            "PORT2 with two trailing NULs: closed, no reply",
            vec![send(0, port2(b"ab\0\0")), exact(0)],
        ),
        case(
            "PORT2 name not UTF-8: closed, no reply",
            vec![send(0, port2(b"ab\xff")), exact(0)],
        ),
        case(
            "PORT2 name of 254 characters, not registered: w,1",
            vec![send(0, port2(name_254.as_bytes())), exact(0)],
        ),
        case(
            "PORT2 name of 254 characters, registered: found",
            vec![
                send(0, alive2(name_254.as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(name_254.as_bytes())),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "PORT2 name of 256 characters: closed, no reply",
            vec![send(0, port2(name_256.as_bytes())), exact(0)],
        ),
        case(
            "KNOWN DIFFERENCE: PORT2 for a registered 255-character name",
            vec![
                send(0, alive2(name_255.as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, port2(name_255.as_bytes())),
                observe(
                    1,
                    "lookup",
                    Rule::Known {
                        why: "OTP 25.2.3 counts the terminating NUL and closes; we answer, as a 255-character name is valid",
                        real: Expect::Exactly(vec![], End::Closed),
                        ours: Expect::Port2Found(port2_found(
                            FAKE_NODE_PORT,
                            NORMAL,
                            6,
                            5,
                            name_255.as_bytes(),
                            b"",
                        )),
                    },
                ),
            ],
        ),
        case(
            "PORT2 split over three writes: found",
            steps(vec![
                vec![send(0, alive2(b"pieces")), observe(0, "alive", Rule::Alive2Ok)],
                send_split(1, &port2(b"pieces"), &[1, 4]),
                vec![observe(1, "lookup", Rule::Port2Found)],
            ]),
        ),
        case(
            "PORT2 followed by garbage in the same write: closed, no reply",
            vec![send(0, [port2(b"nobody"), b"zz".to_vec()].concat()), exact(0)],
        ),
        case(
            "PORT2 split, garbage after the request in the last piece: served",
            steps(vec![
                send_split(0, &[port2(b"nobody"), b"zz".to_vec()].concat(), &[4]),
                vec![exact(0)],
            ]),
        ),
        case("NAMES with nothing registered", vec![send(0, frame(b"n")), observe(0, "names", Rule::Listing)]),
        case(
            "NAMES with trailing bytes inside the packet: served",
            vec![send(0, frame(b"nabc")), observe(0, "names", Rule::Listing)],
        ),
        case(
            "NAMES in the largest accepted packet (3057 bytes)",
            vec![
                send(0, frame(&[b"n".to_vec(), vec![b'.'; 3056]].concat())),
                observe(0, "names", Rule::Listing),
            ],
        ),
        case(
            "NAMES with a hidden and a normal node",
            vec![
                send(0, frame(&alive2_body(FAKE_NODE_PORT, HIDDEN, 6, 5, b"h1", b""))),
                observe(0, "a", Rule::Alive2Ok),
                send(1, frame(&alive2_body(6001, NORMAL, 6, 5, b"v1", b""))),
                observe(1, "b", Rule::Alive2Ok),
                send(2, frame(b"n")),
                observe(2, "names", Rule::Listing),
            ],
        ),
        case(
            "NAMES over IPv6 loopback",
            vec![
                Step::ConnectV6(0),
                send(0, frame(b"n")),
                observe(0, "names", Rule::Listing),
            ],
        ),
        case(
            "PORT2 over IPv6 loopback: found",
            vec![
                send(0, alive2(b"six")),
                observe(0, "alive", Rule::Alive2Ok),
                Step::ConnectV6(1),
                send(1, port2(b"six")),
                observe(1, "lookup", Rule::Port2Found),
            ],
        ),
        case(
            "KILL refused while a node is registered: NO",
            vec![
                send(0, alive2(b"alive")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"k")),
                exact(1),
                names(&["alive"]),
            ],
        ),
        case(
            "STOP without -relaxed_command_check: closed, no reply; node stays",
            vec![
                send(0, alive2(b"stay")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"sstay")),
                exact(1),
                names(&["stay"]),
            ],
        ),
    ]
}

/// Framing: lengths, unknown tags, truncation, early closes.
pub fn framing_cases() -> Vec<Case> {
    vec![
        case(
            "zero length: closed, no reply",
            vec![send(0, vec![0, 0]), exact(0)],
        ),
        case(
            "zero length followed by bytes: closed, no reply",
            vec![send(0, vec![0, 0, b'n']), exact(0)],
        ),
        case(
            "length 3058 (one over the limit): closed, no reply",
            vec![send(0, 3058u16.to_be_bytes().to_vec()), exact(0)],
        ),
        case(
            "length 65535: closed, no reply",
            vec![send(0, vec![0xff, 0xff, b'n']), exact(0)],
        ),
        case(
            "unknown tag: closed, no reply",
            vec![send(0, frame(b"Q")), exact(0)],
        ),
        case(
            "unknown tag 0: closed, no reply",
            vec![send(0, frame(b"\0abc")), exact(0)],
        ),
        case(
            "ALIVE2_RESP tag sent as a request: closed, no reply",
            vec![send(0, frame(b"y\0\0\x01")), exact(0)],
        ),
        case(
            "only one byte of the length: kept open, then closed at EOF",
            vec![send(0, vec![0]), exact(0), Step::HalfClose(0), exact(0)],
        ),
        case(
            "truncated body: kept open, then closed at EOF, no reply",
            vec![
                send(0, port2(b"truncated")[..6].to_vec()),
                exact(0),
                Step::HalfClose(0),
                exact(0),
            ],
        ),
        case(
            "truncated ALIVE2, then EOF: nothing registered",
            vec![
                send(0, alive2(b"cut")[..10].to_vec()),
                Step::HalfClose(0),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "connection closed before sending anything",
            vec![Step::ConnectV6(0), Step::Close(0), names(&[])],
        ),
        case(
            "connection half-closed before sending anything",
            vec![send(0, vec![]), Step::HalfClose(0), exact(0)],
        ),
        case(
            "NAMES split over two writes",
            steps(vec![
                send_split(0, &frame(b"n"), &[1]),
                vec![observe(0, "names", Rule::Listing)],
            ]),
        ),
        case(
            "NAMES followed by garbage in the same write: closed, no reply",
            vec![send(0, [frame(b"n"), b"n".to_vec()].concat()), exact(0)],
        ),
        case(
            "two requests in one write: closed, no reply",
            vec![send(0, [frame(b"n"), frame(b"n")].concat()), exact(0)],
        ),
    ]
}

/// The packet timeout (1 s for both daemons here).
pub fn timeout_cases() -> Vec<Case> {
    // A request that never completes: the length, then one byte every
    // 300 ms, for about 2 s.
    let mut dribble = vec![send(0, vec![0, 20])];
    for _ in 0..7 {
        dribble.push(Step::Pause(Duration::from_millis(300)));
        dribble.push(send(0, b"n".to_vec()));
    }
    dribble.push(observe(
        0,
        "dribbled",
        Rule::Known {
            why: "OTP 25.2.3 restarts the packet timeout on every byte; we measure it from the \
                  connection's start (as newer OTP does), so dribbling cannot hold a connection",
            real: Expect::Exactly(vec![], End::Open),
            ours: Expect::Exactly(vec![], End::Closed),
        },
    ));
    vec![
        case(
            "idle connection: closed after the packet timeout, no reply",
            vec![
                send(0, vec![]),
                Step::ObserveUntilClosed(0, Duration::from_secs(5)),
            ],
        ),
        case(
            "incomplete request: closed after the packet timeout, no reply",
            vec![
                send(0, port2(b"slow")[..5].to_vec()),
                Step::ObserveUntilClosed(0, Duration::from_secs(5)),
            ],
        ),
        case(
            "registered socket: never timed out",
            vec![
                send(0, alive2(b"patient")),
                observe(0, "alive", Rule::Alive2Ok),
                Step::Pause(Duration::from_millis(2500)),
                names(&["patient"]),
            ],
        ),
        case(
            "KNOWN DIFFERENCE: a request dribbled byte by byte past the timeout",
            dribble,
        ),
    ]
}

/// DUMP, on a fresh pair: its old-name list is the history of the
/// daemon, so the nodes here go one at a time, in a known order.
pub fn dump_cases() -> Vec<Case> {
    vec![case(
        "DUMP with live and old names",
        vec![
            send(0, alive2(b"d1")),
            observe(0, "a", Rule::Alive2Ok),
            send(1, alive2(b"d2")),
            observe(1, "b", Rule::Alive2Ok),
            send(2, frame(&alive2_body(7000, HIDDEN, 5, 5, b"d3", b"xx"))),
            observe(2, "c", Rule::Alive2Ok),
            send(3, alive2(b"d4")),
            observe(3, "d", Rule::Alive2Ok),
            Step::Close(1),
            names(&["d4", "d3", "d1"]),
            Step::Close(3),
            names(&["d3", "d1"]),
            send(4, frame(b"d")),
            observe(4, "dump", Rule::Listing),
            // d2 comes back: it leaves the old list.
            send(5, alive2(b"d2")),
            observe(5, "e", Rule::Alive2Ok),
            send(6, frame(b"d")),
            observe(6, "dump again", Rule::Listing),
        ],
    )]
}

/// STOP and KILL, which need -relaxed_command_check.
pub fn relaxed_cases() -> Vec<Case> {
    vec![
        case(
            "STOP a registered node: STOPPED, its socket closed, unregistered",
            vec![
                send(0, alive2(b"victim")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"svictim")),
                exact(1),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "STOP an unknown name: NOEXIST then STOPPED",
            vec![send(0, frame(b"snobody")), exact(0)],
        ),
        case(
            "STOP with no name: closed, no reply",
            vec![send(0, frame(b"s")), exact(0)],
        ),
        case(
            "STOP reads a C string: `name\\0junk` stops `name`",
            vec![
                send(0, alive2(b"cstr")),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"scstr\0junk")),
                exact(1),
                exact(0),
                names(&[]),
            ],
        ),
        case(
            "STOP with an empty C string: NOEXIST then STOPPED",
            vec![send(0, frame(b"s\0x")), exact(0)],
        ),
        case(
            "STOP with a non-UTF-8 name: NOEXIST then STOPPED; node stays",
            vec![
                send(0, alive2("st\u{fffd}p".as_bytes())),
                observe(0, "alive", Rule::Alive2Ok),
                send(1, frame(b"sst\xffp")),
                exact(1),
                names(&["st\u{fffd}p"]),
            ],
        ),
        case(
            "re-registration after STOP: a different creation",
            vec![
                send(0, alive2(b"phoenix")),
                observe(0, "first", Rule::Alive2Ok),
                send(1, frame(b"sphoenix")),
                exact(1),
                names(&[]),
                send(2, alive2(b"phoenix")),
                observe(2, "second", Rule::Alive2Again("first")),
            ],
        ),
    ]
}
