//! `hushflow schema pipeline`: the pipeline file's JSON Schema for editors. The committed
//! `docs/pipeline.schema.json` is what the binary prints (so it cannot drift from the config
//! types), and the repository's example pipelines validate against it with an independent
//! implementation (Python's `jsonschema`), while files with an unknown key or a wrong value do
//! not.

use crate::common::*;
use std::ffi::OsStr;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_committed_schema_is_what_the_binary_prints_and_the_examples_validate() {
    let ws = Workspace::new();
    let printed = ws.ok(&["schema", "pipeline"], 0).stdout;
    let committed = std::fs::read_to_string(repo().join("docs/pipeline.schema.json")).unwrap();
    assert!(
        printed == committed,
        "docs/pipeline.schema.json is out of date: run `hushflow schema pipeline > \
         docs/pipeline.schema.json`"
    );

    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 3, "{examples:?}");
    // A pipeline using what the examples do not: every connector, typed fields, each action.
    let full = ws.write(
        "full.toml",
        r#"
[pipeline]
name = "full"
key = "id"
on_withdrawal = "tombstone"
staging = true

[source]
type = "postgres"
url = "env:CRM_DB"
table = "contacts"
cursor = "updated_at"

[policy]
fields.id = { type = "integer" }
fields.opt_in = "keep"
fields.created_at = { type = "timestamp" }
fields.email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email", gmail = true }
fields.email_match = { from = "email", match_hash = "sha256", normalize = "email" }
fields.phone = { mask = { keep_last = 4 } }
fields.contact = { from = "email", mask = "email" }
fields.name = { tokenize = "aes-siv", key = "keyring:names", per_subject = true }
fields.birth = { generalize = "year" }
fields.age = { from = "birth", generalize = { bands = [18, 30], of = "age" } }
fields.notes = { redact = ["email", "phone"] }
fields.secret = "drop"

[policy.consent]
field = "opt_in"

[policy.suppression]
file = "suppressed.txt"
field = "email"

[sink]
type = "sqlite"
path = "out.db"
table = "leads"
mode = "upsert"
"#,
    );
    let colour = ws.write(
        "colour.toml",
        "[pipeline]\nname = \"p\"\n[sink]\ntype = \"csv\"\npath = \"o.csv\"\ncolour = \"blue\"\n",
    );
    let mode = ws.write(
        "mode.toml",
        "[pipeline]\nname = \"p\"\n[sink]\ntype = \"sqlite\"\npath = \"o.db\"\ntable = \"t\"\nmode = \"upsertt\"\n",
    );
    let rule = ws.write(
        "rule.toml",
        "[pipeline]\nname = \"p\"\n[policy]\nfields.id = \"kept\"\n",
    );
    let typed = ws.write(
        "typed.toml",
        "[pipeline]\nname = \"p\"\n[policy]\nfields.id = { type = \"decimal\" }\n",
    );
    let schema = repo().join("docs/pipeline.schema.json");
    let mut args: Vec<&OsStr> = vec![schema.as_os_str(), OsStr::new("--valid")];
    args.extend(examples.iter().map(|p| p.as_os_str()));
    args.push(full.as_os_str());
    args.push(OsStr::new("--invalid"));
    args.extend([&colour, &mode, &rule, &typed].map(|p| p.as_os_str()));
    let out = run_python_check("check_schema.py", &args);
    assert!(
        out.contains(&format!("checked {}", examples.len() + 5)),
        "{out}"
    );
}
