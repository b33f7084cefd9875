//! The port description (`ofp_port`, 64 bytes) of FEATURES / PORT_STATUS / port-desc replies.
//!
//! Contract: [`Port::parse`] reads exactly [`Port::LEN`] bytes or fails with
//! [`OfError::Truncated`]; its padding must be zero ([`OfError::NonZeroPadding`]); the name is
//! kept as the raw 16 bytes.

use super::super::wire::{p32, pad};
use super::super::{OfError, Reader};
use super::{c_str, mac_str};
use serde_json::{json, Value};

/// A port description (`ofp_port`, 64 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port number.
    pub port_no: u32,
    /// MAC address.
    pub hw_addr: [u8; 6],
    /// Name, NUL-padded as on the wire.
    pub name: [u8; 16],
    /// OFPPC_* bits.
    pub config: u32,
    /// OFPPS_* bits.
    pub state: u32,
    /// Current features.
    pub curr: u32,
    /// Advertised features.
    pub advertised: u32,
    /// Supported features.
    pub supported: u32,
    /// Peer's features.
    pub peer: u32,
    /// Current speed, kbps.
    pub curr_speed: u32,
    /// Maximum speed, kbps.
    pub max_speed: u32,
}

impl Port {
    /// Wire size.
    pub const LEN: usize = 64;
    /// Reads one port.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Port, OfError> {
        let port_no = r.u32("port_no")?;
        r.zero_pad(4, "port padding")?;
        let hw_addr = r.array("hw_addr")?;
        r.zero_pad(2, "port padding")?;
        Ok(Port {
            port_no,
            hw_addr,
            name: r.array("port name")?,
            config: r.u32("port config")?,
            state: r.u32("port state")?,
            curr: r.u32("curr")?,
            advertised: r.u32("advertised")?,
            supported: r.u32("supported")?,
            peer: r.u32("peer")?,
            curr_speed: r.u32("curr_speed")?,
            max_speed: r.u32("max_speed")?,
        })
    }
    /// Appends the port.
    pub(crate) fn emit(&self, o: &mut Vec<u8>) {
        p32(o, self.port_no);
        pad(o, 4);
        o.extend_from_slice(&self.hw_addr);
        pad(o, 2);
        o.extend_from_slice(&self.name);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            p32(o, v);
        }
    }
    /// Ryu's `{"OFPPort": {...}}`.
    pub fn to_ryu_json(&self) -> Value {
        json!({"OFPPort": {"advertised": self.advertised, "config": self.config, "curr": self.curr,
            "curr_speed": self.curr_speed, "hw_addr": mac_str(&self.hw_addr), "max_speed": self.max_speed,
            "name": c_str(&self.name), "peer": self.peer, "port_no": self.port_no, "state": self.state,
            "supported": self.supported}})
    }
}
