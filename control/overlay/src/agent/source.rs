//! Where a host's tenant agent gets the model from: a stream of [`ModelUpdate`]s.
//!
//! Contract:
//! - A source first sends [`ModelUpdate::Reset`] with the whole model and the VTEP list, then
//!   every later committed change as [`ModelUpdate::Change`], in commit order. Whenever it
//!   loses track (the server restarted, changes were missed), it sends a new `Reset`; the agent
//!   then recompiles from it. Between a loss and the next `Reset` the installed flows stay, so
//!   traffic keeps flowing on the last known model.
//! - After every send the source calls its `wake` function, so the controller thread handles
//!   the update at once instead of at its next timer.
//! - [`local`]: the daemon's own tenant service (`[api]` in the same process). The remote
//!   source (another host's API over HTTP) is in [`super::remote`].

use crossbeam::channel::{unbounded, Receiver, Sender};
use std::sync::Arc;
pub use strato_tenant::model::Vtep;
use strato_tenant::model::{ChangeEvent, Snapshot};
use strato_tenant::TenantService;

/// Wakes the controller thread after an update was sent.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// What a source tells the agent.
// A Reset is rare (start, resync) and moved once; boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUpdate {
    /// The whole model and the hosts: replaces everything the agent knew.
    Reset {
        /// The model.
        snapshot: Snapshot,
        /// Every host's VTEP (the local host among them).
        hosts: Vec<Vtep>,
    },
    /// One committed change after the last `Reset`.
    Change(ChangeEvent),
    /// The source lost its server (the text says why) or found it again (`None`); for logs and
    /// `strato ctl show`. Flows stay as they are.
    Link(Option<String>),
}

/// A running source: updates arrive on `rx`. Dropping it stops the source's thread, if any.
pub struct ModelSource {
    /// The updates.
    pub rx: Receiver<ModelUpdate>,
    /// What `strato ctl show` says the source is (`local` or the server's URL).
    pub describe: String,
    _keep: Option<Box<dyn Send>>,
}

impl std::fmt::Debug for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSource")
            .field("describe", &self.describe)
            .finish_non_exhaustive()
    }
}

impl ModelSource {
    /// A source from parts (for [`super::remote`] and tests): `keep` is dropped with the
    /// source (e.g. a guard that stops a thread).
    pub fn new(rx: Receiver<ModelUpdate>, describe: String, keep: Option<Box<dyn Send>>) -> Self {
        ModelSource {
            rx,
            describe,
            _keep: keep,
        }
    }
}

/// The daemon's own tenant service as a source: a `Reset` now, then each change, forwarded
/// by a small thread that ends when the service's feed or the source is dropped.
pub fn local(svc: &Arc<TenantService>, wake: Wake) -> ModelSource {
    let sub = svc.subscribe();
    let (tx, rx) = unbounded();
    let _ = tx.send(ModelUpdate::Reset {
        snapshot: sub.snapshot,
        hosts: svc.vteps(),
    });
    wake();
    let events = sub.events;
    let (stop_tx, stop_rx) = crossbeam::channel::bounded::<()>(0);
    std::thread::Builder::new()
        .name("strato-model".into())
        .spawn(move || forward(events, tx, stop_rx, wake))
        .expect("spawning the model thread");
    ModelSource::new(rx, "local".into(), Some(Box::new(stop_tx)))
}

fn forward(events: Receiver<ChangeEvent>, tx: Sender<ModelUpdate>, stop: Receiver<()>, wake: Wake) {
    loop {
        crossbeam::select! {
            recv(events) -> ev => match ev {
                Ok(ev) => {
                    if tx.send(ModelUpdate::Change(ev)).is_err() {
                        return;
                    }
                    wake();
                }
                Err(_) => return,
            },
            recv(stop) -> _ => return,
        }
    }
}
