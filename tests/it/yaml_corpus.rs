//! The fast YAML writer against serde_norway on real documents: every YAML file of the
//! vendored charts (CRDs with long descriptions, values files with every kind of string),
//! the upstream schemas' data and the test data. Each document the fast writer writes must
//! be byte for byte what serde_norway writes; most must be the fast writer's.

use std::path::Path;
use std::process::Command;

use kubeprint::yaml;

fn yaml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            out.push(entry.into_path());
        }
    }
}

#[test]
fn the_fast_writer_writes_every_real_document_as_serde_norway_does() {
    let repo = crate::support::repo();
    let charts = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo.join("charts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tgz") {
            let st = Command::new("tar")
                .arg("-xzf")
                .arg(&path)
                .arg("-C")
                .arg(charts.path())
                .status()
                .unwrap();
            assert!(st.success(), "tar -xzf {}", path.display());
        }
    }
    let mut files = Vec::new();
    yaml_files(charts.path(), &mut files);
    yaml_files(&repo.join("schemas"), &mut files);
    yaml_files(&repo.join("tests/data"), &mut files);
    let (mut documents, mut fast, mut bytes) = (0, 0, 0);
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        // Helm templates are not YAML until rendered: those that do not parse are skipped.
        let Ok(docs) = yaml::parse_all_unlocated(&file.display().to_string(), &text) else {
            continue;
        };
        for doc in docs {
            documents += 1;
            if let Ok(written) = yaml::emit::document(&doc) {
                fast += 1;
                bytes += written.len();
                assert_eq!(
                    written,
                    yaml::to_string(&doc),
                    "{}: the fast writer differs from serde_norway",
                    file.display()
                );
            }
        }
    }
    println!(
        "{documents} documents from {} files, {fast} written by the fast writer ({bytes} bytes)",
        files.len()
    );
    assert!(documents >= 200, "only {documents} documents found");
    assert!(
        fast * 2 >= documents,
        "the fast writer wrote only {fast} of {documents}"
    );
}
