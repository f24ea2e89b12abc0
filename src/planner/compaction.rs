//! Compaction of a long conversation before the first step (spec §3.9): when the estimated
//! history exceeds the model's budget, everything before the last user turn that leaves at least
//! four messages is summarised by one non-streaming LLM call, and the plan continues on the
//! summary plus the verbatim tail. The split never cuts inside a turn, so a tool call always stays
//! with its result. A failed summary is logged and the plan goes on uncompacted.

use crate::llm::Message;
use crate::planner::prompt;

/// Reserved for the answer and tools in the budget formula.
const RESERVED_TOKENS: u64 = 16_000;
/// The tail keeps at least this many messages.
const MIN_TAIL: usize = 4;
/// Window of models missing from the table.
const DEFAULT_WINDOW: u64 = 128_000;

/// Context windows by normalised model id.
const WINDOWS: &[(&str, u64)] = &[
    ("anthropic/claude-opus-4-7", 200_000),
    ("anthropic/claude-opus-4-6", 200_000),
    ("anthropic/claude-opus-4-5", 200_000),
    ("anthropic/claude-sonnet-4-6", 200_000),
    ("anthropic/claude-sonnet-4-5", 200_000),
    ("anthropic/claude-haiku-4-5", 200_000),
    ("openai/gpt-4o", 128_000),
    ("openai/gpt-4o-mini", 128_000),
    ("openai/gpt-4-1", 1_047_576),
    ("openai/gpt-4-1-mini", 1_047_576),
    ("openai/o3", 200_000),
    ("openai/o3-mini", 200_000),
];

/// The summariser's system message (exact text of the contract).
pub const SUMMARISER_PROMPT: &str = "You compress the earlier part of a conversation between a user and a planner that delegates work to remote agents. Write one paragraph of plain prose, at most about 400 words, covering: the user's goal; which agents were called and for what; the key facts and results they returned; and where the plan stands. State only facts found in the messages. Leave out DIDs, URLs, tokens and other credentials. When a prior summary is given, your paragraph must keep every fact from it and merge in the new information.";
const PRIOR_SUMMARY_HEADER: &str = "[PRIOR SUMMARY — preserve every fact below in your output]";
const CLOSE_WITH_PRIOR: &str =
    "Write the updated summary now. Keep every fact from the prior summary.";
const CLOSE_WITHOUT_PRIOR: &str = "Write the summary now.";

/// Lowercase, one leading `openrouter/` removed, every `.` replaced by `-`.
#[must_use]
pub fn normalize_model(model: &str) -> String {
    let lower = model.to_ascii_lowercase();
    lower
        .strip_prefix("openrouter/")
        .unwrap_or(&lower)
        .replace('.', "-")
}

/// The context window of a model: override, table (full id, then the part after the last `/`),
/// default.
#[must_use]
pub fn context_window(model: &str, override_window: Option<u64>) -> u64 {
    if let Some(w) = override_window {
        return w;
    }
    let id = normalize_model(model);
    if let Some((_, w)) = WINDOWS.iter().find(|(k, _)| *k == id) {
        return *w;
    }
    let short = id.rsplit('/').next().unwrap_or(&id);
    WINDOWS
        .iter()
        .find(|(k, _)| k.split_once('/').is_some_and(|(_, name)| name == short))
        .map_or(DEFAULT_WINDOW, |(_, w)| *w)
}

/// The token count that triggers compaction: `(W − 16 000) × 0.8`.
#[must_use]
pub fn threshold(window: u64) -> u64 {
    window.saturating_sub(RESERVED_TOKENS) * 4 / 5
}

fn text_tokens(text: &str) -> u64 {
    (text.encode_utf16().count() as u64).div_ceil(4)
}

/// Estimated tokens of messages: `ceil(n / 4)` per text part, `n` in UTF-16 code units.
#[must_use]
pub fn estimate(messages: &[Message]) -> u64 {
    messages
        .iter()
        .flat_map(Message::texts)
        .map(text_tokens)
        .sum()
}

/// Where the tail starts in the non-synthetic history, or `None` when nothing is compacted:
/// start at `L − 4`, move left to a user message; reaching 0 means no cut.
#[must_use]
pub fn cut_index(history: &[Message]) -> Option<usize> {
    if history.len() <= MIN_TAIL {
        return None;
    }
    let mut cut = history.len() - MIN_TAIL;
    while cut > 0 && !history[cut].is_user() {
        cut -= 1;
    }
    (cut > 0).then_some(cut)
}

/// Where the tail starts when the first `turns` user turns of the history must be folded
/// (`sessions.max_turns`): at the next user message, or the end. `None` for no turns.
#[must_use]
pub fn fold_index(history: &[Message], turns: usize) -> Option<usize> {
    if turns == 0 {
        return None;
    }
    let mut users = 0;
    for (i, m) in history.iter().enumerate() {
        if m.is_user() {
            users += 1;
            if users > turns {
                return Some(i);
            }
        }
    }
    (!history.is_empty()).then_some(history.len())
}

/// The messages of the summariser call.
#[must_use]
pub fn summariser_messages(prior_summary: Option<&str>, head: &[Message]) -> Vec<Message> {
    let mut messages = vec![Message::System(SUMMARISER_PROMPT.to_owned())];
    if let Some(prior) = prior_summary {
        messages.push(Message::User(format!("{PRIOR_SUMMARY_HEADER}\n\n{prior}")));
    }
    messages.extend(head.iter().cloned());
    let close = if prior_summary.is_some() {
        CLOSE_WITH_PRIOR
    } else {
        CLOSE_WITHOUT_PRIOR
    };
    messages.push(Message::User(close.to_owned()));
    messages
}

/// The synthetic user message that carries a summary.
#[must_use]
pub fn summary_message(summary: &str) -> Message {
    Message::UserParts(vec![format!(
        "{}\n\n{summary}",
        prompt::PRIOR_CONTEXT_MARKER
    )])
}

/// The counters of a `compaction-summary` frame.
#[must_use]
pub fn tokens_after(tail: &[Message], summary: &str) -> u64 {
    estimate(tail) + text_tokens(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;
    use proptest::prelude::*;

    fn user(t: &str) -> Message {
        Message::User(t.to_owned())
    }
    fn assistant(t: &str) -> Message {
        Message::Assistant {
            text: Some(t.to_owned()),
            tool_calls: Vec::new(),
        }
    }
    fn calls(ids: &[String]) -> Message {
        Message::Assistant {
            text: None,
            tool_calls: ids
                .iter()
                .map(|id| ToolCall {
                    id: id.clone(),
                    name: "f".into(),
                    arguments: "{}".into(),
                })
                .collect(),
        }
    }
    fn tool_call(id: &str) -> Message {
        calls(&[id.to_owned()])
    }
    fn tool_result(id: &str) -> Message {
        Message::Tool {
            call_id: id.to_owned(),
            content: "r".into(),
        }
    }

    #[test]
    fn windows_and_thresholds() {
        assert_eq!(
            context_window("openrouter/anthropic/claude-sonnet-4.6", None),
            200_000
        );
        assert_eq!(context_window("gpt-4o", None), 128_000);
        assert_eq!(context_window("openai/gpt-4.1-mini", None), 1_047_576);
        assert_eq!(context_window("some/unknown", None), 128_000);
        assert_eq!(context_window("openai/gpt-4o", Some(50_000)), 50_000);
        assert_eq!(threshold(200_000), 147_200);
        assert_eq!(threshold(128_000), 89_600);
        assert_eq!(
            normalize_model("OpenRouter/Anthropic/Claude-Sonnet-4.6"),
            "anthropic/claude-sonnet-4-6"
        );
    }

    #[test]
    fn token_estimate_counts_utf16_units_per_part() {
        let m = vec![
            Message::UserParts(vec!["abcde".into(), "😀".into()]),
            assistant("abcd"),
        ];
        // "abcde" → 2, "😀" (2 units) → 1, "abcd" → 1
        assert_eq!(estimate(&m), 4);
    }

    #[test]
    fn cut_points_on_multi_tool_turns() {
        let history = vec![
            user("q1"),
            tool_call("a"),
            tool_result("a"),
            assistant("a1"),
            user("q2"),
            tool_call("b"),
            tool_call("c"),
            tool_result("b"),
            tool_result("c"),
            assistant("a2"),
        ];
        // L = 10, start at 6 (a tool call) → move left to the user message at 4.
        assert_eq!(cut_index(&history), Some(4));
        assert_eq!(
            cut_index(&history[..4]),
            None,
            "four messages: nothing to compact"
        );
        let only_first_user = vec![
            user("q"),
            tool_call("a"),
            tool_result("a"),
            assistant("x"),
            assistant("y"),
        ];
        assert_eq!(cut_index(&only_first_user), None, "the cut reached 0");
        let tail_min = vec![
            user("a"),
            assistant("b"),
            user("c"),
            assistant("d"),
            user("e"),
            assistant("f"),
        ];
        let cut = cut_index(&tail_min).unwrap();
        assert_eq!(cut, 2);
        assert!(tail_min.len() - cut >= 4);
    }

    #[test]
    fn summariser_messages_carry_the_prior_summary() {
        let m = summariser_messages(Some("Facts A and B."), &[user("x")]);
        assert_eq!(m[0], Message::System(SUMMARISER_PROMPT.to_owned()));
        assert_eq!(
            m[1],
            user("[PRIOR SUMMARY — preserve every fact below in your output]\n\nFacts A and B.")
        );
        assert_eq!(m[2], user("x"));
        assert_eq!(
            m[3],
            user("Write the updated summary now. Keep every fact from the prior summary.")
        );
        assert_eq!(
            summariser_messages(None, &[])[1],
            user("Write the summary now.")
        );
    }

    /// A random conversation made of whole turns: a user message, then tool rounds and text.
    /// Tool-call ids are unique per conversation, as providers make them.
    fn conversation() -> impl Strategy<Value = Vec<Message>> {
        let turn = (0usize..3, 0usize..3, any::<bool>());
        prop::collection::vec(turn, 0..8).prop_map(|turns| {
            let mut msgs = Vec::new();
            for (t, (rounds, n, text)) in turns.into_iter().enumerate() {
                msgs.push(user("q"));
                for r in 0..rounds {
                    let ids: Vec<String> = (0..=n).map(|c| format!("turn{t}_t{r}_{c}")).collect();
                    msgs.push(calls(&ids));
                    msgs.extend(ids.iter().map(|id| tool_result(id)));
                }
                if text {
                    msgs.push(assistant("answer"));
                }
            }
            msgs
        })
    }

    proptest! {
        #[test]
        fn no_split_separates_a_tool_call_from_its_result(history in conversation()) {
            if let Some(cut) = cut_index(&history) {
                prop_assert!(history[cut].is_user());
                prop_assert!(history.len() - cut >= MIN_TAIL);
                let (head, tail) = history.split_at(cut);
                for m in tail {
                    if let Message::Tool { call_id, .. } = m {
                        let in_head = head.iter().any(|h| h.tool_calls().iter().any(|c| &c.id == call_id));
                        prop_assert!(!in_head, "a tool result in the tail has its call in the head");
                    }
                }
            }
        }
    }
}
