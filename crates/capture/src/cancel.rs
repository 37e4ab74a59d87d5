//! Cancelling a running plugin from outside: a handle the engine keeps and a signal the capture
//! waits on.
//!
//! Dropping every [`CancelHandle`] is *not* a cancel: an engine that forgets its handle must not
//! kill plugins by accident.

use std::future::pending;
use std::sync::Arc;

use tokio::sync::watch;

/// Cancels the plugin runs holding the matching [`CancelSignal`]s.
#[derive(Debug, Clone)]
pub struct CancelHandle(Arc<watch::Sender<bool>>);

/// Resolves when its [`CancelHandle`] cancels.
#[derive(Debug, Clone)]
pub struct CancelSignal(Option<watch::Receiver<bool>>);

impl CancelHandle {
    /// Cancels; later calls do nothing.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }
}

impl CancelSignal {
    /// A connected handle and signal.
    pub fn new() -> (CancelHandle, CancelSignal) {
        let (tx, rx) = watch::channel(false);
        (CancelHandle(Arc::new(tx)), CancelSignal(Some(rx)))
    }

    /// A signal that never fires.
    pub fn never() -> CancelSignal {
        CancelSignal(None)
    }

    /// Waits until cancelled (forever if that cannot happen any more).
    pub async fn cancelled(&mut self) {
        if let Some(rx) = &mut self.0 {
            if rx.wait_for(|&c| c).await.is_ok() {
                return;
            }
        }
        pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_after_cancel_even_if_cancelled_first() {
        let (handle, mut signal) = CancelSignal::new();
        handle.cancel();
        assert!(handle.is_cancelled());
        tokio::time::timeout(Duration::from_secs(1), signal.cancelled())
            .await
            .expect("an earlier cancel is seen");
    }

    #[tokio::test]
    async fn dropping_the_handle_is_not_a_cancel() {
        let (handle, mut signal) = CancelSignal::new();
        drop(handle);
        let waited = tokio::time::timeout(Duration::from_millis(50), signal.cancelled()).await;
        assert!(waited.is_err());
        let waited =
            tokio::time::timeout(Duration::from_millis(10), CancelSignal::never().cancelled())
                .await;
        assert!(waited.is_err());
    }
}
