//! `hushflow db`: the metadata store's schema (`migrate`), history (`prune`), PostgreSQL
//! grants and the key that signs pipeline definitions, through the app layer's actions
//! (`hushflow_app::actions::orchestration`).

use super::{Exit, Failure, Session};
use crate::cli::{DbCommand, DefinitionKeyCommand, DefinitionKeyCreateArgs, GrantsArgs, PruneArgs};
use crate::output::Output;
use hushflow_app::actions::orchestration;
use hushflow_scheduler::store::grants::Roles;

/// `hushflow db …`: `grants` needs no state directory, the others open the session.
pub(super) fn db<'a>(
    out: &'a Output,
    session: impl FnOnce() -> Result<Session<'a>, Failure>,
    cmd: &DbCommand,
) -> Result<Exit, Failure> {
    match cmd {
        DbCommand::Migrate => migrate(&session()?),
        DbCommand::Prune(args) => prune(&session()?, args),
        DbCommand::Grants(args) => grants(out, args),
        DbCommand::DefinitionKey(cmd) => definition_key(&session()?, cmd),
    }
}

/// `hushflow db migrate`.
pub(super) fn migrate(session: &Session<'_>) -> Result<Exit, Failure> {
    let m = orchestration::migrate(&session.app)?;
    for applied in &m.applied {
        session.out.line(format!("applied migration {applied}"));
    }
    session.out.line(format!(
        "metadata schema at version {} ({})",
        m.schema_version, m.store
    ));
    Ok(Exit::Success)
}

/// `hushflow db grants`: least-privilege grants for a PostgreSQL metadata store, as SQL.
pub(super) fn grants(out: &Output, args: &GrantsArgs) -> Result<Exit, Failure> {
    let roles = Roles {
        schema: args.schema.clone(),
        scheduler: args.scheduler_role.clone(),
        worker: args.worker_role.clone(),
        reader: args.reader_role.clone(),
        server: args.server_role.clone(),
    };
    out.line(orchestration::grants(&roles)?.trim_end());
    Ok(Exit::Success)
}

/// `hushflow db definition-key create|show`.
pub(super) fn definition_key(
    session: &Session<'_>,
    cmd: &DefinitionKeyCommand,
) -> Result<Exit, Failure> {
    let out = session.out;
    match cmd {
        DefinitionKeyCommand::Create(DefinitionKeyCreateArgs { out: file }) => {
            let k = orchestration::create_definition_key(
                &session.app,
                &session.actor,
                file.as_deref(),
            )?;
            out.note(match (k.created, file.is_some()) {
                (true, true) => format!(
                    "created a definition signing key in {} (keep it secret); give schedulers \
                     and `trigger` --definition-key file:{}, and workers its public key:",
                    k.location, k.location
                ),
                (true, false) => format!(
                    "created the state directory's definition signing key ({}); give workers on \
                     other machines its public key (--definition-public-key or \
                     HUSHFLOW_DEFINITION_PUBLIC_KEY):",
                    k.location
                ),
                (false, _) => format!(
                    "the state directory has a definition signing key already ({}); its public \
                     key, for workers' --definition-public-key:",
                    k.location
                ),
            });
            out.line(k.public_key);
        }
        DefinitionKeyCommand::Show => {
            let k = orchestration::definition_public_key(&session.app)?;
            out.note(format!("the definition signing key in {}:", k.location));
            out.line(k.public_key);
        }
    }
    Ok(Exit::Success)
}

/// `hushflow db prune`.
pub(super) fn prune(session: &Session<'_>, args: &PruneArgs) -> Result<Exit, Failure> {
    let p = orchestration::prune(
        &session.app,
        &session.actor,
        args.older_than,
        args.pipeline.as_deref(),
    )?;
    session.out.line(format!(
        "deleted {} run(s), {} task(s) and {} tr{} that ended before {}",
        p.runs,
        p.tasks,
        p.tries,
        if p.tries == 1 { "y" } else { "ies" },
        p.before
    ));
    Ok(Exit::Success)
}
