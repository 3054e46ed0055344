//! The matrix, the document that prints it, and how grants and limits combine.

use super::*;
use crate::Actor;

#[test]
fn the_matrix_is_airflow_like_and_each_role_holds_the_lower_roles_permissions() {
    let table = matrix_markdown();
    println!("{table}");
    for p in Permission::ALL {
        for pair in Role::ALL.windows(2) {
            assert!(
                !pair[0].permits(p) || pair[1].permits(p),
                "{} holds {p} but {} does not",
                pair[0],
                pair[1]
            );
        }
    }
    use Permission::*;
    let only = |role: Role, ps: &[Permission]| {
        for p in ps {
            assert_eq!(Role::lowest_with(*p), Some(role), "{p}");
        }
    };
    only(Role::Viewer, &[ReadPipelines, ReadRuns, ReadLogs]);
    only(Role::User, &[Trigger, Pause, Clear, Backfill]);
    only(
        Role::Op,
        &[ReadQuarantine, Replay, ManagePools, ReadConnections],
    );
    only(
        Role::Admin,
        &[ManageUsers, ManageTokens, ReadKeys, ReadAudit],
    );
    for p in [Detokenize, ExportKeys, ExportQuarantine] {
        assert!(
            Role::ALL.iter().all(|r| !r.permits(p)),
            "{p} is held by no role"
        );
    }
}

#[test]
fn docs_access_md_holds_the_matrix_of_the_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/access.md"))
        .unwrap();
    assert!(
        doc.contains(&matrix_markdown()),
        "docs/access.md does not hold the permission matrix of the code; replace its table with:\n\n{}",
        matrix_markdown()
    );
}

#[test]
fn names_round_trip_through_text_and_serde() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        assert_eq!(
            serde_json::to_string(&role).unwrap(),
            format!("\"{}\"", role.as_str())
        );
    }
    assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
    assert!("root".parse::<Role>().is_err());
    for p in Permission::ALL {
        assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            format!("\"{}\"", p.as_str())
        );
    }
    assert_eq!(
        "export_keys".parse::<Permission>(),
        Ok(Permission::ExportKeys)
    );
    assert!("everything".parse::<Permission>().is_err());
    assert!(Role::Viewer < Role::User && Role::User < Role::Op && Role::Op < Role::Admin);
}

#[test]
fn limits_and_grants_combine() {
    let viewer = Principal::new(Actor::api_user("vic"), Role::Viewer);
    assert!(viewer.may(Permission::ReadRuns, Some("contacts")));
    assert!(viewer.may(Permission::ReadRuns, None));
    assert!(!viewer.may(Permission::Trigger, Some("contacts")));
    assert!(!viewer.may(Permission::ReadAudit, None));

    // An Op limited to one pipeline, who may also detokenize on it and export keys anywhere.
    let op = Principal::with_grants(
        Actor::api_user("olga"),
        Role::Op,
        vec![
            Grant::limit_to("contacts"),
            Grant::permission(Permission::Detokenize, Some("contacts".into())),
            Grant::permission(Permission::ExportKeys, None),
        ],
    );
    assert_eq!(op.pipelines, Some(vec!["contacts".to_string()]));
    assert_eq!(op.extra.len(), 2);
    assert!(op.may(Permission::Trigger, Some("contacts")));
    assert!(!op.may(Permission::Trigger, Some("leads")));
    // A listing (no pipeline) is allowed; the caller filters its items.
    assert!(op.may(Permission::ReadRuns, None));
    assert!(op.sees("contacts") && !op.sees("leads"));
    // Limits do not apply to what belongs to no pipeline.
    assert!(op.may(Permission::ManagePools, Some("leads")));
    assert!(op.may(Permission::Detokenize, Some("contacts")));
    assert!(!op.may(Permission::Detokenize, Some("leads")));
    assert!(op.may(Permission::ExportKeys, None));
    assert!(!op.may(Permission::ExportQuarantine, Some("contacts")));
    assert!(!op.may(Permission::ManageUsers, None));

    let admin = Principal::new(Actor::api_token("ci"), Role::Admin);
    assert!(
        Permission::ALL
            .iter()
            .all(|p| { admin.may(*p, Some("x")) == Role::lowest_with(*p).is_some() })
    );
}
