//! strato's controller core and the applications that plug into it.
//!
//! - [`controller`]: the controller thread: it owns the pipeline and every worker's view of it,
//!   handles upcalls (miss -> xlate -> megaflow), revalidates, and gives barrier semantics.
//! - [`app`]: the [`app::App`] trait, the seam through which applications (the OpenFlow
//!   channel, the learning switch, the tenant agent) plug into the controller: cookie
//!   ownership, packet-ins, port events, removed rules, timers. The controller holds a list of
//!   apps and names none of them.
//! - [`learning`]: the MAC-learning switch (fail mode `standalone`), as OpenFlow rules.
//! - [`ofchannel`]: the OpenFlow channel on the controller's event loop (listeners for
//!   `ovs-ofctl`, connections to external controllers, roles, fail modes).
//!
//! Dependencies: `strato-flowtable`, `strato-datapath` (through its `dpif` seam) and
//! `strato-openflow`; nothing tenant-specific.

pub mod app;
pub mod controller;
pub mod learning;
pub mod ofchannel;
