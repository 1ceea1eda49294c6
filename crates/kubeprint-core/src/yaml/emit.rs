//! Writing YAML fast: a block-style writer for [`Value`] that gives the bytes
//! `serde_norway` (libyaml's emitter, unlimited width, unicode on) gives, for the documents
//! it can prove it writes the same way; for any other document it says so and the caller
//! uses `serde_norway`. Rendering writes about 130 KB of YAML per cluster and libyaml's
//! event machinery was a fifth of a render's CPU time.
//!
//! Each step mirrors the libyaml function it is named after (`write_indent`,
//! `write_indicator`, `increase_indent`, `analyze_scalar`, `select_scalar_style`, the
//! block sequence and mapping states), restricted to what a [`Value`] needs: block
//! collections, `[]` and `{}` for empty ones, plain, single-quoted and literal scalars.
//! Left to `serde_norway`: floats, any text with a byte outside printable ASCII and the
//! line feed, double-quoted scalars (what libyaml picks when neither plain, single-quoted
//! nor literal is allowed), literal scalars that need an indentation or keep hint, and
//! keys of more than 128 bytes (libyaml writes them as complex `? key` entries). The
//! differential test below holds the two writers to the same bytes on made-up values, and
//! `tests/it/yaml_corpus.rs` on every document of the vendored charts and upstream data.

use super::Value;

/// A document this writer does not write the way libyaml would; use `serde_norway`.
#[derive(Debug)]
pub struct Unsupported;

type Result = std::result::Result<(), Unsupported>;

/// Writes `value` as one YAML document (no `---`), exactly as `serde_norway::to_string`;
/// `Err` when the document needs a case this writer leaves to `serde_norway`.
pub fn document(value: &Value) -> std::result::Result<String, Unsupported> {
    let mut w = Writer {
        out: String::with_capacity(256),
        column: 0,
        indent: -1,
        whitespace: true,
        indention: true,
    };
    w.node(value, false, false)?;
    // The end of an implicit document.
    w.write_indent();
    Ok(w.out)
}

/// libyaml's `best_indent`.
const INDENT: i32 = 2;
/// libyaml writes a key longer than this as a complex key (`? key`).
const MAX_SIMPLE_KEY: usize = 128;

/// The scalar styles a caller may ask for (serde_norway's choice) and libyaml may pick.
/// serde_norway's "any" is libyaml's plain: the first thing `select_scalar_style` does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    Literal,
}

struct Writer {
    out: String,
    /// Characters written on the current line (every byte written is ASCII).
    column: usize,
    indent: i32,
    whitespace: bool,
    indention: bool,
}

impl Writer {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += s.len();
    }

    fn write_indent(&mut self) {
        let indent = usize::try_from(self.indent.max(0)).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        self.write(indicator);
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// Returns the indent to restore.
    fn increase_indent(&mut self, flow: bool, indentless: bool) -> i32 {
        let old = self.indent;
        if self.indent < 0 {
            self.indent = if flow { INDENT } else { 0 };
        } else if !indentless {
            self.indent += INDENT;
        }
        old
    }

    fn node(&mut self, value: &Value, mapping: bool, simple_key: bool) -> Result {
        match value {
            Value::Null => self.scalar("null", Style::Plain, simple_key),
            Value::Bool(b) => {
                self.scalar(if *b { "true" } else { "false" }, Style::Plain, simple_key)
            }
            Value::Number(n) => {
                let text = if let Some(i) = n.as_i64() {
                    i.to_string()
                } else if let Some(u) = n.as_u64() {
                    u.to_string()
                } else {
                    // serde_norway's float formatting (`.inf`, `.nan`, exponents) is its own.
                    return Err(Unsupported);
                };
                self.scalar(&text, Style::Plain, simple_key)
            }
            Value::String(s) => self.scalar(s, requested_style(s), simple_key),
            Value::Array(items) if items.is_empty() => {
                self.empty_flow("[", "]");
                Ok(())
            }
            Value::Object(map) if map.is_empty() => {
                self.empty_flow("{", "}");
                Ok(())
            }
            Value::Array(items) => {
                let old = self.increase_indent(false, mapping && !self.indention);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, false, false)?;
                }
                self.indent = old;
                Ok(())
            }
            Value::Object(map) => {
                let old = self.increase_indent(false, false);
                for (key, item) in map {
                    self.write_indent();
                    if key.len() > MAX_SIMPLE_KEY || key.contains(['\n', '\r']) {
                        return Err(Unsupported);
                    }
                    self.scalar(key, requested_style(key), true)?;
                    self.write_indicator(":", false, false, false);
                    self.node(item, true, false)?;
                }
                self.indent = old;
                Ok(())
            }
        }
    }

    /// An empty sequence or mapping: libyaml writes it in flow style.
    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        // The flow collection's indent is pushed and popped without a line between.
        self.write_indicator(close, false, false, false);
    }

    fn scalar(&mut self, text: &str, requested: Style, simple_key: bool) -> Result {
        let analysis = Analysis::of(text).ok_or(Unsupported)?;
        // select_scalar_style, in block context (flow_level 0) and without tags.
        let mut style = requested;
        if simple_key && analysis.multiline {
            return Err(Unsupported); // double-quoted
        }
        if style == Style::Plain
            && (!analysis.block_plain_allowed || (text.is_empty() && simple_key))
        {
            style = Style::SingleQuoted;
        }
        if style == Style::SingleQuoted && !analysis.single_quoted_allowed {
            return Err(Unsupported); // double-quoted
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            return Err(Unsupported); // double-quoted
        }
        let old = self.increase_indent(true, false);
        match style {
            Style::Plain => {
                if !self.whitespace && !text.is_empty() {
                    self.put(' ');
                }
                self.write(text);
                self.whitespace = false;
                self.indention = false;
            }
            Style::SingleQuoted => {
                self.write_indicator("'", true, false, false);
                for c in text.chars() {
                    if c == '\'' {
                        self.put('\'');
                    }
                    self.put(c);
                }
                self.write_indicator("'", false, false, false);
                self.whitespace = false;
                self.indention = false;
            }
            Style::Literal => self.literal(text)?,
        }
        self.indent = old;
        Ok(())
    }

    fn literal(&mut self, text: &str) -> Result {
        let bytes = text.as_bytes();
        // An indentation hint (text starting with a space or a line break) or a keep hint
        // (`+`: text ending in two line breaks, or only one) is libyaml's business.
        match bytes {
            [] | [b' ' | b'\n', ..] => return Err(Unsupported),
            [.., b'\n', b'\n'] => return Err(Unsupported),
            _ => {}
        }
        self.write_indicator("|", true, false, false);
        if bytes.last() != Some(&b'\n') {
            self.write_indicator("-", false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for line in text.split_inclusive('\n') {
            let (content, newline) = match line.strip_suffix('\n') {
                Some(content) => (content, true),
                None => (line, false),
            };
            if !content.is_empty() {
                if breaks {
                    self.write_indent();
                }
                self.write(content);
                self.indention = false;
                breaks = false;
            }
            if newline {
                self.put_break();
                self.indention = true;
                breaks = true;
            }
        }
        Ok(())
    }
}

/// The style serde_norway asks for: literal for text with a line feed, single-quoted for
/// text a plain scalar would read back as something else (null, a boolean, a number,
/// digits with a leading zero), plain where allowed otherwise.
fn requested_style(text: &str) -> Style {
    if text.contains('\n') {
        Style::Literal
    } else if reads_as_non_string(text) || digits_but_not_number(text) {
        Style::SingleQuoted
    } else {
        Style::Plain
    }
}

/// What libyaml's `yaml_emitter_analyze_scalar` finds, for text of printable ASCII and
/// line feeds; `None` for any other byte (left to serde_norway).
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(text: &str) -> Option<Analysis> {
        let s = text.as_bytes();
        if s.is_empty() {
            return Some(Analysis {
                multiline: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            });
        }
        if !s.iter().all(|&b| b == b'\n' || (0x20..=0x7e).contains(&b)) {
            return None;
        }
        let blankz = |i: usize| {
            s.get(i)
                .is_none_or(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        };
        let mut block_indicators = s.starts_with(b"---") || s.starts_with(b"...");
        let mut line_breaks = false;
        let (mut leading_space, mut leading_break) = (false, false);
        let (mut trailing_space, mut trailing_break) = (false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        let last = s.len() - 1;
        for (i, &c) in s.iter().enumerate() {
            let followed_by_whitespace = blankz(i + 1);
            if i == 0 {
                if matches!(
                    c,
                    b'#' | b','
                        | b'['
                        | b']'
                        | b'{'
                        | b'}'
                        | b'&'
                        | b'*'
                        | b'!'
                        | b'|'
                        | b'>'
                        | b'\''
                        | b'"'
                        | b'%'
                        | b'@'
                        | b'`'
                ) {
                    block_indicators = true;
                }
                if matches!(c, b'?' | b':') && followed_by_whitespace {
                    block_indicators = true;
                }
                if c == b'-' && followed_by_whitespace {
                    block_indicators = true;
                }
            } else {
                if c == b':' && followed_by_whitespace {
                    block_indicators = true;
                }
                if c == b'#' && preceded_by_whitespace {
                    block_indicators = true;
                }
            }
            if c == b' ' {
                leading_space |= i == 0;
                trailing_space |= i == last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if c == b'\n' {
                line_breaks = true;
                leading_break |= i == 0;
                trailing_break |= i == last;
                space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = matches!(c, b' ' | b'\n');
        }
        let edge_space = leading_space || leading_break || trailing_space || trailing_break;
        Some(Analysis {
            multiline: line_breaks,
            block_plain_allowed: !(edge_space
                || break_space
                || space_break
                || line_breaks
                || block_indicators),
            single_quoted_allowed: !(break_space || space_break),
            block_allowed: !(trailing_space || space_break),
        })
    }
}

// What a plain scalar reads back as, as serde_norway's `visit_untagged_scalar` decides
// (serde_norway 0.9.42, src/de.rs, MIT OR Apache-2.0): the writer quotes text that would
// read back as null, a boolean or a number.

fn reads_as_non_string(v: &str) -> bool {
    // Most text starts with a letter: then only the words below read as something else
    // (integers need a digit or a sign first; of the floats Rust parses, the ones starting
    // with a letter, `inf` and `nan`, are not finite and stay strings).
    if v.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        return matches!(
            v,
            "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
        );
    }
    v.is_empty()
        || matches!(v, "null" | "Null" | "NULL" | "~")
        || matches!(v, "true" | "True" | "TRUE" | "false" | "False" | "FALSE")
        || parse_unsigned_int(v, |s, r| u128::from_str_radix(s, r).is_ok())
        || parse_negative_int(v, |s, r| i128::from_str_radix(s, r).is_ok())
        || (!digits_but_not_number(v) && parse_f64(v))
}

fn digits_but_not_number(scalar: &str) -> bool {
    let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    scalar.len() > 1 && scalar.starts_with('0') && scalar[1..].bytes().all(|b| b.is_ascii_digit())
}

fn parse_unsigned_int(scalar: &str, parses: fn(&str, u32) -> bool) -> bool {
    let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return false;
            }
            if parses(rest, radix) {
                return true;
            }
        }
    }
    if unpositive.starts_with(['+', '-']) || digits_but_not_number(scalar) {
        return false;
    }
    parses(unpositive, 10)
}

fn parse_negative_int(scalar: &str, parses: fn(&str, u32) -> bool) -> bool {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = scalar.strip_prefix(prefix)
            && parses(&format!("-{rest}"), radix)
        {
            return true;
        }
    }
    if digits_but_not_number(scalar) {
        return false;
    }
    parses(scalar, 10)
}

fn parse_f64(scalar: &str) -> bool {
    let unpositive = match scalar.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return false,
        Some(u) => u,
        None => scalar,
    };
    matches!(unpositive, ".inf" | ".Inf" | ".INF")
        || matches!(
            scalar,
            "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN"
        )
        || unpositive.parse::<f64>().is_ok_and(f64::is_finite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The reference: what serde_norway writes.
    fn reference(value: &Value) -> String {
        serde_norway::to_string(value).expect("JSON-shaped")
    }

    /// Every text that decides a style: indicators at the start, inside and at the end,
    /// words and numbers a plain scalar would read back as something else, spaces and
    /// line breaks at the edges, quotes, and what this writer leaves to serde_norway.
    const TRICKY: &[&str] = &[
        "",
        "a",
        "null",
        "Null",
        "~",
        "true",
        "FALSE",
        "yes",
        "on",
        "0",
        "0123",
        "-0123",
        "+12",
        "-12",
        "1.5",
        "1e5",
        "1E-3",
        ".5",
        "5.",
        "0x1F",
        "0x",
        "0o17",
        "-0o17",
        "0b101",
        "0x+1",
        "+-1",
        "inf",
        "-inf",
        "nan",
        ".inf",
        "-.Inf",
        ".NaN",
        "1_000",
        "12:30",
        "-",
        "- a",
        "-a",
        "--",
        "---",
        "--- a",
        "...",
        "...x",
        "?",
        "? a",
        "?a",
        ":",
        ": a",
        ":a",
        "a:",
        "a: b",
        "a:b",
        "a :b",
        "#",
        "#a",
        "a#b",
        "a #b",
        "a# b",
        ",a",
        "a,b",
        "[a",
        "a]",
        "{a}",
        "a{b}",
        "&a",
        "*a",
        "!a",
        "|a",
        ">a",
        "'a",
        "\"a",
        "%a",
        "@a",
        "`a",
        "a'b",
        "it's",
        "a\"b",
        " a",
        "a ",
        " ",
        "a  b",
        "a\nb",
        "a\nb\n",
        "a\n\nb",
        "a\nb\n\n",
        "\n",
        "\na",
        " a\nb",
        "a \nb",
        "a\n b",
        "a\nb ",
        "a\n\n",
        "a\tb",
        "a\rb",
        "Infinity",
        "NaN",
        "e5",
        "E5",
        "nULL",
        "é",
        "a\u{2028}b",
        "x\u{1F600}",
        "http://x.y/z?a=b#c",
        "10Gi",
        "v1.2.3",
        "*.example.com",
        "ghcr.io/a/b:v1@sha256:00",
        "${VAR}",
        "{{ x }}",
        "a: b: c",
    ];

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(TRICKY).prop_map(str::to_string),
            "[a-z0-9 :#\\-?,\\[\\]{}'\"!&*|>%@`.+~\n]{0,12}",
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((text(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn every_tricky_text_is_written_as_serde_norway_writes_it_or_left_to_it() {
        let mut written = 0;
        for text in TRICKY {
            for doc in [
                json!(text),
                json!({ "key": text }),
                json!({ *text: "value" }),
                json!([text, [text], { "k": [text, text] }]),
                json!({ "a": { "b": [ { "c": text, "d": [] }, {} ] }, "e": [[text]] }),
            ] {
                if let Ok(fast) = document(&doc) {
                    written += 1;
                    assert_eq!(fast, reference(&doc), "{doc}");
                }
            }
        }
        // Most of them are this writer's: the test is not vacuous.
        assert!(written > TRICKY.len() * 4, "only {written} written");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2_000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(16),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_value_is_written_as_serde_norway_writes_it_or_left_to_it(v in value()) {
            if let Ok(fast) = document(&v) {
                prop_assert_eq!(fast, reference(&v));
            }
            prop_assert_eq!(crate::yaml::value_to_string(&v), reference(&v));
        }
    }
}
