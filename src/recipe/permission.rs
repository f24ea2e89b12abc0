//! Which recipes the planner may see (spec §4.3): the planner file's `permission.recipe` rules,
//! most specific match wins, plus the `GATEWAY_RECIPES_DENY` globs.

use regex::Regex;

/// A rule's verdict. `Ask` counts as visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    Ask,
}

impl Action {
    /// Parses `allow`, `deny` or `ask`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            "ask" => Some(Self::Ask),
            _ => None,
        }
    }
}

/// An anchored glob: `**` any run, `*` any run without `/` or `:`, `?` one character.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    regex: Option<Regex>,
}

impl Glob {
    /// Compiles a glob.
    #[must_use]
    pub fn new(pattern: &str) -> Self {
        let mut re = String::from("(?s)^");
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    re.push_str(".*");
                }
                '*' => re.push_str("[^/:]*"),
                '?' => re.push('.'),
                other => re.push_str(&regex::escape(&other.to_string())),
            }
        }
        re.push('$');
        Self {
            pattern: pattern.to_owned(),
            regex: Regex::new(&re).ok(),
        }
    }

    /// Whether the whole name matches.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(name))
    }

    /// Specificity: length in characters; `*` alone scores −100; `**` costs 10, `*` costs 1.
    #[must_use]
    pub fn specificity(&self) -> i64 {
        if self.pattern == "*" {
            return -100;
        }
        let mut score = i64::try_from(self.pattern.chars().count()).unwrap_or(i64::MAX);
        if self.pattern.contains("**") {
            score -= 10;
        }
        if self.pattern.contains('*') {
            score -= 1;
        }
        score
    }
}

/// The rules deciding recipe visibility.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    rules: Vec<(Glob, Action)>,
    deny: Vec<Glob>,
}

impl Permissions {
    /// Builds the rule set from `(pattern, action)` pairs in order and the deny globs.
    #[must_use]
    pub fn new(rules: &[(String, Action)], deny: &[String]) -> Self {
        Self {
            rules: rules.iter().map(|(p, a)| (Glob::new(p), *a)).collect(),
            deny: deny.iter().map(|p| Glob::new(p)).collect(),
        }
    }

    /// Whether a recipe name is denied.
    #[must_use]
    pub fn is_denied(&self, name: &str) -> bool {
        if self.deny.iter().any(|g| g.matches(name)) {
            return true;
        }
        let mut best: Option<(i64, Action)> = None;
        for (glob, action) in &self.rules {
            if glob.matches(name) {
                let score = glob.specificity();
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, *action));
                }
            }
        }
        matches!(best, Some((_, Action::Deny)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_syntax() {
        assert!(Glob::new("secret-*").matches("secret-plans"));
        assert!(!Glob::new("secret-*").matches("secret-a/b"));
        assert!(!Glob::new("secret-*").matches("secret-a:b"));
        assert!(Glob::new("secret-**").matches("secret-a/b:c"));
        assert!(Glob::new("r?cipe").matches("recipe"));
        assert!(!Glob::new("r?cipe").matches("rcipe"));
        assert!(Glob::new("a.b").matches("a.b") && !Glob::new("a.b").matches("axb"));
        assert!(!Glob::new("abc").matches("abcd"), "anchored");
    }

    #[test]
    fn most_specific_rule_wins_and_ties_go_to_the_first() {
        let rules = vec![
            ("*".to_owned(), Action::Deny),
            ("public-*".to_owned(), Action::Allow),
            ("public-secret".to_owned(), Action::Deny),
            ("x?".to_owned(), Action::Allow),
            ("x?".to_owned(), Action::Deny),
        ];
        let p = Permissions::new(&rules, &[]);
        assert!(p.is_denied("anything"));
        assert!(!p.is_denied("public-notes"));
        assert!(p.is_denied("public-secret"));
        assert!(!p.is_denied("xy"), "tie: the earlier rule");
        assert!(!Permissions::default().is_denied("x"), "no rule: allow");
        let ask = Permissions::new(&[("*".to_owned(), Action::Ask)], &[]);
        assert!(!ask.is_denied("x"), "ask counts as visible");
        let deny_env =
            Permissions::new(&[("*".to_owned(), Action::Allow)], &["draft-*".to_owned()]);
        assert!(deny_env.is_denied("draft-1"));
    }
}
