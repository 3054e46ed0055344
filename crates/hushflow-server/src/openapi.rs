//! The API's OpenAPI 3.1 document, generated from the handlers' annotations and the app
//! layer's view types (`utoipa`), served at `/api/v1/openapi.json`.

use crate::api;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hushflow API",
        description = "Pipelines, runs, task logs (redacted), the audit log, quarantine counts \
                       and keys (never material), behind API tokens and roles. Bodies are the \
                       app layer's view types (docs/json.md).",
    ),
    paths(
        api::pipelines,
        api::runs,
        api::tasks,
        api::log,
        api::audit_list,
        api::audit_verify,
        api::quarantine_list,
        api::keys_list,
        api::users,
        api::tokens,
        api::trigger,
        api::pause,
        api::unpause,
        api::clear,
        openapi_json,
    ),
    modifiers(&BearerTokens),
    tags(
        (name = "pipelines", description = "Registered pipelines, and what can be done to them"),
        (name = "runs", description = "Runs, their tasks and logs"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "quarantine", description = "Records set aside, counted"),
        (name = "keys", description = "The keyring, without material"),
        (name = "access", description = "Users and API tokens"),
        (name = "meta", description = "This document"),
    )
)]
/// The API document's source: the paths and schemas listed above.
pub struct ApiDoc;

struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `hushflow tokens create`"))
                    .build(),
            ),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json")))]
/// This document.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
