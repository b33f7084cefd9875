//! strato's flow table: everything about matching packets and deciding what to do with them,
//! with no I/O and no threads.
//!
//! - [`key`]: the [`key::FlowKey`] layout, [`key::Field`]s, hashing.
//! - [`flow_match`]: key + mask, prefix masks.
//! - [`dpaction`]: the datapath action vocabulary (the "dpif" seam).
//! - [`tunnel`]: VXLAN push parameters and header templates.
//! - [`pipeline`]: OpenFlow-style multi-table pipeline (rules, instructions, actions, counters,
//!   timeouts, versions); [`group`]: its OpenFlow 1.3 groups.
//! - [`xlate`]: pipeline + key -> megaflow (match with exactly the consulted mask) + datapath
//!   actions; and [`semantics`], the key-level model of both used to check it.
//! - [`emc`], [`smc`] and [`megaflow`]: the per-worker cache levels (exact-match cache,
//!   signature-match cache, tuple-space megaflow classifier); [`flowcache`]: the one type that
//!   looks them up in order under one version check.
//! - [`port`]: the port number type every module shares.

pub mod dpaction;
pub mod emc;
pub mod flow_match;
pub mod flowcache;
pub mod fmt;
pub mod group;
pub mod key;
pub mod mac;
pub mod megaflow;
pub mod pipeline;
pub mod port;
pub mod semantics;
pub mod smc;
pub mod tunnel;
pub mod xlate;

pub use dpaction::DpAction;
pub use flow_match::Match;
pub use flowcache::{CacheCounters, CacheStats, FlowCache, FlowCacheConfig};
pub use key::{Field, FlowKey, PacketKey};
pub use mac::MacAddr;
pub use port::PortNo;
