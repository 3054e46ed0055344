//! The key lifecycle through the real binary: rotation keeps old tokens reversible, a hashing
//! key rotates only when told that hashes change, and a keyring sealed under a master key shows
//! nothing without it. Every step is in the audit log.

use crate::common::*;

const PIPELINE: &str = r#"
[pipeline]
name = "rotating"
key = "id"
[source]
type = "csv"
path = "data/c.csv"
[policy]
fields.id = "keep"
fields.first_name = { tokenize = "aes-siv", key = "keyring:names" }
[sink]
type = "csv"
path = "out/o.csv"
"#;

fn tokens(ws: &Workspace) -> Vec<String> {
    let mut r = csv::Reader::from_path(ws.path("out/o.csv")).unwrap();
    r.records().map(|row| row.unwrap()[1].to_string()).collect()
}

fn audit(ws: &Workspace) -> Vec<serde_json::Value> {
    ws.ok(&["audit", "list", "--json"], 0)
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn tokens_of_every_version_reverse_after_rotation() {
    let ws = Workspace::new();
    ws.write("data/c.csv", "id,first_name\n1,Ada\n2,Grace\n");
    ws.ok(&["keys", "create", "names", "--purpose", "tokenize"], 0);
    ws.write("p.toml", PIPELINE);
    ws.ok(&["run", "p.toml"], 0);
    let v1 = tokens(&ws);

    let r = ws.ok(&["keys", "rotate", "names"], 0);
    assert!(r.stdout.contains("now version 2"), "{}", r.stdout);
    assert!(
        r.stderr.contains("new tokens") && r.stderr.contains("join"),
        "rotating a tokenize key warns that joins on tokens split: {}",
        r.stderr
    );
    ws.ok(&["run", "p.toml"], 0);
    let v2 = tokens(&ws);
    assert_ne!(v1[0], v2[0], "the new version makes new tokens");
    let id = |t: &str| t.split('.').nth(1).unwrap().to_string();
    assert_ne!(
        id(&v1[0]),
        id(&v2[0]),
        "tokens carry their version's key id"
    );

    let r = ws.ok(
        &[
            "detokenize",
            "--key",
            "keyring:names",
            &v1[0],
            &v2[1],
            &v1[1],
        ],
        0,
    );
    assert_eq!(r.stdout, "Ada\nGrace\nGrace\n");
    let list = ws.ok(&["keys", "list"], 0);
    assert_eq!(list.stdout.matches("names").count(), 2, "{}", list.stdout);
    let rotated = audit(&ws)
        .into_iter()
        .find(|r| r["action"] == "keys.rotate")
        .unwrap();
    assert!(
        rotated["detail"].as_str().unwrap().contains("version 2"),
        "{rotated}"
    );
}

#[test]
fn a_hashing_key_rotates_only_with_the_acknowledgement_and_says_so() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.ok(&["keys", "create", "legacy"], 0);
    for name in ["pepper", "legacy"] {
        let r = ws.ok(&["keys", "rotate", name], 2);
        assert!(
            r.stderr.contains("--i-understand-hashes-change"),
            "{}",
            r.stderr
        );
    }
    ws.ok(
        &["keys", "rotate", "pepper", "--i-understand-hashes-change"],
        0,
    );
    let rotated: Vec<_> = audit(&ws)
        .into_iter()
        .filter(|r| r["action"] == "keys.rotate")
        .collect();
    assert_eq!(rotated.len(), 1, "refused rotations change nothing");
    assert!(
        rotated[0]["detail"]
            .as_str()
            .unwrap()
            .ends_with("hashes change"),
        "{}",
        rotated[0]
    );
}

#[test]
fn a_sealed_keyring_opens_only_with_its_master_key() {
    let ws = Workspace::new();
    let r = ws.ok(&["keys", "new-master-key"], 0);
    let master = r.stdout.trim().to_string();
    assert!(master.len() >= 44, "{master}");
    let env = [("HUSHFLOW_MASTER_KEY", master.as_str())];

    let r = ws.run_with(&["keys", "create", "names", "--purpose", "tokenize"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains("not sealed"), "{}", r.all());
    ws.write("data/c.csv", "id,first_name\n1,Ada\n");
    ws.write("p.toml", PIPELINE);
    let r = ws.run_with(&["run", "p.toml"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    let t = tokens(&ws);

    let keyring = std::fs::read_to_string(ws.state().join("keyring.json")).unwrap();
    assert!(keyring.contains("\"sealed\""), "{keyring}");
    for leak in ["material", "AGE-SECRET-KEY", "names", &master] {
        assert!(!keyring.contains(leak), "{leak} in the sealed keyring");
    }

    let r = ws.ok(&["detokenize", "--key", "keyring:names", &t[0]], 1);
    assert!(r.stderr.contains("set HUSHFLOW_MASTER_KEY"), "{}", r.stderr);
    let wrong = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let r = ws.run_with(&["keys", "list"], &[("HUSHFLOW_MASTER_KEY", wrong)]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("does not open with this master key"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(wrong), "the master key is never printed");
    let r = ws.run_with(&["detokenize", "--key", "keyring:names", &t[0]], &env);
    assert_eq!(r.stdout, "Ada\n", "{}", r.all());
    assert!(!r.all().contains(&master));

    // Without a master key at all, the demo keyring says what it is.
    let plain = Workspace::new();
    let r = plain.ok(&["keys", "create", "x"], 0);
    assert!(r.stderr.contains("not sealed"), "{}", r.stderr);
}

/// An unsealed keyring where a master key is given is refused, not re-sealed: otherwise whoever
/// can write the state directory could swap in a keyring with material of their choosing and
/// have the next command seal it and tokenize under it. The refusal is audited.
#[test]
fn an_unsealed_keyring_is_refused_under_a_master_key_and_the_refusal_is_audited() {
    use base64::Engine as _;
    let ws = Workspace::new();
    let master = ws
        .ok(&["keys", "new-master-key"], 0)
        .stdout
        .trim()
        .to_string();
    let env = [("HUSHFLOW_MASTER_KEY", master.as_str())];
    let r = ws.run_with(&["keys", "create", "names", "--purpose", "tokenize"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    let path = ws.state().join("keyring.json");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"sealed\"")
    );

    // The attacker's keyring: the same name, material of their choosing, not sealed.
    let chosen = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let forged = format!(
        r#"{{"version": 2, "keys": [{{"name": "names", "version": 1, "id": "0123456789abcdef",
            "purpose": "tokenize", "created_at": "2026-01-01T00:00:00Z", "material": "{chosen}"}}]}}"#
    );
    std::fs::write(&path, &forged).unwrap();
    for args in [&["keys", "list"][..], &["keys", "rotate", "names"][..]] {
        let r = ws.run_with(args, &env);
        assert_eq!(
            r.code,
            1,
            "{args:?} accepted the unsealed keyring: {}",
            r.all()
        );
        assert!(r.stderr.contains("not sealed"), "{}", r.stderr);
        assert!(r.stderr.contains("hushflow keys seal"), "{}", r.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        forged,
        "the forged keyring was not sealed (nor changed)"
    );
    ws.write("data/c.csv", "id,first_name\n1,Ada\n");
    ws.write("p.toml", PIPELINE);
    let r = ws.run_with(&["run", "p.toml"], &env);
    assert_ne!(r.code, 0, "a run used the forged key: {}", r.all());
    assert!(!ws.path("out/o.csv").exists());

    let refusals: Vec<_> = audit(&ws)
        .into_iter()
        .filter(|r| r["action"] == "keys.open")
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    for r in &refusals {
        assert_eq!(r["outcome"], "refused", "{r}");
        assert!(r["detail"].as_str().unwrap().contains("not sealed"), "{r}");
    }
    ws.ok(&["audit", "verify"], 0);
}

/// A keyring made without a master key is sealed by an explicit, audited `keys seal`, once;
/// until then a master key does not open it.
#[test]
fn keys_seal_seals_a_plain_keyring_once_and_is_audited() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "names", "--purpose", "tokenize"], 0);
    let master = ws
        .ok(&["keys", "new-master-key"], 0)
        .stdout
        .trim()
        .to_string();
    let env = [("HUSHFLOW_MASTER_KEY", master.as_str())];
    let r = ws.run_with(&["keys", "list"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("hushflow keys seal"), "{}", r.stderr);

    let r = ws.ok(&["keys", "seal"], 2);
    assert!(r.stderr.contains("master key"), "{}", r.stderr);
    let r = ws.run_with(&["keys", "seal"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("sealed"), "{}", r.stdout);
    let text = std::fs::read_to_string(ws.state().join("keyring.json")).unwrap();
    assert!(
        text.contains("\"sealed\"") && !text.contains("names"),
        "{text}"
    );
    let r = ws.run_with(&["keys", "list"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("names"), "{}", r.stdout);
    let r = ws.run_with(&["keys", "seal"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("already sealed"), "{}", r.stdout);

    let seals: Vec<_> = audit(&ws)
        .into_iter()
        .filter(|r| r["action"] == "keys.seal")
        .collect();
    assert_eq!(seals.len(), 2, "{seals:?}");
    assert_eq!(seals[0]["outcome"], "ok");

    // Sealed once, this state directory never takes an unsealed keyring again: not even
    // through `keys seal`, since the audit log shows the keyring was sealed before.
    let path = ws.state().join("keyring.json");
    std::fs::remove_file(&path).unwrap();
    ws.ok(&["keys", "create", "other"], 0);
    let before = std::fs::read(&path).unwrap();
    let r = ws.run_with(&["keys", "seal"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("was sealed before"), "{}", r.stderr);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A killed writer's temporary keyring file (plaintext, for an unsealed keyring) is removed by
/// the next command that opens the keyring, and by `hushflow gc`.
#[test]
fn leftover_temporary_keyring_files_are_removed() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "names"], 0);
    let leftover = |n: u8| {
        let p = ws.state().join(format!(".keyring.json.{n:02x}abcdef.tmp"));
        std::fs::write(&p, "{\"version\": 2, \"keys\": []}").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let a = leftover(1);
    ws.ok(&["keys", "list"], 0);
    assert!(!a.exists(), "keys list left {}", a.display());
    let b = leftover(2);
    let r = ws.ok(&["gc"], 0);
    assert!(!b.exists(), "gc left {}", b.display());
    assert!(r.stdout.contains("temporary keyring"), "{}", r.stdout);
}

/// `keys create` killed with SIGKILL at any moment: every key that made it into the keyring has
/// its audit record, and the next command leaves no temporary keyring file behind.
#[test]
fn keys_create_killed_at_random_moments_leaves_no_unaudited_key_and_no_temporary_file() {
    use std::time::{Duration, Instant};
    let ws = Workspace::new();
    ws.ok(&["audit", "verify"], 0);
    // About how long an uninterrupted create takes, so that the kills land all along it.
    let start = Instant::now();
    ws.ok(&["keys", "create", "calibration"], 0);
    let mut span = start.elapsed().as_micros().max(2_000) as u64;
    // A small deterministic LCG: the kills spread over the whole run, reproducibly.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut kills = 0;
    for i in 0..20 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_micros((seed >> 33) % span);
        let mut child = ws
            .command()
            .args(["keys", "create", &format!("k{i}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // The span follows how long a create takes now: shorter when one finished before its
        // kill, longer when one was killed, so kills keep landing all along the run.
        if child.try_wait().unwrap().is_none() {
            kills += 1;
            span = span * 9 / 8;
        } else {
            span = (span * 3 / 4).max(1_000);
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(
        kills >= 5,
        "only {kills} of 20 creates were killed while running"
    );

    // The next command (one that opens the keyring) cleans up after the killed ones.
    let list = ws.ok(&["keys", "list"], 0).stdout;
    let leftovers: Vec<_> = std::fs::read_dir(ws.state())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".keyring.json.") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    ws.ok(&["audit", "verify"], 0);
    let records = audit(&ws);
    let created: Vec<&str> = records
        .iter()
        .filter(|r| r["action"] == "keys.create")
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    let mut keys = 0;
    for line in list.lines() {
        let mut fields = line.split_whitespace();
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        keys += 1;
        assert!(
            created.contains(&format!("key {name} id {id}").as_str()),
            "key {name} (id {id}) has no audit record; records: {created:?}"
        );
    }
    assert!(keys >= 1, "{list}");
    eprintln!(
        "{kills} kills, {keys} keys, {} keys.create records",
        created.len()
    );
}
