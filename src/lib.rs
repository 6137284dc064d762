//! epmdpxy: a drop-in EPMD that proxies Erlang distribution links so a
//! text control port can cut and heal partitions between real nodes.
//!
//! Four rooms, arrows pointing one way (each imports only from those
//! after it): [`control`] (the control protocol) → [`epmd`] (protocol
//! and registry) → [`proxy`] (the links) → [`partition`] (the fault
//! model, pure) → [`events`] → [`base`]. Above them: `main.rs`, [`cli`],
//! [`ctl`] (the client, and [`ctl_target`]: where it connects) and [`daemon`], the only file that sees every
//! room. docs/architecture.md draws the house.

#![forbid(unsafe_code)]

pub mod base;
pub mod cli;
pub mod control;
pub mod ctl;
pub mod ctl_target;
pub mod daemon;
pub mod epmd;
pub mod events;
pub mod partition;
pub mod proxy;
