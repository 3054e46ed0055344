//! Who a request comes from and whether they may make it, decided once for every request from
//! the route table ([`crate::routes`]): the API takes a bearer token, the dashboard its session
//! cookie; without credentials the answer is 401, without the permission 403 (and the denial
//! is audited). A dashboard form must carry its session's CSRF token.

use crate::access::{self, Principal};
use crate::error::ApiError;
use crate::routes::{self, Needs, Surface};
use crate::state::AppState;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// The session cookie's name; `__Host-` under TLS (the browser then insists on `Secure`,
/// path `/` and no domain).
pub fn session_cookie(tls: bool) -> &'static str {
    if tls { "__Host-hushflow" } else { "hushflow" }
}

/// The sign-in form's CSRF cookie (double submit: no session exists yet).
pub fn sign_in_cookie(tls: bool) -> &'static str {
    if tls {
        "__Host-hushflow-sign-in"
    } else {
        "hushflow-sign-in"
    }
}

/// The most a dashboard form may weigh: its fields are a CSRF token and a few names.
const FORM_LIMIT: usize = 16 * 1024;

/// Who made a request that passed the check, for the handlers.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal: actor, role, pipelines.
    pub principal: Principal,
    /// The session's CSRF token (dashboard requests), to put in forms.
    pub csrf: Option<String>,
    /// The session cookie's secret (dashboard requests), for signing out.
    pub session_secret: Option<String>,
}

/// The peer's address as audited: the TCP peer.
pub fn address(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The value of the cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The check every request passes through (see the module's doc).
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(matched) = request.extensions().get::<MatchedPath>().cloned() else {
        // No route matched: the router's fallback answers (404).
        return next.run(request).await;
    };
    let Some(route) = routes::find(request.method(), matched.as_str()) else {
        // The path is routed, for other methods only (the route table test keeps the table
        // and the router equal).
        let allow: Vec<&str> = routes::ROUTES
            .iter()
            .filter(|r| r.path == matched.as_str())
            .map(|r| r.method.as_str())
            .collect();
        let mut answer = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("this path takes {} only", allow.join(", ")),
        )
        .into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(&allow.join(", ")) {
            answer.headers_mut().insert(header::ALLOW, value);
        }
        return answer;
    };
    if route.needs == Needs::Nobody {
        return next.run(request).await;
    }
    let address = address(&request);
    let headers = request.headers().clone();
    let caller = match route.surface {
        Surface::Api => match bearer(&headers) {
            None => None,
            Some(token) => {
                let found = state
                    .blocking_access(move |a, s| access::by_token(a, s, &token))
                    .await;
                match found {
                    Ok(principal) => Some(Caller {
                        principal,
                        csrf: None,
                        session_secret: None,
                    }),
                    Err(e) if e.status == StatusCode::UNAUTHORIZED => None,
                    Err(e) => return e.into_response(),
                }
            }
        },
        Surface::Page => match cookie(&headers, session_cookie(state.tls)) {
            None => None,
            Some(secret) => {
                let kept = secret.clone();
                let found = state
                    .blocking_access(move |a, s| access::by_session(a, s, &kept))
                    .await;
                match found {
                    Ok((principal, csrf)) => Some(Caller {
                        principal,
                        csrf: Some(csrf),
                        session_secret: Some(secret),
                    }),
                    Err(e) if e.status == StatusCode::UNAUTHORIZED => None,
                    Err(e) => return e.into_response(),
                }
            }
        },
    };
    let Some(caller) = caller else {
        return match route.surface {
            Surface::Api => ApiError::unauthorized().into_response(),
            Surface::Page => crate::dashboard::sign_in_required(&state),
        };
    };
    if let Needs::Permission(permission) = route.needs {
        let pipeline = pipeline_in_path(matched.as_str(), request.uri().path());
        if !caller.principal.may(permission, pipeline.as_deref()) {
            let target = format!("{} {}", request.method(), matched.as_str());
            let principal = caller.principal.clone();
            let audited = address.clone();
            // The denial is audited before it is answered; a failure to audit is a 500.
            if let Err(e) = state
                .blocking_access(move |a, s| {
                    access::record_denial(
                        a,
                        s,
                        &principal,
                        permission,
                        pipeline.as_deref(),
                        &audited,
                    )
                })
                .await
            {
                return e.into_response();
            }
            return match route.surface {
                Surface::Api => ApiError::forbidden(&target).into_response(),
                Surface::Page => crate::dashboard::forbidden(&state, &caller, &target),
            };
        }
    }
    let mut request = request;
    if route.surface == Surface::Page && request.method() == Method::POST {
        let secret = caller.session_secret.clone().unwrap_or_default();
        request = match check_csrf(request, &secret).await {
            Ok(request) => request,
            Err(refused) => return refused,
        };
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The pipeline a route's path names (`{pipeline}`), taken from the request's path.
fn pipeline_in_path(pattern: &str, path: &str) -> Option<String> {
    pattern
        .split('/')
        .zip(path.split('/'))
        .find(|(p, _)| *p == "{pipeline}")
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Reads a dashboard form and checks its `csrf` field against the token of the session whose
/// secret is `secret`; the form goes on to the handler unchanged.
async fn check_csrf(request: Request, secret: &str) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response()
    })?;
    let given = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if secret.is_empty() || !access::csrf_ok(secret, &given) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or stale; reload the page and try again",
        )
        .into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
