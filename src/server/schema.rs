//! The JSON Schema of each tool's arguments: what `GET /api/tools` lists and what the
//! OpenAPI document embeds, built from the same `Arg` rules that check submissions, so
//! a client that follows the schema never meets a surprise 422.

use serde_json::{Value as Json, json};

use crate::manifest::{Arg, Kind, Tool, Value};

/// The JSON Schema of a tool's `args` object.
pub fn args_schema(tool: &Tool) -> Json {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for arg in &tool.args {
        properties.insert(arg.name.clone(), arg_schema(arg));
        // A field shown on a condition is required only while shown (`x-show-if`).
        if arg.required
            && arg.default.is_none()
            && arg.show_if.is_none()
            && !matches!(arg.kind, Kind::Bool { .. })
        {
            required.push(arg.name.clone());
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn arg_schema(arg: &Arg) -> Json {
    let mut schema = match &arg.kind {
        Kind::Text(r) | Kind::Textarea(r) | Kind::Password(r) | Kind::Email(r) | Kind::Url(r) => {
            let mut s = json!({ "type": "string" });
            if let Some(n) = r.min_length {
                s["minLength"] = json!(n);
            }
            if let Some(n) = r.max_length {
                s["maxLength"] = json!(n);
            }
            if let Some(p) = &r.pattern {
                s["pattern"] = json!(format!("^(?:{})$", p.source));
            }
            match arg.kind {
                Kind::Email(_) => s["format"] = json!("email"),
                Kind::Url(_) => s["format"] = json!("uri"),
                Kind::Password(_) => s["writeOnly"] = json!(true),
                _ => {}
            }
            s
        }
        Kind::Int { min, max, .. } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Float { min, max, .. } => json!({ "type": "number", "minimum": min, "maximum": max }),
        Kind::Bool { .. } => json!({ "type": "boolean" }),
        Kind::Select { options } => json!({ "type": "string", "enum": options }),
        Kind::Multiselect { options, min, max } => json!({
            "type": "array",
            "items": { "type": "string", "enum": options },
            "uniqueItems": true,
            "minItems": min,
            "maxItems": max,
        }),
        Kind::Date(_) => json!({ "type": "string", "format": "date" }),
        Kind::Time(_) => json!({ "type": "string", "pattern": "^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$" }),
        Kind::Datetime(_) => json!({
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?$"
        }),
        Kind::Color => json!({ "type": "string", "pattern": "^#[0-9a-fA-F]{6}$" }),
        Kind::File { .. } => json!({
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "send the file as a part of a multipart/form-data request"
        }),
    };
    // Options from a command are known per request: no `enum`; where to ask instead.
    if arg.options_from.is_some() {
        let list = if matches!(arg.kind, Kind::Multiselect { .. }) {
            &mut schema["items"]
        } else {
            &mut schema
        };
        if let Json::Object(map) = list {
            map.remove("enum");
        }
        schema["x-options-from"] = json!("POST /api/tools/{id}/options");
    }
    if let Some(when) = &arg.show_if {
        schema["x-show-if"] = json!({ "field": when.field, "equals": when.equals });
    }
    // Drop the `null`s of bounds that are not set.
    if let Json::Object(map) = &mut schema {
        map.retain(|_, v| !v.is_null());
        map.insert("title".into(), json!(arg.label));
        if let Some(help) = &arg.help {
            map.insert("description".into(), json!(help));
        }
        if let Some(default) = &arg.default {
            // Numbers are numbers in JSON; everything else is as `Value` writes it.
            let number = match (&arg.kind, default) {
                (Kind::Int { .. }, Value::One(v)) => v.parse::<i64>().ok().map(Json::from),
                (Kind::Float { .. }, Value::One(v)) => v.parse::<f64>().ok().map(Json::from),
                _ => None,
            };
            let default = number.unwrap_or_else(|| default.to_json());
            if !default.is_null() {
                map.insert("default".into(), default);
            }
        }
    }
    schema
}
