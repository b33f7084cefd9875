//! VXLAN tunnel push parameters and the prebuilt outer-header template (RFC 7348).
//!
//! xlate resolves everything a tunnel push needs (underlay port, MACs, addresses, VNI) once per
//! megaflow and stores the outer headers as a template, so the datapath's per-packet work is a
//! copy into headroom plus three patches: IP total/payload length (and the IPv4 header
//! checksum, updated incrementally), UDP length, and the UDP source port taken from the inner
//! flow hash. With an IPv6 underlay the UDP checksum is mandatory and is computed per packet;
//! with IPv4 it is zero unless `udp_csum` is set (the Linux kernel sets it by default; both are
//! valid and decap accepts both).

use crate::port::PortNo;
use core::fmt;
use std::net::IpAddr;

/// The IANA VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// Outer header bytes for an IPv4 underlay: Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8.
pub const VXLAN_IPV4_HDR_LEN: usize = 50;
/// Outer header bytes for an IPv6 underlay: Ethernet 14 + IPv6 40 + UDP 8 + VXLAN 8.
pub const VXLAN_IPV6_HDR_LEN: usize = 70;
/// VXLAN flags byte with the I (valid VNI) bit.
pub const VXLAN_FLAG_I: u8 = 0x08;

/// Everything that determines the outer headers of a VXLAN packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TunnelParams {
    /// VXLAN network identifier (24 bits).
    pub vni: u32,
    /// Outer source MAC (the local VTEP's underlay MAC).
    pub src_mac: [u8; 6],
    /// Outer destination MAC (the next hop towards the remote VTEP).
    pub dst_mac: [u8; 6],
    /// Local VTEP address.
    pub src_ip: IpAddr,
    /// Remote VTEP address (same family as `src_ip`).
    pub dst_ip: IpAddr,
    /// Outer TTL / hop limit.
    pub ttl: u8,
    /// Outer TOS / traffic class.
    pub tos: u8,
    /// UDP destination port (4789).
    pub dst_port: u16,
    /// Compute the UDP checksum on an IPv4 underlay (always computed on IPv6).
    pub udp_csum: bool,
}

/// Prebuilt outer headers.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HeaderTemplate {
    /// The header bytes; `len` of them are used.
    pub bytes: [u8; VXLAN_IPV6_HDR_LEN],
    /// 50 (IPv4) or 70 (IPv6).
    pub len: u8,
    /// True for an IPv6 underlay.
    pub ipv6: bool,
}

impl HeaderTemplate {
    /// The used bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    /// Offset of the UDP header.
    pub fn udp_offset(&self) -> usize {
        if self.ipv6 {
            14 + 40
        } else {
            14 + 20
        }
    }
}

/// A resolved tunnel push: template plus where it goes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TunnelPush {
    /// The tunnel (virtual) port the pipeline output to; counted as its tx.
    pub tunnel_port: PortNo,
    /// The underlay port the encapsulated frame leaves by.
    pub out_port: PortNo,
    /// The parameters the template was built from.
    pub params: TunnelParams,
    /// The outer headers.
    pub header: HeaderTemplate,
}

/// Error resolving a tunnel push.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// the tunnel's local and remote addresses are of different families ({0} vs {1})
    #[error("the tunnel's local and remote addresses are of different families ({0} vs {1})")]
    FamilyMismatch(IpAddr, IpAddr),
    /// VNI {0} does not fit in 24 bits
    #[error("VNI {0} does not fit in 24 bits")]
    VniTooLarge(u64),
}

impl TunnelPush {
    /// Resolves a push: checks the parameters and builds the template.
    pub fn new(
        tunnel_port: PortNo,
        out_port: PortNo,
        params: TunnelParams,
    ) -> Result<Self, TunnelError> {
        let header = build_template(&params)?;
        Ok(TunnelPush {
            tunnel_port,
            out_port,
            params,
            header,
        })
    }
}

impl fmt::Display for TunnelPush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        write!(
            f,
            "tnl_push(vxlan(vni={},src={},dst={},dport={}),out_port={})",
            p.vni, p.src_ip, p.dst_ip, p.dst_port, self.out_port
        )
    }
}

/// Builds the outer Ethernet/IP/UDP/VXLAN headers with zero lengths (the datapath patches
/// them). The IPv4 header checksum is computed over the zero-length header so the datapath can
/// update it incrementally.
pub fn build_template(p: &TunnelParams) -> Result<HeaderTemplate, TunnelError> {
    if p.vni > 0x00ff_ffff {
        return Err(TunnelError::VniTooLarge(p.vni as u64));
    }
    let mut b = [0u8; VXLAN_IPV6_HDR_LEN];
    b[0..6].copy_from_slice(&p.dst_mac);
    b[6..12].copy_from_slice(&p.src_mac);
    let (l4, ipv6) = match (p.src_ip, p.dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            b[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut b[14..34];
            ip[0] = 0x45;
            ip[1] = p.tos;
            // total length 0 (patched), id 0, DF set like the kernel's VXLAN device
            ip[6] = 0x40;
            ip[8] = p.ttl;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = ipv4_header_checksum(ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            (34, false)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            b[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            let ip = &mut b[14..54];
            ip[0] = 0x60 | (p.tos >> 4);
            ip[1] = p.tos << 4;
            ip[6] = 17;
            ip[7] = p.ttl;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            (54, true)
        }
        (s, d) => return Err(TunnelError::FamilyMismatch(s, d)),
    };
    // UDP: source port patched per packet, length patched, checksum zero/patched.
    b[l4 + 2..l4 + 4].copy_from_slice(&p.dst_port.to_be_bytes());
    // VXLAN: flags I, reserved, VNI, reserved.
    let vx = &mut b[l4 + 8..l4 + 16];
    vx[0] = VXLAN_FLAG_I;
    vx[4..7].copy_from_slice(&p.vni.to_be_bytes()[1..4]);
    Ok(HeaderTemplate {
        bytes: b,
        len: (l4 + 16) as u8,
        ipv6,
    })
}

/// The Internet checksum of an IPv4 header whose checksum field is zero or will be ignored.
pub fn ipv4_header_checksum(hdr: &[u8]) -> u16 {
    let mut sum = 0u32;
    for (i, c) in hdr.chunks(2).enumerate() {
        if i == 5 {
            continue; // the checksum field itself
        }
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            (c[0] as u16) << 8
        };
        sum += w as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// UDP source port for an encapsulated flow, from the inner flow hash, in the kernel's default
/// ephemeral range 32768..=60999 (so ECMP in the underlay spreads flows like Linux does).
#[inline(always)]
pub fn udp_src_port(hash: u32) -> u16 {
    const LO: u32 = 32768;
    const SPAN: u32 = 60999 - 32768 + 1;
    (LO + (((hash as u64 * SPAN as u64) >> 32) as u32)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn params(src: IpAddr, dst: IpAddr) -> TunnelParams {
        TunnelParams {
            vni: 0x12_3456,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: src,
            dst_ip: dst,
            ttl: 64,
            tos: 0,
            dst_port: VXLAN_PORT,
            udp_csum: false,
        }
    }

    #[test]
    fn ipv4_template_parses_with_etherparse() {
        let p = params(
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(192, 0, 2, 2).into(),
        );
        let t = build_template(&p).unwrap();
        assert_eq!(t.len as usize, VXLAN_IPV4_HDR_LEN);
        let (eth, rest) = etherparse::Ethernet2Header::from_slice(t.as_slice()).unwrap();
        assert_eq!(eth.destination, p.dst_mac);
        assert_eq!(eth.ether_type, etherparse::EtherType::IPV4);
        let (ip, _) = etherparse::Ipv4Header::from_slice(rest).unwrap();
        assert_eq!(ip.source, [192, 0, 2, 1]);
        assert_eq!(ip.time_to_live, 64);
        assert!(ip.dont_fragment);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let vx = &t.as_slice()[42..50];
        assert_eq!(vx, &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        assert_eq!(&t.as_slice()[36..38], &4789u16.to_be_bytes());
    }

    #[test]
    fn ipv6_template_and_errors() {
        let p = params(
            Ipv6Addr::LOCALHOST.into(),
            "fd00::2".parse::<Ipv6Addr>().unwrap().into(),
        );
        let t = build_template(&p).unwrap();
        assert_eq!(t.len as usize, VXLAN_IPV6_HDR_LEN);
        assert!(t.ipv6);
        let (ip, _) = etherparse::Ipv6Header::from_slice(&t.as_slice()[14..]).unwrap();
        assert_eq!(ip.next_header, etherparse::IpNumber::UDP);
        assert_eq!(ip.hop_limit, 64);
        let bad = params(Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into());
        assert!(matches!(
            build_template(&bad),
            Err(TunnelError::FamilyMismatch(..))
        ));
        let mut big = params(Ipv4Addr::LOCALHOST.into(), Ipv4Addr::LOCALHOST.into());
        big.vni = 1 << 24;
        assert!(matches!(
            build_template(&big),
            Err(TunnelError::VniTooLarge(_))
        ));
    }

    #[test]
    fn src_port_range() {
        for h in [0u32, 1, 0x8000_0000, u32::MAX] {
            let p = udp_src_port(h);
            assert!((32768..=60999).contains(&p), "{p}");
        }
        assert_ne!(udp_src_port(1 << 20), udp_src_port(3 << 30));
    }
}
