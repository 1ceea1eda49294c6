//! Writes the JSON schema of every built-in kind of one Kubernetes minor, from
//! k8s-openapi's `schemars` impls (themselves generated from the upstream OpenAPI spec of
//! that minor), shaped for an offline strict check of what `kubectl apply` would send:
//!
//! - descriptions (and `format`, and the `x-kubernetes-*` extensions) stripped: size;
//! - `additionalProperties: false` on every object schema that lists its properties
//!   (strict: an unknown field is an error, as `kubectl --validate=strict` makes it);
//! - `IntOrString` an integer or a string, `Quantity` a string or a number, as the API
//!   server decodes them; `JSON` (a CRD schema's `default`, `example`, `enum`) any value.
//!
//! Null values are allowed by the checker (it drops them before validating, as the API
//! server treats a null field as unset), so the schemas do not say so.
//!
//! Output (stdout): `{"minor": "1.36", "source": ..., "kinds": {"apps/v1/Deployment":
//! "io.k8s.api.apps.v1.Deployment", ...}, "$defs": {...}}`, keys sorted, one definition
//! per line.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

fn main() {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    macro_rules! kind {
        ($($t:ty),* $(,)?) => {{$({
            let reference = generator.subschema_for::<$t>();
            let name = reference
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .expect("a kind is a definition")
                .to_string();
            kinds.insert(
                format!(
                    "{}/{}",
                    <$t as k8s_openapi::Resource>::API_VERSION,
                    <$t as k8s_openapi::Resource>::KIND
                ),
                name,
            );
        })*}};
    }
    include!(env!("K8S_KINDS_RS"));
    let mut defs: BTreeMap<String, Value> = generator
        .take_definitions(true)
        .into_iter()
        .collect();
    for (name, schema) in defs.iter_mut() {
        match name.as_str() {
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
                *schema = serde_json::json!({"type": ["integer", "string"]});
            }
            // `default`, `example` and `enum` of a CRD's schema: any JSON value.
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON" => {
                *schema = serde_json::json!({});
            }
            "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
                *schema = serde_json::json!({"type": ["string", "number"]});
            }
            _ => shape(schema),
        }
    }
    let minor = std::env::var("K8S_OPENAPI_ENABLED_VERSION").expect("the minor is set");
    let mut out = String::new();
    out.push_str("{\n");
    out.push_str(&format!("\"minor\": {},\n", Value::from(minor.clone())));
    out.push_str(&format!(
        "\"source\": {},\n",
        Value::from(format!(
            "k8s-openapi 0.29.0 (crates.io, Apache-2.0), feature schemars, Kubernetes {minor}: JsonSchema impls generated from the upstream OpenAPI spec; shaped by xtask/k8s-schemas"
        ))
    ));
    out.push_str(&format!(
        "\"kinds\": {},\n",
        serde_json::to_string(&kinds).expect("serialisable")
    ));
    out.push_str("\"$defs\": {\n");
    let n = defs.len();
    for (i, (name, schema)) in defs.iter().enumerate() {
        out.push_str(&format!(
            "{}: {}{}\n",
            Value::from(name.clone()),
            serde_json::to_string(schema).expect("serialisable"),
            if i + 1 < n { "," } else { "" }
        ));
    }
    out.push_str("}\n}\n");
    print!("{out}");
}

/// Strips what a check does not need and makes objects strict, recursively.
fn shape(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    map.remove("description");
    map.remove("format");
    map.retain(|k, _| !k.starts_with("x-kubernetes-"));
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for v in props.values_mut() {
            shape(v);
        }
    }
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(v) = map.get_mut(key) {
            shape(v);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = map.get_mut(key) {
            for v in items {
                shape(v);
            }
        }
    }
    let _: &mut Map<String, Value> = map;
}
