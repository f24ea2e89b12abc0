//! Skills found on demand (issue 29): above `planner.tool_discovery_threshold` skills the model
//! is offered `find_skills` and the skills this plan has found or used, instead of every skill.
//! `find_skills` ranks the catalog's skills with BM25 (the `bm25` crate: its tokenizer
//! normalises unicode, drops English stop words and stems) over each skill's agent name, id,
//! description, tags and examples, and lists the best ones; from the next step on they are tools
//! with their schemas. A call to any catalog skill by its tool name is honoured whether it was
//! found or not.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bm25::{Document, Language, SearchEngine, SearchEngineBuilder};
use serde_json::Value;

use crate::planner::request::PlanRequest;
use crate::planner::tools::ToolSet;

/// Skills listed when the model does not say how many.
pub const DEFAULT_LIMIT: usize = 5;
/// The most skills one `find_skills` call lists.
pub const MAX_LIMIT: usize = 20;
/// A listed description is cut to this many characters (its line stays one line).
const LINE_DESCRIPTION_CHARS: usize = 240;

/// What the system prompt says about discovery (appended to it for plans that use it).
pub const PROMPT_NOTE: &str = "Skills found on demand\n- This catalog is too large to list: besides load_recipe you see find_skills and the skills this plan has already found or used. Call find_skills with a few words about the task to list the best-matching skills, which you can call from the next step on (a skill whose tool name you already know may be called directly).";

/// A name or id as words: `_`, `-`, `.`, `/` and lower-to-upper case changes separate them
/// (the tokenizer keeps `docs_search` as one word).
fn words(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | '/' | ':') {
            out.push(' ');
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            out.push(' ');
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

/// The catalog's skills as a BM25 index, keyed by tool index.
pub struct SkillIndex {
    engine: SearchEngine<usize>,
}

impl std::fmt::Debug for SkillIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkillIndex").finish_non_exhaustive()
    }
}

impl SkillIndex {
    /// What is indexed of each peer tool, in tool order: agent name, skill id, description, tags,
    /// examples.
    fn texts(request: &PlanRequest, tools: &ToolSet) -> Vec<String> {
        tools
            .peers
            .iter()
            .map(|tool| {
                let agent = &request.agents[tool.agent];
                let skill = &agent.skills[tool.skill];
                let mut text = format!("{} {}", words(&agent.name), words(&skill.id));
                for piece in skill
                    .description
                    .iter()
                    .chain(&skill.tags)
                    .chain(&skill.examples)
                {
                    text.push_str(". ");
                    text.push_str(piece);
                }
                text
            })
            .collect()
    }

    /// Indexes these texts, keyed by their position.
    fn from_texts(texts: &[String]) -> Self {
        let documents = texts
            .iter()
            .enumerate()
            .map(|(i, text)| Document::new(i, text.as_str()));
        Self {
            engine: SearchEngineBuilder::<usize>::with_documents(Language::English, documents)
                .build(),
        }
    }

    /// Tool indices of the skills that match `query`, best first (equal scores in catalog
    /// order), at most `limit`.
    #[must_use]
    pub fn search(&self, query: &str, limit: usize) -> Vec<usize> {
        let mut found: Vec<(f32, usize)> = self
            .engine
            .search(&words(query), None)
            .into_iter()
            .filter(|r| r.score > 0.0)
            .map(|r| (r.score, r.document.id))
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        found.into_iter().take(limit).map(|(_, i)| i).collect()
    }
}

/// Catalogs indexed at most at once by [`IndexCache`].
const CACHED_INDEXES: usize = 16;

/// The indexes of the catalogs ranked last, shared by every plan: a catalog seen again (a
/// server-side one, or an app that sends the same agents with every request) is ranked without
/// indexing it again (indexing 120 skills takes about 1.3 ms; a search, 50 µs). At most
/// [`CACHED_INDEXES`], the least recently used going first; a catalog is recognised by the exact
/// texts indexed.
#[derive(Debug, Default)]
pub struct IndexCache {
    /// Most recently used last: (the indexed texts joined, the index).
    entries: Mutex<Vec<(Arc<str>, Arc<SkillIndex>)>>,
}

impl IndexCache {
    /// The index of a plan's catalog, from the cache or built (and kept).
    fn index(&self, request: &PlanRequest, tools: &ToolSet) -> Arc<SkillIndex> {
        let texts = SkillIndex::texts(request, tools);
        let key: Arc<str> = Arc::from(texts.join("\u{1e}"));
        {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = entries.iter().position(|(k, _)| *k == key) {
                let entry = entries.remove(at);
                let index = Arc::clone(&entry.1);
                entries.push(entry);
                return index;
            }
        }
        // Built outside the lock: plans over other catalogs do not wait for this one.
        let index = Arc::new(SkillIndex::from_texts(&texts));
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.iter().any(|(k, _)| *k == key) {
            if entries.len() >= CACHED_INDEXES {
                entries.remove(0);
            }
            entries.push((key, Arc::clone(&index)));
        }
        index
    }
}

/// The discovery state of one plan: its index (built on the first `find_skills`) and the skills
/// offered as tools, in the order they were first found or used (so the tool list only grows at
/// its end and a provider's prefix cache keeps hitting).
#[derive(Debug, Default)]
pub struct Discovery {
    index: OnceLock<Arc<SkillIndex>>,
    offered: Mutex<Vec<usize>>,
}

impl Discovery {
    /// Offers a skill from the next step on; `true` when it was not offered yet.
    pub fn offer(&self, tool: usize) -> bool {
        let mut offered = self.offered.lock().unwrap_or_else(PoisonError::into_inner);
        if offered.contains(&tool) {
            return false;
        }
        offered.push(tool);
        true
    }

    /// The skills offered so far, in offer order.
    #[must_use]
    pub fn offered(&self) -> Vec<usize> {
        self.offered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs one `find_skills` call: the tool message listing the best skills (each offered from
    /// the next step on).
    ///
    /// # Errors
    /// The failed call's text when the arguments are not `{"query": string, "limit"?: integer}`.
    pub fn find(
        &self,
        cache: &IndexCache,
        request: &PlanRequest,
        tools: &ToolSet,
        args: Option<&Value>,
    ) -> Result<String, String> {
        let args =
            args.ok_or_else(|| "invalid tool input: arguments are not valid JSON".to_owned())?;
        let query = args
            .get("query")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .ok_or_else(|| {
                "invalid tool input: query: must be a non-empty string saying what the skill should do".to_owned()
            })?;
        let limit = match args.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
                _ => {
                    return Err(format!(
                        "invalid tool input: limit: must be an integer from 1 to {MAX_LIMIT}"
                    ));
                }
            },
        };
        let index = self.index.get_or_init(|| cache.index(request, tools));
        let found = index.search(query, limit);
        if found.is_empty() {
            return Ok(format!(
                "No skill matches \"{query}\". Try other words: what the agent should do, or the kind of data it works on."
            ));
        }
        let lines: Vec<String> = found
            .iter()
            .map(|&i| {
                self.offer(i);
                line(request, tools, i)
            })
            .collect();
        Ok(lines.join("\n"))
    }
}

/// `<tool name>: <description>` on one line.
fn line(request: &PlanRequest, tools: &ToolSet, i: usize) -> String {
    let tool = &tools.peers[i];
    let agent = &request.agents[tool.agent];
    let skill = &agent.skills[tool.skill];
    let description: String = skill
        .description
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let description = if description.is_empty() {
        format!("the \"{}\" skill of agent \"{}\"", skill.id, agent.name)
    } else if description.chars().count() > LINE_DESCRIPTION_CHARS {
        let cut: String = description.chars().take(LINE_DESCRIPTION_CHARS).collect();
        format!("{cut}…")
    } else {
        description
    };
    format!("{}: {description}", tool.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::validate::validate;
    use serde_json::json;

    #[test]
    fn names_split_into_words() {
        assert_eq!(words("docs_search"), "docs search");
        assert_eq!(words("getWeather-v2"), "get Weather v2");
        assert_eq!(words("a.b/c"), "a b c");
    }

    /// A fixed catalog of 40 agents × 3 skills (`fixtures/skills/catalog-120.json`), each
    /// described in its own words with tags and one example request, as an agent card gives them.
    fn catalog() -> Value {
        let agents: Value =
            serde_json::from_str(include_str!("../../fixtures/skills/catalog-120.json")).unwrap();
        json!({"question": "q", "agents": agents})
    }

    /// Twenty queries as a planner writes them ("a few words about the task"), in other words
    /// than the skill's id and description, each with the skill meant.
    const QUERIES: [(&str, &str); 20] = [
        ("will it rain in Paris tomorrow", "call_weather_forecast"),
        ("is the flight delayed or on time", "call_flights_status"),
        ("hotel room in Rome for next week", "call_hotels_search"),
        ("current share price of Apple", "call_stocks_quote"),
        (
            "how many US dollars is 100 euros, currency exchange",
            "call_fx_convert",
        ),
        ("phone number of our customer at Acme", "call_crm_contacts"),
        (
            "invite the team to a meeting on Friday",
            "call_calendar_schedule",
        ),
        ("why did the build fail, show me the log", "call_ci_logs"),
        (
            "our website is down, page whoever is on call",
            "call_incidents_open",
        ),
        ("how many vacation days do I have", "call_hr_leave"),
        (
            "check this agreement for dangerous clauses",
            "call_legal_contract",
        ),
        (
            "which invoices have customers not paid yet",
            "call_invoices_overdue",
        ),
        (
            "give the customer their money back for a card payment",
            "call_payments_refund",
        ),
        ("where is my parcel", "call_shipping_track"),
        ("coordinates of 10 Downing Street", "call_maps_geocode"),
        ("turn this voice memo into text", "call_speech_transcribe"),
        (
            "did someone commit a password to git",
            "call_security_secrets",
        ),
        (
            "why is our cloud bill so high this month",
            "call_cloud_costs",
        ),
        (
            "when does the certificate of example.com run out",
            "call_dns_certs",
        ),
        ("dinner ideas from eggs and spinach", "call_recipes_suggest"),
    ];

    #[test]
    fn paraphrased_requests_find_their_skill_in_the_top_three() {
        let request = validate(&catalog()).unwrap();
        let tools = ToolSet::from_request(&request, true);
        assert_eq!(tools.peers.len(), 120);
        let index = SkillIndex::from_texts(&SkillIndex::texts(&request, &tools));
        let mut misses = Vec::new();
        for (query, meant) in QUERIES {
            let top: Vec<&str> = index
                .search(query, 3)
                .into_iter()
                .map(|i| tools.peers[i].id.as_str())
                .collect();
            if !top.contains(&meant) {
                misses.push(format!("{query:?} → {top:?} (meant {meant})"));
            }
        }
        assert!(
            misses.len() <= 2,
            "{} of 20 missed the top 3:\n{}",
            misses.len(),
            misses.join("\n")
        );
    }

    #[test]
    fn find_lists_lines_offers_them_and_checks_its_arguments() {
        let request = validate(&catalog()).unwrap();
        let tools = ToolSet::from_request(&request, true);
        let discovery = Discovery::default();
        let cache = IndexCache::default();
        let text = discovery
            .find(
                &cache,
                &request,
                &tools,
                Some(&json!({"query": "parcel tracking number", "limit": 2})),
            )
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[0],
            "call_shipping_track: Tracks a parcel by its tracking number and shows where it is"
        );
        let offered = discovery.offered();
        assert_eq!(offered.len(), 2);
        assert_eq!(tools.peers[offered[0]].id, "call_shipping_track");
        // A limit over the most is cut to it; a bad one or a missing query fails the call.
        let many = discovery
            .find(
                &cache,
                &request,
                &tools,
                Some(&json!({"query": "lists shows returns finds", "limit": 500})),
            )
            .unwrap();
        assert_eq!(many.lines().count(), MAX_LIMIT);
        assert!(
            discovery
                .find(
                    &cache,
                    &request,
                    &tools,
                    Some(&json!({"query": "x", "limit": 0}))
                )
                .unwrap_err()
                .contains("limit")
        );
        assert!(
            discovery
                .find(&cache, &request, &tools, Some(&json!({"limit": 3})))
                .unwrap_err()
                .contains("query")
        );
        assert!(
            discovery
                .find(
                    &cache,
                    &request,
                    &tools,
                    Some(&json!({"query": "zzzz qqqq"}))
                )
                .unwrap()
                .starts_with("No skill matches")
        );
    }

    #[test]
    fn a_catalog_seen_again_is_not_indexed_again_and_the_cache_is_bounded() {
        let cache = IndexCache::default();
        let plan = |n: usize| {
            let agents: Vec<Value> = (0..n)
                .map(|a| json!({"name": format!("a{a}"), "endpoint": "http://h", "skills": [{"id": "s", "description": "does things"}]}))
                .collect();
            validate(&json!({"question": "q", "agents": agents})).unwrap()
        };
        let one = plan(3);
        let tools = ToolSet::from_request(&one, true);
        let first = cache.index(&one, &tools);
        assert!(Arc::ptr_eq(&first, &cache.index(&one, &tools)));
        for n in 4..4 + CACHED_INDEXES {
            let other = plan(n);
            let other_tools = ToolSet::from_request(&other, true);
            assert!(!Arc::ptr_eq(&first, &cache.index(&other, &other_tools)));
        }
        assert_eq!(cache.entries.lock().unwrap().len(), CACHED_INDEXES);
        // The first catalog was the least recently used: it went, and is indexed anew.
        assert!(!Arc::ptr_eq(&first, &cache.index(&one, &tools)));
    }
}
