//! A rendered cluster tree: relative path → bytes, in path order.

use std::collections::BTreeMap;

/// The files of one rendered cluster repository, keyed by `/`-separated relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderedTree {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl RenderedTree {
    /// Adds a file; returns the previous content when the path was taken.
    pub fn insert(&mut self, path: String, bytes: Vec<u8>) -> Option<Vec<u8>> {
        self.files.insert(path, bytes)
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Joins `base` and `rel` into a normalised relative path that stays inside `base`.
///
/// Rejects absolute paths, `..` that would leave `base`, empty segments and
/// backslashes, so that no template can write outside its cluster's directory.
pub fn safe_join(base: &str, rel: &str) -> Result<String, String> {
    if rel.starts_with('/') || rel.contains('\\') || rel.contains('\0') {
        return Err(format!("`{rel}` is not a relative path"));
    }
    let mut parts: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    let floor = parts.len();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.len() == floor {
                    return Err(format!("`{rel}` leaves `{base}`"));
                }
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.len() == floor {
        return Err(format!("`{rel}` names no file"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::safe_join;

    #[test]
    fn keeps_paths_inside_the_base() {
        assert_eq!(
            safe_join("manifests/x", "a.yaml").unwrap(),
            "manifests/x/a.yaml"
        );
        assert_eq!(
            safe_join("manifests/x", "sub/../b.yaml").unwrap(),
            "manifests/x/b.yaml"
        );
        assert!(safe_join("manifests/x", "../y/a.yaml").is_err());
        assert!(safe_join("manifests/x", "/etc/passwd").is_err());
        assert!(safe_join("", "../../x").is_err());
        assert_eq!(safe_join("", "apps/a.yaml").unwrap(), "apps/a.yaml");
    }
}
