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
        /// Succeed without change when the key exists already.
        #[arg(long)]
        if_missing: bool,
    },
    /// List keys: names, ids, creation dates.
    List,
    /// Print a key's material (base64) so another system can compute the same hashes (audited).
    Export { name: String },
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
