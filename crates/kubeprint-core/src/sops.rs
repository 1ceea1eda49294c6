//! SOPS-format YAML files encrypted to age recipients: encrypt, decrypt and rekey.
//!
//! Byte-compatible with getsops/sops 3.x (`sops --decrypt` opens what this writes, and
//! this opens what `sops --encrypt --age` writes):
//! - a random 256-bit data key; every leaf value is sealed with AES-256-GCM and a random
//!   32-byte IV as `ENC[AES256_GCM,data:…,iv:…,tag:…,type:str|int|float|bool]`, with the
//!   key path joined by `:` plus a trailing `:` as additional data (`sops.go`,
//!   `aes/cipher.go`); list items add nothing to the path; empty strings stay empty;
//!   values under a key ending in `_unencrypted` stay in clear text;
//! - the MAC is the upper-case hex SHA-512 over the clear text of every value in
//!   document order, itself sealed with the data key and the `lastmodified` time
//!   (RFC 3339, UTC) as additional data;
//! - `sops.age[]` holds the data key encrypted to each recipient as an ASCII-armoured
//!   age file (`age/keysource.go`).
//!
//! Keys and clear text never reach an error message: errors name the file and the key path.

use std::io::{Read, Write};
use std::str::FromStr;

use aes_gcm::AesGcm;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::aes::cipher::consts::U32;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand_core::CryptoRngCore;
use serde_json::{Map, Number};
use sha2::{Digest, Sha512};

use crate::secret::Secret;
use crate::yaml::{self, Value};

/// AES-256-GCM with the 32-byte nonce SOPS uses.
type Cipher = AesGcm<Aes256, U32>;

/// The SOPS version written into the metadata: the format this module follows.
pub const SOPS_VERSION: &str = "3.11.0";
const UNENCRYPTED_SUFFIX: &str = "_unencrypted";
const PREFIX: &str = "ENC[AES256_GCM,";
/// `sha256("sops")`: the MAC's first bytes when `mac_only_encrypted` is set.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Errors of SOPS files; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Yaml(#[from] yaml::Error),
    #[error("{file}: not a SOPS file (no `sops` metadata with `age` keys)")]
    NotSops { file: String },
    #[error(
        "{file}: the file is encrypted to none of the given age identities (its recipients: {recipients})"
    )]
    NoMatchingIdentity { file: String, recipients: String },
    #[error("{file}: the data key encrypted to `{recipient}` cannot be read")]
    DataKey { file: String, recipient: String },
    #[error(
        "{file}: the value at `{path}` cannot be decrypted (wrong key, or the file was altered)"
    )]
    Value { file: String, path: String },
    #[error("{file}: MAC mismatch: the file was altered after it was encrypted")]
    Mac { file: String },
    #[error("`{recipient}` is not an age recipient (`age1…`)")]
    Recipient { recipient: String },
    #[error("no age recipient to encrypt to")]
    NoRecipients,
    #[error("{file}: no age identity (`AGE-SECRET-KEY-1…`) could be read")]
    Identity { file: String },
    #[error("{file}: the value at `{path}` has a type SOPS cannot encrypt")]
    Unsupported { file: String, path: String },
    #[error("age encryption failed")]
    Age(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// age identities (private keys) read from an identity file.
pub struct Identities(Vec<Box<dyn age::Identity + Send + Sync>>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities([{} redacted])", self.0.len())
    }
}

impl Identities {
    /// Reads an age identity file (`age-keygen` output; comments allowed). `file` names
    /// it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Identities> {
        let ids = age::IdentityFile::from_buffer(text.as_bytes())
            .ok()
            .and_then(|f| f.into_identities().ok())
            .filter(|ids| !ids.is_empty())
            .ok_or_else(|| Error::Identity {
                file: file.to_string(),
            })?;
        Ok(Identities(ids))
    }
}

/// Checks that every recipient is an age X25519 recipient.
pub fn check_recipients(recipients: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    if recipients.is_empty() {
        return Err(Error::NoRecipients);
    }
    recipients
        .iter()
        .map(|r| {
            age::x25519::Recipient::from_str(r.trim()).map_err(|_| Error::Recipient {
                recipient: r.clone(),
            })
        })
        .collect()
}

/// Encrypts a mapping to `recipients`; `now` is the `lastmodified` time.
///
/// The data key and every IV come from `rng`. The age crate draws the ephemeral X25519
/// share of each recipient stanza itself, from the operating system.
pub fn encrypt(
    file: &str,
    tree: &Secret<Value>,
    recipients: &[String],
    now: jiff::Timestamp,
    rng: &mut impl CryptoRngCore,
) -> Result<String> {
    let parsed = check_recipients(recipients)?;
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    let key = Secret::new(key);

    let mut hasher = Sha512::new();
    let data = seal_tree(file, tree.expose(), &key, &mut Vec::new(), &mut hasher, rng)?;
    let Value::Object(mut out) = data else {
        return Err(Error::NotSops {
            file: file.to_string(),
        });
    };

    let lastmodified = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mac = hex::encode_upper(hasher.finalize());
    let mac = seal(&key, mac.as_bytes(), &lastmodified, "str", rng);

    let mut age_entries = Vec::new();
    for (text, recipient) in recipients.iter().zip(&parsed) {
        let enc = armor_to(recipient, key.expose())?;
        age_entries.push(serde_json::json!({"recipient": text.trim(), "enc": enc}));
    }
    let mut meta = Map::new();
    meta.insert("age".into(), Value::Array(age_entries));
    meta.insert("lastmodified".into(), Value::String(lastmodified));
    meta.insert("mac".into(), Value::String(mac));
    meta.insert(
        "unencrypted_suffix".into(),
        Value::String(UNENCRYPTED_SUFFIX.into()),
    );
    meta.insert("version".into(), Value::String(SOPS_VERSION.into()));
    out.insert("sops".into(), Value::Object(meta));
    Ok(yaml::value_to_string(&Value::Object(out)))
}

/// The age recipients a SOPS file's data key is encrypted to.
pub fn recipients(file: &str, text: &str) -> Result<Vec<String>> {
    let doc = yaml::parse(file, text)?;
    let (_, meta) = split(file, doc.value)?;
    Ok(age_entries(&meta).into_iter().map(|(r, _)| r).collect())
}

/// Decrypts a SOPS YAML file with one of `identities`; checks the MAC.
pub fn decrypt(file: &str, text: &str, identities: &Identities) -> Result<Secret<Value>> {
    let doc = yaml::parse(file, text)?;
    let (data, meta) = split(file, doc.value)?;
    let key = data_key(file, &meta, identities)?;
    let mac_only_encrypted = meta
        .get("mac_only_encrypted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut hasher = Sha512::new();
    if mac_only_encrypted {
        hasher.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let clear = open_tree(
        file,
        &data,
        &key,
        &mut Vec::new(),
        &mut hasher,
        mac_only_encrypted,
    )?;
    let lastmodified = meta
        .get("lastmodified")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let stored = meta.get("mac").and_then(Value::as_str).unwrap_or_default();
    let expected = open(&key, stored, lastmodified).map_err(|_| Error::Mac {
        file: file.to_string(),
    })?;
    let computed = hex::encode_upper(hasher.finalize());
    if expected.0 != computed.as_bytes() {
        return Err(Error::Mac {
            file: file.to_string(),
        });
    }
    Ok(Secret::new(clear))
}

fn split(file: &str, value: Value) -> Result<(Value, Map<String, Value>)> {
    let Value::Object(mut map) = value else {
        return Err(Error::NotSops {
            file: file.to_string(),
        });
    };
    let Some(Value::Object(meta)) = map.shift_remove("sops") else {
        return Err(Error::NotSops {
            file: file.to_string(),
        });
    };
    if age_entries(&meta).is_empty() {
        return Err(Error::NotSops {
            file: file.to_string(),
        });
    }
    Ok((Value::Object(map), meta))
}

fn age_entries(meta: &Map<String, Value>) -> Vec<(String, String)> {
    let direct = meta
        .get("age")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Files with key groups keep their age entries under `key_groups[].age`.
    let grouped = meta
        .get("key_groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("age").and_then(Value::as_array))
        .flatten()
        .cloned();
    direct
        .into_iter()
        .chain(grouped)
        .filter_map(|e| {
            Some((
                e.get("recipient")?.as_str()?.to_string(),
                e.get("enc")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

fn data_key(
    file: &str,
    meta: &Map<String, Value>,
    identities: &Identities,
) -> Result<Secret<[u8; 32]>> {
    let entries = age_entries(meta);
    for (recipient, enc) in &entries {
        let reader = age::armor::ArmoredReader::new(enc.as_bytes());
        let Ok(decryptor) = age::Decryptor::new(reader) else {
            return Err(Error::DataKey {
                file: file.into(),
                recipient: recipient.clone(),
            });
        };
        let Ok(mut plain) = decryptor.decrypt(
            identities
                .0
                .iter()
                .map(|i| i.as_ref() as &dyn age::Identity),
        ) else {
            continue; // Not ours: try the next recipient.
        };
        let mut bytes = Vec::new();
        plain.read_to_end(&mut bytes).map_err(|_| Error::DataKey {
            file: file.into(),
            recipient: recipient.clone(),
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| Error::DataKey {
            file: file.into(),
            recipient: recipient.clone(),
        })?;
        return Ok(Secret::new(key));
    }
    Err(Error::NoMatchingIdentity {
        file: file.to_string(),
        recipients: entries
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn armor_to(recipient: &age::x25519::Recipient, key: &[u8; 32]) -> Result<String> {
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|e| Error::Age(std::io::Error::other(e.to_string())))?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(Error::Age)?;
    let mut writer = encryptor.wrap_output(armor).map_err(Error::Age)?;
    writer.write_all(key).map_err(Error::Age)?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(Error::Age)?;
    let mut text = String::from_utf8(out).map_err(|e| Error::Age(std::io::Error::other(e)))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn encrypted_path(path: &[String]) -> bool {
    !path.iter().any(|k| k.ends_with(UNENCRYPTED_SUFFIX))
}

fn additional_data(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

/// The bytes SOPS hashes and encrypts for a clear value, and its type tag.
fn leaf_bytes(value: &Value) -> Option<(String, &'static str)> {
    match value {
        Value::String(s) => Some((s.clone(), "str")),
        Value::Bool(b) => Some((if *b { "True" } else { "False" }.to_string(), "bool")),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some((n.to_string(), "int")),
        Value::Number(n) => Some((
            n.as_f64().map(|f| f.to_string()).unwrap_or_default(),
            "float",
        )),
        _ => None,
    }
}

fn seal_tree(
    file: &str,
    value: &Value,
    key: &Secret<[u8; 32]>,
    path: &mut Vec<String>,
    hasher: &mut Sha512,
    rng: &mut impl CryptoRngCore,
) -> Result<Value> {
    Ok(match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                path.push(k.clone());
                let sealed = seal_tree(file, v, key, path, hasher, rng)?;
                path.pop();
                out.insert(k.clone(), sealed);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| seal_tree(file, v, key, path, hasher, rng))
                .collect::<Result<_>>()?,
        ),
        Value::Null => Value::Null,
        leaf => {
            let (bytes, kind) = leaf_bytes(leaf).ok_or_else(|| Error::Unsupported {
                file: file.into(),
                path: path.join("."),
            })?;
            hasher.update(bytes.as_bytes());
            if !encrypted_path(path) {
                leaf.clone()
            } else if bytes.is_empty() {
                Value::String(String::new())
            } else {
                Value::String(seal(
                    key,
                    bytes.as_bytes(),
                    &additional_data(path),
                    kind,
                    rng,
                ))
            }
        }
    })
}

fn open_tree(
    file: &str,
    value: &Value,
    key: &Secret<[u8; 32]>,
    path: &mut Vec<String>,
    hasher: &mut Sha512,
    mac_only_encrypted: bool,
) -> Result<Value> {
    Ok(match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                path.push(k.clone());
                let opened = open_tree(file, v, key, path, hasher, mac_only_encrypted)?;
                path.pop();
                out.insert(k.clone(), opened);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| open_tree(file, v, key, path, hasher, mac_only_encrypted))
                .collect::<Result<_>>()?,
        ),
        Value::Null => Value::Null,
        Value::String(s) if s.starts_with(PREFIX) && encrypted_path(path) => {
            let (plain, kind) = open(key, s, &additional_data(path)).map_err(|_| Error::Value {
                file: file.into(),
                path: path.join("."),
            })?;
            let text = String::from_utf8(plain).map_err(|_| Error::Value {
                file: file.into(),
                path: path.join("."),
            })?;
            hasher.update(text.as_bytes());
            typed(&text, &kind).ok_or_else(|| Error::Value {
                file: file.into(),
                path: path.join("."),
            })?
        }
        leaf => {
            let (bytes, _) = leaf_bytes(leaf).ok_or_else(|| Error::Unsupported {
                file: file.into(),
                path: path.join("."),
            })?;
            // Clear values count in the MAC unless only encrypted ones do (an empty
            // string adds no bytes either way).
            if !mac_only_encrypted {
                hasher.update(bytes.as_bytes());
            }
            leaf.clone()
        }
    })
}

fn typed(text: &str, kind: &str) -> Option<Value> {
    Some(match kind {
        "str" | "comment" | "bytes" => Value::String(text.to_string()),
        "int" | "int64" => Value::Number(text.parse::<i64>().ok()?.into()),
        "float" => Value::Number(Number::from_f64(text.parse::<f64>().ok()?)?),
        "bool" => Value::Bool(matches!(text, "1" | "t" | "T" | "TRUE" | "true" | "True")),
        _ => return None,
    })
}

fn seal(
    key: &Secret<[u8; 32]>,
    plain: &[u8],
    aad: &str,
    kind: &str,
    rng: &mut impl CryptoRngCore,
) -> String {
    let cipher = Cipher::new(GenericArray::from_slice(key.expose()));
    let mut iv = [0u8; 32];
    rng.fill_bytes(&mut iv);
    let sealed = cipher
        .encrypt(
            GenericArray::from_slice(&iv),
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .expect("AES-GCM encryption of an in-memory value cannot fail");
    let (data, tag) = sealed.split_at(sealed.len() - 16);
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        B64.encode(data),
        B64.encode(iv),
        B64.encode(tag)
    )
}

/// Opens one `ENC[…]` value: (clear bytes, type tag).
fn open(key: &Secret<[u8; 32]>, value: &str, aad: &str) -> Result<(Vec<u8>, String), ()> {
    let inner = value
        .strip_prefix(PREFIX)
        .and_then(|v| v.strip_suffix(']'))
        .ok_or(())?;
    let mut data = None;
    let mut iv = None;
    let mut tag = None;
    let mut kind = None;
    for part in inner.split(',') {
        let (k, v) = part.split_once(':').ok_or(())?;
        match k {
            "data" => data = Some(B64.decode(v).map_err(|_| ())?),
            "iv" => iv = Some(B64.decode(v).map_err(|_| ())?),
            "tag" => tag = Some(B64.decode(v).map_err(|_| ())?),
            "type" => kind = Some(v.to_string()),
            _ => return Err(()),
        }
    }
    let (mut data, iv, tag, kind) = (
        data.ok_or(())?,
        iv.ok_or(())?,
        tag.ok_or(())?,
        kind.ok_or(())?,
    );
    if iv.len() != 32 || tag.len() != 16 {
        return Err(());
    }
    data.extend_from_slice(&tag);
    let cipher = Cipher::new(GenericArray::from_slice(key.expose()));
    let plain = cipher
        .decrypt(
            GenericArray::from_slice(&iv),
            Payload {
                msg: &data,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| ())?;
    Ok((plain, kind))
}

/// Why a `*.sops.yaml` file is not wholly encrypted. Never holds a value of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotEncrypted {
    /// `file:line:column`.
    pub location: String,
    pub message: String,
    pub hint: &'static str,
}

/// Whether `text` is a SOPS file with every value encrypted: a `sops` map with a `mac`
/// and at least one age recipient (`age1…` with its ASCII-armoured data key), and every
/// other leaf an `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value (empty strings aside:
/// SOPS leaves them empty). No key is exempt: a Talos bundle has nothing to leave in
/// clear text, whatever `unencrypted_suffix` says. Structural only: the MAC is verified
/// where an identity is at hand ([`decrypt`]). The first problem, in document order,
/// is returned with the key path and never the value.
pub fn check_encrypted(file: &str, text: &str) -> Result<(), NotEncrypted> {
    let fail = |location: String, message: String, hint: &'static str| {
        Err(NotEncrypted {
            location,
            message,
            hint,
        })
    };
    let doc = match yaml::parse(file, text) {
        Ok(doc) => doc,
        Err(e) => {
            // The parser's message may quote the text: keep only where it is.
            let at = match &e {
                yaml::Error::Syntax { location, .. } | yaml::Error::Shape { location, .. } => {
                    format!("{file}:{location}")
                }
            };
            return fail(
                at,
                format!("`{file}` is not valid YAML, so not a SOPS file"),
                "encrypt it with `kubeprint talos secrets create` or `sops --encrypt --age`",
            );
        }
    };
    let at = |path: &str| format!("{file}:{}", doc.spans.locate(path));
    let Some(root) = doc.value.as_object() else {
        return fail(
            at(""),
            format!("`{file}` is not a SOPS file (not a map)"),
            "encrypt it with `kubeprint talos secrets create` or `sops --encrypt --age`",
        );
    };
    let mut first_plain = None;
    for (k, v) in root {
        if k != "sops" {
            first_plaintext(k, v, &mut first_plain);
        }
        if first_plain.is_some() {
            break;
        }
    }
    let Some(meta) = root.get("sops").and_then(Value::as_object) else {
        let (location, what) = match &first_plain {
            Some(path) => (at(path), format!(", `{path}` is in clear text")),
            None => (at(""), String::new()),
        };
        return fail(
            location,
            format!("`{file}` has no `sops` metadata: it is not encrypted{what}"),
            "never commit a plaintext bundle: encrypt it (`sops --encrypt --age RECIPIENT --in-place FILE`) and rotate its secrets",
        );
    };
    if !meta.get("mac").and_then(Value::as_str).is_some_and(is_enc) {
        return fail(
            at("sops"),
            format!("`{file}` has no encrypted `sops.mac`"),
            "a SOPS file carries the MAC of its values: re-encrypt it with sops",
        );
    }
    let recipients = meta.get("age").and_then(Value::as_array);
    let age_ok = recipients.is_some_and(|r| {
        !r.is_empty()
            && r.iter().all(|k| {
                k.get("recipient")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.starts_with("age1"))
                    && k.get("enc")
                        .and_then(Value::as_str)
                        .is_some_and(|e| e.contains("-----BEGIN AGE ENCRYPTED FILE-----"))
            })
    });
    if !age_ok {
        return fail(
            at("sops"),
            format!("`{file}` is not encrypted to an age recipient (`sops.age`)"),
            "encrypt it to the fleet's `ageRecipients` (`kubeprint talos secrets rekey`)",
        );
    }
    match first_plain {
        None => Ok(()),
        Some(path) => fail(
            at(&path),
            format!("`{file}` holds a value in clear text at `{path}`"),
            "every value of a SOPS file is encrypted: encrypt the file again with sops, and rotate the secrets it exposed",
        ),
    }
}

/// The span path of the first leaf under `path` that is not an encrypted value.
fn first_plaintext(path: &str, v: &Value, out: &mut Option<String>) {
    if out.is_some() {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, item) in m {
                first_plaintext(&format!("{path}.{k}"), item, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                first_plaintext(&format!("{path}[{i}]"), item, out);
            }
        }
        Value::String(s) if s.is_empty() || is_enc(s) => {}
        _ => *out = Some(path.to_string()),
    }
}

/// Whether `s` has the shape of a SOPS value: `ENC[AES256_GCM,data:B64,iv:B64,tag:B64,type:T]`.
fn is_enc(s: &str) -> bool {
    let Some(body) = s.strip_prefix(PREFIX).and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    let mut parts = body.split(',');
    let b64 = |p: Option<&str>, key: &str| {
        p.and_then(|p| p.strip_prefix(key))
            .is_some_and(|v| B64.decode(v).is_ok())
    };
    b64(parts.next(), "data:")
        && b64(parts.next(), "iv:")
        && b64(parts.next(), "tag:")
        && parts
            .next()
            .and_then(|p| p.strip_prefix("type:"))
            .is_some_and(|t| ["str", "int", "float", "bool", "bytes"].contains(&t))
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair() -> (Identities, String) {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        let text = format!(
            "# test\n{}\n",
            age::secrecy::ExposeSecret::expose_secret(&id.to_string())
        );
        (Identities::parse("key.txt", &text).unwrap(), public)
    }

    fn now() -> jiff::Timestamp {
        "2026-11-25T08:00:00Z".parse().unwrap()
    }

    #[test]
    fn round_trip_keeps_keys_order_and_types() {
        let (ids, public) = keypair();
        let tree = serde_json::json!({
            "cluster": {"id": "abc", "secret": "s e"},
            "list": ["a", "b"], "n": 3, "f": 1.5, "b": true, "empty": "",
            "note_unencrypted": "visible",
        });
        let text = encrypt(
            "t.yaml",
            &Secret::new(tree.clone()),
            &[public],
            now(),
            &mut crate::test_rng(),
        )
        .unwrap();
        assert!(
            !text.contains("s e")
                && text.contains("visible")
                && text.contains("lastmodified: 2026-11-25T08:00:00Z")
        );
        let back = decrypt("t.yaml", &text, &ids).unwrap();
        assert_eq!(back.expose(), &tree);
    }

    #[test]
    fn wrong_identity_and_tampering_are_errors() {
        let (_, public) = keypair();
        let (other, _) = keypair();
        let tree = serde_json::json!({"a": "secret-value"});
        let text = encrypt(
            "t.yaml",
            &Secret::new(tree),
            std::slice::from_ref(&public),
            now(),
            &mut crate::test_rng(),
        )
        .unwrap();
        let err = decrypt("t.yaml", &text, &other).unwrap_err();
        assert!(matches!(err, Error::NoMatchingIdentity { .. }), "{err}");
        assert!(err.to_string().contains(&public));

        // Swapping two encrypted values breaks their additional data.
        let (ids, public) = keypair();
        let tree = serde_json::json!({"a": "one", "b": "two"});
        let text = encrypt(
            "t.yaml",
            &Secret::new(tree),
            &[public],
            now(),
            &mut crate::test_rng(),
        )
        .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let a = lines
            .iter()
            .find(|l| l.starts_with("a: "))
            .unwrap()
            .trim_start_matches("a: ");
        let b = lines
            .iter()
            .find(|l| l.starts_with("b: "))
            .unwrap()
            .trim_start_matches("b: ");
        let swapped = text.replace(a, "@@").replace(b, a).replace("@@", b);
        let err = decrypt("t.yaml", &swapped, &ids).unwrap_err();
        assert!(
            matches!(err, Error::Value { ref path, .. } if path == "a"),
            "{err}"
        );
        assert!(!err.to_string().contains("one"));
    }

    #[test]
    fn bad_recipients_are_refused() {
        assert!(matches!(check_recipients(&[]), Err(Error::NoRecipients)));
        assert!(matches!(
            check_recipients(&["age1nope".into()]),
            Err(Error::Recipient { .. })
        ));
    }

    #[test]
    fn only_wholly_encrypted_files_pass_the_structural_check() {
        let bundle = crate::model::example::FILES
            .iter()
            .find(|(p, _)| p.ends_with("acme-prod/talos-secrets.sops.yaml"))
            .expect("the example bundle")
            .1;
        let f = "b.sops.yaml";
        assert_eq!(check_encrypted(f, bundle), Ok(()));
        let refused = |text: &str| check_encrypted(f, text).expect_err("refused");
        // Plaintext: no metadata at all.
        let e = refused("cluster:\n  id: c2VjcmV0\n  secret: hunter2\n");
        assert_eq!(e.location, "b.sops.yaml:2:3");
        assert!(e.message.contains("`cluster.id` is in clear text"), "{e:?}");
        assert!(
            !e.message.contains("hunter2") && !e.message.contains("c2VjcmV0"),
            "{e:?}"
        );
        // One value decrypted by hand in an encrypted file: named by its path and line.
        let one_plain = bundle.replacen(
            &bundle[bundle.find("  secret: ENC[").unwrap()..bundle.find("\nsecrets:").unwrap()],
            "  secret: hunter2",
            1,
        );
        let e = refused(&one_plain);
        assert_eq!(e.location, "b.sops.yaml:3:3");
        assert_eq!(
            e.message,
            "`b.sops.yaml` holds a value in clear text at `cluster.secret`"
        );
        // A number, a value under a `_unencrypted` key, a malformed ENC.
        for (from, to) in [
            ("  secret: ENC[", "  secret: 42\n  x: ENC["),
            ("  secret: ENC[", "  secret_unencrypted: hunter2\n  x: ENC["),
            (
                "  secret: ENC[AES256_GCM,data:",
                "  secret: ENC[AES256_GCM,data:!",
            ),
        ] {
            let e = refused(&bundle.replacen(from, to, 1));
            assert!(e.message.contains("in clear text"), "{from}: {e:?}");
            assert!(!e.message.contains("hunter2"));
        }
        // No MAC, no age recipient.
        let mac_at = bundle.find("  mac: ").unwrap();
        let mac_end = mac_at + bundle[mac_at..].find('\n').unwrap() + 1;
        let no_mac = format!("{}{}", &bundle[..mac_at], &bundle[mac_end..]);
        assert!(refused(&no_mac).message.contains("no encrypted `sops.mac`"));
        let no_age = bundle.replacen("  - recipient: age1", "  - recipient: x", 1);
        assert!(refused(&no_age).message.contains("age recipient"));
        assert!(refused("a: [").message.contains("not valid YAML"));
    }
}
