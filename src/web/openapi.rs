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
    described(r, &mut op);
    if matches!(r.method, "put" | "post") && r.tag == "regulator" {
        op["requestBody"] = json!({"required": false, "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-ndjson": {"schema": {"type": "string"}}}});
    }
    op
}

/// The bodies of the change feed and the open data (CONTRACT §8).
fn described(r: &RouteDoc, op: &mut Value) {
    let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let etag = json!({"ETag": {"description": "the file's SHA-256 (as in index.json), quoted", "schema": {"type": "string"}}});
    let not_modified = json!({"description": "not modified (If-None-Match names the current ETag)", "headers": etag});
    match r.path {
        "/api/v1/changes" => {
            op["parameters"] = json!([
                {"name": "since", "in": "query", "required": false, "description": "a cursor from an earlier answer (`next`, or a change's `cursor`); without it, from the oldest change kept (at least 90 days)", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "required": false, "description": "changes per page, 1 to 1000", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
            ]);
            op["responses"]["200"] = json!({"description": "the changes after `since`, in order; ask again with `next` for more (an empty page: nothing new yet)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Changes"}}}});
            op["responses"]["400"] = json!({"description": "`bad_cursor` (not a cursor of this feed), `cursor_expired` (older than the feed keeps: start again without `since`) or a bad `limit`",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            op["responses"]["503"] = error;
        }
        "/open-data/index.json" => {
            op["responses"]["200"] = json!({"description": "the open data files", "headers": etag,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenDataIndex"}}}});
            op["responses"]["304"] = not_modified;
        }
        "/open-data/{file}" => {
            op["responses"]["200"] = json!({"description": "the file", "headers": etag, "content": {
                "application/gzip": {"schema": {"type": "string", "format": "binary", "description": "merchants.jsonl.gz: one public projection a line"}},
                "text/csv": {"schema": {"type": "string", "description": "merchants.csv or sampling.csv, with a header row"}}}});
            op["responses"]["304"] = not_modified;
        }
        _ => {}
    }
}

/// Schemas of the change feed and the open data index.
fn feed_and_open_data_schemas() -> Value {
    json!({
        "Change": {"type": "object", "required": ["cursor", "at", "merchant_id", "kind"], "properties": {
            "cursor": {"type": "string", "description": "opaque; the position of this change"},
            "at": {"type": "string", "format": "date-time"},
            "merchant_id": {"type": "string"},
            "kind": {"type": "string", "enum": ["grade", "override", "code_issued", "code_revoked", "merchant"]},
            "grade": {"type": "string", "enum": ["green", "yellow", "red"], "description": "grade: the new grade; override: the grade it gives"},
            "serial": {"type": "integer", "description": "code_issued, code_revoked: the code's serial"}}},
        "Changes": {"type": "object", "required": ["changes", "next"], "properties": {
            "changes": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}},
            "next": {"type": "string", "description": "the cursor to ask for the next page with"}}},
        "OpenDataIndex": {"type": "object", "required": ["generated_at", "files"], "properties": {
            "generated_at": {"type": "string", "format": "date-time"},
            "files": {"type": "array", "items": {"type": "object", "required": ["name", "sha256", "bytes", "rows"], "properties": {
                "name": {"type": "string", "enum": ["merchants.jsonl.gz", "merchants.csv", "sampling.csv"]},
                "sha256": {"type": "string"}, "bytes": {"type": "integer"}, "rows": {"type": "integer"}}}}}},
    })
}

/// The OpenAPI 3.1 document for `routes` (every route of the table).
pub fn build(routes: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let entry = paths.entry(r.path).or_insert_with(|| json!({}));
        entry[r.method] = operation(r);
    }
    let mut schemas = json!({"Error": {"type": "object", "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}});
    if let (Some(all), Value::Object(more)) =
        (schemas.as_object_mut(), feed_and_open_data_schemas())
    {
        all.extend(more);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "yisaozhi (一扫知)", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Signed, colour-graded merchant credit codes: scans, public records, regulator actions."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    })
}
