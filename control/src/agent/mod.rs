//! The tenant agent: one host's side of the tenant overlay, on the controller thread.
//!
//! - [`config`]: the daemon's `[tenant]` section.
//! - [`source`]: where the model comes from ([`source::ModelUpdate`] streams).

pub mod config;
pub mod source;
