//! Where the stores read their settings: the process environment, or (in tests, and for callers
//! that configure the stores themselves) a fixed table, so that two configurations can live in
//! one process without racing on environment variables.

use std::collections::HashMap;
use std::sync::Arc;

/// A source of `NAME=value` settings.
#[derive(Clone, Default)]
pub struct Env(Option<Arc<HashMap<String, String>>>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values include credentials.
        match &self.0 {
            None => f.write_str("Env(process)"),
            Some(map) => f.debug_set().entries(map.keys()).finish(),
        }
    }
}

impl Env {
    /// The process environment, read at each lookup.
    pub fn process() -> Env {
        Env(None)
    }

    /// Exactly these settings, and nothing from the process environment.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env(Some(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )))
    }

    /// The setting `name`, trimmed; `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.0 {
            None => std::env::var(name).ok(),
            Some(map) => map.get(name).cloned(),
        };
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The home directory (`HOME`), for the default credential files.
    pub fn home(&self) -> Option<std::path::PathBuf> {
        self.get("HOME").map(std::path::PathBuf::from)
    }
}
