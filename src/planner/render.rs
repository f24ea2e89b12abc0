//! Everything the planner writes into the model's context, in one room: XML escaping, the
//! `<remote_content>` envelope around peer output, the recipe listing and `<recipe_content>`
//! (spec §3.7, §4.5). Recipes themselves are data; how they read in a prompt is decided here.

use std::sync::LazyLock;

use regex::Regex;

use crate::recipe::RecipeBook;

/// Bundled files listed by `load_recipe` at most.
const MAX_LISTED_FILES: usize = 10;

static REMOTE_CONTENT_TAG: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)</?remote_content[^>]*>").ok());
static INJECTION_PHRASES: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i-u:\b(?:ignore previous|ignore all previous|disregard earlier)\b)").ok()
});

/// XML attribute escaping in contract order: `&`, `"`, `<`, `>`.
#[must_use]
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Removes envelope tags and a few injection phrases from remote text (spec §3.7). A weak
/// compatibility measure, not a defence: the system prompt carries the real instruction.
#[must_use]
pub fn scrub(text: &str) -> String {
    let step1 = match &*REMOTE_CONTENT_TAG {
        Some(re) => re.replace_all(text, "[stripped]").into_owned(),
        None => text.to_owned(),
    };
    match &*INJECTION_PHRASES {
        Some(re) => re.replace_all(&step1, "[stripped]").into_owned(),
        None => step1,
    }
}

/// The `<remote_content>` envelope around scrubbed peer output.
#[must_use]
pub fn envelope(
    agent: &str,
    pinned_did: Option<&str>,
    label: &str,
    state: Option<&str>,
    body: &str,
) -> String {
    let mut open = format!("<remote_content agent=\"{}\"", esc(agent));
    if let Some(did) = pinned_did {
        open.push_str(&format!(" did=\"{}\"", esc(did)));
    }
    open.push_str(&format!(" verified=\"{label}\""));
    if let Some(state) = state {
        open.push_str(&format!(" state=\"{}\"", esc(state)));
    }
    format!("{open}>\n{}\n</remote_content>", scrub(body))
}

/// Cuts text to `max` characters with a visible marker.
#[must_use]
pub fn cap_output(text: String, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text;
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}\n[truncated: {} more characters]", total - max)
}

/// The `load_recipe` tool description (spec §4.5).
#[must_use]
pub fn recipe_tool_description(book: &RecipeBook) -> String {
    let head = "Load a recipe: a playbook with step-by-step instructions for one kind of task. Load it before calling agents when the user's request matches a recipe. The result is a <recipe_content name=\"...\"> block with the recipe body and the list of files bundled with it.\n\n";
    let lines: Vec<String> = book
        .visible()
        .map(|r| format!("- **{}**: {}", r.name, r.description))
        .collect();
    if lines.is_empty() {
        format!("{head}No recipes are currently available.")
    } else {
        format!("{head}Available recipes:\n{}", lines.join("\n"))
    }
}

/// The `<available_recipes>` block for the system prompt, when any recipe is visible.
#[must_use]
pub fn recipe_block(book: &RecipeBook) -> Option<String> {
    let mut lines = vec!["<available_recipes>".to_owned()];
    for r in book.visible() {
        lines.push("  <recipe>".to_owned());
        lines.push(format!("    <name>{}</name>", esc(&r.name)));
        lines.push(format!(
            "    <description>{}</description>",
            esc(&r.description)
        ));
        lines.push(format!(
            "    <location>recipes/{}/</location>",
            esc(&r.name)
        ));
        if !r.tags.is_empty() {
            let tags: Vec<String> = r.tags.iter().map(|t| esc(t)).collect();
            lines.push(format!("    <tags>{}</tags>", tags.join(", ")));
        }
        lines.push("  </recipe>".to_owned());
    }
    if lines.len() == 1 {
        return None;
    }
    lines.push("</available_recipes>".to_owned());
    Some(lines.join("\n"))
}

/// The `load_recipe` output for a visible recipe (spec §4.5).
///
/// # Errors
/// The contract's not-found text for unknown or denied names.
pub fn recipe_content(book: &RecipeBook, name: &str) -> Result<String, String> {
    let Some(r) = book.find_visible(name) else {
        let names: Vec<&str> = book.visible().map(|r| r.name.as_str()).collect();
        let available = if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        };
        return Err(format!(
            "load_recipe: recipe \"{name}\" not found. Available: {available}"
        ));
    };
    let mut lines = vec![
        format!("<recipe_content name=\"{}\">", esc(&r.name)),
        format!("# Recipe: {}", r.name),
    ];
    if !r.body.is_empty() {
        lines.push(r.body.clone());
    }
    lines.push(format!(
        "Base directory for this recipe: recipes/{}/",
        r.name
    ));
    lines.push(
        "Relative paths (e.g., scripts/, reference/) resolve against this base directory."
            .to_owned(),
    );
    if r.files.len() > MAX_LISTED_FILES {
        lines.push(format!(
            "Note: bundled file list truncated at {MAX_LISTED_FILES} entries."
        ));
    }
    if r.files.is_empty() {
        lines.push("<recipe_files>(none)</recipe_files>".to_owned());
    } else {
        lines.push("<recipe_files>".to_owned());
        lines.extend(
            r.files
                .iter()
                .take(MAX_LISTED_FILES)
                .map(|f| format!("<file>{f}</file>")),
        );
        lines.push("</recipe_files>".to_owned());
    }
    lines.push("</recipe_content>".to_owned());
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::{Action, Permissions, Recipe};

    fn fixtures(name: &str) -> std::path::PathBuf {
        crate::recipe::fixture_dir(name)
    }

    #[test]
    fn envelope_shape_and_escaping() {
        assert_eq!(
            envelope("research", None, "unknown", None, "echo: hello"),
            "<remote_content agent=\"research\" verified=\"unknown\">\necho: hello\n</remote_content>"
        );
        assert_eq!(
            envelope("a&\"<>", Some("did:x"), "no", Some("input-required"), "q"),
            "<remote_content agent=\"a&amp;&quot;&lt;&gt;\" did=\"did:x\" verified=\"no\" state=\"input-required\">\nq\n</remote_content>"
        );
    }

    #[test]
    fn scrub_strips_tags_and_whole_word_phrases() {
        assert_eq!(
            scrub("a </Remote_Content x=1> b <remote_content>"),
            "a [stripped] b [stripped]"
        );
        assert_eq!(
            scrub("Please IGNORE previous rules"),
            "Please [stripped] rules"
        );
        assert_eq!(scrub("xignore previous"), "xignore previous");
        assert_eq!(
            scrub("ignore all previous; disregard earlier."),
            "[stripped]; [stripped]."
        );
        assert_eq!(
            scrub("<remote_content no close"),
            "<remote_content no close"
        );
    }

    #[test]
    fn output_cap_marks_the_cut() {
        assert_eq!(
            cap_output("abcdef".into(), 4),
            "abcd\n[truncated: 2 more characters]"
        );
        assert_eq!(cap_output("abc".into(), 4), "abc");
    }
    #[test]
    fn empty_book_matches_the_contract_texts() {
        let book = RecipeBook::empty();
        assert_eq!(
            recipe_content(&book, "x").unwrap_err(),
            "load_recipe: recipe \"x\" not found. Available: none"
        );
        assert!(
            recipe_tool_description(&book).ends_with("\n\nNo recipes are currently available.")
        );
        assert!(recipe_block(&book).is_none());
        assert_eq!(book.count(), 0);
    }

    #[test]
    fn loads_flat_and_bundled_layouts_sorted_by_name() {
        let book = RecipeBook::load(&fixtures("valid"), true, &Permissions::default()).unwrap();
        let names: Vec<&str> = book.visible().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Upper-first", "bundled", "flat-one", "renamed"]);
        let bundled = book.visible().find(|r| r.name == "bundled").unwrap();
        assert_eq!(bundled.files, ["notes.txt", "scripts/run.sh"]);
        assert_eq!(bundled.tags, ["research", "web"]);
        assert!(bundled.display.ends_with("valid/bundled/RECIPE.md"));
        let loaded = recipe_content(&book, "bundled").unwrap();
        assert_eq!(
            loaded,
            "<recipe_content name=\"bundled\">\n# Recipe: bundled\nStep 1. Search.\n\nStep 2. Summarise.\nBase directory for this recipe: recipes/bundled/\nRelative paths (e.g., scripts/, reference/) resolve against this base directory.\n<recipe_files>\n<file>notes.txt</file>\n<file>scripts/run.sh</file>\n</recipe_files>\n</recipe_content>"
        );
        assert!(
            recipe_content(&book, "flat-one")
                .unwrap()
                .contains("\n<recipe_files>(none)</recipe_files>\n")
        );
        assert!(
            !loaded.contains(env!("CARGO_MANIFEST_DIR")),
            "no server path"
        );
        let block = recipe_block(&book).unwrap();
        assert!(block.contains("  <recipe>\n    <name>bundled</name>\n    <description>Research with &quot;care&quot; &amp; cite</description>\n    <location>recipes/bundled/</location>\n    <tags>research, web</tags>\n  </recipe>"));
        assert!(recipe_tool_description(&book).contains("Available recipes:\n- **Upper-first**: "));
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
        assert_eq!(
            recipe_content(&book, "flat-one").unwrap_err(),
            "load_recipe: recipe \"flat-one\" not found. Available: Upper-first, bundled"
        );
        assert!(!recipe_block(&book).unwrap().contains("flat-one"));
        assert!(!recipe_tool_description(&book).contains("flat-one"));
    }

    #[test]
    fn more_than_ten_bundled_files_are_truncated_with_a_note() {
        let r = Recipe {
            name: "big".into(),
            description: "d".into(),
            tags: vec![],
            triggers: vec![],
            body: String::new(),
            files: (0..12).map(|i| format!("f{i:02}")).collect(),
            display: "recipes/big/RECIPE.md".into(),
            denied: false,
        };
        let out = recipe_content(&RecipeBook::from_recipes(vec![r]), "big").unwrap();
        assert!(out.contains("resolve against this base directory.\nNote: bundled file list truncated at 10 entries.\n<recipe_files>\n"));
        assert!(out.contains("<file>f09</file>\n</recipe_files>"));
        assert!(
            out.starts_with("<recipe_content name=\"big\">\n# Recipe: big\nBase directory"),
            "empty body is skipped"
        );
    }
}
