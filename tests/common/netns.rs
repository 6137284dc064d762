//! Network namespaces a test makes and must remove: "hosts" on a bridge
//! ([`Bridged`]), deleted (which destroys their interfaces, rules and
//! qdiscs) on every exit path, and the ones a killed run left behind swept
//! away. Names are `<prefix><pid>-...`, so a stale one names the run that
//! made it.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::process::run;

/// How long one `ip` run may take.
const IP_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `ip ARGS`; its stdout, or Err with its stderr.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let output = run(Command::new("ip").args(args), "", IP_TIMEOUT);
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(format!(
        "`ip {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// Hosts 1..=N as namespaces, each with `eth0` at `<subnet>.<host>/24` on
/// a bridge that lives in one more namespace, so nothing touches the
/// machine's own network. Deleted on drop: declare it before the
/// processes that run inside, so that they are killed first.
pub struct Bridged {
    prefix: String,
    created: Vec<String>,
}

impl Bridged {
    /// Builds the bridge and `hosts` hosts, after sweeping what killed runs
    /// of `prefix` left. Err if this machine cannot (no namespaces, bridges
    /// or veth pairs): the caller fails or skips.
    pub fn build(prefix: &str, subnet: &str, hosts: usize) -> Result<Bridged, String> {
        remove_stale_namespaces(prefix);
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut net = Bridged {
            prefix: format!("{prefix}{}-{clock:x}-", std::process::id()),
            created: Vec::new(),
        };
        let switch = net.add("sw")?;
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        for host in 1..=hosts {
            let ns = net.add(&format!("h{host}"))?;
            let port = format!("p{host}");
            ip(&[
                "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &switch, "link", "set", &port, "up"])?;
            let cidr = format!("{subnet}.{host}/24");
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    fn add(&mut self, what: &str) -> Result<String, String> {
        let name = format!("{}{what}", self.prefix);
        ip(&["netns", "add", &name])?;
        self.created.push(name.clone());
        // Loopback is down in a fresh namespace; nodes register over it.
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// `ip netns exec HOST program`: a command run inside host `host`.
    pub fn exec(&self, host: usize, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &format!("{}h{host}", self.prefix), program]);
        command
    }
}

impl Drop for Bridged {
    fn drop(&mut self) {
        delete_namespaces(&self.created);
    }
}

/// Deletes the namespaces `names`, newest first, quietly.
pub fn delete_namespaces(names: &[String]) {
    for name in names.iter().rev() {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Deletes the namespaces named `<prefix><pid>-...` whose run (process
/// `pid`) is gone: a run killed with SIGKILL cannot clean up after itself.
pub fn remove_stale_namespaces(prefix: &str) {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    let stale: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            let pid = name
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('-').next());
            pid.is_some_and(|pid| {
                !pid.is_empty()
                    && pid.chars().all(|c| c.is_ascii_digit())
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            })
        })
        .map(str::to_owned)
        .collect();
    delete_namespaces(&stale);
}
