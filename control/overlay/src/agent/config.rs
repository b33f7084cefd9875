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

/// What is wrong with a `[tenant]` section ([`AgentConfig::validate`]); the message names the
/// field and what to put there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentConfigError {
    /// `tenant.host` is empty.
    #[error("tenant.host must name this host (a [[api.host]] name)")]
    NoHost,
    /// `tenant.underlay` is not a Linux interface name.
    #[error("tenant.underlay {0:?} is not an interface name (1 to 15 bytes, no '/')")]
    BadUnderlay(String),
    /// No `tenant.server`, and no `[api]` to serve the model here.
    #[error(
        "tenant.server is missing: name the tenant API to follow (http://HOST:PORT), or add an \
         [api] section to serve it here"
    )]
    NoServer,
    /// `tenant.server` is not an `http://` URL.
    #[error("tenant.server {0:?} must be an http://HOST:PORT URL")]
    BadServer(String),
    /// `tenant.server` without `tenant.token`.
    #[error("tenant.token is missing: give a cloud or provider token of tenant.server")]
    NoToken,
    /// `tenant.tunnel_ofport` is not a usable port number.
    #[error(
        "tenant.tunnel_ofport {0} is not between 1 and {max}",
        max = strato_datapath::port::MAX_PORT_NO
    )]
    BadTunnelOfport(u32),
}

impl AgentConfig {
    /// Checks what serde cannot; `has_api`: the daemon also has an `[api]` section.
    pub fn validate(&self, has_api: bool) -> Result<(), AgentConfigError> {
        if self.host.is_empty() {
            return Err(AgentConfigError::NoHost);
        }
        if self.underlay.is_empty() || self.underlay.len() > 15 || self.underlay.contains('/') {
            return Err(AgentConfigError::BadUnderlay(self.underlay.clone()));
        }
        match (&self.server, &self.token) {
            (None, _) if !has_api => Err(AgentConfigError::NoServer),
            (Some(s), _) if !s.starts_with("http://") => {
                Err(AgentConfigError::BadServer(s.clone()))
            }
            (Some(_), None) => Err(AgentConfigError::NoToken),
            _ if self.tunnel_ofport == 0
                || self.tunnel_ofport > strato_datapath::port::MAX_PORT_NO =>
            {
                Err(AgentConfigError::BadTunnelOfport(self.tunnel_ofport))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(server: Option<&str>, token: Option<&str>) -> AgentConfig {
        AgentConfig {
            host: "hv1".into(),
            underlay: "ul0".into(),
            server: server.map(Into::into),
            token: token.map(Into::into),
            tunnel_ofport: DEFAULT_TUNNEL_OFPORT,
        }
    }

    #[test]
    fn validation_names_the_field() {
        let srv = Some("http://10.0.0.1:9696");
        assert_eq!(cfg(None, None).validate(true), Ok(()));
        assert_eq!(cfg(srv, Some("t")).validate(false), Ok(()));
        assert_eq!(
            cfg(None, None).validate(false),
            Err(AgentConfigError::NoServer)
        );
        assert_eq!(
            cfg(srv, None).validate(false),
            Err(AgentConfigError::NoToken)
        );
        let e = cfg(Some("https://h:1"), Some("t"))
            .validate(false)
            .unwrap_err();
        assert_eq!(e, AgentConfigError::BadServer("https://h:1".into()));
        assert_eq!(
            e.to_string(),
            "tenant.server \"https://h:1\" must be an http://HOST:PORT URL"
        );
        let mut c = cfg(None, None);
        c.host.clear();
        assert_eq!(
            c.validate(true).unwrap_err().to_string(),
            "tenant.host must name this host (a [[api.host]] name)"
        );
        let mut c = cfg(None, None);
        c.underlay = "a/b".into();
        assert_eq!(
            c.validate(true),
            Err(AgentConfigError::BadUnderlay("a/b".into()))
        );
        let mut c = cfg(None, None);
        c.tunnel_ofport = 0;
        assert_eq!(
            c.validate(true).unwrap_err().to_string(),
            format!(
                "tenant.tunnel_ofport 0 is not between 1 and {}",
                strato_datapath::port::MAX_PORT_NO
            )
        );
    }
}
