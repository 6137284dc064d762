//! The static binary of README's "Static binary" section: built with the
//! recipe (`+crt-static`, an explicit `--target`), it must be a static
//! ELF, and it must serve EPMD and the control port from an empty root —
//! a directory holding nothing but the binary, entered with `chroot` — so
//! it needs no file of the system: no libc, no /etc, no /proc.
//!
//! The build gets its own target directory (`target/static`), so it never
//! disturbs the normal build, and runs once per test run (the tests here
//! share it). `chroot` needs root: without it the chroot test is skipped
//! with a note, except when `CI` is set, where it fails.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::fake;
use common::{announce, program_on_path, run_with_deadline, Proxy};

/// How long the static build may take (a cold release build with LTO on
/// two busy cores takes one to two minutes).
const BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How long a short command (a chroot probe, `ctl`) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Read timeout of EPMD requests.
const EPMD_TIMEOUT: Duration = Duration::from_secs(10);
/// The recipe's flags, exactly as README gives them.
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";

/// `x86_64-unknown-linux-gnu` on this kind of machine: the recipe needs an
/// explicit target so that the flag reaches only our binary, not the
/// build's own proc macros.
fn host_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Builds the static binary once per test run (README's recipe, in
/// `target/static`) and returns its path.
fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_static_binary)
}

fn build_static_binary() -> PathBuf {
    // target/<profile>/epmdpxy → target/static
    let target_dir = Path::new(env!("CARGO_BIN_EXE_epmdpxy"))
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/")
        .join("static");
    let triple = host_triple();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--release", "--locked", "--bin", "epmdpxy"])
        .args(["--target", &triple])
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        // Would win over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &target_dir);
    let started = Instant::now();
    let (status, output) = run_with_deadline(command, BUILD_TIMEOUT);
    assert!(
        status.success(),
        "the static build (RUSTFLAGS='{STATIC_RUSTFLAGS}' cargo build --release --target {triple}) failed ({status}):\n{output}"
    );
    let binary = target_dir.join(&triple).join("release").join("epmdpxy");
    let size = std::fs::metadata(&binary)
        .unwrap_or_else(|e| panic!("the static build left no {}: {e}", binary.display()))
        .len();
    announce(&format!(
        "static_binary: {} is {size} bytes ({:.1} MiB), built in {:.0?}",
        binary.display(),
        size as f64 / (1024.0 * 1024.0),
        started.elapsed()
    ));
    binary
}

// ---------------------------------------------------------------------------
// ELF
// ---------------------------------------------------------------------------

/// What an x86-64/aarch64 ELF file says about dynamic linking.
#[derive(Debug, PartialEq)]
struct Linking {
    /// A `PT_INTERP` program header: the dynamic loader to run it with.
    interpreter: bool,
    /// `DT_NEEDED` entries: shared libraries it needs.
    needed: usize,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the program headers of a 64-bit little-endian ELF file: is there
/// a `PT_INTERP`, and how many `DT_NEEDED` entries has `PT_DYNAMIC`
/// (a static-pie binary has a dynamic section for its own relocations,
/// but needs no library). `None` if it is not such a file.
fn elf_linking(bytes: &[u8]) -> Option<Linking> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    if bytes.get(..4)? != b"\x7fELF" || *bytes.get(4)? != 2 || *bytes.get(5)? != 1 {
        return None;
    }
    let phoff = usize::try_from(u64_at(bytes, 0x20)?).ok()?;
    let phentsize = usize::from(u16_at(bytes, 0x36)?);
    let phnum = usize::from(u16_at(bytes, 0x38)?);
    let mut linking = Linking {
        interpreter: false,
        needed: 0,
    };
    for index in 0..phnum {
        let header = phoff + index * phentsize;
        match u32_at(bytes, header)? {
            PT_INTERP => linking.interpreter = true,
            PT_DYNAMIC => {
                let offset = usize::try_from(u64_at(bytes, header + 8)?).ok()?;
                let size = usize::try_from(u64_at(bytes, header + 32)?).ok()?;
                for entry in (offset..offset + size).step_by(16) {
                    match u64_at(bytes, entry)? {
                        0 => break, // DT_NULL
                        DT_NEEDED => linking.needed += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(linking)
}

fn linking_of(path: &Path) -> Linking {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    elf_linking(&bytes)
        .unwrap_or_else(|| panic!("{} is not a 64-bit little-endian ELF", path.display()))
}

#[test]
fn static_binary_needs_no_loader_and_no_library() {
    // The reader must see the ordinary build as dynamic, or it proves
    // nothing about the static one.
    let normal = linking_of(Path::new(env!("CARGO_BIN_EXE_epmdpxy")));
    assert!(
        normal.interpreter && normal.needed > 0,
        "the normal build should be dynamically linked: {normal:?}"
    );
    let binary = static_binary();
    assert_eq!(
        linking_of(binary),
        Linking {
            interpreter: false,
            needed: 0
        },
        "{} is not static",
        binary.display()
    );
}

// ---------------------------------------------------------------------------
// The empty root
// ---------------------------------------------------------------------------

/// A fresh directory, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(base: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{base}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this process may `chroot` into `dir`: chroot runs a program
/// that is not there, and says 127 ("not found") if it got as far as
/// the new root, 125 if the chroot itself failed (no privilege).
fn chroot_possible(dir: &Path) -> Result<(), String> {
    if !program_on_path("chroot") {
        return Err("`chroot` is not on PATH".to_owned());
    }
    let mut command = Command::new("chroot");
    command.arg(dir).arg("/no-such-program");
    let (status, output) = run_with_deadline(command, COMMAND_TIMEOUT);
    match status.code() {
        Some(127) => Ok(()),
        _ => Err(format!(
            "`chroot {} ...` failed ({status}): {}",
            dir.display(),
            output.trim()
        )),
    }
}

/// Gate of the chroot test: true if chroot works; else a skip note, or a
/// failure when `CI` is set.
fn require_chroot(dir: &Path) -> bool {
    let Err(why) = chroot_possible(dir) else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("{why}, but CI is set: this test needs root to chroot into an empty directory");
    }
    announce(&format!(
        "SKIPPED static_binary_serves_from_an_empty_root: {why} (run as root)"
    ));
    false
}

/// One NAMES request; the raw reply, read to EOF.
fn names(port: u16) -> Vec<u8> {
    let mut stream = fake::connect(port, EPMD_TIMEOUT);
    stream.write_all(&[0, 1, b'n']).expect("send NAMES");
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .expect("read the NAMES reply");
    reply
}

#[test]
fn static_binary_serves_from_an_empty_root() {
    let root = TempDir::new("epmdpxy-empty-root");
    if !require_chroot(&root.0) {
        return;
    }
    let inside = root.0.join("epmdpxy");
    std::fs::copy(static_binary(), &inside)
        .unwrap_or_else(|e| panic!("copy the binary to {}: {e}", inside.display()));
    let entries: Vec<_> = std::fs::read_dir(&root.0)
        .expect("list the root")
        .filter_map(|entry| entry.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(entries, ["epmdpxy"], "the root must hold only the binary");

    // chroot execs the binary: the process Proxy kills is epmdpxy.
    let mut command = Command::new("chroot");
    command
        .arg(&root.0)
        .args(["/epmdpxy", "--port", "0", "--control-port", "0", "-v"]);
    let proxy = Proxy::start_command(command);
    let log = proxy.log();
    assert!(
        log.contains("addresses=127.0.0.1,"),
        "EPMD should listen on 127.0.0.1 even with no host name: {log}"
    );

    // EPMD: a registration, NAMES, a lookup (which opens a proxy listener).
    let mut registration = fake::connect(proxy.epmd_port, EPMD_TIMEOUT);
    let creation = fake::alive2(&mut registration, &fake::node_info("inside", 40001));
    assert_ne!(creation, 0);
    let reply = names(proxy.epmd_port);
    let (header, listing) = reply.split_at(4.min(reply.len()));
    assert_eq!(
        header,
        u32::from(proxy.epmd_port).to_be_bytes(),
        "NAMES starts with the EPMD port: {reply:?}"
    );
    let listing = String::from_utf8_lossy(listing);
    assert!(
        listing.starts_with("name inside at port ") && listing.lines().count() == 1,
        "NAMES should list exactly the one node: {listing:?}"
    );
    let mut lookup = fake::connect(proxy.epmd_port, EPMD_TIMEOUT);
    let found = fake::port_please2(&mut lookup, "inside").expect("`inside` is registered");
    assert_ne!(
        found.port, 0,
        "a lookup answers with a proxy listener's port"
    );

    // Control: status and nodes over 127.0.0.1.
    let status = proxy.ctl("status");
    assert!(
        status.starts_with("OK 0 faults") && status.ends_with("\nEND"),
        "control status: {status:?}"
    );
    assert_eq!(proxy.registered_names(), ["inside"]);

    // The ctl client needs no file either.
    let mut command = Command::new("chroot");
    command.arg(&root.0).args([
        "/epmdpxy",
        "ctl",
        "--control-port",
        &proxy.control_port.to_string(),
        "cut inside | outside",
    ]);
    let (status, output) = run_with_deadline(command, COMMAND_TIMEOUT);
    assert!(
        status.success() && output.starts_with("OK cut inside | outside"),
        "epmdpxy ctl in the empty root ({status}): {output:?}"
    );
    let status = proxy.ctl("status");
    assert!(
        status.contains("\ncut inside | outside\n"),
        "the cut sent from the root is in force: {status:?}"
    );
    drop(registration);
    drop(proxy);
}
