//! YAML in and out: the only module that knows which YAML libraries are used.
//!
//! Reading goes through `yaml-rust2`'s event parser so that every key and value keeps
//! its `line:column`; values become [`Value`] (JSON-shaped, insertion-ordered) and typed
//! structs are read from them with `serde_path_to_error`, whose error path is looked up
//! in the [`Spans`] to point at the offending line. Writing uses `serde_norway` (the maintained fork of serde_yaml), whose
//! output is canonical (2-space indent, block style, keys in the order given); for a
//! [`Value`], [`emit`] writes the same bytes faster where it can.
//! Swapping either library touches this module only.
//!
//! The reader is bounded, whatever the text: collections nest at most [`MAX_DEPTH`] deep
//! (aliases included), and aliases copy at most [`alias_budget`] units (a unit is a node
//! or a byte of a string or key), so that a small file cannot expand to gigabytes (an
//! "alias bomb") or overflow the stack. Text is decoded by [`decode_text`]: a UTF-8 BOM is
//! dropped; invalid UTF-8 and NUL bytes are errors with their line and column.

use std::collections::BTreeMap;
use std::fmt;

pub mod emit;

use serde::Serialize;
use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// The deepest nesting of collections a YAML text may have, aliases included. The deepest
/// document kubeprint meets (an upstream CRD schema) nests 33 deep.
pub const MAX_DEPTH: usize = 128;
/// What aliases may copy in any text: see [`alias_budget`].
pub const ALIAS_FLOOR: u64 = 65_536;
/// What aliases may copy per byte of the text: see [`alias_budget`].
pub const ALIAS_PER_BYTE: u64 = 10;
/// What aliases may copy at most, however large the text: see [`alias_budget`].
pub const ALIAS_CAP: u64 = 1_000_000;

/// How many units (a node, or a byte of a string or key) the aliases of a text of `len`
/// bytes may copy in all: [`ALIAS_FLOOR`] + [`ALIAS_PER_BYTE`] × `len`, at most
/// [`ALIAS_CAP`]. Without aliases a text's values are bounded by its size; with them, by
/// its size and this budget.
pub fn alias_budget(len: usize) -> u64 {
    ALIAS_FLOOR
        .saturating_add(ALIAS_PER_BYTE.saturating_mul(len as u64))
        .min(ALIAS_CAP)
}

/// The size of a value in the units of [`alias_budget`]: one per value, plus the bytes
/// of its strings and keys.
pub fn weight(value: &Value) -> u64 {
    match value {
        Value::String(s) => 1 + s.len() as u64,
        Value::Array(items) => 1 + items.iter().map(weight).sum::<u64>(),
        Value::Object(map) => {
            1 + map
                .iter()
                .map(|(k, v)| k.len() as u64 + weight(v))
                .sum::<u64>()
        }
        _ => 1,
    }
}

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

/// What parsing texts gave, kept for the next time the same text comes: a diff renders
/// both sides of a cluster, and most of their templates print the same text on both. A
/// result is a pure function of the text, so a remembered one is the one parsing would
/// give; failures are not kept (they are reported with their own file).
#[derive(Debug, Default)]
pub struct Memo {
    documents: BTreeMap<String, Vec<Value>>,
    canonical: BTreeMap<String, String>,
}

impl Memo {
    /// [`parse_all_unlocated`], remembered.
    pub fn parse_all_unlocated(&mut self, file: &str, text: &str) -> Result<Vec<Value>> {
        if let Some(docs) = self.documents.get(text) {
            return Ok(docs.clone());
        }
        let docs = parse_all_unlocated(file, text)?;
        self.documents.insert(text.to_string(), docs.clone());
        Ok(docs)
    }

    /// [`canonical`], remembered.
    pub fn canonical(&mut self, file: &str, text: &str) -> Result<String> {
        if let Some(out) = self.canonical.get(text) {
            return Ok(out.clone());
        }
        let out = canonical(file, text)?;
        self.canonical.insert(text.to_string(), out.clone());
        Ok(out)
    }
}

/// The documents of a text written back canonically ([`to_multi_doc`] of
/// [`parse_all_unlocated`]); empty when the text holds none.
pub fn canonical(file: &str, text: &str) -> Result<String> {
    Ok(to_multi_doc(&parse_all_unlocated(file, text)?))
}

fn parse_documents(file: &str, text: &str, located: bool) -> Result<Vec<Document>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(at) = text.find('\0') {
        return Err(nul_error(file, text, at));
    }
    let mut builder = Builder {
        file,
        located,
        docs: Vec::new(),
        stack: Vec::new(),
        anchors: BTreeMap::new(),
        alias_budget: alias_budget(text.len()),
        alias_limit: alias_budget(text.len()),
        error: None,
    };
    // The events are pulled one by one (yaml-rust2's `load` recurses once per nesting
    // level, which a deep text turns into a stack overflow), and the first error stops
    // the parse.
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| Error::Syntax {
            file: file.to_string(),
            location: loc(e.marker()),
            message: e.info().to_string(),
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.on_event(event, mark);
        if let Some(e) = builder.error.take() {
            return Err(e);
        }
    }
    Ok(builder
        .docs
        .into_iter()
        .filter(|d| !d.value.is_null())
        .collect())
}

/// Decodes an input file: UTF-8, with or without a BOM (dropped), and no NUL byte.
/// Errors name the line and column of the first offending byte and what to do.
pub fn decode_text(file: &str, bytes: &[u8]) -> Result<String> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Error::Shape {
            file: file.to_string(),
            location: Location { line: 1, column: 1 },
            message: "the file is UTF-16 text; kubeprint reads UTF-8".into(),
            hint: Some("save the file as UTF-8 (with or without a BOM)".into()),
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let good = e.valid_up_to();
            let valid = std::str::from_utf8(&bytes[..good]).expect("valid up to there");
            return Err(Error::Shape {
                file: file.to_string(),
                location: position(valid, good),
                message: format!("byte 0x{:02X} is not UTF-8 text", bytes[good]),
                hint: Some(
                    "save the file as UTF-8 (kubeprint reads no other encoding), or fix the byte at that position"
                        .into(),
                ),
            });
        }
    };
    if let Some(at) = text.find('\0') {
        return Err(nul_error(file, text, at));
    }
    Ok(text.to_string())
}

fn nul_error(file: &str, text: &str, at: usize) -> Error {
    Error::Shape {
        file: file.to_string(),
        location: position(text, at),
        message: "a NUL byte: text files have none".into(),
        hint: Some(
            "remove the NUL byte; if the file is binary or UTF-16, save it as UTF-8 text".into(),
        ),
    }
}

/// The 1-based line and column (in characters) of byte `at` of `text`.
fn position(text: &str, at: usize) -> Location {
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        line: before.bytes().filter(|b| *b == b'\n').count() as u32 + 1,
        column: before[line_start..].chars().count() as u32 + 1,
    }
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

/// [`to_string`] of a [`Value`], the same bytes, written by [`emit`] where it can (most
/// documents, several times faster) and by `serde_norway` otherwise.
pub fn value_to_string(value: &Value) -> String {
    emit::document(value).unwrap_or_else(|emit::Unsupported| to_string(value))
}

/// Writes several documents separated by `---`.
pub fn to_multi_doc<V: std::borrow::Borrow<Value>>(values: &[V]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&value_to_string(v.borrow()));
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
        size: Size,
    },
    Map {
        path: String,
        map: Mapping,
        pending_key: Option<(String, Location)>,
        anchor: usize,
        size: Size,
    },
}

/// The weight (see [`weight`]) and height (nesting levels: 0 for a scalar) of a value,
/// kept as it is built so that an alias is costed without walking its value.
#[derive(Debug, Clone, Copy)]
struct Size {
    weight: u64,
    height: usize,
}

impl Size {
    const COLLECTION: Size = Size {
        weight: 1,
        height: 1,
    };

    fn add_child(&mut self, child: Size) {
        self.weight = self.weight.saturating_add(child.weight);
        self.height = self.height.max(child.height + 1);
    }
}

struct Builder<'a> {
    file: &'a str,
    /// Whether to record spans (paths are built only then).
    located: bool,
    docs: Vec<Document>,
    stack: Vec<Frame>,
    anchors: BTreeMap<usize, (Value, Size)>,
    /// What anchors and aliases may still copy, in units of [`weight`].
    alias_budget: u64,
    /// The whole budget of this text, for the error message.
    alias_limit: u64,
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

    /// Opens a collection, unless that nests deeper than [`MAX_DEPTH`].
    fn open(&mut self, frame: Frame, at: Location) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(
                at,
                format!("the YAML nests deeper than {MAX_DEPTH} levels"),
                "flatten the structure; no kubeprint input needs that depth",
            );
            return;
        }
        self.stack.push(frame);
    }

    fn push_value(&mut self, value: Value, size: Size, at: Location) {
        match self.stack.last_mut() {
            None => {
                if let Some(doc) = self.docs.last_mut() {
                    doc.value = value;
                }
            }
            Some(Frame::Seq {
                items, size: own, ..
            }) => {
                own.add_child(size);
                items.push(value);
            }
            Some(Frame::Map {
                map,
                pending_key,
                size: own,
                ..
            }) => match pending_key.take() {
                Some((key, _)) => {
                    own.add_child(size);
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
                    own.weight = own.weight.saturating_add(key.len() as u64);
                    *pending_key = Some((key, at));
                }
            },
        }
    }

    /// Takes `weight` units from the alias budget; false (and the error) when it has not
    /// that much left.
    fn charge(&mut self, weight: u64, at: Location) -> bool {
        if weight > self.alias_budget {
            self.fail(
                at,
                format!(
                    "the anchors and aliases of this file expand to more than {} nodes and bytes (an \"alias bomb\")",
                    self.alias_limit
                ),
                "write the values out, or use fewer and smaller aliases (`*name`)",
            );
            return false;
        }
        self.alias_budget -= weight;
        true
    }

    /// Records an anchored value; its copy counts against the alias budget.
    fn anchor(&mut self, id: usize, value: &Value, size: Size, at: Location) {
        if self.charge(size.weight, at) {
            self.anchors.insert(id, (value.clone(), size));
        }
    }

    /// The value an alias stands for, if the depth and the alias budget allow its copy.
    fn alias(&mut self, id: usize, at: Location) -> Option<(Value, Size)> {
        let Some(&(_, size)) = self.anchors.get(&id) else {
            self.fail(
                at,
                "this alias refers to an anchor that is not complete here (an alias inside its own anchor, or an anchor of another document)".into(),
                "define the anchor (`&name`) before and outside its aliases (`*name`), in the same document",
            );
            return None;
        };
        if self.stack.len() + size.height > MAX_DEPTH {
            self.fail(
                at,
                format!("this alias nests the YAML deeper than {MAX_DEPTH} levels"),
                "flatten the structure; no kubeprint input needs that depth",
            );
            return None;
        }
        // Charged before the copy is made: a refused alias costs nothing.
        if !self.charge(size.weight, at) {
            return None;
        }
        let (value, _) = &self.anchors[&id];
        Some((value.clone(), size))
    }

    fn on_event(&mut self, ev: Event, mark: Marker) {
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
                let size = Size {
                    weight: 1 + text.len() as u64,
                    height: 0,
                };
                if anchor > 0 {
                    self.anchor(anchor, &value, size, at);
                }
                self.push_value(value, size, at);
            }
            Event::Alias(id) => {
                self.next_path(at);
                if let Some((value, size)) = self.alias(id, at) {
                    self.push_value(value, size, at);
                }
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.next_path(at);
                match path {
                    Some(path) => self.open(
                        Frame::Seq {
                            path,
                            items: Vec::new(),
                            anchor,
                            size: Size::COLLECTION,
                        },
                        at,
                    ),
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
                    Some(path) => self.open(
                        Frame::Map {
                            path,
                            map: Mapping::new(),
                            pending_key: None,
                            anchor,
                            size: Size::COLLECTION,
                        },
                        at,
                    ),
                    None => self.fail(
                        at,
                        "a mapping key must be a plain value".into(),
                        "use a string key",
                    ),
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor, size) = match self.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        anchor,
                        size,
                        ..
                    }) => (Value::Array(items), anchor, size),
                    Some(Frame::Map {
                        map, anchor, size, ..
                    }) => {
                        if map.contains_key("<<") {
                            self.fail(
                                at,
                                "YAML merge keys (`<<`) are not supported".into(),
                                "write the keys out",
                            );
                        }
                        (Value::Object(map), anchor, size)
                    }
                    None => return,
                };
                if anchor > 0 {
                    self.anchor(anchor, &value, size, at);
                }
                self.push_value(value, size, at);
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

    /// `levels` anchors of 9 aliases each to the one before: 9^levels strings.
    pub(crate) fn alias_bomb(levels: usize) -> String {
        let mut text =
            String::from("settings:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..levels {
            let refs = vec![format!("*l{}", i - 1); 9].join(", ");
            text.push_str(&format!("  l{i}: &l{i} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_is_refused_at_the_alias_that_overflows_the_budget() {
        let text = alias_bomb(9);
        assert!(text.len() < 2048);
        let err = parse("bomb.yaml", &text).unwrap_err();
        let Error::Shape {
            location, message, ..
        } = &err
        else {
            panic!("{err}")
        };
        assert!(message.contains("alias bomb"), "{err}");
        assert!(
            message.contains(&alias_budget(text.len()).to_string()),
            "{err}"
        );
        // 9 + 81 + 729 + 6561 strings fit; the 5th level's aliases do not.
        assert_eq!(location.line, 6, "{err}");
        assert!(err.hint().is_some());
        // The typed read and the unlocated reader go through the same limits.
        assert!(from_str::<Value>("bomb.yaml", &text).is_err());
        assert!(parse_all_unlocated("bomb.yaml", &text).is_err());
    }

    #[test]
    fn aliases_within_the_budget_are_copied() {
        let doc = parse("a.yaml", "base: &b {x: 1, y: [a, b]}\none: *b\ntwo: *b\n").unwrap();
        assert_eq!(
            doc.value["two"],
            serde_json::json!({"x": 1, "y": ["a", "b"]})
        );
        assert_eq!(alias_budget(0), ALIAS_FLOOR);
        assert_eq!(alias_budget(10), ALIAS_FLOOR + 100);
        assert_eq!(alias_budget(usize::MAX), ALIAS_CAP);
    }

    #[test]
    fn what_the_reader_builds_stays_within_the_text_and_the_budget() {
        // The 4-level bomb fits: its output is bounded by the budget.
        let text = alias_bomb(4);
        let doc = parse("b.yaml", &text).unwrap();
        assert!(weight(&doc.value) <= 8 * text.len() as u64 + alias_budget(text.len()));
    }

    #[test]
    fn an_anchor_cannot_be_used_inside_itself_or_in_another_document() {
        let err = parse("r.yaml", "a: &a [1, *a]\n").unwrap_err();
        assert!(
            err.to_string().starts_with("r.yaml:1:11: this alias"),
            "{err}"
        );
        let err = parse_all("m.yaml", "a: &a 1\n---\nb: *a\n").unwrap_err();
        assert!(
            err.to_string().starts_with("m.yaml:3:4: this alias"),
            "{err}"
        );
    }

    #[test]
    fn nesting_is_bounded_without_overflowing_the_stack() {
        // Block sequences: one level per two characters, no recursion in the reader.
        let deep = "- ".repeat(20_000) + "x\n";
        let err = parse("deep.yaml", &deep).unwrap_err();
        assert!(err.to_string().contains("deeper than 128 levels"), "{err}");
        assert_eq!(err.to_string().split(':').nth(1), Some("1"), "{err}");
        // Flow collections.
        let flow = "[".repeat(200) + &"]".repeat(200);
        assert!(parse("flow.yaml", &flow).is_err());
        // Aliases of aliases: each adds a level.
        let mut chain = String::from("n0: &n0 [x]\n");
        for i in 1..2_000 {
            chain.push_str(&format!("n{i}: &n{i} [*n{}]\n", i - 1));
        }
        let err = parse("chain.yaml", &chain).unwrap_err();
        assert!(err.to_string().starts_with("chain.yaml:128:"), "{err}");
        assert!(err.to_string().contains("deeper than 128"), "{err}");
        // 128 levels are fine.
        let ok = "- ".repeat(MAX_DEPTH) + "x\n";
        assert!(parse("ok.yaml", &ok).is_ok());
        let over = "- ".repeat(MAX_DEPTH + 1) + "x\n";
        assert!(parse("over.yaml", &over).is_err());
    }

    #[test]
    fn a_bom_is_dropped_and_a_nul_is_an_error_at_its_position() {
        let doc = parse("bom.yaml", "\u{feff}# comment\na: 1\n").unwrap();
        assert_eq!(doc.value, serde_json::json!({"a": 1}));
        assert_eq!(doc.spans.get("a"), Some(Location { line: 2, column: 1 }));
        let err = parse("nul.yaml", "a: 1\nbé: x\0y\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "nul.yaml:2:6: a NUL byte: text files have none"
        );
        assert!(err.hint().unwrap().contains("remove the NUL byte"));
    }

    #[test]
    fn decoding_drops_a_bom_and_locates_what_is_not_text() {
        assert_eq!(decode_text("f", b"\xEF\xBB\xBFa: 1\n").unwrap(), "a: 1\n");
        let err = decode_text("f.yaml", b"a: 1\nb: caf\xE9\n").unwrap_err();
        assert_eq!(err.to_string(), "f.yaml:2:7: byte 0xE9 is not UTF-8 text");
        assert!(err.hint().unwrap().contains("UTF-8"));
        let err = decode_text("f.yaml", b"\xEF\xBB\xBFa: 1\n\0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml:2:1: a NUL byte: text files have none"
        );
        let err = decode_text("u16.yaml", b"\xFF\xFEa\0:\0").unwrap_err();
        assert!(err.to_string().contains("UTF-16"), "{err}");
    }

    #[test]
    fn a_memo_gives_what_parsing_gives_and_keeps_no_failure() {
        let mut memo = Memo::default();
        for text in [
            "a: 1\n",
            "a: 1\n---\nb: [x, 'y']\n",
            "",
            "# a comment\n",
            "--- |\n  x\n",
        ] {
            for _ in 0..2 {
                assert_eq!(
                    memo.canonical("f.yaml", text).unwrap(),
                    canonical("f.yaml", text).unwrap()
                );
                assert_eq!(
                    memo.parse_all_unlocated("f.yaml", text).unwrap(),
                    parse_all_unlocated("f.yaml", text).unwrap()
                );
            }
        }
        assert_eq!(canonical("f.yaml", "# nothing\n").unwrap(), "");
        for _ in 0..2 {
            let e = memo.canonical("g.yaml", "a: [\n").unwrap_err().to_string();
            assert!(e.contains("g.yaml"), "{e}");
        }
        assert_eq!(memo.canonical.len(), 5);
    }

    #[test]
    fn writes_canonically() {
        let v: Value = serde_json::json!({"b": "1.20", "a": [1, "x"], "m": "l1\nl2\n"});
        assert_eq!(to_string(&v), "b: '1.20'\na:\n- 1\n- x\nm: |\n  l1\n  l2\n");
    }
}
