//! A plan's files as its run keeps them: the planner hands bytes to the plan's [`KeptFiles`],
//! which puts them in the gateway's file store under the plan's id and owner (whom the files
//! route serves them to), for the plan's life; when the plan ends the store keeps them
//! `files.retention_secs` more.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::planner::files::{FileKeeper, PlanFile};
use crate::store::files::{FileMeta, Files};

/// The route a kept file is served at (the `/plan` door's files route; every door's answers
/// point there).
#[must_use]
pub fn file_path(plan_id: &str, file_id: &str) -> String {
    format!("/plan/{plan_id}/files/{file_id}")
}

/// The file keeper of one plan.
#[derive(Debug)]
pub struct KeptFiles {
    pub(super) store: Arc<Files>,
    pub(super) plan_id: String,
    pub(super) owner: String,
    /// How long a file may be kept before its plan reports its end (the plan's deadline and
    /// the retention).
    pub(super) lease: Duration,
    /// Whether the plan kept any file (only then does its end touch the store).
    pub(super) kept: std::sync::atomic::AtomicBool,
}

impl KeptFiles {
    /// The plan ended: its files, if any, are kept `files.retention_secs` from now.
    pub(super) async fn finish(&self) {
        if !self.kept.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.store.finish(&self.plan_id).await {
            tracing::warn!(error = %e, "cannot start the retention of a plan's files");
        }
    }
}

impl FileKeeper for KeptFiles {
    fn keep(&self, file: &PlanFile, bytes: Bytes) -> BoxFuture<'_, Result<String, String>> {
        let meta = FileMeta {
            owner: self.owner.clone(),
            name: file.name.clone(),
            media_type: file.media_type.clone(),
        };
        let file_id = file.file_id.clone();
        Box::pin(async move {
            self.kept.store(true, std::sync::atomic::Ordering::SeqCst);
            self.store
                .put(&self.plan_id, &file_id, meta, bytes, self.lease)
                .await
                .map_err(|e| e.to_string())?;
            Ok(file_path(&self.plan_id, &file_id))
        })
    }

    fn bytes(&self, file_id: &str) -> BoxFuture<'_, Option<Bytes>> {
        let file_id = file_id.to_owned();
        Box::pin(async move {
            match self.store.get(&self.plan_id, &file_id).await {
                Ok(file) => file.map(|f| f.bytes),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a plan's file from the store");
                    None
                }
            }
        })
    }
}
