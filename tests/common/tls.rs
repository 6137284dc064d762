//! TLS distribution for test nodes: a self-signed certificate made with
//! `openssl`, and the `-ssl_dist_optfile` options file that uses it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::run;

/// How long `openssl` may take to make a 2048-bit key.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes `cert.pem` and `key.pem` in `dir`; returns their paths.
pub fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut openssl = Command::new("openssl");
    openssl
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=epmdpxy-test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert);
    let made = run(&mut openssl, "", OPENSSL_TIMEOUT);
    assert!(made.status.success(), "openssl: {made:?}");
    (cert, key)
}

/// Writes, at `path`, a TLS distribution options file naming `cert` and
/// `key` as the node will see them (inside a chroot, its own paths), with
/// no peer verification.
pub fn write_options(path: &Path, cert: &str, key: &str) {
    let text = format!(
        "[{{server,[{{certfile,\"{cert}\"}},{{keyfile,\"{key}\"}}]}},{{client,[{{verify,verify_none}}]}}].\n"
    );
    std::fs::write(path, text).expect("write the TLS options file");
}
