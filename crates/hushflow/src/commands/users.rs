//! `hushflow users` and `hushflow tokens`: the identities of `hushflow serve`, in the metadata
//! store the scheduler uses (`--metadata`), through the app layer's audited actions
//! (`hushflow_app::access`). No password or token is taken from the command line, and a new
//! token is printed once.

use super::password_input::read_password;
use super::{Exit, Failure, Session, failure};
use crate::cli::{TokensCommand, UserGrantArgs, UsersCommand};
use hushflow_app::Grant;
use hushflow_app::access::Access;
use hushflow_app::views::{TokenView, UserView};

fn to_json(view: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string(view).map_err(failure)
}

fn grants_text(grants: &[Grant]) -> String {
    let mut limits: Vec<&str> = Vec::new();
    let mut extra: Vec<String> = Vec::new();
    for g in grants {
        match (g.permission, &g.pipeline) {
            (None, Some(p)) => limits.push(p),
            (Some(p), Some(pipeline)) => extra.push(format!("{p} on {pipeline}")),
            (Some(p), None) => extra.push(p.to_string()),
            (None, None) => {}
        }
    }
    let mut parts = Vec::new();
    if !limits.is_empty() {
        parts.push(format!("only {}", limits.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("+ {}", extra.join(", ")));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

fn user_line(u: &UserView) -> String {
    let state = if u.disabled {
        "disabled".to_string()
    } else if let Some(until) = &u.locked_until {
        format!("locked until {until}")
    } else {
        "enabled".to_string()
    };
    format!(
        "{:<24} {:<7} {:<32} {}",
        u.name,
        u.role.as_str(),
        state,
        grants_text(&u.grants)
    )
}

fn token_line(t: &TokenView) -> String {
    format!(
        "{:<17} {:<20} {:<7} {:<8} {:<21} {}",
        t.id,
        t.name,
        t.role.as_str(),
        t.state,
        t.expires_at.as_deref().unwrap_or("never"),
        t.last_used_at.as_deref().unwrap_or("-")
    )
}

/// `hushflow users …`.
pub(super) fn users(session: &Session<'_>, cmd: UsersCommand) -> Result<Exit, Failure> {
    let out = session.out;
    let access = Access::default();
    let (app, actor) = (&session.app, &session.actor);
    let mut store = app.open_store()?;
    let store = &mut store;
    match cmd {
        UsersCommand::Add(args) => {
            let password = read_password(out, &args.name, args.password.password_stdin)?;
            let user = access.add_user(app, store, actor, &args.name, args.role, &password)?;
            out.line(format!("user {} added, role {}", user.name, user.role));
        }
        UsersCommand::List(args) => {
            let users = access.list_users(store)?;
            if args.json {
                for u in &users {
                    out.line(to_json(u)?);
                }
            } else if users.is_empty() {
                out.line("no user yet; add one with `hushflow users add NAME --role admin`");
            } else {
                out.line(format!(
                    "{:<24} {:<7} {:<32} grants",
                    "user", "role", "state"
                ));
                for u in &users {
                    out.line(user_line(u));
                }
            }
        }
        UsersCommand::Remove(args) => {
            access.remove_user(app, store, actor, &args.name)?;
            out.line(format!("user {} removed, its sessions ended", args.name));
        }
        UsersCommand::SetRole(args) => {
            let user = access.set_role(app, store, actor, &args.name, args.role)?;
            out.line(format!("user {}: role {}", user.name, user.role));
        }
        UsersCommand::ResetPassword(args) => {
            let password = read_password(out, &args.name, args.password.password_stdin)?;
            access.reset_password(app, store, actor, &args.name, &password)?;
            out.line(format!(
                "user {}: new password set, lock-out lifted, sessions ended",
                args.name
            ));
        }
        UsersCommand::Grant(args) => {
            let UserGrantArgs {
                name,
                permission,
                pipeline,
                revoke,
            } = args;
            let grant = Grant {
                permission,
                pipeline,
            };
            let user = if revoke {
                access.revoke_grant(app, store, actor, &name, &grant)?
            } else {
                access.grant(app, store, actor, &name, &grant)?
            };
            out.line(format!(
                "user {}: role {}, grants: {}",
                user.name,
                user.role,
                grants_text(&user.grants)
            ));
        }
        UsersCommand::Disable(args) => {
            access.set_disabled(app, store, actor, &args.name, true)?;
            out.line(format!("user {} disabled, its sessions ended", args.name));
        }
        UsersCommand::Enable(args) => {
            access.set_disabled(app, store, actor, &args.name, false)?;
            out.line(format!("user {} enabled", args.name));
        }
    }
    Ok(Exit::Success)
}

/// `hushflow tokens …`.
pub(super) fn tokens(session: &Session<'_>, cmd: TokensCommand) -> Result<Exit, Failure> {
    let out = session.out;
    let access = Access::default();
    let (app, actor) = (&session.app, &session.actor);
    let mut store = app.open_store()?;
    let store = &mut store;
    match cmd {
        TokensCommand::Create(args) => {
            let new =
                access.create_token(app, store, actor, &args.name, args.role, args.expires.0)?;
            if args.json {
                let mut json = serde_json::to_value(&new.view).map_err(failure)?;
                json["token"] = new.token.as_str().into();
                out.line(to_json(&json)?);
            } else {
                out.line(new.token.as_str());
                out.note(format!(
                    "token {} ({}) created, role {}, {}: it is shown this once and stored only \
                     as a digest; keep it in a secret store",
                    new.view.name,
                    new.view.id,
                    new.view.role,
                    new.view
                        .expires_at
                        .as_deref()
                        .map_or_else(|| "never expires".to_string(), |at| format!("expires {at}"))
                ));
            }
        }
        TokensCommand::List(args) => {
            let tokens = access.list_tokens(store)?;
            if args.json {
                for t in &tokens {
                    out.line(to_json(t)?);
                }
            } else if tokens.is_empty() {
                out.line("no token yet; create one with `hushflow tokens create --name N --role R --expires 30d`");
            } else {
                out.line(format!(
                    "{:<17} {:<20} {:<7} {:<8} {:<21} last used",
                    "id", "name", "role", "state", "expires"
                ));
                for t in &tokens {
                    out.line(token_line(t));
                }
            }
        }
        TokensCommand::Revoke(args) => {
            let t = access.revoke_token(app, store, actor, &args.token)?;
            out.line(format!("token {} ({}) revoked", t.name, t.id));
        }
    }
    Ok(Exit::Success)
}
