//! End-to-end tests of the fault commands beyond a symmetric cut (issue 5),
//! against real Erlang/OTP nodes where Erlang's reaction is the point:
//! one-way cuts, `isolate`/`rejoin`, `reset`, `delay`, `throttle`, the
//! `watch` event stream; and, without Erlang, the `epmdpxy ctl` client's
//! exit codes and the replayability of `status`.
//!
//! What each node sees is recorded *inside* the node: a small process
//! subscribed to `net_kernel:monitor_nodes/2` stamps every nodeup/nodedown
//! with `os:system_time(millisecond)` (the same clock as the test's
//! `SystemTime`, all on one machine), so asking a node what happened does
//! not change what happens. Pings meant to be observed during a fault are
//! spawned inside the node and record their result the same way.
//!
//! This file only gathers the modules under `fault_commands/`, one per
//! command or pair of commands (`one_way`, `isolate_reset`, `shaping`,
//! `watch`, `ctl`), and `observe` with how they see what happened.

mod common;
#[path = "fault_commands/ctl.rs"]
mod ctl;
#[path = "fault_commands/isolate_reset.rs"]
mod isolate_reset;
#[path = "fault_commands/observe.rs"]
mod observe;
#[path = "fault_commands/one_way.rs"]
mod one_way;
#[path = "fault_commands/shaping.rs"]
mod shaping;
#[path = "fault_commands/watch.rs"]
mod watch;
