//! A fuzz target run by `cargo test`: mutations of the example cluster specs (alias bombs,
//! deep nesting, odd scalars, BOM, NUL, cut and shuffled lines) through the spec loader,
//! the overlay merge (`plan`) and the template context (a render of the cluster).
//!
//! A fixed seed and a bounded number of cases keep it deterministic and fast. Each case
//! must end without a panic or an abort (a stack overflow would end the test binary),
//! build no more than the YAML reader's budget allows, and every rejection must name a
//! file and line. One rejected case then runs through the binary: exit 2 and `file:line`.

use std::sync::LazyLock;

use kubeprint::diagnostics::Severity;
use kubeprint::model::Sources;
use kubeprint::{fleet, yaml};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestRunner};

use crate::support::{Fixture, TODAY};

/// The cases run; about 3 s in a debug build.
const CASES: u32 = 64;
/// The seed: a change of strategy changes the cases, never the run-to-run outcome.
const SEED: u64 = 0x6b75_6265_7072_696e;

const SPECS: [&str; 3] = [
    "overlays/clusters/acme-prod.yaml",
    "overlays/clusters/globex-dev.yaml",
    "overlays/clusters/initech-prod.yaml",
];

static SOURCES: LazyLock<Sources> = LazyLock::new(|| {
    kubeprint::load::load_dir(crate::support::repo()).expect("the example fleet loads")
});

/// One change to a spec's text. Positions are fractions of the text (`Index`), so that
/// they apply to any text.
#[derive(Debug, Clone)]
enum Mutation {
    /// Text inserted at the start of a line.
    Insert(prop::sample::Index, String),
    /// Text appended at the end.
    Append(String),
    /// The value of a `key: value` line replaced.
    Value(prop::sample::Index, String),
    /// A character inserted anywhere (BOM, NUL, other controls).
    Char(prop::sample::Index, char),
    Bom,
    Truncate(prop::sample::Index),
    DuplicateLine(prop::sample::Index),
    DeleteLine(prop::sample::Index),
    Indent(prop::sample::Index, usize),
}

fn alias_bomb(levels: usize) -> String {
    let mut text = String::from(
        "settings:\n  bomb:\n    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..levels {
        let refs = vec![format!("*l{}", i - 1); 9].join(", ");
        text.push_str(&format!("    l{i}: &l{i} [{refs}]\n"));
    }
    text
}

fn alias_chain(n: usize) -> String {
    let mut text = String::from("settings:\n  n0: &n0 [x]\n");
    for i in 1..n {
        text.push_str(&format!("  n{i}: &n{i} [*n{}]\n", i - 1));
    }
    text
}

/// Blocks of YAML that stress the reader and the merge.
fn block() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..=10).prop_map(alias_bomb),
        (1usize..=300).prop_map(alias_chain),
        (1usize..=300).prop_map(|n| format!(
            "settings:\n  d: {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        )),
        (1usize..=300).prop_map(|n| format!("settings:\n  d:\n    {}x\n", "- ".repeat(n))),
        (1usize..=300).prop_map(|n| format!("settings:\n  d: {}\n", "[".repeat(n))),
        Just("settings:\n  <<: {a: 1}\n".to_string()),
        Just("settings:\n  replicas: null\n  ceph: {mons: ~}\n".to_string()),
        Just("components:\n  cilium:\n    values: &v {a: *v}\n".to_string()),
        Just("components:\n  cilium:\n    enabled: false\n  nope: {}\n".to_string()),
        Just("---\nname: other\n".to_string()),
        Just("%YAML 1.1\n---\n".to_string()),
        "[ -~\t\n]{0,40}",
    ]
}

/// Values that are odd for YAML, for the model or for templates.
fn odd_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "~",
            "null",
            ".inf",
            "-.nan",
            "0x7fffffffffffffffffff",
            "1e400",
            "-0",
            "0o7777777777777777777777",
            "\"\\u0000\"",
            "\"\\x01\\x1b[31m\"",
            "!!binary aGk=",
            "!!str 1",
            "!custom x",
            "&a x",
            "*nope",
            "? x",
            "'unterminated",
            "{",
            "]",
            "|\n  block",
            ">-\n  folded",
            "{a: 1, a: 2}",
            "[1, [2, [3]]]",
            "&a [*a]",
            "\"{{ 7 * 7 }}\"",
            "\"{% for x in y %}\"",
            "\"\\n#! file: ../../escape.yaml\\nkind: Secret\"",
            "\"\\u2028\\u0085\"",
            "🦀",
            "\u{feff}x",
            "- x",
            ":",
            "@x",
            "`x",
            "18446744073709551616",
            "-9223372036854775809",
            "2026-13-45",
            "v99.99.99",
            "1.2.3.4/99",
            "https://",
            "\"\"",
            "''",
        ])
        .prop_map(str::to_string),
        (1usize..20_000).prop_map(|n| "x".repeat(n)),
        any::<String>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), block()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        block().prop_map(Mutation::Append),
        (any::<prop::sample::Index>(), odd_scalar()).prop_map(|(i, v)| Mutation::Value(i, v)),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                '\u{feff}', '\0', '\u{1}', '\t', '\r', '\u{85}', '#', '&', '*', '!', '|', ':', '-',
                '['
            ])
        )
            .prop_map(|(i, c)| Mutation::Char(i, c)),
        Just(Mutation::Bom),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        any::<prop::sample::Index>().prop_map(Mutation::DuplicateLine),
        any::<prop::sample::Index>().prop_map(Mutation::DeleteLine),
        (any::<prop::sample::Index>(), 1usize..6).prop_map(|(i, n)| Mutation::Indent(i, n)),
    ]
}

/// The byte offset of the char boundary at or before `at`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, m: &Mutation) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let line = |i: &prop::sample::Index| i.index(lines.len().max(1));
    match m {
        Mutation::Insert(i, block) => {
            let at = line(i).min(lines.len());
            let mut out: String = lines[..at].concat();
            out.push_str(block);
            out.push_str(&lines[at..].concat());
            out
        }
        Mutation::Append(block) => format!("{text}{block}"),
        Mutation::Value(i, value) => {
            let n = line(i);
            lines
                .iter()
                .enumerate()
                .map(|(k, l)| match l.split_once(": ") {
                    Some((key, _)) if k == n => format!("{key}: {value}\n"),
                    _ => l.to_string(),
                })
                .collect()
        }
        Mutation::Char(i, c) => {
            let at = boundary(text, i.index(text.len() + 1));
            format!("{}{c}{}", &text[..at], &text[at..])
        }
        Mutation::Bom => format!("\u{feff}{text}"),
        Mutation::Truncate(i) => text[..boundary(text, i.index(text.len() + 1))].to_string(),
        Mutation::DuplicateLine(i) => {
            let n = line(i);
            let mut out: Vec<&str> = lines.clone();
            if let Some(l) = lines.get(n) {
                out.insert(n, l);
            }
            out.concat()
        }
        Mutation::DeleteLine(i) => {
            let n = line(i);
            let mut out = lines.clone();
            if n < out.len() {
                out.remove(n);
            }
            out.concat()
        }
        Mutation::Indent(i, by) => {
            let n = line(i);
            lines
                .iter()
                .enumerate()
                .map(|(k, l)| {
                    if k == n {
                        format!("{}{l}", " ".repeat(*by))
                    } else {
                        l.to_string()
                    }
                })
                .collect()
        }
    }
}

/// A spec of the example fleet with 1 to 4 mutations.
fn mutated_spec() -> impl Strategy<Value = (usize, Vec<Mutation>)> {
    (0..SPECS.len(), prop::collection::vec(mutation(), 1..=4))
}

fn mutated_text(spec: usize, mutations: &[Mutation]) -> String {
    let mut text = SOURCES.files[SPECS[spec]].clone();
    for m in mutations {
        text = apply(&text, m);
    }
    text
}

/// Whether `s` names a file and a line: `<something>.yaml:<digits>` or `.j2:<digits>`.
fn located(s: &str) -> bool {
    s.match_indices(':').any(|(i, _)| {
        (s[..i].ends_with(".yaml") || s[..i].ends_with(".j2"))
            && s[i + 1..].starts_with(|c: char| c.is_ascii_digit())
    })
}

/// What the pipeline did with one mutated spec.
#[derive(Debug, PartialEq)]
enum Outcome {
    Rendered,
    Rejected(String),
}

/// Runs one case in process; `Err` says which property failed.
fn check_case(spec: usize, text: &str) -> Result<Outcome, TestCaseError> {
    let file = SPECS[spec];
    // The reader: bounded output, located errors.
    match yaml::parse_all(file, text) {
        Ok(docs) => {
            let built: u64 = docs.iter().map(|d| yaml::weight(&d.value)).sum();
            let bound = 8 * text.len() as u64 + 16 + yaml::alias_budget(text.len());
            prop_assert!(built <= bound, "{built} units from {} bytes", text.len());
        }
        Err(e) => {
            let (yaml::Error::Syntax { location, .. } | yaml::Error::Shape { location, .. }) = &e;
            prop_assert!(location.line >= 1 && location.column >= 1, "{e}");
            prop_assert!(
                e.to_string()
                    .starts_with(&format!("{file}:{}:", location.line)),
                "{e}"
            );
        }
    }
    // Loading, validation, the merge and the templates.
    let mut sources = SOURCES.clone();
    sources.files.insert(file.to_string(), text.to_string());
    let checked = match fleet::check(&sources, TODAY.parse().unwrap()) {
        Ok(checked) => checked,
        Err(fleet::Error::Invalid(diags)) => {
            let errors: Vec<_> = diags
                .items
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            prop_assert!(!errors.is_empty());
            for d in &errors {
                prop_assert!(
                    located(&format!("{}:", d.location)) || located(&d.location),
                    "no file:line in `{}`: {}",
                    d.location,
                    d.message
                );
            }
            return Ok(Outcome::Rejected(errors[0].location.clone()));
        }
        Err(e) => {
            prop_assert!(located(&e.to_string()), "no file:line in: {e}");
            return Ok(Outcome::Rejected(e.to_string()));
        }
    };
    let name = file
        .trim_start_matches("overlays/clusters/")
        .trim_end_matches(".yaml");
    match fleet::render_cluster(&checked, name) {
        Ok(_) => Ok(Outcome::Rendered),
        Err(e) => {
            prop_assert!(located(&e.to_string()), "no file:line in: {e}");
            Ok(Outcome::Rejected(e.to_string()))
        }
    }
}

fn config() -> Config {
    Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    }
}

#[test]
fn mutated_specs_are_rendered_or_rejected_with_a_location_never_a_crash() {
    let mut runner = TestRunner::new(config());
    let outcomes = std::sync::Mutex::new((0u32, 0u32));
    runner
        .run(&mutated_spec(), |(spec, mutations)| {
            let text = mutated_text(spec, &mutations);
            let outcome = check_case(spec, &text)?;
            let mut o = outcomes.lock().unwrap();
            match outcome {
                Outcome::Rendered => o.0 += 1,
                Outcome::Rejected(_) => o.1 += 1,
            }
            Ok(())
        })
        .unwrap();
    let (rendered, rejected) = *outcomes.lock().unwrap();
    // Both ends are exercised: some mutations are harmless, most are not.
    assert!(
        rendered > 0 && rejected > 0,
        "{rendered} rendered, {rejected} rejected"
    );
}

#[test]
fn a_rejected_mutation_is_exit_2_with_file_and_line_through_the_binary() {
    // The first case of the seed whose spec the fleet rejects while reading the YAML.
    let mut runner = TestRunner::new(config());
    let (spec, text) = (0..CASES)
        .find_map(|_| {
            let (spec, mutations) = mutated_spec().new_tree(&mut runner).unwrap().current();
            let text = mutated_text(spec, &mutations);
            yaml::parse_all(SPECS[spec], &text)
                .is_err()
                .then_some((spec, text))
        })
        .expect("the seed gives a YAML error among its cases");
    let fx = Fixture::example();
    fx.write(SPECS[spec], &text);
    let out = fx.run(&["validate", "--today", TODAY]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let at = format!("error: {}:", SPECS[spec]);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with(&at))
        .unwrap_or_else(|| panic!("no `{at}` in {}", out.stderr));
    let rest = &line[at.len()..];
    assert!(rest.starts_with(|c: char| c.is_ascii_digit()), "{line}");
}
