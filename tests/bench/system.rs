//! The machine and its processes: `socat` as a relay to compare with,
//! what /proc says about a process, and a description of the machine for
//! the report.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use crate::common::process::Daemon;
use crate::common::{free_port, procfs, wait_until};
use crate::SOCAT_BUFFER;

pub struct Socat;

impl Socat {
    /// `socat -b 262144 TCP-LISTEN:P,nodelay,reuseaddr[,fork] TCP:127.0.0.1:S,nodelay`,
    /// in its own process group (so that dropping it also kills the
    /// children of a `fork` one).
    pub fn start(server_port: u16, fork: bool) -> (Daemon, u16) {
        let port = free_port();
        let fork = if fork { ",fork" } else { "" };
        let child = Daemon::spawn(
            Command::new("socat")
                .args([
                    "-b",
                    SOCAT_BUFFER,
                    &format!("TCP-LISTEN:{port},bind=127.0.0.1,nodelay,reuseaddr{fork}"),
                    &format!("TCP:127.0.0.1:{server_port},nodelay"),
                ])
                .process_group(0),
            "socat",
        );
        wait_until(Duration::from_secs(10), "socat listening", || {
            procfs::listening(port)
        });
        (child, port)
    }
}

/// (VmRSS in KiB, thread count) of `pid`.
pub fn rss_and_threads(pid: u32) -> (u64, u64) {
    let field = |name: &str| {
        procfs::status_field(pid, name).unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("Threads:"))
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

pub fn describe_machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // not available_parallelism(): it counts only the CPUs we may run on
    let cpus = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let model = Some(cpuinfo.as_str())
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let socat = Command::new("socat")
        .arg("-V")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|line| line.starts_with("socat version"))
                .map(|line| line.split(" on ").next().unwrap_or(line).to_owned())
        })
        .unwrap_or_else(|| "no socat".to_owned());
    // `taskset -c 0 cargo test ...` pins every process of the run to one
    // CPU; say so, since it changes the latency figures.
    let allowed = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                .map(|list| list.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    format!("{cpus} CPUs ({model}), run on CPUs {allowed}, Linux {kernel}, {socat}")
}
