//! The subject key store, `state/subjects.db` (SQLite, 0600): one random key per subject for
//! `tokenize` with `per_subject = true`, wrapped under the rule's root key (see
//! `hushflow_crypto::SubjectRoot`) and named by a keyed handle, so the file holds neither subject
//! ids nor usable keys. `hushflow erase` deletes a subject's keys (`secure_delete` overwrites the
//! freed pages), after which no token made with them can be reversed, wherever it was copied.
//!
//! During a run, keys made for new subjects wait in memory and are written by
//! [`SubjectStore::flush`], which the engine calls before each batch reaches the sink: a token
//! never leaves without its key on disk.

use hushflow_crypto::{SubjectHandle, SubjectRoot};
use hushflow_policy::SubjectKeys;
use hushflow_secrets::SecretValue;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const DB_FILE: &str = "subjects.db";

/// Cached subject keys are dropped (all are on disk by then) once there are this many, so memory
/// stays bounded however many subjects a run meets.
const CACHE_LIMIT: usize = 100_000;

/// Why the subject key store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum SubjectStoreError {
    /// A database operation failed.
    #[error("subject key store {path}: {action}: {source}")]
    Sql {
        /// The store's file.
        path: PathBuf,
        /// What was being done, in a few words.
        action: &'static str,
        /// The database's error.
        source: rusqlite::Error,
    },
    /// The store's file could not be made private or checked.
    #[error("subject key store {path}: {source}")]
    Io {
        /// The store's file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The per-subject key store of a state directory (see the module documentation).
pub struct SubjectStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The root keys a run tokenizes under, by secret reference.
    roots: Vec<(String, SubjectRoot)>,
    cache: Mutex<HashMap<(usize, SubjectHandle), SecretValue>>,
    /// Keys made this run and not yet written: (root index, handle, wrapped key).
    pending: Mutex<Vec<(usize, SubjectHandle, Vec<u8>)>>,
}

impl SubjectStore {
    /// Opens (creating, 0600) the store of `state_dir`, for tokenizing under `roots`.
    pub fn open(
        state_dir: &Path,
        roots: Vec<(String, SubjectRoot)>,
    ) -> Result<SubjectStore, SubjectStoreError> {
        let path = state_dir.join(DB_FILE);
        let err = |action| {
            let path = path.clone();
            move |source| SubjectStoreError::Sql {
                path,
                action,
                source,
            }
        };
        crate::audit::create_private_file(&path).map_err(|source| SubjectStoreError::Io {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(err("open"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err("set the busy timeout"))?;
        // Erased keys are overwritten in the file, not just unlinked from its b-tree.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(err("turn on secure_delete"))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS subject_keys (
                 root_id TEXT NOT NULL,
                 handle BLOB NOT NULL,
                 wrapped BLOB NOT NULL,
                 created_at TEXT NOT NULL,
                 PRIMARY KEY (root_id, handle)
             ) WITHOUT ROWID",
        )
        .map_err(err("create its table"))?;
        Ok(SubjectStore {
            path,
            conn: Mutex::new(conn),
            roots,
            cache: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
        })
    }

    fn error(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> SubjectStoreError {
        let path = self.path.clone();
        move |source| SubjectStoreError::Sql {
            path,
            action,
            source,
        }
    }

    /// The wrapped key of `handle` under root key `root_id`, if the subject has one.
    pub fn wrapped(
        &self,
        root_id: &str,
        handle: &SubjectHandle,
    ) -> Result<Option<Vec<u8>>, SubjectStoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row(
            "SELECT wrapped FROM subject_keys WHERE root_id = ?1 AND handle = ?2",
            params![root_id, &handle[..]],
            |r| r.get(0),
        )
        .optional()
        .map_err(self.error("read a subject key"))
    }

    /// Writes the keys made since the last flush, in one transaction.
    pub fn flush(&self) -> Result<(), SubjectStoreError> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if !pending.is_empty() {
            let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction().map_err(self.error("begin"))?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO subject_keys (root_id, handle, wrapped, created_at)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(self.error("prepare"))?;
                let now = jiff::Timestamp::now().to_string();
                for (root, handle, wrapped) in &pending {
                    insert
                        .execute(params![
                            self.roots[*root].1.root_id(),
                            &handle[..],
                            wrapped,
                            now
                        ])
                        .map_err(self.error("store a subject key"))?;
                }
            }
            tx.commit().map_err(self.error("commit"))?;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > CACHE_LIMIT {
            cache.clear();
        }
        Ok(())
    }

    /// Deletes the keys named by `(root key id, handle)`, as a token made with one names its key
    /// (a data subject request finds them in the person's rows); returns how many there were.
    pub fn erase_handles(
        &self,
        keys: &[(String, SubjectHandle)],
    ) -> Result<usize, SubjectStoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(self.error("begin"))?;
        let mut erased = 0;
        for (root_id, handle) in keys {
            erased += tx
                .execute(
                    "DELETE FROM subject_keys WHERE root_id = ?1 AND handle = ?2",
                    params![root_id, &handle[..]],
                )
                .map_err(self.error("erase a subject key"))?;
        }
        tx.commit().map_err(self.error("commit"))?;
        Ok(erased)
    }

    /// Deletes every key of the subject under each of `roots` (all versions of a rotated key);
    /// returns how many there were.
    pub fn erase(&self, roots: &[SubjectRoot], subject: &str) -> Result<usize, SubjectStoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(self.error("begin"))?;
        let mut erased = 0;
        for root in roots {
            let handle = root.handle(subject.as_bytes());
            erased += tx
                .execute(
                    "DELETE FROM subject_keys WHERE root_id = ?1 AND handle = ?2",
                    params![root.root_id(), &handle[..]],
                )
                .map_err(self.error("erase a subject key"))?;
        }
        tx.commit().map_err(self.error("commit"))?;
        Ok(erased)
    }
}

impl SubjectKeys for SubjectStore {
    fn tokenizer(
        &self,
        key: &str,
        subject: &str,
    ) -> Result<hushflow_crypto::Tokenizer, &'static str> {
        if subject.is_empty() {
            return Err("the record has no subject (its key field is empty)");
        }
        let index = self
            .roots
            .iter()
            .position(|(reference, _)| reference == key)
            .ok_or("its key is not one of this run's per-subject keys")?;
        let root = &self.roots[index].1;
        let handle = root.handle(subject.as_bytes());
        // Held while a new key is made, so that two workers meeting a new subject at once agree
        // on one key.
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let material = match cache.get(&(index, handle)) {
            Some(m) => SecretValue::new(m.expose().to_vec()),
            None => {
                let material = match self.wrapped(root.root_id(), &handle) {
                    Ok(Some(wrapped)) => root
                        .unwrap_key(&handle, &wrapped)
                        .map_err(|_| "its subject key does not unwrap (damaged store)")?,
                    Ok(None) => {
                        let (material, wrapped) = root
                            .new_key(&handle)
                            .map_err(|_| "a subject key could not be made")?;
                        self.pending
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((index, handle, wrapped));
                        material
                    }
                    Err(_) => return Err("the subject key store could not be read"),
                };
                cache.insert(
                    (index, handle),
                    SecretValue::new(material.expose().to_vec()),
                );
                material
            }
        };
        drop(cache);
        root.tokenizer(&handle, &material)
            .map_err(|_| "a subject tokenizer could not be made")
    }
}
