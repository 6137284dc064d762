//! The one-shot proxy listeners a lookup hands out: garbage in place of a
//! handshake is relayed verbatim, an unused listener expires without a
//! leak, the number waiting at once is capped, and a silent initiator is
//! closed after the handshake timeout.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::harness::{
    assert_healthy, connect, link_count, names, split, Sink, BATCHES, EXCHANGE_TIMEOUT, WORKERS,
};
use crate::common::rng::{seed, Rng};
use crate::common::{fake, procfs, wait_until, wait_until_ok, Proxy};
use epmdpxy::proxy::handshake::{encode_send_name_v5, encode_send_name_v6, DFLAG_NAME_ME};

/// Inputs sent to proxy listeners.
const LISTENER_INPUTS: usize = 3_000;

/// Garbage in place of a handshake, in pieces.
fn listener_input(rng: &mut Rng) -> (&'static str, Vec<u8>) {
    let flags = fake::SEND_NAME_FLAGS;
    match rng.below(11) {
        0 => ("nothing", Vec::new()),
        1 => {
            let len = rng.range(1, 64);
            ("random bytes", rng.bytes(len))
        }
        2 => {
            let len = rng.range(64, 8192);
            ("random block", rng.bytes(len))
        }
        3 => {
            // a length prefix promising more than ever comes
            let mut bytes = vec![0xff, 0xff];
            let len = rng.range(0, 3000);
            bytes.extend(rng.bytes(len));
            ("huge length prefix", bytes)
        }
        4 => {
            let mut bytes = vec![0x16, 0x03, 0x01];
            let len = rng.range(0, 600);
            bytes.extend(rng.bytes(len));
            ("TLS-like hello", bytes)
        }
        5 => {
            let mut bytes = encode_send_name_v6(flags, 42, "fz@localhost");
            let len = rng.range(0, 5000);
            bytes.extend(rng.bytes(len));
            ("send_name + garbage", bytes)
        }
        6 => {
            let mut bytes = encode_send_name_v5(5, 0x7fbd, "old@localhost");
            let len = rng.range(0, 500);
            bytes.extend(rng.bytes(len));
            ("old send_name + garbage", bytes)
        }
        7 => (
            "dynamic name",
            encode_send_name_v6(DFLAG_NAME_ME | flags, 0, "localhost"),
        ),
        8 => {
            let whole = encode_send_name_v6(flags, 1, "cut@localhost");
            let cut = rng.below(whole.len());
            ("truncated send_name", whole[..cut].to_vec())
        }
        9 => {
            let name = match rng.below(5) {
                0 => "a\0b@h".to_owned(),
                1 => "noat".to_owned(),
                2 => format!("{}@h", "x".repeat(2000)),
                3 => "sp ace@h".to_owned(),
                _ => "\u{202e}rtl@h".to_owned(),
            };
            ("hostile send_name", encode_send_name_v6(flags, 1, &name))
        }
        _ => {
            let mut name_bytes = encode_send_name_v6(flags, 3, "n@h");
            let last = name_bytes.len() - 1;
            name_bytes[last] = 0xff; // not UTF-8
            ("send_name not UTF-8", name_bytes)
        }
    }
}

#[test]
fn proxy_listeners_relay_garbage_verbatim() {
    let seed = seed("HOSTILE_SEED", "proxy_listeners_relay_garbage_verbatim");
    let mut rng = Rng::new(seed);
    let proxy = Proxy::start(&[]);
    let sentinel = Sink::start(proxy.epmd_port, &format!("sentinel{}", proxy.epmd_port));
    let sinks: Vec<Sink> = (0..WORKERS)
        .map(|w| Sink::start(proxy.epmd_port, &format!("lsink{w}_{}", proxy.epmd_port)))
        .collect();
    let mut expected = names(&[&sentinel.name]);
    expected.extend(sinks.iter().map(|s| s.name.clone()));
    assert_healthy(&proxy, &sentinel, &expected, "before fuzzing");

    let per_worker = LISTENER_INPUTS / BATCHES / WORKERS;
    let mut tried = 0;
    let mut relayed = 0usize;
    for batch in 0..BATCHES {
        let context = format!("seed {seed}, listener batch {batch}");
        let counts: Vec<(usize, usize)> = thread::scope(|scope| {
            let workers: Vec<_> = sinks
                .iter()
                .map(|sink| {
                    let mut rng = rng.fork();
                    let context = &context;
                    let epmd_port = proxy.epmd_port;
                    scope.spawn(move || {
                        let mut bytes = 0;
                        for i in 0..per_worker {
                            let (what, sent) = listener_input(&mut rng);
                            let port = fake::lookup(epmd_port, &sink.name)
                                .unwrap_or_else(|| panic!("{context}: lookup failed"));
                            let mut stream = connect(port);
                            let pieces = split(&mut rng, sent.clone());
                            for piece in &pieces {
                                stream.write_all(piece).expect("write to the listener");
                            }
                            if rng.percent(20) {
                                // half-close and wait: the sink's close must
                                // come back through the proxy as EOF
                                stream.shutdown(Shutdown::Write).expect("shutdown");
                                let mut back = Vec::new();
                                stream.read_to_end(&mut back).unwrap_or_else(|e| {
                                    panic!("{context} input {i} ({what}): no EOF back: {e}")
                                });
                                assert!(back.is_empty(), "{context}: the sink wrote nothing");
                            }
                            drop(stream);
                            let got = sink.next_connection(context);
                            assert!(
                                got == sent,
                                "{context} input {i} ({what}): sent {} bytes {:?}, the node got {} bytes {:?}",
                                sent.len(),
                                &sent[..sent.len().min(64)],
                                got.len(),
                                &got[..got.len().min(64)]
                            );
                            // a one-shot listener accepts one connection only
                            if rng.percent(5) {
                                let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                                assert!(
                                    TcpStream::connect_timeout(&address, EXCHANGE_TIMEOUT).is_err(),
                                    "{context}: listener {port} accepted a second connection"
                                );
                            }
                            bytes += sent.len();
                        }
                        (per_worker, bytes)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for (n, bytes) in counts {
            tried += n;
            relayed += bytes;
        }
        wait_until(EXCHANGE_TIMEOUT, "every fuzzed link to close", || {
            link_count(&proxy) == 0
        });
        assert_healthy(&proxy, &sentinel, &expected, &context);
    }
    assert!(tried >= LISTENER_INPUTS, "only {tried} inputs");
    eprintln!("proxy listener inputs tried: {tried}, {relayed} bytes relayed verbatim");
}

/// (open file descriptors, threads) of a process.
fn resources(pid: u32) -> (usize, usize) {
    let threads = procfs::status_field(pid, "Threads:").unwrap_or(0);
    (procfs::open_fds(pid).len(), threads as usize)
}

/// A proxy listener nobody connects to is closed after `--listener-timeout`:
/// its socket and threads go away (no leak), and its port refuses.
#[test]
fn unused_proxy_listeners_expire() {
    let proxy = Proxy::start(&["--listener-timeout", "1"]);
    let sink = Sink::start(proxy.epmd_port, &format!("idle{}", proxy.epmd_port));
    let pid = proxy.pid();
    let (fds, threads) = resources(pid);
    let ports: Vec<u16> = (0..200)
        .map(|_| fake::lookup(proxy.epmd_port, &sink.name).expect("lookup"))
        .collect();
    let (fds_open, threads_open) = resources(pid);
    assert!(
        fds_open >= fds + 100 && threads_open >= threads + 100,
        "200 waiting listeners show: fds {fds} -> {fds_open}, threads {threads} -> {threads_open}"
    );
    wait_until_ok(Duration::from_secs(15), "the listeners to expire", || {
        let now = resources(pid);
        if now == (fds, threads) {
            Ok(())
        } else {
            Err(format!(
                "fds, threads: {now:?}, at start {:?}",
                (fds, threads)
            ))
        }
    });
    for port in &ports[..10] {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
        assert!(
            TcpStream::connect_timeout(&address, EXCHANGE_TIMEOUT).is_err(),
            "expired listener {port} still accepts"
        );
    }
    assert_eq!(link_count(&proxy), 0);
}

/// At most `--max-pending-listeners` listeners wait at once; further
/// lookups are answered "not found" with a logged reason, and answered
/// again once a listener is connected to or expires.
#[test]
fn pending_listener_limit() {
    let proxy = Proxy::start(&["--max-pending-listeners", "5", "--listener-timeout", "4"]);
    let sink = Sink::start(proxy.epmd_port, &format!("busy{}", proxy.epmd_port));
    let ports: Vec<u16> = (0..5)
        .map(|i| fake::lookup(proxy.epmd_port, &sink.name).unwrap_or_else(|| panic!("lookup {i}")))
        .collect();
    assert_eq!(
        fake::lookup(proxy.epmd_port, &sink.name),
        None,
        "6th lookup"
    );
    wait_until(EXCHANGE_TIMEOUT, "the refusal to be logged", || {
        proxy.log().contains("--max-pending-listeners")
    });
    // Connecting to one frees its place at once.
    let mut link = connect(ports[0]);
    link.write_all(b"hello").expect("write");
    drop(link);
    assert_eq!(sink.next_connection("first listener"), b"hello");
    // (freed when the lookup's thread sees the accept: poll for it)
    let mut port = None;
    wait_until(EXCHANGE_TIMEOUT, "a place freed by a connection", || {
        port = fake::lookup(proxy.epmd_port, &sink.name);
        port.is_some()
    });
    let port = port.expect("a place freed by a connection");
    assert_eq!(
        fake::lookup(proxy.epmd_port, &sink.name),
        None,
        "full again"
    );
    drop(connect(port));
    sink.next_connection("second listener");
    // One place is free now; the other four listeners expire after 4 s and
    // free theirs: five lookups are answered again (each new one holds a
    // place again, so this needs the expired four).
    let mut answered = 0;
    wait_until(
        Duration::from_secs(15),
        "expired listeners to free places",
        || {
            if fake::lookup(proxy.epmd_port, &sink.name).is_some() {
                answered += 1;
            }
            answered == 5
        },
    );
}

/// A connection to a proxy listener that never completes its first
/// handshake message — silent, or dribbling — is closed after
/// `--handshake-timeout`, and its link goes away, even though the node
/// behind it already gave up. What it did send is passed on first.
#[test]
fn silent_initiators_are_closed_after_the_handshake_timeout() {
    let proxy = Proxy::start(&["-v", "--handshake-timeout", "1"]);
    let sink = Sink::start(proxy.epmd_port, &format!("patient{}", proxy.epmd_port));
    let port = fake::lookup(proxy.epmd_port, &sink.name).expect("lookup");
    let mut silent = connect(port);
    let port = fake::lookup(proxy.epmd_port, &sink.name).expect("lookup");
    let mut dribbler = connect(port);
    let hello = fake::send_name("slow", 1);
    let started = Instant::now();
    let mut sent = Vec::new();
    for &byte in &hello[..hello.len() - 1] {
        if dribbler.write_all(&[byte]).is_err() || started.elapsed() > Duration::from_secs(4) {
            break;
        }
        sent.push(byte);
        thread::sleep(Duration::from_millis(150));
    }
    for (what, stream) in [("silent", &mut silent), ("dribbling", &mut dribbler)] {
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest).map_err(|e| e.kind());
        assert!(
            !matches!(
                read,
                Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
            ),
            "the {what} initiator is still connected after {:?}",
            started.elapsed()
        );
    }
    // Both sink connections end; the dribbler's bytes arrived first.
    let mut got = [
        sink.next_connection("first"),
        sink.next_connection("second"),
    ];
    got.sort();
    assert_eq!(got[0], b"");
    assert!(
        sent.starts_with(&got[1]) && !got[1].is_empty(),
        "{got:?} vs {sent:?}"
    );
    wait_until(EXCHANGE_TIMEOUT, "both links to be gone", || {
        link_count(&proxy) == 0
    });
    wait_until(EXCHANGE_TIMEOUT, "the reason to be logged", || {
        proxy.log().matches("no handshake within 1s").count() == 2
    });
}
