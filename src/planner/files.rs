//! The files of a plan: what agents return as file parts and what the client attaches. Their
//! bytes never enter the LLM's context: the model reads one line per file
//! (`[file <file_id>: <name>, <media type>, <size> bytes]`) and passes file ids in a skill's
//! `files` argument; the client gets them as `task.artifact` `files` entries. Where the bytes are
//! kept (memory or the shared store, how long, what is evicted) is the keeper's business: the
//! plan is handed a [`FileKeeper`] and its caps.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use futures::future::BoxFuture;

use crate::a2a::wire::{FileContent, FilePart};
use crate::a2a::{OutgoingContent, OutgoingFile};

/// The longest file name a line or a frame carries.
const MAX_NAME_CHARS: usize = 200;
/// The media type of a file whose peer named none (or an unusable one).
pub const OCTET_STREAM: &str = "application/octet-stream";

/// One file of a plan as the client and the model see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    pub file_id: String,
    pub name: String,
    pub media_type: String,
    /// Bytes kept by the gateway (`None` for a file the peer only links to).
    pub size: Option<u64>,
    /// Where the gateway serves a kept file (the plan's files route).
    pub url: Option<String>,
    /// The address of a file the gateway does not keep (a peer's `uri`, a client's `url`); it
    /// is passed on, never fetched.
    pub source_url: Option<String>,
}

impl PlanFile {
    /// This file as a file part sent to a peer, with `content` (the bytes or link in hand).
    #[must_use]
    pub fn outgoing(&self, content: AttachmentContent) -> OutgoingFile {
        OutgoingFile {
            name: self.name.clone(),
            media_type: self.media_type.clone(),
            content: match content {
                AttachmentContent::Bytes(bytes) => OutgoingContent::Bytes(bytes),
                AttachmentContent::Url(url) => OutgoingContent::Uri(url),
            },
        }
    }

    /// The line the model reads for this file.
    #[must_use]
    pub fn line(&self) -> String {
        match self.size {
            Some(size) => format!(
                "[file {}: {}, {}, {size} bytes]",
                self.file_id, self.name, self.media_type
            ),
            None => format!(
                "[file {}: {}, {}, linked]",
                self.file_id, self.name, self.media_type
            ),
        }
    }
}

/// A file the client attached to its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub media_type: String,
    pub content: AttachmentContent,
}

/// What an attachment carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentContent {
    /// The decoded `data`.
    Bytes(Bytes),
    /// A `url` passed on to agents as it is.
    Url(String),
}

/// Where a plan's file bytes are kept.
pub trait FileKeeper: Send + Sync + std::fmt::Debug {
    /// Keeps `bytes` as file `file.file_id` of the plan; returns the URL the client fetches it
    /// from, or why it cannot be kept.
    fn keep(&self, file: &PlanFile, bytes: Bytes) -> BoxFuture<'_, Result<String, String>>;
    /// A kept file's bytes, while they are kept.
    fn bytes(&self, file_id: &str) -> BoxFuture<'_, Option<Bytes>>;
}

/// The keeper of a plan that keeps no files: every file is refused (tests, benches).
#[derive(Debug, Clone, Copy)]
pub struct KeepNoFiles;

impl FileKeeper for KeepNoFiles {
    fn keep(&self, _file: &PlanFile, _bytes: Bytes) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async { Err("this gateway keeps no files".to_owned()) })
    }

    fn bytes(&self, _file_id: &str) -> BoxFuture<'_, Option<Bytes>> {
        Box::pin(async { None })
    }
}

/// A plan's file caps (`files.max_file_bytes`, `files.max_plan_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct FileCaps {
    pub max_file_bytes: usize,
    pub max_plan_bytes: usize,
}

/// The files one plan has seen, and the bytes it has kept against its cap.
#[derive(Debug)]
pub struct PlanFiles {
    keeper: std::sync::Arc<dyn FileKeeper>,
    caps: FileCaps,
    known: Mutex<Vec<PlanFile>>,
    kept_bytes: AtomicUsize,
}

impl PlanFiles {
    #[must_use]
    pub fn new(keeper: std::sync::Arc<dyn FileKeeper>, caps: FileCaps) -> Self {
        Self {
            keeper,
            caps,
            known: Mutex::new(Vec::new()),
            kept_bytes: AtomicUsize::new(0),
        }
    }

    /// Whether the plan has any file (its tools then offer `files`).
    #[must_use]
    pub fn any(&self) -> bool {
        !self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PlanFile>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps a file's bytes within the caps.
    ///
    /// # Errors
    /// Over `files.max_file_bytes` or `files.max_plan_bytes`, or the keeper refused.
    pub async fn add_bytes(
        &self,
        name: Option<&str>,
        media_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<PlanFile, String> {
        let file_id = new_file_id();
        let name = clean_name(name, &file_id);
        let size = bytes.len();
        if size > self.caps.max_file_bytes {
            return Err(format!(
                "file \"{name}\" is {size} bytes, over files.max_file_bytes ({})",
                self.caps.max_file_bytes
            ));
        }
        let before = self.kept_bytes.fetch_add(size, Ordering::SeqCst);
        if before + size > self.caps.max_plan_bytes {
            self.kept_bytes.fetch_sub(size, Ordering::SeqCst);
            return Err(format!(
                "file \"{name}\" ({size} bytes) would take this plan's files over files.max_plan_bytes ({})",
                self.caps.max_plan_bytes
            ));
        }
        let mut file = PlanFile {
            file_id,
            name,
            media_type: clean_media_type(media_type),
            size: Some(size as u64),
            url: None,
            source_url: None,
        };
        match self.keeper.keep(&file, bytes).await {
            Ok(url) => file.url = Some(url),
            Err(e) => {
                self.kept_bytes.fetch_sub(size, Ordering::SeqCst);
                return Err(format!("file \"{}\" could not be kept: {e}", file.name));
            }
        }
        self.lock().push(file.clone());
        Ok(file)
    }

    /// Registers a file the gateway does not keep (its address is passed on).
    pub fn add_link(&self, name: Option<&str>, media_type: Option<&str>, url: &str) -> PlanFile {
        let file_id = new_file_id();
        let file = PlanFile {
            name: clean_name(name, &file_id),
            file_id,
            media_type: clean_media_type(media_type),
            size: None,
            url: None,
            source_url: Some(url.to_owned()),
        };
        self.lock().push(file.clone());
        file
    }

    /// Turns a peer's file part into a file of the plan.
    ///
    /// # Errors
    /// Bytes that are not base64, or over a cap.
    pub async fn add_part(&self, part: &FilePart) -> Result<Option<PlanFile>, String> {
        match &part.content {
            FileContent::Base64(text) => {
                // Refuse before decoding what cannot fit.
                let estimate = text.len() / 4 * 3;
                if estimate > self.caps.max_file_bytes.saturating_add(3) {
                    return Err(format!(
                        "file \"{}\" is about {estimate} bytes, over files.max_file_bytes ({})",
                        clean_name(part.name.as_deref(), "?"),
                        self.caps.max_file_bytes
                    ));
                }
                let bytes = decode_base64(text).ok_or_else(|| {
                    format!(
                        "file \"{}\": its bytes are not valid base64",
                        clean_name(part.name.as_deref(), "?")
                    )
                })?;
                self.add_bytes(
                    part.name.as_deref(),
                    part.media_type.as_deref(),
                    Bytes::from(bytes),
                )
                .await
                .map(Some)
            }
            FileContent::Uri(url) => Ok(Some(self.add_link(
                part.name.as_deref(),
                part.media_type.as_deref(),
                url,
            ))),
            FileContent::Empty => Ok(None),
        }
    }

    /// Keeps the client's attachments, in order.
    ///
    /// # Errors
    /// The first attachment that cannot be kept.
    pub async fn add_attachments(
        &self,
        attachments: Vec<Attachment>,
    ) -> Result<Vec<PlanFile>, String> {
        let mut out = Vec::with_capacity(attachments.len());
        for a in attachments {
            let file = match a.content {
                AttachmentContent::Bytes(bytes) => {
                    self.add_bytes(Some(&a.name), Some(&a.media_type), bytes)
                        .await?
                }
                AttachmentContent::Url(url) => {
                    self.add_link(Some(&a.name), Some(&a.media_type), &url)
                }
            };
            out.push(file);
        }
        Ok(out)
    }

    /// Every file of the plan so far.
    #[must_use]
    pub fn all(&self) -> Vec<PlanFile> {
        self.lock().clone()
    }

    /// The files `ids` names, ready to send to a peer.
    ///
    /// # Errors
    /// An id the plan does not have, or a file no longer kept.
    pub async fn outgoing(&self, ids: &[String]) -> Result<Vec<OutgoingFile>, String> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let file = self.lock().iter().find(|f| &f.file_id == id).cloned();
            let Some(file) = file else {
                let known: Vec<String> = self.lock().iter().map(|f| f.file_id.clone()).collect();
                return Err(format!(
                    "invalid tool input: files: unknown file id \"{id}\" (this plan's files: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            let content = match &file.source_url {
                Some(url) => OutgoingContent::Uri(url.clone()),
                None => OutgoingContent::Bytes(
                    self.keeper
                        .bytes(&file.file_id)
                        .await
                        .ok_or_else(|| format!("file {id} is no longer kept"))?,
                ),
            };
            out.push(OutgoingFile {
                name: file.name,
                media_type: file.media_type,
                content,
            });
        }
        Ok(out)
    }
}

/// A fresh file id: short (the model copies it), unique within a plan and not guessable.
fn new_file_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("f_{}", &id[..16])
}

/// A file name fit for a line and a header: no control characters or brackets, bounded; a
/// file without one is named after its id.
fn clean_name(name: Option<&str>, file_id: &str) -> String {
    let cleaned: String = name
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '[' | ']' | '"' | '\\' | '/'))
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        format!("file-{file_id}")
    } else {
        cleaned.to_owned()
    }
}

/// A media type as `type/subtype` of token characters (parameters dropped), else
/// `application/octet-stream`.
fn clean_media_type(media_type: Option<&str>) -> String {
    let raw = media_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    match raw.split_once('/') {
        Some((t, sub)) if token(t) && token(sub) => raw.to_ascii_lowercase(),
        _ => OCTET_STREAM.to_owned(),
    }
}

/// Decodes base64 as peers write it: standard or URL-safe alphabet, padded or not, with line
/// breaks (MIME) tolerated.
#[must_use]
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let compact: std::borrow::Cow<'_, str> = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        text.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        text.into()
    };
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(compact.as_bytes()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_media_types_are_cleaned() {
        assert_eq!(clean_name(Some(" a]b\n.png "), "f_1"), "ab.png");
        assert_eq!(clean_name(None, "f_1"), "file-f_1");
        assert_eq!(clean_name(Some("../x"), "f_1"), "..x");
        assert_eq!(clean_media_type(Some("Image/PNG; q=1")), "image/png");
        assert_eq!(clean_media_type(Some("text/html\r\nX: y")), OCTET_STREAM);
        assert_eq!(clean_media_type(None), OCTET_STREAM);
    }

    #[test]
    fn base64_in_every_spelling_decodes() {
        assert_eq!(decode_base64("aGk+Pz8=").unwrap(), b"hi>??");
        assert_eq!(decode_base64("aGk-Pz8").unwrap(), b"hi>??");
        assert_eq!(decode_base64("aGk+\nPz8=").unwrap(), b"hi>??");
        assert!(decode_base64("not base64!").is_none());
    }

    #[test]
    fn lines_say_size_or_link() {
        let mut f = PlanFile {
            file_id: "f_1".into(),
            name: "chart.png".into(),
            media_type: "image/png".into(),
            size: Some(42),
            url: None,
            source_url: None,
        };
        assert_eq!(f.line(), "[file f_1: chart.png, image/png, 42 bytes]");
        f.size = None;
        assert_eq!(f.line(), "[file f_1: chart.png, image/png, linked]");
    }
}
