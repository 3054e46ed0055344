//! Validation: a pipeline file becomes a [`Plan`] only when every check that needs no data has
//! passed. `hushflow validate` prints the plan; `hushflow run` runs nothing else.

use crate::paths::{self, Protected};
use crate::pipeline::{self, OnError, PipelineSpec, SinkSpec, SourceSpec, SpecError, SpecSource};
use base64::Engine as _;
use hushflow_core::Withdrawal;
use hushflow_crypto::Keyring;
use hushflow_policy::{Action, KeyMaterial, MIN_KEY_BYTES, Policy, PolicyError, ResolvedKey};
use hushflow_secrets::{SecretProviders, SecretRef, SecretResolver, SecretValue};
use std::fmt;
use std::path::{Path, PathBuf};

/// Resolved connection URLs of database sources and sinks, by secret reference.
pub use hushflow_connectors::Connections;

/// The most policy threads a run uses: past this, the single reader and writer are the limit.
pub const MAX_WORKERS: usize = 64;

/// The longest pipeline (and task) name, in characters. Names become file names in the state
/// directory (`quarantine/<name>.<task>-<run id>.jsonl.age.meta.json`, `cursors/<name>.json`),
/// and a file name has at most 255 bytes.
pub const MAX_NAME_CHARS: usize = 100;

/// Checks a pipeline's name: letters, digits, '-', '_' and '.', at most [`MAX_NAME_CHARS`].
pub(crate) fn name_problem(name: &str) -> Option<String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Some("must be non-empty and use only letters, digits, '-', '_' and '.'".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Some(format!(
            "is {} characters long; a name may have at most {MAX_NAME_CHARS} characters (it \
             names files in the state directory)",
            name.chars().count()
        ));
    }
    None
}

/// One policy thread per core, at most 8.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
}

/// A validated pipeline, paths resolved against the pipeline file's directory.
#[derive(Debug)]
pub struct Plan {
    /// The pipeline file, as given.
    pub file: PathBuf,
    /// The plan's name: the pipeline's, or `pipeline.task` for a task of a DAG file.
    pub name: String,
    /// The record key field.
    pub key: String,
    /// Rows per batch.
    pub batch_size: usize,
    /// Threads that apply the policy (the reader and the writer have one each besides).
    pub workers: usize,
    /// What a malformed record does to the run.
    pub on_error: OnError,
    /// What the sink does with rows of records that were withdrawn (consent, suppression).
    pub on_withdrawal: Withdrawal,
    /// Stage the source (encrypted) before loading; see `staging`.
    pub staging: bool,
    /// How long staged files stay after the commit (zero: removed at once).
    pub retention: std::time::Duration,
    /// Where records come from.
    pub source: SourceSpec,
    /// What is done to each record.
    pub policy: Policy,
    /// Where records go.
    pub sink: SinkSpec,
    /// SHA-256 of the policy, recorded in the audit log.
    pub fingerprint: String,
    /// The source's field names when they can be read without reading records (a CSV header).
    pub source_fields: Option<Vec<String>>,
    /// The suppression list's path, resolved against the pipeline file.
    pub suppression_file: Option<PathBuf>,
    /// Things that are allowed but probably not meant, for the user to read.
    pub warnings: Vec<String>,
    /// The directories no path of this plan may resolve into, for a sink relocated later.
    protected: Protected,
    /// The task of a DAG file this plan is, for locating errors found later.
    scope: Option<pipeline::TaskScope>,
    text: String,
}

/// Reads, parses and checks a pipeline file. No secret is resolved and no record is read;
/// secret references must be of a scheme registered in `secrets`, and no path the pipeline names
/// may lead into a `protected` directory (the state directory).
pub fn load(
    file: &Path,
    secrets: &SecretProviders<'_>,
    protected: &Protected,
) -> Result<Plan, SpecError> {
    let text = pipeline::read(file)?;
    let spec = pipeline::parse(file, &text, secrets)?;
    let src = SpecSource::new(file, &text);
    if !spec.task.is_empty() {
        return Err(src.error_at(
            src.span_of(&["task"]),
            Some("task".into()),
            "this file is a DAG of [[task]]s; run it with `hushflow trigger FILE --wait` (or \
             put it in the scheduler's --pipelines directory)",
        ));
    }
    let PipelineSpec {
        pipeline,
        source,
        policy,
        sink,
        ..
    } = spec;
    let missing = |what: &str| {
        src.error_at(
            0..0,
            None,
            format!("missing `[{what}]`: a pipeline file holds [pipeline], [source], [policy] and [sink], or [[task]]s"),
        )
    };
    let key = pipeline.key.clone().ok_or_else(|| {
        src.error_at(
            src.span_of(&["pipeline"]),
            Some("pipeline.key".into()),
            "missing: name the record key (`key = \"id\"`)",
        )
    })?;
    let (source, sink) = match (source, sink) {
        (Some(source), Some(sink)) => (source, sink),
        (None, _) => return Err(missing("source")),
        (_, None) => return Err(missing("sink")),
    };
    let name = pipeline.name.get_ref().clone();
    let parts = SyncParts {
        name,
        key,
        source,
        policy: policy.unwrap_or_default(),
        sink,
    };
    check(
        file,
        text.clone(),
        None,
        &pipeline,
        parts,
        secrets,
        protected,
    )
}

/// What one sync needs besides the `[pipeline]` section: in a DAG file these come from a task.
pub(crate) struct SyncParts {
    /// The plan's name: the pipeline's, or `pipeline.task` for a task of a DAG.
    pub name: String,
    pub key: toml::Spanned<String>,
    pub source: SourceSpec,
    pub policy: Policy,
    pub sink: SinkSpec,
}

pub(crate) fn check(
    file: &Path,
    text: String,
    scope: Option<pipeline::TaskScope>,
    pipeline: &pipeline::PipelineSection,
    parts: SyncParts,
    secrets: &SecretProviders<'_>,
    protected: &Protected,
) -> Result<Plan, SpecError> {
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = base.as_path();
    let src = SpecSource {
        file,
        text: &text,
        scope: scope.as_ref(),
    };
    let SyncParts {
        name: plan_name,
        key: key_spec,
        mut source,
        policy,
        mut sink,
    } = parts;

    let name = &plan_name;
    // A task's plan is named `pipeline.task`: each part is checked on its own.
    if let Some(problem) = name_problem(pipeline.name.get_ref()) {
        return Err(src.error_at(pipeline.name.span(), Some("pipeline.name".into()), problem));
    }
    let batch_size = match &pipeline.batch_size {
        Some(b) if *b.get_ref() == 0 || *b.get_ref() > 1_000_000 => {
            return Err(src.error_at(
                b.span(),
                Some("pipeline.batch_size".into()),
                "must be between 1 and 1000000",
            ));
        }
        Some(b) => *b.get_ref(),
        None => pipeline::DEFAULT_BATCH_SIZE,
    };
    let workers = match &pipeline.workers {
        Some(w) if !(1..=MAX_WORKERS).contains(w.get_ref()) => {
            return Err(src.error_at(
                w.span(),
                Some("pipeline.workers".into()),
                format!("must be between 1 and {MAX_WORKERS}"),
            ));
        }
        Some(w) => *w.get_ref(),
        None => default_workers(),
    };

    if let Err(e) = policy.check_with(secrets) {
        let span = match &e {
            PolicyError::Duplicate(f)
            | PolicyError::KeyNotAReference { field: f }
            | PolicyError::Invalid { field: f, .. } => src.span_of(&["policy", "fields", f]),
            _ => src.span_of(&["policy"]),
        };
        return Err(src.error_at(span, Some("policy".into()), e.to_string()));
    }

    let key = key_spec.get_ref().clone();
    // The key must leave, and leave as a value that still identifies the record one to one.
    match policy.rule(&key).map(|r| &r.action) {
        Some(Action::Keep | Action::Hash(_) | Action::Tokenize(_) | Action::MatchHash(_)) => {}
        _ => {
            return Err(src.error_at(
                key_spec.span(),
                Some(if scope.is_some() && key_spec.span() != pipeline.key.as_ref().map_or(0..0, |k| k.span()) { "key".into() } else { "pipeline.key".into() }),
                format!(
                    "the key field `{key}` must leave the source one to one: add `fields.{key} = \"keep\"` \
                     (or a hash or tokenize rule) to [policy]"
                ),
            ));
        }
    }

    let output = policy.output_fields();
    let output: std::collections::HashSet<&String> = output.iter().collect();
    if let Some(fields) = sink.fields() {
        for field in fields {
            if !output.contains(field) {
                let why = match policy.rule(field).map(|r| &r.action) {
                    Some(Action::Drop) => "the policy drops it",
                    _ => "the policy does not name it, so it never leaves the source",
                };
                return Err(src.error_at(
                    src.span_of(&["sink", "fields"]),
                    Some("sink.fields".into()),
                    format!("the sink would write `{field}`, but {why}"),
                ));
            }
        }
    }
    // Retention ages rows by a field the sink writes, for a duration that parses.
    if let Some((retain, by)) = sink.retention() {
        if let Err(e) = crate::duration::parse(retain, crate::duration::Unit::Days) {
            return Err(src.error_at(
                src.span_of(&["sink", "retain"]),
                Some("sink.retain".into()),
                format!("{e}; give a duration such as \"400d\""),
            ));
        }
        if !output.contains(&by.to_string()) {
            return Err(src.error_at(
                src.span_of(&["sink", "retain_by"]),
                Some("sink.retain_by".into()),
                format!(
                    "`{by}` is not a field the sink writes; name a timestamp field the policy \
                     keeps (`fields.{by} = {{ type = \"timestamp\" }}`)"
                ),
            ));
        }
    }
    for (table, problems) in [("source", source.problems()), ("sink", sink.problems())] {
        if let Some(p) = problems.into_iter().next() {
            return Err(src.error_at(
                src.span_of(&[table, p.key]),
                Some(format!("{table}.{}", p.key)),
                p.message,
            ));
        }
    }

    source.resolve_paths(base);
    sink.resolve_paths(base);
    // Before anything is read: no path into the state directory, and no sink over a special
    // file.
    for (table, what, file) in [
        ("source", "the source's file", source.file()),
        ("sink", "the sink's file", sink.file()),
    ] {
        if let Some(file) = file
            && let Err(message) = protected.check(file, what)
        {
            return Err(src.error_at(
                src.span_of(&[table, "path"]),
                Some(format!("{table}.path")),
                message,
            ));
        }
    }
    let same_file = match (source.file(), sink.file()) {
        (Some(a), Some(b)) => paths::resolve(a) == paths::resolve(b),
        _ => false,
    };
    if same_file || source.location() == sink.location() {
        return Err(src.error_at(
            src.span_of(&["sink", "path"]),
            Some("sink.path".into()),
            "is the source's own file; write the results somewhere else",
        ));
    }
    if let Some(file) = sink.file()
        && let Err(e) = hushflow_connectors::check_target(file)
    {
        return Err(src.error_at(
            src.span_of(&["sink", "path"]),
            Some("sink.path".into()),
            e.to_string(),
        ));
    }
    let suppression_file = policy.suppression().map(|s| base.join(&s.file));
    if let Some(file) = &suppression_file
        && let Err(message) = protected.check(file, "the suppression list")
    {
        return Err(src.error_at(
            src.span_of(&["policy", "suppression", "file"]),
            Some("policy.suppression.file".into()),
            message,
        ));
    }

    let mut warnings = Vec::new();
    let source_fields = source.peek_fields().map_err(|e| {
        src.error_at(
            src.span_of(&["source", "path"]),
            Some("source.path".into()),
            e.to_string(),
        )
    })?;
    for (table, connection) in [("source", source.connection()), ("sink", sink.connection())] {
        let Some(connection) = connection else {
            continue;
        };
        let main = (connection.key(), connection.reference(), connection.holds());
        let more = connection
            .more_references()
            .into_iter()
            .map(|(key, reference)| (key, reference, "a secret"));
        for (key, reference, holds) in std::iter::once(main).chain(more) {
            if !secrets.is_reference(reference) {
                return Err(src.error_at(
                    src.span_of(&[table, key]),
                    Some(format!("{table}.{key}")),
                    format!(
                        "must be a secret reference (env:NAME, file:PATH or keyring:NAME) that \
                         holds {holds}, never the value itself"
                    ),
                ));
            }
        }
    }
    if source.incremental() && pipeline.staging == Some(true) {
        return Err(src.error_at(
            src.span_of(&["pipeline", "staging"]),
            Some("pipeline.staging".into()),
            "is not supported with an incremental `cursor` source yet; remove one of them",
        ));
    }
    // A run would stop at once: an error now, so that `validate` can gate a deployment.
    if let Some(fields) = &source_fields {
        let fields: std::collections::HashSet<&String> = fields.iter().collect();
        for name in policy.source_fields() {
            if !fields.contains(&name) {
                return Err(src.error_at(
                    src.span_of(&["policy"]),
                    Some(format!("policy.fields.{name}")),
                    format!(
                        "reads `{name}`, which the header of {} does not have; fix the field \
                         name or the file",
                        source.location().display()
                    ),
                ));
            }
        }
    }
    for (name, rule) in policy.rules() {
        if let Action::MatchHash(_) = rule.action {
            warnings.push(format!(
                "`{name}` is an unkeyed SHA-256: anyone can reverse it by hashing guesses (a list of \
                 emails or phone numbers); send it only to an ad platform's matching API, and use \
                 `hash` (keyed HMAC) everywhere else"
            ));
        }
    }
    let on_withdrawal = match &pipeline.on_withdrawal {
        Some(w) if !sink.keeps_rows() && *w.get_ref() != Withdrawal::Delete => {
            return Err(src.error_at(
                w.span(),
                Some("pipeline.on_withdrawal".into()),
                format!(
                    "a {} sink writes its file anew each run, so records withdrawn since are \
                     simply left out of it; `{}` needs a table sink (sqlite or postgres)",
                    sink.kind(),
                    w.get_ref().as_str()
                ),
            ));
        }
        Some(w)
            if sink.keeps_rows() && !sink.withdraws_rows() && *w.get_ref() != Withdrawal::Keep =>
        {
            return Err(src.error_at(
                w.span(),
                Some("pipeline.on_withdrawal".into()),
                cannot_withdraw(sink.kind()),
            ));
        }
        Some(w) => *w.get_ref(),
        // The default promises deletion: a sink that cannot delete must be told to keep.
        None if sink.keeps_rows()
            && !sink.withdraws_rows()
            && (policy.consent().is_some() || policy.suppression().is_some()) =>
        {
            return Err(src.error_at(
                src.span_of(&["sink", "type"]),
                Some("pipeline.on_withdrawal".into()),
                cannot_withdraw(sink.kind()),
            ));
        }
        None => Withdrawal::Delete,
    };
    if let Some(file) = &suppression_file
        && !file.is_file()
    {
        return Err(src.error_at(
            src.span_of(&["policy", "suppression", "file"]),
            Some("policy.suppression.file".into()),
            format!("{} does not exist; create it (one email or HMAC per line) or remove [policy.suppression]", file.display()),
        ));
    }

    Ok(Plan {
        file: file.to_path_buf(),
        name: name.clone(),
        key,
        batch_size,
        workers,
        on_error: pipeline.on_error,
        on_withdrawal,
        // File sources re-read cheaply, so they stage only when asked to.
        staging: pipeline.staging.unwrap_or(false),
        retention: retention(&src, pipeline)?,
        source,
        fingerprint: policy.fingerprint(),
        policy,
        sink,
        source_fields,
        suppression_file,
        warnings,
        protected: protected.clone(),
        scope,
        text,
    })
}

impl Plan {
    /// Points the sink at another file (a replay writes beside the pipeline's output), checked
    /// as validation checks the sink's own: not in the state directory, not a special file.
    pub fn relocate_sink(&mut self, to: &Path) -> Result<(), String> {
        self.protected.check(to, "the output file")?;
        hushflow_connectors::check_target(to).map_err(|e| e.to_string())?;
        self.sink.relocate(to);
        Ok(())
    }

    /// Resolves every key the policy needs. A missing reference is an error at its line.
    /// Keyring keys are raw bytes with the keyring's id; `env:` and `file:` keys hold base64 and
    /// their id is a fingerprint of the material, so tokens name the key without revealing it.
    pub fn resolve_keys(
        &self,
        resolver: &SecretResolver<'_>,
        keyring: &Keyring,
    ) -> Result<KeyMaterial, SpecError> {
        let src = SpecSource {
            file: &self.file,
            text: &self.text,
            scope: self.scope.as_ref(),
        };
        let mut keys = KeyMaterial::new();
        let uses = self
            .policy
            .rules()
            .iter()
            .filter_map(|(field, rule)| {
                rule.key_reference()
                    .map(|k| (vec!["policy", "fields", field.as_str(), "key"], k))
            })
            .chain(
                self.policy
                    .suppression()
                    .and_then(|s| s.key.as_deref())
                    .map(|k| (vec!["policy", "suppression", "key"], k)),
            );
        for (path, reference) in uses {
            if keys.contains_key(reference) {
                continue;
            }
            let at = || src.span_of(&path);
            let key_path = path.join(".");
            let fail = |message: String| src.error_at(at(), Some(key_path.clone()), message);
            // Like every path in a pipeline, a secret file is relative to the pipeline file.
            let parsed = match resolver.parse(reference) {
                Ok(r) => r.relative_to(self.file.parent().unwrap_or(Path::new(""))),
                Err(e) => return Err(fail(e.to_string())),
            };
            let key = resolve_key(&parsed, resolver, keyring).map_err(fail)?;
            keys.insert(reference.to_string(), key);
        }
        Ok(keys)
    }

    /// Every secret reference a run of this plan resolves, once each, in the order it resolves
    /// them, with the key that holds it (`policy.fields.email.key`, `source.url`): what
    /// `hushflow check` reports on. A `file:` reference is relative to the pipeline file
    /// (see [`SecretRef::relative_to`]).
    pub fn secret_references(&self) -> Vec<(String, String)> {
        let keys = self
            .policy
            .rules()
            .iter()
            .filter_map(|(field, rule)| {
                rule.key_reference()
                    .map(|k| (format!("policy.fields.{field}.key"), k.to_string()))
            })
            .chain(
                self.policy
                    .suppression()
                    .and_then(|s| s.key.as_deref())
                    .map(|k| ("policy.suppression.key".to_string(), k.to_string())),
            );
        let connections = [
            ("source.url", self.source.connection()),
            ("sink.url", self.sink.connection()),
        ]
        .into_iter()
        .filter_map(|(at, c)| c.map(|c| (at.to_string(), c.reference().to_string())));
        let mut out: Vec<(String, String)> = Vec::new();
        for (at, reference) in keys.chain(connections) {
            if !out.iter().any(|(_, r)| *r == reference) {
                out.push((at, reference));
            }
        }
        out
    }

    /// Whether the file uses `{{ … }}` templates, which only a scheduled or triggered run
    /// fills in.
    pub fn has_templates(&self) -> bool {
        self.text.contains("{{")
    }

    /// Whether the source reads incrementally (after a committed position).
    pub fn incremental(&self) -> bool {
        self.source.incremental()
    }

    /// The value types of typed output fields, for the columns a database sink creates and
    /// checks: a field's declared `type`, a generalized year (`integer`), the consent field
    /// kept (`boolean`); every other output (hashes, tokens, masks, kept text) is untyped.
    pub fn column_types(&self) -> std::collections::HashMap<String, String> {
        self.policy
            .output_types()
            .into_iter()
            .map(|(name, t)| (name, t.as_str().to_string()))
            .collect()
    }

    /// Resolves the connection URLs of database sources and sinks, registers their passwords
    /// with the redactor, and checks their TLS settings; returns them by reference, with what
    /// validate should warn about.
    pub fn resolve_connections(
        &self,
        resolver: &SecretResolver<'_>,
    ) -> Result<(Connections, Vec<String>), SpecError> {
        let src = SpecSource {
            file: &self.file,
            text: &self.text,
            scope: self.scope.as_ref(),
        };
        let base = self.file.parent().unwrap_or(Path::new(""));
        let mut connections = Connections::with_redactor(resolver.redactor().clone());
        let mut warnings = Vec::new();
        let ends = [
            ("source", self.source.connection()),
            ("sink", self.sink.connection()),
        ];
        for (table, connection) in ends {
            let Some(connection) = connection else {
                continue;
            };
            let reference = connection.reference();
            let key = connection.key();
            let fail = |message: String| {
                src.error_at(
                    src.span_of(&[table, key]),
                    Some(format!("{table}.{key}")),
                    message,
                )
            };
            let parsed = match resolver.parse(reference) {
                Ok(r) => r.relative_to(base),
                Err(e) => return Err(fail(e.to_string())),
            };
            let value = resolver.resolve(&parsed).map_err(|e| fail(e.to_string()))?;
            let text = value
                .expose_str()
                .map_err(|_| fail("the URL is not UTF-8".into()))?
                .trim()
                .to_string();
            // The resolver masked the URL and, on its own, its password.
            warnings.extend(connection.check_url(&text, base).map_err(fail)?);
            connections.insert(reference.to_string(), value);
            // The rest of the connection's secrets (an OAuth client secret, a refresh token):
            // resolved, and so registered with the redactor, here like the main one.
            for (key, reference) in connection.more_references() {
                let fail = |message: String| {
                    src.error_at(
                        src.span_of(&[table, key]),
                        Some(format!("{table}.{key}")),
                        message,
                    )
                };
                let parsed = match resolver.parse(reference) {
                    Ok(r) => r.relative_to(base),
                    Err(e) => return Err(fail(e.to_string())),
                };
                let value = resolver.resolve(&parsed).map_err(|e| fail(e.to_string()))?;
                connections.insert(reference.to_string(), value);
            }
        }
        Ok((connections, warnings))
    }

    /// The keys (secret references) of `tokenize` rules with `per_subject = true`, once each.
    pub fn per_subject_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for (_, rule) in self.policy.rules() {
            if let hushflow_policy::Action::Tokenize(t) = &rule.action
                && t.per_subject
                && !keys.contains(&t.key.as_str())
            {
                keys.push(&t.key);
            }
        }
        keys
    }

    /// The fields the source must read: the policy's, in policy order.
    pub fn source_fields_needed(&self) -> Vec<String> {
        self.policy.source_fields()
    }
}

fn retention(
    src: &SpecSource<'_>,
    pipeline: &pipeline::PipelineSection,
) -> Result<std::time::Duration, SpecError> {
    /// Ten years: a longer retention is a typo (hours meant as days, say).
    const LONGEST: std::time::Duration = std::time::Duration::from_secs(3650 * 86_400);
    match &pipeline.retention {
        None => Ok(std::time::Duration::ZERO),
        Some(r) if pipeline.staging != Some(true) => Err(src.error_at(
            r.span(),
            Some("pipeline.retention".into()),
            "keeps staged files, but this pipeline does not stage: add `staging = true` or remove it",
        )),
        Some(r) if r.get_ref().0 > LONGEST => Err(src.error_at(
            r.span(),
            Some("pipeline.retention".into()),
            "is at most 3650 days",
        )),
        Some(r) => Ok(r.get_ref().0),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pipeline  {} (key `{}`)", self.name, self.key)?;
        writeln!(f, "policy    sha256:{}", &self.fingerprint)?;
        writeln!(
            f,
            "source    {} {}",
            self.source.kind(),
            self.source.location().display()
        )?;
        // Names that look like values are never shown (the source refuses them already).
        let shown = |n: &str| hushflow_connectors::name_looks_like_data(n).is_none();
        let width = self
            .policy
            .rules()
            .iter()
            .map(|(n, _)| n.len())
            .chain(
                self.source_fields
                    .iter()
                    .flatten()
                    .filter(|n| shown(n))
                    .map(String::len),
            )
            .max()
            .unwrap_or(0);
        for (name, rule) in self.policy.rules() {
            writeln!(f, "  {name:<width$}  {}", rule.describe())?;
        }
        match &self.source_fields {
            Some(fields) => {
                let read = self.policy.source_fields();
                let read: std::collections::HashSet<&String> = read.iter().collect();
                let dropped: Vec<&String> = fields.iter().filter(|n| !read.contains(n)).collect();
                for name in dropped.iter().filter(|n| shown(n)) {
                    writeln!(f, "  {name:<width$}  dropped (not in the policy)")?;
                }
                let hidden = dropped.iter().filter(|n| !shown(n)).count();
                if hidden > 0 {
                    writeln!(
                        f,
                        "  {:<width$}  dropped (not in the policy; {hidden} name(s) not shown)",
                        "(others)"
                    )?;
                }
            }
            None => writeln!(
                f,
                "  {:<width$}  dropped (not in the policy)",
                "(any other)"
            )?,
        }
        write!(
            f,
            "sink      {} {}",
            self.sink.kind(),
            self.sink.location().display()
        )?;
        if let Some(more) = self.sink.describe(&self.key) {
            write!(f, " {more}")?;
        }
        writeln!(f)?;
        if let Some(fields) = self.sink.fields() {
            writeln!(f, "  writes  {}", fields.join(", "))?;
        }
        if let Some(c) = self.policy.consent() {
            writeln!(
                f,
                "filter    consent: only records whose `{}` is an explicit yes",
                c.field
            )?;
        }
        if let (Some(s), Some(file)) = (self.policy.suppression(), &self.suppression_file) {
            writeln!(
                f,
                "filter    suppression: `{}` matched against {}",
                s.field,
                file.display()
            )?;
        }
        if self.policy.consent().is_some() || self.policy.suppression().is_some() {
            let what = match (self.sink.keeps_rows(), self.on_withdrawal) {
                (false, _) => {
                    "are left out of the file, which each run writes anew; copies of \
                               earlier files are not touched"
                }
                (true, Withdrawal::Delete) => {
                    "have their rows deleted (on_withdrawal = \"delete\")"
                }
                (true, Withdrawal::Tombstone) => {
                    "keep their key, every other column nulled (on_withdrawal = \"tombstone\")"
                }
                (true, Withdrawal::Keep) => {
                    "keep the rows already written (on_withdrawal = \"keep\")"
                }
            };
            writeln!(
                f,
                "withdraw  records that lose consent or are suppressed {what}"
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Resolves one key reference to its id and material. Keyring keys are raw bytes with the
/// keyring's id; `env:` and `file:` keys hold base64 and their id is a fingerprint of the
/// material, so tokens name the key without revealing it. The decoded material is registered
/// with the redactor like the text it came from.
pub fn resolve_key(
    reference: &SecretRef,
    resolver: &SecretResolver<'_>,
    keyring: &Keyring,
) -> Result<ResolvedKey, String> {
    let value = resolver.resolve(reference).map_err(|e| e.to_string())?;
    if let Some(name) = reference.as_keyring() {
        let (info, _) = keyring.get(name).map_err(|e| e.to_string())?;
        if info.purpose == Some(hushflow_crypto::Purpose::Credential) {
            return Err(format!(
                "{reference} is a credential (imported with `hushflow keys import`), not a key: \
                 make a key with `hushflow keys create NAME`"
            ));
        }
        return Ok(ResolvedKey {
            id: info.id,
            material: value,
        });
    }
    let material = decode_key(&value).ok_or_else(|| {
        format!(
            "{reference} must hold base64 key material of at least {MIN_KEY_BYTES} bytes \
             (`hushflow keys export NAME` prints one; or `head -c 32 /dev/urandom | base64`)"
        )
    })?;
    resolver.redactor().register(&material);
    Ok(ResolvedKey {
        id: hushflow_crypto::fingerprint_key_id(&material),
        material,
    })
}

/// Base64 (standard alphabet, padding optional) of at least [`MIN_KEY_BYTES`] bytes.
fn decode_key(value: &SecretValue) -> Option<SecretValue> {
    let text = value.expose_str().ok()?.trim();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(text).ok()?;
    (bytes.len() >= MIN_KEY_BYTES).then(|| SecretValue::new(bytes))
}

/// Why a pipeline with a consent or suppression filter cannot sync into a sink that keeps rows
/// but cannot delete or null them.
fn cannot_withdraw(kind: &str) -> String {
    format!(
        "a {kind} sink cannot yet delete or null the records of people who withdraw consent or \
         are suppressed after an earlier sync, so they would stay in it; set \
         `on_withdrawal = \"keep\"` in [pipeline] to accept that (and remove them there by \
         other means), or sync into a table sink (sqlite or postgres), which can"
    )
}
