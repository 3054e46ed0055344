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
mod task_exec;

use crate::cli::{Cli, Command};
use crate::output::Output;
use hushflow_app::Actor;
use hushflow_crypto::{Keyring, KeyringError, MasterKey};
use hushflow_secrets::{KeyProvider, Redactor, SecretProviders, SecretRef, SecretResolver};
use hushflow_state::StateDir;
use hushflow_state::audit::AnchorKey;
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

/// The app layer's errors as exit codes: a bad request or a missing run, pipeline or task is
/// invalid input (2); anything else a failure (1).
impl From<hushflow_app::Error> for Failure {
    fn from(e: hushflow_app::Error) -> Failure {
        let code = match e.kind {
            hushflow_app::ErrorKind::Invalid | hushflow_app::ErrorKind::NotFound => Exit::Invalid,
            hushflow_app::ErrorKind::Failed => Exit::Failure,
        };
        Failure {
            code,
            message: e.message,
        }
    }
}

impl Failure {
    /// The failure as an app layer error, for a closure the app layer calls (it comes back as
    /// the same exit code).
    fn into_app(self) -> hushflow_app::Error {
        match self.code {
            Exit::Invalid => hushflow_app::Error::invalid(self.message),
            _ => hushflow_app::Error::failed(self.message),
        }
    }
}

/// The environment variable a master key is taken from when `--master-key` is not given.
const MASTER_KEY_ENV: &str = "HUSHFLOW_MASTER_KEY";

/// What the commands that use the state directory share: where it is, the output, and how to
/// open its keyring. The actions themselves run in the app layer's session (`app`) on behalf
/// of `actor`, the OS user.
pub struct Session<'a> {
    out: &'a Output,
    state: StateDir,
    master_key: Option<SecretRef>,
    /// `--master-key` as given, for the task processes a worker starts.
    master_key_arg: Option<String>,
    /// The key that tags the audit head (from `--anchor-key`, else the master key), also set
    /// as the process's anchor key so that every append of this command keeps the tag current.
    anchor_key: Option<AnchorKey>,
    /// `--anchor-key` as given, for the task processes a worker starts.
    anchor_key_arg: Option<String>,
    /// The app layer's session over the same state directory, master key and redactor, and the
    /// metadata store `--metadata` names.
    app: hushflow_app::Session,
    /// Who runs this command: the OS user.
    actor: Actor,
}

impl Session<'_> {
    /// Opens the keyring, sealed under the master key if there is one. Without one, says once
    /// that the keyring is an unprotected local demo keyring.
    /// A plain keyring under a master key is refused, and the refusal audited: it may have been
    /// swapped in for the sealed one.
    fn keyring(&self) -> Result<Keyring, Failure> {
        let master = self.master_key()?;
        let keyring = match Keyring::open_with(self.state.root(), master) {
            Ok(keyring) => keyring,
            Err(e @ KeyringError::Unsealed { .. }) => {
                let mut refused = failure(&e);
                if let Err(a) = self.audit(
                    "keys.open",
                    "refused: keyring.json is not sealed, but a master key was given".into(),
                    BTreeMap::new(),
                    "refused",
                ) {
                    refused.message = format!(
                        "{}\n(the refusal could not be audited: {})",
                        refused.message, a.message
                    );
                }
                return Err(refused);
            }
            Err(e) => return Err(failure(e)),
        };
        if !keyring.is_sealed() {
            self.out.note(format!(
                "note: the keyring in {} is not sealed: a local, unprotected demo keyring. Set \
                 {MASTER_KEY_ENV} (make one with `hushflow keys new-master-key`) and run \
                 `hushflow keys seal` to seal it",
                self.state.root().display()
            ));
        }
        Ok(keyring)
    }

    /// The master key, if one was given (`--master-key` or HUSHFLOW_MASTER_KEY).
    fn master_key(&self) -> Result<Option<MasterKey>, Failure> {
        resolve_master_key(self.master_key.as_ref(), &self.out.redactor)
    }

    /// The directories no pipeline path may lead into: the state directory. Passed to every
    /// load of a pipeline file, which checks it before reading anything the file names.
    fn protected(&self) -> hushflow_spec::Protected {
        hushflow_spec::Protected::state_dir(self.state.root())
    }

    /// Records a privileged action in the audit log: key operations, detokenization, exports.
    fn audit(
        &self,
        action: &str,
        detail: String,
        counts: BTreeMap<String, u64>,
        outcome: &str,
    ) -> Result<(), Failure> {
        Ok(self
            .app
            .audit(&self.actor, action, detail, counts, outcome)?)
    }
}

use run::Depth;

pub fn dispatch(cli: Cli, out: &Output) -> Result<Exit, Failure> {
    let Cli {
        state_dir,
        master_key,
        anchor_key,
        metadata,
        definition_key,
        definition_public_key,
        command,
        ..
    } = cli;
    // Opened only by the commands that use the state directory.
    let session = || -> Result<Session<'_>, Failure> {
        let master_key_ref = match &master_key {
            Some(reference) => Some(secret_providers(None).parse(reference).map_err(invalid)?),
            None => std::env::var_os(MASTER_KEY_ENV).map(|_| SecretRef::env(MASTER_KEY_ENV)),
        };
        // Before anything is audited: every append of this process keeps the head tag current.
        let anchor = resolve_anchor_key(anchor_key.as_deref(), master_key_ref.as_ref(), out)?;
        hushflow_state::audit::set_process_anchor_key(anchor.clone());
        let state = open_state(&state_dir)?;
        let app = hushflow_app::Session::new(state.clone(), out.redactor.clone())
            .with_master_key(master_key_ref.clone())
            .with_metadata(metadata.clone())
            .with_definition_keys(definition_key.clone(), definition_public_key.clone());
        Ok(Session {
            out,
            state,
            master_key: master_key_ref,
            master_key_arg: master_key.clone(),
            anchor_key: anchor,
            anchor_key_arg: anchor_key.clone(),
            app,
            actor: Actor::os_user(),
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
        Command::Schema {
            what: crate::cli::SchemaKind::Pipeline,
        } => {
            use std::io::Write as _;
            let schema = hushflow_spec::schema::pipeline_json_schema();
            match std::io::stdout().write_all(schema.as_bytes()) {
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
        } => orchestrate::scheduler(&session()?, &pipelines, parallelism, &timing),
        Command::Worker {
            concurrency,
            timing,
        } => orchestrate::worker(&session()?, concurrency, &timing),
        Command::Trigger {
            pipeline,
            conf,
            wait,
            timeout,
            json,
        } => {
            let wait = wait.then_some(timeout);
            orchestrate::trigger(&session()?, &pipeline, &conf, wait, json)
        }
        Command::Backfill {
            pipeline,
            from,
            to,
            wait,
            timeout,
        } => {
            let wait = wait.then_some(timeout);
            orchestrate::backfill(&session()?, &pipeline, &from, &to, wait)
        }
        Command::Pause { pipeline } => orchestrate::pause(&session()?, &pipeline, true),
        Command::Unpause { pipeline } => orchestrate::pause(&session()?, &pipeline, false),
        Command::Pipelines { json } => orchestrate::pipelines(&session()?, json),
        Command::Runs {
            pipeline,
            limit,
            json,
        } => orchestrate::runs(&session()?, pipeline.as_deref(), limit, json),
        Command::Tasks {
            run,
            pipeline,
            json,
        } => orchestrate::tasks(&session()?, &run, pipeline.as_deref(), json),
        Command::Logs {
            run,
            task,
            pipeline,
            attempt,
        } => orchestrate::logs(&session()?, &run, &task, pipeline.as_deref(), attempt),
        Command::Clear {
            run,
            tasks,
            pipeline,
        } => orchestrate::clear(&session()?, &run, &tasks, pipeline.as_deref()),
        Command::Db(crate::cli::DbCommand::Migrate) => orchestrate::db_migrate(&session()?),
        Command::Db(crate::cli::DbCommand::Prune {
            older_than,
            pipeline,
        }) => orchestrate::db_prune(&session()?, older_than, pipeline.as_deref()),
        Command::Db(crate::cli::DbCommand::Grants {
            schema,
            scheduler_role,
            worker_role,
            reader_role,
        }) => orchestrate::db_grants(
            out,
            hushflow_scheduler::store::grants::Roles {
                schema,
                scheduler: scheduler_role,
                worker: worker_role,
                reader: reader_role,
            },
        ),
        Command::Db(crate::cli::DbCommand::DefinitionKey(cmd)) => {
            orchestrate::definition_key(&session()?, cmd)
        }
        Command::TaskExec => task_exec::task_exec(&session()?),
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

/// The secret stores this build knows, by scheme: the built-in `env:`, `file:` and `keyring:`
/// (with `keys` behind it; `None` before the keyring is open, which is enough to parse and
/// validate references). A new store is a provider behind a Cargo feature, registered here and
/// nowhere else, so that validation, resolution and every command agree on the schemes.
fn secret_providers(keys: Option<&dyn KeyProvider>) -> SecretProviders<'_> {
    hushflow_app::secrets::providers(keys)
}

/// A resolver over [`secret_providers`]: every value it resolves is registered with `redactor`.
fn resolver<'a>(redactor: &Redactor, keys: Option<&'a dyn KeyProvider>) -> SecretResolver<'a> {
    hushflow_app::secrets::resolver(redactor, keys)
}

/// Opens a state directory's keyring, sealed under the master key `master` refers to.
fn open_keyring(
    state: &Path,
    master: Option<&SecretRef>,
    redactor: &Redactor,
) -> Result<Keyring, Failure> {
    let master = resolve_master_key(master, redactor)?;
    Keyring::open_with(state, master).map_err(failure)
}

/// The master key `master` refers to, if any.
fn resolve_master_key(
    master: Option<&SecretRef>,
    redactor: &hushflow_secrets::Redactor,
) -> Result<Option<MasterKey>, Failure> {
    let Some(reference) = master else {
        return Ok(None);
    };
    let resolver = resolver(redactor, None);
    let value = resolver.resolve(reference).map_err(invalid)?;
    Ok(Some(MasterKey::from_base64(&value).map_err(invalid)?))
}

/// The key that tags the audit head: from `--anchor-key` (a reference to base64 of at least
/// 32 bytes, the master key's format) when given, else derived from the master key; `None`
/// without either.
fn resolve_anchor_key(
    anchor: Option<&str>,
    master: Option<&SecretRef>,
    out: &Output,
) -> Result<Option<AnchorKey>, Failure> {
    let Some(reference) = anchor else {
        let master = resolve_master_key(master, &out.redactor)?;
        return Ok(master.as_ref().map(AnchorKey::from_master));
    };
    let reference = secret_providers(None)
        .parse(reference)
        .map_err(|e| invalid(format!("--anchor-key: {e}")))?;
    let value = resolver(&out.redactor, None)
        .resolve(&reference)
        .map_err(|e| invalid(format!("--anchor-key: {e}")))?;
    let key = MasterKey::from_base64(&value).map_err(|_| {
        invalid(
            "--anchor-key: the secret must be base64 (standard alphabet) of at least 32 random \
             bytes; make one with `hushflow keys new-master-key`",
        )
    })?;
    Ok(Some(AnchorKey::from_master(&key)))
}

/// Writes a new file readable by its owner only; an existing file is not replaced.
fn create_private(path: &Path) -> Result<std::fs::File, Failure> {
    Ok(hushflow_app::files::create_private(path)?)
}
