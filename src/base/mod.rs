//! The base layer: what every room uses and that knows nothing of EPMD,
//! links or faults — poison-tolerant locks and the change notifier
//! ([`sync`]), logging ([`log`]), socket helpers ([`net`]), big-endian
//! reads from untrusted bytes ([`bytes`]), who holds a connection ([`procfs`]) and the one seeded random
//! generator ([`rng`]), and counted nouns for replies ([`words`]).

pub mod bytes;
pub mod log;
pub mod net;
pub mod procfs;
pub mod rng;
pub mod sync;
pub mod words;
