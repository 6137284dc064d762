//! What a newcomer trips over (issue 17), on the control port: a usage
//! error names what is missing and shows the right form, and a count of
//! one is singular in every reply that counts.
//!
//! Without Erlang: fake nodes (sockets that play a node on the wire)
//! register and link, so each reply can be asked for with exactly one of
//! a thing.

mod common;

use std::net::TcpListener;

use common::{fake, wait_until, Proxy};

/// How long a registration or a link may take to show in a report.
const SHOW_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Each line, and the whole `ERR` it must be answered with.
const USAGE_ERRORS: &[(&str, &str)] = &[
    ("isolate", "ERR isolate needs a node name: isolate N"),
    ("rejoin", "ERR rejoin needs a node name: rejoin N"),
    ("exempt", "ERR exempt needs a node name: exempt N"),
    ("unexempt", "ERR unexempt needs a node name: unexempt N"),
    (
        "delay a | b",
        "ERR delay needs a duration: delay A | B 200ms [jitter 50ms]",
    ),
    (
        "delay a|b",
        "ERR delay needs a duration: delay A | B 200ms [jitter 50ms]",
    ),
    (
        "delay a | b jitter 50ms",
        "ERR delay needs a duration: delay A | B 200ms [jitter 50ms]",
    ),
    (
        "delay a | b 200ms jitter",
        "ERR jitter needs a duration: delay A | B 200ms [jitter 50ms]",
    ),
    (
        "throttle a | b",
        "ERR throttle needs a rate: throttle A | B 64kbps",
    ),
    ("cut a |", "ERR island 2 of 'a |' is empty: cut A,B | C,D"),
    ("cut | b", "ERR island 1 of '| b' is empty: cut A,B | C,D"),
    (
        "cut a | b |",
        "ERR island 3 of 'a | b |' is empty: cut A,B | C,D",
    ),
    ("fix a |", "ERR island 2 of 'a |' is empty: fix A,B | C,D"),
    ("reset a |", "ERR island 2 of 'a |' is empty: reset A | B"),
    ("clear | b", "ERR island 1 of '| b' is empty: clear A | B"),
    (
        "delay a | 200ms",
        "ERR island 2 of 'a |' is empty: delay A | B 200ms [jitter 50ms]",
    ),
    ("cut a ->", "ERR nothing after -> in 'a ->': cut A -> B"),
    ("cut -> b", "ERR nothing before -> in '-> b': cut A -> B"),
    ("cut", "ERR cut needs islands: cut A,B | C,D or cut A -> B"),
    ("cut a", "ERR cut needs two islands or more: cut A,B | C,D"),
    (
        "reset a",
        "ERR reset needs two islands or more: reset A | B",
    ),
    (
        "cut a,,b | c",
        "ERR empty node name in 'a,,b': cut A,B | C,D",
    ),
    ("isolate a,", "ERR empty node name in 'a,': isolate N"),
];

#[test]
fn usage_errors_name_what_is_missing_and_the_right_form() {
    let proxy = Proxy::start(&[]);
    let mut wrong = Vec::new();
    for (line, want) in USAGE_ERRORS {
        let got = proxy.ctl(line);
        if got != *want {
            wrong.push(format!("{line:?}\n   got  {got:?}\n   want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    // Nothing was applied by any of them.
    assert!(proxy.ctl("status").starts_with("OK 0 faults"));
}

/// The first line of the answer to `line`.
fn head(proxy: &Proxy, line: &str) -> String {
    let reply = proxy.ctl_ok(line);
    reply.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn a_count_of_one_is_singular() {
    let proxy = Proxy::start(&[]);
    let fake_target = proxy.fake_target();
    let (target, initiator) = (&fake_target.name, &fake_target.initiator);
    wait_until(SHOW_TIMEOUT, "the node to register", || {
        proxy.registered_names() == [target.clone()]
    });
    assert_eq!(head(&proxy, "nodes"), "OK 1 node");
    assert_eq!(
        head(&proxy, "matrix"),
        "OK 1 node, 0 live links (rows send, columns receive)"
    );

    let _link = fake_target.open_link();
    wait_until(SHOW_TIMEOUT, "the link to show", || {
        proxy.links().len() == 1
    });
    assert_eq!(head(&proxy, "links"), "OK 1 link");
    assert_eq!(
        head(&proxy, "matrix"),
        "OK 1 node, 1 live link (rows send, columns receive)"
    );

    proxy.ctl_ok("seed 7");
    assert_eq!(
        proxy.ctl_ok(&format!("cut {initiator} | {target}")),
        format!("OK cut {initiator} | {target} (1 live link held)")
    );
    assert_eq!(head(&proxy, "status"), "OK 1 fault seed=7");
    proxy.ctl_ok("heal");
    assert_eq!(
        proxy.ctl_ok(&format!("reset {initiator} | {target}")),
        format!("OK reset {initiator} | {target} (1 link reset, each end as it next sends)")
    );
}

/// Three nodes make a ring of one cut (each keeps a majority of two).
#[test]
fn a_ring_of_one_cut_says_so() {
    let proxy = Proxy::start(&[]);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let names: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|base| proxy.unique_name(base))
        .collect();
    let _registrations: Vec<_> = names
        .iter()
        .map(|name| fake::register(proxy.epmd_port, name, port))
        .collect();
    wait_until(SHOW_TIMEOUT, "three nodes to register", || {
        proxy.registered_names().len() == 3
    });
    let reply = proxy.ctl_ok("ring");
    let cuts = reply
        .lines()
        .filter(|line| line.starts_with("cut "))
        .count();
    let want = match cuts {
        1 => "OK ring: 1 cut (0 live links held)".to_owned(),
        n => format!("OK ring: {n} cuts (0 live links held)"),
    };
    assert_eq!(reply.lines().next(), Some(want.as_str()), "{reply}");
}
