//! Staged runs (`[pipeline] staging = true`): the run first extracts the whole source into
//! encrypted segment files, then transforms and loads from them. A crash or a failed load
//! resumes from the staged segments without reading the source again, which matters for sources
//! that cannot be re-read cheaply (an API with rate limits, a cursor that moved on).
//!
//! Layout: `state/staging/<pipeline>/<run id>/` (0700) holds `manifest.json` (no personal
//! data: counts, fields, fingerprints) and `000001.age`, `000002.age`, … (0600), each one source
//! batch (see [`codec`]) in the age format, encrypted to the state directory's identity, so that
//! an operator with `hushflow keys export-identity` can open them with the `age` CLI and nobody
//! else can. age authenticates every 64 KiB chunk and marks the last one: a flipped byte, a cut
//! file or swapped chunks fail to decrypt, and the run stops instead of loading partial data.
//!
//! A segment is written to a temporary name and renamed once complete, and the manifest (written
//! atomically) counts only renamed segments, so a crash never leaves a half segment counted. The
//! extraction is complete when the manifest says `extracted`; an incomplete one is extracted
//! again from the start. Once the sink has committed, the staged files are removed, or kept
//! for `retention` (days by default) for `hushflow gc` to remove.
//!
//! age encrypts to the state directory's *public* recipient, so age alone does not prove that
//! hushflow wrote a segment. The manifest keeps a tag ([`hushflow_state::seal`]) of each
//! segment's content, bound to the run id and the segment number, and a tag of its own
//! content; both are checked before staged data is used. A transactional sink commits the
//! staged run's id and segment number with each batch (`hushflow_cursors`, under
//! `<pipeline>#staged`): a resumed load continues after the segment the *sink* says it holds of
//! this staged run, and loads every segment into a sink that holds none (a database removed or
//! replaced, another sink). One process at a time works on a pipeline's staged runs: it holds
//! an exclusive lock on `staging/<pipeline>/.lock`.

pub mod codec;
mod source;

pub use source::StagedSource;

use crate::runner::RunError;
use hushflow_core::{Position, Schema, Source};
use hushflow_crypto::{StateIdentity, StateRecipient};
use hushflow_spec::plan::{Connections, Plan};
use hushflow_state::dir::StateDir;
use hushflow_state::seal::{self, StateMac};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MANIFEST: &str = "manifest.json";
/// Held (an exclusive `flock`) by the process working on a pipeline's staged runs.
const LOCK: &str = ".lock";
/// 2: segment tags, the manifest's tag and the sink; `loaded` is gone (the sink's committed
/// position says where a load resumes). Runs of format 1 are not resumed.
const FORMAT: u32 = 2;
const MANIFEST_DOMAIN: &str = "hushflow staging manifest v2";
const SEGMENT_DOMAIN: &str = "hushflow staged segment v2";
const SINK_DOMAIN: &str = "hushflow staging sink connection v1";

/// What a staged run's directory holds besides its segments. No record values: `gc` reads it
/// without the identity; a resumed run uses it only once its `tag` (a member of the file, over
/// the canonical JSON of every other member) checks out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest's format (2 today; format 1 runs are not resumed).
    pub format: u32,
    /// The pipeline staged.
    pub pipeline: String,
    /// The staged run's id, which the resumed run keeps.
    pub run_id: String,
    /// The pipeline's policy fingerprint and source, which the staged data must match to be used.
    pub fingerprint: String,
    /// The source staged: its kind and location.
    pub source: String,
    /// The sink loaded (kind, location, table and mode, and for a connection its reference and
    /// a keyed digest of the URL): the sink's committed position is trusted only for this sink.
    #[serde(default)]
    pub sink: String,
    /// The source fields staged, in order.
    pub fields: Vec<String>,
    /// Whom the segments are encrypted to (an `age1…` public key).
    pub recipient: String,
    /// Complete segments, numbered from 1.
    pub segments: u64,
    /// The tag of each complete segment's content, in order (see [`segment_tag`]).
    #[serde(default)]
    pub segment_tags: Vec<String>,
    /// Source records staged (rows and rejected records).
    pub records: u64,
    /// The whole source is staged.
    pub extracted: bool,
    /// When the run was staged.
    pub created_at: jiff::Timestamp,
    /// When the load committed, once it has.
    pub committed_at: Option<jiff::Timestamp>,
    /// Seconds the staged files stay after the commit (0: removed at once).
    #[serde(default)]
    pub retention_secs: u64,
    /// The same in days, as manifests written before `retention_secs` hold it (new ones leave
    /// it out); the longer of the two counts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retention_days: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Manifest {
    /// How long the staged files stay after the commit.
    fn retention(&self) -> std::time::Duration {
        let days = u64::from(self.retention_days) * 86_400;
        std::time::Duration::from_secs(self.retention_secs.max(days))
    }
}

/// Why staging failed. Names files, never contents.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// A staged file or directory could not be read, written or removed.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, in a few words.
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// A segment could not be encrypted or decrypted.
    #[error("{path}: {source}")]
    Decrypt {
        /// The segment file.
        path: PathBuf,
        /// Why encryption or decryption failed.
        source: hushflow_crypto::AtRestError,
    },
    /// A segment's plaintext did not decode.
    #[error(
        "{path}: {source}; the staged run cannot be used: run again with --fresh to read the \
         source anew"
    )]
    Format {
        /// The segment file.
        path: PathBuf,
        /// What did not decode.
        source: codec::FormatError,
    },
    /// The manifest does not parse.
    #[error("{path}: the manifest is damaged ({detail}); remove the directory or run with --fresh")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The manifest's tag does not verify, or the manifest does not describe its directory.
    #[error(
        "{path}: the staging manifest does not authenticate ({why}); the staged run is not used: \
         run again with --fresh to read the source anew"
    )]
    ManifestForged {
        /// The manifest file.
        path: PathBuf,
        /// What does not hold, in fixed words.
        why: &'static str,
    },
    /// A segment's tag does not verify.
    #[error(
        "{path}: the staged segment does not authenticate: its content is not what this run \
         staged (changed, made by someone else, renamed or swapped); the staged run cannot be \
         used: run again with --fresh to read the source anew"
    )]
    SegmentForged {
        /// The segment file.
        path: PathBuf,
    },
    /// Another process holds the pipeline's staging lock.
    #[error(
        "{dir}: another hushflow process is running or resuming a staged run of this pipeline \
         (it holds {dir}/.lock); wait for it to finish"
    )]
    Busy {
        /// The pipeline's staging directory.
        dir: PathBuf,
    },
}

fn io_error<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> StagingError + 'a {
    move |source| StagingError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// One staged run's directory and manifest.
#[derive(Debug)]
pub struct StagedRun {
    dir: PathBuf,
    manifest: Manifest,
    /// The manifest's tag as read, and the canonical bytes it should cover.
    read_tag: Option<String>,
    read_canonical: Vec<u8>,
    /// Tags what this run writes; `None` for runs listed by `gc`, which writes nothing.
    mac: Option<StateMac>,
    /// The pipeline's lock, held while this run is in use (shared by the runs `all_runs`
    /// lists); `None` when another process holds it.
    lock: Option<Arc<File>>,
    /// The sink differs from the one the manifest names: a resumed load starts again at the
    /// first segment.
    sink_changed: bool,
}

/// What [`prepare`] found.
pub struct Prepared {
    /// The staged run to load from.
    pub run: StagedRun,
    /// The run resumes an earlier attempt whose extraction completed.
    pub resumed: bool,
    /// Earlier unfinished staged runs of this pipeline that could not be resumed (the pipeline
    /// changed, or their extraction had not completed) and were removed.
    pub discarded: usize,
}

fn pipeline_dir(state: &StateDir, pipeline: &str) -> PathBuf {
    state.root().join("staging").join(pipeline)
}

fn describe_source(plan: &Plan) -> String {
    format!(
        "{} {}",
        plan.source.kind(),
        plan.source.location().display()
    )
}

/// The sink as the manifest records it: kind, location, table and mode, and for a connection
/// its reference and a keyed digest of the resolved URL (which may hold a password).
pub fn describe_sink(plan: &Plan, connections: &Connections, mac: &StateMac) -> String {
    let mut sink = format!("{} {}", plan.sink.kind(), plan.sink.location().display());
    if let Some(more) = plan.sink.describe(&plan.key) {
        sink.push(' ');
        sink.push_str(&more);
    }
    if let Some(connection) = plan.sink.connection() {
        let reference = connection.reference();
        let url = connections.get(reference).map_or(&[][..], |v| v.expose());
        let digest = mac.tag(SINK_DOMAIN, &[url]);
        sink.push_str(&format!(" via {reference} ({})", &digest[..16]));
    }
    sink
}

/// The key under which a transactional sink keeps a staged load's position: apart from the
/// pipeline's own (an incremental source's cursor).
pub fn position_key(pipeline: &str) -> String {
    format!("{pipeline}#staged")
}

/// The tag of segment `segment`'s plaintext in staged run `run_id`.
fn segment_tag(mac: &StateMac, run_id: &str, segment: u64, plain: &[u8]) -> String {
    mac.tag(
        SEGMENT_DOMAIN,
        &[
            run_id.as_bytes(),
            &segment.to_be_bytes(),
            &seal::sha256(plain),
        ],
    )
}

/// Takes the pipeline's staging lock, creating its directory. `Ok(None)`: another process
/// holds it.
fn try_lock(dir: &Path, create: bool) -> Result<Option<File>, StagingError> {
    if create {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir, "create the staging directory"))?;
    }
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_error(&path, "open the staging lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(io_error(&path, "lock the staged runs")(e)),
    }
}

/// Finds the staged run to resume, or starts a new one under `run_id`. Only an unfinished run
/// of the same pipeline, policy and source whose extraction completed is resumed (the newest,
/// if several), once its manifest authenticates; other unfinished ones are removed. `fresh`
/// removes them all. The pipeline's staging lock is taken first and held by the run returned:
/// if another process holds it, this fails with [`StagingError::Busy`].
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    state: &StateDir,
    plan: &Plan,
    run_id: &str,
    fields: &[String],
    recipient: &StateRecipient,
    mac: &StateMac,
    sink: &str,
    fresh: bool,
) -> Result<Prepared, StagingError> {
    let dir = pipeline_dir(state, &plan.name);
    let lock = match try_lock(&dir, true)? {
        Some(lock) => Arc::new(lock),
        None => return Err(StagingError::Busy { dir }),
    };
    let mut discarded = 0;
    let mut resume: Option<StagedRun> = None;
    for run in list_runs(&dir, None)? {
        if run.manifest.committed_at.is_some() {
            continue;
        }
        // What the manifest claims decides only whether the run is a candidate: a run passed
        // over is removed (its source is read again), one used must authenticate below.
        let usable = !fresh
            && run.manifest.extracted
            && run.manifest.format == FORMAT
            && run.manifest.pipeline == plan.name
            && run.manifest.fingerprint == plan.fingerprint
            && run.manifest.source == describe_source(plan)
            && run.manifest.fields == fields
            && run.manifest.recipient == recipient.to_string();
        // Runs are listed oldest first: a newer usable one replaces an older one.
        if usable {
            if let Some(older) = resume.replace(run) {
                older.remove()?;
                discarded += 1;
            }
        } else {
            run.remove()?;
            discarded += 1;
        }
    }
    if let Some(mut run) = resume {
        run.authenticate(mac)?;
        run.mac = Some(mac.clone());
        run.lock = Some(lock);
        if run.manifest.sink != sink {
            run.manifest.sink = sink.to_owned();
            run.sink_changed = true;
            run.save()?;
        }
        return Ok(Prepared {
            run,
            resumed: true,
            discarded,
        });
    }
    let run_dir = dir.join(run_id);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&run_dir)
        .map_err(io_error(&run_dir, "create the staging directory"))?;
    let run = StagedRun {
        dir: run_dir,
        manifest: Manifest {
            format: FORMAT,
            pipeline: plan.name.clone(),
            run_id: run_id.to_owned(),
            fingerprint: plan.fingerprint.clone(),
            source: describe_source(plan),
            sink: sink.to_owned(),
            fields: fields.to_vec(),
            recipient: recipient.to_string(),
            segments: 0,
            segment_tags: Vec::new(),
            records: 0,
            extracted: false,
            created_at: jiff::Timestamp::now(),
            committed_at: None,
            retention_secs: plan.retention.as_secs(),
            retention_days: 0,
        },
        read_tag: None,
        read_canonical: Vec::new(),
        mac: Some(mac.clone()),
        lock: Some(lock),
        sink_changed: false,
    };
    run.save()?;
    Ok(Prepared {
        run,
        resumed: false,
        discarded,
    })
}

/// Every staged run under `dir` (one pipeline's staging directory), oldest first, sharing
/// `lock` (the pipeline's lock, when this process holds it).
fn list_runs(dir: &Path, lock: Option<Arc<File>>) -> Result<Vec<StagedRun>, StagingError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, "list staged runs")(e)),
    };
    let mut runs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir, "list staged runs"))?;
        let path = entry.path();
        if path.is_dir() {
            let mut run = StagedRun::open(path)?;
            run.lock = lock.clone();
            runs.push(run);
        }
    }
    runs.sort_by(|a, b| a.manifest.run_id.cmp(&b.manifest.run_id));
    Ok(runs)
}

/// Every staged run of every pipeline in the state directory, oldest first within a pipeline.
/// The runs of a pipeline whose lock another process holds (a run in progress) are listed but
/// never [`StagedRun::expired`]; the others hold their pipeline's lock until they are dropped.
pub fn all_runs(state: &StateDir) -> Result<Vec<StagedRun>, StagingError> {
    let root = state.root().join("staging");
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(&root, "list staged pipelines")(e)),
    };
    let mut runs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(&root, "list staged pipelines"))?;
        let dir = entry.path();
        if dir.is_dir() {
            let lock = try_lock(&dir, false)?.map(Arc::new);
            runs.extend(list_runs(&dir, lock)?);
        }
    }
    Ok(runs)
}

impl StagedRun {
    /// Reads a staged run's manifest. A directory without one (a crash before the first save) is
    /// an unfinished run with nothing staged.
    fn open(dir: PathBuf) -> Result<StagedRun, StagingError> {
        let path = dir.join(MANIFEST);
        let damaged = |e: serde_json::Error| StagingError::Manifest {
            path: path.clone(),
            detail: format!("line {}, column {}", e.line(), e.column()),
        };
        let (manifest, read_tag, read_canonical) = match fs::read(&path) {
            Ok(bytes) => {
                let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(damaged)?;
                let (tag, value, canonical) = seal::canonical_without_tag(value);
                (
                    serde_json::from_value(value).map_err(damaged)?,
                    tag,
                    canonical,
                )
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (
                Manifest {
                    format: FORMAT,
                    pipeline: String::new(),
                    run_id: dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    fingerprint: String::new(),
                    source: String::new(),
                    sink: String::new(),
                    fields: Vec::new(),
                    recipient: String::new(),
                    segments: 0,
                    segment_tags: Vec::new(),
                    records: 0,
                    extracted: false,
                    created_at: jiff::Timestamp::UNIX_EPOCH,
                    committed_at: None,
                    retention_secs: 0,
                    retention_days: 0,
                },
                None,
                Vec::new(),
            ),
            Err(e) => return Err(io_error(&path, "read the staging manifest")(e)),
        };
        Ok(StagedRun {
            dir,
            manifest,
            read_tag,
            read_canonical,
            mac: None,
            lock: None,
            sink_changed: false,
        })
    }

    /// Checks the manifest as read against its tag, and that it describes this directory and
    /// a tag for each segment.
    fn authenticate(&self, mac: &StateMac) -> Result<(), StagingError> {
        let forged = |why| StagingError::ManifestForged {
            path: self.dir.join(MANIFEST),
            why,
        };
        let tagged = self
            .read_tag
            .as_deref()
            .is_some_and(|tag| mac.verify(MANIFEST_DOMAIN, &[&self.read_canonical], tag));
        if !tagged {
            return Err(forged(
                "its tag does not match its content: it was edited, or written with another \
                 state identity",
            ));
        }
        let name = self.dir.file_name().and_then(|n| n.to_str());
        if name != Some(self.manifest.run_id.as_str())
            || self.manifest.segment_tags.len() as u64 != self.manifest.segments
        {
            return Err(forged("it does not describe this directory"));
        }
        Ok(())
    }

    /// The manifest as read or written.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The staged run's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn segment_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{n:06}.age"))
    }

    /// Writes the manifest, tagged, atomically: a temporary file renamed over the old one.
    fn save(&self) -> Result<(), StagingError> {
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(".manifest.json.tmp");
        let encode_error = |e: serde_json::Error| StagingError::Io {
            path: path.clone(),
            action: "encode the manifest",
            source: e.into(),
        };
        let value = serde_json::to_value(&self.manifest).map_err(encode_error)?;
        let (_, mut value, canonical) = seal::canonical_without_tag(value);
        if let (Some(mac), Some(members)) = (&self.mac, value.as_object_mut()) {
            let tag = mac.tag(MANIFEST_DOMAIN, &[&canonical]);
            members.insert("tag".into(), tag.into());
        }
        let bytes = serde_json::to_vec_pretty(&value).map_err(encode_error)?;
        write_private(&tmp, &bytes)?;
        fs::rename(&tmp, &path).map_err(io_error(&path, "replace the manifest"))
    }

    /// Stages the whole source: `workers` threads decode and encrypt batches in parallel; this
    /// thread writes them in order. Segments and the directory are synced before the manifest
    /// says `extracted`.
    pub fn extract(
        &mut self,
        mut source: Box<dyn Source>,
        workers: usize,
        batch_size: usize,
        recipient: &StateRecipient,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RunError> {
        // Segments past the manifest's count are left from a crash: overwritten in turn.
        self.manifest.segments = 0;
        self.manifest.segment_tags.clear();
        self.manifest.records = 0;
        let dir = self.dir.clone();
        let run_id = self.manifest.run_id.clone();
        let mac = self.mac()?.clone();
        let mut handed_out = 0u64;
        let encrypt_error = |e: hushflow_crypto::AtRestError| {
            RunError::from(StagingError::Decrypt {
                path: dir.clone(),
                source: e,
            })
        };
        crate::workers::in_order(
            workers,
            crate::workers::Stages {
                reader: "source",
                worker: "staging",
            },
            || {
                handed_out += 1;
                let chunk = source.next_chunk(batch_size).map_err(RunError::Connector)?;
                Ok(chunk.map(|c| (handed_out, c)))
            },
            |(n, chunk): (u64, hushflow_core::SourceChunk)| {
                let batch = chunk.decode()?;
                let records = (batch.batch.len() + batch.rejected.len()) as u64;
                let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(
                    batch.batch.text_len() + 16 * batch.batch.len() + 1024,
                ));
                let place = codec::Place {
                    run_id: &run_id,
                    segment: n,
                };
                codec::encode(place, &batch, &mut plain);
                let tag = segment_tag(&mac, &run_id, n, &plain);
                let mut sealed = Vec::with_capacity(plain.len() + plain.len() / 4096 + 256);
                let mut w = recipient.encrypt(&mut sealed).map_err(encrypt_error)?;
                w.write_all(&plain)
                    .and_then(|()| w.finish().map(|_| ()))
                    .map_err(|e| encrypt_error(e.into()))?;
                Ok((records, tag, sealed))
            },
            |(records, tag, sealed)| {
                let n = self.manifest.segments + 1;
                let path = self.segment_path(n);
                let tmp = self.dir.join(format!(".{n:06}.age.tmp"));
                write_private(&tmp, &sealed).map_err(RunError::from)?;
                fs::rename(&tmp, &path)
                    .map_err(io_error(&path, "rename the staged segment"))
                    .map_err(RunError::from)?;
                self.manifest.segments = n;
                self.manifest.segment_tags.push(tag);
                self.manifest.records += records;
                progress(self.manifest.records);
                self.save().map_err(RunError::from)
            },
        )?;
        self.sync_all().map_err(RunError::from)?;
        self.manifest.extracted = true;
        self.save().map_err(RunError::from)?;
        sync_dir(&self.dir).map_err(RunError::from)
    }

    /// Makes every segment durable, then the directory entries that name them.
    fn sync_all(&self) -> Result<(), StagingError> {
        for n in 1..=self.manifest.segments {
            let path = self.segment_path(n);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_error(&path, "sync the staged segment"))?;
        }
        sync_dir(&self.dir)
    }

    /// Decrypts and decodes every segment without keeping anything: a resumed run checks its
    /// staged data before loading any of it, so a damaged, cut, swapped or foreign file stops
    /// the run before the sink sees a row.
    pub fn verify(&self, identity: &StateIdentity) -> Result<(), StagingError> {
        let schema = Arc::new(Schema::new(self.manifest.fields.clone()));
        let mac = self.mac()?;
        for (n, tag) in (1..=self.manifest.segments).zip(&self.manifest.segment_tags) {
            let path = self.segment_path(n);
            let place = codec::Place {
                run_id: &self.manifest.run_id,
                segment: n,
            };
            let plain = read_segment(&path, identity, mac, place, tag)?;
            codec::decode(place, &plain, &schema)
                .map_err(|source| StagingError::Format { path, source })?;
        }
        Ok(())
    }

    /// A source that reads the staged segments back, in order, checking each one's tag again.
    pub fn source(&self, identity: &StateIdentity) -> Result<StagedSource, StagingError> {
        let schema = Arc::new(Schema::new(self.manifest.fields.clone()));
        Ok(StagedSource::new(
            (1..=self.manifest.segments)
                .zip(&self.manifest.segment_tags)
                .map(|(n, tag)| (n, self.segment_path(n), tag.clone()))
                .collect(),
            self.manifest.run_id.clone(),
            schema,
            identity.clone(),
            self.mac()?.clone(),
        ))
    }

    /// How many segments of this staged run a sink holds, by the position it committed with
    /// them under [`position_key`]: 0 when the position names another run (or none), or when
    /// the sink is not the one the load began with.
    pub fn committed_in(&self, position: Option<&Position>) -> u64 {
        match position {
            Some(p) if !self.sink_changed && p.cursor == self.manifest.run_id => p
                .key
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= self.manifest.segments)
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// The position a transactional sink commits with segment `segment`'s rows.
    pub fn position_after(&self, segment: u64) -> Position {
        Position {
            cursor: self.manifest.run_id.clone(),
            key: segment.to_string(),
        }
    }

    fn mac(&self) -> Result<&StateMac, StagingError> {
        self.mac
            .as_ref()
            .ok_or_else(|| StagingError::ManifestForged {
                path: self.dir.join(MANIFEST),
                why: "the run was opened without the state identity",
            })
    }

    /// The sink committed: the staged files go now, or after the retention.
    pub fn commit(mut self) -> Result<(), StagingError> {
        if self.manifest.retention().is_zero() {
            return self.remove();
        }
        self.manifest.committed_at = Some(jiff::Timestamp::now());
        self.save()
    }

    /// Whether `gc` removes this run now: committed and past its retention, or (with
    /// `unfinished`) not committed at all.
    pub fn expired(&self, unfinished: bool) -> bool {
        self.expired_at(jiff::Timestamp::now(), unfinished)
    }

    fn expired_at(&self, now: jiff::Timestamp, unfinished: bool) -> bool {
        // Another process is working on this pipeline's staged runs.
        if self.lock.is_none() {
            return false;
        }
        match self.manifest.committed_at {
            Some(at) => {
                let kept = i64::try_from(self.manifest.retention().as_secs()).unwrap_or(i64::MAX);
                now.duration_since(at).as_secs() >= kept
            }
            None => unfinished,
        }
    }

    /// Bytes on disk, for `gc`'s report.
    pub fn size(&self) -> u64 {
        fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Deletes the staged run's directory.
    pub fn remove(self) -> Result<(), StagingError> {
        fs::remove_dir_all(&self.dir).map_err(io_error(&self.dir, "remove the staged run"))
    }
}

fn damaged(e: io::Error) -> hushflow_crypto::AtRestError {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            hushflow_crypto::AtRestError::Damaged(e.kind().to_string())
        }
        _ => hushflow_crypto::AtRestError::Io(e),
    }
}

/// Writes `bytes` to a file readable by its owner only, replacing a leftover temporary. Not
/// synced here: the extraction syncs every segment once, before it marks itself complete. (So
/// neither segments nor the manifest, saved after each segment, go through
/// `hushflow_state::atomic_file`, which syncs every file it writes and its directory: two fsyncs
/// per segment would cost more than the staging itself.)
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StagingError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path, "create"))?;
    f.write_all(bytes).map_err(io_error(path, "write"))
}

fn sync_dir(dir: &Path) -> Result<(), StagingError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir, "sync the staging directory"))
}

/// Reads a whole segment file, decrypts it and checks its tag (on a worker thread).
fn read_segment(
    path: &Path,
    identity: &StateIdentity,
    mac: &StateMac,
    place: codec::Place<'_>,
    tag: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, StagingError> {
    let file = File::open(path).map_err(io_error(path, "open the staged segment"))?;
    let mut reader = identity
        .decrypt(io::BufReader::with_capacity(256 * 1024, file))
        .map_err(|source| StagingError::Decrypt {
            path: path.to_path_buf(),
            source,
        })?;
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plain)
        .map_err(|e| StagingError::Decrypt {
            path: path.to_path_buf(),
            source: damaged(e),
        })?;
    let parts: [&[u8]; 3] = [
        place.run_id.as_bytes(),
        &place.segment.to_be_bytes(),
        &seal::sha256(&plain),
    ];
    if !mac.verify(SEGMENT_DOMAIN, &parts, tag) {
        return Err(StagingError::SegmentForged {
            path: path.to_path_buf(),
        });
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(retention_secs: u64, retention_days: u32) -> Manifest {
        Manifest {
            format: FORMAT,
            pipeline: "p".into(),
            run_id: "r".into(),
            fingerprint: String::new(),
            source: String::new(),
            sink: String::new(),
            fields: Vec::new(),
            recipient: String::new(),
            segments: 0,
            segment_tags: Vec::new(),
            records: 0,
            extracted: true,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            committed_at: None,
            retention_secs,
            retention_days,
        }
    }

    /// A retention shorter than a day (`retention = "12h"`) is kept in seconds; a manifest
    /// written before that, with whole days, keeps its meaning.
    #[test]
    fn retention_is_kept_in_seconds_and_old_manifests_in_days_still_count() {
        let new = manifest(12 * 3600, 0);
        assert_eq!(new.retention(), std::time::Duration::from_secs(12 * 3600));
        let json = serde_json::to_value(&new).unwrap();
        assert_eq!(json["retention_secs"], 12 * 3600);
        assert!(json.get("retention_days").is_none(), "{json}");

        let mut old = serde_json::to_value(manifest(0, 0)).unwrap();
        let members = old.as_object_mut().unwrap();
        members.remove("retention_secs");
        members.insert("retention_days".into(), 3.into());
        let old: Manifest = serde_json::from_value(old).unwrap();
        assert_eq!(old.retention(), std::time::Duration::from_secs(3 * 86_400));
        assert_eq!(serde_json::to_value(&old).unwrap()["retention_days"], 3);
    }
}
