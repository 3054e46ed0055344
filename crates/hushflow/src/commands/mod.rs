//! One module per group of sub-commands. Exit codes: 0 success, 1 failure, 2 invalid input (a
//! pipeline that does not validate, bad arguments), 3 partial success (records quarantined).

mod airflow;
mod audit;
mod child;
mod control;
mod db;
mod dsr;
mod executor;
mod external;
mod gc;
mod history;
mod keys;
mod password_input;
mod quarantine;
mod run;
mod sample;
mod scheduler;
#[cfg(feature = "server")]
mod serve;
mod task_exec;
mod trigger;
mod users;

use crate::cli::{Cli, Command, GlobalOptions, MetadataOptions, StateOptions};
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

/// Identity and access errors: a bad or conflicting request is invalid input (2), anything
/// else a failure (1).
impl From<hushflow_app::AccessError> for Failure {
    fn from(e: hushflow_app::AccessError) -> Failure {
        use hushflow_app::AccessError as E;
        let code = match e {
            E::Failed(_) => Exit::Failure,
            _ => Exit::Invalid,
        };
        Failure {
            code,
            message: e.to_string(),
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
    /// The key that tags the audit head (from `--anchor-key`, else the master key); `state`
    /// carries it too, so that every append of this command keeps the tag current.
    anchor_key: Option<AnchorKey>,
    /// `--anchor-key` as given, for the task processes a worker starts.
    anchor_key_arg: Option<String>,
    /// The app layer's session over the same state directory, master key and redactor, and the
    /// metadata store `--metadata` names.
    app: hushflow_app::Session,
    /// Who runs this command: the OS user, or the Airflow task its environment names
    /// ([`Actor::from_env`]).
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
        resolve_master_key(
            self.master_key.as_ref(),
            self.state.root(),
            &self.out.redactor,
        )
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
    let Cli { global, command } = cli;
    let GlobalOptions {
        state:
            StateOptions {
                state_dir,
                master_key,
                anchor_key,
            },
        metadata:
            MetadataOptions {
                metadata,
                definition_key,
                definition_public_key,
            },
        ..
    } = global;
    // Opened only by the commands that use the state directory.
    let session = || -> Result<Session<'_>, Failure> {
        let master_key_ref = match &master_key {
            Some(reference) => Some(secret_providers(None).parse(reference).map_err(invalid)?),
            None => std::env::var_os(MASTER_KEY_ENV).map(|_| SecretRef::env(MASTER_KEY_ENV)),
        };
        // First, since a master key held by a custodian is unwrapped from a file in it. The state
        // directory then carries the anchor key, so that every audit append through it (this
        // command's, its runs', the app layer's actions) keeps the head tag current.
        let state = open_state(&state_dir)?;
        let anchor = resolve_anchor_key(
            anchor_key.as_deref(),
            master_key_ref.as_ref(),
            state.root(),
            out,
        )?;
        let state = state.with_anchor_key(anchor.clone());
        // The alert rules judge every audit record this process writes (docs/monitoring.md).
        let state = hushflow_app::alerts::install(state, &out.redactor)?;
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
            actor: Actor::from_env(|name| std::env::var(name).ok()).map_err(invalid)?,
        })
    };
    match command {
        Command::Sample(cmd) => sample::sample(out, cmd),
        Command::Completions(args) => {
            use clap::CommandFactory;
            use std::io::Write as _;
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "hushflow", &mut script);
            // A closed pipe (`| head`) is not worth a panic.
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(failure(e)),
                _ => Ok(Exit::Success),
            }
        }
        Command::Schema(crate::cli::SchemaArgs {
            what: crate::cli::SchemaKind::Pipeline,
        }) => {
            use std::io::Write as _;
            let schema = hushflow_spec::schema::pipeline_json_schema();
            match std::io::stdout().write_all(schema.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(failure(e)),
                _ => Ok(Exit::Success),
            }
        }
        Command::Validate(args) => {
            run::validate(&session()?, &args.file.pipeline, Depth::of(args.offline))
        }
        Command::Check(args) => run::validate(&session()?, &args.pipeline, Depth::Connect),
        Command::Run(args) => {
            let options = run::RunOptions {
                workers: args.workers.map(usize::from),
                fresh: args.fresh,
                full_refresh: args.full_refresh,
                partition: args.partition,
                replay: None,
                counts: None,
                json: args.json,
                metrics_file: args.metrics_file,
            };
            let session = session()?;
            let result = if external::wanted(&args.external) {
                external::run(&session, &args.pipeline, &args.external, options)
            } else {
                run::run(&session, &args.pipeline, options)
            };
            // `[audit] ship_to`: what this run recorded, shipped before it exits (unless a
            // scheduler is shipping to the same target right now).
            audit::ship_configured_once(&session);
            result
        }
        Command::Gc(args) => gc::gc(&session()?, args.unfinished),
        Command::Dsr(cmd) => dsr::dsr(&session()?, cmd),
        Command::Retention(crate::cli::RetentionCommand::Enforce(args)) => {
            dsr::retention(&session()?, &args)
        }
        Command::Erase(args) => keys::erase(&session()?, &args.pipeline, &args.subject),
        Command::Keys(cmd) => keys::keys(&session()?, cmd),
        Command::Audit(cmd) => audit::audit(&session()?, cmd),
        Command::Quarantine(cmd) => quarantine::quarantine(&session()?, cmd),
        Command::Detokenize(args) => keys::detokenize(&session()?, &args.key, args.tokens),
        Command::Scheduler(args) => scheduler::scheduler(&session()?, &args),
        Command::Worker(args) => scheduler::worker(&session()?, &args),
        Command::Trigger(args) => trigger::trigger(&session()?, &args),
        Command::Backfill(args) => trigger::backfill(&session()?, &args),
        Command::Pause(args) => control::pause(&session()?, &args, true),
        Command::Unpause(args) => control::pause(&session()?, &args, false),
        Command::Clear(args) => control::clear(&session()?, &args),
        Command::Pipelines(args) => history::pipelines(&session()?, &args),
        Command::Runs(args) => history::runs(&session()?, &args),
        Command::Tasks(args) => history::tasks(&session()?, &args),
        Command::Logs(args) => history::logs(&session()?, &args),
        Command::Db(cmd) => db::db(out, session, &cmd),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::serve(&session()?, &args),
        Command::TaskExec => task_exec::task_exec(&session()?),
        Command::Users(cmd) => users::users(&session()?, cmd),
        Command::Tokens(cmd) => users::tokens(&session()?, cmd),
        Command::Airflow(crate::cli::AirflowCommand::Export(args)) => {
            airflow::export(out, &args, &hushflow_spec::Protected::state_dir(&state_dir))
        }
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
/// validate references), and `vault:` and `aws-sm:` with the `vault` and `aws` features (on by
/// default). Every command gets them from the app layer, so all agree on the schemes.
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
    let master = resolve_master_key(master, state, redactor)?;
    Keyring::open_with(state, master).map_err(failure)
}

/// The master key `master` refers to, if any: base64 key material, or a custodian
/// (`vault-transit:KEYNAME`, `aws-kms:KEY_ID`) that unwraps the data key kept in `state`.
fn resolve_master_key(
    master: Option<&SecretRef>,
    state: &Path,
    redactor: &hushflow_secrets::Redactor,
) -> Result<Option<MasterKey>, Failure> {
    let Some(reference) = master else {
        return Ok(None);
    };
    let resolver = resolver(redactor, None);
    let value = resolver.resolve(reference).map_err(invalid)?;
    Ok(Some(hushflow_app::secrets::master_key(
        &value, state, redactor,
    )?))
}

/// The key that tags the audit head: from `--anchor-key` (a reference to base64 of at least
/// 32 bytes, the master key's format) when given, else derived from the master key; `None`
/// without either.
fn resolve_anchor_key(
    anchor: Option<&str>,
    master: Option<&SecretRef>,
    state: &Path,
    out: &Output,
) -> Result<Option<AnchorKey>, Failure> {
    let Some(reference) = anchor else {
        let master = resolve_master_key(master, state, &out.redactor)?;
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
