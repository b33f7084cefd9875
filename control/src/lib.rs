//! strato's controller: the core thread that owns the pipeline, handles upcalls, installs and
//! revalidates megaflows in the workers; and the pieces of the `strato` command.
//!
//! - [`controller`]: the controller thread, its handle, upcall handling, revalidation, barriers.
//! - [`learning`]: the MAC-learning switch (fail mode standalone), as OpenFlow rules.
//! - [`daemon`]: `strato run`; [`ctl`]: `strato ctl` and its protocol; [`lab`]: `strato lab`;
//!   [`gen`]: `strato gen`; [`benchlab`]: `strato bench lab`; [`benchof`]: `strato bench
//!   openflow`.
//! - [`responder`]: ARP, IPv6 ND and DHCPv4 responders (pure: frames in, frames out).
//! - [`tenant`]: the tenant model (networks, subnets with IPAM, ports), its SQLite store, and the
//!   Neutron v2.0 / Net Objects REST API.
//! - [`openflow`]: OpenFlow 1.0/1.3 codecs; [`ofchannel`]: the OpenFlow channel on the
//!   controller's event loop (listeners, controllers, roles, fail modes).
//! - [`agent`]: the tenant agent (model source, compiler and responders on the controller
//!   thread, the underlay and its VXLAN port).
//! - [`compiler`]: the tenant compiler, tenant model changes -> pipeline rules (pure).
//! - [`demo`]: `strato demo`, two hosts with tenants over VXLAN, in memory.
//! - [`hvlab`]: multi-host tenant labs (hypervisor namespaces, underlay, VMs).
//! - [`netns`]: namespaces and veth pairs for labs and tests (per-run prefixes, torn down on drop).

pub mod agent;
pub mod benchapi;
pub mod benchlab;
pub mod benchof;
pub mod compiler;
pub mod controller;
pub mod ctl;
pub mod daemon;
pub mod demo;
pub mod gen;
pub mod hvlab;
pub mod lab;
pub mod learning;
pub mod netns;
pub mod ofchannel;
pub mod openflow;
pub mod responder;
pub mod tenant;
