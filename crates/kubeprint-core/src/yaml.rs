//! YAML in and out: the only module that knows which YAML libraries are used.
//!
//! Reading goes through `yaml-rust2`'s event parser so that every key and value keeps
//! its `line:column`; values become [`Value`] (JSON-shaped, insertion-ordered) and typed
//! structs are read from them with `serde_path_to_error`, whose error path is looked up
//! in the [`Spans`] to point at the offending line. Writing uses `serde_norway` (the maintained fork of serde_yaml), whose
//! output is canonical (2-space indent, block style, keys in the order given).
//! Swapping either library touches this file only.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML value: JSON-shaped, maps keep their source order.
pub type Value = serde_json::Value;
/// A YAML mapping.
pub type Mapping = serde_json::Map<String, Value>;

/// A position in a source file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where each value of a document starts, keyed by its path (`nodes.workers.hosts[2].address`).
///
/// For a mapping entry the location is that of its key, which is where a reader looks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans(BTreeMap<String, Location>);

impl Spans {
    /// The location of `path`, or of its nearest ancestor that has one.
    pub fn locate(&self, path: &str) -> Location {
        let mut p = path;
        loop {
            if let Some(loc) = self.0.get(p) {
                return *loc;
            }
            match parent_path(p) {
                Some(parent) => p = parent,
                None => {
                    return self
                        .0
                        .get("")
                        .copied()
                        .unwrap_or(Location { line: 1, column: 1 });
                }
            }
        }
    }

    /// The location of `path` when the document has it.
    pub fn get(&self, path: &str) -> Option<Location> {
        self.0.get(path).copied()
    }
}

/// The parent of a span path: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Joins a path and a mapping key the way [`Spans`] keys them.
pub fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// One parsed YAML document with the location of each of its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    pub spans: Spans,
}

/// Errors reading YAML; each names the file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{file}:{location}: invalid YAML: {message}")]
    Syntax {
        file: String,
        location: Location,
        message: String,
    },
    #[error("{file}:{location}: {message}")]
    Shape {
        file: String,
        location: Location,
        message: String,
        hint: Option<String>,
    },
}

impl Error {
    /// What the user can do about it, when there is something more to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Syntax { .. } => Some("fix the YAML syntax at that position"),
            Error::Shape { hint, .. } => hint.as_deref(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses a single-document YAML text. An empty text is `null`.
pub fn parse(file: &str, text: &str) -> Result<Document> {
    let mut docs = parse_all(file, text)?;
    match docs.len() {
        0 => Ok(Document {
            value: Value::Null,
            spans: Spans::default(),
        }),
        1 => Ok(docs.remove(0)),
        _ => Err(Error::Shape {
            file: file.to_string(),
            location: docs[1].spans.locate(""),
            message: "expected one YAML document, found several".into(),
            hint: Some("remove the `---` separator or split the file".into()),
        }),
    }
}

/// Parses a multi-document YAML text (`---` separated). Empty documents are dropped.
pub fn parse_all(file: &str, text: &str) -> Result<Vec<Document>> {
    parse_documents(file, text, true)
}

/// Like [`parse_all`], without recording the location of every value: for text that
/// kubeprint produced itself (rendered templates), where a problem is a syntax error whose
/// position the parser gives anyway. The documents' spans are empty.
pub fn parse_all_unlocated(file: &str, text: &str) -> Result<Vec<Value>> {
    Ok(parse_documents(file, text, false)?
        .into_iter()
        .map(|d| d.value)
        .collect())
}

fn parse_documents(file: &str, text: &str, located: bool) -> Result<Vec<Document>> {
    let mut builder = Builder {
        file,
        located,
        docs: Vec::new(),
        stack: Vec::new(),
        anchors: BTreeMap::new(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(Error::Syntax {
            file: file.to_string(),
            location: loc(m),
            message: e.info().to_string(),
        });
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder
        .docs
        .into_iter()
        .filter(|d| !d.value.is_null())
        .collect())
}

/// Reads a typed value from a parsed document; errors point at the offending key.
pub fn from_document<T: DeserializeOwned>(file: &str, doc: &Document) -> Result<T> {
    serde_path_to_error::deserialize::<_, T>(&doc.value).map_err(|err| {
        let path = span_path(err.path());
        let message = err.inner().to_string();
        let (location, hint) = match unknown_field(&message) {
            Some((field, expected)) => {
                // serde_path_to_error's path already ends with the unknown key.
                let key_path = if path.ends_with(field.as_str()) {
                    path.clone()
                } else {
                    child_path(&path, &field)
                };
                let hint = did_you_mean(&field, &expected)
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| {
                        Some(format!(
                            "the fields allowed here are: {}",
                            expected.join(", ")
                        ))
                    });
                (
                    doc.spans
                        .get(&key_path)
                        .unwrap_or_else(|| doc.spans.locate(&path)),
                    hint,
                )
            }
            None => (doc.spans.locate(&path), None),
        };
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        Error::Shape {
            file: file.to_string(),
            location,
            message: format!("{message}{at}"),
            hint,
        }
    })
}

/// Parses and reads a typed value in one step.
pub fn from_str<T: DeserializeOwned>(file: &str, text: &str) -> Result<(T, Spans)> {
    let doc = parse(file, text)?;
    let value = from_document(file, &doc)?;
    Ok((value, doc.spans))
}

/// Writes a value as one canonical YAML document (no leading `---`).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    // serde_yaml only fails on values YAML cannot hold (non-string map keys of
    // unsupported kinds); every value in this program is JSON-shaped.
    serde_norway::to_string(value).expect("JSON-shaped values always serialise to YAML")
}

/// Writes several documents separated by `---`.
pub fn to_multi_doc<T: Serialize>(values: &[T]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_string(v));
    }
    out
}

/// The closest of `candidates` to `word`, when one is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect();
    Some((field.to_string(), expected))
}

fn span_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = child_path(&out, key),
            Segment::Enum { variant } => out = child_path(&out, variant),
            Segment::Unknown => {}
        }
    }
    out
}

fn loc(m: &Marker) -> Location {
    Location {
        line: m.line() as u32,
        column: m.col() as u32 + 1,
    }
}

enum Frame {
    Seq {
        path: String,
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        path: String,
        map: Mapping,
        pending_key: Option<(String, Location)>,
        anchor: usize,
    },
}

struct Builder<'a> {
    file: &'a str,
    /// Whether to record spans (paths are built only then).
    located: bool,
    docs: Vec<Document>,
    stack: Vec<Frame>,
    anchors: BTreeMap<usize, Value>,
    error: Option<Error>,
}

impl Builder<'_> {
    /// The path the next value will have, and records its location.
    fn next_path(&mut self, at: Location) -> Option<String> {
        if !self.located {
            // Only whether the next value is a mapping key matters here.
            return match self.stack.last() {
                Some(Frame::Map {
                    pending_key: None, ..
                }) => None,
                _ => Some(String::new()),
            };
        }
        let spans = &mut self.docs.last_mut()?.spans.0;
        match self.stack.last() {
            None => {
                spans.insert(String::new(), at);
                Some(String::new())
            }
            Some(Frame::Seq { path, items, .. }) => {
                let p = format!("{path}[{}]", items.len());
                spans.insert(p.clone(), at);
                Some(p)
            }
            Some(Frame::Map {
                path,
                pending_key: Some((key, key_at)),
                ..
            }) => {
                let p = child_path(path, key);
                spans.insert(p.clone(), *key_at);
                Some(p)
            }
            Some(Frame::Map { .. }) => None, // this value is a key
        }
    }

    fn fail(&mut self, at: Location, message: String, hint: &str) {
        if self.error.is_none() {
            self.error = Some(Error::Shape {
                file: self.file.to_string(),
                location: at,
                message,
                hint: Some(hint.into()),
            });
        }
    }

    fn push_value(&mut self, value: Value, at: Location) {
        match self.stack.last_mut() {
            None => {
                if let Some(doc) = self.docs.last_mut() {
                    doc.value = value;
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                map, pending_key, ..
            }) => match pending_key.take() {
                Some((key, _)) => {
                    map.insert(key, value);
                }
                None => {
                    let key = match value {
                        Value::String(s) => s,
                        Value::Null => "null".to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => {
                            self.fail(
                                at,
                                "a mapping key must be a plain value".into(),
                                "use a string key",
                            );
                            return;
                        }
                    };
                    if map.contains_key(&key) {
                        self.fail(
                            at,
                            format!("duplicate key `{key}`"),
                            "remove one of the two entries",
                        );
                        return;
                    }
                    *pending_key = Some((key, at));
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let at = loc(&mark);
        match ev {
            Event::DocumentStart => {
                self.docs.push(Document {
                    value: Value::Null,
                    spans: Spans::default(),
                });
                self.anchors.clear();
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.next_path(at);
                let value = resolve_scalar(&text, style, tag.as_ref().map(|t| t.suffix.as_str()));
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push_value(value, at);
            }
            Event::Alias(id) => {
                self.next_path(at);
                let value = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                self.push_value(value, at);
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.next_path(at);
                match path {
                    Some(path) => self.stack.push(Frame::Seq {
                        path,
                        items: Vec::new(),
                        anchor,
                    }),
                    None => self.fail(
                        at,
                        "a mapping key must be a plain value".into(),
                        "use a string key",
                    ),
                }
            }
            Event::MappingStart(anchor, _) => {
                let path = self.next_path(at);
                match path {
                    Some(path) => self.stack.push(Frame::Map {
                        path,
                        map: Mapping::new(),
                        pending_key: None,
                        anchor,
                    }),
                    None => self.fail(
                        at,
                        "a mapping key must be a plain value".into(),
                        "use a string key",
                    ),
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map { map, anchor, .. }) => {
                        if map.contains_key("<<") {
                            self.fail(
                                at,
                                "YAML merge keys (`<<`) are not supported".into(),
                                "write the keys out",
                            );
                        }
                        (Value::Object(map), anchor)
                    }
                    None => return,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push_value(value, at);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// The YAML 1.2 core schema: plain scalars may be null, booleans or numbers.
fn resolve_scalar(text: &str, style: TScalarStyle, tag: Option<&str>) -> Value {
    if style != TScalarStyle::Plain || tag == Some("str") {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if let Some(n) = parse_int(text) {
            return Value::Number(n.into());
        }
        if let Ok(f) = text.parse::<f64>()
            && text.bytes().any(|b| b.is_ascii_digit())
            && !text.contains(['_', ' '])
            && let Some(n) = serde_json::Number::from_f64(f)
        {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn keeps_locations_of_keys_and_items() {
        let doc = parse("f.yaml", "a:\n  b: 1\n  list:\n    - x\n    - {c: 2}\n").unwrap();
        assert_eq!(doc.spans.get("a.b"), Some(Location { line: 2, column: 3 }));
        assert_eq!(doc.spans.get("a.list[1]").map(|l| l.line), Some(5));
        assert_eq!(doc.spans.get("a.list[1].c").map(|l| l.line), Some(5));
        assert_eq!(doc.spans.locate("a.list[1].missing").line, 5);
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let doc = parse(
            "f",
            "a: 1\nb: '1'\nc: 1.5\nd: true\ne: ~\nf: 1.20\ng: v1.2\nh: 0o17\n",
        )
        .unwrap();
        let v = &doc.value;
        assert_eq!(v["a"], serde_json::json!(1));
        assert_eq!(v["b"], serde_json::json!("1"));
        assert_eq!(v["c"], serde_json::json!(1.5));
        assert_eq!(v["d"], serde_json::json!(true));
        assert_eq!(v["e"], Value::Null);
        assert_eq!(v["g"], serde_json::json!("v1.2"));
        assert_eq!(v["h"], serde_json::json!(15));
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let err = parse("bad.yaml", "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(matches!(err, Error::Syntax { .. }), "{err}");
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("d.yaml", "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.to_string(), "d.yaml:3:1: duplicate key `a`");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)] // read only through Debug
    struct Inner {
        worker_count: u32,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read only through Debug
    struct Outer {
        nodes: Inner,
    }

    #[test]
    fn unknown_fields_point_at_the_key_and_suggest() {
        let doc = parse("c.yaml", "nodes:\n  workrCount: 3\n").unwrap();
        let err = from_document::<Outer>("c.yaml", &doc).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml:2:3: unknown field `workrCount`, expected `workerCount` at `nodes.workrCount`"
        );
        assert_eq!(err.hint(), Some("did you mean `workerCount`?"));
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let doc = parse("c.yaml", "nodes:\n  workerCount: many\n").unwrap();
        let err = from_document::<Outer>("c.yaml", &doc).unwrap_err();
        assert!(
            err.to_string().starts_with("c.yaml:2:3: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn writes_canonically() {
        let v: Value = serde_json::json!({"b": "1.20", "a": [1, "x"], "m": "l1\nl2\n"});
        assert_eq!(to_string(&v), "b: '1.20'\na:\n- 1\n- x\nm: |\n  l1\n  l2\n");
    }
}
