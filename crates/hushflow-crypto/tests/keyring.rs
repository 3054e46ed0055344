//! The keyring through its public API: files and their modes, rotation, sealing under a master
//! key, concurrent changes.

// A test may unwrap: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use hushflow_crypto::{HmacSha256, Keyring, KeyringError, MasterKey, Purpose, Sealing};
use hushflow_secrets::{KeyProvider, Redactor, SecretRef, SecretResolver, SecretValue};

fn state_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn missing_file_is_an_empty_keyring() {
    let dir = state_dir();
    let k = Keyring::open(dir.path()).unwrap();
    assert!(k.is_empty());
    assert!(k.list().is_empty());
    assert!(!k.contains("pepper"));
    assert!(!dir.path().join("keyring.json").exists());
}

#[test]
fn create_list_get_round_trip_across_reopen() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    let b = k.create("zeta.2").unwrap();
    let a = k.create("alpha").unwrap();
    let c = k.create("email-pepper").unwrap();
    for info in [&a, &b, &c] {
        assert_eq!(info.id.len(), 16);
        assert!(
            info.id
                .bytes()
                .all(|x| matches!(x, b'0'..=b'9' | b'a'..=b'f'))
        );
    }
    assert_ne!(a.id, b.id);
    let names: Vec<_> = k.list().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["alpha", "email-pepper", "zeta.2"]);
    let (_, ma) = k.get("alpha").unwrap();
    let (_, mb) = k.get("zeta.2").unwrap();
    assert_eq!(ma.len(), 32);
    assert_ne!(ma.expose(), mb.expose());

    let reopened = Keyring::open(dir.path()).unwrap();
    assert_eq!(reopened.list(), k.list());
    assert_eq!(reopened.list(), vec![a.clone(), c, b]);
    let (info, again) = reopened.get("alpha").unwrap();
    assert_eq!(info, a);
    assert_eq!(again.expose(), ma.expose());
    assert!(reopened.contains("email-pepper"));

    // The same key gives the same pseudonyms after a reopen.
    assert_eq!(
        HmacSha256::new(&ma).mac(b"ada@example.org"),
        HmacSha256::new(&again).mac(b"ada@example.org")
    );
    // No temporary files left behind.
    let mut entries: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    entries.sort();
    assert_eq!(entries, ["keyring.json", "keyring.lock"]);
}

#[test]
fn duplicate_names_are_refused() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    let first = k.create("pepper").unwrap();
    let (_, before) = k.get("pepper").unwrap();
    let e = k.create("pepper").unwrap_err();
    assert!(matches!(e, KeyringError::Exists { .. }));
    assert!(e.to_string().contains("`pepper` already exists"), "{e}");
    let mut reopened = Keyring::open(dir.path()).unwrap();
    assert!(reopened.create("pepper").is_err());
    let (info, after) = reopened.get("pepper").unwrap();
    assert_eq!(info, first);
    assert_eq!(before.expose(), after.expose());
}

#[test]
fn bad_names_are_refused() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    let long = "a".repeat(65);
    for name in [
        "",
        "Pepper",
        "-x",
        ".x",
        "a b",
        "a/b",
        "../x",
        "ключ",
        long.as_str(),
    ] {
        let e = k.create(name).unwrap_err();
        assert!(matches!(e, KeyringError::BadName { .. }), "{name}: {e}");
        assert!(e.to_string().contains("a-z, 0-9"), "{e}");
    }
    assert!(k.create(&"a".repeat(64)).is_ok());
    assert!(k.create("0").is_ok());
}

#[test]
fn missing_keys_name_the_key() {
    let dir = state_dir();
    let k = Keyring::open(dir.path()).unwrap();
    let e = k.get("nope").unwrap_err();
    assert!(matches!(e, KeyringError::NotFound { .. }));
    assert!(e.to_string().contains("no key named `nope`"), "{e}");
    let e = k.key_material("nope").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("keyring:nope: no key named `nope`"),
        "{e}"
    );
}

#[test]
fn file_is_0600_after_create() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    k.create("one").unwrap();
    let path = dir.path().join("keyring.json");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(k.path(), path);
    k.create("two").unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["keys"].as_array().unwrap().len(), 2);
    assert_eq!(json["keys"][0]["name"], "one");
    let (_, m) = k.get("one").unwrap();
    assert_eq!(json["keys"][0]["material"], STANDARD.encode(m.expose()));
}

#[test]
fn refuses_a_keyring_readable_by_others() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    k.create("pepper").unwrap();
    let path = dir.path().join("keyring.json");
    for m in [0o644, 0o640, 0o660, 0o602] {
        fs::set_permissions(&path, fs::Permissions::from_mode(m)).unwrap();
        let e = Keyring::open(dir.path()).unwrap_err();
        assert!(matches!(e, KeyringError::Permissions { .. }), "{m:o}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Keyring::open(dir.path()).unwrap().contains("pepper"));
}

#[test]
fn debug_and_errors_never_show_material() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    k.create("pepper").unwrap();
    k.create("salt").unwrap();
    let debug = format!("{k:?} {k:#?}");
    assert!(
        debug.contains("pepper") && debug.contains("salt"),
        "{debug}"
    );
    for name in ["pepper", "salt"] {
        let (info, m) = k.get(name).unwrap();
        assert!(debug.contains(&info.id));
        let m = m.expose();
        for form in [
            STANDARD.encode(m),
            STANDARD_NO_PAD.encode(m),
            URL_SAFE_NO_PAD.encode(m),
            hex::encode(m),
            hex::encode_upper(m),
            format!("{m:?}"),
        ] {
            assert!(!debug.contains(&form), "{name} material in Debug: {debug}");
        }
        let (_, value) = k.get(name).unwrap();
        assert_eq!(format!("{value:?}"), "***");
    }
}

/// A keyring file with one key; `material` is JSON (quoted for strings).
fn keyring_json(name: &str, id: &str, created_at: &str, material: &str) -> String {
    format!(
        r#"{{"version": 1, "keys": [{{"name": "{name}", "id": "{id}", "created_at": "{created_at}", "material": {material}}}]}}"#
    )
}

#[test]
fn damaged_files_are_reported_without_their_contents() {
    let dir = state_dir();
    let path = dir.path().join("keyring.json");
    let material = STANDARD.encode([7u8; 32]);
    let quoted = format!("\"{material}\"");
    let id = "0011223344556677";
    let time = "2026-01-01T00:00:00Z";
    let write = |text: &str| {
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    };
    let full = keyring_json("a", id, time, &quoted);
    let cases = [
        (keyring_json("a", id, time, "42"), "unexpected contents"),
        // serde_json and jiff would quote this string in their own messages.
        (
            keyring_json("a", id, &material, &quoted),
            "unexpected contents",
        ),
        (full[..full.len() - 3].to_string(), "not valid JSON"),
        (keyring_json("a", "0011", time, &quoted), "16 lowercase hex"),
        (
            keyring_json(
                "a",
                id,
                time,
                &format!("\"{}\"", STANDARD.encode([7u8; 16])),
            ),
            "not 32 bytes",
        ),
        (keyring_json("a", id, time, "\"not base64!\""), "not base64"),
        (
            keyring_json(&material, id, time, &quoted),
            "key number 1 has an invalid name",
        ),
        (
            r#"{"version": 3, "keys": []}"#.to_string(),
            "upgrade hushflow",
        ),
        (r#"{"keys": []}"#.to_string(), "unexpected contents"),
    ];
    for (text, expected) in cases {
        write(&text);
        let e = Keyring::open(dir.path()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(expected), "{msg}");
        assert!(!msg.contains(&material), "{msg}");
        assert!(!format!("{e:?}").contains(&material));
    }
    // A well-formed file written by hand opens.
    write(&full);
    let k = Keyring::open(dir.path()).unwrap();
    assert_eq!(k.get("a").unwrap().1.expose(), &[7u8; 32]);
}

#[test]
fn keyring_references_resolve_through_the_keyring() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    k.create("email-pepper").unwrap();
    let redactor = Redactor::new();
    let resolver = SecretResolver::new(redactor.clone(), Some(&k));
    let r: SecretRef = "keyring:email-pepper".parse().unwrap();
    let value = resolver.resolve(&r).unwrap();
    assert_eq!(value.expose(), k.get("email-pepper").unwrap().1.expose());
    // Resolved material is masked in logs in its printable forms.
    let line = format!(
        "key={} b64={}",
        hex::encode(value.expose()),
        STANDARD.encode(value.expose())
    );
    assert_eq!(redactor.scrub(&line), "key=*** b64=***");
    let e = resolver
        .resolve(&"keyring:missing".parse().unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("keyring:missing"), "{e}");
}

#[test]
fn a_failed_save_leaves_memory_and_disk_unchanged() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    k.create("kept").unwrap();
    // A non-empty directory where the keyring file was makes the final rename fail, even for
    // root (which ignores directory modes).
    let path = dir.path().join("keyring.json");
    let saved = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(path.join("x"), b"").unwrap();
    let e = k.create("lost").unwrap_err();
    assert!(matches!(e, KeyringError::Io { .. }), "{e}");
    assert!(!k.contains("lost"));
    assert!(k.contains("kept"));
    // No temporary file was left.
    let mut entries: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    entries.sort();
    assert_eq!(entries, ["keyring.json", "keyring.lock"]);
    fs::remove_dir_all(&path).unwrap();
    fs::write(&path, saved).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(Keyring::open(dir.path()).unwrap().list(), k.list());
}

fn master(byte: u8) -> MasterKey {
    MasterKey::from_base64(&SecretValue::new(STANDARD.encode([byte; 32]).into_bytes())).unwrap()
}

#[test]
fn rotation_adds_a_current_version_and_keeps_the_old_ones() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    let v1 = k.create_for("names", Some(Purpose::Tokenize)).unwrap();
    let v2 = k.rotate("names", false).unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_ne!(v1.id, v2.id);
    let k = Keyring::open(dir.path()).unwrap();
    assert_eq!(k.get("names").unwrap().0, v2);
    let versions = k.versions("names").unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].0, v1);
    assert_ne!(versions[0].1.expose(), versions[1].1.expose());
    assert_eq!(k.list().len(), 2);
    assert_eq!(k.len(), 1);
}

#[test]
fn a_hashing_key_rotates_only_when_told_that_hashes_change() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    k.create_for("pepper", Some(Purpose::Hash)).unwrap();
    k.create("unknown").unwrap();
    for name in ["pepper", "unknown"] {
        let e = k.rotate(name, false).unwrap_err();
        assert!(matches!(e, KeyringError::HashesWouldChange { .. }), "{e}");
        assert!(
            e.to_string().contains("--i-understand-hashes-change"),
            "{e}"
        );
        assert_eq!(k.get(name).unwrap().0.version, 1);
        assert_eq!(k.rotate(name, true).unwrap().version, 2);
    }
    assert!(matches!(
        k.rotate("missing", true).unwrap_err(),
        KeyringError::NotFound { .. }
    ));
}

#[test]
fn a_sealed_keyring_needs_its_master_key_and_shows_no_material() {
    let dir = state_dir();
    let path = dir.path().join("keyring.json");
    // Made plain, then sealed on purpose.
    let mut plain = Keyring::open(dir.path()).unwrap();
    let info = plain.create("pepper").unwrap();
    let material = plain.get("pepper").unwrap().1;
    let identity = plain.state_identity().unwrap().secret();
    assert!(!plain.is_sealed());

    let (sealed, sealing) = Keyring::seal(dir.path(), master(1)).unwrap();
    assert_eq!(sealing, Sealing::Sealed);
    assert!(sealed.is_sealed());
    assert_eq!(sealed.get("pepper").unwrap().0, info);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"sealed\""), "{text}");
    for secret in [
        STANDARD.encode(material.expose()),
        String::from_utf8(identity.expose().to_vec()).unwrap(),
        "pepper".to_string(),
    ] {
        assert!(!text.contains(&secret), "the sealed file shows {secret}");
    }

    let e = Keyring::open(dir.path()).unwrap_err();
    assert!(matches!(e, KeyringError::Sealed { .. }), "{e}");
    assert!(e.to_string().contains("HUSHFLOW_MASTER_KEY"), "{e}");
    let e = Keyring::open_with(dir.path(), Some(master(2))).unwrap_err();
    assert!(matches!(e, KeyringError::WrongMasterKey { .. }), "{e}");

    // Changes keep it sealed; a flipped byte of the ciphertext is caught.
    let mut again = Keyring::open_with(dir.path(), Some(master(1))).unwrap();
    again.create("names").unwrap();
    let reopened = Keyring::open_with(dir.path(), Some(master(1))).unwrap();
    assert!(reopened.contains("names") && reopened.contains("pepper"));
    assert_eq!(
        reopened.existing_identity().unwrap().secret().expose(),
        identity.expose()
    );
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let ct = json["sealed"]["ciphertext"].as_str().unwrap().to_string();
    let mut bytes = STANDARD.decode(ct).unwrap();
    bytes[5] ^= 1;
    json["sealed"]["ciphertext"] = STANDARD.encode(bytes).into();
    fs::write(&path, json.to_string()).unwrap();
    assert!(matches!(
        Keyring::open_with(dir.path(), Some(master(1))).unwrap_err(),
        KeyringError::WrongMasterKey { .. }
    ));
}

#[test]
fn a_master_key_must_be_long_base64() {
    for bad in ["", "not base64!", &STANDARD.encode([1u8; 16])] {
        assert!(MasterKey::from_base64(&SecretValue::new(bad.as_bytes().to_vec())).is_err());
    }
    let made = MasterKey::generate_base64().unwrap();
    assert!(MasterKey::from_base64(&made).is_ok());
}

/// Two keyrings open on one state directory, each creating keys: none is lost, because every
/// change is made under the lock on the file as it is on disk.
#[test]
fn concurrent_changes_lose_nothing() {
    let dir = state_dir();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let root = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut k = Keyring::open(&root).unwrap();
                for i in 0..10 {
                    k.create(&format!("k{t}-{i}")).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(Keyring::open(dir.path()).unwrap().len(), 40);
}

fn plain_keyring_with(material: [u8; 32]) -> String {
    format!(
        r#"{{"version": 2, "keys": [{{"name": "names", "version": 1, "id": "0123456789abcdef",
            "purpose": "tokenize", "created_at": "2026-01-01T00:00:00Z",
            "material": "{}"}}]}}"#,
        STANDARD.encode(material)
    )
}

fn write_private(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// A plain keyring swapped in for a sealed one is refused under the master key, and left as it
/// is: never sealed, so its chosen material never becomes a trusted key.
#[test]
fn under_a_master_key_a_plain_keyring_is_refused_not_sealed() {
    let dir = state_dir();
    let path = dir.path().join("keyring.json");
    let mut k = Keyring::open_with(dir.path(), Some(master(1))).unwrap();
    k.create_for("names", Some(Purpose::Tokenize)).unwrap();
    assert!(fs::read_to_string(&path).unwrap().contains("\"sealed\""));

    let forged = plain_keyring_with([7; 32]);
    write_private(&path, &forged);
    let e = Keyring::open_with(dir.path(), Some(master(1))).unwrap_err();
    assert!(matches!(e, KeyringError::Unsealed { .. }), "{e}");
    assert!(e.to_string().contains("hushflow keys seal"), "{e}");
    assert!(!e.to_string().contains(&STANDARD.encode([7u8; 32])), "{e}");
    assert_eq!(fs::read_to_string(&path).unwrap(), forged, "left as it is");

    // Swapped in after the keyring was opened: the next change refuses it too.
    let dir = state_dir();
    let path = dir.path().join("keyring.json");
    let mut opened = Keyring::open_with(dir.path(), Some(master(1))).unwrap();
    opened.create("first").unwrap();
    write_private(&path, &forged);
    for e in [
        opened.create("second").unwrap_err(),
        opened.rotate("first", true).unwrap_err(),
    ] {
        assert!(matches!(e, KeyringError::Unsealed { .. }), "{e}");
    }
    assert!(opened.state_identity().is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), forged);
    // Without a master key a plain keyring is the local demo keyring, as before.
    assert!(Keyring::open(dir.path()).unwrap().contains("names"));
}

#[test]
fn seal_seals_a_plain_keyring_once() {
    let dir = state_dir();
    assert!(matches!(
        Keyring::seal(dir.path(), master(1)).unwrap_err(),
        KeyringError::NothingToSeal { .. }
    ));
    let mut plain = Keyring::open(dir.path()).unwrap();
    let info = plain.create("pepper").unwrap();

    // An error from the intent step leaves the plain keyring in place.
    let e = Keyring::seal_with_intent(dir.path(), master(1), || {
        Err::<(), _>(KeyringError::SealFailed)
    })
    .unwrap_err();
    assert!(matches!(e, KeyringError::SealFailed));
    assert!(Keyring::open(dir.path()).unwrap().contains("pepper"));
    assert_eq!(temporary_files(dir.path()), Vec::<String>::new());

    let (k, sealing) = Keyring::seal(dir.path(), master(1)).unwrap();
    assert_eq!(sealing, Sealing::Sealed);
    assert_eq!(k.get("pepper").unwrap().0, info);
    let (_, sealing) = Keyring::seal(dir.path(), master(1)).unwrap();
    assert_eq!(sealing, Sealing::AlreadySealed);
    assert!(matches!(
        Keyring::seal(dir.path(), master(2)).unwrap_err(),
        KeyringError::WrongMasterKey { .. }
    ));
    assert!(matches!(
        Keyring::open(dir.path()).unwrap_err(),
        KeyringError::Sealed { .. }
    ));
    assert_eq!(
        Keyring::open_with(dir.path(), Some(master(1)))
            .unwrap()
            .get("pepper")
            .unwrap()
            .0,
        info
    );
}

fn temporary_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

/// A writer killed between writing its temporary file and renaming it leaves the file behind
/// (plain material, for a plain keyring): the next open removes it, and so does a change.
#[test]
fn temporary_files_a_killed_writer_left_are_removed_on_open() {
    let dir = state_dir();
    let mut k = Keyring::open(dir.path()).unwrap();
    k.create("pepper").unwrap();
    let left = dir.path().join(".keyring.json.0123456789abcdef.tmp");
    write_private(&left, &plain_keyring_with([9; 32]));
    let unrelated = dir.path().join("other.tmp");
    write_private(&unrelated, "keep");
    Keyring::open(dir.path()).unwrap();
    assert!(!left.exists());
    assert!(
        unrelated.exists(),
        "only the keyring's temporary files are removed"
    );

    write_private(&left, &plain_keyring_with([9; 32]));
    k.create("salt").unwrap();
    assert!(!left.exists());
    write_private(&left, "");
    assert_eq!(Keyring::remove_leftovers(dir.path()).unwrap(), 1);
    assert_eq!(Keyring::remove_leftovers(dir.path()).unwrap(), 0);
    assert_eq!(temporary_files(dir.path()), ["other.tmp"]);
}

/// An error of the intent step, or of the keyring.
#[derive(Debug, PartialEq)]
enum Step {
    Intent(&'static str),
    Keyring(String),
}

impl From<KeyringError> for Step {
    fn from(e: KeyringError) -> Step {
        Step::Keyring(e.to_string())
    }
}

/// The intent step runs once the new keyring is written (to a 0600 temporary file, sealed
/// bytes only under a master key) but before it is in place; its error creates nothing.
#[test]
fn intent_is_recorded_before_the_key_is_committed() {
    for sealed in [false, true] {
        let dir = state_dir();
        let m = || sealed.then(|| master(1));
        let mut k = Keyring::open_with(dir.path(), m()).unwrap();
        k.create("first").unwrap();
        let before = fs::read(dir.path().join("keyring.json")).unwrap();
        let info = k
            .create_with_intent("second", Some(Purpose::Tokenize), |info| {
                let now = fs::read(dir.path().join("keyring.json")).unwrap();
                assert_eq!(now, before, "committed before the intent");
                // A reader meanwhile sees the old keyring and leaves the writer's file alone.
                let on_disk = Keyring::open_with(dir.path(), m())?;
                assert!(!on_disk.contains("second"));
                let tmp = temporary_files(dir.path());
                assert_eq!(tmp.len(), 1, "{tmp:?}");
                let tmp = dir.path().join(&tmp[0]);
                assert_eq!(mode(&tmp), 0o600);
                let text = fs::read_to_string(&tmp).unwrap();
                assert_eq!(text.contains("\"sealed\""), sealed, "{text}");
                assert_eq!(text.contains("material"), !sealed, "{text}");
                assert_eq!(info.name, "second");
                Ok::<(), Step>(())
            })
            .unwrap();
        assert!(
            Keyring::open_with(dir.path(), m())
                .unwrap()
                .contains("second")
        );
        assert_eq!(k.get("second").unwrap().0, info);

        let e = k
            .create_with_intent("third", None, |_| {
                Err(Step::Intent("the audit log is full"))
            })
            .unwrap_err();
        assert_eq!(e, Step::Intent("the audit log is full"));
        let e = k
            .rotate_with_intent("second", false, |_| Err(Step::Intent("no")))
            .unwrap_err();
        assert_eq!(e, Step::Intent("no"));
        let reopened = Keyring::open_with(dir.path(), m()).unwrap();
        assert!(!reopened.contains("third") && !k.contains("third"));
        assert_eq!(reopened.versions("second").unwrap().len(), 1);
        assert!(temporary_files(dir.path()).is_empty());
    }
}

/// A credential (an OAuth refresh token) of any length is stored sealed, replaced in place
/// (version up by one, the old value gone), never rotated like a key; a key is never replaced
/// by a credential.
#[test]
fn credentials_are_replaced_in_place_and_kept_apart_from_keys() {
    let dir = state_dir();
    let no_intent = |_: &hushflow_crypto::KeyInfo| Ok::<(), KeyringError>(());
    let mut k = Keyring::open_with(dir.path(), Some(master(7))).unwrap();
    k.create("pepper").unwrap();
    let first = SecretValue::new(b"5Aep861.first-refresh-token".to_vec());
    let info = k
        .put_credential_with_intent("crm-refresh", &first, no_intent)
        .unwrap();
    assert_eq!((info.version, info.purpose), (1, Some(Purpose::Credential)));
    let long = SecretValue::new(vec![b'x'; 3000]);
    let info = k
        .put_credential_with_intent("crm-refresh", &long, no_intent)
        .unwrap();
    assert_eq!(info.version, 2);

    // Across a reopen of the sealed file: the current value only, the first one gone.
    let k2 = Keyring::open_with(dir.path(), Some(master(7))).unwrap();
    assert_eq!(
        k2.key_material("crm-refresh").unwrap().expose(),
        long.expose()
    );
    assert_eq!(k2.versions("crm-refresh").unwrap().len(), 1);
    let raw = fs::read(dir.path().join("keyring.json")).unwrap();
    assert!(
        !raw.windows(12)
            .any(|w| w == b"first-refresh"[..12].as_ref())
    );

    let mut k = k2;
    assert!(matches!(
        k.rotate("crm-refresh", true),
        Err(KeyringError::WrongKind { .. })
    ));
    assert!(matches!(
        k.put_credential_with_intent("pepper", &first, no_intent),
        Err(KeyringError::WrongKind { .. })
    ));
    assert!(matches!(
        k.put_credential_with_intent("empty", &SecretValue::new(Vec::new()), no_intent),
        Err(KeyringError::BadCredential { .. })
    ));
    // An intent that fails changes nothing.
    let refused = k.put_credential_with_intent("crm-refresh", &first, |_| {
        Err(KeyringError::BadCredential {
            name: "x".into(),
            max: 0,
        })
    });
    assert!(refused.is_err());
    let k3 = Keyring::open_with(dir.path(), Some(master(7))).unwrap();
    assert_eq!(
        k3.key_material("crm-refresh").unwrap().expose(),
        long.expose()
    );
    assert_eq!(k3.get("pepper").unwrap().1.expose().len(), 32);
}
