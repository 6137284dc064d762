//! Proxy links: reading the initiator from the distribution handshake and
//! relaying each proxied connection under the partition state.

pub mod handshake;
pub mod link;
