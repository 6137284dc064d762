//! What /proc says about TCP listeners and about a process (Linux only,
//! as the whole suite).

use std::fs;
use std::time::Duration;

/// The socket inodes of the TCP listeners on `port`, from /proc/net/tcp
/// (IPv4) or, with `ipv6`, /proc/net/tcp6.
pub fn listener_inodes(port: u16, ipv6: bool) -> Vec<u64> {
    let table = if ipv6 {
        "/proc/net/tcp6"
    } else {
        "/proc/net/tcp"
    };
    let suffix = format!(":{port:04X}");
    let text = fs::read_to_string(table).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            // local address, state 0A (LISTEN), inode
            let listens = fields.len() > 9 && fields[1].ends_with(&suffix) && fields[3] == "0A";
            listens.then(|| fields[9].parse().ok()).flatten()
        })
        .collect()
}

/// True once something listens on `port`, over IPv4 or IPv6. It reads
/// /proc instead of connecting, so probing never uses up a listener that
/// accepts only one connection.
pub fn listening(port: u16) -> bool {
    !listener_inodes(port, false).is_empty() || !listener_inodes(port, true).is_empty()
}

/// True if process `pid` holds a TCP listener on `port` (with `ipv6`: an
/// IPv6 one).
pub fn holds_listener(pid: u32, port: u16, ipv6: bool) -> bool {
    let sockets: Vec<String> = listener_inodes(port, ipv6)
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    if sockets.is_empty() {
        return false;
    }
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .is_ok_and(|target| sockets.iter().any(|s| target.to_string_lossy() == *s))
    })
}

/// The numbers of the file descriptors `pid` has open.
pub fn open_fds(pid: u32) -> Vec<usize> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|fd| fd.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A numeric field of /proc/PID/status: `Threads:`, or `VmRSS:` (KiB).
pub fn status_field(pid: u32, name: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// CPU time of every live thread of `pid` (nanosecond schedstat), so a
/// short window is measured more finely than /proc/PID/stat's 10 ms ticks.
pub fn cpu_time(pid: u32) -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let ns = fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok());
            total += ns.unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}
