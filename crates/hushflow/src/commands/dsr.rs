//! `hushflow dsr` and `hushflow retention`: data subject requests, through the app layer's `actions::dsr` (which audits
//! each system by request id). Prints systems, states and counts; never the person.

use super::{Exit, Failure, Session, failure, invalid};
use crate::cli::{DsrArgs, DsrCommand, DsrLaw};
use hushflow_app::actions::dsr::{self, IdentifierKind, Kind, Law, Person, Request};
use hushflow_app::views::DsrView;
use hushflow_secrets::SecretValue;

pub(super) fn dsr(session: &Session<'_>, cmd: DsrCommand) -> Result<Exit, Failure> {
    let out = session.out;
    match cmd {
        DsrCommand::Erase(args) => request(session, Kind::Erase, &args, None),
        DsrCommand::OptOut(args) => request(session, Kind::OptOut, &args, None),
        DsrCommand::Access(a) => request(
            session,
            Kind::Access,
            &a.request,
            Some((a.recipient.as_str(), a.output.as_path())),
        ),
        DsrCommand::List(args) => {
            for view in dsr::list(&session.app)? {
                match args.json {
                    true => out.line(serde_json::to_string(&view).map_err(failure)?),
                    false => out.line(format!(
                        "{}  {:<8} {:<5} {:<5} deadline {}  {} system(s)",
                        view.id,
                        view.kind,
                        view.law,
                        view.state,
                        view.deadline,
                        view.systems.len()
                    )),
                }
            }
            Ok(Exit::Success)
        }
        DsrCommand::Show(args) => {
            let view = dsr::show(&session.app, &args.id)?;
            print(session, &view, args.json)
        }
    }
}

fn request(
    session: &Session<'_>,
    kind: Kind,
    args: &DsrArgs,
    export: Option<(&str, &std::path::Path)>,
) -> Result<Exit, Failure> {
    let (id_kind, value) = match (&args.email, &args.phone, &args.subject) {
        (Some(v), None, None) => (IdentifierKind::Email, v),
        (None, Some(v), None) => (IdentifierKind::Phone, v),
        (None, None, Some(v)) => (IdentifierKind::Subject, v),
        _ => {
            return Err(invalid(
                "name the person with one of --email, --phone or --subject",
            ));
        }
    };
    let person = Person {
        kind: id_kind,
        value: SecretValue::new(value.as_bytes().to_vec()),
    };
    // Masked in everything printed from here on, errors included.
    session.out.redactor.register(&person.value);
    let law = match args.law {
        DsrLaw::Gdpr => Law::Gdpr,
        DsrLaw::Ccpa => Law::Ccpa,
    };
    let view = dsr::run(
        &session.app,
        &session.actor,
        &Request {
            kind,
            person: &person,
            pipelines: &args.pipelines,
            law,
            export,
        },
    )?;
    print(session, &view, args.json)
}

fn print(session: &Session<'_>, view: &DsrView, json: bool) -> Result<Exit, Failure> {
    let out = session.out;
    if json {
        out.line(serde_json::to_string(view).map_err(failure)?);
        return Ok(Exit::Success);
    }
    out.line(format!(
        "request {} ({}, {}): {}; deadline {}",
        view.id, view.kind, view.law, view.state, view.deadline
    ));
    for s in &view.systems {
        out.line(format!("  {:<11} {}: {}", s.state, s.system, s.detail));
    }
    Ok(Exit::Success)
}

/// `hushflow retention enforce`: a line (or JSON object) per sink with a retention.
pub(super) fn retention(
    session: &Session<'_>,
    args: &crate::cli::RetentionArgs,
) -> Result<Exit, Failure> {
    let views =
        hushflow_app::actions::retention::enforce(&session.app, &session.actor, &args.pipelines)?;
    for v in &views {
        match args.json {
            true => session.out.line(serde_json::to_string(v).map_err(failure)?),
            false => session.out.line(format!(
                "{}: {}: deleted {} row(s) with {} before {} (retain {})",
                v.pipeline, v.sink, v.rows_deleted, v.retain_by, v.cutoff, v.retain
            )),
        }
    }
    if views.is_empty() {
        session
            .out
            .note("no sink of these pipelines has `retain`; nothing to do");
    }
    Ok(Exit::Success)
}
