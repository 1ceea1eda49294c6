//! The hydration cache: helm's output (as redacted objects) by the key of its inputs
//! ([`crate::hydrate::TemplateInput::key`]), so that identical inputs hydrate once
//! across the fleet and across runs. An entry is `<dir>/hydrate/<k[0..2]>/<key>.json`:
//! a first line with the API versions its CRDs serve, then the objects as one JSON array.
//! Entries are written atomically; a damaged one is a miss.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::yaml::Value;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The hydration cache under one cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(root: &Path) -> Cache {
        Cache {
            dir: root.join("hydrate"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(&key[..2.min(key.len())])
            .join(format!("{key}.json"))
    }

    /// The API versions the CRDs of entry `key` serve; `None` on a miss.
    pub fn apis(&self, key: &str) -> Option<BTreeSet<String>> {
        let f = std::fs::File::open(self.path(key)).ok()?;
        let mut line = String::new();
        std::io::BufReader::new(f).read_line(&mut line).ok()?;
        serde_json::from_str(&line).ok()
    }

    /// The objects of entry `key`; `None` on a miss or a damaged entry.
    pub fn load(&self, key: &str) -> Option<Vec<Value>> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        let (_, objects) = text.split_once('\n')?;
        serde_json::from_str(objects).ok()
    }

    /// Stores the objects of `key` with the API versions of their CRDs.
    pub fn store(
        &self,
        key: &str,
        apis: &BTreeSet<String>,
        objects: &[Value],
    ) -> std::io::Result<()> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut bytes = serde_json::to_vec(apis).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        serde_json::to_writer(&mut bytes, objects).map_err(std::io::Error::other)?;
        write_atomic(&path, &bytes)
    }

    fn guess_path(&self, signature: &str) -> PathBuf {
        self.dir
            .join("api-versions")
            .join(format!("{signature}.json"))
    }

    /// The API versions a stack of this signature converged on last time.
    pub fn guess(&self, signature: &str) -> Option<BTreeSet<String>> {
        let text = std::fs::read_to_string(self.guess_path(signature)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn set_guess(&self, signature: &str, apis: &BTreeSet<String>) -> std::io::Result<()> {
        let path = self.guess_path(signature);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_atomic(
            &path,
            &serde_json::to_vec(apis).map_err(std::io::Error::other)?,
        )
    }
}
