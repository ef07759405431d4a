//! The OpenAPI 3.1 description of the JSON API, built for the caller: one path per tool
//! they may run, with that tool's argument schema, beside the generic run routes.

use serde_json::{Value as Json, json};

use super::State;
use super::schema::args_schema;
use crate::manifest::Tool;

pub fn document(state: &State, title: &str, tools: &[&Tool]) -> Json {
    let error = json!({ "$ref": "#/components/schemas/Error" });
    let json_response = |description: &str, schema: Json| json!({ "description": description, "content": { "application/json": { "schema": schema } } });
    let mut paths = serde_json::Map::new();
    paths.insert(
        "/api/tools".into(),
        json!({ "get": {
            "summary": "The tools the caller may run",
            "operationId": "listTools",
            "responses": {
                "200": json_response("Tools", json!({
                    "type": "object",
                    "properties": { "tools": { "type": "array", "items": { "$ref": "#/components/schemas/Tool" } } },
                    "required": ["tools"]
                })),
                "401": json_response("Not signed in", error.clone()),
            }
        }}),
    );
    let mut schemas = serde_json::Map::new();
    let string = json!({ "type": "string" });
    for tool in tools {
        let args_name = format!("{}Args", schema_name(&tool.id));
        schemas.insert(args_name.clone(), args_schema(tool));
        paths.insert(
            format!("/api/tools/{}/runs", tool.id),
            json!({ "post": {
                "summary": format!("Run {}", tool.title),
                "description": tool.description,
                "operationId": format!("run_{}", schema_name(&tool.id)),
                "parameters": [{
                    "name": "wait", "in": "query", "required": false,
                    "description": "Wait for the run to end (at most the tool's timeout) and return it whole.",
                    "schema": { "type": "boolean" }
                }],
                "requestBody": {
                    "required": false,
                    "content": {
                        "application/json": { "schema": {
                            "type": "object",
                            "properties": { "args": { "$ref": format!("#/components/schemas/{args_name}") } },
                            "additionalProperties": false
                        }},
                        "multipart/form-data": { "schema": { "$ref": format!("#/components/schemas/{args_name}") } }
                    }
                },
                "responses": {
                    "201": json_response("Started (or, with wait, finished)", json!({
                        "oneOf": [
                            { "$ref": "#/components/schemas/RunStarted" },
                            { "$ref": "#/components/schemas/Run" }
                        ]
                    })),
                    "401": json_response("Not signed in", error.clone()),
                    "403": json_response("CSRF token missing or cross-site request", error.clone()),
                    "404": json_response("No such tool for this caller", error.clone()),
                    "413": json_response("Body too large", error.clone()),
                    "422": json_response("Invalid arguments", json!({ "$ref": "#/components/schemas/ValidationError" })),
                    "429": json_response("The tool's queue is full, you have max_runs_per_user runs going, or too many failed attempts", error.clone()),
                    "507": json_response("The disk that holds ftw's state is full", error.clone()),
                }
            }}),
        );
    }
    let query = |name: &str, description: &str| json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } });
    paths.insert(
        "/api/runs".into(),
        json!({ "get": {
            "summary": "The runs the caller may see, newest first, a page at a time",
            "operationId": "listRuns",
            "parameters": [
                query("tool", "only runs of this tool"),
                query("status", "only runs with this status"),
                query("user", "only runs of this user (admins; others always see their own)"),
                query("since", "created at or after: a date (2026-12-04) or an RFC 3339 time"),
                query("until", "created before: an RFC 3339 time, or a date (that whole day included)"),
                query("limit", "runs per page, 1 to 200 (default 50)"),
                query("cursor", "the `next` of the previous page"),
            ],
            "responses": {
                "200": json_response("A page of runs", json!({
                    "type": "object",
                    "properties": {
                        "runs": { "type": "array", "items": { "$ref": "#/components/schemas/RunSummary" } },
                        "next": { "type": ["string", "null"], "description": "the cursor of the next page, null on the last" },
                        "next_url": { "type": ["string", "null"] }
                    },
                    "required": ["runs", "next"],
                    "additionalProperties": false
                })),
                "400": json_response("A filter that cannot be read", error.clone()),
                "401": json_response("Not signed in", error.clone()),
            }
        }}),
    );
    let run_id =
        json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
    // The routes of one run: the answer when it exists for this caller, else 404.
    let mut run_route =
        |path: &str, method: &str, summary: &str, operation: &str, ok: Vec<(&str, Json)>| {
            let mut responses = serde_json::Map::new();
            for (status, response) in ok {
                responses.insert(status.into(), response);
            }
            responses.insert(
                "404".into(),
                json_response("No such run for this caller", error.clone()),
            );
            let route = json!({
                "summary": summary,
                "operationId": operation,
                "parameters": run_id,
                "responses": responses,
            });
            paths.insert(path.into(), json!({ method: route }));
        };
    run_route(
        "/api/runs/{id}",
        "get",
        "A run: status, exit code, output, files",
        "getRun",
        vec![(
            "200",
            json_response("The run", json!({ "$ref": "#/components/schemas/Run" })),
        )],
    );
    run_route(
        "/api/runs/{id}/events",
        "get",
        "Server-Sent Events: snapshot, output and status events, then end",
        "runEvents",
        vec![("200", text_response("An event stream", "text/event-stream"))],
    );
    run_route(
        "/api/runs/{id}/output",
        "get",
        "The whole output as text (up to the tool's max_output)",
        "runOutput",
        vec![("200", text_response("The output", "text/plain"))],
    );
    let stopping = json!({
        "type": "object",
        "properties": { "id": { "type": "string" }, "status": { "type": "string" } },
        "required": ["id", "status"]
    });
    run_route(
        "/api/runs/{id}/cancel",
        "post",
        "Stop a run (SIGTERM to its process group, SIGKILL after 5 s); waits up to 6 s and answers how it ended",
        "cancelRun",
        vec![
            (
                "200",
                json_response(
                    "It ended: the run, without its output",
                    json!({ "$ref": "#/components/schemas/Run" }),
                ),
            ),
            (
                "202",
                json_response("Asked to stop; still stopping", stopping),
            ),
        ],
    );
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object", "properties": { "error": { "type": "string" } }, "required": ["error"]
        }),
    );
    schemas.insert(
        "ValidationError".into(),
        json!({
            "type": "object",
            "properties": {
                "error": { "type": "string" },
                "fields": { "type": "object", "additionalProperties": { "type": "string" } }
            },
            "required": ["error", "fields"]
        }),
    );
    schemas.insert(
        "Tool".into(),
        json!({
            "type": "object",
            "properties": {
                "id": { "type": "string" },
                "title": { "type": "string" },
                "description": { "type": ["string", "null"] },
                "group": { "type": ["string", "null"] },
                "runs": { "type": "string" },
                "args": { "type": "object" }
            },
            "required": ["id", "title", "runs", "args"]
        }),
    );
    schemas.insert(
        "RunStarted".into(),
        json!({
            "type": "object",
            "properties": { "id": string, "status": string, "url": string, "page": string },
            "required": ["id", "status", "url"],
            "additionalProperties": false
        }),
    );
    let statuses = json!({ "enum": crate::runs::Status::WORDS });
    schemas.insert("RunSummary".into(), json!({
        "type": "object",
        "properties": {
            "id": string,
            "tool": string,
            "user": string,
            "via": { "type": "string", "description": "session, forward-auth or token:NAME" },
            "args": { "type": "object", "additionalProperties": { "type": "string" }, "description": "each argument given, as shown (passwords ***)" },
            "status": statuses,
            "exit_code": { "type": ["integer", "null"] },
            "signal": { "type": ["integer", "null"] },
            "started": { "type": "string", "format": "date-time" },
            "duration_ms": { "type": ["integer", "null"], "minimum": 0 },
            "url": string,
            "page": string
        },
        "required": ["id", "tool", "user", "via", "args", "status", "exit_code", "signal", "started", "duration_ms", "url", "page"],
        "additionalProperties": false
    }));
    schemas.insert("Run".into(), json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" },
            "tool": { "type": "string" },
            "user": { "type": "string" },
            "status": statuses,
            "exit_code": { "type": ["integer", "null"], "description": "0 included; null until the program exits, or when killed" },
            "signal": { "type": ["integer", "null"] },
            "error": { "type": ["string", "null"] },
            "started": { "type": "string", "format": "date-time" },
            "duration_ms": { "type": ["integer", "null"], "minimum": 0 },
            "output": { "type": ["string", "null"], "description": "the output as text when it is at most 1 MiB, else null: read output_url" },
            "output_bytes": { "type": "integer", "minimum": 0 },
            "output_url": { "type": "string" },
            "output_cut": { "type": "boolean" },
            "output_cut_reason": { "type": ["string", "null"], "description": "why output was cut: it reached max_output, or the disk refused it" },
            "files": { "type": "array", "items": {
                "type": "object",
                "properties": { "name": { "type": "string" }, "size": { "type": "integer" }, "image": { "type": "boolean" }, "url": { "type": "string" } },
                "required": ["name", "size", "image", "url"]
            }},
            "url": { "type": "string" },
            "page": { "type": "string" }
        },
        "required": ["id", "tool", "user", "status", "exit_code", "signal", "started", "duration_ms", "files", "url"],
        "additionalProperties": false
    }));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{title} (ftw)"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run the tools of this ftw server. Authenticate with `Authorization: Bearer TOKEN` (from `ftw gen-token`), or with the session cookie and `X-CSRF-Token` on POSTs."
        },
        "servers": [{ "url": state.config.base_path }],
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": "ftw_session" }
            }
        }
    })
}

/// A response whose body is text of `media` type.
fn text_response(description: &str, media: &str) -> Json {
    let mut content = serde_json::Map::new();
    content.insert(media.into(), json!({ "schema": { "type": "string" } }));
    json!({ "description": description, "content": content })
}

/// A tool id as a schema name: `disk-usage` -> `DiskUsage`.
fn schema_name(id: &str) -> String {
    id.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
