//! The control protocol: command parsing, the line-based control port and
//! the chaos runner.

pub mod chaos;
pub mod command;
pub mod events;
pub mod server;
