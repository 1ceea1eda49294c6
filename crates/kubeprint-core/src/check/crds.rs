//! Custom resources against the CRD schemas of the stack, embedded from `schemas/upstream/`.

use std::collections::BTreeMap;

use crate::yaml::Value;

macro_rules! crd {
    ($api:literal, $kind:literal, $file:literal) => {
        (
            $api,
            $kind,
            include_str!(concat!("../../../../schemas/upstream/", $file)),
        )
    };
}

/// (apiVersion, kind, openAPIV3Schema as JSON) of every CRD we have.
const CRDS: &[(&str, &str, &str)] = &[
    crd!(
        "argoproj.io/v1alpha1",
        "Application",
        "argo-cd/crds/openapi-json/applications.argoproj.io_v1alpha1.json"
    ),
    crd!(
        "argoproj.io/v1alpha1",
        "AppProject",
        "argo-cd/crds/openapi-json/appprojects.argoproj.io_v1alpha1.json"
    ),
    crd!(
        "argoproj.io/v1alpha1",
        "ApplicationSet",
        "argo-cd/crds/openapi-json/applicationsets.argoproj.io_v1alpha1.json"
    ),
    crd!(
        "kyverno.io/v1",
        "ClusterPolicy",
        "kyverno/crds/openapi-json/clusterpolicies.kyverno.io_v1.json"
    ),
    crd!(
        "kyverno.io/v2beta1",
        "ClusterPolicy",
        "kyverno/crds/openapi-json/clusterpolicies.kyverno.io_v2beta1.json"
    ),
    crd!(
        "policies.kyverno.io/v1",
        "ValidatingPolicy",
        "kyverno/crds/openapi-json/validatingpolicies.policies.kyverno.io_v1.json"
    ),
    crd!(
        "policies.kyverno.io/v1beta1",
        "ValidatingPolicy",
        "kyverno/crds/openapi-json/validatingpolicies.policies.kyverno.io_v1beta1.json"
    ),
    crd!(
        "policies.kyverno.io/v1alpha1",
        "ValidatingPolicy",
        "kyverno/crds/openapi-json/validatingpolicies.policies.kyverno.io_v1alpha1.json"
    ),
    crd!(
        "capsule.clastix.io/v1beta2",
        "Tenant",
        "capsule/crds/openapi-json/tenants.capsule.clastix.io_v1beta2.json"
    ),
    crd!(
        "capsule.clastix.io/v1beta1",
        "Tenant",
        "capsule/crds/openapi-json/tenants.capsule.clastix.io_v1beta1.json"
    ),
    crd!(
        "cert-manager.io/v1",
        "ClusterIssuer",
        "cert-manager/crds/openapi-json/clusterissuers.cert-manager.io_v1.json"
    ),
    crd!(
        "metallb.io/v1beta1",
        "IPAddressPool",
        "metallb/crds/openapi-json/ipaddresspools.metallb.io_v1beta1.json"
    ),
    crd!(
        "metallb.io/v1beta1",
        "L2Advertisement",
        "metallb/crds/openapi-json/l2advertisements.metallb.io_v1beta1.json"
    ),
    crd!(
        "ceph.rook.io/v1",
        "CephCluster",
        "rook/crds/openapi-json/cephclusters.ceph.rook.io_v1.json"
    ),
];

/// The embedded CRD schemas, compiled: (apiVersion, kind) → validator.
pub(super) fn compile() -> BTreeMap<(String, String), jsonschema::Validator> {
    CRDS.iter()
        .map(|(api, kind, text)| {
            let mut schema: Value =
                serde_json::from_str(text).expect("embedded CRD schema is JSON");
            structural_to_json_schema(&mut schema);
            let v = jsonschema::validator_for(&schema).expect("embedded CRD schema compiles");
            ((api.to_string(), kind.to_string()), v)
        })
        .collect()
}

/// A validator of the `spec` of one embedded CRD, as strict as the whole-object one.
pub(super) fn crd_spec_validator(api: &str, kind: &str) -> jsonschema::Validator {
    let (_, _, text) = CRDS
        .iter()
        .find(|(a, k, _)| *a == api && *k == kind)
        .expect("VALUES_AS_CRD_SPEC names an embedded CRD");
    let mut schema: Value = serde_json::from_str(text).expect("embedded CRD schema is JSON");
    structural_to_json_schema(&mut schema);
    let spec = schema
        .pointer("/properties/spec")
        .cloned()
        .expect("the CRD schema has a spec");
    jsonschema::validator_for(&spec).expect("embedded CRD spec schema compiles")
}

/// Turns a Kubernetes structural schema into a strict JSON Schema: `nullable` allows
/// null, `x-kubernetes-int-or-string` allows both, and objects that list their
/// properties (and do not preserve unknown fields) reject any other property.
pub fn structural_to_json_schema(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.remove("nullable") == Some(Value::Bool(true))
        && let Some(t) = obj.get("type").cloned()
    {
        obj.insert("type".into(), serde_json::json!([t, "null"]));
    }
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        obj.remove("type");
        obj.entry("anyOf")
            .or_insert_with(|| serde_json::json!([{"type": "integer"}, {"type": "string"}]));
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") && !preserve {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties", "patternProperties", "$defs", "definitions"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            props.values_mut().for_each(structural_to_json_schema);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(v) = obj.get_mut(key) {
            structural_to_json_schema(v);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = obj.get_mut(key) {
            list.iter_mut().for_each(structural_to_json_schema);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_embedded_crd_compiles() {
        assert_eq!(compile().len(), CRDS.len());
    }

    #[test]
    fn structural_schemas_become_strict() {
        let mut s = json!({"type": "object", "properties": {"a": {"type": "string", "nullable": true}, "p": {"x-kubernetes-int-or-string": true}, "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"k": {"type": "string"}}}}});
        structural_to_json_schema(&mut s);
        let v = jsonschema::validator_for(&s).unwrap();
        assert!(v.is_valid(&json!({"a": null, "p": 3, "free": {"other": 1}})));
        assert!(v.is_valid(&json!({"p": "50%"})));
        assert!(!v.is_valid(&json!({"b": 1})));
    }
}
