//! What the stores fetched, kept for the run so that a pipeline naming ten fields of one secret
//! makes one request, and a long run sees a rotated secret after at most the time to live.
//!
//! The time to live is `HUSHFLOW_SECRET_CACHE_TTL` seconds (default 300; `0` turns caching
//! off). Entries hold [`SecretValue`]s, wiped when the entry is dropped: on expiry, on
//! replacement, or when the process's stores are dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hushflow_secrets::SecretValue;

/// The variable holding the time to live, in seconds.
pub const TTL_ENV: &str = "HUSHFLOW_SECRET_CACHE_TTL";

/// The time to live when [`TTL_ENV`] is not set.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// A secret's fields by name (a whole secret with no fields is one field named "").
pub type Fields = Vec<(String, SecretValue)>;

/// Fetched secrets by key (a Vault API path, a Secrets Manager secret id), each until its time
/// to live ends.
#[derive(Default)]
pub struct Cache {
    ttl: Option<Duration>,
    entries: Mutex<HashMap<String, (Instant, Fields)>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.lock().map_or(0, |e| e.len());
        f.debug_struct("Cache")
            .field("ttl", &self.ttl)
            .field("entries", &len)
            .finish()
    }
}

impl Cache {
    /// A cache keeping entries for `ttl` (zero: nothing is kept).
    pub fn new(ttl: Duration) -> Cache {
        Cache {
            ttl: Some(ttl),
            entries: Mutex::default(),
        }
    }

    /// A cache whose time to live comes from [`TTL_ENV`], read on first use.
    pub fn from_env() -> Cache {
        Cache::default()
    }

    fn ttl(&self) -> Duration {
        self.ttl.unwrap_or_else(|| {
            std::env::var(TTL_ENV)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(DEFAULT_TTL, Duration::from_secs)
        })
    }

    /// A copy of field `field` of the entry under `key`, if one is cached and still fresh.
    /// `Some(None)` when the entry is fresh but has no such field.
    pub fn field(&self, key: &str, field: &str) -> Option<Option<SecretValue>> {
        let ttl = self.ttl();
        let mut entries = self.entries.lock().ok()?;
        let fresh = entries.get(key).is_some_and(|(at, _)| at.elapsed() < ttl);
        if !fresh {
            // Dropping an expired entry wipes its values now rather than at the next insert.
            entries.remove(key);
            return None;
        }
        let (_, fields) = entries.get(key)?;
        Some(
            fields
                .iter()
                .find(|(name, _)| name == field)
                .map(|(_, v)| SecretValue::new(v.expose().to_vec())),
        )
    }

    /// Keeps `fields` under `key` (replacing, and so wiping, what was there); nothing is kept
    /// when the time to live is zero.
    pub fn insert(&self, key: &str, fields: Fields) {
        if self.ttl().is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key.to_string(), (Instant::now(), fields));
        }
    }

    /// Forgets everything (wiping it).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> SecretValue {
        SecretValue::new(s.as_bytes().to_vec())
    }

    #[test]
    fn fields_are_served_until_the_ttl_ends() {
        let cache = Cache::new(Duration::from_millis(200));
        assert!(cache.field("k", "a").is_none());
        cache.insert(
            "k",
            vec![("a".into(), value("one")), ("b".into(), value("two"))],
        );
        assert_eq!(cache.field("k", "a").unwrap().unwrap().expose(), b"one");
        assert_eq!(cache.field("k", "b").unwrap().unwrap().expose(), b"two");
        assert!(cache.field("k", "c").unwrap().is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.field("k", "a").is_none());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = Cache::new(Duration::ZERO);
        cache.insert("k", vec![("a".into(), value("one"))]);
        assert!(cache.field("k", "a").is_none());
    }
}
