//! Counters: per port (rx/tx packets and bytes) and per worker (cache hits and misses, upcalls,
//! drops by [`DropReason`]).
//!
//! Contract: the worker counts into plain integers it owns (no atomics on the per-packet path)
//! and publishes a snapshot into [`SharedWorkerStats`] between bursts (single writer, relaxed
//! stores); readers on other threads load a snapshot. Every dropped packet is counted under
//! exactly one reason.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use strato_flowtable::flowcache::CacheCounters;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $name:ident = $text:expr ),* $(,)?) => {
        /// Why a packet was dropped. Each indexes a per-worker counter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $( $(#[$doc])* $name ),* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[ $(DropReason::$name),* ];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();
            /// Stable snake_case name (used in `stats` output and JSON).
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$name => $text),* }
            }
        }
    };
}

reasons! {
    /// Shorter than an Ethernet header (14 bytes).
    TruncatedEthernet = "truncated_ethernet",
    /// Larger than a packet buffer.
    Oversize = "oversize",
    /// The worker's buffer pool was empty.
    NoBuffer = "no_buffer",
    /// The flow's actions drop it (explicit drop or no output).
    Policy = "policy",
    /// TTL / hop limit expired on dec_ttl.
    TtlExpired = "ttl_expired",
    /// The upcall queue to the controller was full.
    UpcallQueueFull = "upcall_queue_full",
    /// Outer headers of a tunnel packet were cut short.
    TunnelTruncated = "tunnel_truncated",
    /// Outer IP header of a tunnel packet was invalid (version, IHL, length, checksum,
    /// fragment).
    TunnelBadIp = "tunnel_bad_ip",
    /// Outer UDP header of a tunnel packet was invalid (length or non-zero checksum wrong).
    TunnelBadUdp = "tunnel_bad_udp",
    /// VXLAN header without the I flag.
    VxlanBadFlags = "vxlan_bad_flags",
    /// Recirculation deeper than allowed (tunnel in tunnel in ...).
    RecircLimit = "recirc_limit",
    /// Output to a port this worker does not have.
    NoSuchPort = "no_such_port",
    /// The output port's transmit ring was full.
    TxFull = "tx_full",
    /// Not enough headroom to push headers.
    NoHeadroom = "no_headroom",
    /// An action could not apply to this packet (e.g. set-field on a header it lacks).
    ActionFailed = "action_failed",
    /// The port is administratively or operationally down.
    PortDown = "port_down",
}

/// One worker's counters (owned by the worker thread, plain integers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Packets received from all ports.
    pub rx_packets: u64,
    /// Exact-match cache hits.
    pub emc_hits: u64,
    /// Signature-match cache hits (between EMC and megaflow classifier).
    pub smc_hits: u64,
    /// Megaflow classifier hits.
    pub megaflow_hits: u64,
    /// Lookups that found nothing (each becomes an upcall or a counted drop).
    pub misses: u64,
    /// Upcalls sent to the controller.
    pub upcalls: u64,
    /// Hits on megaflows of an older pipeline version (treated as misses).
    pub stale_hits: u64,
    /// Recirculations (tunnel pops).
    pub recirculations: u64,
    /// Packets whose L3/L4 headers were malformed (processed with an L2-only key).
    pub malformed_l3: u64,
    /// Packets re-injected by the controller.
    pub executed: u64,
    /// Controller commands applied.
    pub commands: u64,
    /// Burst loop iterations that found packets.
    pub busy_loops: u64,
    /// Receive bursts cut short because the buffer pool was empty (frames wait in the port).
    pub rx_stalls: u64,
    /// Drops by reason, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
}

impl WorkerCounters {
    /// Counts one drop.
    #[inline(always)]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// Counts `n` drops.
    #[inline(always)]
    pub fn drop_n(&mut self, r: DropReason, n: u64) {
        self.drops[r as usize] += n;
    }

    /// Drops under one reason.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another worker's counters to these (totals over workers).
    pub fn add(&mut self, o: &WorkerCounters) {
        let (a, b) = (self.scalars(), o.scalars());
        *self = WorkerCounters::from_parts(
            std::array::from_fn(|i| a[i] + b[i]),
            std::array::from_fn(|i| self.drops[i] + o.drops[i]),
        );
    }

    fn scalars(&self) -> [u64; SCALARS] {
        [
            self.rx_packets,
            self.emc_hits,
            self.smc_hits,
            self.megaflow_hits,
            self.misses,
            self.upcalls,
            self.stale_hits,
            self.recirculations,
            self.malformed_l3,
            self.executed,
            self.commands,
            self.busy_loops,
            self.rx_stalls,
        ]
    }

    fn from_parts(s: [u64; SCALARS], drops: [u64; DropReason::COUNT]) -> WorkerCounters {
        WorkerCounters {
            rx_packets: s[0],
            emc_hits: s[1],
            smc_hits: s[2],
            megaflow_hits: s[3],
            misses: s[4],
            upcalls: s[5],
            stale_hits: s[6],
            recirculations: s[7],
            malformed_l3: s[8],
            executed: s[9],
            commands: s[10],
            busy_loops: s[11],
            rx_stalls: s[12],
            drops,
        }
    }
}

/// The flow cache counts its hits straight into the worker's counters.
impl CacheCounters for WorkerCounters {
    #[inline(always)]
    fn emc_hit(&mut self) {
        self.emc_hits += 1;
    }
    #[inline(always)]
    fn smc_hit(&mut self) {
        self.smc_hits += 1;
    }
    #[inline(always)]
    fn megaflow_hit(&mut self) {
        self.megaflow_hits += 1;
    }
    #[inline(always)]
    fn stale_hit(&mut self) {
        self.stale_hits += 1;
    }
}

/// One port's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets the port could not transmit (also counted as a worker drop).
    pub tx_dropped: u64,
}

const SCALARS: usize = 13;

/// Lock-free snapshot of a worker's counters, readable from any thread.
pub struct SharedWorkerStats {
    scalars: [AtomicU64; SCALARS],
    drops: [AtomicU64; DropReason::COUNT],
}

impl Default for SharedWorkerStats {
    fn default() -> Self {
        SharedWorkerStats {
            scalars: std::array::from_fn(|_| AtomicU64::new(0)),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl SharedWorkerStats {
    /// Publishes a snapshot (the worker calls this between bursts).
    pub fn publish(&self, c: &WorkerCounters) {
        for (a, v) in self.scalars.iter().zip(c.scalars()) {
            a.store(v, Relaxed);
        }
        for (a, v) in self.drops.iter().zip(c.drops) {
            a.store(v, Relaxed);
        }
    }

    /// Reads the last published snapshot.
    pub fn load(&self) -> WorkerCounters {
        WorkerCounters::from_parts(
            std::array::from_fn(|i| self.scalars[i].load(Relaxed)),
            std::array::from_fn(|i| self.drops[i].load(Relaxed)),
        )
    }
}

/// Lock-free snapshot of a port's counters.
#[derive(Default)]
pub struct SharedPortStats([AtomicU64; 5]);

impl SharedPortStats {
    /// Publishes a snapshot.
    pub fn publish(&self, c: &PortCounters) {
        for (a, v) in self.0.iter().zip([
            c.rx_packets,
            c.rx_bytes,
            c.tx_packets,
            c.tx_bytes,
            c.tx_dropped,
        ]) {
            a.store(v, Relaxed);
        }
    }
    /// Reads the last snapshot.
    pub fn load(&self) -> PortCounters {
        let v: [u64; 5] = std::array::from_fn(|i| self.0[i].load(Relaxed));
        PortCounters {
            rx_packets: v[0],
            rx_bytes: v[1],
            tx_packets: v[2],
            tx_bytes: v[3],
            tx_dropped: v[4],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_roundtrip() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        let mut c = WorkerCounters {
            rx_packets: 7,
            busy_loops: 3,
            ..Default::default()
        };
        c.drop(DropReason::TxFull);
        c.drop_n(DropReason::Policy, 4);
        let s = SharedWorkerStats::default();
        s.publish(&c);
        assert_eq!(s.load(), c);
        assert_eq!(c.total_drops(), 5);
        let mut t = c.clone();
        t.add(&c);
        assert_eq!(
            (
                t.rx_packets,
                t.busy_loops,
                t.dropped(DropReason::TxFull),
                t.total_drops()
            ),
            (14, 6, 2, 10)
        );
        let p = PortCounters {
            rx_packets: 1,
            rx_bytes: 2,
            tx_packets: 3,
            tx_bytes: 4,
            tx_dropped: 5,
        };
        let sp = SharedPortStats::default();
        sp.publish(&p);
        assert_eq!(sp.load(), p);
    }
}
