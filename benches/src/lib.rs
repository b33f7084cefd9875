//! strato's benchmarks, behind `strato bench`, and the criterion micro-benches in `benches/`.
//!
//! - [`pipeline`]: the packet-rate harness (`strato bench pipeline`): the worker pipeline over
//!   memory ports, Mpps, ns and instructions per packet beside a raw copy loop.
//! - [`openflow`]: `strato bench openflow`: flow_mods/s through one OpenFlow 1.3 channel and
//!   revalidation time.
//! - [`api`]: `strato bench api`: tenant API port creates/s, latency, create-to-first-packet.
//! - [`lab`]: `strato bench lab`: strato beside the Linux bridge, Open vSwitch and raw AF_XDP on
//!   the same veth topology.
//!
//! This crate depends on the product crates; no library crate depends on it (only the
//! `strato` binary does).

pub mod api;
pub mod lab;
pub mod openflow;
pub mod pipeline;
