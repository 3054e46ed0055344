//! Pipeline files: TOML parsed into a [`PipelineSpec`], with every problem reported as
//! `file:line:column: key: what is wrong, what to do`. Messages never repeat a value from the
//! file: a value in the wrong place may be a password. Literal secrets are refused first, by
//! [`crate::secret_scan`].

use crate::duration::{Days, Seconds};
pub use hushflow_connectors::{SinkSpec, SourceSpec};
use hushflow_policy::Policy;
use hushflow_secrets::SecretProviders;
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Rows per batch unless the pipeline says otherwise: large enough to amortize per-batch work,
/// small enough that a batch of contacts stays within a few megabytes.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// A pipeline file: one sync (`[source]`, `[policy]`, `[sink]`), or a DAG of `[[task]]`s.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The `[pipeline]` table.
    pub pipeline: PipelineSection,
    /// A one-sync file's `[source]` table.
    #[serde(default)]
    pub source: Option<SourceSpec>,
    /// A one-sync file's `[policy]` table.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// A one-sync file's `[sink]` table.
    #[serde(default)]
    pub sink: Option<SinkSpec>,
    /// The `[[task]]`s of a DAG file; empty for one sync.
    #[serde(default)]
    pub task: Vec<TaskSpec>,
    /// Named concurrency limits (`crm = 2`): at most that many tasks naming the pool run at once,
    /// across every worker that shares the metadata store.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, u32>")]
    pub pools: std::collections::BTreeMap<String, Spanned<u32>>,
}

/// One `[[task]]`: a sync (source, policy, sink) or a built-in task (`type = "sql"`, `"gc"`,
/// `"retention"`, `"empty"`), with its place in the DAG and how it retries.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The task's name, unique in the file.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// `type`: `sync` (the default), `sql`, `gc`, `retention` or `empty`.
    #[serde(default, rename = "type")]
    #[schemars(with = "Option<String>")]
    pub kind: Option<Spanned<String>>,
    /// The tasks that must end before this one is decided.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Spanned<String>>,
    /// When the task runs once its upstream tasks have ended.
    #[serde(default)]
    pub trigger_rule: TriggerRule,
    /// Tries after the first that fails; the pipeline's `retries` by default.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub retries: Option<Spanned<u32>>,
    /// Delay before the first retry (`30` seconds, `"5m"`); it doubles on each further retry
    /// up to `max_retry_delay` unless `retry_exponential_backoff = false`.
    #[serde(default)]
    #[schemars(with = "Option<Seconds>")]
    pub retry_delay: Option<Spanned<Seconds>>,
    /// Whether the retry delay doubles on each further retry (default `true`).
    #[serde(default)]
    pub retry_exponential_backoff: Option<bool>,
    /// The longest retry delay (`"1h"`; a bare number counts seconds).
    #[serde(default)]
    #[schemars(with = "Option<Seconds>")]
    pub max_retry_delay: Option<Spanned<Seconds>>,
    /// A try that runs longer than this is stopped and counts as failed (`"15m"`; a bare
    /// number counts seconds).
    #[serde(default)]
    #[schemars(with = "Option<Seconds>")]
    pub timeout: Option<Spanned<Seconds>>,
    /// The task's pool (see `[pools]`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pool: Option<Spanned<String>>,
    /// A sync task's record key; the pipeline's `key` by default.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// A sync task's `[source]` table.
    #[serde(default)]
    pub source: Option<SourceSpec>,
    /// A sync task's `[policy]` table.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// A sync task's `[sink]` table.
    #[serde(default)]
    pub sink: Option<SinkSpec>,
    /// `sql` tasks: the database (a secret reference holding a postgres:// URL, or a SQLite file
    /// path) and the statements to run in one transaction.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub database: Option<Spanned<String>>,
    /// `sql` tasks: the statements to run.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sql: Option<Spanned<String>>,
}

/// When a task whose upstream tasks have all ended may run (Airflow's trigger rules).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every upstream task succeeded (the default).
    #[default]
    AllSuccess,
    /// Every upstream task ended, whatever its state.
    AllDone,
    /// At least one upstream task failed.
    OneFailed,
}

impl TriggerRule {
    /// The word used in pipeline files and the metadata store: `all_success`, `all_done`,
    /// `one_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerRule::AllSuccess => "all_success",
            TriggerRule::AllDone => "all_done",
            TriggerRule::OneFailed => "one_failed",
        }
    }
}

/// The `[pipeline]` table: the name, the record key, the schedule and the defaults for tasks.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// The pipeline's name: it names its runs, its quarantine files and its staged data.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The record key: upserts match on it and a record without one is quarantined.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// Cron (`"0 2 * * *"`) or a preset (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub schedule: Option<Spanned<String>>,
    /// The IANA time zone the schedule is read in (default UTC).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timezone: Option<Spanned<String>>,
    /// The first data interval starts at or after this date or time (RFC 3339 or `YYYY-MM-DD`,
    /// in `timezone`); default: when the scheduler first sees the pipeline.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub start_date: Option<Spanned<String>>,
    /// Create a run for every interval missed since the last one (default `false`: only the
    /// latest).
    #[serde(default)]
    pub catchup: Option<bool>,
    /// Runs of the pipeline that may be active at once.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max_active_runs: Option<Spanned<u32>>,
    /// A secret reference holding a webhook URL that is told when a task fails for good.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on_failure_webhook: Option<Spanned<String>>,
    // Defaults for every task's retries and timeout (the same keys as in a `[[task]]`).
    /// Tries after the first that fails.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub retries: Option<Spanned<u32>>,
    /// Delay before the first retry (`30` seconds, `"5m"`); it doubles on each further retry
    /// up to `max_retry_delay` unless `retry_exponential_backoff = false`.
    #[serde(default)]
    #[schemars(with = "Option<Seconds>")]
    pub retry_delay: Option<Spanned<Seconds>>,
    /// Whether the retry delay doubles on each further retry (default `true`).
    #[serde(default)]
    pub retry_exponential_backoff: Option<bool>,
    /// The longest retry delay (`"1h"`; a bare number counts seconds).
    #[serde(default)]
    #[schemars(with = "Option<Seconds>")]
    pub max_retry_delay: Option<Spanned<Seconds>>,
    /// A try that runs longer than this is stopped and counts as failed (`"15m"`; a bare
    /// number counts seconds).
    #[serde(default)]
    #[schemars(with = "Option<Seconds>")]
    pub timeout: Option<Spanned<Seconds>>,

    /// Rows per batch (default [`DEFAULT_BATCH_SIZE`]).
    #[serde(default)]
    #[schemars(with = "Option<usize>")]
    pub batch_size: Option<Spanned<usize>>,
    /// Threads that apply the policy; the default is one per core (at most 8).
    #[serde(default)]
    #[schemars(with = "Option<usize>")]
    pub workers: Option<Spanned<usize>>,
    /// What a malformed record does to the run.
    #[serde(default)]
    pub on_error: OnError,
    /// What a table sink does with rows of records withdrawn since they were written (consent
    /// no longer a yes, or now on the suppression list): `delete` (the default), `tombstone`
    /// (null every column but the key) or `keep`.
    #[serde(default)]
    #[schemars(with = "Option<hushflow_core::Withdrawal>")]
    pub on_withdrawal: Option<Spanned<hushflow_core::Withdrawal>>,
    /// Extract the whole source into encrypted staging files before loading, so that a failed
    /// or crashed run resumes without reading the source again.
    #[serde(default)]
    pub staging: Option<bool>,
    /// How long staged files are kept after the run committed (`7` days, `"12h"`; default 0:
    /// removed at once).
    #[serde(default)]
    #[schemars(with = "Option<Days>")]
    pub retention: Option<Spanned<Days>>,
}

/// What a malformed record does to a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Set the record aside in the run's quarantine file and carry on.
    #[default]
    Quarantine,
    /// Stop the run at the first malformed record.
    Fail,
}

/// A problem in a pipeline file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The pipeline file.
    pub file: PathBuf,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
    /// The dotted key concerned (`sink.password`), when there is one.
    pub key: Option<String>,
    /// What is wrong, naming no secret value.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// The text of a pipeline file, kept to turn byte offsets into lines and to find keys.
pub struct SpecSource<'a> {
    /// The pipeline file's path.
    pub file: &'a Path,
    /// The pipeline file's text.
    pub text: &'a str,
    /// Set while checking one `[[task]]`: key paths are looked up inside it and named after it.
    pub scope: Option<&'a TaskScope>,
}

/// Which `[[task]]` a check concerns: its index in the file and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskScope {
    /// The task's index among the file's `[[task]]`s, from 0.
    pub index: usize,
    /// The task's name.
    pub name: String,
}

impl<'a> SpecSource<'a> {
    /// The text of `file`, checked outside any task.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        SpecSource {
            file,
            text,
            scope: None,
        }
    }

    /// A [`SpecError`] at the byte range `span`, naming `key` (placed inside the task being checked,
    /// if any).
    pub fn error_at(
        &self,
        span: Range<usize>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> SpecError {
        let key = match (&self.scope, key) {
            (Some(scope), Some(k)) if !k.starts_with("task.") && !k.starts_with("pipeline.") => {
                Some(format!("task.{}.{k}", scope.name))
            }
            (_, key) => key,
        };
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        SpecError {
            file: self.file.to_path_buf(),
            line,
            column,
            key,
            message: message.into(),
        }
    }

    /// The span of a dotted key path in the document, for errors found after parsing; the
    /// longest prefix of the path that exists when the whole path does not.
    pub fn span_of(&self, path: &[&str]) -> Range<usize> {
        (1..=path.len())
            .rev()
            .find_map(|n| self.find_span(&path[..n]))
            .unwrap_or(0..0)
    }

    /// The span of the key at exactly this path, if the document has it.
    pub fn find_span(&self, path: &[&str]) -> Option<Range<usize>> {
        let doc = DeTable::parse(self.text).ok()?;
        let mut table = doc.get_ref();
        let index;
        let scoped: Vec<&str>;
        let path = match (&self.scope, path.first()) {
            (Some(scope), Some(first)) if *first != "pipeline" && *first != "pools" => {
                index = scope.index.to_string();
                scoped = ["task", index.as_str()]
                    .into_iter()
                    .chain(path.iter().copied())
                    .collect();
                &scoped[..]
            }
            _ => path,
        };
        let (last, parents) = path.split_last()?;
        let mut segments = parents.iter();
        while let Some(segment) = segments.next() {
            let (_, value) = table
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == *segment)?;
            match value.get_ref() {
                DeValue::Table(t) => table = t,
                // An array of tables (`[[task]]`): the next segment is the index.
                DeValue::Array(items) => {
                    let i: usize = segments.next()?.parse().ok()?;
                    match items.get(i)?.get_ref() {
                        DeValue::Table(t) => table = t,
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == *last)
            .map(|(k, _)| k.span())
    }
}

impl SpecSource<'_> {
    /// The dotted path of the innermost key whose entry covers `offset`, to name the key an
    /// error concerns.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        let doc = DeTable::parse(self.text).ok()?;
        let mut path = Vec::new();
        let mut table = doc.get_ref();
        'descend: loop {
            for (key, value) in table.iter() {
                let (k, v) = (key.span(), value.span());
                if (k.start <= offset && offset < k.end) || (v.start <= offset && offset < v.end) {
                    path.push(key.get_ref().to_string());
                    if let DeValue::Table(t) = value.get_ref() {
                        table = t;
                        continue 'descend;
                    }
                    break 'descend;
                }
            }
            break;
        }
        (!path.is_empty()).then(|| path.join("."))
    }
}

/// Reads a pipeline file's text; a file that cannot be read is an error at line 0.
pub fn read(file: &Path) -> Result<String, SpecError> {
    std::fs::read_to_string(file).map_err(|e| SpecError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        key: None,
        message: format!("cannot read the pipeline file: {e}"),
    })
}

/// Parses a pipeline file. Literal secrets are refused before anything else looks at the file:
/// a secret setting must hold a reference of a scheme registered in `secrets`.
pub fn parse(
    file: &Path,
    text: &str,
    secrets: &SecretProviders<'_>,
) -> Result<PipelineSpec, SpecError> {
    let source = SpecSource::new(file, text);
    let doc = DeTable::parse(text).map_err(|e| toml_error(&source, &e))?;
    crate::secret_scan::scan(&source, secrets, doc.get_ref())?;
    PipelineSpec::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| toml_error(&source, &e))
}

fn toml_error(source: &SpecSource<'_>, e: &toml::de::Error) -> SpecError {
    let mut span = e.span().unwrap_or(0..0);
    let mut key = source.key_at(span.start);
    // serde's tagged enums (`[source]`, `[sink]`) lose the spans inside the table, so an unknown
    // field is reported at the table; find the field itself for the line number.
    if let Some(field) = e
        .message()
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        let mut path: Vec<&str> = key
            .as_deref()
            .map(|k| k.split('.').collect())
            .unwrap_or_default();
        path.push(field);
        if let Some(found) = source.find_span(&path) {
            span = found;
            key = Some(path.join("."));
        }
    }
    // The same for a value no variant has (`mode = "upsertt"`): the key is found by its value
    // within the reported span, and the message says "value" unless that key is a `type`.
    let mut message = scrub_toml_message(e.message());
    if let Some(value) = e
        .message()
        .strip_prefix("unknown variant `")
        .and_then(|rest| rest.split('`').next())
        && let Ok(doc) = DeTable::parse(source.text)
    {
        let mut found = Vec::new();
        let mut path = Vec::new();
        values_in(doc.get_ref(), &span, value, &mut path, &mut found);
        // A `[table]` is reported at its header only: look through the whole file then.
        if found.is_empty() {
            values_in(doc.get_ref(), &(0..0), value, &mut path, &mut found);
        }
        if let [(path, at)] = found.as_slice() {
            if path.last().is_some_and(|k| k != "type") {
                message = message.replacen("unknown type", "unknown value", 1);
            }
            span = at.clone();
            key = Some(path.join("."));
        }
    }
    source.error_at(span, key, message)
}

/// Every string `value` whose span lies within `within`, with its key path. An element of an
/// array of tables (`[[task]]`) is named by its `name` when it has one, as task errors are.
fn values_in(
    table: &DeTable<'_>,
    within: &Range<usize>,
    value: &str,
    path: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, Range<usize>)>,
) {
    fn visit(
        v: &toml::Spanned<DeValue<'_>>,
        within: &Range<usize>,
        value: &str,
        path: &mut Vec<String>,
        found: &mut Vec<(Vec<String>, Range<usize>)>,
    ) {
        let at = v.span();
        // An empty span (none reported) means anywhere in the file.
        let inside = within.is_empty() || (within.start <= at.start && at.end <= within.end);
        match v.get_ref() {
            DeValue::String(s) if inside && s.as_ref() == value => {
                found.push((path.clone(), at));
            }
            DeValue::Table(t) => values_in(t, within, value, path, found),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let name = match item.get_ref() {
                        DeValue::Table(t) => t
                            .iter()
                            .find(|(k, _)| k.get_ref().as_ref() == "name")
                            .and_then(|(_, n)| match n.get_ref() {
                                DeValue::String(n) => Some(n.to_string()),
                                _ => None,
                            }),
                        _ => None,
                    };
                    path.push(name.unwrap_or_else(|| i.to_string()));
                    visit(item, within, value, path, found);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    for (k, v) in table.iter() {
        path.push(k.get_ref().to_string());
        visit(v, within, value, path, found);
        path.pop();
    }
}

/// serde and toml quote the offending value in some messages ("invalid type: string \"…\"");
/// keep the kind of value and drop the value itself.
fn scrub_toml_message(message: &str) -> String {
    let message = message.trim_end();
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let kind = rest.split([' ', ',']).next().unwrap_or("value");
            let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
            return format!("{prefix}{kind}{expected}");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
        return format!("unknown type{expected}");
    }
    message.to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A good one-sync pipeline, for tests to vary.
    pub(crate) const GOOD: &str = r#"
[pipeline]
name = "crm-export"
key = "id"

[source]
type = "csv"
path = "contacts.csv"

[policy]
fields.id = "keep"
fields.email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }

[sink]
type = "sqlite"
path = "out.db"
table = "leads"
"#;

    pub(crate) fn parse_str(text: &str) -> Result<PipelineSpec, SpecError> {
        parse(Path::new("p.toml"), text, &SecretProviders::default())
    }

    #[test]
    fn parses_a_good_pipeline() {
        let spec = parse_str(GOOD).unwrap();
        assert_eq!(spec.pipeline.name.get_ref(), "crm-export");
        assert_eq!(spec.source.unwrap().kind(), "csv");
        assert_eq!(spec.sink.unwrap().kind(), "sqlite");
        assert_eq!(spec.policy.unwrap().output_fields(), ["id", "email"]);
        assert_eq!(spec.pipeline.on_error, OnError::Quarantine);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = GOOD.replace("table = \"leads\"", "table = \"leads\"\ncolour = \"blue\"");
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
        assert_eq!(e.line, 18, "{e}");
    }

    /// A value no variant has is reported at its own key and line, in a table and in a
    /// task, and a bad `type` still says "type".
    #[test]
    fn unknown_values_name_their_key() {
        let e =
            parse_str(&GOOD.replace("table = \"leads\"", "table = \"leads\"\nmode = \"upsertt\""))
                .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sink.mode"), "{e}");
        assert_eq!(e.line, 18, "{e}");
        assert!(
            e.message
                .starts_with("unknown value, expected one of `upsert`"),
            "{e}"
        );
        assert!(!e.message.contains("upsertt"), "{e}");

        let e = parse_str(&GOOD.replace("type = \"sqlite\"", "type = \"sqlitex\"")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sink.type"), "{e}");
        assert!(e.message.starts_with("unknown type"), "{e}");

        let dag = r#"
[pipeline]
name = "d"
key = "id"

[[task]]
name = "load"
source = { type = "csv", path = "c.csv" }
policy = { fields = { id = "keep" } }
sink = { type = "sqlite", path = "o.db", table = "t", mode = "upsertt" }
"#;
        let e = parse_str(dag).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("task.load.sink.mode"), "{e}");
        assert_eq!(e.line, 10, "{e}");
    }

    #[test]
    fn type_errors_do_not_echo_values() {
        let text = GOOD.replace("name = \"crm-export\"", "name = 12345");
        let e = parse_str(&text).unwrap_err();
        assert!(!e.to_string().contains("12345"), "{e}");
        assert!(e.to_string().contains("expected"), "{e}");
        let text = GOOD.replace("type = \"sqlite\"", "type = \"oracle-canary\"");
        let e = parse_str(&text).unwrap_err();
        assert!(!e.to_string().contains("canary"), "{e}");
    }

    #[test]
    fn syntax_error_is_located() {
        let e = parse_str("[pipeline]\nname = \n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }
}
