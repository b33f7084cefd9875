//! The tenant overlay on one hypervisor host: the tenant model compiled into the bridge's
//! OpenFlow tables, and the answers the host gives locally so they never cross the overlay.
//!
//! - [`view`]: the one copy of the tenant model on this host (every `Reset` and `Change`
//!   applied once, with indexes); the compiler and the responders read it.
//! - [`compiler`]: tenant model changes -> pipeline rules (pure, incremental; each rule carries
//!   its owner's cookie).
//! - [`responder`]: ARP, IPv6 ND and DHCPv4 responders (pure: frames in, frames out).
//! - [`agent`]: the tenant agent, an [`strato_switch::app::App`] on the controller thread
//!   (model source -> compiler, punted frames -> responders, the underlay and its VXLAN port).
//!
//! Dependencies: `strato-switch` (the controller and its App seam) and `strato-tenant` (the
//! model and the feed it is distributed by).

pub mod agent;
pub mod compiler;
pub mod responder;
pub mod view;
