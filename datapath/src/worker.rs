//! The worker: one pinned thread that polls its ports and runs the batch pipeline
//! rx burst -> extract -> EMC -> SMC -> megaflow classifier -> actions, or upcall on a miss.
//!
//! Contract:
//! - A worker owns its ports, buffer pool and caches; nothing on the per-packet path allocates,
//!   locks or makes a syscall (ports batch their own I/O per burst).
//! - The controller talks to it only through the [`crate::dpif`] seam ([`WorkerChannels`]):
//!   commands in (a bounded lock-free queue, applied between bursts, in order), upcalls and
//!   events out (bounded lock-free queues; a full upcall queue is a counted drop, never a
//!   block). Frames for upcalls come from a recycled pool of [`Frame`] slots.
//! - Versions: every megaflow carries the pipeline version it was translated against. After a
//!   [`Command::Revalidate`] to version V, an entry with a version below V is never used: a hit
//!   on it counts as `stale_hits` and goes up as a miss. [`Command::Sync`] is acknowledged only
//!   after every earlier command has been applied, so a controller that waits for it knows that
//!   every packet the worker takes afterwards sees the new state (OpenFlow barrier semantics).
//! - Every packet ends transmitted, handed to the controller, or dropped under a
//!   [`DropReason`].
//! - There is one pipeline: a received burst, the packets a tunnel pop recirculates, and a
//!   packet the controller re-injects ([`Command::Execute`]) all go through the same batch
//!   stages (the last as a batch of one).

use crate::buf::BufPool;
use crate::exec;
use crate::extract::{extract, TunnelMeta};
use crate::port::{Frame, FrameRing, Port, BURST, MAX_PORT_NO};
use crate::stats::{DropReason, WorkerCounters};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_flowtable::emc::EMC_ENTRIES;
use strato_flowtable::flowcache::{FlowCache, FlowCacheConfig};
use strato_flowtable::megaflow::{FlowRef, Insert, MegaflowCache};
use strato_flowtable::tunnel::VXLAN_PORT;
use strato_flowtable::{DpAction, PacketKey, PortNo};

// The seam's types, where the controller found them before `dpif` existed.
pub use crate::dpif::{
    Command, DpFlowInfo, Event, Notifier, RevalOp, Upcall, UpcallKind, WorkerChannels,
};

/// Deepest recirculation (tunnel inside tunnel ...) before a packet is dropped.
pub const MAX_RECIRC: u8 = 4;
const NO_PORT: u16 = u16::MAX;

/// How a worker waits when its ports are idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Spin forever (lowest latency; burns the core, as a DPDK PMD does).
    BusyPoll,
    /// Spin a little, then sleep with exponential backoff up to `max_sleep_us`.
    Backoff {
        /// Longest sleep between polls when idle.
        max_sleep_us: u32,
    },
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Worker index (appears in upcalls and events).
    pub id: usize,
    /// Core to pin to (`None`: not pinned).
    pub core: Option<usize>,
    /// Packet buffers in the pool.
    pub buffers: usize,
    /// Exact-match cache entries (power of two).
    pub emc_entries: usize,
    /// Insert into the EMC on one hit in N (1: always). Open vSwitch's default is 100: it keeps
    /// the EMC from thrashing when there are many more flows than entries.
    pub emc_insert_inv_prob: u32,
    /// Signature-match cache entries (power of two; 0 disables the SMC).
    pub smc_entries: usize,
    /// Megaflows the classifier holds before evicting.
    pub megaflow_capacity: usize,
    /// Command queue depth.
    pub cmd_queue: usize,
    /// Upcall queue depth (and frames in the upcall pool).
    pub upcall_queue: usize,
    /// Event queue depth.
    pub event_queue: usize,
    /// Idle behaviour.
    pub idle: IdlePolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: 0,
            core: None,
            buffers: 8192,
            emc_entries: EMC_ENTRIES,
            emc_insert_inv_prob: 100,
            smc_entries: 1 << 20,
            megaflow_capacity: 200_000,
            cmd_queue: 8192,
            upcall_queue: 1024,
            event_queue: 4096,
            idle: IdlePolicy::Backoff { max_sleep_us: 500 },
        }
    }
}

/// Where the packets of a batch came from.
#[derive(Clone, Copy)]
enum Ingress {
    /// All received on one port.
    Port(PortNo),
    /// Recirculated after a tunnel pop at this depth: per packet, the tunnel port and outer
    /// metadata are in the worker's `rports[level]` / `rmeta[level]`.
    Recirc(usize),
}

/// What executing an action list left to do.
enum Outcome {
    Done,
    Recirc { port: PortNo, meta: TunnelMeta },
}

/// Everything but the caches: split so actions borrowed from the cache can run against it.
struct Io {
    id: usize,
    pool: BufPool,
    ports: Vec<Port>,
    port_index: Vec<u16>,
    /// Handoff rings of ports other workers own, by port number.
    remote: Vec<Option<Arc<FrameRing>>>,
    counters: WorkerCounters,
    ch: Arc<WorkerChannels>,
    notify: bool,
    pending_events: VecDeque<Event>,
    now_ms: u64,
}

/// A worker (see the module docs). Drive it with [`Worker::run`] on its own thread, or call
/// [`Worker::poll_once`] from a harness.
pub struct Worker {
    cfg: WorkerConfig,
    io: Io,
    c: FlowCache,
    /// Keys of the current burst (kept between bursts: the extractor relies on words outside
    /// a key's map being zero, which a previous extraction guarantees, so nothing is zeroed).
    /// Between bursts slot 0 holds the key of a packet the controller re-injects.
    keys: Box<[PacketKey; BURST]>,
    /// Per recirculation level: the tunnel port and outer metadata of each gathered packet
    /// (kept here, not on the stack, so a burst without tunnels pays nothing for them).
    rports: Box<[[PortNo; BURST]; MAX_RECIRC as usize]>,
    rmeta: Box<[[TunnelMeta; BURST]; MAX_RECIRC as usize]>,
    loops: u64,
    start: Instant,
    stopped: bool,
}

impl Worker {
    /// A worker with no ports.
    pub fn new(cfg: WorkerConfig, ch: Arc<WorkerChannels>) -> Worker {
        Worker {
            io: Io {
                id: cfg.id,
                pool: BufPool::new(cfg.buffers),
                ports: Vec::new(),
                port_index: Vec::new(),
                remote: Vec::new(),
                counters: WorkerCounters::default(),
                ch,
                notify: false,
                pending_events: VecDeque::new(),
                now_ms: 0,
            },
            c: FlowCache::new(&FlowCacheConfig {
                emc_entries: cfg.emc_entries,
                smc_entries: cfg.smc_entries,
                megaflow_capacity: cfg.megaflow_capacity,
                emc_insert_inv_prob: cfg.emc_insert_inv_prob,
                seed: 0x9e37_79b9 ^ cfg.id as u32,
            }),
            keys: Box::new([PacketKey::default(); BURST]),
            rports: Box::new([[0; BURST]; MAX_RECIRC as usize]),
            rmeta: Box::new([[TunnelMeta::default(); BURST]; MAX_RECIRC as usize]),
            loops: 0,
            start: Instant::now(),
            stopped: false,
            cfg,
        }
    }

    /// Adds a port directly (before the worker runs; at runtime use [`Command::AddPort`]).
    pub fn add_port(&mut self, port: Port) {
        self.io.add_port(Box::new(port));
    }

    /// A port, by number.
    pub fn port_mut(&mut self, no: PortNo) -> Option<&mut Port> {
        let i = *self.io.port_index.get(no as usize)?;
        self.io.ports.get_mut(i as usize)
    }

    /// The worker's counters.
    pub fn counters(&self) -> &WorkerCounters {
        &self.io.counters
    }

    /// Resets worker and port counters (the benchmark does after warm-up).
    pub fn reset_counters(&mut self) {
        self.io.counters = WorkerCounters::default();
        for p in &mut self.io.ports {
            p.counters = Default::default();
        }
    }

    /// The megaflow cache (read-only).
    pub fn cache(&self) -> &MegaflowCache {
        self.c.megaflows()
    }

    /// Current pipeline version.
    pub fn version(&self) -> u64 {
        self.c.version()
    }

    /// Free buffers in the pool (frame accounting: equals the pool size when idle).
    pub fn free_buffers(&self) -> usize {
        self.io.pool.free_count()
    }

    /// Runs until [`Command::Stop`], pinned to the configured core.
    pub fn run(mut self) {
        if let Some(core) = self.cfg.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                eprintln!(
                    "strato: worker {}: could not pin to core {core}; running unpinned",
                    self.cfg.id
                );
            }
        }
        let mut idle = 0u32;
        while !self.stopped {
            let work = self.poll_once();
            if work > 0 {
                idle = 0;
                continue;
            }
            idle = idle.saturating_add(1);
            if let IdlePolicy::Backoff { max_sleep_us } = self.cfg.idle {
                if idle > 64 {
                    let us = (1u32 << ((idle - 64) / 16).min(10)).min(max_sleep_us.max(1));
                    self.publish();
                    std::thread::sleep(Duration::from_micros(us as u64));
                }
            } else {
                std::hint::spin_loop();
            }
        }
        self.publish();
    }

    /// One pass: apply commands, poll every port once, flush transmit queues. Returns the
    /// number of packets received plus commands applied (0: idle).
    pub fn poll_once(&mut self) -> usize {
        self.loops += 1;
        if self.loops & 0xff == 0 {
            self.io.now_ms = self.start.elapsed().as_millis() as u64;
        }
        if self.loops & 0x3fff == 0 {
            self.c.megaflows_mut().rank();
            self.publish();
        }
        let mut work = self.apply_commands();
        for pi in 0..self.io.ports.len() {
            work += self.poll_port(pi);
        }
        work += self.io.drain_handoffs();
        self.io.flush_all();
        self.io.report_down_ports();
        self.io.flush_events();
        if self.io.notify {
            self.io.notify = false;
            self.io.ch.notifier.notify();
        }
        work
    }

    /// Publishes counters for other threads.
    pub fn publish(&mut self) {
        self.io.ch.stats.publish(&self.io.counters);
        for p in &self.io.ports {
            p.publish();
        }
    }

    /// One receive burst through the batch pipeline. Each stage runs over the whole burst and
    /// prefetches what the next stage touches, so cache misses overlap instead of adding up
    /// (the VPP / Open vSwitch batching discipline): extract all -> prefetch EMC -> EMC ->
    /// prefetch SMC -> SMC candidates -> prefetch megaflows -> verify -> classifier for the
    /// rest -> execute in arrival order.
    #[inline]
    fn poll_port(&mut self, pi: usize) -> usize {
        let mut bufs = [0u32; BURST];
        let port = &mut self.io.ports[pi];
        let in_port = port.no;
        let r = port.rx_burst(&mut self.io.pool, &mut bufs);
        let c = &mut self.io.counters;
        if r.oversize > 0 {
            c.drop_n(DropReason::Oversize, r.oversize as u64);
        }
        if r.no_buffer {
            // The frames wait in the port (ring, UMEM or kernel queue): a stall, not a drop.
            c.rx_stalls += 1;
        }
        let n = r.n;
        if n == 0 {
            return 0;
        }
        c.rx_packets += n as u64;
        c.busy_loops += 1;
        self.process_batch(&bufs[..n], Ingress::Port(in_port), 0);
        n
    }

    /// Runs up to [`BURST`] packets through the stages (see [`Worker::poll_port`]). Tunnel pops
    /// are collected and go through the stages again as one batch (recirculation), up to
    /// [`MAX_RECIRC`] deep.
    #[inline]
    fn process_batch(&mut self, bufs: &[u32], ingress: Ingress, depth: u8) {
        let n = bufs.len();
        // Stage 1: keys. A frame that does not extract is dropped here.
        let mut live = [false; BURST];
        for i in 0..n {
            let (in_port, tun) = match ingress {
                Ingress::Port(p) => (p, None),
                Ingress::Recirc(l) => (self.rports[l][i], Some(&self.rmeta[l][i])),
            };
            match extract(
                self.io.pool.get(bufs[i]).data(),
                in_port,
                tun,
                &mut self.keys[i],
            ) {
                Ok(info) => {
                    live[i] = true;
                    self.io.counters.malformed_l3 += info.malformed as u64;
                }
                Err(r) => {
                    self.io.counters.drop(r);
                    self.io.pool.free(bufs[i]);
                }
            }
        }

        // Stages 2-4: the flow cache, level by level over the burst (EMC, SMC, classifier).
        let mut found: [Option<FlowRef>; BURST] = [None; BURST];
        self.c
            .lookup_batch(&self.keys, &live, n, &mut found, &mut self.io.counters);

        // Stage 5: actions (or upcall), in arrival order. Tunnel pops are gathered.
        let mut rbufs = [0u32; BURST];
        let mut nr = 0;
        let level = depth as usize;
        for i in 0..n {
            if !live[i] {
                continue;
            }
            let (in_port, tun) = match ingress {
                Ingress::Port(p) => (p, None),
                Ingress::Recirc(l) => (self.rports[l][i], Some(&self.rmeta[l][i])),
            };
            match found[i] {
                Some(fr) => {
                    if let Outcome::Recirc { port, meta } = self.run_flow(bufs[i], in_port, i, fr) {
                        rbufs[nr] = bufs[i];
                        if let (Some(p), Some(m)) =
                            (self.rports.get_mut(level), self.rmeta.get_mut(level))
                        {
                            p[nr] = port;
                            m[nr] = meta;
                        }
                        nr += 1;
                    }
                }
                None => {
                    self.io.counters.misses += 1;
                    self.io
                        .upcall(bufs[i], in_port, tun, &self.keys[i], UpcallKind::Miss);
                    self.io.pool.free(bufs[i]);
                }
            }
        }
        if nr > 0 {
            self.recirculate(&rbufs[..nr], level, depth);
        }
    }

    /// Sends the packets a tunnel pop at `depth` gathered (their tunnel ports and outer
    /// metadata in `rports[level]` / `rmeta[level]`) through the stages again as one batch, or
    /// drops them past [`MAX_RECIRC`].
    #[inline]
    fn recirculate(&mut self, bufs: &[u32], level: usize, depth: u8) {
        self.io.counters.recirculations += bufs.len() as u64;
        if depth + 1 >= MAX_RECIRC {
            self.io
                .counters
                .drop_n(DropReason::RecircLimit, bufs.len() as u64);
            for &b in bufs {
                self.io.pool.free(b);
            }
        } else {
            self.process_batch(bufs, Ingress::Recirc(level), depth + 1);
        }
    }

    /// Counts a megaflow hit and runs its actions on buffer `b`, whose key is in batch slot
    /// `i`. A tunnel pop is returned for the caller to recirculate.
    #[inline(always)]
    fn run_flow(&mut self, b: u32, in_port: PortNo, i: usize, fr: FlowRef) -> Outcome {
        let pk = &self.keys[i];
        let len = self.io.pool.get(b).len() as u64;
        let now = self.io.now_ms;
        match self.c.megaflows_mut().get_mut(fr) {
            Some(e) => {
                e.packets += 1;
                e.bytes += len;
                e.used = now;
                self.io.execute(b, in_port, pk, &e.actions)
            }
            None => {
                // Cannot happen: the handle was validated in this burst and caches change only
                // between bursts. Count rather than panic.
                self.io.counters.drop(DropReason::ActionFailed);
                self.io.pool.free(b);
                Outcome::Done
            }
        }
    }

    fn apply_commands(&mut self) -> usize {
        let mut n = 0;
        while n < 1024 {
            let Some(cmd) = self.io.ch.cmds.pop() else {
                break;
            };
            n += 1;
            self.io.counters.commands += 1;
            self.apply(cmd);
            if self.stopped {
                break;
            }
        }
        n
    }

    fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::AddPort(p) => self.io.add_port(p),
            Command::DelPort(no) => {
                if let Some(p) = self.io.del_port(no) {
                    let worker = self.io.id;
                    self.io
                        .pending_events
                        .push_back(Event::PortRemoved { worker, port: p });
                }
            }
            Command::SetRemotePort { port, ring } => {
                if port > MAX_PORT_NO {
                    return;
                }
                let i = port as usize;
                if self.io.remote.len() <= i {
                    self.io.remote.resize(i + 1, None);
                }
                self.io.remote[i] = ring;
            }
            Command::SetPortUp { port, up } => {
                if let Some(p) = self.port_mut(port) {
                    p.up = up;
                }
            }
            Command::Install {
                id,
                m,
                actions,
                version,
            } => match self
                .c
                .megaflows_mut()
                .insert(id, *m, actions, version, self.io.now_ms)
            {
                Insert::Inserted {
                    evicted: Some(old), ..
                } => {
                    let worker = self.io.id;
                    self.io
                        .pending_events
                        .push_back(Event::Evicted { worker, id: old });
                }
                Insert::Replaced { old_id, .. } if old_id != id => {
                    // The controller's mirror must forget the id this entry had.
                    let worker = self.io.id;
                    self.io
                        .pending_events
                        .push_back(Event::Evicted { worker, id: old_id });
                }
                Insert::Inserted { evicted: None, .. } | Insert::Replaced { .. } => {}
            },
            Command::Revalidate { version, ops } => {
                for (id, op) in ops {
                    match op {
                        RevalOp::Keep => {
                            self.c.megaflows_mut().update(id, None, version);
                        }
                        RevalOp::Update(a) => {
                            self.c.megaflows_mut().update(id, Some(a), version);
                        }
                        RevalOp::Delete => {
                            self.c.megaflows_mut().remove(id);
                        }
                    }
                }
                self.c.advance_version(version);
            }
            Command::Remove(id) => {
                self.c.megaflows_mut().remove(id);
            }
            Command::FlushCaches => self.c.flush(),
            Command::Execute {
                in_port,
                tun,
                frame,
                actions,
            } => {
                self.io.counters.executed += 1;
                self.execute_frame(in_port, tun, &frame, &actions);
                let _ = self.io.ch.frames.push(frame);
            }
            Command::DumpFlows => {
                let flows = self
                    .c
                    .megaflows()
                    .iter()
                    .map(|e| DpFlowInfo {
                        id: e.id,
                        m: e.m,
                        actions: e.actions.clone(),
                        version: e.version,
                        packets: e.packets,
                        bytes: e.bytes,
                        used_ms: e.used,
                    })
                    .collect();
                let (worker, now_ms) = (self.io.id, self.io.now_ms);
                self.io.pending_events.push_back(Event::Flows {
                    worker,
                    flows,
                    now_ms,
                });
            }
            Command::ReportStats => {
                let flows = self
                    .c
                    .megaflows()
                    .iter()
                    .map(|e| (e.id, e.packets, e.bytes, e.used))
                    .collect();
                let worker = self.io.id;
                self.io
                    .pending_events
                    .push_back(Event::Stats { worker, flows });
            }
            Command::Sync(seq) => {
                self.publish();
                let worker = self.io.id;
                self.io
                    .pending_events
                    .push_back(Event::Synced { worker, seq });
            }
            Command::Stop => self.stopped = true,
        }
    }

    fn execute_frame(
        &mut self,
        in_port: PortNo,
        tun: Option<TunnelMeta>,
        frame: &Frame,
        actions: &[DpAction],
    ) {
        let Some(b) = self.io.pool.alloc() else {
            self.io.counters.drop(DropReason::NoBuffer);
            return;
        };
        if self.io.pool.get_mut(b).fill(frame.bytes()).is_err() {
            self.io.counters.drop(DropReason::Oversize);
            self.io.pool.free(b);
            return;
        }
        // Between bursts the batch's key slots are free: slot 0 takes this packet's key.
        let pk = &mut self.keys[0];
        if let Err(r) = extract(self.io.pool.get(b).data(), in_port, tun.as_ref(), pk) {
            self.io.counters.drop(r);
            self.io.pool.free(b);
            return;
        }
        if let Outcome::Recirc { port, meta } = self.io.execute(b, in_port, pk, actions) {
            // A tunnel pop: on through the pipeline as a batch of one.
            self.rports[0][0] = port;
            self.rmeta[0][0] = meta;
            self.recirculate(&[b], 0, 0);
        }
        self.io.flush_all();
    }
}

impl Io {
    fn add_port(&mut self, p: Box<Port>) {
        let no = p.no as usize;
        if p.no > MAX_PORT_NO {
            // Ports are indexed by number; the controller validates numbers, so this is a
            // defence: hand the port straight back rather than grow the index.
            self.pending_events.push_back(Event::PortRemoved {
                worker: self.id,
                port: p,
            });
            return;
        }
        if self.port_index.len() <= no {
            self.port_index.resize(no + 1, NO_PORT);
        }
        if self.port_index[no] != NO_PORT {
            // Replacing a port with the same number: the old one leaves first.
            if let Some(old) = self.del_port(p.no) {
                self.pending_events.push_back(Event::PortRemoved {
                    worker: self.id,
                    port: old,
                });
            }
        }
        self.ports.push(*p);
        self.reindex();
    }

    fn del_port(&mut self, no: PortNo) -> Option<Box<Port>> {
        let i = *self.port_index.get(no as usize)?;
        if i == NO_PORT {
            return None;
        }
        let mut p = self.ports.remove(i as usize);
        // Frames still queued for it, or handed over by other workers, are dropped and counted.
        let refused = p.flush(&mut self.pool);
        self.counters.drop_n(DropReason::NoSuchPort, refused as u64);
        if let Some(ring) = &p.handoff {
            ring.close();
            let lost = ring.drain().len();
            self.counters.drop_n(DropReason::NoSuchPort, lost as u64);
        }
        p.publish();
        self.reindex();
        Some(Box::new(p))
    }

    fn reindex(&mut self) {
        self.port_index.iter_mut().for_each(|x| *x = NO_PORT);
        for (i, p) in self.ports.iter().enumerate() {
            self.port_index[p.no as usize] = i as u16;
        }
    }

    #[inline(always)]
    fn port_idx(&self, no: PortNo) -> Option<usize> {
        match self.port_index.get(no as usize) {
            Some(&i) if i != NO_PORT => Some(i as usize),
            _ => None,
        }
    }

    /// Queues `b` on port `no`, or drops it (counted).
    #[inline(always)]
    fn send(&mut self, no: PortNo, b: u32) {
        match self.port_idx(no) {
            Some(i) => {
                let refused = self.ports[i].send(&mut self.pool, b);
                if refused > 0 {
                    self.counters.drop_n(DropReason::TxFull, refused as u64);
                }
            }
            None => self.send_remote(no, b),
        }
    }

    /// Output to a port another worker owns: a copy into its handoff ring (cold path).
    #[inline(never)]
    fn send_remote(&mut self, no: PortNo, b: u32) {
        match self.remote.get(no as usize) {
            Some(Some(ring)) => {
                if ring.push(self.pool.get(b).data()).is_err() {
                    self.counters.drop(DropReason::TxFull);
                }
            }
            _ => self.counters.drop(DropReason::NoSuchPort),
        }
        self.pool.free(b);
    }

    /// Moves frames other workers handed to this worker's ports into their transmit queues.
    fn drain_handoffs(&mut self) -> usize {
        let mut n = 0;
        for pi in 0..self.ports.len() {
            let Some(ring) = self.ports[pi].handoff.clone() else {
                continue;
            };
            for _ in 0..BURST {
                if ring.is_empty() {
                    break;
                }
                let Some(b) = self.pool.alloc() else {
                    self.counters.drop(DropReason::NoBuffer);
                    break;
                };
                match ring.pop_into(self.pool.get_mut(b)) {
                    Some(true) => {
                        n += 1;
                        let refused = self.ports[pi].send(&mut self.pool, b);
                        self.counters.drop_n(DropReason::TxFull, refused as u64);
                    }
                    Some(false) => {
                        self.counters.drop(DropReason::Oversize);
                        self.pool.free(b);
                    }
                    None => {
                        self.pool.free(b);
                        break;
                    }
                }
            }
        }
        n
    }

    /// The buffer to emit for an output: the packet itself when nothing follows, else a copy.
    #[inline(always)]
    fn emit_buf(&mut self, b: u32, last: bool) -> Option<u32> {
        if last {
            return Some(b);
        }
        let c = self.pool.clone_buf(b);
        if c.is_none() {
            self.counters.drop(DropReason::NoBuffer);
        }
        c
    }

    /// Runs an action list on buffer `b` (consumed unless a recirculation is returned). The
    /// commonest lists, a single output and a lone tunnel pop, take a short path.
    #[inline(always)]
    fn execute(
        &mut self,
        b: u32,
        in_port: PortNo,
        pk: &PacketKey,
        actions: &[DpAction],
    ) -> Outcome {
        match actions {
            [DpAction::Output(p)] => {
                self.send(*p, b);
                return Outcome::Done;
            }
            [DpAction::TunnelPop { port }] => return self.tunnel_pop(b, *port),
            _ => {}
        }
        self.execute_list(b, in_port, pk, actions)
    }

    /// The general action-list interpreter behind [`Io::execute`].
    #[inline(never)]
    fn execute_list(
        &mut self,
        b: u32,
        in_port: PortNo,
        pk: &PacketKey,
        actions: &[DpAction],
    ) -> Outcome {
        let n = actions.len();
        let mut emitted = false;
        for (i, a) in actions.iter().enumerate() {
            let last = i + 1 == n;
            match a {
                DpAction::Output(p) => {
                    emitted = true;
                    if let Some(c) = self.emit_buf(b, last) {
                        self.send(*p, c);
                    }
                    if last {
                        return Outcome::Done;
                    }
                }
                DpAction::TunnelPush(t) => {
                    emitted = true;
                    if let Some(c) = self.emit_buf(b, last) {
                        match exec::tunnel_push(self.pool.get_mut(c), t, pk.hash) {
                            Ok(()) => self.send(t.out_port, c),
                            Err(r) => {
                                self.counters.drop(r);
                                self.pool.free(c);
                            }
                        }
                    }
                    if last {
                        return Outcome::Done;
                    }
                }
                DpAction::PushVlan { tpid, tci } => {
                    if let Err(r) = exec::push_vlan(self.pool.get_mut(b), *tpid, *tci) {
                        return self.fail(b, r);
                    }
                }
                DpAction::PopVlan => exec::pop_vlan(self.pool.get_mut(b)),
                DpAction::Set { field, value } => {
                    if let Err(r) = exec::set_field(self.pool.get_mut(b), *field, *value) {
                        return self.fail(b, r);
                    }
                }
                DpAction::DecTtl => {
                    if let Err(r) = exec::dec_ttl(self.pool.get_mut(b)) {
                        return self.fail(b, r);
                    }
                }
                DpAction::TunnelPop { port } => return self.tunnel_pop(b, *port),
                DpAction::Userspace {
                    reason,
                    max_len,
                    cookie,
                    table,
                    metadata,
                } => {
                    emitted = true;
                    let kind = UpcallKind::Userspace {
                        reason: *reason,
                        max_len: *max_len,
                        cookie: *cookie,
                        table: *table,
                        metadata: *metadata,
                    };
                    self.userspace(b, in_port, pk, kind);
                }
            }
        }
        if !emitted {
            self.counters.drop(DropReason::Policy);
        }
        self.pool.free(b);
        Outcome::Done
    }

    /// Decapsulates `b` for recirculation as arriving on tunnel port `port`.
    #[inline(always)]
    fn tunnel_pop(&mut self, b: u32, port: PortNo) -> Outcome {
        match exec::tunnel_pop(self.pool.get_mut(b), VXLAN_PORT) {
            Ok(meta) => Outcome::Recirc { port, meta },
            Err(r) => self.fail(b, r),
        }
    }

    #[inline(always)]
    fn fail(&mut self, b: u32, r: DropReason) -> Outcome {
        self.counters.drop(r);
        self.pool.free(b);
        Outcome::Done
    }

    /// A `Userspace` action: a copy goes up with the tunnel metadata the key holds. Cold and
    /// out of line so the action loop does not pay for reading tunnel fields.
    #[cold]
    #[inline(never)]
    fn userspace(&mut self, b: u32, in_port: PortNo, pk: &PacketKey, kind: UpcallKind) {
        let tun = tun_of(pk);
        self.upcall(b, in_port, tun.as_ref(), pk, kind);
    }

    /// Copies buffer `b` into an upcall (the buffer stays with the caller).
    fn upcall(
        &mut self,
        b: u32,
        in_port: PortNo,
        tun: Option<&TunnelMeta>,
        pk: &PacketKey,
        kind: UpcallKind,
    ) {
        let Some(mut frame) = self.ch.frames.pop() else {
            self.counters.drop(DropReason::UpcallQueueFull);
            return;
        };
        frame.set(self.pool.get(b).data());
        let u = Upcall {
            worker: self.id,
            in_port,
            tun: tun.copied(),
            key: *pk,
            kind,
            frame,
        };
        match self.ch.upcalls.push(u) {
            Ok(()) => {
                self.counters.upcalls += 1;
                self.notify = true;
            }
            Err(u) => {
                let _ = self.ch.frames.push(u.frame);
                self.counters.drop(DropReason::UpcallQueueFull);
            }
        }
    }

    #[inline(always)]
    fn flush_all(&mut self) {
        for p in &mut self.ports {
            if p.has_pending() {
                let up = p.up;
                let refused = p.flush(&mut self.pool);
                if refused > 0 {
                    let why = if up {
                        DropReason::TxFull
                    } else {
                        DropReason::PortDown
                    };
                    self.counters.drop_n(why, refused as u64);
                }
            }
        }
    }

    /// Queues a [`Event::PortDown`] for every port that went down by itself since last time.
    #[inline]
    fn report_down_ports(&mut self) {
        for p in &mut self.ports {
            if p.down_pending {
                p.down_pending = false;
                let reason = p
                    .down_reason
                    .as_ref()
                    .map(|e| e.0.clone())
                    .unwrap_or_default();
                self.pending_events.push_back(Event::PortDown {
                    worker: self.id,
                    port: p.no,
                    reason,
                });
            }
        }
    }

    fn flush_events(&mut self) {
        while let Some(e) = self.pending_events.pop_front() {
            if let Err(e) = self.ch.events.push(e) {
                self.pending_events.push_front(e);
                break;
            }
            self.notify = true;
        }
    }
}

/// Tunnel metadata held in a key (for upcalls of decapsulated packets).
fn tun_of(pk: &PacketKey) -> Option<TunnelMeta> {
    use strato_flowtable::Field;
    let k = &pk.key;
    let m = TunnelMeta {
        tun_id: k.get(Field::TunId) as u64,
        ipv4_src: k.get(Field::TunIpv4Src) as u32,
        ipv4_dst: k.get(Field::TunIpv4Dst) as u32,
        ipv6_src: k.get(Field::TunIpv6Src),
        ipv6_dst: k.get(Field::TunIpv6Dst),
    };
    (m != TunnelMeta::default()).then_some(m)
}
