//! The library's top-level modules form no cycle: data and imports flow one way (leaves ->
//! the GraphQL kit -> domains -> schema and state -> http -> app), so that any module can be
//! read, tested and changed knowing only what is below it.
//!
//! Reads `src/` as text and collects every `crate::<top>` path outside comments, test modules
//! (`#[cfg(test)] mod …`, and the files such modules are loaded from), including the members of
//! grouped imports (`use crate::{a::b, c::{d, e}}`). A textual scan rather than a compiler pass:
//! enough for paths, which is how this crate names its modules (no glob re-exports between top
//! modules).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

#[test]
fn no_top_level_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.len() > 5, "scanned too little of src/: {:?}", graph.keys());
    if let Some(cycle) = find_cycle(&graph) {
        let mut report = format!("import cycle between top-level modules: {}\n", cycle.join(" -> "));
        for pair in cycle.windows(2) {
            let files = &graph[&pair[0]][&pair[1]];
            report.push_str(&format!("  {} uses {} in {:?}\n", pair[0], pair[1], files));
        }
        panic!("{report}");
    }
}

#[test]
fn the_graphql_kit_imports_no_domain_and_no_application_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    let kit: BTreeSet<&str> =
        graph.get("graphql").map(|uses| uses.keys().map(String::as_str).collect()).unwrap_or_default();
    let allowed = ["config", "error", "identity"];
    let extra: Vec<&&str> = kit.iter().filter(|m| !allowed.contains(m)).collect();
    assert!(extra.is_empty(), "the GraphQL kit must import only leaves {allowed:?}; it imports {extra:?}");
}

#[test]
fn no_domain_imports_the_layers_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    let above = ["app", "http", "schema", "state"];
    for domain in ["accounts", "audit", "ledger", "live", "market", "reference", "sources", "usage"] {
        let uses =
            graph.get(domain).map(|uses| uses.keys().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
        let wrong: Vec<&&str> = uses.iter().filter(|m| above.contains(m)).collect();
        assert!(wrong.is_empty(), "{domain} imports {wrong:?}, which sit above the domains");
    }
}

#[test]
fn the_scanner_sees_grouped_imports_and_skips_tests_and_comments() {
    let text = r#"
        //! Uses `crate::ledger` in a comment only.
        use crate::{error::AppError, graphql::{PageInfo, service}, market::{self, limits}};
        fn f() { crate::reference::Symbol::parse("x"); }
        #[cfg(test)]
        mod tests {
            use crate::accounts::graphql;
        }
    "#;
    let (used, test_files) = scan(text);
    let used: Vec<&str> = used.iter().map(String::as_str).collect();
    assert_eq!(used, ["error", "graphql", "market", "reference"]);
    assert!(test_files.is_empty());
    let (_, test_files) = scan("#[cfg(test)]\n#[path = \"hub_tests.rs\"]\nmod tests;\n#[cfg(test)]\nmod other;");
    assert_eq!(test_files, ["hub_tests.rs", "other.rs", "other/mod.rs"]);
    let graph = BTreeMap::from([
        (s("a"), BTreeMap::from([(s("b"), BTreeSet::new())])),
        (s("b"), BTreeMap::from([(s("c"), BTreeSet::new())])),
        (s("c"), BTreeMap::from([(s("a"), BTreeSet::new())])),
    ]);
    assert_eq!(find_cycle(&graph), Some(vec![s("a"), s("b"), s("c"), s("a")]));
}

fn s(text: &str) -> String {
    text.to_owned()
}

/// top module -> the top modules it uses -> the files that use them.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    collect(src, &mut files);
    let mut skipped: BTreeSet<PathBuf> = BTreeSet::new();
    let mut graph = Graph::new();
    let mut scanned = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        let (used, test_files) = scan(&text);
        let dir = file.parent().unwrap_or(src);
        // `mod tests;` in `foo.rs` loads `foo/tests.rs`; in `mod.rs`, `tests.rs` beside it.
        let stem_dir = dir.join(file.file_stem().unwrap_or_default());
        for name in test_files {
            skipped.insert(dir.join(&name));
            skipped.insert(stem_dir.join(&name));
        }
        scanned.push((file.clone(), used));
    }
    for (file, used) in scanned {
        let relative = file.strip_prefix(src).unwrap_or(&file);
        let is_test_file = skipped.contains(&file) || file.file_name().is_some_and(|n| n == "tests.rs");
        let Some(top) = top_module(relative) else { continue };
        if is_test_file {
            continue;
        }
        let entry = graph.entry(top.clone()).or_default();
        for other in used.into_iter().filter(|other| *other != top) {
            entry.entry(other).or_default().insert(relative.display().to_string());
        }
    }
    graph
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.map(|e| e.path()).unwrap_or_else(|err| panic!("{err}")))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// `accounts/graphql.rs` -> `accounts`; `app.rs` -> `app`; `lib.rs` and `main.rs` are the root.
fn top_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The top modules a file's code names through `crate::`, and the files of its test modules.
fn scan(text: &str) -> (BTreeSet<String>, Vec<String>) {
    let code: String =
        text.lines().filter(|line| !line.trim_start().starts_with("//")).map(|line| format!("{line}\n")).collect();
    let (code, test_files) = without_test_modules(&code);
    let mut used = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident =
            rest[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for member in split_top_level(&group[..end]) {
                if let Some(name) = leading_ident(member.trim()) {
                    used.insert(name);
                }
            }
        } else if let Some(name) = leading_ident(rest) {
            used.insert(name);
        }
    }
    used.retain(|name| name != "self");
    (used, test_files)
}

/// The code with every `#[cfg(test)] mod name { … }` removed, and the files of every
/// `#[cfg(test)] mod name;` (its `#[path]`, or `name.rs` and `name/mod.rs`).
fn without_test_modules(code: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut files = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let mut cursor = after.trim_start();
        let mut path = None;
        while let Some(attr) = cursor.strip_prefix("#[") {
            let close = attr.find(']').unwrap_or(attr.len());
            if let Some(value) = attr[..close].trim().strip_prefix("path") {
                path = value.split('"').nth(1).map(str::to_owned);
            }
            cursor = attr[(close + 1).min(attr.len())..].trim_start();
        }
        let Some(module) = cursor.strip_prefix("mod ").or_else(|| cursor.strip_prefix("pub mod ")) else {
            // `#[cfg(test)]` on something else (a function, an import): keep it.
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        };
        let name = leading_ident(module).unwrap_or_default();
        let after_name = module[name.len()..].trim_start();
        if let Some(body) = after_name.strip_prefix('{') {
            let end = matching_brace(body);
            rest = &body[(end + 1).min(body.len())..];
        } else {
            match path {
                Some(path) => files.push(path),
                None => files.extend([format!("{name}.rs"), format!("{name}/mod.rs")]),
            }
            rest = after_name.strip_prefix(';').unwrap_or(after_name);
        }
    }
    out.push_str(rest);
    (out, files)
}

/// The index of the `}` closing a group whose `{` was just consumed.
fn matching_brace(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The members of a `{…}` group, split at its own commas (not those of nested groups).
fn split_top_level(group: &str) -> Vec<&str> {
    let mut members = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                members.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members.push(&group[start..]);
    members
}

fn leading_ident(text: &str) -> Option<String> {
    let ident: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!ident.is_empty()).then_some(ident)
}

/// A cycle of the graph, as the modules along it with the first repeated at the end.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|uses| uses.keys()) {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}
