//! Recipes: markdown playbooks the planner lazy-loads through `load_recipe` (spec §4).
//!
//! Loaded once at boot from `GATEWAY_RECIPES_DIR`: flat `name.md` files and bundled
//! `name/RECIPE.md` folders. Visibility is decided at load time (planner permission rules and
//! `GATEWAY_RECIPES_DENY`); denied recipes count in `/health` but are never listed or loadable.
//! No server path ever leaves this module: the planner sees `recipes/<name>/` only.

pub mod check;
pub mod frontmatter;
pub mod permission;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use permission::{Action, Permissions};

/// The reserved prefix of A2A tool ids.
const RESERVED_PREFIX: &str = "call_";
/// Frontmatter keys a recipe uses; others are ignored (the linter warns).
pub const KNOWN_KEYS: [&str; 4] = ["name", "description", "tags", "triggers"];

/// A boot failure while loading recipes (spec §4.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error("recipes: directory \"{0}\" does not exist")]
    MissingDir(String),
    #[error("recipes: cannot read \"{path}\": {detail}")]
    Unreadable { path: String, detail: String },
    #[error("recipe: invalid frontmatter in {file}: {detail}")]
    InvalidFrontmatter {
        file: String,
        detail: String,
        /// 1-based line in the file, when known.
        line: Option<usize>,
    },
    #[error("recipe: duplicate name \"{name}\" in {first} and {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
}

/// One loaded recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub triggers: Vec<String>,
    pub body: String,
    /// Bundled files, `/`-separated paths relative to the recipe folder, byte-sorted.
    pub files: Vec<String>,
    /// The file as shown in messages (recipes folder as configured + relative path).
    pub display: String,
    pub denied: bool,
}

/// A recipe file found by the scan, not yet parsed.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Where the file is.
    pub path: PathBuf,
    /// How messages name it, e.g. `recipes/x/RECIPE.md`.
    pub display: String,
    pub default_name: String,
    /// The recipe folder for the bundled layout.
    pub bundle_dir: Option<PathBuf>,
}

/// Lists the recipe files of a folder in name order (flat `*.md` files and `*/RECIPE.md`).
///
/// # Errors
/// The folder cannot be read.
pub fn scan(dir: &Path) -> Result<Vec<Candidate>, RecipeError> {
    let unreadable = |e: std::io::Error| RecipeError::Unreadable {
        path: dir.display().to_string(),
        detail: e.to_string(),
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let shown = dir.display().to_string();
    let shown = shown.trim_end_matches('/');
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_file() && name.to_ascii_lowercase().ends_with(".md") {
            out.push(Candidate {
                display: format!("{shown}/{name}"),
                default_name: name[..name.len() - 3].to_owned(),
                path,
                bundle_dir: None,
            });
        } else if path.is_dir() && path.join("RECIPE.md").is_file() {
            out.push(Candidate {
                display: format!("{shown}/{name}/RECIPE.md"),
                default_name: name,
                path: path.join("RECIPE.md"),
                bundle_dir: Some(path),
            });
        }
    }
    Ok(out)
}

/// Regular files of a bundled recipe up to depth 2, except its `RECIPE.md`.
fn bundled_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let Ok(top) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in top.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_file() && name != "RECIPE.md" {
            files.push(name);
        } else if kind.is_dir()
            && let Ok(inner) = std::fs::read_dir(entry.path())
        {
            for sub in inner.filter_map(Result::ok) {
                if sub.file_type().is_ok_and(|t| t.is_file()) {
                    files.push(format!("{name}/{}", sub.file_name().to_string_lossy()));
                }
            }
        }
    }
    files.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    files
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A frontmatter finding that does not stop the boot; `recipes check` prints it as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    pub message: String,
}

/// A `tags`/`triggers` list: each item is the text its author wrote. Items YAML reads as numbers
/// or booleans (`402`, `1.0`, `true`) keep their source text and earn a warning; a mapping, a
/// nested list or a null item is an error (spec §4.2 wording).
fn string_list(
    map: &Map<String, Value>,
    yaml: &str,
    key: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<String>, String> {
    let not_a_list = || format!("{key} must be a list of strings");
    let items = match map.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(not_a_list()),
    };
    if !items
        .iter()
        .all(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
    {
        return Err(not_a_list());
    }
    let source = frontmatter::source_list(yaml, key).ok_or_else(not_a_list)?;
    if source.len() != items.len() {
        return Err(not_a_list());
    }
    for (typed, item) in items.iter().zip(&source) {
        if !typed.is_string() {
            let kind = if typed.is_boolean() {
                "a boolean"
            } else {
                "a number"
            };
            warnings.push(Warning {
                line: Some(item.line),
                message: format!(
                    "{key} item {0} is {kind} in YAML and is read as the text \"{0}\"; quote it (\"{0}\") to say so",
                    item.text
                ),
            });
        }
    }
    Ok(source.into_iter().map(|item| item.text).collect())
}

/// A recipe file as read: the recipe, and what `recipes check` should warn about.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub recipe: Recipe,
    pub warnings: Vec<Warning>,
}

/// Parses one recipe file's text; the recipe's `files` and `denied` are left empty. The boot and
/// `recipes check` both read recipes through here, so whatever the checker accepts boots.
///
/// # Errors
/// The first frontmatter problem, with its line when known.
pub fn parse(text: &str, candidate: &Candidate) -> Result<Parsed, RecipeError> {
    let invalid = |detail: String, line: Option<usize>| RecipeError::InvalidFrontmatter {
        file: candidate.display.clone(),
        detail,
        line,
    };
    let doc = frontmatter::split(text).map_err(|e| invalid(e.detail, e.line))?;
    let map = frontmatter::parse_mapping(&doc.yaml).map_err(|e| invalid(e.detail, e.line))?;
    // The file line of a top-level key (the frontmatter starts on line 2).
    let key_line = |key: &str| {
        doc.yaml
            .lines()
            .position(|l| {
                [
                    format!("{key}:"),
                    format!("\"{key}\":"),
                    format!("'{key}':"),
                ]
                .iter()
                .any(|k| l.starts_with(k.as_str()))
            })
            .map(|i| i + 2)
    };
    let name = match map.get("name") {
        None | Some(Value::Null) => candidate.default_name.clone(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(invalid(
                "name must be a string".to_owned(),
                key_line("name"),
            ));
        }
    };
    if !is_valid_name(&name) {
        return Err(invalid(
            "recipe name must match [A-Za-z0-9][A-Za-z0-9._-]*".to_owned(),
            key_line("name"),
        ));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(invalid(
            "recipe name must not start with \"call_\" — that prefix is reserved for A2A tool ids"
                .to_owned(),
            key_line("name"),
        ));
    }
    let description = match map.get("description") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(invalid(
                "description is required".to_owned(),
                key_line("description").or(Some(1)),
            ));
        }
        Some(_) => {
            return Err(invalid(
                "description must be a string".to_owned(),
                key_line("description"),
            ));
        }
    };
    let mut warnings: Vec<Warning> = map
        .keys()
        .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
        .map(|key| Warning {
            line: key_line(key),
            message: format!("unknown frontmatter key \"{key}\" is ignored"),
        })
        .collect();
    let tags = string_list(&map, &doc.yaml, "tags", &mut warnings)
        .map_err(|d| invalid(d, key_line("tags")))?;
    let triggers = string_list(&map, &doc.yaml, "triggers", &mut warnings)
        .map_err(|d| invalid(d, key_line("triggers")))?;
    Ok(Parsed {
        recipe: Recipe {
            name,
            description,
            tags,
            triggers,
            body: doc.body,
            files: Vec::new(),
            display: candidate.display.clone(),
            denied: false,
        },
        warnings,
    })
}

/// The recipes known to the gateway, with their visibility already decided.
#[derive(Debug, Default)]
pub struct RecipeBook {
    /// Loaded recipes, sorted by name (bytes).
    recipes: Vec<Recipe>,
}

impl RecipeBook {
    /// An empty book.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads a recipes folder. A missing folder is an error only when it was named explicitly.
    ///
    /// # Errors
    /// The first invalid recipe, a duplicate name, or a missing explicit folder.
    pub fn load(
        dir: &Path,
        explicit: bool,
        permissions: &Permissions,
    ) -> Result<Self, RecipeError> {
        if !dir.is_dir() {
            if explicit {
                return Err(RecipeError::MissingDir(dir.display().to_string()));
            }
            return Ok(Self::empty());
        }
        let mut recipes: Vec<Recipe> = Vec::new();
        for candidate in scan(dir)? {
            let text =
                std::fs::read_to_string(&candidate.path).map_err(|e| RecipeError::Unreadable {
                    path: candidate.display.clone(),
                    detail: e.to_string(),
                })?;
            let mut recipe = parse(&text, &candidate)?.recipe;
            if let Some(first) = recipes.iter().find(|r| r.name == recipe.name) {
                return Err(RecipeError::Duplicate {
                    name: recipe.name,
                    first: first.display.clone(),
                    second: candidate.display,
                });
            }
            if let Some(bundle) = &candidate.bundle_dir {
                recipe.files = bundled_files(bundle);
            }
            recipe.denied = permissions.is_denied(&recipe.name);
            recipes.push(recipe);
        }
        recipes.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(Self { recipes })
    }

    /// Builds a book from recipes (tests and embedding).
    #[must_use]
    pub fn from_recipes(mut recipes: Vec<Recipe>) -> Self {
        recipes.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Self { recipes }
    }

    /// Number of valid recipes loaded at boot, denied ones included (`/health` `recipe_count`).
    #[must_use]
    pub fn count(&self) -> usize {
        self.recipes.len()
    }

    /// The recipes the planner may see, in name order.
    pub fn visible(&self) -> impl Iterator<Item = &Recipe> {
        self.recipes.iter().filter(|r| !r.denied)
    }

    /// A recipe the planner may load, by name.
    #[must_use]
    pub fn find_visible(&self, name: &str) -> Option<&Recipe> {
        self.visible().find(|r| r.name == name)
    }
}

/// A folder of `fixtures/recipes` (tests).
#[cfg(test)]
pub(crate) fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/recipes")
        .join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::fixture_dir as fixtures;

    #[test]
    fn loads_flat_and_bundled_layouts_sorted_by_name() {
        assert_eq!(RecipeBook::empty().count(), 0);
        let book = RecipeBook::load(&fixtures("valid"), true, &Permissions::default()).unwrap();
        let names: Vec<&str> = book.visible().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Upper-first", "bundled", "flat-one", "renamed"]);
        let bundled = book.find_visible("bundled").unwrap();
        assert_eq!(bundled.files, ["notes.txt", "scripts/run.sh"]);
        assert_eq!(bundled.tags, ["research", "web"]);
        assert!(bundled.display.ends_with("valid/bundled/RECIPE.md"));
    }

    #[test]
    fn denied_recipes_are_counted_but_invisible() {
        let perms = Permissions::new(
            &[("flat-*".to_owned(), Action::Deny)],
            &["renamed".to_owned()],
        );
        let book = RecipeBook::load(&fixtures("valid"), true, &perms).unwrap();
        assert_eq!(book.count(), 4);
        assert_eq!(book.visible().count(), 2);
        assert!(book.find_visible("flat-one").is_none());
    }

    #[test]
    fn every_invalid_fixture_has_its_exact_boot_error() {
        let cases = [
            (
                "missing",
                "recipe: invalid frontmatter in {d}/missing.md: missing frontmatter",
            ),
            (
                "unterminated",
                "recipe: invalid frontmatter in {d}/unterminated.md: unterminated frontmatter",
            ),
            (
                "not-mapping",
                "recipe: invalid frontmatter in {d}/not-mapping.md: frontmatter is not a mapping",
            ),
            (
                "no-description",
                "recipe: invalid frontmatter in {d}/no-description.md: description is required",
            ),
            (
                "bad-tags",
                "recipe: invalid frontmatter in {d}/bad-tags.md: tags must be a list of strings",
            ),
            (
                "bad-triggers",
                "recipe: invalid frontmatter in {d}/bad-triggers.md: triggers must be a list of strings",
            ),
            (
                "bad-name",
                "recipe: invalid frontmatter in {d}/bad-name.md: recipe name must match [A-Za-z0-9][A-Za-z0-9._-]*",
            ),
            (
                "reserved",
                "recipe: invalid frontmatter in {d}/reserved.md: recipe name must not start with \"call_\" — that prefix is reserved for A2A tool ids",
            ),
            (
                "name-type",
                "recipe: invalid frontmatter in {d}/name-type.md: name must be a string",
            ),
        ];
        for (file, want) in cases {
            let dir = fixtures("invalid").join(file);
            let err = RecipeBook::load(&dir, true, &Permissions::default()).unwrap_err();
            assert_eq!(
                err.to_string(),
                want.replace("{d}", &dir.display().to_string()),
                "{file}"
            );
        }
        let dir = fixtures("invalid").join("yaml");
        let err = RecipeBook::load(&dir, true, &Permissions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "recipe: invalid frontmatter in {}/yaml.md: YAML error: ",
                dir.display()
            )),
            "{err}"
        );
        let dir = fixtures("invalid").join("duplicate");
        assert_eq!(
            RecipeBook::load(&dir, true, &Permissions::default())
                .unwrap_err()
                .to_string(),
            format!(
                "recipe: duplicate name \"same\" in {0}/a.md and {0}/b/RECIPE.md",
                dir.display()
            )
        );
    }

    fn parse_text(text: &str) -> Result<Parsed, RecipeError> {
        let candidate = Candidate {
            path: PathBuf::from("r/x.md"),
            display: "r/x.md".into(),
            default_name: "x".into(),
            bundle_dir: None,
        };
        parse(text, &candidate)
    }

    #[test]
    fn list_items_keep_their_source_text_and_non_strings_are_warned_about() {
        let parsed = parse_text("---\nname: paid-flow\ndescription: d\ntags: [payments, x402, 2026]\ntriggers: [payment-required, 402, \"403\", true, paid agent]\n---\nB").unwrap();
        assert_eq!(parsed.recipe.tags, ["payments", "x402", "2026"]);
        assert_eq!(
            parsed.recipe.triggers,
            ["payment-required", "402", "403", "true", "paid agent"]
        );
        let lines: Vec<(Option<usize>, &str)> = parsed
            .warnings
            .iter()
            .map(|w| (w.line, w.message.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    Some(4),
                    "tags item 2026 is a number in YAML and is read as the text \"2026\"; quote it (\"2026\") to say so"
                ),
                (
                    Some(5),
                    "triggers item 402 is a number in YAML and is read as the text \"402\"; quote it (\"402\") to say so"
                ),
                (
                    Some(5),
                    "triggers item true is a boolean in YAML and is read as the text \"true\"; quote it (\"true\") to say so"
                ),
            ]
        );
        let parsed = parse_text("---\ndescription: d\ntags:\n  - 1.0\n  - 2.50\n---\n").unwrap();
        assert_eq!(parsed.recipe.tags, ["1.0", "2.50"]);
        assert_eq!(parsed.warnings[1].line, Some(5));
    }

    #[test]
    fn name_and_description_follow_yaml_1_2_core() {
        for word in ["no", "yes", "on", "off", "y", "n"] {
            let parsed =
                parse_text(&format!("---\nname: {word}\ndescription: {word}\n---\nB")).unwrap();
            assert_eq!(parsed.recipe.name, word);
            assert_eq!(parsed.recipe.description, word);
        }
        let err = parse_text("---\ndescription: true\n---\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "recipe: invalid frontmatter in r/x.md: description must be a string"
        );
    }

    #[test]
    fn mappings_nested_lists_and_nulls_in_lists_are_still_errors() {
        for (yaml, key) in [
            ("triggers: [a, {b: 1}]", "triggers"),
            ("tags: [a, [b]]", "tags"),
            ("tags: [a, ~]", "tags"),
            ("tags: a", "tags"),
        ] {
            let err = parse_text(&format!("---\ndescription: d\n{yaml}\n---\n")).unwrap_err();
            assert_eq!(
                err,
                RecipeError::InvalidFrontmatter {
                    file: "r/x.md".into(),
                    detail: format!("{key} must be a list of strings"),
                    line: Some(3),
                },
                "{yaml}"
            );
        }
    }

    #[test]
    fn missing_folder_is_an_error_only_when_named() {
        let dir = fixtures("nope");
        assert!(
            RecipeBook::load(&dir, false, &Permissions::default())
                .unwrap()
                .count()
                == 0
        );
        assert_eq!(
            RecipeBook::load(&dir, true, &Permissions::default())
                .unwrap_err()
                .to_string(),
            format!("recipes: directory \"{}\" does not exist", dir.display())
        );
    }
}
