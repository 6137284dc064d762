//! The EPMD room: the wire formats ([`wire`], pure), the node registry
//! ([`registry`], pure), the listener that reads requests like OTP's
//! `epmd` ([`server`]) and the answers to them ([`requests`]). Its state
//! is [`room::Epmd`].

pub mod registry;
pub mod requests;
pub mod room;
pub mod server;
pub mod wire;

pub use room::{Epmd, EpmdSettings};
