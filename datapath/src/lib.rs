//! strato's datapath: the fast path that moves packets.
//!
//! - [`buf`]: packet buffers with headroom and the per-worker pool.
//! - [`wire`]: checked zero-copy header views (Ethernet, VLAN, ARP, IPv4, IPv6, UDP, TCP,
//!   SCTP, ICMP, VXLAN) and the Internet checksum, shared by extract and exec.
//! - [`extract`]: frame -> flow key, fast; checked against etherparse.
//! - [`exec`]: datapath actions on buffers (set-field with checksum updates, VLAN, dec_ttl,
//!   VXLAN encap/decap).
//! - [`port`]: the port kinds a worker polls (memory today; AF_XDP and tap later).
//! - [`dpif`]: the controller-worker seam: commands in, upcalls and events out, the queues.
//! - [`worker`]: the pinned worker loop: rx burst -> extract -> EMC -> megaflow -> actions, with
//!   upcalls out and commands in over the [`dpif`] queues.
//! - [`stats`]: per-port and per-worker counters, drops by reason.

pub mod buf;
pub mod dpif;
pub mod exec;
pub mod extract;
pub mod port;
pub mod stats;
pub mod wire;
pub mod worker;

pub use stats::DropReason;
