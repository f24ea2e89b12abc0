//! Markdown files with YAML frontmatter (spec §4.2): the file starts with a `---` line, the
//! frontmatter ends at the next `---` line (trailing whitespace allowed), the body is the rest,
//! trimmed. The frontmatter is parsed with a real YAML parser and must be a mapping.

use serde_json::{Map, Value};

/// A split document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The YAML between the fences.
    pub yaml: String,
    /// The body after the closing fence, trimmed.
    pub body: String,
    /// 1-based line number where the body text (untrimmed) starts.
    pub body_line: usize,
}

/// Why a frontmatter could not be read; `line` is 1-based in the file when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontmatterError {
    pub detail: String,
    pub line: Option<usize>,
}

impl FrontmatterError {
    fn new(detail: &str, line: Option<usize>) -> Self {
        Self {
            detail: detail.to_owned(),
            line,
        }
    }
}

fn is_fence(line: &str) -> bool {
    line.trim_end() == "---"
}

/// Splits a document into frontmatter and body.
///
/// # Errors
/// `missing frontmatter` or `unterminated frontmatter`.
pub fn split(text: &str) -> Result<Document, FrontmatterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(first) if is_fence(first) => {}
        _ => return Err(FrontmatterError::new("missing frontmatter", Some(1))),
    }
    let mut yaml = String::new();
    let mut line_no = 1;
    for line in lines.by_ref() {
        line_no += 1;
        if is_fence(line) {
            let consumed: usize = text.split_inclusive('\n').take(line_no).map(str::len).sum();
            let rest = &text[consumed.min(text.len())..];
            return Ok(Document {
                yaml,
                body: rest.trim().to_owned(),
                body_line: line_no + 1,
            });
        }
        yaml.push_str(line);
    }
    Err(FrontmatterError::new("unterminated frontmatter", Some(1)))
}

/// The YAML options of both readings: YAML 1.2 core types (`yes`, `no`, `on`, `off`, `y`, `n`
/// are strings, like the reference gateway's parser; serde-saphyr reads YAML 1.1 booleans by
/// default), and `.inf`/`.nan` kept as text instead of failing the whole frontmatter.
fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.strict_booleans = true;
    options.non_finite_float_policy = serde_saphyr::options::NonFiniteFloatPolicy::AsString;
    options
}

/// A parser error with its location moved from frontmatter lines to file lines (the first
/// frontmatter line is line 2 of the file).
fn yaml_error(e: &serde_saphyr::Error) -> FrontmatterError {
    let location = e
        .location()
        .and_then(|l| Some((usize::try_from(l.line()).ok()?, l.column())));
    let mut message = e.to_string().lines().next().unwrap_or("").to_owned();
    let line = location.map(|(line, column)| {
        let suffix = format!(" at line {line}, column {column}");
        if let Some(head) = message.strip_suffix(&suffix) {
            message = format!("{head} at line {}, column {column}", line + 1);
        }
        line + 1
    });
    FrontmatterError::new(&format!("YAML error: {message}"), line)
}

/// Parses frontmatter YAML into a mapping (keys in document order), with YAML 1.2 core types.
///
/// # Errors
/// `YAML error: <message>` (with its file line) or `frontmatter is not a mapping`.
pub fn parse_mapping(yaml: &str) -> Result<Map<String, Value>, FrontmatterError> {
    let value: Value =
        serde_saphyr::from_str_with_options(yaml, options()).map_err(|e| yaml_error(&e))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(FrontmatterError::new(
            "frontmatter is not a mapping",
            Some(2),
        )),
    }
}

/// A list item as the author wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    /// The scalar's text (`402` stays `402`, `1.0` stays `1.0`).
    pub text: String,
    /// 1-based line in the file.
    pub line: usize,
}

#[derive(serde::Deserialize)]
struct SourceLists {
    tags: Option<Vec<serde_saphyr::Spanned<String>>>,
    triggers: Option<Vec<serde_saphyr::Spanned<String>>>,
}

/// The items of the `tags` or `triggers` list with their source text. Only called once the typed
/// reading has shown the list holds scalars.
///
/// # Errors
/// The list cannot be read as scalars (`None`: the caller names the key).
pub fn source_list(yaml: &str, key: &str) -> Option<Vec<SourceItem>> {
    let lists: SourceLists = serde_saphyr::from_str_with_options(yaml, options()).ok()?;
    let items = match key {
        "tags" => lists.tags,
        "triggers" => lists.triggers,
        _ => None,
    };
    Some(
        items
            .unwrap_or_default()
            .into_iter()
            .map(|item| SourceItem {
                line: usize::try_from(item.referenced.line()).map_or(0, |l| l + 1),
                text: item.value,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_trailing_whitespace_fences_and_trims_the_body() {
        let d = split("---\nname: x\n---  \n\n  body text\n\n").unwrap();
        assert_eq!(d.yaml, "name: x\n");
        assert_eq!(d.body, "body text");
        assert_eq!(d.body_line, 4);
        assert_eq!(split("---\r\na: 1\r\n---\r\nB").unwrap().body, "B");
        assert_eq!(split("---\n---\n").unwrap().yaml, "");
    }

    #[test]
    fn missing_and_unterminated_frontmatter() {
        assert_eq!(
            split("# no fence").unwrap_err().detail,
            "missing frontmatter"
        );
        assert_eq!(split("").unwrap_err().detail, "missing frontmatter");
        assert_eq!(
            split("---\na: 1\n").unwrap_err().detail,
            "unterminated frontmatter"
        );
    }

    #[test]
    fn yaml_must_be_a_mapping_and_keeps_key_order() {
        let m = parse_mapping("\"secret-*\": deny\nb: 1\na: [x, y]\n").unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["secret-*", "b", "a"]);
        assert_eq!(
            parse_mapping("- a\n- b\n").unwrap_err().detail,
            "frontmatter is not a mapping"
        );
        let e = parse_mapping("a: [unclosed\n").unwrap_err();
        assert!(e.detail.starts_with("YAML error: "), "{}", e.detail);
        assert!(!e.detail.contains('\n'));
    }

    #[test]
    fn yaml_errors_are_located_in_file_lines() {
        // Frontmatter line 2 is file line 3 (the file starts with `---`).
        let e = parse_mapping("name: x\ndescription: 'unclosed\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(e.detail.contains(" at line 3, column "), "{}", e.detail);
        assert!(!e.detail.contains(" at line 2,"), "{}", e.detail);
    }

    #[test]
    fn yaml_1_2_core_types() {
        let m =
            parse_mapping("a: no\nb: yes\nc: on\nd: off\ne: y\nf: n\ng: true\nh: .inf\n").unwrap();
        for key in ["a", "b", "c", "d", "e", "f"] {
            assert!(m[key].is_string(), "{key}: {}", m[key]);
        }
        assert_eq!(m["g"], Value::Bool(true));
        assert_eq!(m["h"], ".inf");
    }

    #[test]
    fn list_items_keep_their_source_text_and_file_line() {
        let yaml = "tags: [payments, x402, 2026, 1.0, 2.5, 0x1F, true, '7']\ntriggers:\n  - payment-required\n  - 402\n";
        let tags = source_list(yaml, "tags").unwrap();
        let texts: Vec<&str> = tags.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "payments", "x402", "2026", "1.0", "2.5", "0x1F", "true", "7"
            ]
        );
        assert!(tags.iter().all(|t| t.line == 2));
        let triggers = source_list(yaml, "triggers").unwrap();
        assert_eq!(
            triggers[1],
            SourceItem {
                text: "402".into(),
                line: 5
            }
        );
        assert_eq!(source_list("name: x\n", "tags"), Some(vec![]));
    }
}
