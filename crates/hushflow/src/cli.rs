//! Arguments. Every command takes `--state-dir` (or `HUSHFLOW_STATE_DIR`).

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

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
        help_heading = "Global options",
        env = "HUSHFLOW_STATE_DIR",
        default_value = ".hushflow"
    )]
    pub state_dir: PathBuf,

    /// The key that seals the keyring, as a secret reference (env:NAME, file:PATH); by default
    /// env:HUSHFLOW_MASTER_KEY when that is set. Without one the keyring is a local,
    /// unprotected demo keyring; with one, a keyring that is not sealed is refused (see
    /// `keys seal`).
    #[arg(
        long,
        global = true,
        value_name = "REF",
        help_heading = "Global options"
    )]
    pub master_key: Option<String>,

    /// The key that tags the audit log's head (`audit verify --anchor`), as a secret reference
    /// (env:NAME, file:PATH) to base64 of 32 random bytes (`hushflow keys new-master-key` makes
    /// one); by default derived from the master key. Give it to every command, or the records
    /// they write are not vouched for until a command with it writes one.
    #[arg(
        long,
        global = true,
        value_name = "REF",
        help_heading = "Global options"
    )]
    pub anchor_key: Option<String>,

    /// The metadata store (runs, task states, logs): by default SQLite in the state directory;
    /// a secret reference (env:NAME, file:PATH) holding a postgres:// URL shares one store
    /// between schedulers and workers on several machines.
    #[arg(
        long,
        global = true,
        env = "HUSHFLOW_METADATA",
        value_name = "REF",
        help_heading = "Global options"
    )]
    pub metadata: Option<String>,

    /// The key that signs the pipeline definitions this command registers (scheduler, trigger,
    /// backfill), as a secret reference (env:NAME, file:PATH, keyring:NAME); by default the
    /// state directory's own (`definition.key`, made on first use). Workers run only
    /// definitions signed by a key they trust.
    #[arg(
        long,
        global = true,
        env = "HUSHFLOW_DEFINITION_KEY",
        value_name = "REF",
        help_heading = "Global options"
    )]
    pub definition_key: Option<String>,

    /// The public keys (`ed25519:…`, comma-separated) whose signed definitions the workers of
    /// this command execute; by default the signing key's (see --definition-key). Give workers
    /// on other machines the scheduler's (`hushflow db definition-key show`).
    #[arg(
        long,
        global = true,
        env = "HUSHFLOW_DEFINITION_PUBLIC_KEY",
        value_name = "KEYS",
        help_heading = "Global options"
    )]
    pub definition_public_key: Option<String>,

    /// More log output on stderr (-v info, -vv debug); secrets are masked either way.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: read the source, apply the policy, write the sink.
    Run {
        /// The pipeline file (one sync; a DAG of [[task]]s runs with `trigger --wait`).
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
        /// Print the summary as one JSON object (counts, outcome, run id) instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Erase a subject by crypto-shredding: delete its own keys (tokenize rules with
    /// `per_subject = true`), so that none of its tokens, wherever copied, can be reversed
    /// (audited by the subject's handle, never its id).
    Erase {
        /// The pipeline file whose per-subject tokenize rules name the keys to erase.
        #[arg(long)]
        pipeline: PathBuf,
        /// The subject's record key (the value of the pipeline's `key` field).
        #[arg(long)]
        subject: String,
    },
    /// Remove staged files past their retention (and, with --unfinished, staged runs that never
    /// committed: they can no longer resume).
    Gc {
        /// Also remove staged runs that never committed (they can then no longer resume).
        #[arg(long)]
        unfinished: bool,
    },
    /// Check a pipeline without touching data and print what leaves the source, and how; exit
    /// 2 on anything that would fail the run. Resolves the secrets it names (keys, connection
    /// URLs) unless --offline.
    Validate {
        /// The pipeline file (one sync, or a DAG of [[task]]s).
        pipeline: PathBuf,
        /// Check the file alone: resolve no secret and open no connection (for CI, where the
        /// production secrets are not).
        #[arg(long)]
        offline: bool,
    },
    /// Validate a pipeline, then open its source and connect to its sink (reading no record,
    /// writing nothing): what would stop a run, found before it starts.
    Check {
        /// The pipeline file (one sync, or a DAG of [[task]]s).
        pipeline: PathBuf,
    },
    /// Print a shell completion script (e.g. `hushflow completions bash >
    /// /etc/bash_completion.d/hushflow`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Print a JSON Schema for editors: `hushflow schema pipeline > pipeline.schema.json`
    /// (docs/pipeline.md says how to point an editor at it).
    Schema {
        /// What the schema describes.
        what: SchemaKind,
    },
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
    /// Create runs when they are due and hand out their tasks; by default also executes them
    /// with a local pool of --parallelism slots.
    Scheduler {
        /// Pipeline files (`*.toml`) to schedule; re-read when they change.
        #[arg(long, default_value = "pipelines")]
        pipelines: PathBuf,
        /// Tasks executed at once by this process (0: only schedule, leave tasks to workers).
        #[arg(long, default_value_t = 2)]
        parallelism: usize,
        #[command(flatten)]
        timing: Timing,
    },
    /// Execute tasks handed out by schedulers (for more machines: share --metadata).
    Worker {
        /// Tasks executed at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        #[command(flatten)]
        timing: Timing,
    },
    /// Create a manual run of a pipeline (a file, or the name of a registered one).
    Trigger {
        /// A pipeline file (registered now), or the name of a registered pipeline.
        pipeline: String,
        /// Values for `{{ conf.KEY }}` in the pipeline's text.
        #[arg(long, value_name = "KEY=VALUE")]
        conf: Vec<String>,
        /// Execute the run here and wait for it to end (exit 1 if it fails).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this long (such as `30m`), saying what the run waits for;
        /// exit 1. The run stays queued for a scheduler or worker.
        #[arg(long, value_name = "DURATION", requires = "wait", value_parser = duration)]
        timeout: Option<Duration>,
        /// Print the run created as one JSON object (docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// Create runs for every scheduled interval from --from to --to (dates or times in the
    /// pipeline's time zone); intervals that already have a run are left alone.
    Backfill {
        /// A pipeline file (registered now), or the name of a registered pipeline.
        pipeline: String,
        /// The first interval's start: a date (`2026-01-01`) or an RFC 3339 time.
        #[arg(long)]
        from: String,
        /// The last interval's end: a date or an RFC 3339 time.
        #[arg(long)]
        to: String,
        /// Execute the runs here and wait for them to end.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this long (such as `2h`), saying what the runs wait for;
        /// exit 1. The runs stay queued for a scheduler or worker.
        #[arg(long, value_name = "DURATION", requires = "wait", value_parser = duration)]
        timeout: Option<Duration>,
    },
    /// Stop creating and starting runs of a pipeline (audited).
    Pause {
        /// The name of a registered pipeline (or its file).
        pipeline: String,
    },
    /// Resume a paused pipeline (audited).
    Unpause {
        /// The name of a registered pipeline (or its file).
        pipeline: String,
    },
    /// Registered pipelines: paused or not, schedule, next run, the newest run's state.
    Pipelines {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Run history, the newest first: states, intervals, durations, task counts.
    Runs {
        /// Only this pipeline's runs (a registered name).
        pipeline: Option<String>,
        /// At most this many runs, the newest first.
        #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The tasks of a run (its number from `hushflow runs`, or its run id): states, tries,
    /// durations, record counts.
    Tasks {
        /// The run: its number from `hushflow runs`, or its run id.
        run: String,
        /// The pipeline the run id belongs to, when two pipelines share one.
        #[arg(long)]
        pipeline: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Run a finished run's tasks again: the failed ones by default, or those named with
    /// --task; each with every task downstream of it (audited).
    Clear {
        /// The run: its number from `hushflow runs`, or its run id.
        run: String,
        /// A task to run again (repeatable); by default every failed one.
        #[arg(long = "task", value_name = "TASK")]
        tasks: Vec<String>,
        /// The pipeline the run id belongs to, when two pipelines share one.
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// A task's log, every try (redacted like all output).
    Logs {
        /// The run: its number from `hushflow runs`, or its run id.
        run: String,
        /// The task's name.
        task: String,
        /// The pipeline the run id belongs to, when two pipelines share one.
        #[arg(long)]
        pipeline: Option<String>,
        /// Only this try.
        #[arg(long = "try")]
        attempt: Option<i64>,
    },
    /// The metadata database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Executes one task for a worker (reads the order on stdin); not for direct use.
    #[command(hide = true)]
    TaskExec,
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
        /// How many contacts.
        #[arg(long, default_value_t = 1000)]
        rows: u64,
        /// The same seed gives the same contacts.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The file format.
        #[arg(long, value_enum, default_value_t = SampleFormat::Csv)]
        format: SampleFormat,
        /// The file to write.
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
        /// The key's name, as pipelines reference it (`keyring:NAME`).
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
    Export {
        /// The key's name.
        name: String,
    },
    /// Add a new version of a key and make it current; old versions still detokenize (audited).
    Rotate {
        /// The key's name.
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
    /// Seal a keyring made without a master key under the master key, once (audited). Under a
    /// master key a plain keyring is otherwise refused, since it may have been swapped in; a
    /// state directory whose keyring was sealed before never takes a plain one again.
    Seal,
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
        /// A run id, or part of a quarantine file's name.
        run: Option<String>,
        /// One JSON object per file instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Decrypt a run's quarantined records to a file (JSON lines, created 0600) (audited).
    Export {
        /// A run id, or part of a quarantine file's name.
        run: String,
        /// The file to write (created 0600; an existing file is never replaced).
        #[arg(long)]
        out: PathBuf,
    },
    /// Feed a run's quarantined records through the pipeline again, once its file is fixed.
    /// Table sinks get the records; a file sink's output goes beside it
    /// (`NAME.replay-RUN.EXT`) unless --out says where, since a file sink replaces its file.
    Replay {
        /// A run id, or part of a quarantine file's name.
        run: String,
        /// The pipeline file (fixed) to run the records through. Required: a replay runs only
        /// a pipeline the operator names, never one recorded in the state directory.
        #[arg(long)]
        pipeline: PathBuf,
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
    Verify {
        /// Also check the head's tag with the anchor key (the master key, or --anchor-key):
        /// exit 1 if it is missing or invalid, or vouches for another number of records
        /// (records removed, or written without the key).
        #[arg(long)]
        anchor: bool,
    },
    /// Tag the head with the anchor key after checking the chain: once for a new log, one from
    /// before anchoring, or one tagged under another key. It vouches for what the log holds
    /// now, so check it first (audited).
    Anchor,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the metadata schema's missing migrations (as a role that may create tables).
    Migrate,
    /// Delete finished runs (with their tasks, tries and logs) that ended longer ago than
    /// --older-than (audited).
    Prune {
        /// Such as `90d` or `720h`.
        #[arg(long, value_parser = duration)]
        older_than: Duration,
        /// Only this pipeline's runs.
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// Print the SQL that gives PostgreSQL roles least privilege on the metadata store (workers
    /// cannot write definitions); run it as the schema's owner after each `db migrate`.
    Grants {
        /// The schema the tables are in.
        #[arg(long, default_value = "hushflow")]
        schema: String,
        /// The role of schedulers and of trigger, backfill, pause and clear.
        #[arg(long, default_value = "hushflow_scheduler")]
        scheduler_role: String,
        /// The role of workers.
        #[arg(long, default_value = "hushflow_worker")]
        worker_role: String,
        /// The role of dashboards (run history without pipeline text or logs).
        #[arg(long, default_value = "hushflow_reader")]
        reader_role: String,
    },
    /// The key that signs pipeline definitions (workers verify them with its public key).
    #[command(subcommand)]
    DefinitionKey(DefinitionKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum DefinitionKeyCommand {
    /// Make a signing key and print its public key, for workers' --definition-public-key: the
    /// state directory's (kept if it has one), or a new file given with --out (audited).
    Create {
        /// Write a new key to this file (created 0600) for --definition-key file:FILE, instead
        /// of the state directory's.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the public key of the signing key in use (--definition-key, or the state
    /// directory's).
    Show,
}

/// How often a scheduler or worker acts, and when it gives up on others.
#[derive(Debug, Clone, clap::Args)]
pub struct Timing {
    /// Stop once no run is queued or running (for scripts and tests).
    #[arg(long)]
    pub until_idle: bool,
    /// Time between scheduler ticks.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub tick: Duration,
    /// Time between a worker's heartbeats.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub heartbeat_every: Duration,
    /// A worker silent this long has stopped; its tasks are handed to other workers.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub heartbeat_timeout: Duration,
    /// Wait between claims when no task is ready.
    #[arg(long, default_value = "250ms", value_parser = duration)]
    pub poll: Duration,
}

/// Every duration on the command line takes the same forms as in pipeline files: `30s`, `5m`,
/// `1h 30m`, `90d` (days of 24 hours) or ISO 8601 `PT30S`.
fn duration(text: &str) -> Result<Duration, String> {
    hushflow_spec::schedule::parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command, positional argument and option says what it is for in `--help`.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        Cli::command().debug_assert();
        let mut missing = Vec::new();
        walk(&Cli::command(), "hushflow", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}

/// The files `hushflow schema` describes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    /// A pipeline file (`[pipeline]`, `[source]`, `[policy]`, `[sink]`, `[[task]]`).
    Pipeline,
}
