//! Start-up and the end: binds the EPMD and control listeners, builds each
//! room's state and hands every room the handles it needs (the only file
//! that sees all four rooms), starts the acceptor threads, prints the
//! ready line, then waits for a reason to exit (a KILL request, a lost
//! listener) and returns it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use crate::base::rng::fresh_seed;
use crate::control::{self, Control, ControlSettings};
use crate::epmd::{self, Epmd, EpmdSettings};
use crate::events::Events;
use crate::partition::{Faults, Pattern};
use crate::proxy::{Proxy, ProxySettings};
use crate::{log_info, log_warn};

/// Everything the daemon is started with (flags and environment, resolved
/// by `cli.rs`).
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Listen,
    /// The EPMD room's settings (its port is the one bound).
    pub epmd: EpmdSettings,
    pub proxy: ProxySettings,
    pub control: ControlSettings,
    /// Nodes no fault applies to (`--exempt`).
    pub exempt: Vec<Pattern>,
    /// The first seed of shapes, chaos and jitter (`--seed`; else from
    /// the clock).
    pub seed: Option<u64>,
}

/// Where to listen.
#[derive(Clone, Debug)]
pub struct Listen {
    /// EPMD port; 0 picks a free one.
    pub epmd_port: u16,
    pub control_port: u16,
    /// Addresses the user asked for (`None`: the defaults).
    pub addresses: Option<Vec<IpAddr>>,
    pub control_address: IpAddr,
}

/// The addresses EPMD listens on. Defaults: 127.0.0.1 and ::1 (the latter
/// only if the system has IPv6), plus `host_loopbacks`: the loopback
/// addresses the host name resolves to (Debian and Ubuntu map it to
/// 127.0.1.1). Erlang nodes ask a peer's EPMD at the address the peer's
/// host name resolves to, so EPMD must answer there; OTP's epmd listens on
/// every address by default, which covers it. With an explicit list,
/// loopback is always added, as epmd does: 127.0.0.1 unless 0.0.0.0 is
/// asked for, ::1 unless :: is. On Linux `::` is dual-stack (it takes IPv4
/// too, and a later 0.0.0.0 or 127.0.0.1 on the same port fails as "in
/// use"), so `::` is bound first and what it may cover is not required.
/// Returns `(address, required)` pairs: a failure to bind a required one
/// is fatal, the others are skipped with a note.
pub fn epmd_addresses(asked: Option<&[IpAddr]>, host_loopbacks: &[IpAddr]) -> Vec<(IpAddr, bool)> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let Some(asked) = asked else {
        let mut out = vec![(v4, true), (v6, false)];
        for &address in host_loopbacks {
            if address.is_loopback() && !out.iter().any(|(a, _)| *a == address) {
                out.push((address, false));
            }
        }
        return out;
    };
    let any_v4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let any_v6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let dual_stack = asked.contains(&any_v6);
    let mut out: Vec<(IpAddr, bool)> = Vec::new();
    if dual_stack {
        out.push((any_v6, true));
    }
    for &address in asked {
        if !out.iter().any(|(a, _)| *a == address) {
            // Under `::` an IPv4 address may already be taken by it.
            out.push((address, !(dual_stack && address.is_ipv4())));
        }
    }
    for (loopback, covered_by) in [(v4, any_v4), (v6, any_v6)] {
        if !asked.contains(&covered_by) && !out.iter().any(|(a, _)| *a == loopback) {
            out.push((loopback, false));
        }
    }
    out
}

/// Upper bound on the addresses taken from the host name's resolution.
const MAX_HOST_ADDRESSES: usize = 8;

/// Where the host name is read, first readable wins: the kernel's own
/// (needs /proc), then the system's setting, for a container or chroot
/// that has /etc but no /proc. Without either (a static binary alone in an
/// empty root) there is no host name: see `host_name_loopbacks`.
const HOST_NAME_FILES: [&str; 2] = ["/proc/sys/kernel/hostname", "/etc/hostname"];

/// The loopback addresses this machine's host name (full and short form)
/// resolves to. Empty if the name cannot be read or resolved (no /proc
/// and no /etc/hostname, or no /etc/hosts to resolve it): EPMD then
/// listens on 127.0.0.1 and ::1 only, and `--address` adds the others.
pub fn host_name_loopbacks() -> Vec<IpAddr> {
    let Some(name) = read_host_name(&HOST_NAME_FILES) else {
        return Vec::new();
    };
    let name = name.as_str();
    let short = name.split('.').next().unwrap_or(name);
    let mut out: Vec<IpAddr> = Vec::new();
    for candidate in [name, short] {
        if candidate.is_empty() {
            continue;
        }
        let Ok(resolved) = (candidate, 0).to_socket_addrs() else {
            continue;
        };
        for address in resolved.map(|a| a.ip()) {
            if address.is_loopback() && !out.contains(&address) && out.len() < MAX_HOST_ADDRESSES {
                out.push(address);
            }
        }
    }
    out
}

/// This machine's names for a node's host part: the host name (full and
/// short), `localhost`, the loopback addresses, and every address EPMD
/// listens on (an unspecified address stands for interfaces not listed).
pub fn local_host_names(listening: &[IpAddr]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    };
    if let Some(host) = read_host_name(&HOST_NAME_FILES) {
        add(host.split('.').next().unwrap_or(&host).to_owned());
        add(host);
    }
    add("localhost".to_owned());
    let loopbacks = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    let host_loopbacks = host_name_loopbacks();
    let addresses = loopbacks.iter().chain(listening).chain(&host_loopbacks);
    for address in addresses.filter(|address| !address.is_unspecified()) {
        add(address.to_string());
    }
    names
}

/// The first non-blank name in `files`, trimmed; `None` if no file can be
/// read or every one is blank.
fn read_host_name(files: &[&str]) -> Option<String> {
    files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .map(|text| text.trim().to_owned())
        .find(|name| !name.is_empty())
}

/// True for an address list of only separators (epmd then uses its
/// defaults).
pub fn is_blank_address_list(text: &str) -> bool {
    text.chars().all(|c| c == ',' || c.is_whitespace())
}

/// Parses an address list separated by commas and/or spaces (epmd splits
/// `-address` and `ERL_EPMD_ADDRESS` on both).
pub fn parse_addresses(text: &str) -> Result<Vec<IpAddr>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.trim_matches(|c| c == '[' || c == ']')
                .parse()
                .map_err(|_| format!("bad address '{part}'"))
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|list| {
            if list.is_empty() {
                Err("empty address list".to_owned())
            } else {
                Ok(list)
            }
        })
}

fn bind_error(what: &str, address: SocketAddr, err: &io::Error) -> String {
    let hint = match err.kind() {
        io::ErrorKind::AddrInUse if what == "EPMD" => {
            " (is another epmd running? stop it with `epmd -kill`, or choose another --port)"
        }
        io::ErrorKind::AddrInUse => " (choose another --control-port)",
        io::ErrorKind::AddrNotAvailable => " (this machine has no such address)",
        io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        _ => "",
    };
    format!("cannot listen for {what} on {address}: {err}{hint}")
}

/// Binds every EPMD address; returns the listeners and the port they share.
fn bind_epmd(listen: &Listen) -> Result<(Vec<(IpAddr, TcpListener)>, u16), String> {
    let mut epmd_listeners = Vec::new();
    let mut port = listen.epmd_port;
    let host_loopbacks = if listen.addresses.is_none() {
        host_name_loopbacks()
    } else {
        Vec::new()
    };
    for (address, required) in epmd_addresses(listen.addresses.as_deref(), &host_loopbacks) {
        let socket = SocketAddr::new(address, port);
        match TcpListener::bind(socket) {
            Ok(listener) => {
                port = listener.local_addr().map_err(|e| e.to_string())?.port();
                epmd_listeners.push((address, listener));
            }
            Err(err) if required => return Err(bind_error("EPMD", socket, &err)),
            Err(err)
                if address.is_ipv4()
                    && err.kind() == io::ErrorKind::AddrInUse
                    && epmd_listeners
                        .iter()
                        .any(|(bound, _): &(IpAddr, TcpListener)| {
                            *bound == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                        }) =>
            {
                log_info!("{socket} is served by the dual-stack [::]:{port} listener");
            }
            Err(err) => log_info!("not listening on {socket}: {err}"),
        }
    }
    Ok((epmd_listeners, port))
}

/// Binds the control port; warns when it is reachable from elsewhere.
fn bind_control(listen: &Listen) -> Result<(TcpListener, u16), String> {
    let control_socket = SocketAddr::new(listen.control_address, listen.control_port);
    let control_listener = TcpListener::bind(control_socket)
        .map_err(|err| bind_error("control", control_socket, &err))?;
    let control_port = control_listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    if !listen.control_address.is_loopback() {
        log_warn!(
            "warning: the control port listens on {} and has no authentication: anyone who can reach it can cut your cluster",
            listen.control_address
        );
    }
    Ok((control_listener, control_port))
}

/// Tells the daemon why it must end when dropped: an acceptor that
/// returns or panics drops it.
struct EndsDaemon {
    exit: Sender<String>,
    why: String,
}

impl Drop for EndsDaemon {
    fn drop(&mut self) {
        let why = if std::thread::panicking() {
            format!("{} (its thread panicked)", self.why)
        } else {
            std::mem::take(&mut self.why)
        };
        let _ = self.exit.send(why);
    }
}

/// Runs `serve` on a thread of its own; if it ever ends, the daemon is
/// told why it must end too (`lost`).
fn spawn_acceptor(
    name: String,
    exit: &Sender<String>,
    lost: String,
    serve: impl FnOnce() + Send + 'static,
) -> Result<(), String> {
    let guard = EndsDaemon {
        exit: exit.clone(),
        why: lost,
    };
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _ends_daemon = guard;
            serve();
        })
        .map(|_| ())
        .map_err(|err| format!("cannot start an acceptor thread: {err}"))
}

/// Binds everything, builds the rooms and serves until something ends the
/// daemon; returns why (a start-up problem is an `Err`).
pub fn run(mut config: Config) -> Result<String, String> {
    let (epmd_listeners, port) = bind_epmd(&config.listen)?;
    let (control_listener, control_port) = bind_control(&config.listen)?;
    config.epmd.port = port;
    let seed = config.seed.unwrap_or_else(fresh_seed);
    let events = Arc::new(Events::default());
    let faults = Faults::new(&config.exempt);
    let bound: Vec<IpAddr> = epmd_listeners.iter().map(|(address, _)| *address).collect();
    let here = local_host_names(&bound);
    let proxy = Proxy::new(config.proxy, faults, Arc::clone(&events), seed, here);
    let (exit, ending) = mpsc::channel();
    let epmd = Epmd::new(config.epmd, proxy, events, exit.clone());
    let control = Control::new(config.control, Arc::clone(&epmd), seed);
    let addresses: Vec<String> = epmd_listeners
        .iter()
        .map(|(address, _)| address.to_string())
        .collect();
    for (address, listener) in epmd_listeners {
        let epmd = Arc::clone(&epmd);
        let lost = format!("the EPMD listener on {address} stopped accepting");
        spawn_acceptor(format!("epmd-accept-{address}"), &exit, lost, move || {
            epmd::server::accept_loop(&epmd, &listener)
        })?;
    }
    let lost = "the control listener stopped accepting".to_owned();
    spawn_acceptor("control-accept".to_owned(), &exit, lost, move || {
        control::session::accept_loop(&control, &control_listener)
    })?;
    // Tests and scripts parse `ready epmd_port=P control_port=C`: new
    // fields go at the end.
    log_warn!(
        "epmdpxy {} ready epmd_port={port} control_port={control_port} addresses={} control_address={} seed={seed}",
        env!("CARGO_PKG_VERSION"),
        addresses.join(","),
        config.listen.control_address
    );
    ending
        .recv()
        .map_err(|_| "every thread that could end the daemon is gone".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn default_and_explicit_addresses() {
        assert_eq!(
            epmd_addresses(None, &[]),
            vec![(ip("127.0.0.1"), true), (ip("::1"), false)]
        );
        assert_eq!(
            epmd_addresses(Some(&[ip("10.0.0.1")]), &[ip("127.0.1.1")]),
            vec![
                (ip("10.0.0.1"), true),
                (ip("127.0.0.1"), false),
                (ip("::1"), false)
            ]
        );
        assert_eq!(
            epmd_addresses(Some(&[ip("0.0.0.0")]), &[]),
            vec![(ip("0.0.0.0"), true), (ip("::1"), false)]
        );
        // `::` first (dual-stack); IPv4 after it may fail as in use.
        assert_eq!(
            epmd_addresses(Some(&[ip("0.0.0.0"), ip("::")]), &[]),
            vec![(ip("::"), true), (ip("0.0.0.0"), false)]
        );
        assert_eq!(
            epmd_addresses(Some(&[ip("::")]), &[]),
            vec![(ip("::"), true), (ip("127.0.0.1"), false)]
        );
        assert_eq!(
            epmd_addresses(Some(&[ip("::1")]), &[]),
            vec![(ip("::1"), true), (ip("127.0.0.1"), false)]
        );
    }

    #[test]
    fn host_name_loopbacks_join_the_defaults() {
        // Debian's 127.0.1.1 is added; a non-loopback address never is,
        // nor a duplicate.
        assert_eq!(
            epmd_addresses(None, &[ip("127.0.1.1"), ip("192.168.1.5"), ip("127.0.0.1")]),
            vec![
                (ip("127.0.0.1"), true),
                (ip("::1"), false),
                (ip("127.0.1.1"), false)
            ]
        );
        // Whatever this machine resolves, only loopback comes back.
        assert!(host_name_loopbacks().iter().all(IpAddr::is_loopback));
    }

    #[test]
    fn host_name_from_the_first_readable_file() {
        let dir = std::env::temp_dir().join(format!("epmdpxy-hostname-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let blank = dir.join("blank");
        let named = dir.join("named");
        std::fs::write(&blank, " \n").expect("write");
        std::fs::write(&named, "box.example\n").expect("write");
        let missing = dir.join("missing");
        let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_owned();
        let (blank, named, missing) = (path(&blank), path(&named), path(&missing));
        assert_eq!(
            read_host_name(&[&missing, &blank, &named]),
            Some("box.example".to_owned())
        );
        // Nothing readable: no name, and so no extra addresses.
        assert_eq!(read_host_name(&[&missing, &blank]), None);
        assert_eq!(read_host_name(&[]), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn address_lists() {
        assert_eq!(
            parse_addresses("127.0.0.1, ::1"),
            Ok(vec![ip("127.0.0.1"), ip("::1")])
        );
        assert_eq!(parse_addresses("[::1]"), Ok(vec![ip("::1")]));
        assert_eq!(
            parse_addresses("10.0.0.1 ::1,, 127.0.0.1"),
            Ok(vec![ip("10.0.0.1"), ip("::1"), ip("127.0.0.1")])
        );
        assert!(is_blank_address_list(""));
        assert!(is_blank_address_list(" , ,"));
        assert!(!is_blank_address_list("::1"));
        assert!(parse_addresses("").is_err());
        assert!(parse_addresses("localhost").is_err());
    }
}
