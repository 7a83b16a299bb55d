//! The server's and the client's modules form no cycle: a lower module never imports a
//! higher one. In the client, the domain (`model`) imports nothing above it, and widgets
//! import no screen.
//!
//! Read from the source files themselves: every `crate::`, `super::` and `self::` path
//! outside `#[cfg(test)]` code is an edge from the file's module to the deepest module the
//! path names (a name the crate root re-exports counts as the module it comes from). A
//! child module that uses its parent (`impl super::Hub`) is fine; its parent using it back
//! is a cycle like any other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside the crate: `[]` is the root, `["hub", "login"]` is
/// `crate::hub::login`.
type ModPath = Vec<String>;

/// Every module of the crate with its source text (tests cut off, test-only modules left
/// out).
fn modules(src: &Path) -> BTreeMap<ModPath, String> {
    let mut found = BTreeMap::new();
    let mut test_only: Vec<ModPath> = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).expect("the source directory is readable");
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let mut module: ModPath = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            if relative == Path::new("main.rs") {
                // The binary is a crate of its own.
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            for child in test_only_children(&text) {
                let mut child_path = module.clone();
                child_path.push(child);
                test_only.push(child_path);
            }
            found.insert(module, without_tests(&text));
        }
    }
    // Modules that exist only in tests (`#[cfg(test)] mod testing;`) are test code too.
    found.retain(|module, _| !test_only.iter().any(|test| module.starts_with(test)));
    found
}

/// The child modules a file declares for tests only: `#[cfg(test)]` then `mod name;`.
fn test_only_children(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "#[cfg(test)]")
        .filter_map(|pair| {
            let declared = pair[1].strip_prefix("pub ").unwrap_or(pair[1]);
            let name = declared.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.to_string())
        })
        .collect()
}

/// The text before its inline `#[cfg(test)] mod tests { … }`, without comments.
fn without_tests(text: &str) -> String {
    let mut code = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests {"))
        {
            break;
        }
        code.push(line.split("//").next().unwrap_or_default());
    }
    code.join("\n")
}

/// Every path a text names after `prefix::`, with `use` trees expanded:
/// `crate::{a, b::{c, d}}` names `a`, `b::c` and `b::d`.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let needle = format!("{prefix}::");
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find(&needle) {
        let start = from + at;
        from = start + needle.len();
        // `foo_crate::` or `mycrate::` is not `crate::`, and `crate::accounts::` is not
        // `accounts::`.
        if start > 0
            && matches!(bytes[start - 1], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b':')
        {
            continue;
        }
        let mut cursor = from;
        tree(text, &mut cursor, Vec::new(), &mut paths);
    }
    paths
}

/// Reads one use tree at `cursor`, under `base`.
fn tree(text: &str, cursor: &mut usize, base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let bytes = text.as_bytes();
    let skip_space = |cursor: &mut usize| {
        while *cursor < bytes.len() && bytes[*cursor].is_ascii_whitespace() {
            *cursor += 1;
        }
    };
    let mut path = base;
    loop {
        skip_space(cursor);
        if *cursor < bytes.len() && bytes[*cursor] == b'{' {
            *cursor += 1;
            loop {
                skip_space(cursor);
                if bytes.get(*cursor) == Some(&b'}') {
                    *cursor += 1;
                    return;
                }
                tree(text, cursor, path.clone(), out);
                skip_space(cursor);
                match bytes.get(*cursor) {
                    Some(b',') => *cursor += 1,
                    Some(b'}') => {
                        *cursor += 1;
                        return;
                    }
                    _ => return,
                }
            }
        }
        let start = *cursor;
        while *cursor < bytes.len()
            && (bytes[*cursor].is_ascii_alphanumeric() || bytes[*cursor] == b'_')
        {
            *cursor += 1;
        }
        if *cursor == start {
            out.push(path);
            return;
        }
        path.push(text[start..*cursor].to_string());
        if text[*cursor..].starts_with("::") {
            *cursor += 2;
        } else {
            out.push(path);
            return;
        }
    }
}

/// The deepest module of `known` that `path` lies in; the root's re-exports are followed.
fn target(
    path: &[String],
    known: &BTreeSet<ModPath>,
    exports: &BTreeMap<String, ModPath>,
) -> ModPath {
    let mut best = ModPath::new();
    for len in 1..=path.len() {
        if known.contains(&path[..len].to_vec()) {
            best = path[..len].to_vec();
        }
    }
    if best.is_empty()
        && let Some(first) = path.first()
        && let Some(module) = exports.get(first)
    {
        return module.clone();
    }
    best
}

/// Names the crate root re-exports (`pub use config::{Args, Config}`), with their module.
fn root_exports(root: &str, known: &BTreeSet<ModPath>) -> BTreeMap<String, ModPath> {
    let mut exports = BTreeMap::new();
    for line in root.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        for path in paths_after(&format!("crate::{rest}"), "crate") {
            if let Some(name) = path.last() {
                let module = target(&path, known, &BTreeMap::new());
                if !module.is_empty() {
                    exports.insert(name.clone(), module);
                }
            }
        }
    }
    exports
}

/// Every edge between two modules of the crate under `src`.
fn edges(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let modules = modules(src);
    let known: BTreeSet<ModPath> = modules.keys().cloned().collect();
    let exports = root_exports(
        modules.get(&ModPath::new()).map_or("", String::as_str),
        &known,
    );
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, text) in &modules {
        let mut named: Vec<Vec<String>> = paths_after(text, "crate");
        let parent = module[..module.len().saturating_sub(1)].to_vec();
        for path in paths_after(text, "super") {
            named.push(parent.iter().cloned().chain(path).collect());
        }
        for path in paths_after(text, "self") {
            named.push(module.iter().cloned().chain(path).collect());
        }
        // A child named without `self::` (`use command::Command` in `hub/mod.rs`).
        for child in known
            .iter()
            .filter(|k| k.len() == module.len() + 1 && k.starts_with(module))
        {
            let name = child.last().map_or("", String::as_str);
            for path in paths_after(text, name) {
                named.push(child.iter().cloned().chain(path).collect());
            }
        }
        let targets = graph.entry(module.clone()).or_default();
        for path in named {
            let to = target(&path, &known, &exports);
            // The root only declares modules; an edge to it (or to oneself) says nothing.
            if !to.is_empty() && to != *module {
                targets.insert(to);
            }
        }
    }
    graph
}

/// A cycle of the graph, if it has one.
fn cycle(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &ModPath,
        graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        marks: &mut BTreeMap<ModPath, Mark>,
        stack: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let at = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut found = stack[at..].to_vec();
                found.push(node.clone());
                return Some(found);
            }
            None => {}
        }
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, marks, stack) {
                return Some(found);
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(found) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(found);
        }
    }
    None
}

fn show(module: &ModPath) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// The crate's modules, each with what it imports, one a line (for `--nocapture`).
fn listing(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> String {
    graph
        .iter()
        .map(|(module, targets)| {
            let targets: Vec<String> = targets.iter().map(show).collect();
            format!("{} -> {}", show(module), targets.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A crate's sources, next to this one's.
fn src_of(krate: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

/// Fails on a cycle of `krate`'s modules; prints the graph (for `--nocapture`).
fn no_cycle_in(krate: &str) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let graph = edges(&src_of(krate));
    println!("{krate}:\n{}", listing(&graph));
    if let Some(found) = cycle(&graph) {
        let found: Vec<String> = found.iter().map(show).collect();
        panic!("a module cycle in {krate}: {}", found.join(" -> "));
    }
    graph
}

/// The modules under `under` that import one of `forbidden`.
fn imports_of(
    graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
    under: &str,
    allowed: impl Fn(&ModPath) -> bool,
) -> Vec<String> {
    graph
        .iter()
        .filter(|(module, _)| module.first().is_some_and(|top| top == under))
        .flat_map(|(module, targets)| {
            targets
                .iter()
                .filter(|target| !allowed(target))
                .map(move |target| format!("{} -> {}", show(module), show(target)))
        })
        .collect()
}

#[test]
fn the_servers_modules_form_no_cycle() {
    no_cycle_in("server");
}

/// The graph of a crate's top-level modules: a submodule's edges are its top module's.
fn top_level(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let top = |module: &ModPath| module.iter().take(1).cloned().collect::<ModPath>();
    let mut collapsed: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, targets) in graph {
        let from = top(module);
        let entry = collapsed.entry(from.clone()).or_default();
        entry.extend(targets.iter().map(top).filter(|to| *to != from));
    }
    collapsed
}

/// The client's screens are split the way iced apps are (a screen's views share its
/// `Message`, which its file declares), so its cycle check is between its top-level
/// modules: the app, the connection, the domain, the screens, the widgets.
#[test]
fn the_clients_parts_form_no_cycle_and_its_domain_and_widgets_stand_alone() {
    let graph = edges(&src_of("client"));
    let parts = top_level(&graph);
    println!("client:\n{}", listing(&parts));
    if let Some(found) = cycle(&parts) {
        let found: Vec<String> = found.iter().map(show).collect();
        panic!("a cycle between the client's parts: {}", found.join(" -> "));
    }
    let model = imports_of(&graph, "model", |target| {
        target.first().is_some_and(|t| t == "model")
    });
    assert!(
        model.is_empty(),
        "the model imports what is above it: {model:?}"
    );
    let widgets = imports_of(&graph, "widget", |target| {
        target.first().is_some_and(|t| t == "widget")
    });
    assert!(
        widgets.is_empty(),
        "widgets import the screens' code: {widgets:?}"
    );
}

#[test]
fn use_trees_are_read_whole() {
    let paths = paths_after(
        "use crate::{Config, log::{self, Body}, hub::command::Command};\nx = mycrate::a; crate::cpu::clock(1)",
        "crate",
    );
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert!(shown.contains(&"Config".to_string()), "{shown:?}");
    assert!(shown.contains(&"log::self".to_string()), "{shown:?}");
    assert!(shown.contains(&"log::Body".to_string()), "{shown:?}");
    assert!(
        shown.contains(&"hub::command::Command".to_string()),
        "{shown:?}"
    );
    assert!(shown.contains(&"cpu::clock".to_string()), "{shown:?}");
    assert!(!shown.iter().any(|p| p == "a"), "{shown:?}");
}

#[test]
fn a_cycle_is_found() {
    let path = |s: &str| -> ModPath { s.split("::").map(str::to_string).collect() };
    let mut graph = BTreeMap::new();
    graph.insert(path("a"), BTreeSet::from([path("b")]));
    graph.insert(path("b"), BTreeSet::from([path("c")]));
    graph.insert(path("c"), BTreeSet::from([path("a")]));
    assert!(cycle(&graph).is_some());
    graph.insert(path("c"), BTreeSet::new());
    assert!(cycle(&graph).is_none());
}
