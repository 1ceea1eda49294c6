//! The complete machine config of one node: base config + secrets bundle + node patch.
//!
//! Pure: documents and a bundle in, documents out (inside a [`Secret`]). The node patch's
//! `v1alpha1` document is merged over the base (maps merge, lists and scalars replace, as
//! the overlays do); its other documents follow. The secrets go where `talosctl gen
//! config` puts them: control planes get every CA with its key; workers get only the
//! certificates of the OS and Kubernetes CAs, the trustd token, the bootstrap token and
//! the cluster id and secret.

use serde_json::json;

use crate::model::cluster::Role;
use crate::secret::Secret;
use crate::talos::secrets::Bundle;
use crate::yaml::Value;

/// Errors assembling a config; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{file}` holds no `v1alpha1` document (a document without `kind`)")]
    NoBase { file: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Merges base, secrets and node patch into the documents of one node's complete config.
pub fn assemble(
    base_file: &str,
    base: &[Value],
    patch: &[Value],
    bundle: &Bundle,
    role: Role,
) -> Result<Secret<Vec<Value>>> {
    let mut config = base
        .iter()
        .find(|d| d.get("kind").is_none())
        .cloned()
        .ok_or_else(|| Error::NoBase {
            file: base_file.to_string(),
        })?;
    let mut extra = Vec::new();
    for doc in patch {
        if doc.get("kind").is_none() {
            merge(&mut config, doc);
        } else {
            extra.push(doc.clone());
        }
    }
    merge(&mut config, &secrets_patch(bundle, role));
    let mut docs = vec![config];
    docs.extend(extra);
    Ok(Secret::new(docs))
}

/// The secret fields of a role's `v1alpha1` document, as a patch.
fn secrets_patch(b: &Bundle, role: Role) -> Value {
    let control_plane = role == Role::ControlPlane;
    let ck = |c: &crate::talos::secrets::CertAndKey| {
        if control_plane {
            json!({"crt": c.crt, "key": c.key.expose()})
        } else {
            json!({"crt": c.crt, "key": ""})
        }
    };
    let mut cluster = json!({
        "id": b.cluster_id.expose(),
        "secret": b.cluster_secret.expose(),
        "token": b.bootstrap_token.expose(),
        "ca": ck(&b.k8s),
    });
    if control_plane {
        cluster["secretboxEncryptionSecret"] = json!(b.secretbox_encryption_secret.expose());
        cluster["aggregatorCA"] = ck(&b.k8s_aggregator);
        cluster["serviceAccount"] = json!({"key": b.k8s_service_account_key.expose()});
        cluster["etcd"] = json!({"ca": ck(&b.etcd)});
    }
    json!({
        "machine": {"token": b.trustd_token.expose(), "ca": ck(&b.os)},
        "cluster": cluster,
    })
}

/// Merges a patch document over a base document as `kubeprint talos config` does: maps
/// merge key by key; lists and scalars replace.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_patch_and_secrets_by_role() {
        let bundle = Bundle::generate(
            "2026-11-25T08:00:00Z".parse().unwrap(),
            &mut crate::test_rng(),
        )
        .unwrap();
        let base = vec![
            json!({"version": "v1alpha1", "machine": {"type": "worker", "install": {"image": "i"}}, "cluster": {"clusterName": "c"}}),
        ];
        let patch = vec![
            json!({"machine": {"install": {"disk": "/dev/sda"}}}),
            json!({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "n"}),
        ];
        let docs = assemble("w.yaml", &base, &patch, &bundle, Role::Worker).unwrap();
        let d = docs.expose();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0]["machine"]["install"],
            json!({"image": "i", "disk": "/dev/sda"})
        );
        assert_eq!(d[0]["machine"]["ca"]["key"], json!(""));
        assert_eq!(
            d[0]["cluster"]["token"],
            json!(bundle.bootstrap_token.expose())
        );
        assert!(d[0]["cluster"].get("serviceAccount").is_none());
        let cp = assemble("c.yaml", &base, &patch, &bundle, Role::ControlPlane).unwrap();
        assert_eq!(
            cp.expose()[0]["cluster"]["etcd"]["ca"]["key"],
            json!(bundle.etcd.key.expose())
        );
        assert_eq!(format!("{cp:?}"), "[redacted]");
    }
}
