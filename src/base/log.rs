//! Logging: one line per event on stderr, each with a UTC timestamp.
//!
//! Quiet by default (start-up line, warnings and errors only); `-v` adds
//! node, link and control events; `-v -v` adds every EPMD request.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static VERBOSITY: AtomicU8 = AtomicU8::new(0);

/// Always printed: start-up, warnings, errors.
pub const WARN: u8 = 0;
/// Printed with `-v`: nodes, links, faults, control sessions.
pub const INFO: u8 = 1;
/// Printed with `-v -v`: every EPMD request.
pub const DEBUG: u8 = 2;

/// Sets how much is logged: 0 = quiet, 1 = events, 2 = debug.
pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

/// True when messages of `level` are printed.
pub fn enabled(level: u8) -> bool {
    VERBOSITY.load(Ordering::Relaxed) >= level
}

/// Writes one line to stderr if `level` is enabled. Use the macros instead.
pub fn write(level: u8, message: std::fmt::Arguments<'_>) {
    if enabled(level) {
        // Not eprintln!: it panics when stderr is gone (a closed pipe), and
        // a lost log line must never take a relay thread down with it.
        let _ = writeln!(
            std::io::stderr().lock(),
            "{} {}",
            timestamp(SystemTime::now()),
            message
        );
    }
}

/// Lets a repeating warning (e.g. accept failing while file descriptors run
/// out) through once per interval, counting the ones it holds back.
#[derive(Default)]
pub struct RateLimit {
    last: Option<std::time::Instant>,
    held_back: u64,
}

impl RateLimit {
    /// `Some(n)` when a line may be logged now (`n` lines were held back
    /// since the last one), `None` to stay quiet.
    pub fn allow(&mut self, interval: std::time::Duration) -> Option<u64> {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < interval)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// Always printed: start-up, warnings, errors.
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { $crate::base::log::write($crate::base::log::WARN, format_args!($($arg)*)) };
}

/// Printed with `-v`: nodes, links, faults, control sessions.
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::base::log::write($crate::base::log::INFO, format_args!($($arg)*)) };
}

/// Printed with `-v -v`: every EPMD request and reply.
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::base::log::write($crate::base::log::DEBUG, format_args!($($arg)*)) };
}

/// Formats `time` as RFC 3339 UTC with milliseconds, e.g. `2026-11-25T10:02:09.123Z`.
pub fn timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_limit_counts_what_it_holds_back() {
        let mut limit = RateLimit::default();
        assert_eq!(limit.allow(Duration::from_secs(60)), Some(0));
        assert_eq!(limit.allow(Duration::from_secs(60)), None);
        assert_eq!(limit.allow(Duration::from_secs(60)), None);
        assert_eq!(limit.allow(Duration::ZERO), Some(2));
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_600_929_123);
        assert_eq!(timestamp(t), "2026-11-25T10:02:09.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
