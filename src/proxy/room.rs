//! The proxy room's state, [`Proxy`]: its settings, the live links, the
//! names learnt from handshakes, the listeners waiting for their
//! connection, the seed delayed chunks draw their jitter from, and the
//! handles it was given — the faults (read per chunk) and the event
//! stream. Also what the control room asks of the links as a whole: wait
//! for writes in progress after a cut, close the links a `reset` names;
//! and `retire`, a link's end.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::link::{Direction, Link};
use super::local_nodes::LocalNodes;
use super::table::{LearnedNames, LinkTable};
use crate::base::rng::Rng;
use crate::events::{Event, Events};
use crate::partition::names::Host;
use crate::partition::rules::Islands;
use crate::partition::set::crosses;
use crate::partition::{Faults, NodeName};

/// How the proxy treats links; fixed at start-up.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// A proxy listener nobody connects to is closed after this long.
    pub listener_timeout: Duration,
    /// A link whose initiator has not sent its first handshake message
    /// (or [`super::handshake::MAX_SEND_NAME`] bytes) by then is closed.
    pub handshake_timeout: Duration,
    /// How long a cut waits for a write already in progress to finish.
    pub cut_patience: Duration,
    /// At most this many proxy listeners waiting for their connection;
    /// further lookups are answered "not found".
    pub max_pending_listeners: usize,
}

impl Default for ProxySettings {
    fn default() -> ProxySettings {
        ProxySettings {
            listener_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(30),
            cut_patience: Duration::from_secs(2),
            max_pending_listeners: 1024,
        }
    }
}

/// The proxy room.
pub struct Proxy {
    pub settings: ProxySettings,
    /// The faults in force, read by every relay before every write.
    pub faults: Faults,
    pub events: Arc<Events>,
    pub links: LinkTable,
    pub learned: LearnedNames,
    /// The nodes registered here and the sockets they registered over.
    pub local_nodes: LocalNodes,
    /// This machine's host names and addresses: a node registered here
    /// is on one of them.
    pub local_hosts: Arc<[String]>,
    /// Proxy listeners handed out and not yet connected to or expired.
    pub(super) pending_listeners: AtomicUsize,
    /// The seed each link's jitter generator is derived from.
    seed: AtomicU64,
}

impl Proxy {
    pub fn new(
        settings: ProxySettings,
        faults: Faults,
        events: Arc<Events>,
        seed: u64,
        local_hosts: Vec<String>,
    ) -> Arc<Proxy> {
        Arc::new(Proxy {
            settings,
            faults,
            events,
            links: LinkTable::default(),
            learned: LearnedNames::default(),
            local_nodes: LocalNodes::default(),
            local_hosts: Arc::from(local_hosts),
            pending_listeners: AtomicUsize::new(0),
            seed: AtomicU64::new(seed),
        })
    }

    /// This machine as a node's host: one of its names or addresses.
    pub fn here(&self) -> Host {
        Host::OneOf(Arc::clone(&self.local_hosts))
    }

    /// The node registered here as `alive`, as faults see it before a
    /// handshake names its host.
    pub fn local_node(&self, alive: &str) -> NodeName {
        NodeName::on(alive, self.here())
    }

    /// Links opened from now on draw their jitter from `seed`.
    pub fn set_seed(&self, seed: u64) {
        self.seed.store(seed, Ordering::SeqCst);
    }

    /// The jitter generator of `direction` of link `id`: the same seed,
    /// link number and direction give the same jitter; the two directions
    /// of a link draw apart.
    pub fn jitter_rng(&self, id: u64, direction: Direction) -> Rng {
        let stream = id.wrapping_mul(2).wrapping_add(direction.index() as u64);
        Rng::for_stream(self.seed.load(Ordering::SeqCst), stream)
    }

    /// Waits for the writes in progress on every direction the faults
    /// now hold, so that once a cut is confirmed no byte crosses it.
    /// Returns how many could not be waited for (a receiver that does not
    /// read), after [`ProxySettings::cut_patience`].
    pub fn drain_held(&self) -> usize {
        let faults = self.faults.snapshot();
        let mut stuck = 0;
        for link in self.links.snapshot() {
            for direction in [Direction::Up, Direction::Down] {
                if link.blocked_by(&faults, direction)
                    && !link.drain_gate(direction, self.settings.cut_patience)
                {
                    stuck += 1;
                }
            }
        }
        stuck
    }

    /// Called once per direction of `link` when it is done; the second
    /// call retires the link: closed, out of the table, and one
    /// `link-close` event.
    pub fn retire(&self, link: &Link) {
        if link.finish_direction() {
            link.close("closed");
            self.links.remove(link.id);
            self.events.publish(&Event::LinkClose {
                id: link.id,
                from: link.initiator_label(),
                to: link.target().to_string(),
                up: link.bytes(Direction::Up),
                down: link.bytes(Direction::Down),
                reason: link.reason(),
            });
        }
        // The other direction may be waiting on a cut or a delay; let it
        // look again (it sees the link closed, or goes on).
        self.faults.changes().bump();
    }

    /// The live links a `reset` of `islands` concerns: both ends known, on
    /// different islands, neither exempt.
    pub fn links_across(&self, islands: &Islands) -> Vec<Arc<Link>> {
        let faults = self.faults.snapshot();
        self.links
            .snapshot()
            .into_iter()
            .filter(|link| {
                link.initiator().is_some_and(|initiator| {
                    let exempt = faults.is_exempt(initiator) || faults.is_exempt(link.target());
                    !exempt && crosses(islands, initiator, link.target())
                })
            })
            .collect()
    }
}
