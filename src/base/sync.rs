//! Small helpers shared by every thread: poison-tolerant locks, a change
//! notifier for threads that wait on the partition state, and thread
//! spawning with an explicit (small) stack size.

use std::io;
use std::sync::{
    Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Locks a mutex; a panic in another holder does not stop the proxy.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes a read lock, ignoring poisoning.
pub fn read<T>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Takes a write lock, ignoring poisoning.
pub fn write<T>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Wakes threads that wait for "something changed" (a fault applied or
/// removed, a link closed). Waiters read the generation *before* checking
/// their condition, so no wake-up is lost.
#[derive(Default)]
pub struct Notifier {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Notifier {
    pub fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    /// Announces a change to every waiter.
    pub fn bump(&self) {
        let mut generation = lock(&self.generation);
        *generation = generation.wrapping_add(1);
        self.changed.notify_all();
    }

    /// Blocks until the generation differs from `seen` or `timeout` passes.
    pub fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = lock(&self.generation);
        let _unused = self
            .changed
            .wait_timeout_while(guard, timeout, |generation| *generation == seen)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Stack size for connection and relay threads: they keep their buffers on
/// the heap, so a small stack keeps many idle links cheap.
pub const SMALL_STACK: usize = 128 * 1024;

/// Spawns a named thread with a small stack. Fails (instead of panicking)
/// when the system has no threads left.
pub fn spawn<F>(name: &str, body: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    thread::Builder::new()
        .name(name.to_owned())
        .stack_size(SMALL_STACK)
        .spawn(body)
}
