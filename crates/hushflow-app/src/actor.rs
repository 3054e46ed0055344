//! Who asked for an action. Every action that changes state or reveals data takes an [`Actor`],
//! and the audit log records it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What sort of principal acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorKind {
    /// A person at a terminal: the user the CLI runs as.
    OsUser,
    /// A person signed in to the HTTP API or the dashboard.
    ApiUser,
    /// A program calling the HTTP API with a token (named by the token's name, never its value).
    ApiToken,
    /// A task of an Airflow DAG (named `dag_id.task_id`).
    AirflowTask,
}

impl ActorKind {
    /// Every kind, in the order they are listed here.
    pub const ALL: [ActorKind; 4] = [
        ActorKind::OsUser,
        ActorKind::ApiUser,
        ActorKind::ApiToken,
        ActorKind::AirflowTask,
    ];

    /// The kind as the audit log writes it: `os-user`, `api-user`, `api-token` or `airflow-task`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::OsUser => "os-user",
            ActorKind::ApiUser => "api-user",
            ActorKind::ApiToken => "api-token",
            ActorKind::AirflowTask => "airflow-task",
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A principal: its kind and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// What sort of principal it is.
    pub kind: ActorKind,
    /// Who it is among its kind: a user name, a token's name (never its value), `dag_id.task_id`.
    pub name: String,
}

impl Actor {
    /// The actor `name` of `kind`.
    pub fn new(kind: ActorKind, name: impl Into<String>) -> Actor {
        Actor {
            kind,
            name: name.into(),
        }
    }

    /// The user this process runs as (`$USER`, `$LOGNAME`, else `uid:N`).
    pub fn os_user() -> Actor {
        Actor::new(ActorKind::OsUser, hushflow_state::os_user())
    }

    /// A person signed in to the HTTP API or the dashboard, by user name.
    pub fn api_user(name: impl Into<String>) -> Actor {
        Actor::new(ActorKind::ApiUser, name)
    }

    /// A program holding an API token, by the token's name (never its value).
    pub fn api_token(name: impl Into<String>) -> Actor {
        Actor::new(ActorKind::ApiToken, name)
    }

    /// An Airflow task, named `dag_id.task_id`.
    pub fn airflow_task(name: impl Into<String>) -> Actor {
        Actor::new(ActorKind::AirflowTask, name)
    }

    /// How the audit log's `actor` column records this actor: an OS user by its name alone (as
    /// every record before the app layer did), any other kind as `kind:name`
    /// (`api-user:alice`). An OS user name cannot hold a `:` (the passwd format forbids it), so
    /// the two never collide.
    pub fn audit_name(&self) -> String {
        match self.kind {
            ActorKind::OsUser => self.name.clone(),
            kind => format!("{kind}:{}", self.name),
        }
    }

    /// The actor an audit record's `actor` column names; the inverse of
    /// [`Actor::audit_name`].
    pub fn from_audit_name(text: &str) -> Actor {
        for kind in ActorKind::ALL {
            if kind == ActorKind::OsUser {
                continue;
            }
            if let Some(name) = text
                .strip_prefix(kind.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
            {
                return Actor::new(kind, name);
            }
        }
        Actor::new(ActorKind::OsUser, text)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.audit_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_users_are_recorded_by_name_alone_and_others_with_their_kind() {
        assert_eq!(Actor::new(ActorKind::OsUser, "ada").audit_name(), "ada");
        assert_eq!(Actor::api_user("ada").audit_name(), "api-user:ada");
        assert_eq!(Actor::api_token("ci").audit_name(), "api-token:ci");
        assert_eq!(
            Actor::airflow_task("nightly.load").audit_name(),
            "airflow-task:nightly.load"
        );
        for actor in [
            Actor::new(ActorKind::OsUser, "uid:1000"),
            Actor::api_user("ada"),
            Actor::api_token("ci:deploy"),
            Actor::airflow_task("nightly.load"),
        ] {
            assert_eq!(Actor::from_audit_name(&actor.audit_name()), actor);
        }
    }

    #[test]
    fn the_os_user_is_the_state_crates() {
        assert_eq!(Actor::os_user().name, hushflow_state::os_user());
        assert_eq!(Actor::os_user().kind, ActorKind::OsUser);
    }

    #[test]
    fn kinds_serialize_in_kebab_case() {
        let json = serde_json::to_string(&Actor::airflow_task("d.t")).unwrap();
        assert_eq!(json, r#"{"kind":"airflow-task","name":"d.t"}"#);
    }
}
