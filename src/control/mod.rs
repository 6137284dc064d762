//! The control protocol: command parsing and the line-based control port.

pub mod command;
pub mod events;
pub mod server;
