//! The run: the rows (direct, socat, epmdpxy) and their routes, the
//! figures each measurement fills in, and the cut of a busy link.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::link::{
    bulk_down, bulk_up, command_bytes, connect_link, link_setups, round_trips, FakeNode,
};
use super::otp::{erpc_figures, scale_figures};
use super::system::{describe_machine, load_average, Socat};
use crate::common::epmd::RealEpmd;
use crate::common::process::Daemon;
use crate::common::procfs::cpu_time;
use crate::common::{fake, program_on_path, require_erl, wait_until, Proxy};
use crate::{mesh_sizes, Sizes, CHUNK, SOCAT_BUFFER};

/// Figures of one row (direct, socat or epmdpxy).
#[derive(Default)]
pub struct RowFigures {
    pub label: String,
    pub bulk_up_gbit: f64,
    pub bulk_down_gbit: f64,
    /// CPU time of the relay process per GiB relayed during bulk (best
    /// round); `None` for direct.
    pub relay_cpu_ms_per_gib: Option<f64>,
    /// CPU time of the relay process over all ping-pong round trips.
    pub relay_cpu_pinging: Duration,
    pub ping: Vec<Duration>,
    pub split: Vec<Duration>,
    pub setups: u64,
    pub setup_elapsed: Duration,
    /// How a link setup is done on this row.
    pub setup_note: String,
}

impl RowFigures {
    pub fn setups_per_second(&self) -> f64 {
        self.setups as f64 / self.setup_elapsed.as_secs_f64().max(1e-9)
    }
}

/// `erpc:call` round trips through one EPMD.
pub struct ErpcFigures {
    pub label: String,
    pub calls: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
}

/// One step of the full-mesh scale figure.
pub struct ScaleFigures {
    pub nodes: usize,
    pub real_nodes: usize,
    pub links: usize,
    pub threads: u64,
    pub rss_kib: u64,
    pub rss_per_link_kib: f64,
}

/// The proxy's CPU time on a busy link, then while that link is cut.
pub struct CutFigures {
    pub window: Duration,
    pub busy_cpu: Duration,
    pub busy_bytes: u64,
    pub cut_cpu: Duration,
    pub cut_bytes: u64,
    pub resumed: bool,
}

pub struct Report {
    pub machine: String,
    /// /proc/loadavg at the start and at the end of the run: the machine
    /// may be shared, and load skews every figure.
    pub load: (String, String),
    pub rows: Vec<RowFigures>,
    pub erpc: Vec<ErpcFigures>,
    pub scale: Vec<ScaleFigures>,
    pub scale_baseline: (u64, u64),
    pub cut: Option<CutFigures>,
    pub notes: Vec<String>,
}

pub fn run(sizes: &Sizes) -> Report {
    let mut notes = Vec::new();
    let mut machine = describe_machine();
    let load_at_start = load_average();
    let proxy = Proxy::start(&[]);
    let proxy_pid = proxy.pid();
    let server_name = format!("benchsrv_{}", proxy.epmd_port);
    let server = FakeNode::start(&format!("{server_name}@localhost"));
    let _proxy_registration = fake::register(proxy.epmd_port, &server_name, server.port);

    // OTP's own epmd answers the lookups of the direct and socat rows, so
    // every row's link setup includes one EPMD round trip.
    let real_epmd = if program_on_path("epmd") {
        Some(RealEpmd::start(&[]))
    } else {
        notes.push(
            "`epmd` not found: direct and socat link setups skip the lookup; \
             erpc is measured through epmdpxy only"
                .to_owned(),
        );
        None
    };
    let direct_name = format!("benchdirect_{}", proxy.epmd_port);
    let socat_name = format!("benchsocat_{}", proxy.epmd_port);

    let mut routes = vec![Route {
        figures: RowFigures {
            label: "direct".to_owned(),
            ..RowFigures::default()
        },
        data: Lookup::Fixed(server.port),
        setup: Lookup::Fixed(server.port),
        relay_pid: None,
        _children: Vec::new(),
        _registrations: Vec::new(),
    }];
    if let Some(epmd) = &real_epmd {
        routes[0].setup = Lookup::Epmd {
            port: epmd.port,
            name: direct_name.clone(),
        };
        routes[0]
            ._registrations
            .push(fake::register(epmd.port, &direct_name, server.port));
    }
    if program_on_path("socat") {
        // One single-shot socat carries the data link; a `fork` one takes
        // the link setups (a child per connection, as a socat relay for
        // many links would run).
        let (data_socat, data_port) = Socat::start(server.port, false);
        let (fork_socat, fork_port) = Socat::start(server.port, true);
        let mut route = Route {
            figures: RowFigures {
                label: format!("socat -b {SOCAT_BUFFER}"),
                ..RowFigures::default()
            },
            data: Lookup::Fixed(data_port),
            setup: Lookup::Fixed(fork_port),
            relay_pid: Some(data_socat.pid()),
            _children: vec![data_socat, fork_socat],
            _registrations: Vec::new(),
        };
        if let Some(epmd) = &real_epmd {
            route.setup = Lookup::Epmd {
                port: epmd.port,
                name: socat_name.clone(),
            };
            route
                ._registrations
                .push(fake::register(epmd.port, &socat_name, fork_port));
        }
        routes.push(route);
    } else {
        notes.push("`socat` not found: its row is missing".to_owned());
    }
    routes.push(Route {
        figures: RowFigures {
            label: "epmdpxy".to_owned(),
            ..RowFigures::default()
        },
        data: Lookup::Epmd {
            port: proxy.epmd_port,
            name: server_name.clone(),
        },
        setup: Lookup::Epmd {
            port: proxy.epmd_port,
            name: server_name.clone(),
        },
        relay_pid: Some(proxy_pid),
        _children: Vec::new(),
        _registrations: Vec::new(),
    });
    for route in &mut routes {
        route.figures.setup_note = match (&route.setup, route.figures.label.as_str()) {
            (Lookup::Fixed(_), _) => "connect + send_name, status and challenge + 1 echoed byte (no lookup)".to_owned(),
            (Lookup::Epmd { .. }, "epmdpxy") => {
                "PORT_PLEASE2 to epmdpxy + connect to the fresh proxy port + send_name, status and challenge + 1 echoed byte"
                    .to_owned()
            }
            (Lookup::Epmd { .. }, "direct") => {
                "PORT_PLEASE2 to OTP epmd + connect to the node + send_name, status and challenge + 1 echoed byte"
                    .to_owned()
            }
            (Lookup::Epmd { .. }, _) => {
                "PORT_PLEASE2 to OTP epmd (node registered with socat's port) + connect through socat `fork` + send_name, status and challenge + 1 echoed byte"
                    .to_owned()
            }
        };
    }

    // Bulk, ping-pong, split reply and link setups: one data link per row,
    // rows interleaved round by round.
    let initiator = format!("benchcli_{}", proxy.epmd_port);
    let mut links: Vec<TcpStream> = routes
        .iter()
        .map(|route| {
            let port = route.data.resolve().expect("data link lookup");
            connect_link(port, &initiator).expect("data link")
        })
        .collect();
    let rounds = sizes.rounds.max(1);
    for round in 0..rounds {
        for (route, link) in routes.iter_mut().zip(&mut links) {
            if round >= sizes.bulk_rounds {
                break;
            }
            let cpu_before = route.relay_pid.map(cpu_time);
            let up = bulk_up(link, sizes.bulk_bytes).expect("bulk up");
            let down = bulk_down(link, sizes.bulk_bytes).expect("bulk down");
            let figures = &mut route.figures;
            figures.bulk_up_gbit = figures.bulk_up_gbit.max(up);
            figures.bulk_down_gbit = figures.bulk_down_gbit.max(down);
            if let (Some(pid), Some(before)) = (route.relay_pid, cpu_before) {
                let gib = 2.0 * sizes.bulk_bytes as f64 / f64::from(1 << 30);
                let ms = cpu_time(pid).saturating_sub(before).as_secs_f64() * 1e3 / gib;
                figures.relay_cpu_ms_per_gib =
                    Some(figures.relay_cpu_ms_per_gib.map_or(ms, |best| best.min(ms)));
            }
        }
        let share = |total: usize| total / rounds + usize::from(round < total % rounds);
        for (route, link) in routes.iter_mut().zip(&mut links) {
            let cpu_before = route.relay_pid.map(cpu_time);
            let samples = round_trips(link, b'P', share(sizes.pings)).expect("ping-pong");
            if let (Some(pid), Some(before)) = (route.relay_pid, cpu_before) {
                route.figures.relay_cpu_pinging += cpu_time(pid).saturating_sub(before);
            }
            route.figures.ping.extend(samples);
        }
        for (route, link) in routes.iter_mut().zip(&mut links) {
            let samples = round_trips(link, b'S', share(sizes.splits)).expect("split reply");
            route.figures.split.extend(samples);
        }
        for route in &mut routes {
            let budget = sizes.setup_time / rounds as u32;
            let limit = share(sizes.setup_max);
            let (count, elapsed) =
                link_setups(&route.setup, &initiator, budget, limit).expect("link setup");
            route.figures.setups += count;
            route.figures.setup_elapsed += elapsed;
        }
    }
    drop(links);

    // A cut costs no CPU: on the same proxy and fake node.
    let cut = Some(cut_figures(
        &proxy,
        proxy_pid,
        &server,
        &server_name,
        sizes.cut_for,
    ));

    // erpc and the full mesh need real nodes.
    let mut erpc = Vec::new();
    let mut scale = Vec::new();
    let mut scale_baseline = (0, 0);
    if require_erl() {
        let mut erpc_routes = Vec::new();
        if let Some(epmd) = &real_epmd {
            erpc_routes.push(("OTP epmd", epmd.port));
        }
        erpc_routes.push(("epmdpxy", proxy.epmd_port));
        let otp;
        (erpc, otp) = erpc_figures(&erpc_routes, sizes.erpc_calls, sizes.erpc_rounds);
        machine.push_str(&format!(", OTP {}", otp.trim_matches('"')));
        drop(proxy);
        let (baseline, steps) = scale_figures(&mesh_sizes(sizes));
        scale_baseline = baseline;
        scale = steps;
    } else {
        notes.push("`erl` not found: the Erlang and scale figures are missing".to_owned());
    }
    drop(real_epmd);

    Report {
        machine,
        load: (load_at_start, load_average()),
        rows: routes.into_iter().map(|route| route.figures).collect(),
        erpc,
        scale,
        scale_baseline,
        cut,
        notes,
    }
}

/// Where a link goes: a fixed port, or the port an EPMD hands out.
pub enum Lookup {
    Fixed(u16),
    Epmd { port: u16, name: String },
}

impl Lookup {
    pub fn resolve(&self) -> io::Result<u16> {
        match self {
            Lookup::Fixed(port) => Ok(*port),
            Lookup::Epmd { port, name } => fake::lookup(*port, name)
                .ok_or_else(|| io::Error::other(format!("lookup of {name} at EPMD {port} failed"))),
        }
    }
}

/// One row: its figures and what keeps it alive.
pub struct Route {
    pub figures: RowFigures,
    pub data: Lookup,
    pub setup: Lookup,
    /// The process that relays the data link (socat, epmdpxy).
    pub relay_pid: Option<u32>,
    pub _children: Vec<Daemon>,
    pub _registrations: Vec<TcpStream>,
}

pub fn cut_figures(
    proxy: &Proxy,
    pid: u32,
    server: &FakeNode,
    server_name: &str,
    window: Duration,
) -> CutFigures {
    let initiator = format!("benchcut_{}", proxy.epmd_port);
    let port = fake::lookup(proxy.epmd_port, server_name).expect("lookup for the cut link");
    let mut link = connect_link(port, &initiator).expect("cut link");
    link.write_all(&command_bytes(b'U', u64::MAX))
        .expect("start the upload");
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = link.try_clone().expect("clone");
    let writer_stop = Arc::clone(&stop);
    let streamer = thread::spawn(move || {
        let chunk = vec![0x5a_u8; CHUNK];
        // The write timeout would end the stream during a long cut; the
        // cut is shorter than IO_TIMEOUT.
        while !writer_stop.load(Ordering::SeqCst) {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });

    let flowing = |since: u64| server.received() > since + CHUNK as u64;
    let start_bytes = server.received();
    wait_until(Duration::from_secs(10), "bytes flowing", || {
        flowing(start_bytes)
    });
    let (busy_cpu, busy_bytes) = cpu_window(pid, server, window);

    let reply = proxy.ctl(&format!("cut {initiator} | {server_name}"));
    assert!(reply.starts_with("OK"), "cut: {reply}");
    // Bytes already in the proxy → node socket buffers still arrive; wait
    // until the node has received them all.
    let mut last = server.received();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        thread::sleep(Duration::from_millis(50));
        let now = server.received();
        if now == last {
            break;
        }
        assert!(Instant::now() < deadline, "bytes still cross the cut");
        last = now;
    }
    let (cut_cpu, cut_bytes) = cpu_window(pid, server, window);

    let reply = proxy.ctl(&format!("fix {initiator} | {server_name}"));
    assert!(reply.starts_with("OK"), "fix: {reply}");
    let healed_at = server.received();
    let mut resumed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if flowing(healed_at) {
            resumed = true;
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    let _ = link.shutdown(Shutdown::Both);
    let _ = streamer.join();
    CutFigures {
        window,
        busy_cpu,
        busy_bytes,
        cut_cpu,
        cut_bytes,
        resumed,
    }
}

/// The proxy's CPU time and the bytes the node received over `window`.
pub fn cpu_window(pid: u32, server: &FakeNode, window: Duration) -> (Duration, u64) {
    let cpu_before = cpu_time(pid);
    let bytes_before = server.received();
    thread::sleep(window); // the window *is* the measurement
    (
        cpu_time(pid).saturating_sub(cpu_before),
        server.received() - bytes_before,
    )
}
