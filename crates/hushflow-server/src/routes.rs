//! The one table of routes: each path and method, whether it is the API's or a page, and the
//! permission it needs. The router mounts handlers for exactly these (a test checks), the
//! authorization middleware looks every request up here, the OpenAPI document must list the
//! API's (a test checks), and the permission-matrix test walks it.

use crate::access::Permission;
use axum::http::Method;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Anyone, signed in or not: the sign-in page, the stylesheet, the OpenAPI document.
    Nobody,
    /// Anyone signed in (signing out).
    SignedIn,
    /// A principal whose role grants this permission (for the route's pipeline, when its path
    /// names one).
    Permission(Permission),
}

/// Which front door a route belongs to, which decides how callers prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/api/v1/…`: JSON, `Authorization: Bearer TOKEN`; no cookies, so no CSRF.
    Api,
    /// The dashboard: HTML, the session cookie, a CSRF token in every form.
    Page,
}

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: Method,
    /// The path as the router writes it, parameters in braces (`/api/v1/runs/{run}/tasks`).
    pub path: &'static str,
    /// API or page.
    pub surface: Surface,
    /// Who may call it.
    pub needs: Needs,
}

const fn route(method: Method, path: &'static str, surface: Surface, needs: Needs) -> Route {
    Route {
        method,
        path,
        surface,
        needs,
    }
}

use Needs::{Nobody, SignedIn};
use Permission as P;
use Surface::{Api, Page};

const fn may(p: Permission) -> Needs {
    Needs::Permission(p)
}

/// Every route the server answers.
pub const ROUTES: &[Route] = &[
    route(Method::GET, "/api/v1/openapi.json", Api, Nobody),
    route(Method::GET, "/api/v1/pipelines", Api, may(P::ReadPipelines)),
    route(Method::GET, "/api/v1/runs", Api, may(P::ReadRuns)),
    route(
        Method::GET,
        "/api/v1/runs/{run}/tasks",
        Api,
        may(P::ReadRuns),
    ),
    route(
        Method::GET,
        "/api/v1/runs/{run}/tasks/{task}/log",
        Api,
        may(P::ReadLogs),
    ),
    route(Method::GET, "/api/v1/audit", Api, may(P::ReadAudit)),
    route(Method::GET, "/api/v1/audit/verify", Api, may(P::ReadAudit)),
    route(
        Method::GET,
        "/api/v1/quarantine",
        Api,
        may(P::ReadQuarantine),
    ),
    route(Method::GET, "/api/v1/keys", Api, may(P::ReadKeys)),
    route(Method::GET, "/api/v1/users", Api, may(P::ManageUsers)),
    route(Method::GET, "/api/v1/tokens", Api, may(P::ManageTokens)),
    route(
        Method::POST,
        "/api/v1/pipelines/{pipeline}/trigger",
        Api,
        may(P::Trigger),
    ),
    route(
        Method::POST,
        "/api/v1/pipelines/{pipeline}/pause",
        Api,
        may(P::Pause),
    ),
    route(
        Method::POST,
        "/api/v1/pipelines/{pipeline}/unpause",
        Api,
        may(P::Pause),
    ),
    route(Method::POST, "/api/v1/runs/{run}/clear", Api, may(P::Clear)),
    route(Method::GET, "/", Page, Nobody),
    route(Method::GET, "/static/style.css", Page, Nobody),
    route(Method::GET, "/static/favicon.svg", Page, Nobody),
    route(Method::GET, "/sign-in", Page, Nobody),
    route(Method::POST, "/sign-in", Page, Nobody),
    route(Method::POST, "/sign-out", Page, SignedIn),
    route(Method::GET, "/pipelines", Page, may(P::ReadPipelines)),
    route(Method::GET, "/runs/{run}", Page, may(P::ReadRuns)),
    route(
        Method::GET,
        "/runs/{run}/tasks/{task}/log",
        Page,
        may(P::ReadLogs),
    ),
    route(Method::GET, "/audit", Page, may(P::ReadAudit)),
    route(Method::GET, "/quarantine", Page, may(P::ReadQuarantine)),
    route(Method::GET, "/keys", Page, may(P::ReadKeys)),
    route(Method::GET, "/users", Page, may(P::ManageUsers)),
    route(
        Method::POST,
        "/pipelines/{pipeline}/trigger",
        Page,
        may(P::Trigger),
    ),
    route(
        Method::POST,
        "/pipelines/{pipeline}/pause",
        Page,
        may(P::Pause),
    ),
    route(
        Method::POST,
        "/pipelines/{pipeline}/unpause",
        Page,
        may(P::Pause),
    ),
    route(Method::POST, "/runs/{run}/clear", Page, may(P::Clear)),
];

/// The route `method` and the router's matched `path` name.
pub fn find(method: &Method, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method == *method && r.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_listed_once_and_api_routes_are_under_the_prefix() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|o| o.method == r.method && o.path == r.path),
                "{} {} twice",
                r.method,
                r.path
            );
            assert_eq!(r.path.starts_with("/api/v1/"), r.surface == Surface::Api);
        }
    }
}
