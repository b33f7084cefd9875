//! The dpif seam: the types through which the controller and the workers talk (Open vSwitch's
//! `dpif` interface, here between threads of one process).
//!
//! Contract:
//! - The controller reaches a worker only through its [`WorkerChannels`]: [`Command`]s in (a
//!   bounded lock-free queue the worker applies between bursts, in order), [`Upcall`]s and
//!   [`Event`]s out (bounded lock-free queues; a full upcall queue is a counted drop at the
//!   worker, never a block), frames for upcalls from a recycled pool, counters published in
//!   [`WorkerChannels::stats`], and a coalescing [`Notifier`] that wakes the controller's
//!   event loop.
//! - Versions: a megaflow is installed with the pipeline version it was translated against;
//!   after [`Command::Revalidate`] to version V a worker never uses an entry older than V.
//!   [`Command::Sync`] is answered by [`Event::Synced`] only after every earlier command was
//!   applied (OpenFlow barrier semantics).
//! - Nothing here knows OpenFlow or the worker's internals; [`crate::worker`] implements the
//!   other side.

use crate::extract::TunnelMeta;
use crate::port::{Frame, FrameRing, Port};
use crate::stats::SharedWorkerStats;
use crate::worker::WorkerConfig;
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use strato_flowtable::dpaction::UserspaceReason;
use strato_flowtable::megaflow::MegaflowId;
use strato_flowtable::{DpAction, Match, PacketKey, PortNo};

/// What a revalidation decided for one cached megaflow.
#[derive(Debug)]
pub enum RevalOp {
    /// Still right under the new version.
    Keep,
    /// Same match, new actions.
    Update(Box<[DpAction]>),
    /// No longer right: remove.
    Delete,
}

/// Controller -> worker.
pub enum Command {
    /// Start polling a port.
    AddPort(Box<Port>),
    /// Stop polling a port and hand it back ([`Event::PortRemoved`]).
    DelPort(PortNo),
    /// A port owned by another worker: frames for it go to its handoff ring (`None`: forget it).
    SetRemotePort {
        /// Port.
        port: PortNo,
        /// The owner's handoff ring.
        ring: Option<Arc<FrameRing>>,
    },
    /// Set a port up or down.
    SetPortUp {
        /// Port.
        port: PortNo,
        /// New state.
        up: bool,
    },
    /// Cache a megaflow.
    Install {
        /// Controller-assigned id.
        id: MegaflowId,
        /// The megaflow (boxed: a match is 384 bytes and commands sit in a bounded queue).
        m: Box<Match>,
        /// Its actions.
        actions: Box<[DpAction]>,
        /// Pipeline version it was translated against.
        version: u64,
    },
    /// Move to pipeline `version`, applying the controller's verdict on cached megaflows.
    Revalidate {
        /// New version.
        version: u64,
        /// Verdicts (megaflows not listed keep their version and become stale).
        ops: Vec<(MegaflowId, RevalOp)>,
    },
    /// Remove one megaflow.
    Remove(MegaflowId),
    /// Empty every cache.
    FlushCaches,
    /// Run actions on a packet the controller holds (re-injection after an upcall,
    /// packet-out).
    Execute {
        /// Port the packet is taken to have arrived on.
        in_port: PortNo,
        /// Tunnel metadata it arrived with.
        tun: Option<TunnelMeta>,
        /// The packet (returned to the upcall frame pool afterwards).
        frame: Box<Frame>,
        /// What to do with it.
        actions: Box<[DpAction]>,
    },
    /// Report every cached megaflow ([`Event::Flows`]).
    DumpFlows,
    /// Report every megaflow's counters ([`Event::Stats`]; cheaper than a dump).
    ReportStats,
    /// Acknowledge with [`Event::Synced`] once everything before has been applied.
    Sync(u64),
    /// Exit the loop.
    Stop,
}

/// One cached megaflow as reported by [`Command::DumpFlows`].
#[derive(Clone, Debug)]
pub struct DpFlowInfo {
    /// Id.
    pub id: MegaflowId,
    /// Match.
    pub m: Match,
    /// Actions.
    pub actions: Box<[DpAction]>,
    /// Version.
    pub version: u64,
    /// Packets that hit it.
    pub packets: u64,
    /// Bytes that hit it.
    pub bytes: u64,
    /// Worker milliseconds at the last hit.
    pub used_ms: u64,
}

/// Worker -> controller (besides upcalls).
pub enum Event {
    /// Every command before `Sync(seq)` is applied.
    Synced {
        /// Worker.
        worker: usize,
        /// Sequence number from the command.
        seq: u64,
    },
    /// The classifier evicted a megaflow to make room.
    Evicted {
        /// Worker.
        worker: usize,
        /// The megaflow.
        id: MegaflowId,
    },
    /// Answer to [`Command::DumpFlows`].
    Flows {
        /// Worker.
        worker: usize,
        /// The megaflows, and the worker clock they were read at.
        flows: Vec<DpFlowInfo>,
        /// Worker milliseconds when read.
        now_ms: u64,
    },
    /// Answer to [`Command::ReportStats`]: `(id, packets, bytes, used_ms)` per megaflow.
    Stats {
        /// Worker.
        worker: usize,
        /// Counters per megaflow.
        flows: Vec<(MegaflowId, u64, u64, u64)>,
    },
    /// A port went down by itself (its interface disappeared, a fatal I/O error).
    PortDown {
        /// Worker.
        worker: usize,
        /// Port.
        port: PortNo,
        /// Why.
        reason: String,
    },
    /// A port removed by [`Command::DelPort`] (released off the worker thread).
    PortRemoved {
        /// Worker.
        worker: usize,
        /// The port (counters final).
        port: Box<Port>,
    },
}

/// Why a packet went up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallKind {
    /// No cached megaflow (or only a stale one).
    Miss,
    /// A `Userspace` action (packet-in).
    Userspace {
        /// Reason.
        reason: UserspaceReason,
        /// Bytes requested.
        max_len: u16,
        /// Rule cookie.
        cookie: u64,
        /// Rule table.
        table: u8,
        /// Pipeline metadata when it was sent.
        metadata: u64,
    },
}

/// A packet handed to the controller.
pub struct Upcall {
    /// Worker it came from.
    pub worker: usize,
    /// Port it arrived on.
    pub in_port: PortNo,
    /// Tunnel metadata (decapsulated packets).
    pub tun: Option<TunnelMeta>,
    /// Its key.
    pub key: PacketKey,
    /// Why.
    pub kind: UpcallKind,
    /// The frame (return it to [`WorkerChannels::frames`] or send it back in
    /// [`Command::Execute`]).
    pub frame: Box<Frame>,
}

/// Wakes the controller's event loop when upcalls or events are waiting. Coalesced: one wake
/// per batch of work, not per packet.
#[derive(Default)]
pub struct Notifier {
    pending: AtomicBool,
    waker: Option<Arc<mio::Waker>>,
}

impl Notifier {
    /// A notifier that wakes `waker`.
    pub fn new(waker: Arc<mio::Waker>) -> Arc<Notifier> {
        Arc::new(Notifier {
            pending: AtomicBool::new(false),
            waker: Some(waker),
        })
    }
    /// Called by workers.
    #[inline]
    pub fn notify(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            if let Some(w) = &self.waker {
                let _ = w.wake();
            }
        }
    }
    /// Called by the controller before draining its queues.
    pub fn clear(&self) {
        self.pending.store(false, Ordering::Release);
    }
}

/// The queues between one worker and the controller.
pub struct WorkerChannels {
    /// Commands to the worker.
    pub cmds: ArrayQueue<Command>,
    /// Events from the worker.
    pub events: ArrayQueue<Event>,
    /// Upcalls from the worker.
    pub upcalls: ArrayQueue<Upcall>,
    /// Free frames for upcalls.
    pub frames: ArrayQueue<Box<Frame>>,
    /// Published counters.
    pub stats: SharedWorkerStats,
    /// Wakes the controller.
    pub notifier: Arc<Notifier>,
}

impl WorkerChannels {
    /// Channels sized from `cfg`, waking `notifier`.
    pub fn new(cfg: &WorkerConfig, notifier: Arc<Notifier>) -> Arc<WorkerChannels> {
        let frames = ArrayQueue::new(cfg.upcall_queue);
        for _ in 0..cfg.upcall_queue {
            let _ = frames.push(Frame::new_boxed());
        }
        Arc::new(WorkerChannels {
            cmds: ArrayQueue::new(cfg.cmd_queue),
            events: ArrayQueue::new(cfg.event_queue),
            upcalls: ArrayQueue::new(cfg.upcall_queue),
            frames,
            stats: SharedWorkerStats::default(),
            notifier,
        })
    }
}
