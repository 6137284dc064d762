//! The EPMD room's state, [`Epmd`]: its settings, the registry, the ALIVE2
//! socket of each registration (so STOP can close it), and the handles it
//! was given — the proxy (PORT_PLEASE2 answers with a proxy listener), the
//! event stream, and the daemon's exit line (a KILL request ends the
//! daemon; the library never exits the process itself).

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::registry::Registry;
use crate::base::sync::lock;
use crate::events::Events;
use crate::proxy::Proxy;

/// How the EPMD side behaves; fixed at start-up.
#[derive(Clone, Debug)]
pub struct EpmdSettings {
    /// The port EPMD requests arrive on (reported in NAMES and DUMP).
    pub port: u16,
    /// Allow KILL while nodes are registered, and STOP at all.
    pub relaxed_command_check: bool,
    /// Non-registration EPMD connections are closed this long after they
    /// were accepted if their request is not complete.
    pub packet_timeout: Duration,
}

impl Default for EpmdSettings {
    fn default() -> EpmdSettings {
        EpmdSettings {
            port: 4369,
            relaxed_command_check: false,
            packet_timeout: Duration::from_secs(60),
        }
    }
}

/// The EPMD room.
pub struct Epmd {
    pub settings: EpmdSettings,
    pub registry: Mutex<Registry>,
    /// The ALIVE2 connection of each registration (by registration id),
    /// shared with the registration's thread: one descriptor per node.
    alive_sockets: Mutex<HashMap<u64, Arc<TcpStream>>>,
    pub proxy: Arc<Proxy>,
    pub events: Arc<Events>,
    /// Where a KILL request tells the daemon to exit, and why.
    exit: Mutex<Sender<String>>,
}

impl Epmd {
    pub fn new(
        settings: EpmdSettings,
        proxy: Arc<Proxy>,
        events: Arc<Events>,
        exit: Sender<String>,
    ) -> Arc<Epmd> {
        Arc::new(Epmd {
            settings,
            registry: Mutex::new(Registry::default()),
            alive_sockets: Mutex::new(HashMap::new()),
            proxy,
            events,
            exit: Mutex::new(exit),
        })
    }

    /// Keeps registration `id`'s socket, so STOP can close it.
    pub fn keep_alive_socket(&self, id: u64, socket: Arc<TcpStream>) {
        lock(&self.alive_sockets).insert(id, socket);
    }

    /// Forgets registration `id`'s socket; returns it if it was kept.
    pub fn take_alive_socket(&self, id: u64) -> Option<Arc<TcpStream>> {
        lock(&self.alive_sockets).remove(&id)
    }

    /// Asks the daemon to exit, saying why.
    pub fn request_exit(&self, why: &str) {
        let _ = lock(&self.exit).send(why.to_owned());
    }
}
