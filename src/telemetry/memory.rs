//! Giving memory back after large payloads. A file of several MiB passes through a few buffers
//! (the body as read, its JSON, the decoded bytes); once they are freed the allocator keeps the
//! pages until a thread that owns them allocates again, which an idle gateway never does: four
//! 10 MiB attachments left it 190 MiB above its baseline for good (`plangate-bench files`).
//! Whoever handles a large payload calls [`large_payload`]; the binary installs a trimmer
//! ([`install`]) that, once such payloads have stopped for a moment, asks the allocator to
//! return what it holds. Nothing happens without a trimmer (library users, tests).

use std::sync::OnceLock;
use std::sync::mpsc::SyncSender;

/// Payloads at least this large wake the trimmer.
pub const LARGE_PAYLOAD_BYTES: usize = 1024 * 1024;

static TRIMMER: OnceLock<SyncSender<()>> = OnceLock::new();

/// Installs the trimmer's doorbell (the binary does, once).
pub fn install(doorbell: SyncSender<()>) {
    let _ = TRIMMER.set(doorbell);
}

/// A payload of `bytes` was handled: when it is large, the trimmer runs once things are quiet.
/// Cheap: one relaxed check, and a non-blocking send that is dropped when one is pending.
pub fn large_payload(bytes: usize) {
    if bytes >= LARGE_PAYLOAD_BYTES
        && let Some(doorbell) = TRIMMER.get()
    {
        let _ = doorbell.try_send(());
    }
}
