//! Time, injected: the scheduler and workers ask a [`Clock`], so tests drive a day of
//! schedules in milliseconds with a [`FakeClock`].

use hushflow_spec::schedule::Millis;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where the scheduler and workers read the time.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
}

/// The machine's clock. Machines that share a PostgreSQL store must keep their clocks in step
/// (NTP): heartbeats and retry times are compared across them.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis)
    }
}

/// A clock that moves only when told to.
pub struct FakeClock(AtomicI64);

impl FakeClock {
    /// A clock standing at `now`.
    pub fn at(now: Millis) -> FakeClock {
        FakeClock(AtomicI64::new(now))
    }
    /// Moves the clock to `now` (backwards too).
    pub fn set(&self, now: Millis) {
        self.0.store(now, Ordering::SeqCst);
    }
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}
