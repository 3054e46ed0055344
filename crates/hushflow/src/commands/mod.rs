//! One module per group of sub-commands. Exit codes: 0 success, 1 failure, 2 invalid input (a
//! pipeline that does not validate, bad arguments), 3 partial success (records quarantined).

mod audit;
mod child;
mod executor;
mod gc;
mod keys;
mod orchestrate;
mod quarantine;
mod run;
mod sample;

use crate::cli::{Cli, Command};
use crate::output::Output;
use hushflow_crypto::{Keyring, MasterKey};
use hushflow_secrets::{SecretRef, SecretResolver};
use hushflow_state::audit::{AuditLog, NewRecord};
use hushflow_state::{StateDir, os_user};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    Invalid = 2,
    Partial = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

pub struct Failure {
    pub code: Exit,
    pub message: String,
}

fn fail(code: Exit) -> impl Fn(&dyn Display) -> Failure {
    move |e| Failure {
        code,
        message: e.to_string(),
    }
}

fn failure(e: impl Display) -> Failure {
    fail(Exit::Failure)(&e)
}

fn invalid(e: impl Display) -> Failure {
    fail(Exit::Invalid)(&e)
}

/// The environment variable a master key is taken from when `--master-key` is not given.
const MASTER_KEY_ENV: &str = "HUSHFLOW_MASTER_KEY";

/// What the commands that use the state directory share: where it is, the output, and how to
/// open its keyring.
pub struct Session<'a> {
    out: &'a Output,
    state: StateDir,
    master_key: Option<SecretRef>,
    /// `--master-key` as given, for the task processes a worker starts.
    master_key_arg: Option<String>,
}

impl Session<'_> {
    /// Opens the keyring, sealed under the master key if there is one. Without one, says once
    /// that the keyring is an unprotected local demo keyring.
    fn keyring(&self) -> Result<Keyring, Failure> {
        let keyring = open_keyring(
            self.state.root(),
            self.master_key.as_ref(),
            &self.out.redactor,
        )?;
        if !keyring.is_sealed() {
            self.out.note(format!(
                "note: the keyring in {} is not sealed: a local, unprotected demo keyring. Set \
                 {MASTER_KEY_ENV} (make one with `hushflow keys new-master-key`) to seal it",
                self.state.root().display()
            ));
        }
        Ok(keyring)
    }

    /// The directories no pipeline path may lead into: the state directory. Passed to every
    /// load of a pipeline file, which checks it before reading anything the file names.
    fn protected(&self) -> hushflow_spec::Protected {
        hushflow_spec::Protected::state_dir(self.state.root())
    }

    /// Records a control action on a pipeline (trigger, backfill, pause) in the audit log.
    fn audit_pipeline(&self, action: &str, pipeline: &str, detail: String) -> Result<(), Failure> {
        self.audit_task(action, pipeline, detail, BTreeMap::new(), "success")
    }

    /// An audit record about a pipeline, with counts and an outcome.
    fn audit_task(
        &self,
        action: &str,
        pipeline: &str,
        detail: String,
        counts: BTreeMap<String, u64>,
        outcome: &str,
    ) -> Result<(), Failure> {
        self.append_audit(action, Some(pipeline), detail, counts, outcome)
    }

    fn append_audit(
        &self,
        action: &str,
        pipeline: Option<&str>,
        detail: String,
        counts: BTreeMap<String, u64>,
        outcome: &str,
    ) -> Result<(), Failure> {
        let mut audit = AuditLog::open(self.state.root()).map_err(failure)?;
        audit
            .append(NewRecord {
                actor: os_user(),
                action: action.into(),
                pipeline: pipeline.map(str::to_string),
                policy_fingerprint: None,
                counts,
                outcome: outcome.into(),
                detail: Some(detail),
            })
            .map_err(failure)?;
        Ok(())
    }

    /// Records a privileged action in the audit log: key operations, detokenization, exports.
    fn audit(
        &self,
        action: &str,
        detail: String,
        counts: BTreeMap<String, u64>,
        outcome: &str,
    ) -> Result<(), Failure> {
        self.append_audit(action, None, detail, counts, outcome)
    }
}

use run::Depth;

pub fn dispatch(cli: Cli, out: &Output) -> Result<Exit, Failure> {
    let Cli {
        state_dir,
        master_key,
        metadata,
        command,
        ..
    } = cli;
    let metadata = metadata.as_deref();
    // Opened only by the commands that use the state directory.
    let session = || -> Result<Session<'_>, Failure> {
        let master_key_ref = match &master_key {
            Some(reference) => Some(SecretRef::parse(reference).map_err(invalid)?),
            None => std::env::var_os(MASTER_KEY_ENV)
                .map(|_| SecretRef::parse(&format!("env:{MASTER_KEY_ENV}")))
                .transpose()
                .map_err(invalid)?,
        };
        Ok(Session {
            out,
            state: open_state(&state_dir)?,
            master_key: master_key_ref,
            master_key_arg: master_key.clone(),
        })
    };
    match command {
        Command::Sample(cmd) => sample::sample(out, cmd),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write as _;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hushflow", &mut script);
            // A closed pipe (`| head`) is not worth a panic.
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(failure(e)),
                _ => Ok(Exit::Success),
            }
        }
        Command::Validate { pipeline, offline } => {
            run::validate(&session()?, &pipeline, Depth::of(offline))
        }
        Command::Check { pipeline } => run::validate(&session()?, &pipeline, Depth::Connect),
        Command::Run {
            pipeline,
            workers,
            fresh,
            full_refresh,
            json,
        } => {
            let options = run::RunOptions {
                workers: workers.map(usize::from),
                fresh,
                full_refresh,
                replay: None,
                counts: None,
                json,
            };
            run::run(&session()?, &pipeline, options)
        }
        Command::Gc { unfinished } => gc::gc(&session()?, unfinished),
        Command::Erase { pipeline, subject } => keys::erase(&session()?, &pipeline, &subject),
        Command::Keys(cmd) => keys::keys(&session()?, cmd),
        Command::Audit(cmd) => audit::audit(&session()?, cmd),
        Command::Quarantine(cmd) => quarantine::quarantine(&session()?, cmd),
        Command::Detokenize { key, tokens } => keys::detokenize(&session()?, &key, tokens),
        Command::Scheduler {
            pipelines,
            parallelism,
            timing,
        } => orchestrate::scheduler(&session()?, metadata, &pipelines, parallelism, &timing),
        Command::Worker {
            concurrency,
            timing,
        } => orchestrate::worker(&session()?, metadata, concurrency, &timing),
        Command::Trigger {
            pipeline,
            conf,
            wait,
        } => orchestrate::trigger(&session()?, metadata, &pipeline, &conf, wait),
        Command::Backfill {
            pipeline,
            from,
            to,
            wait,
        } => orchestrate::backfill(&session()?, metadata, &pipeline, &from, &to, wait),
        Command::Pause { pipeline } => orchestrate::pause(&session()?, metadata, &pipeline, true),
        Command::Unpause { pipeline } => {
            orchestrate::pause(&session()?, metadata, &pipeline, false)
        }
        Command::Pipelines { json } => orchestrate::pipelines(&session()?, metadata, json),
        Command::Runs {
            pipeline,
            limit,
            json,
        } => orchestrate::runs(&session()?, metadata, pipeline.as_deref(), limit, json),
        Command::Tasks {
            run,
            pipeline,
            json,
        } => orchestrate::tasks(&session()?, metadata, &run, pipeline.as_deref(), json),
        Command::Logs {
            run,
            task,
            pipeline,
            attempt,
        } => orchestrate::logs(
            &session()?,
            metadata,
            &run,
            &task,
            pipeline.as_deref(),
            attempt,
        ),
        Command::Clear {
            run,
            tasks,
            pipeline,
        } => orchestrate::clear(&session()?, metadata, &run, &tasks, pipeline.as_deref()),
        Command::Db(crate::cli::DbCommand::Migrate) => {
            orchestrate::db_migrate(&session()?, metadata)
        }
        Command::Db(crate::cli::DbCommand::Prune {
            older_than,
            pipeline,
        }) => orchestrate::db_prune(&session()?, metadata, &older_than, pipeline.as_deref()),
        Command::TaskExec => executor::task_exec(&session()?),
    }
}

fn open_state(dir: &Path) -> Result<StateDir, Failure> {
    StateDir::open(dir).map_err(|e| {
        failure(format!(
            "state directory {}: {e}; pass --state-dir (or set HUSHFLOW_STATE_DIR) to a directory you can write",
            dir.display()
        ))
    })
}

/// Opens a state directory's keyring, sealed under the master key `master` refers to.
fn open_keyring(
    state: &Path,
    master: Option<&SecretRef>,
    redactor: &hushflow_secrets::Redactor,
) -> Result<Keyring, Failure> {
    let master = match master {
        None => None,
        Some(reference) => {
            let resolver = SecretResolver::new(redactor.clone(), None);
            let value = resolver.resolve(reference).map_err(invalid)?;
            Some(MasterKey::from_base64(&value).map_err(invalid)?)
        }
    };
    Keyring::open_with(state, master).map_err(failure)
}

/// Writes a new file readable by its owner only; an existing file is not replaced.
fn create_private(path: &Path) -> Result<std::fs::File, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            failure(format!(
                "{}: {e}; pick a new file name (an existing file is never replaced)",
                path.display()
            ))
        })
}
