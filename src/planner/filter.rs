//! Narrowing a catalog before the planner sees a tool: `include` / `exclude` globs over
//! `agent/skill` (`*` within a name, `**` across, `?` one character). A server-side catalog's
//! own filter is applied when the catalog is loaded, a request's (`preferences.skills`) when the
//! request is read, so a request can only narrow what its catalog allows.

use crate::planner::request::Agent;
pub use crate::planner::request::SkillFilter;
use crate::recipe::permission::Glob;

impl SkillFilter {
    /// Whether the filter narrows anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Keeps the skills the filter lets through; an agent left without skills goes.
    pub fn apply(&self, agents: &mut Vec<Agent>) {
        if self.is_empty() {
            return;
        }
        let include: Vec<Glob> = self.include.iter().map(|g| Glob::new(g)).collect();
        let exclude: Vec<Glob> = self.exclude.iter().map(|g| Glob::new(g)).collect();
        for agent in agents.iter_mut() {
            let name = agent.name.clone();
            agent.skills.retain(|skill| {
                let key = format!("{name}/{}", skill.id);
                (include.is_empty() || include.iter().any(|g| g.matches(&key)))
                    && !exclude.iter().any(|g| g.matches(&key))
            });
        }
        agents.retain(|a| !a.skills.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::validate::validate;
    use serde_json::json;

    fn agents() -> Vec<Agent> {
        validate(&json!({"question": "q", "agents": [
            {"name": "research", "endpoint": "http://h", "skills": [{"id": "search"}, {"id": "report"}]},
            {"name": "billing", "endpoint": "http://h", "skills": [{"id": "charge"}, {"id": "search"}]}]}))
        .unwrap()
        .agents
    }

    fn names(agents: &[Agent]) -> Vec<String> {
        agents
            .iter()
            .flat_map(|a| a.skills.iter().map(move |s| format!("{}/{}", a.name, s.id)))
            .collect()
    }

    #[test]
    fn include_then_exclude_over_agent_and_skill() {
        let mut a = agents();
        SkillFilter {
            include: vec!["*/search".into(), "research/*".into()],
            exclude: vec!["billing/*".into()],
        }
        .apply(&mut a);
        assert_eq!(names(&a), ["research/search", "research/report"]);
        assert_eq!(a.len(), 1, "an agent without skills goes");
        let mut a = agents();
        SkillFilter::default().apply(&mut a);
        assert_eq!(names(&a).len(), 4);
        let mut a = agents();
        SkillFilter {
            include: Vec::new(),
            exclude: vec!["**search".into()],
        }
        .apply(&mut a);
        assert_eq!(names(&a), ["research/report", "billing/charge"]);
    }

    #[test]
    fn a_bad_skills_preference_names_its_field() {
        let issues = validate(
            &json!({"question": "q", "preferences": {"skills": {"include": "research/*"}}}),
        )
        .unwrap_err();
        assert_eq!(issues[0].path, "preferences.skills.include");
        let issues =
            validate(&json!({"question": "q", "preferences": {"skills": ["x"]}})).unwrap_err();
        assert_eq!(issues[0].path, "preferences.skills");
        let r =
            validate(&json!({"question": "q", "preferences": {"skills": {"exclude": ["a/*"]}}}))
                .unwrap();
        assert_eq!(r.preferences.skills.exclude, ["a/*"]);
    }
}
