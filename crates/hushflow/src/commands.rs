//! One function per sub-command. Exit codes: 0 success, 1 failure, 2 invalid input (a pipeline
//! that does not validate, bad arguments), 3 partial success (records quarantined).

use crate::cli::{AuditCommand, Cli, Command, KeysCommand, SampleCommand, SampleFormat};
use crate::output::Output;
use hushflow_crypto::{Keyring, Tokenizer};
use hushflow_engine::audit::{AuditLog, NewRecord, Verification};
use hushflow_engine::{KeyMaterial, Outcome, Plan, RunContext, StateDir, os_user};
use hushflow_secrets::{SecretRef, SecretResolver};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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

pub fn dispatch(cli: Cli, out: &Output) -> Result<Exit, Failure> {
    match cli.command {
        Command::Sample(SampleCommand::Contacts {
            rows,
            seed,
            format,
            out: path,
        }) => sample(out, rows, seed, format, &path),
        Command::Validate { pipeline } => {
            let state = open_state(&cli.state_dir)?;
            validate(out, &state, &pipeline)
        }
        Command::Run { pipeline, workers } => {
            let state = open_state(&cli.state_dir)?;
            run(out, &state, &pipeline, workers.map(usize::from))
        }
        Command::Keys(cmd) => {
            let state = open_state(&cli.state_dir)?;
            keys(out, &state, cmd)
        }
        Command::Audit(cmd) => {
            let state = open_state(&cli.state_dir)?;
            audit(out, &state, cmd)
        }
        Command::Detokenize { key, tokens } => {
            let state = open_state(&cli.state_dir)?;
            detokenize(out, &state, &key, tokens)
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

fn sample(
    out: &Output,
    rows: u64,
    seed: u64,
    format: SampleFormat,
    path: &Path,
) -> Result<Exit, Failure> {
    let started = Instant::now();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| failure(format!("{}: {e}", parent.display())))?;
    }
    let file =
        std::fs::File::create(path).map_err(|e| failure(format!("{}: {e}", path.display())))?;
    let opts = hushflow_sample::SampleOptions {
        rows,
        seed,
        format: match format {
            SampleFormat::Csv => hushflow_sample::Format::Csv,
            SampleFormat::Jsonl => hushflow_sample::Format::Jsonl,
        },
    };
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let written = hushflow_sample::write_contacts(&opts, &mut writer)
        .and_then(|n| writer.flush().map(|_| n))
        .map_err(|e| failure(format!("{}: {e}", path.display())))?;
    out.line(format!(
        "wrote {written} synthetic contacts to {} in {:.2}s",
        path.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(Exit::Success)
}

/// Loads and checks a pipeline, then resolves its keys: the shared first half of validate and run.
fn plan_with_keys(
    out: &Output,
    state: &StateDir,
    pipeline: &Path,
) -> Result<(Plan, KeyMaterial), Failure> {
    let plan = hushflow_engine::plan::load(pipeline).map_err(invalid)?;
    let keyring = Keyring::open(state.root()).map_err(failure)?;
    let resolver = SecretResolver::new(out.redactor.clone(), Some(&keyring));
    let keys = plan.resolve_keys(&resolver, &keyring).map_err(invalid)?;
    Ok((plan, keys))
}

fn validate(out: &Output, state: &StateDir, pipeline: &Path) -> Result<Exit, Failure> {
    let (plan, _keys) = plan_with_keys(out, state, pipeline)?;
    out.line(plan.to_string().trim_end());
    out.line(format!("{}: valid", pipeline.display()));
    Ok(Exit::Success)
}

fn run(
    out: &Output,
    state: &StateDir,
    pipeline: &Path,
    workers: Option<usize>,
) -> Result<Exit, Failure> {
    let (mut plan, keys) = plan_with_keys(out, state, pipeline)?;
    if let Some(n) = workers {
        plan.workers = n;
    }
    for w in &plan.warnings {
        out.note(format!("warning: {w}"));
    }
    let bar = progress_bar();
    let progress = |read: u64| bar.set_position(read);
    let ctx = RunContext {
        state,
        actor: os_user(),
        progress: &progress,
    };
    let report = hushflow_engine::run(&plan, &keys, &ctx).map_err(failure)?;
    bar.finish_and_clear();

    let c = &report.counts;
    out.line(format!(
        "{} {}: read {}, written {}, filtered {}, quarantined {} in {:.2}s ({:.0} records/s)",
        plan.name,
        report.outcome.as_str(),
        c.read,
        c.written,
        c.filtered,
        c.quarantined,
        report.elapsed.as_secs_f64(),
        report.records_per_second(),
    ));
    if let Some(q) = &report.quarantine {
        let reasons: Vec<String> = report
            .reasons
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.line(format!(
            "quarantine: {} ({})",
            q.display(),
            reasons.join(", ")
        ));
    }
    match (&report.error, report.outcome) {
        (Some(e), _) => Err(failure(format!("run {} failed: {e}", report.run_id))),
        (None, Outcome::Partial) => {
            out.line(format!("results: {}", report.sink.display()));
            Ok(Exit::Partial)
        }
        (None, _) => {
            out.line(format!("results: {}", report.sink.display()));
            Ok(Exit::Success)
        }
    }
}

/// A counter on a terminal, nothing in a pipe or a log file.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} records read ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(125));
    bar
}

/// Records a privileged action in the audit log: key operations, detokenization.
fn audit_action(
    state: &StateDir,
    action: &str,
    detail: String,
    counts: BTreeMap<String, u64>,
    outcome: &str,
) -> Result<(), Failure> {
    let mut audit = AuditLog::open(state.root()).map_err(failure)?;
    audit
        .append(NewRecord {
            actor: os_user(),
            action: action.into(),
            pipeline: None,
            policy_fingerprint: None,
            counts,
            outcome: outcome.into(),
            detail: Some(detail),
        })
        .map_err(failure)?;
    Ok(())
}

fn audit_key_operation(state: &StateDir, action: &str, detail: String) -> Result<(), Failure> {
    audit_action(state, action, detail, BTreeMap::new(), "ok")
}

/// All or nothing: a single token that does not open prints no plaintext at all, so a caller
/// never pairs the wrong plaintext with a token.
fn detokenize(
    out: &Output,
    state: &StateDir,
    key: &str,
    tokens: Vec<String>,
) -> Result<Exit, Failure> {
    let reference = SecretRef::parse(key).map_err(invalid)?;
    let keyring = Keyring::open(state.root()).map_err(failure)?;
    let resolver = SecretResolver::new(out.redactor.clone(), Some(&keyring));
    let resolved =
        hushflow_engine::plan::resolve_key(&reference, &resolver, &keyring).map_err(invalid)?;
    let tokenizer = Tokenizer::new(&resolved.id, &resolved.material).map_err(invalid)?;
    let tokens = if tokens.is_empty() {
        std::io::stdin()
            .lines()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failure(format!("reading tokens from stdin: {e}")))?
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .collect()
    } else {
        tokens
    };
    let mut plaintexts = Vec::with_capacity(tokens.len());
    let mut failed = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        match tokenizer.detokenize(token) {
            Ok(p) => plaintexts.push(p),
            // Name the token by position: the token itself is a pseudonym of personal data.
            Err(e) => failed.push(format!("token {}: {e}", n + 1)),
        }
    }
    let counts = BTreeMap::from([
        ("tokens".to_string(), tokens.len() as u64),
        ("failed".to_string(), failed.len() as u64),
    ]);
    let outcome = if failed.is_empty() { "ok" } else { "failure" };
    audit_action(
        state,
        "detokenize",
        format!("key {reference}"),
        counts,
        outcome,
    )?;
    if !failed.is_empty() {
        return Err(failure(format!("nothing printed: {}", failed.join("; "))));
    }
    for p in plaintexts {
        out.line(String::from_utf8_lossy(&p));
    }
    Ok(Exit::Success)
}

fn keys(out: &Output, state: &StateDir, cmd: KeysCommand) -> Result<Exit, Failure> {
    let mut keyring = Keyring::open(state.root()).map_err(failure)?;
    match cmd {
        KeysCommand::Create { name, if_missing } => {
            if if_missing && keyring.contains(&name) {
                out.line(format!("key {name} exists; left as it is"));
                return Ok(Exit::Success);
            }
            let info = keyring.create(&name).map_err(invalid)?;
            audit_key_operation(
                state,
                "keys.create",
                format!("key {} id {}", info.name, info.id),
            )?;
            out.line(format!("created key {} (id {})", info.name, info.id));
        }
        KeysCommand::Export { name } => {
            let (info, material) = keyring.get(&name).map_err(invalid)?;
            audit_key_operation(
                state,
                "keys.export",
                format!("key {} id {}", info.name, info.id),
            )?;
            out.note(format!(
                "warning: this is the secret key {name}; whoever holds it can compute and reverse its pseudonyms"
            ));
            // The one place key material is printed, on purpose: not through `out`, whose redactor
            // would rightly mask it if it were registered.
            use base64::Engine as _;
            println!(
                "{}",
                base64::engine::general_purpose::STANDARD.encode(material.expose())
            );
        }
        KeysCommand::List => {
            let keys = keyring.list();
            audit_key_operation(state, "keys.list", format!("{} keys", keys.len()))?;
            if keys.is_empty() {
                out.line("no keys; create one with `hushflow keys create NAME`");
            }
            for k in keys {
                out.line(format!("{:<24} {}  {}", k.name, k.id, k.created_at));
            }
        }
    }
    Ok(Exit::Success)
}

fn audit(out: &Output, state: &StateDir, cmd: AuditCommand) -> Result<Exit, Failure> {
    let audit = AuditLog::open(state.root()).map_err(failure)?;
    match cmd {
        AuditCommand::List { json } => {
            for r in audit.list().map_err(failure)? {
                if json {
                    out.line(serde_json::to_string(&r).map_err(failure)?);
                    continue;
                }
                let counts: Vec<String> =
                    r.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.line(format!(
                    "{:>5}  {}  {:<10} {:<12} {:<24} {:<8} {}{}",
                    r.seq,
                    r.time,
                    r.actor,
                    r.action,
                    r.pipeline.as_deref().unwrap_or("-"),
                    r.outcome,
                    counts.join(" "),
                    r.detail
                        .as_deref()
                        .map(|d| format!("  {d}"))
                        .unwrap_or_default(),
                ));
            }
            Ok(Exit::Success)
        }
        AuditCommand::Verify => match audit.verify().map_err(failure)? {
            Verification::Intact { records, head } => {
                out.line(format!("audit log intact: {records} records, head {head}"));
                Ok(Exit::Success)
            }
            Verification::Broken { seq, problem } => Err(failure(format!(
                "audit log broken at record {seq}: {problem}"
            ))),
        },
    }
}
