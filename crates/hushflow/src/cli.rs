//! Arguments. Every command takes `--state-dir` (or `HUSHFLOW_STATE_DIR`).

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "hushflow",
    version,
    about = "Privacy-first contact and lead sync"
)]
pub struct Cli {
    /// Where the keyring, audit store and quarantine live (created 0700).
    #[arg(
        long,
        global = true,
        env = "HUSHFLOW_STATE_DIR",
        default_value = ".hushflow"
    )]
    pub state_dir: PathBuf,

    /// The key that seals the keyring, as a secret reference (env:NAME, file:PATH); by default
    /// env:HUSHFLOW_MASTER_KEY when that is set. Without one the keyring is a local,
    /// unprotected demo keyring.
    #[arg(long, global = true, value_name = "REF")]
    pub master_key: Option<String>,

    /// More log output on stderr (-v info, -vv debug); secrets are masked either way.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: read the source, apply the policy, write the sink.
    Run {
        pipeline: PathBuf,
        /// Threads that apply the policy (overrides the pipeline's `workers`; default one per core).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: Option<u16>,
        /// A staged pipeline: discard what an earlier, unfinished attempt staged and read the
        /// source again instead of resuming.
        #[arg(long)]
        fresh: bool,
        /// An incremental source (`cursor`): read everything again instead of continuing after
        /// the last committed position.
        #[arg(long)]
        full_refresh: bool,
    },
    /// Erase a subject by crypto-shredding: delete its own keys (tokenize rules with
    /// `per_subject = true`), so that none of its tokens, wherever copied, can be reversed
    /// (audited by the subject's handle, never its id).
    Erase {
        #[arg(long)]
        pipeline: PathBuf,
        /// The subject's record key (the value of the pipeline's `key` field).
        #[arg(long)]
        subject: String,
    },
    /// Remove staged files past their retention (and, with --unfinished, staged runs that never
    /// committed: they can no longer resume).
    Gc {
        #[arg(long)]
        unfinished: bool,
    },
    /// Check a pipeline without touching data and print what leaves the source, and how.
    Validate { pipeline: PathBuf },
    /// Write synthetic data for trying pipelines out.
    #[command(subcommand)]
    Sample(SampleCommand),
    /// Manage the local keyring (names, ids and dates only; material never leaves it).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read and check the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Quarantined records: list them, or decrypt them for an authorized operator (audited).
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Reverse tokens made by `tokenize`, for a holder of the key (every use is audited).
    Detokenize {
        /// The key the tokens were made with: keyring:NAME, env:NAME or file:PATH.
        #[arg(long)]
        key: String,
        /// Tokens; one per line on stdin when none are given.
        tokens: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SampleCommand {
    /// Realistic, dirty, deterministic synthetic contacts.
    Contacts {
        #[arg(long, default_value_t = 1000)]
        rows: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = SampleFormat::Csv)]
        format: SampleFormat,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SampleFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a random 256-bit key.
    Create {
        name: String,
        /// What the key is for; a hashing key (or one of unknown purpose) rotates only with
        /// --i-understand-hashes-change.
        #[arg(long, value_enum)]
        purpose: Option<KeyPurpose>,
        /// Succeed without change when the key exists already.
        #[arg(long)]
        if_missing: bool,
    },
    /// List keys: names, versions, ids, purposes, creation dates.
    List,
    /// Print a key's current material (base64) so another system can compute the same hashes
    /// (audited).
    Export { name: String },
    /// Add a new version of a key and make it current; old versions still detokenize (audited).
    Rotate {
        name: String,
        /// Rotate a hashing key although every hash made with it will change.
        #[arg(long)]
        i_understand_hashes_change: bool,
    },
    /// Print the age identity (AGE-SECRET-KEY-1…) that opens this state directory's quarantined
    /// and staged files with the `age` CLI (audited).
    ExportIdentity {
        /// Write it to this file (created 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a new random master key (base64) for HUSHFLOW_MASTER_KEY.
    NewMasterKey,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyPurpose {
    Hash,
    Tokenize,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// Quarantine files with their record counts by reason; RUN (a run id, or part of a file
    /// name) narrows the list.
    List {
        run: Option<String>,
        /// One JSON object per file instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Decrypt a run's quarantined records to a file (JSON lines, created 0600) (audited).
    Export {
        run: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Feed a run's quarantined records through the pipeline again, once its file is fixed.
    /// Table sinks get the records; a file sink's output goes beside it
    /// (`NAME.replay-RUN.EXT`) unless --out says where, since a file sink replaces its file.
    Replay {
        run: String,
        /// The pipeline file (fixed) the records came through; by default the file the run
        /// used, as recorded beside its quarantine.
        #[arg(long)]
        pipeline: Option<PathBuf>,
        /// Where a file sink writes the replayed records.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the audit records.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the hash chain; exit 1 naming the first record changed, removed or inserted.
    Verify,
}
