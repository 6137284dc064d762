//! epmdpxy: a drop-in EPMD that proxies Erlang distribution links so a
//! text control port can cut and heal partitions between real nodes.
//!
//! The four rooms: [`epmd`] (protocol and registry), [`proxy`] (links),
//! [`partition`] (the fault model) and [`control`] (the control protocol).

pub mod log;

pub mod cli;
pub mod control;
pub mod ctl;
pub mod daemon;
pub mod epmd;
pub mod partition;
pub mod proxy;
pub mod shared;
pub mod sync;
