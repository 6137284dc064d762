//! Network namespaces a test makes and must remove: deleting them (which
//! destroys their interfaces, rules and qdiscs) on every exit path, and
//! sweeping the ones a killed run left behind. Names are
//! `<prefix><pid>-...`, so a stale one names the run that made it.

use std::process::{Command, Stdio};

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
