//! Test labs and traffic: network namespaces and veths, Mininet-style switch labs, multi-host
//! tenant labs, the AF_XDP traffic generator, and `strato demo`.
//!
//! - [`netns`]: namespaces and veth pairs (per-run prefixes, torn down on drop).
//! - [`lab`]: `strato lab`: hosts around one strato switch, from a topology file.
//! - [`hvlab`]: hypervisor hosts as namespaces running strato daemons, an underlay, VMs.
//! - [`traffic`]: `strato gen`: an AF_XDP packet generator and sink.
//! - [`demo`]: `strato demo`: two hosts, two tenants, VXLAN (real namespaces, or in memory).
//!
//! Labs send traffic only inside the namespaces they made and remove exactly what they made.

pub mod demo;
pub mod hvlab;
pub mod lab;
pub mod netns;
pub mod traffic;
