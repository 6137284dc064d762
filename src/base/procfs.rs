//! Which process holds a TCP connection on this machine, read from Linux's
//! `/proc`: the connection's socket inode from `/proc/net/tcp` and
//! `/proc/net/tcp6`, then the process whose `/proc/PID/fd` links to
//! `socket:[inode]`. Used only on the slow path (a link whose first
//! handshake message cannot be read, e.g. TLS distribution); the work is
//! bounded, and any file that cannot be read simply answers "not known".
//! Reading another user's `/proc/PID/fd` needs that user or root.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Most processes looked at in one scan.
const MAX_PROCESSES: usize = 65_536;
/// Most descriptor entries read in one scan, over all processes.
const MAX_DESCRIPTORS: usize = 1_000_000;
/// Most lines read from one `/proc/net/tcp*` table.
const MAX_TABLE_LINES: usize = 1_000_000;

/// One row of `/proc/net/tcp*`: local address, remote address, inode.
pub type SocketRow = (SocketAddr, SocketAddr, u64);

/// The socket inode of the TCP connection whose local end is `local` and
/// remote end `remote`, as the machine's socket tables list it.
pub fn connection_inode(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    let (local, remote) = (canonical(local), canonical(remote));
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|path| {
        let table = fs::read_to_string(path).ok()?;
        parse_table(&table)
            .into_iter()
            .find(|&(l, r, inode)| inode != 0 && canonical(l) == local && canonical(r) == remote)
            .map(|(_, _, inode)| inode)
    })
}

/// The process holding each of `inodes`, from one bounded scan of
/// `/proc/*/fd`. Inodes no readable process holds are left out.
pub fn processes_holding(inodes: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut found = HashMap::new();
    let Ok(processes) = fs::read_dir("/proc") else {
        return found;
    };
    let mut descriptors = 0;
    for entry in processes.flatten().take(MAX_PROCESSES) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            descriptors += 1;
            if descriptors > MAX_DESCRIPTORS || found.len() == inodes.len() {
                return found;
            }
            let target = fs::read_link(fd.path()).ok();
            let inode = target
                .as_ref()
                .and_then(|t| t.to_str())
                .and_then(socket_inode);
            if let Some(inode) = inode.filter(|inode| inodes.contains(inode)) {
                found.insert(inode, pid);
            }
        }
    }
    found
}

/// `socket:[1234]` → 1234.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The rows of a `/proc/net/tcp` or `tcp6` table (its header and any
/// line it cannot read are skipped).
pub fn parse_table(text: &str) -> Vec<SocketRow> {
    text.lines()
        .skip(1)
        .take(MAX_TABLE_LINES)
        .filter_map(parse_row)
        .collect()
}

/// `  7: 0100007F:D9DA 0100007F:8B01 01 ... uid timeout inode ...`.
fn parse_row(line: &str) -> Option<SocketRow> {
    let mut fields = line.split_whitespace();
    let local = parse_address(fields.nth(1)?)?;
    let remote = parse_address(fields.next()?)?;
    let inode = fields.nth(6)?.parse().ok()?;
    Some((local, remote, inode))
}

/// `0100007F:1F90` (IPv4) or 32 hex digits then `:PORT` (IPv6): each
/// 32-bit word is printed in the machine's own byte order.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for at in (0..address.len()).step_by(8) {
        let word = address.get(at..at + 8)?;
        bytes.extend_from_slice(&u32::from_str_radix(word, 16).ok()?.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// `[::ffff:a.b.c.d]:p` → `a.b.c.d:p`, so both tables compare alike.
fn canonical(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), address.port()),
            None => address,
        },
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn reads_rows_of_both_tables() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   77: 0100007F:D9DA 0100007F:8B01 01 00000000:00000000 00:00000000 00000000     0        0 246930 2 0 20 0 0 10 -1\n  bad line\n";
        let rows = parse_table(v4);
        let want: SocketRow = (
            "127.0.0.1:55770".parse().expect("address"),
            "127.0.0.1:35585".parse().expect("address"),
            246_930,
        );
        assert_eq!(rows, vec![want]);
        let loopback6 = "00000000000000000000000001000000:1F90".to_string();
        let six = parse_address(&loopback6).expect("parses");
        if cfg!(target_endian = "little") {
            assert_eq!(six, "[::1]:8080".parse().expect("address"));
        }
        for bad in [
            "",
            "0100007F",
            "0100007F:",
            "XYZ:1",
            "0100007F0:1",
            "0100007F:12345",
        ] {
            assert_eq!(parse_address(bad), None, "{bad}");
        }
        assert_eq!(socket_inode("socket:[42]"), Some(42));
        assert_eq!(socket_inode("pipe:[42]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    /// This very process holds both ends of a loopback connection it makes.
    #[test]
    fn finds_the_process_holding_a_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = listener.local_addr().expect("address");
        let client = TcpStream::connect(server).expect("connect");
        let (_accepted, peer) = listener.accept().expect("accept");
        let inode = connection_inode(peer, server).expect("the client's socket is listed");
        let holders = processes_holding(&HashSet::from([inode]));
        assert_eq!(holders.get(&inode), Some(&std::process::id()));
        drop(client);
    }
}
