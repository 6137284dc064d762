//! End-to-end tests with real Erlang/OTP nodes registered with `epmdpxy`:
//! partitions cut and fixed through the control port, and conformance of
//! the NAMES reply with OTP's own `epmd -names` client.

mod common;

use std::time::{Duration, Instant};

use common::{
    check_views, connect_missing, epmd_names, full_mesh, islands, require_erl, wait_until,
    wait_until_ok, NodeOptions, Proxy,
};

/// How long a cut or a heal may take to show in every node's `nodes()`.
/// With `net_ticktime 2` a silent link is declared down after 2–3 s.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long connect_all alone gets to rebuild the mesh after a fix before
/// missing pairs are pinged directly.
const MERGE_GRACE: Duration = Duration::from_secs(5);

#[test]
fn five_node_cut_and_fix() {
    if !require_erl() {
        return;
    }
    let test_start = Instant::now();
    let proxy = Proxy::start(&["-v"]);
    // Default `connect_all` (transitive connections on) and OTP 25's
    // `global` with prevent_overlapping_partitions: what a real cluster
    // does. A cut must still leave two clean islands: every cross link
    // stops together, so no node can relay a disconnect request from one
    // island into the other. A short tick makes a silent cut visible
    // within a few seconds.
    let options = NodeOptions {
        net_ticktime: 2,
        connect_all: true,
        hidden: false,
    };
    let bases = ["n1", "n2", "n3", "n4", "n5"];
    let mut nodes = proxy.start_nodes(&bases, &options);
    let names: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();

    // Full mesh: ping every pair rather than relying on connect_all.
    let mesh = full_mesh(nodes.len());
    wait_until_ok(CONVERGE_TIMEOUT, "a full mesh of 5 nodes", || {
        connect_missing(&mut nodes, &mesh);
        check_views(&mut nodes, &mesh)
    });
    eprintln!("full mesh after {:?}", test_start.elapsed());

    // Cut {n1,n2} from {n3,n4,n5}, naming nodes by their short names.
    let spec = format!(
        "{},{} | {},{},{}",
        names[0], names[1], names[2], names[3], names[4]
    );
    let reply = proxy.ctl(&format!("cut {spec}"));
    assert!(
        reply.starts_with("OK cut"),
        "cut {spec}: unexpected reply {reply:?}"
    );
    let cut_at = Instant::now();
    let split = islands(nodes.len(), &[&[0, 1], &[2, 3, 4]]);
    wait_until_ok(CONVERGE_TIMEOUT, "islands {n1,n2} and {n3,n4,n5}", || {
        check_views(&mut nodes, &split)
    });
    eprintln!("partition visible after {:?}", cut_at.elapsed());

    // Fix the same cut. Links come back lazily: one ping across, then
    // connect_all and global rebuild the rest of the mesh (through new
    // PORT_PLEASE2 lookups and new proxy listeners), usually within half a
    // second. Should global drop a fresh link while the islands merge,
    // pairs still missing after a grace period are pinged directly.
    let reply = proxy.ctl(&format!("fix {spec}"));
    assert!(
        reply.starts_with("OK"),
        "fix {spec}: unexpected reply {reply:?}"
    );
    let fixed_at = Instant::now();
    let across = nodes[2].full_name().to_string();
    wait_until(CONVERGE_TIMEOUT, "n1 to reach n3 after the fix", || {
        nodes[0].ping(&across)
    });
    let mut extra_pings = 0;
    wait_until_ok(CONVERGE_TIMEOUT, "a full mesh again after the fix", || {
        if fixed_at.elapsed() > MERGE_GRACE {
            extra_pings += connect_missing(&mut nodes, &mesh);
        }
        check_views(&mut nodes, &mesh)
    });
    eprintln!(
        "full mesh again after {:?} ({extra_pings} pings besides n1 -> n3); test took {:?}",
        fixed_at.elapsed(),
        test_start.elapsed()
    );
}

#[test]
fn epmd_names_lists_nodes() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    let mut nodes = proxy.start_nodes(&["a", "b"], &NodeOptions::default());
    let stayer = nodes.remove(0);
    let leaver = nodes.remove(0);
    let (stayer_name, leaver_name) = (
        stayer.short_name().to_string(),
        leaver.short_name().to_string(),
    );

    // OTP's own client must parse our NAMES reply.
    let listing = epmd_names(proxy.epmd_port);
    for name in [&stayer_name, &leaver_name] {
        assert!(
            listing.contains(&format!("name {name} at port ")),
            "`epmd -port {} -names` does not list {name}:\n{listing}",
            proxy.epmd_port
        );
    }
    let registered = proxy.registered_names();
    assert_eq!(
        registered,
        sorted(vec![stayer_name.clone(), leaver_name.clone()])
    );

    // A node that halts closes its registration socket: it must vanish
    // from both views, while the other one stays.
    leaver.stop();
    wait_until_ok(
        Duration::from_secs(10),
        "the stopped node to unregister",
        || {
            let registered = proxy.registered_names();
            let listing = epmd_names(proxy.epmd_port);
            if registered != [stayer_name.clone()] {
                return Err(format!("control `nodes` lists {registered:?}"));
            }
            if listing.contains(&format!("name {leaver_name} at port ")) {
                return Err(format!(
                    "`epmd -names` still lists {leaver_name}:\n{listing}"
                ));
            }
            if !listing.contains(&format!("name {stayer_name} at port ")) {
                return Err(format!("`epmd -names` lost {stayer_name}:\n{listing}"));
            }
            Ok(())
        },
    );
    drop(stayer);
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}
