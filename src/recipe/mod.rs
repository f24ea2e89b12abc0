//! Recipes: markdown playbooks the planner lazy-loads through `load_recipe` (spec §4).
//!
//! This module owns the set of recipes visible to the planner. Loading them from
//! `GATEWAY_RECIPES_DIR` is a separate feature; until it lands the set is empty, so the prompt has
//! no recipe block and `load_recipe` answers "not found" exactly as the contract words it.

/// The recipes known to the gateway, with their visibility already decided.
#[derive(Debug, Default)]
pub struct RecipeBook {
    /// Loaded recipes, sorted by name.
    recipes: Vec<Recipe>,
}

/// One loaded recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub description: String,
    pub body: String,
    pub denied: bool,
}

impl RecipeBook {
    /// An empty book.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Number of valid recipes loaded at boot, denied ones included (`/health` `recipe_count`).
    #[must_use]
    pub fn count(&self) -> usize {
        self.recipes.len()
    }

    fn visible(&self) -> impl Iterator<Item = &Recipe> {
        self.recipes.iter().filter(|r| !r.denied)
    }

    /// The `load_recipe` tool description (spec §4.5).
    #[must_use]
    pub fn tool_description(&self) -> String {
        let head = "Load a recipe: a playbook with step-by-step instructions for one kind of task. Load it before calling agents when the user's request matches a recipe. The result is a <recipe_content name=\"...\"> block with the recipe body and the list of files bundled with it.\n\n";
        let lines: Vec<String> = self
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
    pub fn prompt_block(&self) -> Option<String> {
        let visible: Vec<&Recipe> = self.visible().collect();
        if visible.is_empty() {
            return None;
        }
        let mut lines = vec!["<available_recipes>".to_owned()];
        for r in visible {
            lines.push("  <recipe>".to_owned());
            lines.push(format!(
                "    <name>{}</name>",
                crate::planner::dispatch::esc(&r.name)
            ));
            lines.push(format!(
                "    <description>{}</description>",
                crate::planner::dispatch::esc(&r.description)
            ));
            lines.push(format!(
                "    <location>recipes/{}/</location>",
                crate::planner::dispatch::esc(&r.name)
            ));
            lines.push("  </recipe>".to_owned());
        }
        lines.push("</available_recipes>".to_owned());
        Some(lines.join("\n"))
    }

    /// The `load_recipe` output for a visible recipe.
    ///
    /// # Errors
    /// The contract's not-found text for unknown or denied names.
    pub fn load(&self, name: &str) -> Result<String, String> {
        match self.visible().find(|r| r.name == name) {
            Some(r) => {
                let mut lines = vec![
                    format!(
                        "<recipe_content name=\"{}\">",
                        crate::planner::dispatch::esc(&r.name)
                    ),
                    format!("# Recipe: {}", r.name),
                ];
                if !r.body.is_empty() {
                    lines.push(r.body.clone());
                }
                lines.push(format!(
                    "Base directory for this recipe: recipes/{}/",
                    r.name
                ));
                lines.push("Relative paths (e.g., scripts/, reference/) resolve against this base directory.".to_owned());
                lines.push("<recipe_files>(none)</recipe_files>".to_owned());
                lines.push("</recipe_content>".to_owned());
                Ok(lines.join("\n"))
            }
            None => {
                let names: Vec<&str> = self.visible().map(|r| r.name.as_str()).collect();
                let available = if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                };
                Err(format!(
                    "load_recipe: recipe \"{name}\" not found. Available: {available}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_book_matches_the_contract_texts() {
        let book = RecipeBook::empty();
        assert_eq!(
            book.load("x").unwrap_err(),
            "load_recipe: recipe \"x\" not found. Available: none"
        );
        assert!(
            book.tool_description()
                .ends_with("\n\nNo recipes are currently available.")
        );
        assert!(book.prompt_block().is_none());
        assert_eq!(book.count(), 0);
    }
}
