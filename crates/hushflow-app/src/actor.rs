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
    /// A task of an Airflow DAG: `dag_id.task_id`, then its run id, try number, map index (when
    /// mapped) and the OS user it ran as ([`Actor::from_env`]).
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

/// The variable that says a process runs for an orchestrator: `airflow-task` makes
/// [`Actor::from_env`] take the actor from Airflow's `AIRFLOW_CTX_*` variables.
pub const ACTOR_ENV: &str = "HUSHFLOW_ACTOR";

/// Why the environment names no usable actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorEnvError(String);

impl fmt::Display for ActorEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ActorEnvError {}

impl Actor {
    /// The actor a process acts as, from its environment (`var` looks a variable up): the OS
    /// user, unless [`ACTOR_ENV`] is `airflow-task`. Then the Airflow task named by
    /// `AIRFLOW_CTX_DAG_ID`, `AIRFLOW_CTX_TASK_ID`, `AIRFLOW_CTX_DAG_RUN_ID`,
    /// `AIRFLOW_CTX_TRY_NUMBER` (all required) and `AIRFLOW_CTX_MAP_INDEX` (optional; `-1` is
    /// unmapped), as `dag.task run_id=R try=N [map_index=I] os_user=U`.
    ///
    /// Two variables are needed, so that a shell that happens to carry Airflow's context (a
    /// `BashOperator`'s child) still acts as its OS user; and the OS user stays in the name, so
    /// that the label never hides who ran the process. It is a label set by whoever starts the
    /// process, like `$USER`, not an authentication.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Actor, ActorEnvError> {
        let os_user = Actor::os_user();
        let Some(kind) = var(ACTOR_ENV).filter(|v| !v.is_empty()) else {
            return Ok(os_user);
        };
        if kind != ActorKind::AirflowTask.as_str() {
            return Err(ActorEnvError(format!(
                "{ACTOR_ENV} may only be `airflow-task` (or unset, for the OS user)"
            )));
        }
        let required = |name: &str| -> Result<String, ActorEnvError> {
            let value = var(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                ActorEnvError(format!(
                    "{ACTOR_ENV}=airflow-task needs {name} (set by Airflow's operator)"
                ))
            })?;
            // Printable ASCII without spaces: Airflow's ids are, and the audit log's actor
            // column stays one unambiguous token per part.
            if value.len() > 250 || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ActorEnvError(format!(
                    "{name} must be at most 250 printable characters without spaces"
                )));
            }
            Ok(value)
        };
        let number = |name: &str, value: &str| -> Result<i64, ActorEnvError> {
            value
                .parse::<i64>()
                .map_err(|_| ActorEnvError(format!("{name} must be a whole number")))
        };
        let dag = required("AIRFLOW_CTX_DAG_ID")?;
        let task = required("AIRFLOW_CTX_TASK_ID")?;
        let run = required("AIRFLOW_CTX_DAG_RUN_ID")?;
        let attempt = number(
            "AIRFLOW_CTX_TRY_NUMBER",
            &required("AIRFLOW_CTX_TRY_NUMBER")?,
        )?;
        let map_index = match var("AIRFLOW_CTX_MAP_INDEX").filter(|v| !v.is_empty()) {
            Some(v) => number("AIRFLOW_CTX_MAP_INDEX", &v)?,
            None => -1,
        };
        let mapped = if map_index >= 0 {
            format!(" map_index={map_index}")
        } else {
            String::new()
        };
        Ok(Actor::airflow_task(format!(
            "{dag}.{task} run_id={run} try={attempt}{mapped} os_user={}",
            os_user.name
        )))
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

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const AIRFLOW: [(&str, &str); 5] = [
        ("HUSHFLOW_ACTOR", "airflow-task"),
        ("AIRFLOW_CTX_DAG_ID", "nightly"),
        ("AIRFLOW_CTX_TASK_ID", "load"),
        (
            "AIRFLOW_CTX_DAG_RUN_ID",
            "manual__2026-12-01T00:00:00+00:00",
        ),
        ("AIRFLOW_CTX_TRY_NUMBER", "2"),
    ];

    #[test]
    fn airflow_context_alone_leaves_the_os_user() {
        let actor = Actor::from_env(env(&AIRFLOW[1..])).unwrap();
        assert_eq!(actor, Actor::os_user());
    }

    #[test]
    fn an_airflow_task_is_named_by_dag_task_run_try_and_os_user() {
        let actor = Actor::from_env(env(&AIRFLOW)).unwrap();
        assert_eq!(actor.kind, ActorKind::AirflowTask);
        assert_eq!(
            actor.name,
            format!(
                "nightly.load run_id=manual__2026-12-01T00:00:00+00:00 try=2 os_user={}",
                Actor::os_user().name
            )
        );
        let mut mapped = AIRFLOW.to_vec();
        mapped.push(("AIRFLOW_CTX_MAP_INDEX", "3"));
        let actor = Actor::from_env(env(&mapped)).unwrap();
        assert!(
            actor.name.contains(" try=2 map_index=3 os_user="),
            "{actor}"
        );
        assert_eq!(Actor::from_audit_name(&actor.audit_name()), actor);
    }

    #[test]
    fn a_half_given_airflow_context_is_refused() {
        for missing in 1..AIRFLOW.len() {
            let mut pairs = AIRFLOW.to_vec();
            let (name, _) = pairs.remove(missing);
            let e = Actor::from_env(env(&pairs)).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        let mut pairs = AIRFLOW.to_vec();
        pairs[0] = ("HUSHFLOW_ACTOR", "api-user");
        assert!(Actor::from_env(env(&pairs)).is_err());
        pairs[0] = ("HUSHFLOW_ACTOR", "airflow-task");
        pairs[4] = ("AIRFLOW_CTX_TRY_NUMBER", "two");
        assert!(Actor::from_env(env(&pairs)).is_err());
        pairs[4] = ("AIRFLOW_CTX_TRY_NUMBER", "1");
        pairs[2] = ("AIRFLOW_CTX_TASK_ID", "load os_user=root");
        assert!(Actor::from_env(env(&pairs)).is_err());
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
