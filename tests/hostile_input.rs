//! Hostile input against every port epmdpxy listens on: the EPMD port, the
//! control port and the one-shot proxy listeners, plus the limits that keep
//! a misbehaving client from holding resources, and who may do what.
//!
//! The generators are driven by a seeded PRNG (std only). The seed is
//! printed at the start and in every failure; set `HOSTILE_SEED=<n>` to
//! replay a run. Each fuzz test sends its inputs in batches; after every
//! batch the proxy must still be alive, have printed no panic, accept a real
//! registration and a real lookup (relaying bytes through the listener it
//! hands out), and hold exactly the nodes it should (control `nodes`).
//!
//! Per-input expectations are checked where the protocol fixes the answer
//! (e.g. an oversized EPMD request is closed with no reply, a lookup of an
//! unknown name gets `[119, 1]`, an over-long control line gets
//! `ERR line too long`); everything else must at least be answered or
//! closed within a deadline, so a hang fails the test too.
//!
//! This file only gathers the modules under `hostile_input/`: one per port
//! or resource (`epmd`, `control`, `listeners`, `access`), and `harness`
//! with what they share.

#[path = "hostile_input/access.rs"]
mod access;
mod common;
#[path = "hostile_input/control.rs"]
mod control;
#[path = "hostile_input/epmd.rs"]
mod epmd;
#[path = "hostile_input/harness.rs"]
mod harness;
#[path = "hostile_input/listeners.rs"]
mod listeners;
