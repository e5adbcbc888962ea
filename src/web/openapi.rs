//! `/openapi.json`, built from the route table (`routes::ROUTES`, which
//! answers it) so every route is described and nothing is described that is
//! not routed.

use serde_json::{json, Map, Value};

/// One route as declared in `api!`.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub query: &'static [&'static str],
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn operation(r: &RouteDoc) -> Value {
    let mut params = path_params(r.path);
    params.extend(r.query.iter().map(
        |q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
    ));
    let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = json!({"200": {"description": "success"}});
    if r.tag == "regulator" {
        responses["401"] = error.clone();
        responses["403"] = error.clone();
        responses["429"] = error.clone();
        if matches!(r.method, "put" | "post") {
            responses["413"] = error.clone();
        }
        if r.path.ends_with("/revoke") {
            responses["409"] = error.clone();
        }
    }
    if !params.is_empty() || matches!(r.method, "put" | "post") {
        responses["400"] = error.clone();
        responses["404"] = error.clone();
    }
    if r.path.contains("{token}") {
        responses["410"] =
            json!({"description": "revoked, superseded or expired code (body says which)"});
    }
    let mut op = json!({
        "summary": r.summary,
        "tags": [r.tag],
        "operationId": format!("{}_{}", r.method, r.path.trim_matches('/').replace(['/', '{', '}', '.'], "_")),
        "parameters": params,
        "responses": responses,
    });
    if r.tag == "regulator" {
        op["security"] = json!([{"bearer": []}]);
    }
    if matches!(r.method, "put" | "post") && r.tag == "regulator" {
        op["requestBody"] = json!({"required": false, "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-ndjson": {"schema": {"type": "string"}}}});
    }
    op
}

/// The OpenAPI 3.1 document for `routes` (every route of the table).
pub fn build(routes: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let entry = paths.entry(r.path).or_insert_with(|| json!({}));
        entry[r.method] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "yisaozhi (一扫知)", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Signed, colour-graded merchant credit codes: scans, public records, regulator actions."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}},
        },
    })
}
