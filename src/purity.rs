//! Keeps the pure stages pure: their sources may not name I/O, clocks or hash maps.

#[test]
fn pure_modules_do_no_io() {
    const PURE: &[(&str, &str)] = &[
        ("model/mod.rs", include_str!("model/mod.rs")),
        ("model/cluster.rs", include_str!("model/cluster.rs")),
        ("model/catalog.rs", include_str!("model/catalog.rs")),
        ("validate.rs", include_str!("validate.rs")),
        ("plan.rs", include_str!("plan.rs")),
        ("fleet.rs", include_str!("fleet.rs")),
        ("render/mod.rs", include_str!("render/mod.rs")),
        ("render/argo.rs", include_str!("render/argo.rs")),
        ("render/lock.rs", include_str!("render/lock.rs")),
        ("render/templates.rs", include_str!("render/templates.rs")),
        ("render/talos.rs", include_str!("render/talos.rs")),
        ("talos/assemble.rs", include_str!("talos/assemble.rs")),
        ("tree.rs", include_str!("tree.rs")),
        ("check.rs", include_str!("check.rs")),
        ("drift.rs", include_str!("drift.rs")),
        ("metrics.rs", include_str!("metrics.rs")),
        ("diff/mod.rs", include_str!("diff/mod.rs")),
        ("diff/report.rs", include_str!("diff/report.rs")),
    ];
    const FORBIDDEN: &[&str] = &[
        "std::fs",
        "fs_err",
        "tokio",
        "git2",
        "kube::",
        "SystemTime",
        "Instant::now",
        "HashMap",
        "HashSet",
        "std::env",
        "rand::",
        "Zoned::now",
        "Timestamp::now",
    ];
    for (file, source) in PURE {
        // Only the code, not the tests at the bottom.
        let code = source.split("#[cfg(test)]").next().unwrap_or(source);
        for word in FORBIDDEN {
            assert!(
                !code.contains(word),
                "src/{file} uses `{word}`: pure stages take values and return values"
            );
        }
    }
}
