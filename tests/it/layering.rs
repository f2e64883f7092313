//! The layering rule from STYLE.md, checked on the source: lower layers never import higher ones.
//! wire/error/seal ← config ← {telemetry, policy, catalog, session} ← {transport, upstream} ← proxy ← runtime ← demo/main.

use std::path::Path;

fn rank(module: &str) -> Option<u8> {
    Some(match module {
        "wire" | "error" | "seal" => 0,
        "config" => 1,
        "telemetry" | "policy" | "catalog" | "session" => 2,
        "transport" | "upstream" => 3,
        "proxy" => 4,
        "runtime" => 5,
        "demo" => 6,
        _ => return None,
    })
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            visit(&p, files);
        } else if p.extension().is_some_and(|e| e == "rs") {
            files.push(p);
        }
    }
}

#[test]
fn no_module_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let own = rel.split(['/', '.']).next().unwrap().to_string();
        let Some(own_rank) = rank(&own) else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for part in line.split("crate::").skip(1) {
                let target: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(r) = rank(&target) {
                    if r > own_rank {
                        violations.push(format!("{rel}:{}: {own} imports {target}", n + 1));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}
