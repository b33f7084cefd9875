//! Ports a worker polls, by enum dispatch (no `dyn` on the hot path): memory ports today
//! ([`memory`]); AF_XDP and tap ports join [`PortKind`].
//!
//! Contract of every port kind (`rx_burst` / `tx` with these signatures):
//! - `rx_burst(&mut self, pool, out) -> RxBurst`: moves up to [`BURST`] received frames into pool
//!   buffers and writes their indices to `out`; a frame that does not fit a buffer is dropped and
//!   counted in `oversize`; an empty pool stops the burst (`no_buffer`), leaving frames queued in
//!   the port where it can. A fatal error (the interface went away) is reported in `error`.
//! - `tx(&mut self, pool, bufs) -> usize`: transmits a prefix of `bufs` (frames in pool buffers)
//!   and returns its length; what it refuses (ring full) is counted by the caller as `TxFull`. It
//!   never blocks and never frees buffers (the caller does). One syscall per call at most.
//! - [`Port`] adds what is common: the transmit queue flushed once per burst, per-port counters,
//!   and the up/down state (a down port neither receives nor transmits; a fatal error takes a
//!   port down and is kept in [`Port::down_reason`]).

pub mod afxdp;
pub mod memory;
pub mod tap;

pub use memory::{Frame, FrameRing, MemPort, MemSink, MemSource, RingFull};

use crate::buf::BufPool;
use crate::stats::{PortCounters, SharedPortStats};
use std::sync::Arc;
use strato_flowtable::PortNo;

/// Frames per receive burst (as Open vSwitch and VPP).
pub const BURST: usize = 32;
/// Highest port number (OpenFlow 1.0's OFPP_MAX): workers index ports by number.
pub const MAX_PORT_NO: PortNo = 0xff00;
/// Buffers a port may hold queued for transmit before it must flush.
pub const TX_QUEUE: usize = 2 * BURST;

/// A port kind's fatal error: the port goes down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

/// The kinds of port.
pub enum PortKind {
    /// In-memory rings (tests, benchmark).
    Memory(MemPort),
    /// An AF_XDP socket on a kernel interface (veths, NICs).
    AfXdp(Box<afxdp::AfXdpPort>),
    /// A tap device (a VM's NIC).
    Tap(tap::TapPort),
}

/// Result of one receive burst.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxBurst {
    /// Buffers filled (indices written to the output array).
    pub n: usize,
    /// Frames dropped because they did not fit a buffer.
    pub oversize: u32,
    /// True when the pool ran out before the port did.
    pub no_buffer: bool,
    /// A fatal error: the port goes down.
    pub error: Option<PortError>,
}

/// A port as a worker holds it.
pub struct Port {
    /// Datapath port number.
    pub no: PortNo,
    /// Name (for `show` and logs).
    pub name: String,
    /// The implementation.
    pub kind: PortKind,
    /// Up: a down port neither receives nor transmits.
    pub up: bool,
    /// Why the port went down by itself (a fatal port error), if it did.
    pub down_reason: Option<PortError>,
    /// Set when the port went down by itself and the worker has not reported it yet.
    pub down_pending: bool,
    /// Frames other workers send to this port (cross-worker transmit), drained by the owner.
    pub handoff: Option<Arc<FrameRing>>,
    /// Counters (owned by the worker).
    pub counters: PortCounters,
    /// Published counters.
    pub shared: Arc<SharedPortStats>,
    txq: [u32; TX_QUEUE],
    txn: usize,
}

impl Port {
    /// A new port.
    pub fn new(no: PortNo, name: impl Into<String>, kind: PortKind) -> Port {
        Port {
            no,
            name: name.into(),
            kind,
            up: true,
            down_reason: None,
            down_pending: false,
            handoff: None,
            counters: PortCounters::default(),
            shared: Arc::new(SharedPortStats::default()),
            txq: [0; TX_QUEUE],
            txn: 0,
        }
    }

    /// Receives up to `BURST` frames into pool buffers.
    #[inline]
    pub fn rx_burst(&mut self, pool: &mut BufPool, out: &mut [u32; BURST]) -> RxBurst {
        if !self.up {
            return RxBurst::default();
        }
        let mut r = match &mut self.kind {
            PortKind::Memory(m) => m.rx_burst(pool, out),
            PortKind::AfXdp(x) => x.rx_burst(pool, out),
            PortKind::Tap(t) => t.rx_burst(pool, out),
        };
        if let Some(e) = r.error.take() {
            self.go_down(e);
        }
        self.counters.rx_packets += r.n as u64;
        for &b in &out[..r.n] {
            self.counters.rx_bytes += pool.get(b).len() as u64;
        }
        r
    }

    /// Takes the port down after a fatal error.
    pub fn go_down(&mut self, e: PortError) {
        self.up = false;
        self.down_reason = Some(e);
        self.down_pending = true;
    }

    /// Queues a buffer for transmission; flushes first when the queue is full. Returns the
    /// number of frames the port refused (already freed).
    #[inline(always)]
    pub fn send(&mut self, pool: &mut BufPool, b: u32) -> u32 {
        let mut refused = 0;
        if self.txn == TX_QUEUE {
            refused = self.flush(pool);
        }
        self.txq[self.txn] = b;
        self.txn += 1;
        refused
    }

    /// True when frames are queued.
    #[inline(always)]
    pub fn has_pending(&self) -> bool {
        self.txn != 0
    }

    /// Transmits every queued buffer and returns them to the pool. Returns the number of frames
    /// the port refused (counted in `tx_dropped`).
    #[inline]
    pub fn flush(&mut self, pool: &mut BufPool) -> u32 {
        let n = self.txn;
        self.txn = 0;
        let sent = if self.up {
            match &mut self.kind {
                PortKind::Memory(m) => m.tx(pool, &self.txq[..n]),
                PortKind::AfXdp(x) => x.tx(pool, &self.txq[..n]),
                PortKind::Tap(t) => t.tx(pool, &self.txq[..n]),
            }
        } else {
            0
        };
        self.counters.tx_packets += sent as u64;
        for &b in &self.txq[..sent] {
            self.counters.tx_bytes += pool.get(b).len() as u64;
        }
        for &b in &self.txq[..n] {
            pool.free(b);
        }
        let refused = (n - sent) as u32;
        self.counters.tx_dropped += refused as u64;
        refused
    }

    /// Publishes counters.
    pub fn publish(&self) {
        self.shared.publish(&self.counters);
    }
}
