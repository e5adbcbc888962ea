//! The shape of the code, checked from its text: no module imports another
//! that imports it back, directly or around a cycle, and no source file,
//! test files included, is over 1,000 lines (its unit tests included).
//!
//! A module here is a file of `src/` (`src/web/mod.rs` is `crate::web`,
//! `src/web/scan.rs` is `crate::web::scan`). An arrow goes from a file to the
//! module file a path in it names: `crate::a::b::Thing`, `super::Thing`,
//! `self::b::Thing` and the braces of `use` lists; the path resolves to the
//! longest module file it reaches, so `super::Thing` from a child of
//! `web/mod.rs` is an arrow to `web/mod.rs` even when `Thing` is only
//! re-exported there. A `mod x;` declaration is not an arrow, and neither is
//! code under `#[cfg(test)]` (tests may look anywhere). Cheap enough to run
//! with every test run, and strict in the way that keeps layers honest: a
//! child imports what it needs from where it is defined, not through its
//! parent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1_000;

/// `src/a/b.rs` → `["a", "b"]`; `src/a/mod.rs` → `["a"]`; `src/lib.rs` → `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The text without comments, string literals and `#[cfg(test)]` items
/// (a `#[cfg(test)]` attribute drops the item after it: up to its `;` or
/// through its balanced braces).
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..].find("*/").map_or(b.len(), |j| i + 2 + j + 2);
        } else if text[i..].starts_with("r#\"") || text[i..].starts_with("r\"") {
            let hashes = text[i + 1..].bytes().take_while(|&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 1 + hashes + 1;
            i = text[start..]
                .find(&close)
                .map_or(b.len(), |j| start + j + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('x', '\n', '\''), not a lifetime.
            let end = text[i + 2..].find('\'').map_or(b.len(), |j| i + 2 + j + 1);
            i = end;
            out.push_str("' '");
        } else if text[i..].starts_with("#[cfg(test)]") {
            i += "#[cfg(test)]".len();
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    b';' if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path the code names (`a::b…`), as segments,
/// with `use` braces expanded (`use crate::{a, b::{c, d}}` → `crate::a`,
/// `crate::b::c`, `crate::b::d`).
fn paths(code: &str) -> Vec<Vec<String>> {
    // Collapse whitespace so `crate :: a` and line-broken lists read alike.
    let flat: String = code
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ::", "::")
        .replace(":: ", "::");
    let mut out = Vec::new();
    let chars: Vec<char> = flat.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // A path starts at a word that follows no `::` (and is not inside
        // another word) and is itself followed by `::`.
        let starts_word = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        if !starts_word || !is_ident(chars[i]) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < chars.len() && is_ident(chars[end]) {
            end += 1;
        }
        if chars[end..].starts_with(&[':', ':']) {
            let first: String = chars[i..end].iter().collect();
            let (next, found) = expand(&chars, end + 2, vec![first]);
            out.extend(found);
            i = next;
        } else {
            i = end;
        }
    }
    out
}

/// Reads path segments from `i` after `prefix::`, expanding braces.
fn expand(chars: &[char], mut i: usize, prefix: Vec<String>) -> (usize, Vec<Vec<String>>) {
    let mut segs = prefix;
    loop {
        if i < chars.len() && chars[i] == '{' {
            let mut found = Vec::new();
            i += 1;
            loop {
                while i < chars.len() && (chars[i] == ' ' || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return (i + 1, found);
                }
                let (end, inner) = expand(chars, i, segs.clone());
                found.extend(inner);
                // Skip `as name` and anything up to the next `,` or `}`.
                i = end;
                let mut depth = 0;
                while i < chars.len() {
                    match chars[i] {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i == start {
            return (i, vec![segs]);
        }
        segs.push(chars[start..i].iter().collect());
        if chars[i..].starts_with(&[':', ':']) {
            i += 2;
        } else {
            return (i, vec![segs]);
        }
    }
}

/// The module file a path from module `from` resolves to: the longest
/// prefix of its absolute form that is a module of `modules`.
fn resolve(
    from: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let (mut abs, mut rest): (Vec<String>, &[String]) = match path[0].as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (from.to_vec(), &path[1..]),
        "super" => (from[..from.len().checked_sub(1)?].to_vec(), &path[1..]),
        // A path relative to the module, through one of its child modules
        // (`scan::json` in `web/mod.rs`); anything else is another crate's
        // or a type's path.
        child => {
            let mut m = from.to_vec();
            m.push(child.to_owned());
            if !modules.contains(&m) {
                return None;
            }
            (from.to_vec(), path)
        }
    };
    while rest.first().is_some_and(|s| s == "super") {
        abs.pop()?;
        rest = &rest[1..];
    }
    abs.extend(rest.iter().cloned());
    (0..=abs.len())
        .rev()
        .map(|n| abs[..n].to_vec())
        .find(|m| modules.contains(m))
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Modules on a cycle of `arrows`, each cycle as one sorted list
/// (Tarjan's strongly connected components of more than one module).
fn cycles(arrows: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        arrows: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a Vec<String>) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        w.on_stack.insert(v);
        for u in w.arrows.get(v).into_iter().flatten() {
            if !w.index.contains_key(u) {
                visit(w, u);
                let l = w.low[u].min(w.low[v]);
                w.low.insert(v, l);
            } else if w.on_stack.contains(u) {
                let l = w.index[u].min(w.low[v]);
                w.low.insert(v, l);
            }
        }
        if w.low[v] == w.index[v] {
            let mut scc = Vec::new();
            while let Some(u) = w.stack.pop() {
                w.on_stack.remove(u);
                scc.push(name(u));
                if u == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                w.found.push(scc);
            }
        }
    }
    let mut w = Walk {
        arrows,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in arrows.keys() {
        if !w.index.contains_key(v) {
            visit(&mut w, v);
        }
    }
    w.found
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(&src, f)).collect();
    let mut arrows: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut why: BTreeMap<(Vec<String>, Vec<String>), String> = BTreeMap::new();
    for file in &files {
        if file.ends_with("main.rs") {
            continue; // the binary: above everything, imported by nothing
        }
        let from = module_path(&src, file);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for path in paths(&code) {
            if let Some(to) = resolve(&from, &path, &modules) {
                if to != from {
                    why.entry((from.clone(), to.clone()))
                        .or_insert_with(|| path.join("::"));
                    arrows.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    assert!(
        arrows.len() > 10,
        "the reader found too few imports to judge: {arrows:?}"
    );
    let found = cycles(&arrows);
    let explain: Vec<String> = found
        .iter()
        .map(|scc| {
            let members: BTreeSet<&String> = scc.iter().collect();
            let mut lines = vec![format!("cycle among {}:", scc.join(", "))];
            for ((a, b), path) in &why {
                if members.contains(&name(a)) && members.contains(&name(b)) {
                    lines.push(format!("  {} -> {} (`{path}`)", name(a), name(b)));
                }
            }
            lines.join("\n")
        })
        .collect();
    assert!(found.is_empty(), "module loops:\n{}", explain.join("\n"));
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let mut files = Vec::new();
    for dir in [
        "src",
        "codes/src",
        "codes/examples",
        "codes/tests",
        "benches",
        "tests",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(files.len() > 20, "found only {} files", files.len());
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines: split by concern:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_path_reader_expands_use_lists_and_skips_tests_comments_and_strings() {
    let code = code_of(
        "use crate::{a, b::{c, d as e}, f::G};\n\
         // crate::commented\n\
         let s = \"crate::in_string\";\n\
         fn x() { super::h::I::new(); self::j::k() }\n\
         #[cfg(test)]\nmod tests { use crate::only_in_tests; }\n",
    );
    let found: Vec<String> = paths(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        [
            "crate::a",
            "crate::b::c",
            "crate::b::d",
            "crate::f::G",
            "super::h::I::new",
            "self::j::k"
        ]
    );
    assert_eq!(
        paths("x(scan::json, std::io::Error)")
            .iter()
            .map(|p| p.join("::"))
            .collect::<Vec<_>>(),
        ["scan::json", "std::io::Error"]
    );
    let modules: BTreeSet<Vec<String>> = [
        vec![],
        vec!["web".to_string()],
        vec!["web".into(), "error".into()],
    ]
    .into_iter()
    .collect();
    let from = vec!["web".to_string(), "scan".to_string()];
    let to = |p: &str| {
        resolve(
            &from,
            &p.split("::").map(String::from).collect::<Vec<_>>(),
            &modules,
        )
    };
    assert_eq!(to("super::ApiError"), Some(vec!["web".to_string()]));
    assert_eq!(
        to("super::error::ApiError"),
        Some(vec!["web".into(), "error".into()])
    );
    assert_eq!(to("crate::clock::today"), Some(vec![]));
    let parent = |p: &str| {
        resolve(
            &["web".to_string()],
            &p.split("::").map(String::from).collect::<Vec<_>>(),
            &modules,
        )
    };
    assert_eq!(
        parent("error::ApiError"),
        Some(vec!["web".into(), "error".into()])
    );
    assert_eq!(parent("std::io::Error"), None);
}
