//! A client-side rate limiter: a token bucket of `burst` requests refilled at `per_second`, so
//! a connector stays under its service's documented limit instead of learning it from 429s.
//! The server's own headers can pause it further ([`RateLimiter::pause_for`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A blocking token bucket shared by the threads of one connector.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
    per_second: f64,
    burst: f64,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
    /// No request before this instant (the server said so).
    paused_until: Option<Instant>,
    /// Time spent waiting, for benchmarks and reports.
    waited: Duration,
}

impl RateLimiter {
    /// At most `per_second` requests a second on average, `burst` at once after a quiet spell.
    /// A rate of zero or less means no limit.
    pub fn new(per_second: f64, burst: u32) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
                paused_until: None,
                waited: Duration::ZERO,
            }),
            per_second,
            burst,
        }
    }

    /// Waits until a request may be sent, and counts it.
    pub fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if let Some(until) = s.paused_until {
                    if until > now {
                        until - now
                    } else {
                        s.paused_until = None;
                        continue;
                    }
                } else if self.per_second <= 0.0 {
                    return;
                } else {
                    let elapsed = now.duration_since(s.last).as_secs_f64();
                    s.tokens = (s.tokens + elapsed * self.per_second).min(self.burst);
                    s.last = now;
                    if s.tokens >= 1.0 {
                        s.tokens -= 1.0;
                        return;
                    }
                    Duration::from_secs_f64((1.0 - s.tokens) / self.per_second)
                }
            };
            self.state.lock().unwrap_or_else(|e| e.into_inner()).waited += wait;
            std::thread::sleep(wait);
        }
    }

    /// Holds every request back for `wait` (a server's rate-limit window that is used up).
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
    }

    /// How long callers have waited on this limiter so far.
    pub fn waited(&self) -> Duration {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_spaces_requests_after_the_burst() {
        let limiter = RateLimiter::new(50.0, 2);
        let start = Instant::now();
        for _ in 0..7 {
            limiter.acquire();
        }
        // Two at once, then five at 50/s: about 100 ms.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(90), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        assert!(limiter.waited() >= Duration::from_millis(80));
    }

    #[test]
    fn a_pause_holds_requests_back() {
        let limiter = RateLimiter::new(0.0, 1);
        limiter.pause_for(Duration::from_millis(60));
        let start = Instant::now();
        limiter.acquire();
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
