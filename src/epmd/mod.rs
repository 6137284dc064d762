//! EPMD protocol and registry: the wire formats, the node registry, and
//! the server that answers EPMD requests like OTP's `epmd`.

pub mod registry;
pub mod server;
pub mod wire;
