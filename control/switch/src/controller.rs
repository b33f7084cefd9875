//! The controller core: one thread that owns the pipeline and every worker's view of it.
//!
//! Contract:
//! - It receives upcalls from workers, translates each missed packet with
//!   [`strato_flowtable::xlate::xlate`], installs the resulting megaflow in that worker's caches
//!   (once: a megaflow already installed or on its way is not sent again) and re-injects the
//!   packet with the same actions, so no packet that missed is lost.
//! - It keeps a mirror of every megaflow it installed per worker. After any pipeline change it
//!   re-translates each mirrored megaflow and sends the worker one `Revalidate` command carrying
//!   the new version (keep / new actions / delete for each). Workers never use an entry older
//!   than the version they were told about. [`ControllerHandle::sync`] waits until every worker has
//!   applied everything sent before it (barrier semantics).
//! - Commands that do not fit a worker's bounded queue wait in a per-worker backlog in order:
//!   nothing accepted is dropped, and the controller never blocks a worker.
//! - Other threads reach the controller through a [`ControllerHandle`]: closures run on the
//!   controller thread between upcall batches.

use crate::app::{App, AppEvent, PortChange, Punt, Readiness, Tokens};
use crossbeam::channel::{self, Receiver, Sender};
use hashbrown::HashMap;
use mio::{Events, Poll, Registry, Token, Waker};
use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use strato_datapath::dpif::{
    Command, DpFlowInfo, Event, Notifier, RevalOp, Upcall, UpcallKind, WorkerChannels,
};
use strato_datapath::port::Frame;
use strato_datapath::port::{FrameRing, Port, PortKind};
use strato_datapath::stats::{PortCounters, SharedPortStats, WorkerCounters};
use strato_datapath::worker::{Worker, WorkerConfig};
use strato_flowtable::megaflow::MegaflowId;
use strato_flowtable::pipeline::{Pipeline, PortEnv, RemovalReason, Rule, RuleId};
use strato_flowtable::{xlate, DpAction, Match, PortNo};

const WAKE: Token = Token(0);
/// Frames another worker may have queued for one port before it counts tx_full.
pub const HANDOFF_SLOTS: usize = 1024;
/// How often counters are pulled and timeouts checked.
pub const TICK: Duration = Duration::from_secs(1);

/// A megaflow as the controller remembers installing it.
#[derive(Clone, Debug)]
struct Mirror {
    m: Match,
    actions: Vec<DpAction>,
    rules: Vec<RuleId>,
    /// Groups it went through (credited like `rules`).
    groups: Vec<u32>,
    /// Counters last credited to `rules`.
    packets: u64,
    bytes: u64,
}

/// One worker as the controller sees it.
struct WorkerLink {
    ch: Arc<WorkerChannels>,
    mirror: HashMap<MegaflowId, Mirror>,
    by_match: HashMap<Match, MegaflowId>,
    backlog: VecDeque<Command>,
    synced: Arc<AtomicU64>,
    /// Last megaflow dump and the worker clock it was read at.
    flows: Option<(Vec<DpFlowInfo>, u64)>,
    thread: Option<JoinHandle<()>>,
}

/// One worker's megaflows, read at worker time `now_ms` (compare with [`DpFlowInfo::used_ms`]).
#[derive(Clone, Debug)]
pub struct FlowDump {
    /// Worker.
    pub worker: usize,
    /// Its megaflows.
    pub flows: Vec<DpFlowInfo>,
    /// Worker milliseconds when read.
    pub now_ms: u64,
}

/// A packet a `Userspace` action sent to the controller (OpenFlow packet-in material).
#[derive(Clone, Debug)]
pub struct PacketIn {
    /// Worker it came from.
    pub worker: usize,
    /// Port it arrived on.
    pub in_port: PortNo,
    /// Why.
    pub kind: UpcallKind,
    /// The frame.
    pub frame: Vec<u8>,
}

/// Controller counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerStats {
    /// Upcalls handled.
    pub upcalls: u64,
    /// Megaflows sent to workers.
    pub installs: u64,
    /// Packets re-injected.
    pub executes: u64,
    /// Packet-ins received.
    pub packet_ins: u64,
    /// Revalidation passes.
    pub revalidations: u64,
    /// Megaflows deleted by revalidation.
    pub revalidated_deletes: u64,
    /// Megaflows whose actions revalidation changed.
    pub revalidated_updates: u64,
    /// Megaflows evicted by workers.
    pub evictions: u64,
    /// Rules removed by idle or hard timeouts.
    pub expired: u64,
    /// Ports that went down by themselves.
    pub ports_down: u64,
    /// Frames punted to the app that owns their rule's cookie.
    pub app_punts: u64,
}

/// A closure run on the controller thread.
pub type Call = Box<dyn FnOnce(&mut Controller) + Send>;

/// The controller state (lives on its thread).
pub struct Controller {
    pipeline: Pipeline,
    env: PortEnv,
    workers: Vec<WorkerLink>,
    next_id: MegaflowId,
    seq: u64,
    stats: ControllerStats,
    packet_ins: VecDeque<PacketIn>,
    notifier: Arc<Notifier>,
    ports: Vec<PortRecord>,
    /// The applications, in installation order (see [`crate::app`]).
    apps: Vec<AppSlot>,
    /// The pipeline changed during this batch of upcalls; revalidate once at its end.
    reval_pending: bool,
    started: Instant,
    stats_pending: usize,
    stop: bool,
    registry: Registry,
    /// Socket tokens for apps (the loop's own waker is token 0).
    tokens: Tokens,
    /// Last app slot id.
    last_app_id: u64,
}

/// One installed application. `app` is `None` while the app runs (it is taken out so it can
/// borrow the controller); events for it meanwhile wait in `pending`.
struct AppSlot {
    id: u64,
    app: Option<Box<dyn App>>,
    pending: Vec<AppEvent>,
}

/// What the controller remembers of a port it gave a worker.
#[derive(Clone)]
pub struct PortRecord {
    /// Port number.
    pub no: PortNo,
    /// Name (the interface name for real ports).
    pub name: String,
    /// `afxdp`, `tap` or `memory`.
    pub kind: &'static str,
    /// AF_XDP attach mode in use (`native` / `skb`), `-` for other kinds.
    pub mode: String,
    /// Worker that owns it.
    pub worker: usize,
    /// Why it went down by itself, if it did.
    pub down_reason: Option<String>,
    /// Its published counters.
    pub stats: Arc<SharedPortStats>,
    /// When it was added.
    pub added: Instant,
    /// Its MAC address, when known.
    pub mac: Option<[u8; 6]>,
}

/// A handle other threads use to reach the controller.
#[derive(Clone)]
pub struct ControllerHandle {
    calls: Sender<Call>,
    waker: Arc<Waker>,
    synced: Arc<Vec<Arc<AtomicU64>>>,
}

/// The controller thread and its workers.
pub struct Running {
    /// Reach the controller.
    pub handle: ControllerHandle,
    thread: Option<JoinHandle<()>>,
}

/// Controller errors.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// the controller thread has stopped
    #[error("the controller thread has stopped")]
    Stopped,
    /// could not set up the controller's event loop: {0}
    #[error("could not set up the controller's event loop: {0}")]
    Io(#[from] std::io::Error),
    /// timed out after {0:?} waiting for the workers to apply the controller's commands
    #[error("timed out after {0:?} waiting for the workers to apply the controller's commands")]
    SyncTimeout(Duration),
    /// {0}
    #[error("{0}")]
    Demo(String),
}

impl Controller {
    /// The pipeline (read).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The port environment (read).
    pub fn env(&self) -> &PortEnv {
        &self.env
    }

    /// Changes the pipeline and/or port environment, then revalidates every worker's cache.
    pub fn update<R>(&mut self, f: impl FnOnce(&mut Pipeline, &mut PortEnv) -> R) -> R {
        let r = f(&mut self.pipeline, &mut self.env);
        self.revalidate();
        r
    }

    /// Changes the pipeline and/or port environment; revalidation runs once at the end of the
    /// controller's loop pass (or at the next [`Controller::revalidate_if_pending`]), so a
    /// burst of changes costs one revalidation.
    pub fn change<R>(&mut self, f: impl FnOnce(&mut Pipeline, &mut PortEnv) -> R) -> R {
        let r = f(&mut self.pipeline, &mut self.env);
        self.reval_pending = true;
        r
    }

    /// [`Controller::change`] for a change that may turn out to change nothing: `f` returns
    /// its result and whether it changed anything; only then is a revalidation due.
    pub fn change_if<R>(&mut self, f: impl FnOnce(&mut Pipeline, &mut PortEnv) -> (R, bool)) -> R {
        let (r, changed) = f(&mut self.pipeline, &mut self.env);
        self.reval_pending |= changed;
        r
    }

    /// Runs a revalidation that [`Controller::change`] deferred.
    pub fn revalidate_if_pending(&mut self) {
        if std::mem::take(&mut self.reval_pending) {
            self.revalidate();
        }
    }

    /// True when every worker has applied everything sent before sync sequence `seq`.
    pub fn synced_all(&self, seq: u64) -> bool {
        self.workers
            .iter()
            .all(|w| w.synced.load(Ordering::Acquire) >= seq)
    }

    /// Tells every app about a port change.
    fn port_event(&mut self, change: PortChange, no: PortNo) {
        self.dispatch(AppEvent::Port { no, change });
    }

    /// Rules removed by `why` (a flow_mod delete, a group delete): every app hears of them
    /// (the OpenFlow channel sends flow_removed for those that asked for it).
    pub fn note_removed(&mut self, rules: Vec<Rule>, why: RemovalReason) {
        if !rules.is_empty() && !self.apps.is_empty() {
            self.dispatch(AppEvent::RulesRemoved(
                rules.into_iter().map(|r| (r, why)).collect(),
            ));
        }
    }

    /// Installs `app`, replacing an installed app of the same type (returned).
    pub fn set_app<A: App>(&mut self, app: A) -> Option<Box<A>> {
        let old = self.remove_app::<A>();
        self.last_app_id += 1;
        self.apps.push(AppSlot {
            id: self.last_app_id,
            app: Some(Box::new(app)),
            pending: Vec::new(),
        });
        old
    }

    /// The slot of the installed app of type `A` (not while it runs).
    fn slot_of<A: App>(&self) -> Option<usize> {
        self.apps
            .iter()
            .position(|s| s.app.as_deref().is_some_and(|a| (a as &dyn Any).is::<A>()))
    }

    /// Removes the installed app of type `A`, if any (not while it runs).
    pub fn remove_app<A: App>(&mut self) -> Option<Box<A>> {
        let i = self.slot_of::<A>()?;
        let slot = self.apps.remove(i);
        let a: Box<dyn Any> = slot.app?;
        a.downcast::<A>().ok()
    }

    /// The installed app of type `A` (`None` if there is none, or while it runs).
    pub fn app<A: App>(&self) -> Option<&A> {
        self.apps
            .iter()
            .find_map(|s| (s.app.as_deref()? as &dyn Any).downcast_ref::<A>())
    }

    /// The installed app of type `A`, to change it (`None` if there is none, or while it runs).
    pub fn app_mut<A: App>(&mut self) -> Option<&mut A> {
        self.apps
            .iter_mut()
            .find_map(|s| (s.app.as_deref_mut()? as &mut dyn Any).downcast_mut::<A>())
    }

    /// The source of socket tokens for registering with [`Controller::registry`] (shared by
    /// every app, so no two sockets get the same token).
    pub fn tokens(&self) -> Tokens {
        self.tokens.clone()
    }

    /// The controller's poll registry (sockets registered here wake the loop; their
    /// readiness reaches [`App::run`]).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Calls `f` with app `i` taken out of its slot, then puts it back and hands it the
    /// events that happened meanwhile. `None` if the slot is gone or already running. The app
    /// may install or remove other apps meanwhile: its slot is found again by id.
    fn with_app<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut dyn App, &mut Controller) -> R,
    ) -> Option<R> {
        let slot = self.apps.get_mut(i)?;
        let id = slot.id;
        let mut a = slot.app.take()?;
        let r = f(a.as_mut(), self);
        loop {
            let Some(k) = self.apps.iter().position(|s| s.id == id) else {
                // Its slot was removed while it ran: it is gone.
                return Some(r);
            };
            let pending = std::mem::take(&mut self.apps[k].pending);
            if pending.is_empty() {
                self.apps[k].app = Some(a);
                return Some(r);
            }
            for ev in &pending {
                a.event(self, ev);
            }
        }
    }

    /// Every app hears `ev` (a running app hears it when its call returns).
    fn dispatch(&mut self, ev: AppEvent) {
        for i in 0..self.apps.len() {
            let Some(slot) = self.apps.get_mut(i) else {
                break;
            };
            if slot.app.is_none() {
                slot.pending.push(ev.clone());
            } else {
                self.with_app(i, |a, c| a.event(c, &ev));
            }
        }
    }

    /// Runs every app's pass (see [`App::run`]); returns whether any has work left over and the
    /// earliest app timer.
    pub fn run_apps(&mut self, ready: &[Readiness]) -> (bool, Option<Duration>) {
        let mut busy = false;
        let mut timer: Option<Duration> = None;
        for i in 0..self.apps.len() {
            if let Some((b, t)) = self.with_app(i, |a, c| (a.run(c, ready), a.next_timer())) {
                busy |= b;
                timer = timer.into_iter().chain(t).min();
            }
        }
        (busy, timer)
    }

    /// Runs one pass of the app of type `A` now (e.g. so the OpenFlow channel's fail mode
    /// takes effect before the caller's next barrier), then any deferred revalidation.
    pub fn run_app<A: App>(&mut self) {
        if let Some(i) = self.slot_of::<A>() {
            self.with_app(i, |a, c| a.run(c, &[]));
            self.revalidate_if_pending();
        }
    }

    /// Sends `data` through datapath `actions` on `worker`, as if it arrived on `in_port`.
    pub fn execute(
        &mut self,
        worker: usize,
        in_port: PortNo,
        data: &[u8],
        actions: Vec<strato_flowtable::DpAction>,
    ) {
        let Some(w) = self.workers.get(worker) else {
            return;
        };
        let mut frame = w.ch.frames.pop().unwrap_or_else(Frame::new_boxed);
        frame.set(data);
        self.stats.executes += 1;
        self.send(
            worker,
            Command::Execute {
                in_port,
                tun: None,
                frame,
                actions: actions.into(),
            },
        );
    }

    /// Counters.
    pub fn stats(&self) -> ControllerStats {
        self.stats.clone()
    }

    /// Takes the packet-ins received so far.
    pub fn take_packet_ins(&mut self) -> Vec<PacketIn> {
        self.packet_ins.drain(..).collect()
    }

    /// Number of workers.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Adds a port to a worker. Other workers reach it through its handoff ring.
    pub fn add_port(&mut self, worker: usize, mut port: Port) {
        self.ports.retain(|p| p.no != port.no);
        let ring = FrameRing::new(HANDOFF_SLOTS);
        port.handoff = Some(ring.clone());
        let (kind, mode, mac) = match &port.kind {
            PortKind::Memory(_) => ("memory", "-".to_string(), None),
            PortKind::AfXdp(x) => ("afxdp", x.mode().name().to_string(), sysfs_mac(&port.name)),
            PortKind::Tap(t) => ("tap", "-".to_string(), t.mac().ok()),
        };
        self.ports.push(PortRecord {
            no: port.no,
            name: port.name.clone(),
            kind,
            mode,
            worker,
            down_reason: None,
            stats: port.shared.clone(),
            added: Instant::now(),
            mac,
        });
        let no = port.no;
        self.port_event(PortChange::Added, no);
        self.send(worker, Command::AddPort(Box::new(port)));
        for w in (0..self.workers.len()).filter(|&w| w != worker) {
            self.send(
                w,
                Command::SetRemotePort {
                    port: no,
                    ring: Some(ring.clone()),
                },
            );
        }
    }

    /// Removes a port from the bridge's view: xlate stops flooding to it, and the learning
    /// switch forgets the MAC addresses learned on it. Revalidates.
    pub fn forget_port(&mut self, no: PortNo) {
        self.env.ports.remove(&no);
        self.port_event(PortChange::Forgotten, no);
        self.revalidate();
    }

    /// The record of port `no`.
    pub fn port(&self, no: PortNo) -> Option<&PortRecord> {
        self.ports.iter().find(|p| p.no == no)
    }

    /// The ports, by number.
    pub fn ports(&self) -> Vec<PortRecord> {
        let mut v = self.ports.clone();
        v.sort_by_key(|p| p.no);
        v
    }

    /// The worker with the fewest ports (where a new port goes).
    pub fn least_loaded_worker(&self) -> usize {
        (0..self.workers.len())
            .min_by_key(|&w| self.ports.iter().filter(|p| p.worker == w).count())
            .unwrap_or(0)
    }

    /// Removes a port from its worker.
    pub fn del_port(&mut self, no: PortNo) -> bool {
        let Some(i) = self.ports.iter().position(|p| p.no == no) else {
            return false;
        };
        let rec = self.ports.remove(i);
        self.port_event(PortChange::Deleted, no);
        for w in (0..self.workers.len()).filter(|&w| w != rec.worker) {
            self.send(
                w,
                Command::SetRemotePort {
                    port: no,
                    ring: None,
                },
            );
        }
        self.send(rec.worker, Command::DelPort(no));
        true
    }

    /// Worker counters summed over workers, and each port's counters (as last published; call
    /// after a sync for an exact snapshot).
    pub fn counters(&self) -> (WorkerCounters, Vec<(PortNo, String, PortCounters)>) {
        let mut sum = WorkerCounters::default();
        for w in &self.workers {
            sum.add(&w.ch.stats.load());
        }
        let mut ports: Vec<_> = self
            .ports
            .iter()
            .map(|p| (p.no, p.name.clone(), p.stats.load()))
            .collect();
        ports.sort_by_key(|p| p.0);
        (sum, ports)
    }

    /// One worker's counters.
    pub fn worker_counters(&self, worker: usize) -> WorkerCounters {
        self.workers[worker].ch.stats.load()
    }

    /// Sends a command to a worker (queued in order behind any backlog). Crate-private: the
    /// controller keeps its megaflow mirror in step with what it sends.
    pub(crate) fn send(&mut self, worker: usize, cmd: Command) {
        let w = &mut self.workers[worker];
        if w.backlog.is_empty() {
            if let Err(c) = w.ch.cmds.push(cmd) {
                w.backlog.push_back(c);
            }
        } else {
            w.backlog.push_back(cmd);
        }
    }

    fn flush_backlogs(&mut self) {
        for w in &mut self.workers {
            while let Some(c) = w.backlog.pop_front() {
                if let Err(c) = w.ch.cmds.push(c) {
                    w.backlog.push_front(c);
                    break;
                }
            }
        }
    }

    /// Asks every worker to acknowledge everything sent so far; returns the sequence number to
    /// wait for with [`ControllerHandle::wait_synced`].
    pub fn request_sync(&mut self) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        for i in 0..self.workers.len() {
            self.send(i, Command::Sync(seq));
        }
        seq
    }

    /// Asks every worker for its megaflows; they arrive via [`Controller::dump_flows`] after the
    /// next sync.
    pub fn request_flows(&mut self) {
        for i in 0..self.workers.len() {
            self.workers[i].flows = None;
            self.send(i, Command::DumpFlows);
        }
    }

    /// The megaflows each worker last reported.
    pub fn dump_flows(&self) -> Vec<FlowDump> {
        self.workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                w.flows.clone().map(|(flows, now_ms)| FlowDump {
                    worker: i,
                    flows,
                    now_ms,
                })
            })
            .collect()
    }

    /// Re-translates every mirrored megaflow against the current pipeline and tells each worker
    /// the verdicts along with the new version.
    pub fn revalidate(&mut self) {
        // A full pass covers every change deferred by `change` so far.
        self.reval_pending = false;
        let version = self.pipeline.version();
        self.stats.revalidations += 1;
        for wi in 0..self.workers.len() {
            let w = &mut self.workers[wi];
            let mut ops = Vec::with_capacity(w.mirror.len());
            let mut dead = Vec::new();
            for (&id, mf) in w.mirror.iter_mut() {
                let x = xlate::xlate(&self.pipeline, &self.env, mf.m.key());
                if !x.megaflow.mask().is_subset_of(mf.m.mask()) {
                    // The new pipeline looks at more than this megaflow pinned down: some of its
                    // packets may now behave differently.
                    ops.push((id, RevalOp::Delete));
                    dead.push(id);
                    self.stats.revalidated_deletes += 1;
                } else if x.actions != mf.actions {
                    ops.push((id, RevalOp::Update(x.actions.clone().into())));
                    mf.actions = x.actions;
                    mf.rules = x.rules;
                    mf.groups = x.groups;
                    self.stats.revalidated_updates += 1;
                } else {
                    ops.push((id, RevalOp::Keep));
                    mf.rules = x.rules;
                    mf.groups = x.groups;
                }
            }
            for id in dead {
                if let Some(mf) = w.mirror.remove(&id) {
                    w.by_match.remove(&mf.m);
                }
            }
            self.send(wi, Command::Revalidate { version, ops });
        }
    }

    /// Credits megaflow counter deltas to the rules each megaflow went through (how OpenFlow
    /// rule counters move while the datapath does the work).
    fn credit(&mut self, worker: usize, flows: &[(MegaflowId, u64, u64, u64)]) {
        let now = self.now_ms();
        let w = &mut self.workers[worker];
        for &(id, packets, bytes, _used) in flows {
            let Some(mf) = w.mirror.get_mut(&id) else {
                continue;
            };
            let (dp, db) = (
                packets.saturating_sub(mf.packets),
                bytes.saturating_sub(mf.bytes),
            );
            if dp == 0 {
                continue;
            }
            mf.packets = packets;
            mf.bytes = bytes;
            for &r in &mf.rules {
                self.pipeline.credit(r, dp, db, now);
            }
            for &g in &mf.groups {
                self.pipeline.credit_group(g, dp, db);
            }
        }
    }

    /// Milliseconds since the controller started (the pipeline's clock).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Periodic work: pull megaflow counters from every worker; once all have answered (so
    /// rules are credited with their latest use), expire rules whose idle or hard timeout
    /// passed, then revalidate.
    pub fn tick(&mut self) {
        if self.stats_pending == 0 {
            self.stats_pending = self.workers.len();
            for i in 0..self.workers.len() {
                self.send(i, Command::ReportStats);
            }
        }
        if self.workers.is_empty() {
            self.expire();
        }
    }

    fn expire(&mut self) {
        let expired = self.pipeline.expire(self.now_ms());
        if !expired.is_empty() {
            self.stats.expired += expired.len() as u64;
            if !self.apps.is_empty() {
                self.dispatch(AppEvent::RulesRemoved(expired));
            }
            self.revalidate();
        }
    }

    fn handle_upcall(&mut self, u: Upcall) {
        self.stats.upcalls += 1;
        match u.kind {
            UpcallKind::Miss => {
                let x = xlate::xlate(&self.pipeline, &self.env, &u.key.key);
                let version = self.pipeline.version();
                // The packet itself is executed here, not through the megaflow: credit it now.
                let now = self.now_ms();
                for &r in &x.rules {
                    self.pipeline
                        .credit(r, 1, u.frame.bytes().len() as u64, now);
                }
                for &g in &x.groups {
                    self.pipeline
                        .credit_group(g, 1, u.frame.bytes().len() as u64);
                }
                let w = &mut self.workers[u.worker];
                if !w.by_match.contains_key(&x.megaflow) {
                    self.next_id += 1;
                    let id = self.next_id;
                    w.by_match.insert(x.megaflow, id);
                    w.mirror.insert(
                        id,
                        Mirror {
                            m: x.megaflow,
                            actions: x.actions.clone(),
                            rules: x.rules,
                            groups: x.groups.clone(),
                            packets: 0,
                            bytes: 0,
                        },
                    );
                    self.stats.installs += 1;
                    self.send(
                        u.worker,
                        Command::Install {
                            id,
                            m: Box::new(x.megaflow),
                            actions: x.actions.clone().into(),
                            version,
                        },
                    );
                }
                self.stats.executes += 1;
                self.send(
                    u.worker,
                    Command::Execute {
                        in_port: u.in_port,
                        tun: u.tun,
                        frame: u.frame,
                        actions: x.actions.into(),
                    },
                );
            }
            UpcallKind::Userspace { cookie, .. } if self.app_owning(cookie).is_some() => {
                // Punted by an app's rule: for that app only (the datapath already did what
                // else the rule said).
                self.stats.app_punts += 1;
                if let Some(i) = self.app_owning(cookie) {
                    let punt = Punt {
                        worker: u.worker,
                        in_port: u.in_port,
                        kind: u.kind,
                        frame: u.frame.bytes(),
                    };
                    self.with_app(i, |a, c| a.packet_in(c, punt));
                }
                let _ = self.workers[u.worker].ch.frames.push(u.frame);
            }
            UpcallKind::Userspace { .. } => {
                self.stats.packet_ins += 1;
                self.packet_ins.push_back(PacketIn {
                    worker: u.worker,
                    in_port: u.in_port,
                    kind: u.kind,
                    frame: u.frame.bytes().to_vec(),
                });
                // Bounded memory: keep the most recent packet-ins only.
                if self.packet_ins.len() > 4096 {
                    self.packet_ins.pop_front();
                }
                let _ = self.workers[u.worker].ch.frames.push(u.frame);
            }
        }
    }

    fn handle_event(&mut self, e: Event) {
        match e {
            Event::Synced { worker, seq } => {
                self.workers[worker].synced.store(seq, Ordering::Release)
            }
            Event::Evicted { worker, id } => {
                self.stats.evictions += 1;
                let w = &mut self.workers[worker];
                if let Some(mf) = w.mirror.remove(&id) {
                    w.by_match.remove(&mf.m);
                }
            }
            Event::Flows {
                worker,
                flows,
                now_ms,
            } => self.workers[worker].flows = Some((flows, now_ms)),
            Event::Stats { worker, flows } => {
                self.credit(worker, &flows);
                self.stats_pending = self.stats_pending.saturating_sub(1);
                if self.stats_pending == 0 {
                    self.expire();
                }
            }
            Event::PortDown {
                worker,
                port,
                reason,
            } => {
                tracing::warn!(worker, port, %reason, "port went down");
                self.stats.ports_down += 1;
                if let Some(p) = self.env.ports.get_mut(&port) {
                    p.up = false;
                }
                if let Some(r) = self.ports.iter_mut().find(|r| r.no == port) {
                    r.down_reason = Some(reason.clone());
                }
                self.port_event(PortChange::Down, port);
                self.revalidate();
            }
            Event::PortRemoved { .. } => {}
        }
    }

    /// The installed app that owns `cookie`, by slot.
    fn app_owning(&self, cookie: u64) -> Option<usize> {
        self.apps
            .iter()
            .position(|s| s.app.as_deref().is_some_and(|a| a.owns_cookie(cookie)))
    }

    /// Drains every worker's events and upcalls (bounded per call). Returns the work done.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        for wi in 0..self.workers.len() {
            while let Some(e) = self.workers[wi].ch.events.pop() {
                self.handle_event(e);
                n += 1;
            }
            for _ in 0..4096 {
                let Some(u) = self.workers[wi].ch.upcalls.pop() else {
                    break;
                };
                self.handle_upcall(u);
                n += 1;
            }
        }
        if std::mem::take(&mut self.reval_pending) {
            self.revalidate();
        }
        self.flush_backlogs();
        n
    }
}

impl ControllerHandle {
    /// Runs `f` on the controller thread and returns its result.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Controller) -> R + Send + 'static,
    ) -> Result<R, ControlError> {
        let (tx, rx) = channel::bounded(1);
        self.calls
            .send(Box::new(move |c: &mut Controller| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| ControlError::Stopped)?;
        let _ = self.waker.wake();
        rx.recv().map_err(|_| ControlError::Stopped)
    }

    /// Wakes the controller thread (e.g. after queueing work it reads in its loop).
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Waits until every worker has applied everything the controller sent before `seq`.
    pub fn wait_synced(&self, seq: u64, timeout: Duration) -> Result<(), ControlError> {
        let t = Instant::now();
        while !self.synced.iter().all(|s| s.load(Ordering::Acquire) >= seq) {
            if t.elapsed() > timeout {
                return Err(ControlError::SyncTimeout(timeout));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Barrier: returns once every worker has applied every command sent so far.
    pub fn sync(&self) -> Result<(), ControlError> {
        let seq = self.call(|c| c.request_sync())?;
        self.wait_synced(seq, Duration::from_secs(10))
    }

    /// Changes the pipeline / ports, revalidates, and waits until every worker applied it.
    pub fn update<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Pipeline, &mut PortEnv) -> R + Send + 'static,
    ) -> Result<R, ControlError> {
        let r = self.call(move |c| c.update(f))?;
        self.sync()?;
        Ok(r)
    }

    /// Every worker's cached megaflows (synchronised).
    pub fn dump_flows(&self) -> Result<Vec<FlowDump>, ControlError> {
        self.call(|c| c.request_flows())?;
        self.sync()?;
        // The Flows events were queued before the Synced events, and the controller drains
        // events in order, so they have been handled once the sync completed... on the next
        // drain pass: ask through the controller thread, which drains first.
        self.call(|c| {
            c.drain();
            c.dump_flows()
        })
    }
}

/// An interface's MAC address from sysfs (this network namespace's view), if readable.
fn sysfs_mac(ifname: &str) -> Option<[u8; 6]> {
    if ifname.contains('/') || ifname.is_empty() {
        return None;
    }
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok()?;
    let mut m = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// Starts workers (one thread each, configured by `cfgs`) and the controller thread.
pub fn start(
    pipeline: Pipeline,
    env: PortEnv,
    cfgs: Vec<WorkerConfig>,
) -> Result<Running, ControlError> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let notifier = Notifier::new(waker.clone());
    let (calls_tx, calls_rx) = channel::unbounded::<Call>();
    let mut workers = Vec::new();
    let mut synced = Vec::new();
    for (i, mut cfg) in cfgs.into_iter().enumerate() {
        cfg.id = i;
        let ch = WorkerChannels::new(&cfg, notifier.clone());
        let name = format!("strato-w{i}");
        let wk = Worker::new(cfg, ch.clone());
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || wk.run())?;
        let s = Arc::new(AtomicU64::new(0));
        synced.push(s.clone());
        workers.push(WorkerLink {
            ch,
            mirror: HashMap::new(),
            by_match: HashMap::new(),
            backlog: VecDeque::new(),
            synced: s,
            flows: None,
            thread: Some(thread),
        });
    }
    let ctl = Controller {
        pipeline,
        env,
        workers,
        next_id: 0,
        seq: 0,
        stats: ControllerStats::default(),
        packet_ins: VecDeque::new(),
        notifier,
        ports: Vec::new(),
        apps: Vec::new(),
        reval_pending: false,
        started: Instant::now(),
        stats_pending: 0,
        stop: false,
        registry: poll.registry().try_clone()?,
        tokens: Tokens::default(),
        last_app_id: 0,
    };
    let thread = std::thread::Builder::new()
        .name("strato-ctl".into())
        .spawn(move || controller_loop(ctl, &mut poll, calls_rx))?;
    Ok(Running {
        handle: ControllerHandle {
            calls: calls_tx,
            waker,
            synced: Arc::new(synced),
        },
        thread: Some(thread),
    })
}

fn controller_loop(mut c: Controller, poll: &mut Poll, calls: Receiver<Call>) {
    let mut events = Events::with_capacity(256);
    let mut ready: Vec<Readiness> = Vec::new();
    let mut last_tick = Instant::now();
    loop {
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            c.tick();
        }
        c.notifier.clear();
        let mut work = c.drain();
        while let Ok(f) = calls.try_recv() {
            f(&mut c);
            work += 1;
        }
        let (apps_busy, timer) = c.run_apps(&ready);
        let next_timer = timer.unwrap_or(Duration::from_millis(100));
        ready.clear();
        c.revalidate_if_pending();
        c.flush_backlogs();
        if c.stop {
            break;
        }
        let pending = c.workers.iter().any(|w| !w.backlog.is_empty());
        // Sleep until a worker, a caller or a socket wakes us; poll briefly while backlogs
        // wait for room in a worker's queue or OpenFlow work is left over.
        let timeout = if work > 0 {
            Duration::ZERO
        } else if pending || apps_busy {
            Duration::from_micros(200)
        } else {
            next_timer.min(Duration::from_millis(100))
        };
        let _ = poll.poll(&mut events, Some(timeout));
        for e in events.iter() {
            if e.token() != WAKE {
                ready.push((
                    e.token(),
                    e.is_readable() || e.is_read_closed() || e.is_error(),
                    e.is_writable() || e.is_write_closed(),
                ));
            }
        }
    }
    for i in 0..c.apps.len() {
        c.with_app(i, |a, c| a.shutdown(c));
    }
    // Dropping `c` stops and joins the workers (also if this thread panics).
}

/// How long shutdown waits for workers to take their Stop command and exit.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

impl Drop for Controller {
    /// Stops every worker (after the commands already queued for it) and joins it, so every
    /// port is closed and every XDP program removed, however the controller thread ends. Bounded:
    /// a worker that died is skipped, and nothing waits longer than `STOP_DEADLINE` (5 s).
    fn drop(&mut self) {
        let deadline = Instant::now() + STOP_DEADLINE;
        for w in &mut self.workers {
            w.backlog.push_back(Command::Stop);
        }
        loop {
            let mut waiting = false;
            for w in &mut self.workers {
                if w.thread.as_ref().is_none_or(|t| t.is_finished()) {
                    w.backlog.clear();
                    continue;
                }
                while let Some(c) = w.backlog.pop_front() {
                    if let Err(c) = w.ch.cmds.push(c) {
                        w.backlog.push_front(c);
                        waiting = true;
                        break;
                    }
                }
            }
            if !waiting || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        for (i, w) in self.workers.iter_mut().enumerate() {
            let Some(t) = w.thread.take() else { continue };
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if t.is_finished() {
                if t.join().is_err() {
                    tracing::error!(worker = i, "worker thread panicked");
                }
            } else {
                tracing::error!(worker = i, "worker did not stop within {STOP_DEADLINE:?}");
            }
        }
    }
}

impl Running {
    /// Stops the controller and every worker, and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.handle.call(|c| c.stop = true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}
