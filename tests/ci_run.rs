//! `.ci/run`'s test command (issue 17, item 9): `cargo test` ends on the
//! doc-tests' `0 passed` line, so the CI log ends with one plain line
//! that sums every test binary — `N passed, N failed, N skipped` (skipped
//! = ignored) — and the script still exits with cargo's exit code.
//!
//! The part of `.ci/run` from its "# The test command." comment to the
//! end runs here alone (the part above installs packages), in a scratch
//! directory with a copy of README.md and a fake `cargo` first on PATH.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::{run_text, ScratchDir};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the fake cargo prints: three test binaries and the doc-tests.
const CARGO_OUTPUT: &str = "\
running 3 tests
test a ... ok
test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

running 12 tests
test b ... FAILED
test result: FAILED. 10 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.50s

running 0 tests
test result: ok. 0 passed; 0 failed; 4 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests epmdpxy

running 0 tests
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

/// Runs `.ci/run`'s test command with a fake cargo that prints
/// `CARGO_OUTPUT` and exits `cargo_exit`; (exit code, stdout, stderr).
fn run_test_command(cargo_exit: i32) -> (i32, String, String) {
    let script = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).expect(".ci/run");
    let part = script
        .split_once("# The test command.")
        .expect(".ci/run marks its test command")
        .1;
    let scratch = ScratchDir::new("ci-run");
    let dir = scratch.path();
    std::fs::copy(Path::new(ROOT).join("README.md"), dir.join("README.md")).expect("README");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let cargo = bin.join("cargo");
    let fake = format!(
        "#!/bin/sh\n[ \"$*\" = 'test --locked' ] || exit 99\ncat <<'EOF'\n{CARGO_OUTPUT}EOF\nexit {cargo_exit}\n"
    );
    std::fs::write(&cargo, fake).expect("fake cargo");
    let made_executable = Command::new("chmod").arg("+x").arg(&cargo).status();
    assert!(made_executable.is_ok_and(|s| s.success()), "chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(format!("set -euo pipefail\n# The test command.{part}"))
        .current_dir(dir)
        .env("PATH", path);
    run_text(&mut bash, "", RUN_TIMEOUT)
}

#[test]
fn the_log_ends_with_the_sum_of_every_test_binary() {
    let (code, out, err) = run_test_command(0);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("running 3 tests"),
        "cargo's output is shown: {out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("13 passed, 2 failed, 5 skipped"),
        "{out}"
    );
}

#[test]
fn the_exit_code_stays_cargos() {
    let (code, out, err) = run_test_command(101);
    assert_eq!(code, 101, "{out}{err}");
    assert_eq!(
        out.lines().last(),
        Some("13 passed, 2 failed, 5 skipped"),
        "the sum comes after a failure too: {out}"
    );
}
