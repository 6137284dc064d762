//! The proxy room: every distribution link runs through it. A one-shot
//! listener ([`listener`]) accepts the initiator and connects to the real
//! node; the relay ([`relay`]) reads each side's name from the handshake
//! ([`handshake`], pure) and runs two pumps ([`pump`]) that copy bytes
//! while honouring the faults in force at each link's gates ([`gate`]).
//! [`room::Proxy`] is the room's state; [`link::Link`] one link's,
//! [`table`] the live ones.

pub mod buffer;
pub mod delivery;
pub mod gate;
pub mod handshake;
pub mod link;
pub mod listener;
pub mod local_nodes;
pub mod pump;
pub mod relay;
pub mod room;
pub mod table;

pub use listener::{PendingListener, Upstream};
pub use room::{Proxy, ProxySettings};
