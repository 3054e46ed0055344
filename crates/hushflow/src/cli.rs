//! Arguments: one `Args` struct per command, and the selectors several commands share
//! ([`RunSelector`], [`PipelineArg`], [`PipelineFile`], [`QuarantineRun`], [`WaitOptions`],
//! [`JsonLines`], [`Timing`]) flattened into them. Every command takes the [`GlobalOptions`] (`--state-dir` or `HUSHFLOW_STATE_DIR`, the
//! keys and the metadata store), shown apart under "Global options" in `--help`. Values are
//! parsed here: durations by the spec crate's one duration parser, `--conf KEY=VALUE` by
//! [`ConfPair`].

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use hushflow_spec::duration::{self, Unit};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "hushflow",
    version,
    about = "Privacy-first contact and lead sync"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,

    #[command(subcommand)]
    pub command: Command,
}

/// What every command takes: where the state lives, its keys, the metadata store and how much
/// to log.
#[derive(Debug, Args)]
pub struct GlobalOptions {
    #[command(flatten)]
    pub state: StateOptions,

    #[command(flatten)]
    pub metadata: MetadataOptions,

    /// More log output on stderr (-v info, -vv debug); secrets are masked either way.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    pub verbose: u8,
}

/// The state directory and the keys that open and vouch for it.
#[derive(Debug, Args)]
pub struct StateOptions {
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
}

/// The metadata store and the keys that sign and check pipeline definitions in it.
#[derive(Debug, Args)]
pub struct MetadataOptions {
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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: read the source, apply the policy, write the sink.
    Run(RunArgs),
    /// Erase a subject by crypto-shredding: delete its own keys (tokenize rules with
    /// `per_subject = true`), so that none of its tokens, wherever copied, can be reversed
    /// (audited by the subject's handle, never its id).
    Erase(EraseArgs),
    /// Data subject requests across every pipeline of a directory: erase, opt out, access;
    /// durable and audited by request id (docs/dsr.md).
    #[command(subcommand)]
    Dsr(DsrCommand),
    /// Rows past their sink's `retain` period.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Remove staged files past their retention (and, with --unfinished, staged runs that never
    /// committed: they can no longer resume).
    Gc(GcArgs),
    /// Check a pipeline without touching data and print what leaves the source, and how; exit
    /// 2 on anything that would fail the run. Resolves the secrets it names (keys, connection
    /// URLs) unless --offline.
    Validate(ValidateArgs),
    /// Validate a pipeline, then open its source and connect to its sink (reading no record,
    /// writing nothing): what would stop a run, found before it starts.
    Check(PipelineFile),
    /// Print a shell completion script (e.g. `hushflow completions bash >
    /// /etc/bash_completion.d/hushflow`).
    Completions(CompletionsArgs),
    /// Print a JSON Schema for editors: `hushflow schema pipeline > pipeline.schema.json`
    /// (docs/pipeline.md says how to point an editor at it).
    Schema(SchemaArgs),
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
    Scheduler(SchedulerArgs),
    /// Execute tasks handed out by schedulers (for more machines: share --metadata).
    Worker(WorkerArgs),
    /// Create a manual run of a pipeline (a file, or the name of a registered one).
    Trigger(TriggerArgs),
    /// Create runs for every scheduled interval from --from to --to (dates or times in the
    /// pipeline's time zone); intervals that already have a run are left alone.
    Backfill(BackfillArgs),
    /// Stop creating and starting runs of a pipeline (audited).
    Pause(PipelineArg),
    /// Resume a paused pipeline (audited).
    Unpause(PipelineArg),
    /// Registered pipelines: paused or not, schedule, next run, the newest run's state.
    Pipelines(JsonLines),
    /// Run history, the newest first: states, intervals, durations, task counts.
    Runs(RunsArgs),
    /// The tasks of a run (its number from `hushflow runs`, or its run id): states, tries,
    /// durations, record counts.
    Tasks(TasksArgs),
    /// Run a finished run's tasks again: the failed ones by default, or those named with
    /// --task; each with every task downstream of it (audited).
    Clear(ClearArgs),
    /// A task's log, every try (redacted like all output).
    Logs(LogsArgs),
    /// The metadata database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Serve the dashboard and the JSON API (/api/v1) behind sign-in and roles (docs/serve.md).
    #[cfg(feature = "server")]
    Serve(ServeArgs),
    /// Executes one task for a worker (reads the order on stdin); not for direct use.
    #[command(hide = true)]
    TaskExec,
    /// Reverse tokens made by `tokenize`, for a holder of the key (every use is audited).
    Detokenize(DetokenizeArgs),
    /// Users of `hushflow serve`: roles, grants, passwords (Argon2id; never on the command
    /// line). Each change is audited (docs/access.md).
    #[command(subcommand)]
    Users(UsersCommand),
    /// API tokens of `hushflow serve`: shown once at creation, stored as a digest, with expiry
    /// and revocation (audited; docs/access.md).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Apache Airflow: export a pipeline as a DAG file for the hushflow-airflow provider
    /// (docs/airflow.md).
    #[command(subcommand)]
    Airflow(AirflowCommand),
}

/// `hushflow users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user with a role; the password is read from the terminal (twice, not echoed) or,
    /// with --password-stdin, from the first line of stdin.
    Add(UserAddArgs),
    /// Users: roles, disabled or locked out, grants.
    List(JsonLines),
    /// Remove a user, its grants and its sessions.
    Remove(UserName),
    /// Give a user another role (effective at its next request).
    SetRole(UserRoleArgs),
    /// Set a new password (read like `users add` does), lift a lock-out and end the user's
    /// sessions.
    ResetPassword(UserPasswordArgs),
    /// Grant a user an extra permission (everywhere, or on one pipeline with --pipeline), or
    /// with --pipeline alone limit its role to that pipeline; --revoke takes a grant back.
    Grant(UserGrantArgs),
    /// Stop a user from signing in (its sessions end) without removing it.
    Disable(UserName),
    /// Let a disabled user sign in again.
    Enable(UserName),
}

/// A user named on the command line.
#[derive(Debug, Args)]
pub struct UserName {
    /// The user name.
    pub name: String,
}

/// Where a password comes from: never the command line, where other users and the shell's
/// history see it.
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of stdin instead of prompting (for scripts).
    #[arg(long)]
    pub password_stdin: bool,
}

/// `hushflow users add`.
#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The user name: letters, digits, `.`, `_`, `-` (not an e-mail address).
    pub name: String,
    /// viewer, user, op or admin (docs/access.md has what each may do).
    #[arg(long, value_parser = role)]
    pub role: hushflow_app::Role,
    #[command(flatten)]
    pub password: PasswordSource,
}

/// `hushflow users set-role`.
#[derive(Debug, Args)]
pub struct UserRoleArgs {
    /// The user name.
    pub name: String,
    /// viewer, user, op or admin.
    #[arg(long, value_parser = role)]
    pub role: hushflow_app::Role,
}

/// `hushflow users reset-password`.
#[derive(Debug, Args)]
pub struct UserPasswordArgs {
    /// The user name.
    pub name: String,
    #[command(flatten)]
    pub password: PasswordSource,
}

/// `hushflow users grant`.
#[derive(Debug, Args)]
pub struct UserGrantArgs {
    /// The user name.
    pub name: String,
    /// The permission to grant (read-runs, trigger, detokenize, export-keys, …; the list is in
    /// docs/access.md).
    #[arg(long, value_parser = permission, required_unless_present = "pipeline")]
    pub permission: Option<hushflow_app::Permission>,
    /// The pipeline the permission applies to; alone, the pipeline the user's role is limited
    /// to (with its other limits).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Take the grant back instead.
    #[arg(long)]
    pub revoke: bool,
}

/// `hushflow tokens …`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token and print it, once: it is stored only as a digest.
    Create(TokenCreateArgs),
    /// Tokens: names, roles, states, expiry and last use (never the tokens).
    List(JsonLines),
    /// Revoke a token, by id or name (it is refused from then on).
    Revoke(TokenRevokeArgs),
}

/// `hushflow tokens create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The token's name: the audit log records its actions under it.
    #[arg(long)]
    pub name: String,
    /// viewer, user, op or admin.
    #[arg(long, value_parser = role)]
    pub role: hushflow_app::Role,
    /// How long it is valid: `30d`, `12h` (a bare number counts days), or `never`.
    #[arg(long, value_name = "DURATION", value_parser = expiry)]
    pub expires: Expiry,
    /// Print the token and its description as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `hushflow tokens revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (from `tokens list`) or name.
    pub token: String,
}

/// A token's validity: a duration or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry(pub Option<Duration>);

fn expiry(text: &str) -> Result<Expiry, String> {
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(Expiry(None));
    }
    let d = duration::parse(text, Unit::Days).map_err(|e| format!("{e}, or `never`"))?;
    if d.is_zero() {
        return Err("give a duration longer than zero (30d, 12h) or `never`".into());
    }
    Ok(Expiry(Some(d)))
}

fn role(text: &str) -> Result<hushflow_app::Role, String> {
    text.parse()
        .map_err(|e: hushflow_app::access::UnknownRole| e.to_string())
}

fn permission(text: &str) -> Result<hushflow_app::Permission, String> {
    text.parse()
        .map_err(|e: hushflow_app::access::UnknownPermission| e.to_string())
}

/// `hushflow airflow`.
#[derive(Debug, Subcommand)]
pub enum AirflowCommand {
    /// Write PIPELINE as an Airflow 3 DAG file (`OUT/NAME.py`): one HushflowRunOperator per
    /// task, the same dependencies, schedule and time zone, retries, retry delays, timeouts,
    /// pools and trigger rules.
    Export(AirflowExportArgs),
}

/// `hushflow airflow export`.
#[derive(Debug, Args)]
pub struct AirflowExportArgs {
    /// The pipeline file (one sync, or a DAG of [[task]]s).
    pub pipeline: PathBuf,
    /// The Airflow DAG folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The pipeline file's path on the Airflow workers; by default this file's absolute path.
    #[arg(long, value_name = "PATH")]
    pub pipeline_path: Option<String>,
    /// The Airflow connection (type `hushflow`) the tasks take the binary, state directory and
    /// master key from.
    #[arg(long, value_name = "ID", default_value = "hushflow_default")]
    pub conn_id: String,
    /// Spread every sync task over N mapped task instances (`.expand`), each running
    /// `--partition I/N`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub partitions: Option<u16>,
}

/// `hushflow run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (one sync; a DAG of [[task]]s runs with `trigger --wait`).
    pub pipeline: PathBuf,
    /// Threads that apply the policy (overrides the pipeline's `workers`; default one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Option<u16>,
    /// A staged pipeline: discard what an earlier, unfinished attempt staged and read the
    /// source again instead of resuming.
    #[arg(long)]
    pub fresh: bool,
    /// An incremental source (`cursor`): read everything again instead of continuing after
    /// the last committed position.
    #[arg(long)]
    pub full_refresh: bool,
    /// Move only the records whose key hashes to partition I of N (I from 0 to N-1), for
    /// spreading one sync over N workers; each partition keeps its own incremental position
    /// (docs/pipeline.md, "Partitioned runs").
    #[arg(long, value_name = "I/N")]
    pub partition: Option<hushflow_engine::Partition>,
    /// Print the summary as one JSON object (counts, outcome, run id) instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Write the run's metrics in the Prometheus text format to this file at the end (replaced
    /// at once), for node_exporter's textfile collector.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    #[command(flatten)]
    pub external: ExternalRun,
}

/// How an outside orchestrator (Airflow) runs one task of a pipeline file with its own run's
/// values: the task, and the values its `{{ … }}` templates take (docs/airflow.md).
#[derive(Debug, Args)]
pub struct ExternalRun {
    /// Run only this task of a DAG file (a sync, sql, gc, retention or empty task), once, here:
    /// no scheduler, no metadata store; its dependencies are the caller's business.
    #[arg(long, value_name = "NAME")]
    pub task: Option<String>,
    /// The data interval's start (`{{ data_interval_start }}`), an RFC 3339 time such as
    /// Airflow's `{{ data_interval_start.isoformat() }}`; fills the file's templates.
    #[arg(long, value_name = "TIME", requires = "data_interval_end")]
    pub data_interval_start: Option<String>,
    /// The data interval's end (`{{ data_interval_end }}`), an RFC 3339 time.
    #[arg(long, value_name = "TIME", requires = "data_interval_start")]
    pub data_interval_end: Option<String>,
    /// The run's logical date (`{{ logical_date }}`, `{{ ds }}`), an RFC 3339 time; by default
    /// the interval's start.
    #[arg(long, value_name = "TIME", requires = "data_interval_start")]
    pub logical_date: Option<String>,
    /// The run's id (`{{ run_id }}`), such as Airflow's `{{ run_id }}`; by default
    /// `external__` and the logical date.
    #[arg(long, value_name = "ID", requires = "data_interval_start")]
    pub run_id: Option<String>,
    /// Values for `{{ conf.KEY }}` in the pipeline's text (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = ConfPair, requires = "data_interval_start")]
    pub conf: Vec<(String, String)>,
}

/// `hushflow serve`.
#[cfg(feature = "server")]
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; anything but loopback needs TLS (or --insecure-http).
    #[arg(long, env = "HUSHFLOW_SERVE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// The certificate chain (PEM, leaf first): serve HTTPS only, with HSTS.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (behind a proxy that terminates TLS);
    /// warned about on every start.
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_http: bool,
    #[command(flatten)]
    pub metrics: MetricsOptions,
}

/// `--metrics-addr`, for the long-running processes.
#[derive(Debug, Args)]
pub struct MetricsOptions {
    /// Serve Prometheus metrics on GET /metrics at this address (such as 127.0.0.1:9464;
    /// port 0 picks a free one, printed at start).
    #[arg(long, env = "HUSHFLOW_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// `hushflow erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The pipeline file whose per-subject tokenize rules name the keys to erase.
    #[arg(long)]
    pub pipeline: PathBuf,
    /// The subject's record key (the value of the pipeline's `key` field).
    #[arg(long)]
    pub subject: String,
}

/// `hushflow dsr`.
#[derive(Debug, Subcommand)]
pub enum DsrCommand {
    /// Delete the person's rows from every table sink, list their rows in file sinks (file and
    /// line), shred their per-subject keys and put them on the managed suppression list.
    /// Resumes an interrupted request for the same person.
    Erase(DsrArgs),
    /// Put the person on the managed suppression list only (CCPA do not sell or share, GDPR
    /// art. 21): no later sync moves them.
    OptOut(DsrArgs),
    /// Export what every sink holds for the person, as one JSON document encrypted to the
    /// requester's age recipient.
    Access(DsrAccessArgs),
    /// Every request: state, systems done, deadline.
    List(JsonLines),
    /// One request's progress per system and its statutory deadline.
    Show(DsrShowArgs),
}

/// Who a request is about, and where the pipelines are.
#[derive(Debug, Args)]
pub struct DsrArgs {
    /// The person's email address.
    #[arg(long, group = "person", value_name = "EMAIL")]
    pub email: Option<String>,
    /// The person's phone number (E.164, or as the pipelines' phone rules read it).
    #[arg(long, group = "person", value_name = "PHONE")]
    pub phone: Option<String>,
    /// The person's record key (the pipelines' `key` field, as the source has it).
    #[arg(long, group = "person", value_name = "ID")]
    pub subject: Option<String>,
    /// The directory of pipeline (and DAG) files to act on: every sync in it.
    #[arg(long, env = "HUSHFLOW_PIPELINES", value_name = "DIR")]
    pub pipelines: PathBuf,
    /// Whose statutory deadline applies: gdpr (30 days) or ccpa (45 days).
    #[arg(long, value_enum, default_value = "gdpr")]
    pub law: DsrLaw,
    /// Print the request as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `hushflow dsr access`.
#[derive(Debug, Args)]
pub struct DsrAccessArgs {
    #[command(flatten)]
    pub request: DsrArgs,
    /// The requester's age recipient (`age1…`): only their identity opens the export.
    #[arg(long, value_name = "AGE_RECIPIENT")]
    pub recipient: String,
    /// Where to write the encrypted export (created, private to its owner).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

/// `hushflow dsr show`.
#[derive(Debug, Args)]
pub struct DsrShowArgs {
    /// The request id (`dsr-…`).
    pub id: String,
    /// Print it as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The law whose deadline a request runs under.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DsrLaw {
    /// GDPR: 30 days.
    Gdpr,
    /// CCPA: 45 days.
    Ccpa,
}

/// `hushflow retention`.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Delete, in every sink with `retain` and `retain_by`, the rows older than their
    /// retention (audited with counts).
    Enforce(RetentionArgs),
}

/// `hushflow retention enforce`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// The directory of pipeline (and DAG) files.
    #[arg(long, env = "HUSHFLOW_PIPELINES", value_name = "DIR")]
    pub pipelines: PathBuf,
    /// One JSON object per sink.
    #[arg(long)]
    pub json: bool,
}

/// `hushflow gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Also remove staged runs that never committed (they can then no longer resume).
    #[arg(long)]
    pub unfinished: bool,
}

/// A pipeline file to check.
#[derive(Debug, Args)]
pub struct PipelineFile {
    /// The pipeline file (one sync, or a DAG of [[task]]s).
    pub pipeline: PathBuf,
}

/// `hushflow validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub file: PipelineFile,
    /// Check the file alone: resolve no secret and open no connection (for CI, where the
    /// production secrets are not).
    #[arg(long)]
    pub offline: bool,
}

/// `hushflow completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    pub shell: clap_complete::Shell,
}

/// `hushflow schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// What the schema describes.
    pub what: SchemaKind,
}

/// `hushflow scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Pipeline files (`*.toml`) to schedule; re-read when they change.
    #[arg(long, default_value = "pipelines")]
    pub pipelines: PathBuf,
    /// Tasks executed at once by this process (0: only schedule, leave tasks to workers).
    #[arg(long, default_value_t = 2)]
    pub parallelism: usize,
    #[command(flatten)]
    pub timing: Timing,
    #[command(flatten)]
    pub metrics: MetricsOptions,
}

/// `hushflow worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Tasks executed at once.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    #[command(flatten)]
    pub timing: Timing,
    #[command(flatten)]
    pub metrics: MetricsOptions,
}

/// A pipeline named on the command line: a file (registered on the spot where a command
/// registers), or the name of a registered pipeline.
#[derive(Debug, Args)]
pub struct PipelineArg {
    /// A pipeline file, or the name of a registered pipeline.
    pub pipeline: String,
}

/// `--wait` and its `--timeout`, for the commands that create runs.
#[derive(Debug, Args)]
pub struct WaitOptions {
    /// Execute the new run(s) here and wait for them to end (exit 1 if one fails).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (such as `30m`; a bare number counts seconds),
    /// saying what the runs wait for; exit 1. The runs stay queued for a scheduler or worker.
    #[arg(long, value_name = "DURATION", requires = "wait", value_parser = seconds)]
    pub timeout: Option<Duration>,
}

impl WaitOptions {
    /// `None` without `--wait`; else the `--timeout`, if one was given.
    pub fn wait(&self) -> Option<Option<Duration>> {
        self.wait.then_some(self.timeout)
    }
}

/// `hushflow trigger`.
#[derive(Debug, Args)]
pub struct TriggerArgs {
    #[command(flatten)]
    pub pipeline: PipelineArg,
    /// Values for `{{ conf.KEY }}` in the pipeline's text (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = ConfPair)]
    pub conf: Vec<(String, String)>,
    #[command(flatten)]
    pub wait: WaitOptions,
    /// Print the run created as one JSON object (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `hushflow backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub pipeline: PipelineArg,
    /// The first interval's start: a date (`2026-01-01`) or an RFC 3339 time.
    #[arg(long)]
    pub from: String,
    /// The last interval's end: a date or an RFC 3339 time.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub wait: WaitOptions,
}

/// `--json`, for the listings that print one object per line.
#[derive(Debug, Args)]
pub struct JsonLines {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// A run named on the command line, by its number or its run id.
#[derive(Debug, Args)]
pub struct RunSelector {
    /// The run: its number from `hushflow runs`, or its run id.
    pub run: String,
    /// The pipeline the run id belongs to, when two pipelines share one.
    #[arg(long)]
    pub pipeline: Option<String>,
}

/// `hushflow runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this pipeline's runs (a registered name).
    pub pipeline: Option<String>,
    /// At most this many runs, the newest first.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub limit: i64,
    #[command(flatten)]
    pub format: JsonLines,
}

/// `hushflow tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(flatten)]
    pub run: RunSelector,
    #[command(flatten)]
    pub format: JsonLines,
}

/// `hushflow clear`.
#[derive(Debug, Args)]
pub struct ClearArgs {
    #[command(flatten)]
    pub run: RunSelector,
    /// A task to run again (repeatable); by default every failed one.
    #[arg(long = "task", value_name = "TASK")]
    pub tasks: Vec<String>,
}

/// `hushflow logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub run: RunSelector,
    /// The task's name.
    pub task: String,
    /// Only this try.
    #[arg(long = "try")]
    pub attempt: Option<i64>,
}

/// `hushflow detokenize`.
#[derive(Debug, Args)]
pub struct DetokenizeArgs {
    /// The key the tokens were made with: keyring:NAME, env:NAME or file:PATH.
    #[arg(long)]
    pub key: String,
    /// Tokens; one per line on stdin when none are given.
    pub tokens: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SampleCommand {
    /// Realistic, dirty, deterministic synthetic contacts.
    Contacts(ContactsArgs),
}

/// `hushflow sample contacts`.
#[derive(Debug, Args)]
pub struct ContactsArgs {
    /// How many contacts.
    #[arg(long, default_value_t = 1000)]
    pub rows: u64,
    /// The same seed gives the same contacts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The file format.
    #[arg(long, value_enum, default_value_t = SampleFormat::Csv)]
    pub format: SampleFormat,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SampleFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a random 256-bit key.
    Create(CreateKeyArgs),
    /// Store a credential given to hushflow (an OAuth refresh token, a password) from stdin, so
    /// that a pipeline names it `keyring:NAME`: sealed with the keys, and replaced in place when
    /// its issuer rotates it during a run (audited). Replaces a credential of that name; never a
    /// key.
    Import(KeyName),
    /// List keys: names, versions, ids, purposes, creation dates.
    List,
    /// Print a key's current material (base64) so another system can compute the same hashes
    /// (audited).
    Export(KeyName),
    /// Add a new version of a key and make it current; old versions still detokenize (audited).
    Rotate(RotateKeyArgs),
    /// Print the age identity (AGE-SECRET-KEY-1…) that opens this state directory's quarantined
    /// and staged files with the `age` CLI (audited).
    ExportIdentity(OutFile),
    /// Print a new random master key (base64) for HUSHFLOW_MASTER_KEY.
    NewMasterKey,
    /// Seal a keyring made without a master key under the master key, once (audited). Under a
    /// master key a plain keyring is otherwise refused, since it may have been swapped in; a
    /// state directory whose keyring was sealed before never takes a plain one again.
    Seal,
    /// With a master key held by a custodian (HUSHFLOW_MASTER_KEY=vault-transit:KEYNAME or
    /// aws-kms:KEY_ID): re-encrypt the wrapped data key under the wrapping key's newest version,
    /// after that key was rotated; the keyring itself is not touched (audited).
    RewrapMasterKey,
}

/// A keyring key named on the command line.
#[derive(Debug, Args)]
pub struct KeyName {
    /// The key's name.
    pub name: String,
}

/// `hushflow keys create`.
#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// The key's name, as pipelines reference it (`keyring:NAME`).
    pub name: String,
    /// What the key is for; a hashing key (or one of unknown purpose) rotates only with
    /// --i-understand-hashes-change.
    #[arg(long, value_enum)]
    pub purpose: Option<KeyPurpose>,
    /// Succeed without change when the key exists already.
    #[arg(long)]
    pub if_missing: bool,
}

/// `hushflow keys rotate`.
#[derive(Debug, Args)]
pub struct RotateKeyArgs {
    #[command(flatten)]
    pub key: KeyName,
    /// Rotate a hashing key although every hash made with it will change.
    #[arg(long)]
    pub i_understand_hashes_change: bool,
}

/// `--out FILE` for the commands that print a secret unless told where to write it.
#[derive(Debug, Args)]
pub struct OutFile {
    /// Write it to this file (created 0600) instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
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
    List(QuarantineListArgs),
    /// Decrypt a run's quarantined records to a file (JSON lines, created 0600) (audited).
    Export(QuarantineExportArgs),
    /// Feed a run's quarantined records through the pipeline again, once its file is fixed.
    /// Table sinks get the records; a file sink's output goes beside it
    /// (`NAME.replay-RUN.EXT`) unless --out says where, since a file sink replaces its file.
    Replay(QuarantineReplayArgs),
}

/// `hushflow quarantine list`.
#[derive(Debug, Args)]
pub struct QuarantineListArgs {
    /// A run id, or part of a quarantine file's name.
    pub run: Option<String>,
    /// One JSON object per file instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The quarantine of one run, named on the command line.
#[derive(Debug, Args)]
pub struct QuarantineRun {
    /// A run id, or part of a quarantine file's name.
    pub run: String,
}

/// `hushflow quarantine export`.
#[derive(Debug, Args)]
pub struct QuarantineExportArgs {
    #[command(flatten)]
    pub run: QuarantineRun,
    /// The file to write (created 0600; an existing file is never replaced).
    #[arg(long)]
    pub out: PathBuf,
}

/// `hushflow quarantine replay`.
#[derive(Debug, Args)]
pub struct QuarantineReplayArgs {
    #[command(flatten)]
    pub run: QuarantineRun,
    /// The pipeline file (fixed) to run the records through. Required: a replay runs only
    /// a pipeline the operator names, never one recorded in the state directory.
    #[arg(long)]
    pub pipeline: PathBuf,
    /// Where a file sink writes the replayed records.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the audit records.
    List(AuditListArgs),
    /// Recompute the hash chain; exit 1 naming the first record changed, removed or inserted.
    Verify(AuditVerifyArgs),
    /// Tag the head with the anchor key after checking the chain: once for a new log, one from
    /// before anchoring, or one tagged under another key. It vouches for what the log holds
    /// now, so check it first (audited).
    Anchor,
    /// Ship new audit records, in order, to an append-only JSONL file or to syslog, resuming
    /// after the last record shipped (a crash neither skips nor repeats one in a JSONL copy).
    Ship(AuditShipArgs),
    /// Check a JSONL copy made by `audit ship` on its own: its hash chain, and each shipped
    /// head checkpoint's tag under the anchor key (the master key, or --anchor-key); exit 1
    /// naming the first problem.
    VerifyCopy(AuditVerifyCopyArgs),
}

/// `hushflow audit verify-copy`.
#[derive(Debug, Args)]
pub struct AuditVerifyCopyArgs {
    /// The JSONL copy (the PATH of `audit ship --to jsonl:PATH`).
    pub copy: PathBuf,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `hushflow audit ship`.
#[derive(Debug, Args)]
pub struct AuditShipArgs {
    /// jsonl:PATH, syslog:tcp:HOST:PORT, syslog:tls:HOST:PORT or syslog:unix:PATH.
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// Keep shipping new records as they are written, until SIGINT or SIGTERM.
    #[arg(long)]
    pub follow: bool,
    /// Time between looks for new records with --follow.
    #[arg(long, default_value = "1s", value_parser = seconds)]
    pub interval: Duration,
    /// The position file (default: <state dir>/audit-ship/<target>.pos).
    #[arg(long, value_name = "PATH")]
    pub position: Option<PathBuf>,
    /// With a syslog:tls: target: the PEM file of the CA that signed the receiver's
    /// certificate (default: the system's roots).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// `hushflow audit list`.
#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `hushflow audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Also check the head's tag with the anchor key (the master key, or --anchor-key):
    /// exit 1 if it is missing or invalid, or vouches for another number of records
    /// (records removed, or written without the key).
    #[arg(long)]
    pub anchor: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the metadata schema's missing migrations (as a role that may create tables).
    Migrate,
    /// Delete finished runs (with their tasks, tries and logs) that ended longer ago than
    /// --older-than (audited).
    Prune(PruneArgs),
    /// Print the SQL that gives PostgreSQL roles least privilege on the metadata store (workers
    /// cannot write definitions); run it as the schema's owner after each `db migrate`.
    Grants(GrantsArgs),
    /// The key that signs pipeline definitions (workers verify them with its public key).
    #[command(subcommand)]
    DefinitionKey(DefinitionKeyCommand),
}

/// `hushflow db prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Such as `90d` or `720h`; a bare number counts days.
    #[arg(long, value_parser = days)]
    pub older_than: Duration,
    /// Only this pipeline's runs.
    #[arg(long)]
    pub pipeline: Option<String>,
}

/// `hushflow db grants`.
#[derive(Debug, Args)]
pub struct GrantsArgs {
    /// The schema the tables are in.
    #[arg(long, default_value = "hushflow")]
    pub schema: String,
    /// The role of schedulers and of trigger, backfill, pause and clear.
    #[arg(long, default_value = "hushflow_scheduler")]
    pub scheduler_role: String,
    /// The role of workers.
    #[arg(long, default_value = "hushflow_worker")]
    pub worker_role: String,
    /// The role of dashboards (run history without pipeline text or logs).
    #[arg(long, default_value = "hushflow_reader")]
    pub reader_role: String,
    /// The role of `hushflow serve` (the scheduler's rights, and users, tokens and sessions).
    #[arg(long, default_value = "hushflow_server")]
    pub server_role: String,
}

#[derive(Debug, Subcommand)]
pub enum DefinitionKeyCommand {
    /// Make a signing key and print its public key, for workers' --definition-public-key: the
    /// state directory's (kept if it has one), or a new file given with --out (audited).
    Create(DefinitionKeyCreateArgs),
    /// Print the public key of the signing key in use (--definition-key, or the state
    /// directory's).
    Show,
}

/// `hushflow db definition-key create`.
#[derive(Debug, Args)]
pub struct DefinitionKeyCreateArgs {
    /// Write a new key to this file (created 0600) for --definition-key file:FILE, instead
    /// of the state directory's.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// How often a scheduler or worker acts, and when it gives up on others.
#[derive(Debug, Clone, Args)]
pub struct Timing {
    /// Stop once no run is queued or running (for scripts and tests).
    #[arg(long)]
    pub until_idle: bool,
    /// Time between scheduler ticks (a bare number counts seconds).
    #[arg(long, default_value = "1s", value_parser = seconds)]
    pub tick: Duration,
    /// Time between a worker's heartbeats.
    #[arg(long, default_value = "5s", value_parser = seconds)]
    pub heartbeat_every: Duration,
    /// A worker silent this long has stopped; its tasks are handed to other workers.
    #[arg(long, default_value = "30s", value_parser = seconds)]
    pub heartbeat_timeout: Duration,
    /// Wait between claims when no task is ready.
    #[arg(long, default_value = "250ms", value_parser = seconds)]
    pub poll: Duration,
}

/// A duration whose bare number counts seconds. Every duration on the command line takes the
/// same forms as in pipeline files (`hushflow_spec::duration`): `45s`, `30m`, `12h`, `7d`.
fn seconds(text: &str) -> Result<Duration, String> {
    duration::parse(text, Unit::Seconds).map_err(|e| e.to_string())
}

/// A duration whose bare number counts days (`--older-than 90`).
fn days(text: &str) -> Result<Duration, String> {
    duration::parse(text, Unit::Days).map_err(|e| e.to_string())
}

/// Parses `--conf KEY=VALUE` and checks it as the app layer's `trigger` does. Its errors never
/// quote the argument (clap's own value errors do): it may be a secret given by mistake.
#[derive(Debug, Clone, Copy)]
pub struct ConfPair;

impl TypedValueParser for ConfPair {
    type Value = (String, String);

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<(String, String), clap::Error> {
        let refuse = |message: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{message}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("--conf: KEY=VALUE must be UTF-8"))?;
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| refuse("--conf wants KEY=VALUE; one of them has no `=`"))?;
        hushflow_app::actions::orchestration::check_conf(key, value)
            .map_err(|e| refuse(&e.message))?;
        Ok((key.to_string(), value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("hushflow").chain(args.iter().copied()))
    }

    /// `--conf` is parsed into pairs and checked as the app layer checks it; a refusal never
    /// quotes the argument (it may be a secret given by mistake).
    #[test]
    fn conf_pairs_are_parsed_and_refusals_do_not_quote_them() {
        let cli = parse(&["trigger", "p", "--conf", "label=first", "--conf", "a=b.c"]).unwrap();
        let super::Command::Trigger(t) = cli.command else {
            panic!("not a trigger")
        };
        assert_eq!(
            t.conf,
            [
                ("label".to_string(), "first".to_string()),
                ("a".to_string(), "b.c".to_string())
            ]
        );
        let canary = "sk-live-cli-canary";
        for pair in [canary.to_string(), format!("api_token={canary}")] {
            let e = parse(&["trigger", "p", "--conf", &pair]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(!e.to_string().contains(canary), "{e}");
        }
    }

    /// Durations take a bare number of the option's unit or a number with a unit.
    #[test]
    fn duration_options_take_bare_numbers_and_units() {
        use std::time::Duration;
        let prune = |older: &str| {
            parse(&["db", "prune", "--older-than", older]).map(|cli| match cli.command {
                super::Command::Db(super::DbCommand::Prune(p)) => p.older_than,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(prune("90").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(prune("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(prune("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(prune("0s").unwrap(), Duration::ZERO);
        let e = prune("soon").unwrap_err();
        assert!(e.to_string().contains("a number of days"), "{e}");
        let cli = parse(&["trigger", "p", "--wait", "--timeout", "30"]).unwrap();
        let super::Command::Trigger(t) = cli.command else {
            panic!("not a trigger")
        };
        assert_eq!(t.wait.wait(), Some(Some(Duration::from_secs(30))));
        let cli = parse(&["worker", "--tick", "45s", "--poll", "250ms"]).unwrap();
        let super::Command::Worker(w) = cli.command else {
            panic!("not a worker")
        };
        assert_eq!(w.timing.tick, Duration::from_secs(45));
        assert_eq!(w.timing.poll, Duration::from_millis(250));
    }

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
