//! Fast flow-key extraction from an Ethernet frame (being written).

use crate::stats::DropReason;
use strato_flowtable::{key::PacketKey, PortNo};

/// Tunnel metadata of a decapsulated packet, written into the inner packet's key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelMeta {
    /// Tunnel id (VNI).
    pub tun_id: u64,
    /// Outer IPv4 source (0 when IPv6 underlay).
    pub ipv4_src: u32,
    /// Outer IPv4 destination.
    pub ipv4_dst: u32,
    /// Outer IPv6 source (0 when IPv4 underlay).
    pub ipv6_src: u128,
    /// Outer IPv6 destination.
    pub ipv6_dst: u128,
}

/// What extraction noticed besides the key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtractInfo {
    /// L3/L4 headers were malformed or truncated; the key holds only what parsed cleanly.
    pub malformed: bool,
}

/// Extracts `frame`'s key into `out` (fills key, map and hash).
pub fn extract(
    frame: &[u8],
    in_port: PortNo,
    tun: Option<&TunnelMeta>,
    out: &mut PacketKey,
) -> Result<ExtractInfo, DropReason> {
    let _ = (frame, in_port, tun, out);
    unimplemented!("being written")
}
