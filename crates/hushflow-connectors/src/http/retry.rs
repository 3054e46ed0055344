//! When and how long to wait before sending a request again: exponential backoff with full
//! jitter (a random wait between zero and `base · 2^attempt`, capped), so that many clients
//! refused at once do not come back at once; a server's `Retry-After` is honoured instead when
//! it gives one, unless it asks for longer than [`RetryPolicy::max_wait`] (then the run stops
//! with a message rather than sleeping for hours).

use std::time::Duration;

/// How often and how long a client retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first try (so `max_retries + 1` tries at most).
    pub max_retries: u32,
    /// The first backoff's upper bound; doubled each attempt.
    pub base: Duration,
    /// The largest backoff drawn.
    pub cap: Duration,
    /// The longest single wait accepted, from `Retry-After` too.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_wait: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (from 0): full jitter over the exponential bound.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let bound = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.cap);
        bound.mul_f64(random_unit())
    }
}

/// `Retry-After` as a number of seconds (the form APIs use for 429 and 503). The HTTP-date form
/// is not read: a caller falls back on its backoff.
pub fn retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0 * 2.0)))
}

/// A random number in [0, 1) from the operating system (a few calls per retry: no generator
/// to keep). If the OS has none to give, a fixed half keeps the backoff exponential.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_wait: Duration::from_secs(5),
        };
        let mut distinct = std::collections::BTreeSet::new();
        for attempt in 0..10 {
            let bound = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(1));
            for _ in 0..20 {
                let d = p.backoff(attempt);
                assert!(d <= bound, "{attempt}: {d:?} > {bound:?}");
                distinct.insert(d);
            }
        }
        // Jittered: not the same wait every time.
        assert!(distinct.len() > 100, "{}", distinct.len());
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after("-1"), None);
    }
}
