//! `/v1/openapi.json`: an OpenAPI 3 document made from the route table.

use axum::Json;
use serde_json::{Map, Value, json};

use super::routes::{Access, endpoints};
use super::wire::API_VERSION;

pub(crate) async fn serve() -> Json<Value> {
    Json(document())
}

/// The parameters of an axum path, and the path in OpenAPI form.
fn openapi_path(path: &str) -> (String, Vec<String>) {
    let mut params = Vec::new();
    let segments: Vec<String> = path
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let name = name.trim_start_matches('*').to_owned();
                    params.push(name.clone());
                    format!("{{{name}}}")
                }
                None => seg.to_owned(),
            },
        )
        .collect();
    (segments.join("/"), params)
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The whole document.
pub(crate) fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for endpoint in endpoints() {
        let (path, params) = openapi_path(endpoint.path);
        let mut responses = Map::new();
        responses.insert(
            endpoint.status.to_string(),
            json!({"description": endpoint.summary}),
        );
        if endpoint.method != axum::http::Method::GET {
            responses.insert(
                "400".into(),
                error("Invalid input: `{\"field\": [\"message\"]}` or `{\"detail\": \"message\"}`"),
            );
        }
        let security = match endpoint.access {
            Access::Public => json!([]),
            Access::OptionalToken => json!([{}, {"token": []}]),
            Access::Token | Access::Admin => {
                responses.insert("401".into(), error("No or invalid token"));
                responses.insert("403".into(), error("Not allowed"));
                json!([{"token": []}])
            }
            Access::Builder => {
                responses.insert("401".into(), error("No builder key"));
                responses.insert(
                    "403".into(),
                    error("Wrong builder key, or the user may not deploy the app"),
                );
                json!([{"builder": []}])
            }
        };
        if !params.is_empty() {
            responses.insert("404".into(), error("Not found"));
        }
        let parameters: Vec<Value> = params
            .iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = json!({
            "summary": endpoint.summary,
            "operationId": format!("{}{}", endpoint.method.as_str().to_lowercase(), path.replace(['/', '{', '}', '.'], "_")),
            "parameters": parameters,
            "security": security,
            "responses": responses,
        });
        if matches!(endpoint.method, axum::http::Method::POST) {
            operation["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let item = paths.entry(path).or_insert_with(|| json!({}));
        item[endpoint.method.as_str().to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Deis controller API",
            "version": API_VERSION,
            "description": "The Deis v1 REST API (1.7). Every response carries DEIS_API_VERSION and DEIS_PLATFORM_VERSION headers; lists are paginated with ?page_size= and ?page=.",
        },
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`token <key>` as returned by /v1/auth/login/"},
                "builder": {"type": "apiKey", "in": "header", "name": "X-Deis-Builder-Auth"},
            },
            "schemas": {
                "Error": {"type": "object", "description": "`{\"detail\": \"...\"}`, or field errors `{\"field\": [\"...\"]}`", "additionalProperties": true},
            },
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_use_openapi_parameters() {
        assert_eq!(
            super::openapi_path("/v1/keys/{*id}"),
            ("/v1/keys/{id}".to_owned(), vec!["id".to_owned()])
        );
        let doc = super::document();
        assert!(doc["paths"]["/v1/apps/{app}/config"]["post"].is_object());
        assert!(doc["paths"]["/v1/apps/{app}/config"]["get"].is_object());
    }
}
