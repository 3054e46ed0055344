//! Data subject requests (GDPR articles 15, 17 and 21; CCPA): one person, every pipeline of a
//! directory, every system they write to.
//!
//! A person is named by an email, a phone number or a record key. For each pipeline the request
//! computes the values the pipeline writes for them (`CompiledPolicy::subject_values`: the HMAC
//! of the normalized email under the pipeline's key, the record key as it leaves) and finds
//! their rows in the sink by those values, never by scanning for plaintext. `erase` deletes the
//! rows of tables, lists a file sink's rows (file and line) for manual action, shreds the
//! per-subject keys of the tokens found in their rows (and, given a record key, every key of
//! that subject), and adds the person to the state directory's managed suppression list
//! (`hushflow_state::erased`), which every later run of every pipeline consults. `opt-out` does
//! the last step only. `access` gathers their rows into one JSON document encrypted to the
//! requester's age recipient.
//!
//! Requests are durable: the metadata store records each one and each system as it is done
//! (`hf_dsr_requests`, `hf_dsr_steps`), so a request interrupted halfway resumes on a rerun
//! for the same person (or `--request ID`) with the systems not yet done; each system gets one
//! audit record naming the request id, never the person.

pub use hushflow_policy::IdentifierKind;

use crate::views::DsrView;
use crate::{Actor, Error, Result, Session};
use hushflow_connectors::{FoundRow, RowMatch, SinkContext};
use hushflow_core::Schema;
use hushflow_crypto::{Keyring, Purpose, SubjectHandle, SubjectRoot};
use hushflow_policy::{
    CompileInputs, CompiledPolicy, Day, ErasedList, Normalizer, SubjectKeys, Subjects,
    normalized_forms,
};
use hushflow_scheduler::store::{DsrRequest, DsrStep, Store};
use hushflow_scheduler::{Clock, SystemClock};
use hushflow_secrets::{KeyProvider, SecretValue};
use hushflow_spec::Plan;
use hushflow_spec::dag::TaskKind;
use hushflow_state::erased;
use hushflow_state::subjects::SubjectStore;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Set to a file path, a request pauses after its first system is done, having created that
/// file: tests kill the process there to check that a rerun resumes without doing it twice.
pub const PAUSE_ENV: &str = "HUSHFLOW_DSR_TEST_PAUSE";

/// Which statutory deadline a request runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// GDPR: one month (30 days).
    Gdpr,
    /// CCPA: 45 days.
    Ccpa,
}

impl Law {
    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Law::Gdpr => "gdpr",
            Law::Ccpa => "ccpa",
        }
    }

    fn days(self) -> i64 {
        match self {
            Law::Gdpr => 30,
            Law::Ccpa => 45,
        }
    }
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Delete everywhere, shred keys, suppress.
    Erase,
    /// Suppress only.
    OptOut,
    /// Export what each sink holds.
    Access,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Erase => "erase",
            Kind::OptOut => "opt-out",
            Kind::Access => "access",
        }
    }
}

/// The person a request is about. Personal data: never printed, stored or audited.
pub struct Person {
    /// What the value is.
    pub kind: IdentifierKind,
    /// The email, phone number or record key, as given.
    pub value: SecretValue,
}

impl Person {
    fn text(&self) -> Result<&str> {
        let text = self
            .value
            .expose_str()
            .map_err(|_| Error::invalid("the identifier is not UTF-8 text"))?
            .trim();
        if text.is_empty() {
            return Err(Error::invalid(format!(
                "the {} is empty; give the person's identifier",
                self.kind.as_str()
            )));
        }
        Ok(text)
    }
}

/// A request to act on.
pub struct Request<'a> {
    /// Erase, opt out or export.
    pub kind: Kind,
    /// The person.
    pub person: &'a Person,
    /// The directory of pipeline (or DAG) files whose sync tasks are searched.
    pub pipelines: &'a Path,
    /// The deadline's law.
    pub law: Law,
    /// For `access`: the age recipient (`age1…`) the export is encrypted to, and where it goes.
    pub export: Option<(&'a str, &'a Path)>,
}

/// One pipeline with its keys and connections resolved and its policy compiled.
struct Prepared {
    plan: Plan,
    connections: hushflow_spec::plan::Connections,
    compiled: CompiledPolicy,
    key_column: Option<usize>,
    /// Per-subject root keys (every version), for shredding by record key.
    roots: Vec<SubjectRoot>,
}

/// The policy's subject keys are never asked for here: a request computes deterministic values
/// only, and per-subject tokens are found through the rows instead.
struct NoSubjectKeys;

impl SubjectKeys for NoSubjectKeys {
    fn tokenizer(
        &self,
        _: &str,
        _: &str,
    ) -> std::result::Result<hushflow_crypto::Tokenizer, &'static str> {
        Err("a data subject request makes no tokens")
    }
}

fn now() -> i64 {
    SystemClock.now()
}

/// The sync plans of every pipeline and DAG file (`*.toml`) in `dir`, in file name order.
pub(crate) fn plans(session: &Session, dir: &Path) -> Result<Vec<Plan>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::invalid(format!("--pipelines {}: {e}", dir.display())))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let providers = crate::secrets::providers(None);
    let mut plans = Vec::new();
    for file in files {
        let dag = hushflow_spec::dag::load(&file, &providers, &session.protected())
            .map_err(|e| Error::invalid(format!("{}: {e}", file.display())))?;
        for task in dag.tasks {
            if let TaskKind::Sync(plan) = task.kind {
                plans.push(*plan);
            }
        }
    }
    if plans.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no pipeline file (*.toml) with a sync; give the directory of the pipelines \
             with --pipelines",
            dir.display()
        )));
    }
    Ok(plans)
}

fn prepare(plan: Plan, keyring: &Keyring, session: &Session) -> Result<Prepared> {
    let resolver = crate::secrets::resolver(session.redactor(), Some(keyring as &dyn KeyProvider));
    let keys = plan
        .resolve_keys(&resolver, keyring)
        .map_err(|e| Error::invalid(format!("pipeline {}: {e}", plan.name)))?;
    let (connections, _) = plan
        .resolve_connections(&resolver)
        .map_err(|e| Error::invalid(format!("pipeline {}: {e}", plan.name)))?;
    let key_source = plan
        .policy
        .rule(&plan.key)
        .map_or(plan.key.clone(), |rule| {
            rule.source_field(&plan.key).to_string()
        });
    let mut fields = plan.policy.source_fields();
    if !fields.contains(&key_source) {
        fields.push(key_source.clone());
    }
    let key_column = fields.iter().position(|f| *f == key_source);
    let schema = Schema::new(fields);
    let subjects = Subjects {
        field: key_source,
        keys: Arc::new(NoSubjectKeys),
    };
    let compiled = plan
        .policy
        .compile(
            &schema,
            &CompileInputs {
                subjects: Some(&subjects),
                keys: &keys,
                suppression_list: &[],
                today: Day {
                    year: 2000,
                    month: 1,
                    day: 1,
                },
                withdrawal_key: None,
            },
        )
        .map_err(|e| Error::invalid(format!("pipeline {}: {e}", plan.name)))?;
    let mut roots = Vec::new();
    for reference in plan.per_subject_keys() {
        let parsed = crate::secrets::providers(None)
            .parse(reference)
            .map_err(Error::invalid)?;
        match parsed.as_keyring() {
            Some(name) => {
                for (info, material) in keyring.versions(name).map_err(Error::invalid)? {
                    roots.push(SubjectRoot::new(&info.id, &material));
                }
            }
            None => {
                if let Some(k) = keys.get(reference) {
                    roots.push(SubjectRoot::new(&k.id, &k.material));
                }
            }
        }
    }
    Ok(Prepared {
        plan,
        connections,
        compiled,
        key_column,
        roots,
    })
}

/// The managed list's key, made on first use. Its creation is audited before the keyring file
/// that holds it is put in place (as `keys create` does), so no key exists without its record.
fn list_key(session: &Session, actor: &Actor, keyring: &mut Keyring) -> Result<SecretValue> {
    /// Why the key could not be made: the keyring, or the audit record ahead of it.
    enum Step {
        Keyring(hushflow_crypto::KeyringError),
        Audit(Error),
    }
    impl From<hushflow_crypto::KeyringError> for Step {
        fn from(e: hushflow_crypto::KeyringError) -> Step {
            Step::Keyring(e)
        }
    }
    if !keyring.contains(erased::KEY_NAME) {
        let mut recorded = false;
        let made = keyring.create_with_intent(erased::KEY_NAME, Some(Purpose::Hash), |info| {
            session
                .audit(
                    actor,
                    "keys.create",
                    format!(
                        "key {} id {} (the managed suppression list's)",
                        info.name, info.id
                    ),
                    BTreeMap::new(),
                    "ok",
                )
                .map_err(Step::Audit)?;
            recorded = true;
            Ok::<(), Step>(())
        });
        match made {
            Ok(_) => {}
            Err(Step::Audit(e)) => return Err(e),
            Err(Step::Keyring(e)) => {
                if recorded {
                    // The record ahead of a change that did not land says so.
                    session.audit(
                        actor,
                        "keys.create",
                        format!("key {} was not saved: {e}", erased::KEY_NAME),
                        BTreeMap::new(),
                        "failure",
                    )?;
                }
                return Err(Error::failed(e));
            }
        }
    }
    let (_, material) = keyring.get(erased::KEY_NAME).map_err(Error::failed)?;
    Ok(material)
}

/// The digests the managed list holds for the person: every normalized form any pipeline
/// writes them in, and the plain form of their kind.
fn digests(
    list: &ErasedList,
    person: &Person,
    prepared: &[Prepared],
) -> Result<Vec<erased::Entry>> {
    let value = person.text()?;
    let normalizers: Vec<Normalizer> = prepared
        .iter()
        .flat_map(|p| p.compiled.normalizers(person.kind))
        .collect();
    let forms = normalized_forms(person.kind, value, &normalizers);
    if forms.is_empty() {
        return Err(Error::invalid(format!(
            "the {} given is not one (it does not normalize); check it and try again",
            person.kind.as_str()
        )));
    }
    Ok(forms
        .iter()
        .map(|f| (person.kind, list.digest(person.kind, f)))
        .collect())
}

/// The per-subject keys named by the tokens in `rows`.
fn token_keys(rows: &[FoundRow]) -> Vec<(String, SubjectHandle)> {
    let mut keys = Vec::new();
    for row in rows {
        for (_, value) in &row.fields {
            let Some(value) = value else { continue };
            if let Some((root, handle)) =
                hushflow_crypto::token_key_id(value).and_then(hushflow_crypto::parse_subject_key_id)
            {
                let key = (root.to_string(), handle);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
    }
    keys
}

fn system_name(plan: &Plan) -> String {
    format!(
        "pipeline {}: {} {}",
        plan.name,
        plan.sink.kind(),
        plan.sink.location().display()
    )
}

/// What one request step did.
struct Done {
    state: &'static str,
    detail: String,
    count: i64,
    counts: BTreeMap<String, u64>,
    /// Whether a system was touched (and so gets an audit record).
    touched: bool,
}

/// Runs (or resumes) a request; answers with its view.
pub fn run(session: &Session, actor: &Actor, request: &Request<'_>) -> Result<DsrView> {
    let person = request.person;
    person.text()?;
    let mut keyring = session.keyring()?;
    let key = list_key(session, actor, &mut keyring)?;
    let list = ErasedList::new(&key, []);
    let prepared = plans(session, request.pipelines)?
        .into_iter()
        .map(|plan| prepare(plan, &keyring, session))
        .collect::<Result<Vec<_>>>()?;
    let digests = digests(&list, person, &prepared)?;
    let subject_digest = hex::encode(digests[0].1);
    let mut store = session.open_store()?;
    let store_err = |e: hushflow_scheduler::store::StoreError| Error::failed(e);
    // An access export is made whole every time (its rows are gathered in memory), so it never
    // resumes: each one is a request of its own, audited as a disclosure of its own.
    let open = match request.kind {
        Kind::Access => None,
        _ => store
            .open_dsr(&subject_digest, request.kind.as_str())
            .map_err(store_err)?,
    };
    let record = match open {
        // An interrupted request for the same person resumes.
        Some(open) => open,
        None => {
            let created = now();
            let r = DsrRequest {
                id: format!("dsr-{created}-{}", &subject_digest[..8]),
                kind: request.kind.as_str().into(),
                law: request.law.as_str().into(),
                subject_digest: subject_digest.clone(),
                state: "open".into(),
                created_at: created,
                deadline_at: created + request.law.days() * 86_400_000,
                completed_at: None,
            };
            store.create_dsr(&r).map_err(store_err)?;
            r
        }
    };
    let done: Vec<String> = store
        .dsr_steps(&record.id)
        .map_err(store_err)?
        .into_iter()
        .map(|s| s.system)
        .collect();
    let mut steps_this_run = 0;
    let mut step = |store: &mut Store, system: String, act: &mut dyn FnMut() -> Result<Done>| {
        if done.contains(&system) {
            return Ok(());
        }
        let outcome = act()?;
        store
            .dsr_step_done(
                &record.id,
                &DsrStep {
                    system: system.clone(),
                    state: outcome.state.into(),
                    detail: outcome.detail.clone(),
                    count: outcome.count,
                    done_at: now(),
                },
            )
            .map_err(store_err)?;
        if outcome.touched {
            session.audit(
                actor,
                &format!("dsr.{}", record.kind),
                format!("request {}: {system}: {}", record.id, outcome.detail),
                outcome.counts,
                "ok",
            )?;
        }
        steps_this_run += 1;
        if steps_this_run == 1
            && let Some(marker) = std::env::var_os(PAUSE_ENV)
        {
            // Tests only: say where we are, then wait to be killed.
            let _ = std::fs::write(marker, b"paused\n");
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
        Ok::<(), Error>(())
    };

    let mut export = Vec::new();
    if request.kind != Kind::OptOut {
        let value = person.text()?;
        for p in &prepared {
            let system = system_name(&p.plan);
            let mut act = || sink_step(session, request.kind, p, person.kind, value, &mut export);
            step(&mut store, system, &mut act)?;
        }
    }
    if request.kind == Kind::Erase && person.kind == IdentifierKind::Subject {
        let value = person.text()?;
        let mut act = || {
            let roots: Vec<&SubjectRoot> = prepared.iter().flat_map(|p| &p.roots).collect();
            let keys: Vec<(String, SubjectHandle)> = roots
                .iter()
                .map(|r| (r.root_id().to_string(), r.handle(value.as_bytes())))
                .collect();
            let store =
                SubjectStore::open(session.state().root(), Vec::new()).map_err(Error::failed)?;
            let erased = store.erase_handles(&keys).map_err(Error::failed)?;
            Ok(Done {
                state: "done",
                detail: format!("erased {erased} subject key(s)"),
                count: erased as i64,
                counts: BTreeMap::from([("subject_keys_erased".to_string(), erased as u64)]),
                touched: true,
            })
        };
        step(&mut store, "subject keys".into(), &mut act)?;
    }
    if request.kind != Kind::Access {
        let mut act = || {
            let added = erased::add(session.state().root(), &digests).map_err(Error::failed)?;
            Ok(Done {
                state: "done",
                detail: format!(
                    "the person is on the managed suppression list ({added} new entr{})",
                    if added == 1 { "y" } else { "ies" }
                ),
                count: added as i64,
                counts: BTreeMap::from([("entries_added".to_string(), added as u64)]),
                touched: true,
            })
        };
        step(&mut store, "suppression list".into(), &mut act)?;
    }
    if let (Kind::Access, Some((recipient, to))) = (request.kind, request.export) {
        write_export(session, actor, &record.id, recipient, to, export)?;
    }
    store.complete_dsr(&record.id, now()).map_err(store_err)?;
    show(session, &record.id)
}

/// One pipeline's sink: find the person's rows; erase them (or list them), or gather them.
fn sink_step(
    session: &Session,
    kind: Kind,
    p: &Prepared,
    id_kind: IdentifierKind,
    value: &str,
    export: &mut Vec<serde_json::Value>,
) -> Result<Done> {
    let matches: Vec<RowMatch> = p
        .compiled
        .subject_values(id_kind, value, p.key_column)
        .into_iter()
        .map(|v| RowMatch {
            field: v.field,
            value: v.value,
        })
        .collect();
    let not_held = |detail: String| Done {
        state: "not-held",
        detail,
        count: 0,
        counts: BTreeMap::new(),
        touched: false,
    };
    if matches.is_empty() {
        return Ok(not_held(format!(
            "the pipeline writes no value derived from the {}",
            id_kind.as_str()
        )));
    }
    let ctx = SinkContext {
        base: p.plan.file.parent().unwrap_or(Path::new("")),
        key: &p.plan.key,
        column_types: p.plan.column_types(),
        connections: &p.connections,
    };
    let failed = |e: hushflow_core::Error| Error::failed(format!("pipeline {}: {e}", p.plan.name));
    let Some(mut rows) = p.plan.sink.rows(&ctx).map_err(failed)? else {
        return Ok(Done {
            state: "unreachable",
            detail: format!(
                "the {} sink cannot look rows up yet: act on it by hand",
                p.plan.sink.kind()
            ),
            count: 0,
            counts: BTreeMap::new(),
            touched: false,
        });
    };
    let found = rows
        .find_with(&matches, &p.plan.policy.output_fields())
        .map_err(failed)?;
    if kind == Kind::Access {
        for row in &found {
            let fields: serde_json::Map<String, serde_json::Value> = row
                .fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.clone().map_or(serde_json::Value::Null, Into::into),
                    )
                })
                .collect();
            export.push(serde_json::json!({
                "pipeline": p.plan.name,
                "sink": p.plan.sink.kind(),
                "location": p.plan.sink.location().display().to_string(),
                "row": fields,
            }));
        }
        return Ok(Done {
            state: "done",
            detail: format!("{} row(s) exported", found.len()),
            count: found.len() as i64,
            counts: BTreeMap::from([("rows_exported".to_string(), found.len() as u64)]),
            touched: true,
        });
    }
    // The tokens' keys first: once the rows are gone, nothing names them.
    let keys = token_keys(&found);
    let keys_erased = match keys.is_empty() {
        true => 0,
        false => SubjectStore::open(session.state().root(), Vec::new())
            .and_then(|s| s.erase_handles(&keys))
            .map_err(Error::failed)?,
    };
    if rows.can_delete() {
        let deleted = rows.delete(&matches).map_err(failed)?;
        Ok(Done {
            state: "done",
            detail: format!("deleted {deleted} row(s), erased {keys_erased} subject key(s)"),
            count: deleted as i64,
            counts: BTreeMap::from([
                ("rows_deleted".to_string(), deleted),
                ("subject_keys_erased".to_string(), keys_erased as u64),
            ]),
            touched: true,
        })
    } else if found.is_empty() {
        Ok(not_held("no row of the person in the file".into()))
    } else {
        let lines: Vec<String> = found
            .iter()
            .filter_map(|r| r.line.map(|l| l.to_string()))
            .collect();
        Ok(Done {
            state: "manual",
            detail: format!(
                "{} row(s) at line(s) {} of {}: remove them by hand (the next full run rewrites \
                 the file without them); erased {keys_erased} subject key(s)",
                found.len(),
                lines.join(", "),
                p.plan.sink.location().display()
            ),
            count: found.len() as i64,
            counts: BTreeMap::from([
                ("rows_listed".to_string(), found.len() as u64),
                ("subject_keys_erased".to_string(), keys_erased as u64),
            ]),
            touched: true,
        })
    }
}

/// Writes the access export: one JSON document, encrypted to the requester's age recipient.
fn write_export(
    session: &Session,
    actor: &Actor,
    id: &str,
    recipient: &str,
    to: &Path,
    rows: Vec<serde_json::Value>,
) -> Result<()> {
    let recipient = hushflow_crypto::StateRecipient::parse(recipient).ok_or_else(|| {
        Error::invalid(
            "--recipient is not an age recipient (age1…); give the requester's public key",
        )
    })?;
    let document = serde_json::json!({
        "request": id,
        "generated_at": hushflow_spec::schedule::rfc3339(now()),
        "rows": rows,
    });
    let bytes =
        zeroize::Zeroizing::new(serde_json::to_vec_pretty(&document).map_err(Error::failed)?);
    let file = crate::files::create_private(to)?;
    let mut writer = recipient.encrypt(file).map_err(Error::failed)?;
    std::io::Write::write_all(&mut writer, &bytes).map_err(Error::failed)?;
    let file = writer.finish().map_err(Error::failed)?;
    file.sync_all().map_err(Error::failed)?;
    session.audit(
        actor,
        "dsr.access.export",
        format!(
            "request {id}: export written to {}, encrypted to the requester",
            to.display()
        ),
        BTreeMap::from([("rows".to_string(), rows_count(&document))]),
        "ok",
    )
}

fn rows_count(document: &serde_json::Value) -> u64 {
    document["rows"].as_array().map_or(0, |r| r.len() as u64)
}

/// Every request, newest first.
pub fn list(session: &Session) -> Result<Vec<DsrView>> {
    let mut store = session.open_store()?;
    let requests = store.dsrs().map_err(Error::failed)?;
    requests
        .iter()
        .map(|r| {
            Ok(DsrView::new(
                r,
                &store.dsr_steps(&r.id).map_err(Error::failed)?,
            ))
        })
        .collect()
}

/// One request and its progress.
pub fn show(session: &Session, id: &str) -> Result<DsrView> {
    let mut store = session.open_store()?;
    let r = store.dsr(id).map_err(Error::failed)?.ok_or_else(|| {
        Error::not_found(format!("no request {id}; `hushflow dsr list` shows them"))
    })?;
    let steps = store.dsr_steps(id).map_err(Error::failed)?;
    Ok(DsrView::new(&r, &steps))
}
