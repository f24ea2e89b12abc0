//! Skills found on demand (issue 29): above `planner.tool_discovery_threshold` skills the model
//! is offered `find_skills` and the skills this plan has found or used, instead of every skill.
//! `find_skills` ranks the catalog's skills with BM25 (the `bm25` crate: its tokenizer
//! normalises unicode, drops English stop words and stems) over each skill's agent name, id,
//! description, tags and examples, and lists the best ones; from the next step on they are tools
//! with their schemas. A call to any catalog skill by its tool name is honoured whether it was
//! found or not.

use std::sync::{Mutex, OnceLock, PoisonError};

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
    /// Indexes every peer tool of the plan: agent name, skill id, description, tags, examples.
    #[must_use]
    pub fn build(request: &PlanRequest, tools: &ToolSet) -> Self {
        let documents = tools.peers.iter().enumerate().map(|(i, tool)| {
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
            Document::new(i, text)
        });
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

/// The discovery state of one plan: its index (built on the first `find_skills`) and the skills
/// offered as tools, in the order they were first found or used (so the tool list only grows at
/// its end and a provider's prefix cache keeps hitting).
#[derive(Debug, Default)]
pub struct Discovery {
    index: OnceLock<SkillIndex>,
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
        let index = self.index.get_or_init(|| SkillIndex::build(request, tools));
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

    /// A skill of the test catalog: id, description, tags, one example.
    type SkillRow = (
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static str,
    );

    /// A fixed catalog of 40 agents × 3 skills, each described in its own words with one example
    /// request, as an agent card gives them.
    fn catalog() -> Value {
        let agents: [(&str, [SkillRow; 3]); 40] = [
            (
                "weather",
                [
                    (
                        "forecast",
                        "Forecasts temperature, rain and wind for a city for the next seven days",
                        &["weather"],
                        "What will the weather be like in Berlin this weekend?",
                    ),
                    (
                        "alerts",
                        "Lists severe weather warnings such as storms, floods and heatwaves",
                        &["weather"],
                        "Are there any storm warnings for Florida?",
                    ),
                    (
                        "history",
                        "Returns past weather observations for a date and place",
                        &["weather"],
                        "How hot was it in Madrid on 3 August last year?",
                    ),
                ],
            ),
            (
                "flights",
                [
                    (
                        "search",
                        "Finds flights between two airports on a date with prices",
                        &["travel"],
                        "Find me a flight from London to New York on 12 May",
                    ),
                    (
                        "status",
                        "Tells whether a flight is on time, delayed or cancelled and its gate",
                        &["travel"],
                        "Is flight BA117 delayed?",
                    ),
                    (
                        "book",
                        "Books a seat on a chosen flight for a passenger",
                        &["travel"],
                        "Book the 9:40 departure for Jane Doe",
                    ),
                ],
            ),
            (
                "hotels",
                [
                    (
                        "search",
                        "Finds hotel rooms in a city for given check-in and check-out dates",
                        &["travel"],
                        "Hotels in Lisbon from 4 to 7 June",
                    ),
                    (
                        "book",
                        "Reserves a hotel room and returns the confirmation number",
                        &["travel"],
                        "Reserve a double room at the Grand Hotel",
                    ),
                    (
                        "reviews",
                        "Summarises guest reviews of a hotel",
                        &["travel"],
                        "What do guests say about the Hilton in Vienna?",
                    ),
                ],
            ),
            (
                "stocks",
                [
                    (
                        "quote",
                        "Gives the latest share price of a listed company by ticker symbol",
                        &["finance"],
                        "What is MSFT trading at?",
                    ),
                    (
                        "history",
                        "Returns daily closing prices of a share over a period",
                        &["finance"],
                        "Show Tesla's closing prices for the last month",
                    ),
                    (
                        "news",
                        "Collects recent market news about a company",
                        &["finance"],
                        "Any news about Nvidia today?",
                    ),
                ],
            ),
            (
                "fx",
                [
                    (
                        "convert",
                        "Converts an amount of money from one currency to another at today's exchange rate",
                        &["finance"],
                        "Convert 250 GBP to JPY",
                    ),
                    (
                        "rates",
                        "Lists exchange rates of a base currency",
                        &["finance"],
                        "Exchange rates for the Swiss franc",
                    ),
                    (
                        "history",
                        "Returns historical exchange rates between two currencies",
                        &["finance"],
                        "EUR/USD rate in January 2020",
                    ),
                ],
            ),
            (
                "crm",
                [
                    (
                        "contacts",
                        "Looks up customer contact details: email, phone, company",
                        &["sales"],
                        "Email address of John at Globex",
                    ),
                    (
                        "deals",
                        "Lists open sales opportunities and their stage in the pipeline",
                        &["sales"],
                        "Which deals are in negotiation?",
                    ),
                    (
                        "notes",
                        "Adds a note to a customer record",
                        &["sales"],
                        "Add a note that the client wants a demo",
                    ),
                ],
            ),
            (
                "mail",
                [
                    (
                        "send",
                        "Sends an email message to one or more recipients",
                        &["communication"],
                        "Email the report to the finance team",
                    ),
                    (
                        "inbox",
                        "Reads the latest unread emails in the inbox",
                        &["communication"],
                        "Do I have new mail?",
                    ),
                    (
                        "draft",
                        "Writes a draft reply to an email without sending it",
                        &["communication"],
                        "Draft a polite reply declining the invitation",
                    ),
                ],
            ),
            (
                "calendar",
                [
                    (
                        "events",
                        "Lists meetings and appointments on the calendar for a day",
                        &["productivity"],
                        "What is on my agenda today?",
                    ),
                    (
                        "schedule",
                        "Creates a meeting invitation at a free time for the attendees",
                        &["productivity"],
                        "Book a 30-minute call with Anna and Tom next Tuesday",
                    ),
                    (
                        "availability",
                        "Finds free time slots shared by several people",
                        &["productivity"],
                        "When are Sara and Ben both free this week?",
                    ),
                ],
            ),
            (
                "docs",
                [
                    (
                        "search",
                        "Searches the internal documentation and wiki pages",
                        &["knowledge"],
                        "Where is the onboarding guide in the wiki?",
                    ),
                    (
                        "summarize",
                        "Summarises a long document into key points",
                        &["knowledge"],
                        "Give me the key points of this 40-page report",
                    ),
                    (
                        "translate",
                        "Translates a text into another language",
                        &["language"],
                        "Translate this paragraph into Spanish",
                    ),
                ],
            ),
            (
                "code",
                [
                    (
                        "review",
                        "Reviews a pull request and points out bugs and style problems",
                        &["engineering"],
                        "Review PR #482",
                    ),
                    (
                        "explain",
                        "Explains what a piece of source code does",
                        &["engineering"],
                        "What does this regex function do?",
                    ),
                    (
                        "tests",
                        "Writes unit tests for a function",
                        &["engineering"],
                        "Write tests for parse_date",
                    ),
                ],
            ),
            (
                "ci",
                [
                    (
                        "status",
                        "Shows whether the latest build pipeline passed or failed",
                        &["engineering"],
                        "Is the main branch green?",
                    ),
                    (
                        "logs",
                        "Fetches the build log of a failed job",
                        &["engineering"],
                        "Show the output of the failing deploy job",
                    ),
                    (
                        "rerun",
                        "Restarts a failed pipeline job",
                        &["engineering"],
                        "Retry the flaky integration job",
                    ),
                ],
            ),
            (
                "incidents",
                [
                    (
                        "open",
                        "Opens an incident ticket for an outage and pages the on-call engineer",
                        &["operations"],
                        "The checkout service is down, raise a P1",
                    ),
                    (
                        "list",
                        "Lists ongoing incidents and their severity",
                        &["operations"],
                        "Which outages are ongoing right now?",
                    ),
                    (
                        "postmortem",
                        "Drafts a postmortem report after an incident",
                        &["operations"],
                        "Write up what happened in yesterday's outage",
                    ),
                ],
            ),
            (
                "metrics",
                [
                    (
                        "query",
                        "Runs a query over service metrics such as latency and error rate",
                        &["operations"],
                        "p99 latency of the API over the last hour",
                    ),
                    (
                        "dashboard",
                        "Returns a link to the dashboard of a service",
                        &["operations"],
                        "Link to the payments service dashboard",
                    ),
                    (
                        "anomalies",
                        "Detects unusual spikes in a time series",
                        &["operations"],
                        "Anything unusual in signups this week?",
                    ),
                ],
            ),
            (
                "hr",
                [
                    (
                        "leave",
                        "Shows how many vacation days an employee has left",
                        &["people"],
                        "How much holiday do I have left this year?",
                    ),
                    (
                        "policy",
                        "Answers questions about company policies like parental leave or remote work",
                        &["people"],
                        "What is our remote work policy?",
                    ),
                    (
                        "payslip",
                        "Returns an employee's latest salary slip",
                        &["people"],
                        "Send me my March payslip",
                    ),
                ],
            ),
            (
                "recruiting",
                [
                    (
                        "candidates",
                        "Lists applicants for an open job position",
                        &["people"],
                        "Who applied for the backend engineer role?",
                    ),
                    (
                        "interview",
                        "Schedules an interview with a candidate",
                        &["people"],
                        "Set up an interview with Maria Lopez on Thursday",
                    ),
                    (
                        "offer",
                        "Prepares a job offer letter",
                        &["people"],
                        "Prepare an offer for the designer we liked",
                    ),
                ],
            ),
            (
                "legal",
                [
                    (
                        "contract",
                        "Reviews a contract and flags risky clauses",
                        &["legal"],
                        "Is there anything risky in this supplier contract?",
                    ),
                    (
                        "nda",
                        "Generates a standard non-disclosure agreement",
                        &["legal"],
                        "I need an NDA for a meeting with a startup",
                    ),
                    (
                        "compliance",
                        "Checks a process against GDPR and privacy regulations",
                        &["legal"],
                        "Are we GDPR compliant in how we store emails?",
                    ),
                ],
            ),
            (
                "tax",
                [
                    (
                        "vat",
                        "Calculates value added tax for an invoice amount and country",
                        &["finance"],
                        "How much VAT on a 1,200 euro invoice in Germany?",
                    ),
                    (
                        "deadlines",
                        "Lists upcoming tax filing deadlines",
                        &["finance"],
                        "When is the next quarterly tax filing due?",
                    ),
                    (
                        "deductions",
                        "Suggests deductible business expenses",
                        &["finance"],
                        "Can I deduct my home office?",
                    ),
                ],
            ),
            (
                "invoices",
                [
                    (
                        "create",
                        "Creates an invoice for a customer with line items",
                        &["billing"],
                        "Invoice Acme for 10 hours of consulting",
                    ),
                    (
                        "overdue",
                        "Lists unpaid invoices past their due date",
                        &["billing"],
                        "Which customers owe us money past the due date?",
                    ),
                    (
                        "pdf",
                        "Renders an invoice as a PDF file",
                        &["billing"],
                        "Download invoice 2024-031 as PDF",
                    ),
                ],
            ),
            (
                "payments",
                [
                    (
                        "refund",
                        "Refunds a card payment to a customer",
                        &["billing"],
                        "Refund order 5531 to the customer's card",
                    ),
                    (
                        "charge",
                        "Charges a customer's saved card",
                        &["billing"],
                        "Charge the customer's card on file 49 dollars",
                    ),
                    (
                        "disputes",
                        "Lists chargebacks and payment disputes",
                        &["billing"],
                        "Any chargebacks this month?",
                    ),
                ],
            ),
            (
                "shipping",
                [
                    (
                        "track",
                        "Tracks a parcel by its tracking number and shows where it is",
                        &["logistics"],
                        "Where is package 1Z999AA10123456784?",
                    ),
                    (
                        "label",
                        "Prints a shipping label for a package",
                        &["logistics"],
                        "Print a label for the box going to Lyon",
                    ),
                    (
                        "rates",
                        "Compares courier prices for sending a package",
                        &["logistics"],
                        "Cheapest way to send a 5 kg box to Canada",
                    ),
                ],
            ),
            (
                "inventory",
                [
                    (
                        "stock",
                        "Tells how many units of a product are in the warehouse",
                        &["logistics"],
                        "How many blue mugs do we have left?",
                    ),
                    (
                        "reorder",
                        "Places a purchase order with a supplier when stock is low",
                        &["logistics"],
                        "Order more printer paper from our supplier",
                    ),
                    (
                        "locations",
                        "Shows which warehouse shelf holds an item",
                        &["logistics"],
                        "Which aisle are the batteries in?",
                    ),
                ],
            ),
            (
                "maps",
                [
                    (
                        "directions",
                        "Gives driving or walking directions between two addresses",
                        &["geo"],
                        "How do I get from the station to the museum on foot?",
                    ),
                    (
                        "geocode",
                        "Turns a street address into latitude and longitude coordinates",
                        &["geo"],
                        "Latitude and longitude of the Eiffel Tower",
                    ),
                    (
                        "nearby",
                        "Finds restaurants, shops or places near a location",
                        &["geo"],
                        "Coffee shops near Alexanderplatz",
                    ),
                ],
            ),
            (
                "news",
                [
                    (
                        "headlines",
                        "Returns today's top news headlines",
                        &["media"],
                        "What are the main news today?",
                    ),
                    (
                        "topic",
                        "Finds news articles about a topic",
                        &["media"],
                        "Latest articles about electric cars",
                    ),
                    (
                        "sources",
                        "Lists news outlets and their bias ratings",
                        &["media"],
                        "Which newspapers lean left?",
                    ),
                ],
            ),
            (
                "social",
                [
                    (
                        "post",
                        "Publishes a post on the company's social media accounts",
                        &["marketing"],
                        "Post our launch announcement on LinkedIn and X",
                    ),
                    (
                        "mentions",
                        "Finds mentions of the brand on social networks",
                        &["marketing"],
                        "Who is talking about our brand on Twitter?",
                    ),
                    (
                        "sentiment",
                        "Measures whether people speak positively or negatively about a product",
                        &["marketing"],
                        "Do people like the new app update?",
                    ),
                ],
            ),
            (
                "ads",
                [
                    (
                        "campaigns",
                        "Lists advertising campaigns and their spend",
                        &["marketing"],
                        "How much did we spend on Google Ads campaigns?",
                    ),
                    (
                        "performance",
                        "Reports clicks, impressions and conversions of an ad",
                        &["marketing"],
                        "Click-through rate of the summer sale ad",
                    ),
                    (
                        "budget",
                        "Changes the daily budget of an ad campaign",
                        &["marketing"],
                        "Raise the daily spend of the spring campaign to 200",
                    ),
                ],
            ),
            (
                "seo",
                [
                    (
                        "keywords",
                        "Suggests search keywords with their monthly volume",
                        &["marketing"],
                        "Keyword ideas for running shoes",
                    ),
                    (
                        "audit",
                        "Audits a web page for search engine ranking problems",
                        &["marketing"],
                        "Why does our pricing page rank poorly?",
                    ),
                    (
                        "backlinks",
                        "Lists websites that link to a domain",
                        &["marketing"],
                        "Which sites link to example.com?",
                    ),
                ],
            ),
            (
                "support",
                [
                    (
                        "tickets",
                        "Lists customer support tickets waiting for an answer",
                        &["support"],
                        "Which support requests are still unanswered?",
                    ),
                    (
                        "reply",
                        "Drafts an answer to a customer's support ticket",
                        &["support"],
                        "Answer the customer who cannot log in",
                    ),
                    (
                        "satisfaction",
                        "Reports customer satisfaction scores",
                        &["support"],
                        "What is our CSAT this quarter?",
                    ),
                ],
            ),
            (
                "db",
                [
                    (
                        "sql",
                        "Runs a read-only SQL query against the analytics database",
                        &["data"],
                        "Count orders per country from the orders table",
                    ),
                    (
                        "schema",
                        "Describes the tables and columns of a database",
                        &["data"],
                        "What columns does the users table have?",
                    ),
                    (
                        "backup",
                        "Shows when the database was last backed up",
                        &["data"],
                        "When did the last database backup run?",
                    ),
                ],
            ),
            (
                "files",
                [
                    (
                        "upload",
                        "Stores a file in the shared drive",
                        &["storage"],
                        "Save this spreadsheet to the team drive",
                    ),
                    (
                        "find",
                        "Finds a file in the shared drive by name",
                        &["storage"],
                        "Where is the Q3 budget spreadsheet?",
                    ),
                    (
                        "share",
                        "Creates a sharing link for a file",
                        &["storage"],
                        "Give me a link to share the brand guidelines",
                    ),
                ],
            ),
            (
                "images",
                [
                    (
                        "generate",
                        "Draws a picture from a text prompt",
                        &["creative"],
                        "Make an illustration of a fox reading a book",
                    ),
                    (
                        "resize",
                        "Resizes or crops an image",
                        &["creative"],
                        "Crop this photo to a square",
                    ),
                    (
                        "describe",
                        "Describes what is shown in a photo",
                        &["creative"],
                        "What is in this picture?",
                    ),
                ],
            ),
            (
                "speech",
                [
                    (
                        "transcribe",
                        "Turns an audio recording into written text",
                        &["audio"],
                        "Write down what is said in this meeting recording",
                    ),
                    (
                        "synthesize",
                        "Reads a text aloud as an audio file",
                        &["audio"],
                        "Read this announcement out loud as an MP3",
                    ),
                    (
                        "language",
                        "Detects the spoken language of a recording",
                        &["audio"],
                        "Which language is spoken in this clip?",
                    ),
                ],
            ),
            (
                "security",
                [
                    (
                        "scan",
                        "Scans a server for known vulnerabilities",
                        &["security"],
                        "Check our web server for CVEs",
                    ),
                    (
                        "secrets",
                        "Finds leaked passwords or API keys in a repository",
                        &["security"],
                        "Did anyone push an AWS key to the repo?",
                    ),
                    (
                        "access",
                        "Lists who has admin access to a system",
                        &["security"],
                        "Who are the admins on the production cluster?",
                    ),
                ],
            ),
            (
                "cloud",
                [
                    (
                        "costs",
                        "Breaks down the monthly cloud bill by service",
                        &["infrastructure"],
                        "What did we pay AWS last month per service?",
                    ),
                    (
                        "instances",
                        "Lists running virtual machines",
                        &["infrastructure"],
                        "Which VMs are running in eu-west-1?",
                    ),
                    (
                        "scale",
                        "Changes the number of replicas of a deployment",
                        &["infrastructure"],
                        "Scale the web deployment to 6 replicas",
                    ),
                ],
            ),
            (
                "dns",
                [
                    (
                        "lookup",
                        "Resolves a domain name to its IP addresses and records",
                        &["infrastructure"],
                        "What IP does api.example.com point to?",
                    ),
                    (
                        "certs",
                        "Checks when a website's TLS certificate expires",
                        &["infrastructure"],
                        "Is the SSL certificate of shop.example.com about to expire?",
                    ),
                    (
                        "whois",
                        "Shows who registered a domain",
                        &["infrastructure"],
                        "Who owns the domain example.org?",
                    ),
                ],
            ),
            (
                "recipes",
                [
                    (
                        "suggest",
                        "Suggests dinner recipes from the ingredients you have",
                        &["food"],
                        "What can I make for dinner with chicken and rice?",
                    ),
                    (
                        "nutrition",
                        "Counts calories and protein of a meal",
                        &["food"],
                        "How many calories in a Caesar salad?",
                    ),
                    (
                        "shopping",
                        "Builds a grocery list for a week of meals",
                        &["food"],
                        "Make a shopping list for this week's menu",
                    ),
                ],
            ),
            (
                "fitness",
                [
                    (
                        "workout",
                        "Plans a training session for a goal like strength or running",
                        &["health"],
                        "A 45-minute strength workout for beginners",
                    ),
                    (
                        "steps",
                        "Reports how many steps were walked each day",
                        &["health"],
                        "How much did I walk yesterday?",
                    ),
                    (
                        "sleep",
                        "Summarises sleep duration and quality",
                        &["health"],
                        "How well did I sleep last night?",
                    ),
                ],
            ),
            (
                "education",
                [
                    (
                        "quiz",
                        "Creates quiz questions on a subject for students",
                        &["learning"],
                        "Ten questions about the French Revolution",
                    ),
                    (
                        "grade",
                        "Grades an essay and gives feedback",
                        &["learning"],
                        "Mark this essay on climate change",
                    ),
                    (
                        "courses",
                        "Recommends online courses for a skill",
                        &["learning"],
                        "Good online courses to learn Python",
                    ),
                ],
            ),
            (
                "realestate",
                [
                    (
                        "listings",
                        "Finds apartments and houses for sale or rent in an area",
                        &["property"],
                        "Two-bedroom flats to rent in Manchester",
                    ),
                    (
                        "valuation",
                        "Estimates the market value of a property",
                        &["property"],
                        "What is my house worth?",
                    ),
                    (
                        "mortgage",
                        "Calculates monthly mortgage payments for a loan",
                        &["property"],
                        "Monthly payment on a 300k loan over 25 years",
                    ),
                ],
            ),
            (
                "energy",
                [
                    (
                        "usage",
                        "Reports electricity consumption of a building",
                        &["utilities"],
                        "How much electricity did the office use in May?",
                    ),
                    (
                        "tariffs",
                        "Compares electricity and gas tariffs",
                        &["utilities"],
                        "Is there a cheaper gas and power deal?",
                    ),
                    (
                        "solar",
                        "Estimates how much power solar panels on a roof would produce",
                        &["utilities"],
                        "Would solar panels pay off on my roof?",
                    ),
                ],
            ),
            (
                "sports",
                [
                    (
                        "scores",
                        "Returns live scores of football and basketball games",
                        &["sports"],
                        "What's the score of the Lakers game?",
                    ),
                    (
                        "standings",
                        "Shows the league table of a competition",
                        &["sports"],
                        "Premier League table",
                    ),
                    (
                        "fixtures",
                        "Lists upcoming matches of a team",
                        &["sports"],
                        "When does Barcelona play next?",
                    ),
                ],
            ),
        ];
        let agents: Vec<Value> = agents
            .iter()
            .map(|(name, skills)| {
                let skills: Vec<Value> = skills
                    .iter()
                    .map(|(id, d, tags, example)| json!({"id": id, "description": d, "tags": tags, "examples": [example]}))
                    .collect();
                json!({"name": name, "endpoint": "http://127.0.0.1:9", "skills": skills})
            })
            .collect();
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
        let index = SkillIndex::build(&request, &tools);
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
        let text = discovery
            .find(
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
                &request,
                &tools,
                Some(&json!({"query": "lists shows returns finds", "limit": 500})),
            )
            .unwrap();
        assert_eq!(many.lines().count(), MAX_LIMIT);
        assert!(
            discovery
                .find(&request, &tools, Some(&json!({"query": "x", "limit": 0})))
                .unwrap_err()
                .contains("limit")
        );
        assert!(
            discovery
                .find(&request, &tools, Some(&json!({"limit": 3})))
                .unwrap_err()
                .contains("query")
        );
        assert!(
            discovery
                .find(&request, &tools, Some(&json!({"query": "zzzz qqqq"})))
                .unwrap()
                .starts_with("No skill matches")
        );
    }
}
