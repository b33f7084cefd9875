//! The daemon's `[tenant]` section: this host's part in the tenant overlay.
//!
//! ```toml
//! [tenant]
//! host = "hv1"                        # this host's name: a [[api.host]] name, and the
//!                                     # binding:host_id of the ports bound here
//! underlay = "ul0"                    # the underlay interface, opened over AF_XDP; strato
//!                                     # owns it: it answers ARP for this host's VTEP address
//!                                     # and resolves the other VTEPs by ARP
//! server = "http://10.99.0.1:9696"    # the tenant API to follow (another host's daemon);
//!                                     # omitted: this daemon's own [api]
//! token = "cloud-secret"              # X-Auth-Token for `server` (a cloud or provider token)
//! tunnel_ofport = 4789                # OpenFlow number of the VXLAN port (default 4789)
//! ```
//!
//! With `[tenant]` the bridge is the tenant compiler's: nothing is learned (fail mode secure).
//! Ports bound to this host (`binding:profile {"interface", "kind"}`) are attached when they
//! appear: a `tap` is created by strato, a `veth` end must exist in the daemon's namespace.

use serde::Deserialize;

/// Default OpenFlow port number of the VXLAN tunnel port.
pub const DEFAULT_TUNNEL_OFPORT: u32 = 4789;

/// `[tenant]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This host's name.
    pub host: String,
    /// The underlay interface (AF_XDP).
    pub underlay: String,
    /// The tenant API to follow, `http://HOST:PORT` (default: this daemon's `[api]`).
    #[serde(default)]
    pub server: Option<String>,
    /// Token for `server`.
    #[serde(default)]
    pub token: Option<String>,
    /// OpenFlow number of the tunnel port.
    #[serde(default = "default_tunnel")]
    pub tunnel_ofport: u32,
}

fn default_tunnel() -> u32 {
    DEFAULT_TUNNEL_OFPORT
}

impl AgentConfig {
    /// Checks what serde cannot; `has_api`: the daemon also has an `[api]` section.
    pub fn validate(&self, has_api: bool) -> Result<(), String> {
        if self.host.is_empty() {
            return Err("tenant.host must name this host (a [[api.host]] name)".into());
        }
        if self.underlay.is_empty() || self.underlay.len() > 15 || self.underlay.contains('/') {
            return Err(format!(
                "tenant.underlay {:?} is not an interface name (1 to 15 bytes, no '/')",
                self.underlay
            ));
        }
        match (&self.server, &self.token) {
            (None, _) if !has_api => Err(
                "tenant.server is missing: name the tenant API to follow (http://HOST:PORT), or \
                 add an [api] section to serve it here"
                    .into(),
            ),
            (Some(s), _) if !s.starts_with("http://") => Err(format!(
                "tenant.server {s:?} must be an http://HOST:PORT URL"
            )),
            (Some(_), None) => Err(
                "tenant.token is missing: give a cloud or provider token of tenant.server".into(),
            ),
            _ if self.tunnel_ofport == 0
                || self.tunnel_ofport > strato_datapath::port::MAX_PORT_NO =>
            {
                Err(format!(
                    "tenant.tunnel_ofport {} is not between 1 and {}",
                    self.tunnel_ofport,
                    strato_datapath::port::MAX_PORT_NO
                ))
            }
            _ => Ok(()),
        }
    }
}
