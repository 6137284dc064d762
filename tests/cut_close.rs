//! Nodes that give up on a link during a cut (issue 17, item 5). A node
//! whose `net_ticktime` runs out sends its last ticks and closes its
//! socket; the cut holds those bytes and the close. `links` must say so
//! (`closed_by=`) while the cut lasts, and on `fix` the link must close
//! with a reason that says what happened (`closed by both during the
//! cut`), not with the `Broken pipe` of a write to a socket the node had
//! already closed, which reads like a fault of the proxy.
//!
//! Fake nodes (sockets that play a node on the wire) do exactly what a
//! node does at a tick timeout: a tick or two into the held link, then
//! close.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::proxy::{items, Watch};
use common::{fake, wait_until, wait_until_ok, Proxy};

/// How long the proxy may take to notice a close behind held bytes.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(10);

/// An Erlang distribution tick: a zero-length packet.
const TICK: &[u8] = &[0, 0, 0, 0];

/// A proxy with one node registered (the target) and a link to it from
/// `initiator` that carried bytes both ways, then `cut initiator | target`.
struct Setup {
    proxy: Proxy,
    link: fake::FakeLink,
    initiator: String,
    target: String,
}

fn cut_link() -> Setup {
    let proxy = Proxy::start(&[]);
    let fake_target = proxy.fake_target();
    let mut link = fake_target.open_link();
    let (target, initiator) = (fake_target.name.clone(), fake_target.initiator.clone());
    // Kept by leaking: the registration lasts as long as the test.
    std::mem::forget(fake_target);
    for (from, to) in [(0, 1), (1, 0)] {
        let ends = [&mut link.initiator, &mut link.target];
        ends[from].write_all(b"hello").expect("write");
        let mut got = [0u8; 5];
        ends[to]
            .read_exact(&mut got)
            .expect("the link carries bytes");
    }
    let cut = format!("cut {initiator} | {target}");
    assert_eq!(proxy.ctl(&cut), format!("OK {cut} (1 live link held)"));
    Setup {
        proxy,
        link,
        initiator,
        target,
    }
}

/// The one `links` line, once `check` accepts it.
fn link_line(proxy: &Proxy, what: &str, check: impl Fn(&str) -> bool) -> String {
    let mut line = String::new();
    wait_until_ok(NOTICE_TIMEOUT, what, || {
        let reply = proxy.ctl("links");
        line = items(&reply).next().unwrap_or_default().to_owned();
        if check(&line) {
            Ok(())
        } else {
            Err(reply)
        }
    });
    line
}

/// A node's last words: a tick into the held link, then it closes.
fn give_up(end: &mut TcpStream) {
    end.write_all(TICK).expect("tick");
    end.shutdown(Shutdown::Both).expect("close");
}

impl Setup {
    /// Fixes the cut, watching: the watch, to read the link's close from.
    fn fix(&self) -> Watch {
        let watch = Watch::open(&self.proxy);
        let fix = format!("fix {} | {}", self.initiator, self.target);
        assert_eq!(self.proxy.ctl(&fix), format!("OK {fix}"));
        watch
    }
}

/// The `link-close` event, once `watch` has it.
fn link_close(mut watch: Watch) -> String {
    watch.wait_for(&["link-close"]);
    let events = watch.events();
    let close = events.into_iter().find(|e| e.starts_with("link-close"));
    close.expect("a link-close event")
}

#[test]
fn both_nodes_closing_during_a_cut_show_and_close_as_such() {
    let mut cut = cut_link();
    give_up(&mut cut.link.initiator);
    give_up(&mut cut.link.target);
    let line = link_line(&cut.proxy, "closed_by=both on the held link", |line| {
        line.contains("closed_by=both")
    });
    assert!(line.contains(" state=cut "), "{line}");

    let close = link_close(cut.fix());
    assert!(
        close.ends_with("reason=\"closed by both during the cut\""),
        "{close}"
    );
    wait_until(NOTICE_TIMEOUT, "the link to be gone", || {
        cut.proxy.links().is_empty()
    });
}

/// One node gives up, the other still runs: the held close shows as that
/// node's, and after the fix the other gets the held bytes and the close,
/// and the link says who closed it.
#[test]
fn one_node_closing_during_a_cut_is_named_and_its_close_delivered() {
    let mut cut = cut_link();
    cut.link
        .initiator
        .write_all(TICK)
        .expect("the survivor ticks");
    give_up(&mut cut.link.target);
    let line = link_line(&cut.proxy, "the target's held close", |line| {
        line.contains("closed_by=")
    });
    let closer = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("closed_by="))
        .unwrap_or_default()
        .to_owned();
    assert!(closer.starts_with(&cut.target), "{line}");
    assert!(line.contains(" state=cut "), "{line}");

    let watch = cut.fix();
    // The survivor gets what was held, then the close.
    let mut got = Vec::new();
    cut.link
        .initiator
        .read_to_end(&mut got)
        .expect("held bytes, then EOF");
    assert_eq!(got, TICK);
    let _ = cut.link.initiator.shutdown(Shutdown::Both);
    let close = link_close(watch);
    let want = format!("reason=\"closed by {closer} during the cut\"");
    assert!(close.ends_with(&want), "{close}\nwant {want}");
}
