//! The tenant agent: one host's side of the tenant overlay, on the controller thread.
//!
//! - [`config`]: the daemon's `[tenant]` section.
//! - [`source`]: where the model comes from ([`source::ModelUpdate`] streams); [`remote`]:
//!   another host's API as a source.

pub mod config;
pub mod remote;
pub mod source;
