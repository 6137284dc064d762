//! Where the one chaos run of a proxy is kept while it goes: its config,
//! the step it is at, its thread, and the signal that stops it (a sleeping
//! run wakes up for it at once).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::base::sync::lock;
use crate::partition::chaos_plan::ChaosConfig;

/// A stop request a sleeping run wakes up for.
#[derive(Default)]
pub struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    pub fn stop(&self) {
        *lock(&self.stopped) = true;
        self.wake.notify_all();
    }

    /// Sleeps until `when`; true if stopped meanwhile (or before).
    pub fn sleep_until(&self, when: Instant) -> bool {
        let mut stopped = lock(&self.stopped);
        loop {
            let now = Instant::now();
            if *stopped || now >= when {
                return *stopped;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, when - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }
}

/// A run that is going.
pub struct Running {
    /// With the seed filled in.
    pub config: ChaosConfig,
    pub stop: Arc<StopSignal>,
    pub steps: Arc<AtomicU64>,
    pub thread: JoinHandle<()>,
}

/// The chaos run, if one is going (one at a time per proxy).
#[derive(Default)]
pub struct ChaosSlot {
    running: Mutex<Option<Running>>,
}

impl ChaosSlot {
    pub fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    /// The slot itself, to start, stop or show a run.
    pub fn lock(&self) -> MutexGuard<'_, Option<Running>> {
        lock(&self.running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stop_signal_wakes_a_sleeper() {
        let signal = Arc::new(StopSignal::default());
        assert!(!signal.sleep_until(Instant::now() + Duration::from_millis(5)));
        let other = Arc::clone(&signal);
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.stop();
        });
        let began = Instant::now();
        assert!(signal.sleep_until(Instant::now() + Duration::from_secs(30)));
        assert!(began.elapsed() < Duration::from_secs(10));
        waker.join().expect("waker");
    }
}
