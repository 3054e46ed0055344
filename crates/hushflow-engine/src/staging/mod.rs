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
//! `retention` days for `hushflow gc` to remove.

pub mod codec;
mod source;

pub use source::StagedSource;

use crate::runner::RunError;
use hushflow_core::{Schema, Source};
use hushflow_crypto::{StateIdentity, StateRecipient};
use hushflow_spec::plan::Plan;
use hushflow_state::dir::StateDir;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

/// What a staged run's directory holds besides its segments. No record values: this file is
/// read by `gc` and by resumption without the identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub pipeline: String,
    pub run_id: String,
    /// The pipeline's policy fingerprint and source, which the staged data must match to be used.
    pub fingerprint: String,
    pub source: String,
    pub fields: Vec<String>,
    /// Whom the segments are encrypted to (an `age1…` public key).
    pub recipient: String,
    /// Complete segments, numbered from 1.
    pub segments: u64,
    /// Source records staged (rows and rejected records).
    pub records: u64,
    /// The whole source is staged.
    pub extracted: bool,
    /// Segments whose rows a transactional sink has committed (a resumed load skips them).
    pub loaded: u64,
    pub created_at: jiff::Timestamp,
    pub committed_at: Option<jiff::Timestamp>,
    /// Days the staged files stay after the commit (0: removed at once).
    pub retention_days: u32,
}

/// Why staging failed. Names files, never contents.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Decrypt {
        path: PathBuf,
        source: hushflow_crypto::AtRestError,
    },
    #[error(
        "{path}: {source}; the staged run cannot be used: run again with --fresh to read the \
         source anew"
    )]
    Format {
        path: PathBuf,
        source: codec::FormatError,
    },
    #[error("{path}: the manifest is damaged ({detail}); remove the directory or run with --fresh")]
    Manifest { path: PathBuf, detail: String },
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
}

/// What [`prepare`] found.
pub struct Prepared {
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

/// Finds the staged run to resume, or starts a new one under `run_id`. Only an unfinished run
/// of the same pipeline, policy and source whose extraction completed is resumed (the newest,
/// if several); other unfinished ones are removed. `fresh` removes them all.
pub fn prepare(
    state: &StateDir,
    plan: &Plan,
    run_id: &str,
    fields: &[String],
    recipient: &StateRecipient,
    fresh: bool,
) -> Result<Prepared, StagingError> {
    let dir = pipeline_dir(state, &plan.name);
    let mut discarded = 0;
    let mut resume: Option<StagedRun> = None;
    for run in list_runs(&dir)? {
        if run.manifest.committed_at.is_some() {
            continue;
        }
        let usable = !fresh
            && run.manifest.extracted
            && run.manifest.format == FORMAT
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
    if let Some(run) = resume {
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
            fields: fields.to_vec(),
            recipient: recipient.to_string(),
            segments: 0,
            records: 0,
            extracted: false,
            loaded: 0,
            created_at: jiff::Timestamp::now(),
            committed_at: None,
            retention_days: plan.retention_days,
        },
    };
    run.save()?;
    Ok(Prepared {
        run,
        resumed: false,
        discarded,
    })
}

/// Every staged run under `dir` (one pipeline's staging directory), oldest first.
fn list_runs(dir: &Path) -> Result<Vec<StagedRun>, StagingError> {
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
            runs.push(StagedRun::open(path)?);
        }
    }
    runs.sort_by(|a, b| a.manifest.run_id.cmp(&b.manifest.run_id));
    Ok(runs)
}

/// Every staged run of every pipeline in the state directory, oldest first within a pipeline.
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
        if entry.path().is_dir() {
            runs.extend(list_runs(&entry.path())?);
        }
    }
    Ok(runs)
}

impl StagedRun {
    /// Reads a staged run's manifest. A directory without one (a crash before the first save) is
    /// an unfinished run with nothing staged.
    fn open(dir: PathBuf) -> Result<StagedRun, StagingError> {
        let path = dir.join(MANIFEST);
        let manifest = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StagingError::Manifest {
                path: path.clone(),
                detail: format!("line {}, column {}", e.line(), e.column()),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Manifest {
                format: FORMAT,
                pipeline: String::new(),
                run_id: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                fingerprint: String::new(),
                source: String::new(),
                fields: Vec::new(),
                recipient: String::new(),
                segments: 0,
                records: 0,
                extracted: false,
                loaded: 0,
                created_at: jiff::Timestamp::UNIX_EPOCH,
                committed_at: None,
                retention_days: 0,
            },
            Err(e) => return Err(io_error(&path, "read the staging manifest")(e)),
        };
        Ok(StagedRun { dir, manifest })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn segment_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{n:06}.age"))
    }

    /// Writes the manifest atomically: a temporary file renamed over the old one.
    fn save(&self) -> Result<(), StagingError> {
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(".manifest.json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.manifest).map_err(|e| StagingError::Io {
            path: path.clone(),
            action: "encode the manifest",
            source: e.into(),
        })?;
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
        self.manifest.records = 0;
        let dir = self.dir.clone();
        let run_id = self.manifest.run_id.clone();
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
                let mut sealed = Vec::with_capacity(plain.len() + plain.len() / 4096 + 256);
                let mut w = recipient.encrypt(&mut sealed).map_err(encrypt_error)?;
                w.write_all(&plain)
                    .and_then(|()| w.finish().map(|_| ()))
                    .map_err(|e| encrypt_error(e.into()))?;
                Ok((records, sealed))
            },
            |(records, sealed)| {
                let n = self.manifest.segments + 1;
                let path = self.segment_path(n);
                let tmp = self.dir.join(format!(".{n:06}.age.tmp"));
                write_private(&tmp, &sealed).map_err(RunError::from)?;
                fs::rename(&tmp, &path)
                    .map_err(io_error(&path, "rename the staged segment"))
                    .map_err(RunError::from)?;
                self.manifest.segments = n;
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
        for n in 1..=self.manifest.segments {
            let path = self.segment_path(n);
            let plain = read_segment(&path, identity)?;
            let place = codec::Place {
                run_id: &self.manifest.run_id,
                segment: n,
            };
            codec::decode(place, &plain, &schema)
                .map_err(|source| StagingError::Format { path, source })?;
        }
        Ok(())
    }

    /// A source that reads the staged segments back, in order.
    pub fn source(&self, identity: &StateIdentity) -> StagedSource {
        let schema = Arc::new(Schema::new(self.manifest.fields.clone()));
        StagedSource::new(
            (1..=self.manifest.segments)
                .map(|n| (n, self.segment_path(n)))
                .collect(),
            self.manifest.run_id.clone(),
            schema,
            identity.clone(),
        )
    }

    /// Records that a transactional sink has committed the first `segments` segments.
    pub fn set_loaded(&mut self, segments: u64) -> Result<(), StagingError> {
        self.manifest.loaded = segments;
        self.save()
    }

    /// The sink committed: the staged files go now, or after `retention_days`.
    pub fn commit(mut self) -> Result<(), StagingError> {
        if self.manifest.retention_days == 0 {
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
        match self.manifest.committed_at {
            Some(at) => {
                let days = i64::from(self.manifest.retention_days);
                now.duration_since(at).as_secs() >= days * 86_400
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
/// synced here: the extraction syncs every segment once, before it marks itself complete.
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

/// Reads a whole segment file and decrypts it (on a worker thread).
fn read_segment(
    path: &Path,
    identity: &StateIdentity,
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
    Ok(plain)
}
