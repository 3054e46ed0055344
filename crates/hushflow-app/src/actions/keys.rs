//! The keyring as the HTTP API and dashboard show it: names, purposes and versions, never key
//! material. (The CLI's other key commands, which create, rotate and export, are its own.)

use crate::views::KeyView;
use crate::{Actor, Result, Session};
use std::collections::BTreeMap;

/// Every key version of the keyring, oldest version of each name first. Audited as
/// `keys.list` by `actor`, as the CLI's `keys list` is.
pub fn list(session: &Session, actor: &Actor) -> Result<Vec<KeyView>> {
    let keys = session.keyring()?.list();
    session.audit(
        actor,
        "keys.list",
        format!("{} key versions", keys.len()),
        BTreeMap::new(),
        "ok",
    )?;
    Ok(keys.iter().map(KeyView::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_listed_without_material_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        let state = hushflow_state::StateDir::open(dir.path().join("state")).unwrap();
        let mut keyring = hushflow_crypto::Keyring::open_with(state.root(), None).unwrap();
        keyring
            .create_for("crm", Some(hushflow_crypto::Purpose::Tokenize))
            .unwrap();
        let session = Session::new(state, hushflow_secrets::Redactor::new());
        let keys = list(&session, &Actor::api_user("ada")).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name, "crm");
        assert_eq!(keys[0].purpose.as_deref(), Some("tokenize"));
        assert_eq!(keys[0].key_version, 1);
        let json = serde_json::to_string(&keys).unwrap();
        assert!(!json.contains("material"), "{json}");
        let audit = session.state().audit_log().unwrap().list().unwrap();
        assert_eq!(audit[0].action, "keys.list");
        assert_eq!(audit[0].actor, "api-user:ada");
    }
}
