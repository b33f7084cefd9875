//! The `strato` binary's library half: the daemon (`strato run`) and its configuration file.
//!
//! - [`daemon`]: the config file (`[daemon]`, `[bridge]`, `[[port]]`, `[api]`, `[tenant]`),
//!   and the daemon that starts the controller and workers, the OpenFlow channel, the
//!   learning switch or the tenant agent, the tenant API and the control socket.
//!
//! Everything else lives in the crates under `control/`: `openflow` (codecs), `switch`
//! (controller core, App seam, learning switch, OpenFlow channel), `tenant` (model, store,
//! REST API), `overlay` (compiler, responders, agent), `ctl` (control socket) and `labs`.

pub mod daemon;
