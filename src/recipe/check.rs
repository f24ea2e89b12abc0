//! `plangate recipes check [DIR]` (spec §4.6): lints a recipes folder without starting the server.
//! Reports every problem (not only the first) as `error: <file>[:line]: <message>` or
//! `warning: …`, then a summary line.

use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag};

use super::{Candidate, RecipeError, bundled_files, frontmatter, parse, scan};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// `file` or `file:line`.
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.location, self.message)
    }
}

/// The result of a check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub recipes: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Number of findings of a severity.
    #[must_use]
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The summary line.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "{} recipes checked, {} errors, {} warnings",
            self.recipes,
            self.count(Severity::Error),
            self.count(Severity::Warning)
        )
    }

    fn push(&mut self, severity: Severity, file: &str, line: Option<usize>, message: String) {
        let location = match line {
            Some(l) => format!("{file}:{l}"),
            None => file.to_owned(),
        };
        self.findings.push(Finding {
            severity,
            location,
            message,
        });
    }
}

/// Lints a folder.
///
/// # Errors
/// `error: <DIR>: not a directory` when the folder is missing or unreadable (exit status 2).
pub fn check(dir: &Path) -> Result<Report, String> {
    let not_a_dir = || format!("error: {}: not a directory", dir.display());
    if !dir.is_dir() {
        return Err(not_a_dir());
    }
    let candidates = scan(dir).map_err(|_| not_a_dir())?;
    let mut report = Report {
        recipes: candidates.len(),
        findings: Vec::new(),
    };
    unread_markdown(dir, &mut report);
    let mut names: Vec<(String, String)> = Vec::new();
    for candidate in &candidates {
        let text = match std::fs::read_to_string(&candidate.path) {
            Ok(t) => t,
            Err(e) => {
                report.push(
                    Severity::Error,
                    &candidate.display,
                    None,
                    format!("cannot read: {e}"),
                );
                continue;
            }
        };
        match parse(&text, candidate) {
            Err(RecipeError::InvalidFrontmatter { detail, line, .. }) => {
                report.push(Severity::Error, &candidate.display, line, detail);
            }
            Err(other) => report.push(Severity::Error, &candidate.display, None, other.to_string()),
            Ok(super::Parsed { recipe, warnings }) => {
                for warning in warnings {
                    report.push(
                        Severity::Warning,
                        &candidate.display,
                        warning.line,
                        warning.message,
                    );
                }
                if recipe.body.is_empty() {
                    report.push(
                        Severity::Error,
                        &candidate.display,
                        None,
                        "recipe body is empty".to_owned(),
                    );
                }
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == recipe.name) {
                    report.push(
                        Severity::Error,
                        &candidate.display,
                        None,
                        format!("duplicate name \"{}\" (also in {first})", recipe.name),
                    );
                } else {
                    names.push((recipe.name.clone(), candidate.display.clone()));
                }
                check_links(&text, candidate, &mut report);
            }
        }
    }
    Ok(report)
}

/// How deep below the recipes folder the checker looks for markdown that the boot would not read.
const GAP_SCAN_DEPTH: usize = 4;
/// Directory entries the gap scan looks at at most (a recipes folder is small; this bounds a
/// folder that is not).
const GAP_SCAN_ENTRIES: usize = 10_000;

/// Markdown files under the recipes folder that the boot does not read (spec §4.1 reads only
/// top-level `*.md` files and `<folder>/RECIPE.md`): a bundle file named in the wrong case, a
/// bundle nested too deep, markdown in a folder that is no bundle. Each is a warning naming the
/// file and the layout that would be read, so a folder of recipes never checks as "0 recipes".
fn unread_markdown(dir: &Path, report: &mut Report) {
    let shown = dir.display().to_string();
    let shown = shown.trim_end_matches('/');
    let mut budget = GAP_SCAN_ENTRIES;
    let mut found: Vec<(String, String)> = Vec::new();
    // Top-level folders that are not bundles, walked breadth-first: (path, relative path, depth).
    let mut queue: std::collections::VecDeque<(PathBuf, String, usize)> =
        sorted_entries(dir, &mut budget)
            .into_iter()
            .filter(|(path, name)| {
                path.is_dir() && !path.join("RECIPE.md").is_file() && !name.starts_with('.')
            })
            .map(|(path, name)| (path, name, 1))
            .collect();
    while let Some((folder, rel, depth)) = queue.pop_front() {
        for (path, name) in sorted_entries(&folder, &mut budget) {
            if name.starts_with('.') {
                continue;
            }
            let rel_file = format!("{rel}/{name}");
            if path.is_dir() {
                if depth < GAP_SCAN_DEPTH {
                    queue.push_back((path, rel_file, depth + 1));
                }
                continue;
            }
            if !path.is_file() || !name.to_ascii_lowercase().ends_with(".md") {
                continue;
            }
            let bundle = rel.rsplit('/').next().unwrap_or(&rel);
            let message = if name.eq_ignore_ascii_case("RECIPE.md") && depth == 1 {
                format!(
                    "not read: a bundled recipe's file must be named exactly RECIPE.md; rename it so {shown}/{rel}/RECIPE.md is read"
                )
            } else if name.eq_ignore_ascii_case("RECIPE.md") {
                format!(
                    "not read: bundles are read only directly under the recipes folder ({shown}/<name>/RECIPE.md); move the folder so {shown}/{bundle}/RECIPE.md is read"
                )
            } else if std::fs::read_to_string(&path)
                .is_ok_and(|text| frontmatter::split(&text).is_ok())
            {
                format!(
                    "not read: {rel} is not a bundle (no RECIPE.md), so its markdown is not a recipe; move it to {shown}/{name} (flat layout) or name it {rel}/RECIPE.md (bundled layout)"
                )
            } else {
                format!(
                    "not read: markdown without frontmatter in {rel}, which is not a bundle; recipes are {shown}/<name>.md or {shown}/<name>/RECIPE.md and start with a --- frontmatter block"
                )
            };
            found.push((format!("{shown}/{rel_file}"), message));
        }
    }
    found.sort();
    for (file, message) in found {
        report.push(Severity::Warning, &file, None, message);
    }
}

/// A folder's entries sorted by name, counted against `budget` (none once it is spent).
fn sorted_entries(dir: &Path, budget: &mut usize) -> Vec<(PathBuf, String)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<(PathBuf, String)> = read
        .filter_map(Result::ok)
        .take(*budget)
        .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
        .collect();
    *budget -= entries.len();
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    entries
}

/// A link destination the checker must resolve: no scheme, not absolute, not a fragment.
fn is_relative(dest: &str) -> bool {
    if dest.is_empty() || dest.starts_with('/') || dest.starts_with('#') {
        return false;
    }
    let scheme_len = dest.find(':').filter(|&i| {
        let s = &dest[..i];
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    scheme_len.is_none()
}

/// Resolves a relative link inside `base`; `None` when it escapes.
fn resolve(base: &Path, dest: &str) -> Option<PathBuf> {
    let cut = dest.find(['#', '?']).map_or(dest, |i| &dest[..i]);
    let decoded = percent_encoding::percent_decode_str(cut)
        .decode_utf8()
        .ok()?;
    let mut out = PathBuf::new();
    for component in Path::new(decoded.as_ref()).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(base.join(out))
}

fn check_links(text: &str, candidate: &Candidate, report: &mut Report) {
    let Ok(doc) = frontmatter::split(text) else {
        return;
    };
    // Line numbers: the body starts at `doc.body_line` (before trimming leading blank lines).
    let body_start = text
        .split_inclusive('\n')
        .take(doc.body_line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>();
    let raw_body = &text[body_start.min(text.len())..];
    let line_of = |offset: usize| {
        doc.body_line + raw_body[..offset.min(raw_body.len())].matches('\n').count()
    };
    let parser = Parser::new(raw_body);
    let mut links: Vec<(String, usize)> = parser
        .reference_definitions()
        .iter()
        .map(|(_, def)| (def.dest.to_string(), def.span.start))
        .collect();
    for (event, range) in Parser::new(raw_body).into_offset_iter() {
        if let Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) = event {
            links.push((dest_url.to_string(), range.start));
        }
    }
    // A reference link and its definition name one destination: report it once, where first used.
    links.sort_by_key(|(_, offset)| *offset);
    let mut seen = std::collections::HashSet::new();
    links.retain(|(dest, _)| seen.insert(dest.clone()));
    let files = candidate.bundle_dir.as_deref().map(bundled_files);
    for (dest, offset) in links {
        if !is_relative(&dest) || dest.starts_with("//") {
            continue;
        }
        let line = Some(line_of(offset));
        match (&candidate.bundle_dir, &files) {
            (None, _) => report.push(
                Severity::Warning,
                &candidate.display,
                line,
                format!("relative link \"{dest}\" in a flat recipe (flat recipes bundle no files)"),
            ),
            (Some(base), _) => {
                let ok = resolve(base, &dest).is_some_and(|p| p.is_file() && p.starts_with(base));
                if !ok {
                    report.push(
                        Severity::Error,
                        &candidate.display,
                        line,
                        format!("relative link \"{dest}\" does not resolve to a file bundled with this recipe"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::recipe::fixture_dir as fixtures;

    #[test]
    fn relative_link_rules() {
        assert!(is_relative("scripts/run.sh"));
        assert!(is_relative("./a%20b.md#x"));
        assert!(!is_relative("https://x"));
        assert!(!is_relative("mailto:a@b"));
        assert!(!is_relative("/etc/passwd"));
        assert!(!is_relative("#section"));
        let base = Path::new("/r/x");
        assert_eq!(
            resolve(base, "a/../b.md?q=1#f"),
            Some(PathBuf::from("/r/x/b.md"))
        );
        assert_eq!(
            resolve(base, "a%20b.md"),
            Some(PathBuf::from("/r/x/a b.md"))
        );
        assert_eq!(resolve(base, "../y/secret"), None);
    }

    #[test]
    fn valid_fixture_passes_with_warnings_only_for_unknown_keys() {
        let report = check(&fixtures("valid")).unwrap();
        assert_eq!(report.recipes, 4);
        let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        assert_eq!(report.count(Severity::Error), 1, "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("Upper-first.MD: recipe body is empty")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.starts_with("warning: ")
            && l.contains("other.md:")
            && l.ends_with(": unknown frontmatter key \"extra\" is ignored")));
    }

    #[test]
    fn markdown_the_boot_would_not_read_is_a_warning_each() {
        let dir = fixtures("gaps");
        let report = check(&dir).unwrap();
        assert_eq!(report.recipes, 0);
        assert_eq!(report.summary(), "0 recipes checked, 0 errors, 3 warnings");
        let d = dir.display().to_string();
        let files: Vec<&str> = report
            .findings
            .iter()
            .map(|f| f.location.as_str())
            .collect();
        assert_eq!(
            files,
            [
                format!("{d}/group/deep/RECIPE.md"),
                format!("{d}/notes/howto.md"),
                format!("{d}/pay/recipe.md")
            ]
        );
        // The folders the boot does read are never reported.
        assert_eq!(
            check(&fixtures("valid")).unwrap().count(Severity::Warning),
            1
        );
    }

    #[test]
    fn links_are_checked_against_bundled_files() {
        let report = check(&fixtures("links")).unwrap();
        let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        let dir = fixtures("links").display().to_string();
        assert_eq!(
            lines,
            [
                format!(
                    "error: {dir}/bundle/RECIPE.md:9: relative link \"missing.md\" does not resolve to a file bundled with this recipe"
                ),
                format!(
                    "error: {dir}/bundle/RECIPE.md:10: relative link \"../flat.md\" does not resolve to a file bundled with this recipe"
                ),
                format!(
                    "error: {dir}/bundle/RECIPE.md:13: relative link \"img/nope.png\" does not resolve to a file bundled with this recipe"
                ),
                format!(
                    "warning: {dir}/flat.md:5: relative link \"other.md\" in a flat recipe (flat recipes bundle no files)"
                ),
            ]
        );
        assert_eq!(report.summary(), "2 recipes checked, 3 errors, 1 warnings");
    }

    #[test]
    fn every_invalid_recipe_is_reported_not_only_the_first() {
        let dir = fixtures("invalid");
        let mut errors = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let report = check(&entry.unwrap().path()).unwrap();
            errors += report.count(Severity::Error);
        }
        assert_eq!(errors, 11);
        assert_eq!(
            check(&fixtures("nope")).unwrap_err(),
            format!("error: {}: not a directory", fixtures("nope").display())
        );
    }
}
