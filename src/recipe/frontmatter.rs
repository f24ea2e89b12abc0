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

/// Parses frontmatter YAML into a mapping (keys in document order).
///
/// # Errors
/// `YAML error: <message>` (with its line) or `frontmatter is not a mapping`.
pub fn parse_mapping(yaml: &str) -> Result<Map<String, Value>, FrontmatterError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    let value: Value = serde_saphyr::from_str_with_options(yaml, options).map_err(|e| {
        let line = e
            .location()
            .and_then(|l| usize::try_from(l.line()).ok())
            .map(|l| l + 1);
        let message = e.to_string().lines().next().unwrap_or("").to_owned();
        FrontmatterError::new(&format!("YAML error: {message}"), line)
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(FrontmatterError::new(
            "frontmatter is not a mapping",
            Some(2),
        )),
    }
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
}
