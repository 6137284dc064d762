//! The state every thread shares, and the settings it runs with.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::control::chaos::ChaosSlot;
use crate::control::events::Events;
use crate::epmd::registry::Registry;
use crate::partition::shapes::{fresh_seed, Seeded};
use crate::partition::{NodeName, PartitionSet, Pattern};
use crate::proxy::link::LinkTable;
use crate::sync::Notifier;

/// Settings fixed at start-up.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The port EPMD requests arrive on (reported in NAMES and DUMP).
    pub epmd_port: u16,
    /// Allow KILL while nodes are registered, and STOP at all.
    pub relaxed_command_check: bool,
    /// Non-registration EPMD connections are closed this long after they
    /// were accepted if their request is not complete.
    pub packet_timeout: Duration,
    /// A proxy listener nobody connects to is closed after this long.
    pub listener_timeout: Duration,
    /// A link whose initiator has not sent its first handshake message
    /// (or [`crate::proxy::handshake::MAX_SEND_NAME`] bytes) by then is closed.
    pub handshake_timeout: Duration,
    /// How long a cut waits for a write already in progress to finish.
    pub cut_patience: Duration,
    /// At most this many control sessions at once.
    pub max_control_sessions: usize,
    /// Nodes no fault applies to (`--exempt`).
    pub exempt: Vec<Pattern>,
    /// The first seed of the random shapes (`--seed`; else from the clock).
    pub seed: Option<u64>,
    /// At most this many proxy listeners waiting for their connection;
    /// further lookups are answered "not found".
    pub max_pending_listeners: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            epmd_port: 4369,
            relaxed_command_check: false,
            packet_timeout: Duration::from_secs(60),
            listener_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(30),
            cut_patience: Duration::from_secs(2),
            max_control_sessions: 64,
            exempt: Vec::new(),
            seed: None,
            max_pending_listeners: 1024,
        }
    }
}

/// Everything the EPMD, proxy and control threads share.
pub struct Shared {
    pub settings: Settings,
    pub registry: Mutex<Registry>,
    /// The ALIVE2 connection of each registration (by registration id), so
    /// STOP can close it.
    /// (Shared with the registration's thread, not duplicated: one
    /// descriptor per registered node.)
    pub alive_sockets: Mutex<HashMap<u64, Arc<TcpStream>>>,
    pub partitions: Arc<RwLock<PartitionSet>>,
    /// Bumped on every fault change and link close; held relays wait on it.
    pub changes: Notifier,
    pub links: LinkTable,
    /// Full names read from handshakes, by registered name (`n1` →
    /// `n1@host`), so host patterns (`*@host`) match from a link's start.
    pub learned_names: Mutex<HashMap<String, NodeName>>,
    /// The `watch` event stream.
    pub events: Events,
    pub control_sessions: AtomicUsize,
    /// The random stream of shapes and chaos runs.
    pub seed: Mutex<Seeded>,
    /// The chaos run, if any.
    pub chaos: ChaosSlot,
    /// Proxy listeners handed out and not yet connected to or expired.
    pub pending_listeners: AtomicUsize,
}

impl Shared {
    pub fn new(settings: Settings) -> Arc<Shared> {
        let mut partitions = PartitionSet::new();
        for node in &settings.exempt {
            partitions.exempt(node);
        }
        let seed = settings.seed.unwrap_or_else(fresh_seed);
        Arc::new(Shared {
            settings,
            registry: Mutex::new(Registry::default()),
            alive_sockets: Mutex::new(HashMap::new()),
            partitions: Arc::new(RwLock::new(partitions)),
            changes: Notifier::default(),
            links: LinkTable::default(),
            learned_names: Mutex::new(HashMap::new()),
            events: Events::default(),
            control_sessions: AtomicUsize::new(0),
            seed: Mutex::new(Seeded::new(seed)),
            chaos: ChaosSlot::default(),
            pending_listeners: AtomicUsize::new(0),
        })
    }
}
