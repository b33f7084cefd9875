//! Datapath action execution on packet buffers: set-field with checksum fixes, VLAN push/pop,
//! TTL decrement, and VXLAN encapsulation/decapsulation (RFC 7348).
//!
//! The worker walks a megaflow's [`strato_flowtable::DpAction`] list and calls one function here
//! per action; outputs and clones are the worker's business. Headers are located with cheap
//! [`crate::wire`] views (no etherparse on this path; it is the reference in the tests): every
//! offset and protocol number comes from there.
//!
//! Contract (the semantics of `flowtable::dpaction`):
//! - No function panics or allocates on any bytes. Every `Err` leaves the buffer unchanged.
//! - One VLAN tag (TPID 0x8100 or 0x88a8) in front of L3 is understood everywhere; a frame with
//!   two tags has no L3 as far as this module is concerned.
//! - An IPv4 header is usable when version = 4, IHL >= 5 and IHL*4 <= total length <= the bytes
//!   after it (trailing Ethernet padding is fine); an IPv6 header when version = 6 and the
//!   payload length fits in the frame. IPv6 extension headers (hop-by-hop, routing,
//!   fragment, destination options, AH; at most 8) are skipped to reach the upper layer.
//! - [`set_field`] writes the wire field (the value is in the flow key's integer form; bits above
//!   the field's width are ignored) and fixes every checksum it affects, incrementally
//!   (RFC 1624, eqn. 3) except SCTP whose CRC32c is recomputed:
//!   - `EthSrc`/`EthDst`: any frame of >= 14 bytes.
//!   - `VlanTci`/`VlanVid`/`VlanPcp`: tagged frames only. `VlanTci`'s VLAN_PRESENT bit (0x1000)
//!     is not a wire bit: PCP and VID are written, the wire DEI bit is kept.
//!   - `ArpOp`/`ArpSpa`/`ArpTpa`/`ArpSha`/`ArpTha`: Ethernet/IPv4 ARP (and RARP).
//!   - `Ipv4Src`/`Ipv4Dst`: IPv4 header checksum, plus the TCP/UDP checksum through the pseudo
//!     header (a UDP checksum of 0 means "none" and stays 0; ICMPv4 has no pseudo header).
//!   - `IpTos`/`IpDscp`/`IpEcn`/`IpTtl`: IPv4 (header checksum) or IPv6 (traffic class, hop
//!     limit; no checksum covers them).
//!   - `Ipv6Src`/`Ipv6Dst`: TCP/UDP/ICMPv6 checksum through the pseudo header (not for the
//!     destination when a routing header with segments left carries the final destination).
//!     `Ipv6Label`: no checksum covers it.
//!   - `TpSrc`/`TpDst`: TCP, UDP (checksum) and SCTP (CRC32c recomputed over the SCTP packet;
//!     not on fragments). `TcpFlags`: the low 12 bits of the TCP offset/flags word.
//!   - `IcmpType`/`IcmpCode`: ICMPv4 on IPv4, ICMPv6 on IPv6. `NdTarget`: ICMPv6 neighbor
//!     solicitation/advertisement.
//!   - Otherwise `Err(ActionFailed)`: the packet lacks the header, L4 fields of a later
//!     fragment, pipeline-only fields, tunnel fields, and `EthType`, `VlanPresent`, `IpProto`,
//!     `IpFrag`.
//! - [`push_vlan`] inserts a tag after the MACs (`Err(NoHeadroom)` when the headroom is
//!   exhausted, `Err(ActionFailed)` on a frame shorter than 14 bytes); [`pop_vlan`] removes the
//!   outer tag and is a no-op on untagged frames.
//! - [`dec_ttl`]: IPv4 TTL (header checksum updated incrementally) or IPv6 hop limit;
//!   `Err(TtlExpired)` when it is <= 1; non-IP frames are left alone (`Ok`); an IP ethertype
//!   whose header is unusable (see above) is `Err(ActionFailed)`.
//! - [`tunnel_push`] prepends the prebuilt template into the headroom and patches IPv4 total
//!   length (+ incremental header checksum) or IPv6 payload length, UDP length, UDP source
//!   port ([`udp_src_port`] of the flow hash) and the UDP checksum (always on IPv6; on IPv4 only
//!   with `udp_csum`, else 0). The inner frame is not touched.
//! - [`tunnel_pop`] validates the outer Ethernet (+ one optional VLAN tag), IP, UDP and VXLAN
//!   headers and strips them, returning the VNI and outer addresses. Errors, in check order:
//!   `TunnelTruncated` when the frame ends inside a fixed header (Ethernet, tag, IP header with
//!   options, UDP, VXLAN); `TunnelBadIp` for a non-IP ethertype, a wrong version or IHL, a bad
//!   IPv4 header checksum, a fragment, a protocol / next header other than UDP, or an IP length
//!   that does not fit the frame (a frame cut inside the inner packet lands here);
//!   `TunnelBadUdp` for a UDP length != IP payload length or < 16, a destination port other
//!   than `dst_port`, or a wrong non-zero checksum (zero is accepted on both families);
//!   `VxlanBadFlags` without the I flag (reserved bits are ignored); `TunnelTruncated` when the
//!   inner frame is shorter than 14 bytes.

use crate::buf::Buf;
use crate::extract::TunnelMeta;
use crate::stats::DropReason;
use crate::wire::{
    arp, checksum, ethernet, ethertype, icmp, ip_proto, ipv4, ipv6, sctp, tcp, udp, vlan, vxlan,
};
use strato_flowtable::key::Field;
use strato_flowtable::tunnel::{udp_src_port, TunnelPush, VXLAN_IPV4_HDR_LEN, VXLAN_IPV6_HDR_LEN};

pub use crate::wire::sctp::crc32c;

/// UDP + VXLAN header bytes.
const UDP_VXLAN_LEN: usize = udp::HEADER_LEN + vxlan::HEADER_LEN;
/// Where the UDP header starts in an IPv4 VXLAN template (its IP header has no options).
const TPL4_UDP: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
/// Where the UDP header starts in an IPv6 VXLAN template.
const TPL6_UDP: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
/// Most IPv6 extension headers skipped to reach the upper layer.
const MAX_IPV6_EXT_HEADERS: usize = 8;

/// The bytes from `off` on (empty when `off` is past the end).
#[inline(always)]
fn from(d: &[u8], off: usize) -> &[u8] {
    d.get(off..).unwrap_or_default()
}

/// The bytes from `off` on, writable (empty when `off` is past the end).
#[inline(always)]
fn from_mut(d: &mut [u8], off: usize) -> &mut [u8] {
    d.get_mut(off..).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Header location.

/// A usable IP header and where its upper layer is (offsets into the frame).
#[derive(Clone, Copy, Debug)]
struct Ip {
    /// Offset of the IP header.
    off: usize,
    /// End of the IP packet (by its length field; padding after it is not part of it).
    end: usize,
    v6: bool,
    /// Upper-layer protocol (after IPv6 extension headers).
    proto: u8,
    /// Upper-layer offset.
    l4: usize,
    /// Any fragment.
    frag: bool,
    /// A non-first fragment: no L4 header.
    later: bool,
    /// IPv6 routing header with segments left: the pseudo header uses its final destination.
    rt_dst: bool,
}

impl Ip {
    /// The IP packet (header to `end`).
    #[inline(always)]
    fn packet<'a>(&self, d: &'a mut [u8]) -> &'a mut [u8] {
        d.get_mut(self.off..self.end).unwrap_or_default()
    }

    /// The upper-layer bytes (`l4` to `end`); `None` when a later fragment or when the
    /// extension headers ran past the end.
    #[inline(always)]
    fn upper<'a>(&self, d: &'a mut [u8]) -> Option<&'a mut [u8]> {
        if self.later {
            return None;
        }
        d.get_mut(self.l4..self.end)
    }
}

enum L3 {
    Ip(Ip),
    /// Ethernet/IPv4 ARP (or RARP) at this offset, the whole packet present.
    Arp(usize),
    /// An IP ethertype whose header is unusable.
    BadIp,
    /// Anything else (including frames too short for Ethernet).
    Other,
}

#[inline(always)]
fn l3(d: &[u8]) -> L3 {
    let Some((o, et)) = ethernet::Frame::new_unchecked(d).l3() else {
        return L3::Other;
    };
    let p = from(d, o);
    match et {
        ethertype::IPV4 => locate_ipv4(p, o).map_or(L3::BadIp, L3::Ip),
        ethertype::IPV6 => locate_ipv6(p, o).map_or(L3::BadIp, L3::Ip),
        ethertype::ARP | ethertype::RARP => match arp::Packet::new_checked(p) {
            Ok(a) if a.is_ethernet_ipv4() => L3::Arp(o),
            _ => L3::Other,
        },
        _ => L3::Other,
    }
}

/// The IPv4 packet `p` found at frame offset `o`.
#[inline(always)]
fn locate_ipv4(p: &[u8], o: usize) -> Option<Ip> {
    let ip = ipv4::Packet::new_checked(p).ok()?;
    if !ip.check_lengths() {
        return None;
    }
    Some(Ip {
        off: o,
        end: o + ip.total_len() as usize,
        v6: false,
        proto: ip.protocol(),
        l4: o + ip.header_len(),
        frag: ip.is_fragment(),
        later: ip.is_later_fragment(),
        rt_dst: false,
    })
}

/// The IPv6 packet `p` found at frame offset `o`, its extension headers skipped.
#[inline(always)]
fn locate_ipv6(p: &[u8], o: usize) -> Option<Ip> {
    let ip6 = ipv6::Packet::new_checked(p).ok()?;
    if !ip6.check_lengths() {
        return None;
    }
    let end = ipv6::HEADER_LEN + ip6.payload_len() as usize;
    let mut ip = Ip {
        off: o,
        end: o + end,
        v6: true,
        proto: ip6.next_header(),
        l4: 0,
        frag: false,
        later: false,
        rt_dst: false,
    };
    let mut at = ipv6::HEADER_LEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let Some(ext) = p.get(at..end) else {
            break;
        };
        let (next, hlen) = match ip.proto {
            ip_proto::HOPOPTS | ip_proto::ROUTING | ip_proto::DSTOPTS | ip_proto::AH => {
                let Ok(e) = ipv6::ExtHeader::new_checked(ext) else {
                    break;
                };
                if ip.proto == ip_proto::ROUTING && e.segments_left() != 0 {
                    ip.rt_dst = true;
                }
                (e.next_header(), e.header_len(ip.proto))
            }
            ip_proto::FRAGMENT => {
                let Ok(f) = ipv6::FragHeader::new_checked(ext) else {
                    break;
                };
                ip.frag = true;
                ip.later = f.frag_offset() != 0;
                (f.next_header(), ipv6::EXT_MIN_LEN)
            }
            _ => break,
        };
        ip.proto = next;
        at += hlen;
    }
    ip.l4 = o + at;
    Some(ip)
}

/// Fixes the upper-layer checksum that covers the pseudo header after address bytes `old`
/// became `new`: TCP, UDP (0 stays "none"), ICMPv6 on IPv6. Not on later fragments, and
/// only as far as the checksum field is present.
#[inline(always)]
fn fix_pseudo(d: &mut [u8], ip: &Ip, old: &[u8], new: &[u8]) {
    let Some(seg) = ip.upper(d) else {
        return;
    };
    match ip.proto {
        ip_proto::TCP => tcp::Packet::new_unchecked(seg).adjust_checksum(old, new),
        ip_proto::UDP => {
            if let Ok(mut u) = udp::Packet::new_checked(seg) {
                u.adjust_checksum(old, new);
            }
        }
        ip_proto::ICMPV6 if ip.v6 => {
            if let Ok(mut c) = icmp::Packet::new_checked(seg) {
                c.adjust_checksum(old, new);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// set_field

const FAIL: Result<(), DropReason> = Err(DropReason::ActionFailed);

/// Writes a wire field and fixes every checksum it affects; see the module docs for which
/// fields apply to which packets. `Err(ActionFailed)` (packet unchanged) when the field does
/// not apply.
#[inline]
pub fn set_field(buf: &mut Buf, field: Field, value: u128) -> Result<(), DropReason> {
    let d = buf.data_mut();
    let v = value & field.full_mask();
    match field {
        Field::EthDst | Field::EthSrc => {
            let Ok(mut eth) = ethernet::Frame::new_checked(d) else {
                return FAIL;
            };
            if field == Field::EthDst {
                eth.set_dst_addr_u64(v as u64);
            } else {
                eth.set_src_addr_u64(v as u64);
            }
            Ok(())
        }
        Field::VlanTci | Field::VlanVid | Field::VlanPcp => {
            let Ok(mut eth) = ethernet::Frame::new_checked(d) else {
                return FAIL;
            };
            if !ethertype::is_vlan(eth.ethertype()) {
                return FAIL;
            }
            let Ok(mut tag) = vlan::Tag::new_checked(eth.payload_mut()) else {
                return FAIL;
            };
            let v = v as u16;
            match field {
                // VLAN_PRESENT (0x1000) is not a wire bit: the wire DEI is kept.
                Field::VlanTci => tag.set_tci((tag.tci() & vlan::TCI_DEI) | (v & !vlan::TCI_DEI)),
                Field::VlanVid => tag.set_vid(v),
                _ => tag.set_pcp(v as u8),
            }
            Ok(())
        }
        Field::ArpOp | Field::ArpSpa | Field::ArpTpa | Field::ArpSha | Field::ArpTha => {
            let L3::Arp(o) = l3(d) else {
                return FAIL;
            };
            let Ok(mut a) = arp::Packet::new_checked(from_mut(d, o)) else {
                return FAIL;
            };
            match field {
                Field::ArpOp => a.set_operation(v as u16),
                Field::ArpSha => a.set_sha_u64(v as u64),
                Field::ArpSpa => a.set_spa(v as u32),
                Field::ArpTha => a.set_tha_u64(v as u64),
                _ => a.set_tpa(v as u32),
            }
            Ok(())
        }
        Field::IpTos
        | Field::IpDscp
        | Field::IpEcn
        | Field::IpTtl
        | Field::Ipv4Src
        | Field::Ipv4Dst
        | Field::Ipv6Src
        | Field::Ipv6Dst
        | Field::Ipv6Label => {
            let L3::Ip(ip) = l3(d) else {
                return FAIL;
            };
            if ip.v6 {
                set_ipv6(d, &ip, field, v)
            } else {
                set_ipv4(d, &ip, field, v)
            }
        }
        Field::TpSrc | Field::TpDst | Field::TcpFlags | Field::IcmpType | Field::IcmpCode => {
            let L3::Ip(ip) = l3(d) else {
                return FAIL;
            };
            set_l4(d, &ip, field, v as u16)
        }
        Field::NdTarget => {
            let L3::Ip(ip) = l3(d) else {
                return FAIL;
            };
            if !ip.v6 || ip.proto != ip_proto::ICMPV6 {
                return FAIL;
            }
            let Some(seg) = ip.upper(d) else {
                return FAIL;
            };
            let ty = icmp::Packet::new_unchecked(&*seg).msg_type();
            if !matches!(ty, icmp::ND_NEIGHBOR_SOLICIT | icmp::ND_NEIGHBOR_ADVERT) {
                return FAIL;
            }
            let Ok(mut nd) = icmp::NdMessage::new_checked(seg) else {
                return FAIL;
            };
            nd.update_target(v);
            Ok(())
        }
        _ => FAIL,
    }
}

/// The new TOS byte for a `IpTos` / `IpDscp` / `IpEcn` write of `v` over `tos`.
#[inline(always)]
fn new_tos(field: Field, tos: u8, v: u8) -> u8 {
    match field {
        Field::IpTos => v,
        Field::IpDscp => (tos & 0x03) | (v << 2),
        _ => (tos & 0xfc) | v,
    }
}

#[inline(always)]
fn set_ipv4(d: &mut [u8], ip: &Ip, field: Field, v: u128) -> Result<(), DropReason> {
    let mut h = ipv4::Packet::new_unchecked(ip.packet(d));
    match field {
        Field::IpTos | Field::IpDscp | Field::IpEcn => {
            h.update_tos(new_tos(field, h.tos(), v as u8))
        }
        Field::IpTtl => h.update_ttl(v as u8),
        Field::Ipv4Src | Field::Ipv4Dst => {
            let new = v as u32;
            let old = if field == Field::Ipv4Src {
                h.update_src_addr(new)
            } else {
                h.update_dst_addr(new)
            };
            fix_pseudo(d, ip, &old.to_be_bytes(), &new.to_be_bytes());
        }
        _ => return FAIL,
    }
    Ok(())
}

#[inline(always)]
fn set_ipv6(d: &mut [u8], ip: &Ip, field: Field, v: u128) -> Result<(), DropReason> {
    let mut h = ipv6::Packet::new_unchecked(ip.packet(d));
    match field {
        Field::IpTos | Field::IpDscp | Field::IpEcn => {
            h.set_traffic_class(new_tos(field, h.traffic_class(), v as u8))
        }
        Field::IpTtl => h.set_hop_limit(v as u8),
        Field::Ipv6Src | Field::Ipv6Dst => {
            let dst = field == Field::Ipv6Dst;
            let old = if dst { h.dst_addr() } else { h.src_addr() };
            if dst {
                h.set_dst_addr(v);
            } else {
                h.set_src_addr(v);
            }
            if !(dst && ip.rt_dst) {
                fix_pseudo(d, ip, &old.to_be_bytes(), &v.to_be_bytes());
            }
        }
        Field::Ipv6Label => h.set_flow_label(v as u32),
        _ => return FAIL,
    }
    Ok(())
}

#[inline(always)]
fn set_l4(d: &mut [u8], ip: &Ip, field: Field, v: u16) -> Result<(), DropReason> {
    let Some(seg) = ip.upper(d) else {
        return FAIL;
    };
    match field {
        Field::TpSrc | Field::TpDst => {
            let src = field == Field::TpSrc;
            match ip.proto {
                ip_proto::TCP => {
                    let Ok(mut t) = tcp::Packet::new_checked(seg) else {
                        return FAIL;
                    };
                    if src {
                        t.update_src_port(v);
                    } else {
                        t.update_dst_port(v);
                    }
                }
                ip_proto::UDP => {
                    let Ok(mut u) = udp::Packet::new_checked(seg) else {
                        return FAIL;
                    };
                    if src {
                        u.update_src_port(v);
                    } else {
                        u.update_dst_port(v);
                    }
                }
                // The CRC covers the whole packet: not on a fragment.
                ip_proto::SCTP if !ip.frag => {
                    let Ok(mut s) = sctp::Packet::new_checked(seg) else {
                        return FAIL;
                    };
                    if src {
                        s.set_src_port(v);
                    } else {
                        s.set_dst_port(v);
                    }
                    s.fill_checksum();
                }
                _ => return FAIL,
            }
        }
        Field::TcpFlags => {
            if ip.proto != ip_proto::TCP {
                return FAIL;
            }
            let Ok(mut t) = tcp::Packet::new_checked(seg) else {
                return FAIL;
            };
            t.update_flags(v);
        }
        _ => {
            // IcmpType / IcmpCode
            let icmp = if ip.v6 {
                ip_proto::ICMPV6
            } else {
                ip_proto::ICMP
            };
            if ip.proto != icmp {
                return FAIL;
            }
            let Ok(mut c) = icmp::Packet::new_checked(seg) else {
                return FAIL;
            };
            if field == Field::IcmpType {
                c.update_type(v as u8);
            } else {
                c.update_code(v as u8);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// VLAN, TTL

/// Inserts an 802.1Q/802.1ad tag after the MAC addresses.
#[inline]
pub fn push_vlan(buf: &mut Buf, tpid: u16, tci: u16) -> Result<(), DropReason> {
    if buf.len() < ethernet::HEADER_LEN {
        return FAIL;
    }
    buf.insert_gap(ethernet::ADDRS_LEN, vlan::TAG_LEN)
        .ok_or(DropReason::NoHeadroom)?;
    // The gap is the new TPID (in the ethertype field) and TCI; the old ethertype follows as
    // the tag's inner ethertype.
    let mut eth = ethernet::Frame::new_unchecked(buf.data_mut());
    eth.set_ethertype(tpid);
    vlan::Tag::new_unchecked(eth.payload_mut()).set_tci(tci);
    Ok(())
}

/// Removes the outer VLAN tag; no-op when the frame is untagged.
#[inline]
pub fn pop_vlan(buf: &mut Buf) {
    let eth = ethernet::Frame::new_unchecked(buf.data());
    if eth.check_len().is_ok()
        && ethertype::is_vlan(eth.ethertype())
        && vlan::Tag::new_checked(eth.payload()).is_ok()
    {
        buf.remove_gap(ethernet::ADDRS_LEN, vlan::TAG_LEN);
    }
}

/// Decrements the IPv4 TTL (incremental header checksum update) or IPv6 hop limit.
/// `Err(TtlExpired)` (unchanged) when it is <= 1; non-IP frames: `Ok`, unchanged.
#[inline]
pub fn dec_ttl(buf: &mut Buf) -> Result<(), DropReason> {
    let d = buf.data_mut();
    match l3(d) {
        L3::Ip(ip) if ip.v6 => {
            let mut h = ipv6::Packet::new_unchecked(ip.packet(d));
            let ttl = h.hop_limit();
            if ttl <= 1 {
                return Err(DropReason::TtlExpired);
            }
            h.set_hop_limit(ttl - 1);
            Ok(())
        }
        L3::Ip(ip) => {
            let mut h = ipv4::Packet::new_unchecked(ip.packet(d));
            let ttl = h.ttl();
            if ttl <= 1 {
                return Err(DropReason::TtlExpired);
            }
            h.update_ttl(ttl - 1);
            Ok(())
        }
        L3::BadIp => FAIL,
        L3::Arp(_) | L3::Other => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// VXLAN

/// Encapsulates the frame in the prebuilt outer headers of `t` (RFC 7348); see the module docs.
#[inline]
pub fn tunnel_push(buf: &mut Buf, t: &TunnelPush, flow_hash: u32) -> Result<(), DropReason> {
    let h = &t.header;
    let inner = buf.len();
    let sport = udp_src_port(flow_hash);
    let ulen = (inner + UDP_VXLAN_LEN) as u16;
    if h.ipv6 {
        if h.len as usize != VXLAN_IPV6_HDR_LEN {
            return FAIL;
        }
        // Pseudo header: the template's addresses, the length, the next header.
        let tpl = ipv6::Packet::new_unchecked(from(&h.bytes, ethernet::HEADER_LEN));
        let pseudo = checksum::pseudo_header(tpl.pseudo_addrs(), ip_proto::UDP, ulen as usize);
        let hdr = buf
            .push_head(VXLAN_IPV6_HDR_LEN)
            .ok_or(DropReason::NoHeadroom)?;
        hdr.copy_from_slice(&h.bytes);
        ipv6::Packet::new_unchecked(from_mut(hdr, ethernet::HEADER_LEN)).set_payload_len(ulen);
        let mut u = udp::Packet::new_unchecked(from_mut(hdr, TPL6_UDP));
        u.set_src_port(sport);
        u.set_len(ulen);
        // Then UDP (checksum 0 in the template), VXLAN and the inner frame.
        let seg = from_mut(buf.data_mut(), TPL6_UDP);
        let c = checksum::compute(pseudo, seg);
        udp::Packet::new_unchecked(seg).set_checksum(if c == 0 { 0xffff } else { c });
    } else {
        if h.len as usize != VXLAN_IPV4_HDR_LEN {
            return FAIL;
        }
        let hdr = buf
            .push_head(VXLAN_IPV4_HDR_LEN)
            .ok_or(DropReason::NoHeadroom)?;
        hdr.copy_from_slice(&h.bytes[..VXLAN_IPV4_HDR_LEN]);
        let total = ulen + ipv4::HEADER_LEN as u16;
        let mut ip = ipv4::Packet::new_unchecked(from_mut(hdr, ethernet::HEADER_LEN));
        ip.set_total_len(total);
        // The template's checksum covers total length 0: RFC 1624 with m = 0.
        let c = !checksum::fold((!ip.checksum()) as u64 + total as u64);
        ip.set_checksum(c);
        let mut u = udp::Packet::new_unchecked(from_mut(hdr, TPL4_UDP));
        u.set_src_port(sport);
        u.set_len(ulen);
        if t.params.udp_csum {
            let tpl = ipv4::Packet::new_unchecked(from(&h.bytes, ethernet::HEADER_LEN));
            let pseudo = checksum::pseudo_header(tpl.pseudo_addrs(), ip_proto::UDP, ulen as usize);
            let seg = from_mut(buf.data_mut(), TPL4_UDP);
            let c = checksum::compute(pseudo, seg);
            udp::Packet::new_unchecked(seg).set_checksum(if c == 0 { 0xffff } else { c });
        }
    }
    Ok(())
}

/// Validates and strips the outer headers of a VXLAN frame; on success the buffer holds the
/// inner frame. Errors (buffer unchanged) are listed in the module docs.
#[inline]
pub fn tunnel_pop(buf: &mut Buf, dst_port: u16) -> Result<TunnelMeta, DropReason> {
    use DropReason::{TunnelBadIp, TunnelBadUdp, TunnelTruncated, VxlanBadFlags};
    let d = buf.data();
    let Some((o, et)) = ethernet::Frame::new_unchecked(d).l3() else {
        return Err(TunnelTruncated);
    };
    let p = from(d, o);
    let mut meta = TunnelMeta::default();
    // (UDP offset in `p`, IP end in `p`, the pseudo header's addresses)
    let (u, end, addrs) = match et {
        ethertype::IPV4 => {
            let Ok(ip) = ipv4::Packet::new_checked(p) else {
                return Err(TunnelTruncated);
            };
            let hl = ip.header_len();
            if ip.version() != 4 || hl < ipv4::HEADER_LEN {
                return Err(TunnelBadIp);
            }
            if p.len() < hl {
                return Err(TunnelTruncated);
            }
            if !ip.verify_checksum() || ip.is_fragment() || ip.protocol() != ip_proto::UDP {
                return Err(TunnelBadIp);
            }
            if p.len() < hl + UDP_VXLAN_LEN {
                return Err(TunnelTruncated);
            }
            let tl = ip.total_len() as usize;
            if tl < hl || tl > p.len() {
                return Err(TunnelBadIp);
            }
            meta.ipv4_src = ip.src_addr();
            meta.ipv4_dst = ip.dst_addr();
            (hl, tl, ip.pseudo_addrs())
        }
        ethertype::IPV6 => {
            let Ok(ip) = ipv6::Packet::new_checked(p) else {
                return Err(TunnelTruncated);
            };
            if ip.version() != 6 || ip.next_header() != ip_proto::UDP {
                return Err(TunnelBadIp);
            }
            if p.len() < ipv6::HEADER_LEN + UDP_VXLAN_LEN {
                return Err(TunnelTruncated);
            }
            let end = ipv6::HEADER_LEN + ip.payload_len() as usize;
            if end > p.len() {
                return Err(TunnelBadIp);
            }
            meta.ipv6_src = ip.src_addr();
            meta.ipv6_dst = ip.dst_addr();
            (ipv6::HEADER_LEN, end, ip.pseudo_addrs())
        }
        _ => return Err(TunnelBadIp),
    };
    // At least UDP + VXLAN bytes from `u` on (checked above).
    let udp = udp::Packet::new_unchecked(from(p, u));
    let ulen = udp.len() as usize;
    if ulen != end - u || ulen < UDP_VXLAN_LEN || udp.dst_port() != dst_port {
        return Err(TunnelBadUdp);
    }
    if udp.checksum() != 0 {
        let pseudo = checksum::pseudo_header(addrs, ip_proto::UDP, ulen);
        if !udp.verify_checksum(pseudo) {
            return Err(TunnelBadUdp);
        }
    }
    let vx = vxlan::Packet::new_unchecked(from(p, u + udp::HEADER_LEN));
    if !vx.has_vni() {
        return Err(VxlanBadFlags);
    }
    if ulen - UDP_VXLAN_LEN < ethernet::HEADER_LEN {
        return Err(TunnelTruncated);
    }
    meta.tun_id = vx.vni() as u64;
    buf.truncate(o + end);
    buf.pull_head(o + u + UDP_VXLAN_LEN);
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{fold, sum as sum_bytes};
    use crate::wire::icmp::ND_NEIGHBOR_ADVERT as ICMPV6_NA;

    fn be16(d: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([d[at], d[at + 1]])
    }
    use crate::buf::HEADROOM;
    use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use strato_flowtable::tunnel::{TunnelParams, VXLAN_PORT};

    // Frames built once with etherparse's PacketBuilder (checksums valid).
    /// 02:..:01 -> 02:..:02, 10.0.0.1:1234 -> 10.0.0.2:53 UDP, TTL 64, 5 bytes payload.
    const UDP4: [u8; 47] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x21, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x26, 0xca, 0x0a, 0x00, 0x00, 0x01,
        0x0a, 0x00, 0x00, 0x02, 0x04, 0xd2, 0x00, 0x35, 0x00, 0x0d, 0xdd, 0xc4, 0x01, 0x02, 0x03,
        0x04, 0x05,
    ];
    /// VLAN 100, 192.168.1.10:40000 -> 192.168.1.20:80 TCP SYN, TTL 5, 3 bytes payload.
    const TCP4_VLAN: [u8; 61] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0x00,
        0x64, 0x08, 0x00, 0x45, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x40, 0x00, 0x05, 0x06, 0xf2, 0x5e,
        0xc0, 0xa8, 0x01, 0x0a, 0xc0, 0xa8, 0x01, 0x14, 0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56,
        0x78, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0x04, 0x00, 0x86, 0x85, 0x00, 0x00, 0xde, 0xad,
        0xbe,
    ];
    /// ICMPv4 echo request 10.0.0.1 -> 10.0.0.2, TTL 1.
    const ICMP4: [u8; 50] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x24, 0x00, 0x00, 0x40, 0x00, 0x01, 0x01, 0x65, 0xd7, 0x0a, 0x00, 0x00, 0x01,
        0x0a, 0x00, 0x00, 0x02, 0x08, 0x00, 0x72, 0x6a, 0x00, 0x07, 0x00, 0x09, 0x61, 0x61, 0x61,
        0x61, 0x61, 0x61, 0x61, 0x61,
    ];
    /// fd00::1:5000 -> fd00::2:6000 UDP, hop limit 64.
    const UDP6: [u8; 65] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x0b, 0x11, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x13, 0x88, 0x17, 0x70, 0x00, 0x0b,
        0xca, 0xd3, 0x09, 0x08, 0x07,
    ];
    /// fd00::1:443 -> fd00::2:50000 TCP ACK, hop limit 2.
    const TCP6: [u8; 78] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x18, 0x06, 0x02, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0xbb, 0xc3, 0x50, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x50, 0x10, 0x00, 0x64, 0xec, 0x50, 0x00, 0x00, 0x01,
        0x02, 0x03, 0x04,
    ];
    /// Neighbor solicitation fd00::1 -> ff02::1:ff00:2 for target fd00::2 (with SLLA option).
    const NS6: [u8; 86] = [
        0x33, 0x33, 0xff, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x02, 0x87, 0x00, 0x7d, 0x97, 0x00, 0x00,
        0x00, 0x00, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x02, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    ];
    /// ARP request who-has 10.0.0.2 tell 10.0.0.1.
    const ARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02,
    ];
    /// IPv4/SCTP INIT 127.0.0.1 -> 127.0.0.1 as Scapy's regression suite builds it
    /// (`IP()/SCTP()/SCTPChunkInit(params=[SCTPChunkParamIPv4Addr()])`, checksum 40 2c 0b 5f).
    const SCTP4: [u8; 74] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x84, 0x7c, 0x3b, 0x7f, 0x00, 0x00, 0x01,
        0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x2c, 0x0b,
        0x5f, 0x01, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x08, 0x7f, 0x00, 0x00, 0x01,
    ];

    fn buf(frame: &[u8]) -> Box<Buf> {
        let mut b = Buf::new();
        b.fill(frame).unwrap();
        b
    }

    /// Every IPv4 header and TCP/UDP/ICMP checksum verifies, per etherparse.
    fn checks_ok(d: &[u8]) -> bool {
        let h = PacketHeaders::from_ethernet_slice(d).unwrap();
        let p = h.payload.slice();
        match (&h.net, &h.transport) {
            (Some(NetHeaders::Ipv4(ip, _)), t) => {
                ip.header_checksum == ip.calc_header_checksum()
                    && match t {
                        Some(TransportHeader::Udp(u)) => {
                            u.checksum == 0 || u.checksum == u.calc_checksum_ipv4(ip, p).unwrap()
                        }
                        Some(TransportHeader::Tcp(t)) => {
                            t.checksum == t.calc_checksum_ipv4(ip, p).unwrap()
                        }
                        Some(TransportHeader::Icmpv4(i)) => {
                            i.checksum == i.icmp_type.calc_checksum(p)
                        }
                        _ => true,
                    }
            }
            (Some(NetHeaders::Ipv6(ip, _)), t) => match t {
                Some(TransportHeader::Udp(u)) => u.checksum == u.calc_checksum_ipv6(ip, p).unwrap(),
                Some(TransportHeader::Tcp(t)) => t.checksum == t.calc_checksum_ipv6(ip, p).unwrap(),
                Some(TransportHeader::Icmpv6(i)) => {
                    i.checksum
                        == i.icmp_type
                            .calc_checksum(ip.source, ip.destination, p)
                            .unwrap()
                }
                _ => true,
            },
            _ => true,
        }
    }

    /// Applies a set that must succeed, checks all checksums and returns the frame.
    fn set_ok(frame: &[u8], f: Field, v: u128) -> Vec<u8> {
        let mut b = buf(frame);
        set_field(&mut b, f, v).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        assert!(checks_ok(b.data()), "{f} broke a checksum");
        b.data().to_vec()
    }

    fn set_fails(frame: &[u8], f: Field, v: u128) {
        let mut b = buf(frame);
        assert_eq!(
            set_field(&mut b, f, v),
            Err(DropReason::ActionFailed),
            "{f}"
        );
        assert_eq!(b.data(), frame, "{f} changed a packet it failed on");
    }

    fn sctp_crc_ok(sctp: &[u8]) -> bool {
        let mut z = sctp.to_vec();
        z[8..12].fill(0);
        crc32c(&z).to_le_bytes() == sctp[8..12]
    }

    #[test]
    fn static_frames_are_valid() {
        for f in [&UDP4[..], &TCP4_VLAN, &ICMP4, &UDP6, &TCP6, &NS6, &SCTP4] {
            assert!(checks_ok(f));
        }
    }

    #[test]
    fn crc32c_known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 B.4: 32 bytes of zeros / of ones.
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 32]), 0x62a8_ab43);
        // A real SCTP packet: the checksum goes on the wire little-endian.
        assert!(sctp_crc_ok(&SCTP4[34..]));
    }

    #[test]
    fn set_ethernet() {
        let d = set_ok(&UDP4, Field::EthDst, 0x0a0b_0c0d_0e0f);
        assert_eq!(&d[..6], &[0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
        let d = set_ok(&UDP4, Field::EthSrc, 0xffff_0000_0000_0001); // bits above 48 ignored
        assert_eq!(&d[6..12], &[0, 0, 0, 0, 0, 1]);
        assert_eq!(&d[12..], &UDP4[12..]);
        set_fails(&UDP4[..13], Field::EthDst, 1);
    }

    #[test]
    fn set_vlan() {
        let mut tagged = TCP4_VLAN;
        tagged[14] |= 0x10; // DEI set on the wire
        let d = set_ok(&tagged, Field::VlanVid, 0xabc);
        assert_eq!(be16(&d, 14), 0x1abc);
        let d = set_ok(&tagged, Field::VlanPcp, 5);
        assert_eq!(be16(&d, 14), 0xb064);
        // VLAN_PRESENT is not the wire DEI: DEI stays as it was.
        let d = set_ok(&tagged, Field::VlanTci, 0x1000 | (3 << 13) | 7);
        assert_eq!(be16(&d, 14), 0x7007);
        let d = set_ok(&TCP4_VLAN, Field::VlanTci, 0x1000 | 7);
        assert_eq!(be16(&d, 14), 0x0007);
        set_fails(&UDP4, Field::VlanVid, 1);
        set_fails(&UDP4, Field::VlanTci, 0x1001);
        set_fails(&TCP4_VLAN, Field::VlanPresent, 1);
    }

    #[test]
    fn set_arp() {
        let d = set_ok(&ARP, Field::ArpOp, 2);
        assert_eq!(be16(&d, 20), 2);
        let d = set_ok(&ARP, Field::ArpSpa, 0xc0a8_0001);
        assert_eq!(&d[28..32], &[192, 168, 0, 1]);
        let d = set_ok(&ARP, Field::ArpTpa, 0x0a00_0063);
        assert_eq!(&d[38..42], &[10, 0, 0, 99]);
        let d = set_ok(&ARP, Field::ArpSha, 0x0211_2233_4455);
        assert_eq!(&d[22..28], &[2, 0x11, 0x22, 0x33, 0x44, 0x55]);
        let d = set_ok(&ARP, Field::ArpTha, 0x0266_7788_99aa);
        assert_eq!(&d[32..38], &[2, 0x66, 0x77, 0x88, 0x99, 0xaa]);
        set_fails(&UDP4, Field::ArpOp, 2);
        let mut bad = ARP;
        bad[19] = 16; // not IPv4-sized protocol addresses
        set_fails(&bad, Field::ArpSpa, 1);
        set_fails(&ARP[..41], Field::ArpTpa, 1);
        set_fails(&ARP, Field::Ipv4Src, 1);
    }

    #[test]
    fn set_ipv4_addresses_fix_ip_and_l4_checksums() {
        let d = set_ok(&UDP4, Field::Ipv4Src, 0xc633_6401);
        assert_eq!(&d[26..30], &[198, 51, 100, 1]);
        assert_ne!(&d[40..42], &UDP4[40..42]);
        let d = set_ok(&TCP4_VLAN, Field::Ipv4Dst, 0x0808_0808);
        assert_eq!(&d[34..38], &[8, 8, 8, 8]);
        // ICMPv4 has no pseudo header: its checksum does not move.
        let d = set_ok(&ICMP4, Field::Ipv4Dst, 0x0101_0101);
        assert_eq!(&d[36..38], &ICMP4[36..38]);
        // UDP checksum 0 means none, and stays 0.
        let mut nocsum = UDP4;
        nocsum[40..42].fill(0);
        let d = set_ok(&nocsum, Field::Ipv4Src, 0x0102_0304);
        assert_eq!(&d[40..42], &[0, 0]);
        set_fails(&UDP6, Field::Ipv4Src, 1);
    }

    #[test]
    fn udp_checksum_never_becomes_zero() {
        // Choose the new address so the updated UDP checksum computes to 0: it must be 0xffff.
        let c = be16(&UDP4, 40);
        let old = be16(&UDP4, 28);
        // ~c' = ~c + ~old + new == 0xffff (i.e. c' == 0): new = 0xffff - fold(~c + ~old)
        let s = fold((!c) as u64 + (!old) as u64);
        let new = 0xffff - s;
        let v = ((new as u128) << 16) | be16(&UDP4, 28 + 2) as u128;
        let d = set_ok(&UDP4, Field::Ipv4Src, v);
        assert_eq!(be16(&d, 40), 0xffff);
    }

    #[test]
    fn set_ipv4_tos_ttl() {
        let d = set_ok(&UDP4, Field::IpTos, 0xb9);
        assert_eq!(d[15], 0xb9);
        let d = set_ok(&d, Field::IpDscp, 0x0a);
        assert_eq!(d[15], 0x29);
        let d = set_ok(&d, Field::IpEcn, 2);
        assert_eq!(d[15], 0x2a);
        let d = set_ok(&TCP4_VLAN, Field::IpTtl, 200);
        assert_eq!(d[26], 200);
        assert_eq!(&d[38..], &TCP4_VLAN[38..]);
    }

    #[test]
    fn set_ipv6_fields() {
        let d = set_ok(&UDP6, Field::Ipv6Src, 0x2001_0db8 << 96 | 0x42);
        assert_eq!(&d[22..26], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(d[37], 0x42);
        let d = set_ok(&TCP6, Field::Ipv6Dst, u128::MAX - 5);
        assert_eq!(d[53], 0xfa);
        let d = set_ok(&NS6, Field::Ipv6Src, 0xfe80 << 112 | 1);
        assert_eq!(be16(&d, 22), 0xfe80);
        let d = set_ok(&UDP6, Field::IpTos, 0xb9);
        assert_eq!((d[14], d[15]), (0x6b, 0x90));
        let d = set_ok(&d, Field::Ipv6Label, 0xf_ffff);
        assert_eq!(&d[14..18], &[0x6b, 0x9f, 0xff, 0xff]);
        let d = set_ok(&d, Field::IpEcn, 0);
        assert_eq!((d[14], d[15]), (0x6b, 0x8f));
        let d = set_ok(&d, Field::IpDscp, 0);
        assert_eq!(&d[14..18], &[0x60, 0x0f, 0xff, 0xff]);
        let d = set_ok(&TCP6, Field::IpTtl, 9);
        assert_eq!(d[21], 9);
        set_fails(&UDP4, Field::Ipv6Src, 1);
        set_fails(&UDP4, Field::Ipv6Label, 1);
        set_fails(&ARP, Field::IpTtl, 1);
    }

    #[test]
    fn ipv6_routing_header_keeps_the_final_destination_checksum() {
        // UDP6 with a type-0-style routing header (8 bytes, segments left 1) before UDP.
        let mut f = UDP6[..54].to_vec();
        f[20] = 43;
        f[19] += 8;
        f.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 0]);
        f.extend_from_slice(&UDP6[54..]);
        let mut b = buf(&f);
        set_field(&mut b, Field::Ipv6Dst, 7).unwrap();
        assert_eq!(&b.data()[62..], &UDP6[54..]);
        // source address is in the pseudo header either way.
        set_field(&mut b, Field::Ipv6Src, 7).unwrap();
        assert_ne!(&b.data()[62..], &UDP6[54..]);
        // and the ports are found behind the extension header.
        set_field(&mut b, Field::TpDst, 99).unwrap();
        assert_eq!(be16(b.data(), 64), 99);
    }

    #[test]
    fn set_ports() {
        let d = set_ok(&UDP4, Field::TpSrc, 4321);
        assert_eq!(be16(&d, 34), 4321);
        let d = set_ok(&UDP4, Field::TpDst, 5353);
        assert_eq!(be16(&d, 36), 5353);
        let d = set_ok(&TCP4_VLAN, Field::TpDst, 8080);
        assert_eq!(be16(&d, 40), 8080);
        let d = set_ok(&UDP6, Field::TpSrc, 1);
        assert_eq!(be16(&d, 54), 1);
        let d = set_ok(&TCP6, Field::TpSrc, 0xffff);
        assert_eq!(be16(&d, 54), 0xffff);
        set_fails(&ICMP4, Field::TpSrc, 1);
        set_fails(&NS6, Field::TpDst, 1);
        set_fails(&ARP, Field::TpDst, 1);
        set_fails(&UDP4[..41], Field::TpDst, 1); // IP length no longer fits: no usable IP
    }

    #[test]
    fn set_sctp_ports_recomputes_crc() {
        let mut b = buf(&SCTP4);
        set_field(&mut b, Field::TpSrc, 5000).unwrap();
        set_field(&mut b, Field::TpDst, 6000).unwrap();
        let d = b.data();
        assert_eq!((be16(d, 34), be16(d, 36)), (5000, 6000));
        assert_ne!(&d[42..46], &SCTP4[42..46]);
        assert!(sctp_crc_ok(&d[34..]));
        // back to the original ports gives the original (known-good) checksum.
        set_field(&mut b, Field::TpSrc, 0).unwrap();
        set_field(&mut b, Field::TpDst, 0).unwrap();
        assert_eq!(b.data(), &SCTP4);
        // no SCTP port rewrite on a fragment (the CRC covers the whole packet).
        let mut frag = SCTP4;
        frag[20] = 0x20; // MF
        frag[24..26].copy_from_slice(&0x5c3bu16.to_be_bytes()); // IP checksum fixed for MF
        assert!(checks_ok(&frag));
        set_fails(&frag, Field::TpSrc, 1);
    }

    #[test]
    fn set_tcp_flags_and_icmp() {
        let d = set_ok(&TCP4_VLAN, Field::TcpFlags, 0x012); // SYN|ACK
        assert_eq!(be16(&d, 50), 0x5012);
        set_fails(&UDP4, Field::TcpFlags, 1);
        // reserved bits are written too (the data offset is kept), and undoing restores all.
        // (etherparse cannot check this one: it leaves the reserved bits out of its checksum)
        let mut b = buf(&TCP4_VLAN);
        set_field(&mut b, Field::TcpFlags, 0xfe12).unwrap();
        assert_eq!(be16(b.data(), 50), 0x5e12);
        set_field(&mut b, Field::TcpFlags, 0x002).unwrap();
        assert_eq!(b.data(), &TCP4_VLAN);
        let d = set_ok(&ICMP4, Field::IcmpType, 0);
        assert_eq!(d[34], 0);
        let d = set_ok(&ICMP4, Field::IcmpCode, 3);
        assert_eq!(d[35], 3);
        let d = set_ok(&NS6, Field::IcmpType, ICMPV6_NA as u128);
        assert_eq!(d[54], ICMPV6_NA);
        let d = set_ok(&NS6, Field::IcmpCode, 1);
        assert_eq!(d[55], 1);
        set_fails(&UDP4, Field::IcmpType, 0);
    }

    #[test]
    fn set_nd_target() {
        let d = set_ok(&NS6, Field::NdTarget, 0xfe80 << 112 | 0xabcd);
        assert_eq!(be16(&d, 62), 0xfe80);
        assert_eq!(be16(&d, 76), 0xabcd);
        set_fails(&UDP6, Field::NdTarget, 1);
        let mut echo = NS6;
        echo[54] = 128; // not NS/NA (checksum now wrong, irrelevant for a failing set)
        set_fails(&echo, Field::NdTarget, 1);
    }

    #[test]
    fn later_fragment_has_no_l4() {
        let mut frag = UDP4;
        frag[20] = 0x00;
        frag[21] = 0x10; // offset 16*8
        frag[24..26].copy_from_slice(&0x66bau16.to_be_bytes());
        let ip4_ok = |d: &[u8]| {
            let (ip, _) = etherparse::Ipv4Header::from_slice(&d[14..]).unwrap();
            ip.header_checksum == ip.calc_header_checksum()
        };
        assert!(ip4_ok(&frag));
        set_fails(&frag, Field::TpSrc, 1);
        set_fails(&frag, Field::IcmpType, 1);
        let mut b = buf(&frag);
        set_field(&mut b, Field::Ipv4Src, 0x0b00_0001).unwrap();
        // only the IP header changed; the "UDP checksum" bytes are payload here.
        assert_eq!(&b.data()[34..], &frag[34..]);
        assert!(ip4_ok(b.data()));
    }

    #[test]
    fn unsupported_fields_fail_unchanged() {
        for f in [
            Field::InPort,
            Field::Metadata,
            Field::Reg0,
            Field::Reg3,
            Field::TunId,
            Field::TunIpv4Dst,
            Field::TunIpv6Src,
            Field::EthType,
            Field::IpProto,
            Field::IpFrag,
            Field::VlanPresent,
        ] {
            set_fails(&TCP4_VLAN, f, 1);
        }
        let mut bad = UDP4;
        bad[14] = 0x44; // IHL 4
        set_fails(&bad, Field::IpTtl, 1);
        set_fails(&[], Field::EthDst, 1);
    }

    #[test]
    fn vlan_push_pop() {
        let mut b = buf(&UDP4);
        push_vlan(&mut b, 0x8100, 0x2064).unwrap();
        assert_eq!(b.len(), UDP4.len() + 4);
        assert_eq!(&b.data()[..12], &UDP4[..12]);
        assert_eq!(&b.data()[12..16], &[0x81, 0x00, 0x20, 0x64]);
        assert_eq!(&b.data()[16..], &UDP4[12..]);
        // set_field still finds L3 behind the tag.
        set_field(&mut b, Field::Ipv4Dst, 0x0a00_0009).unwrap();
        assert!(checks_ok(b.data()));
        pop_vlan(&mut b);
        assert_eq!(&b.data()[..12], &UDP4[..12]);
        assert_eq!(b.len(), UDP4.len());
        pop_vlan(&mut b); // untagged: no-op
        assert_eq!(b.len(), UDP4.len());
        assert_eq!(&b.data()[12..14], &[0x08, 0x00]);

        let mut b = buf(&TCP4_VLAN);
        pop_vlan(&mut b);
        assert_eq!(&b.data()[12..14], &[0x08, 0x00]);
        assert!(checks_ok(b.data()));

        let mut b = buf(&UDP4);
        b.push_head(HEADROOM - 3).unwrap();
        let before = b.data().to_vec();
        assert_eq!(push_vlan(&mut b, 0x88a8, 1), Err(DropReason::NoHeadroom));
        assert_eq!(b.data(), &before[..]);
        let mut short = buf(&UDP4[..13]);
        assert_eq!(
            push_vlan(&mut short, 0x8100, 1),
            Err(DropReason::ActionFailed)
        );
        assert_eq!(short.data(), &UDP4[..13]);
    }

    #[test]
    fn ttl_decrement() {
        let mut b = buf(&UDP4);
        dec_ttl(&mut b).unwrap();
        assert_eq!(b.data()[22], 63);
        assert!(checks_ok(b.data()));
        let mut b = buf(&TCP4_VLAN);
        dec_ttl(&mut b).unwrap();
        assert_eq!(b.data()[26], 4);
        assert!(checks_ok(b.data()));
        let mut b = buf(&ICMP4); // TTL 1
        assert_eq!(dec_ttl(&mut b), Err(DropReason::TtlExpired));
        assert_eq!(b.data(), &ICMP4);
        let mut b = buf(&TCP6); // hop limit 2
        dec_ttl(&mut b).unwrap();
        assert_eq!(b.data()[21], 1);
        assert_eq!(dec_ttl(&mut b), Err(DropReason::TtlExpired));
        assert_eq!(b.data()[21], 1);
        let mut b = buf(&ARP);
        dec_ttl(&mut b).unwrap();
        assert_eq!(b.data(), &ARP);
        let mut bad = UDP4;
        bad[14] = 0x55; // version 5
        let mut b = buf(&bad);
        assert_eq!(dec_ttl(&mut b), Err(DropReason::ActionFailed));
        assert_eq!(b.data(), &bad);
    }

    fn tunnel(v6: bool, udp_csum: bool) -> TunnelPush {
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            (
                "2001:db8::1".parse::<Ipv6Addr>().unwrap().into(),
                "2001:db8::2".parse::<Ipv6Addr>().unwrap().into(),
            )
        } else {
            (
                Ipv4Addr::new(192, 0, 2, 1).into(),
                Ipv4Addr::new(192, 0, 2, 2).into(),
            )
        };
        TunnelPush::new(
            7,
            1,
            TunnelParams {
                vni: 0x00ab_cdef,
                src_mac: [2, 0, 0, 0, 0, 0xa],
                dst_mac: [2, 0, 0, 0, 0, 0xb],
                src_ip: src,
                dst_ip: dst,
                ttl: 64,
                tos: 0,
                dst_port: VXLAN_PORT,
                udp_csum,
            },
        )
        .unwrap()
    }

    /// Checks an encapsulated frame with etherparse; returns the inner frame.
    fn check_outer(d: &[u8], t: &TunnelPush, hash: u32) -> Vec<u8> {
        let h = PacketHeaders::from_ethernet_slice(d).unwrap();
        let Some(TransportHeader::Udp(u)) = h.transport else {
            panic!("no UDP")
        };
        let p = h.payload.slice();
        assert_eq!(u.source_port, udp_src_port(hash));
        assert!((32768..=60999).contains(&u.source_port));
        assert_eq!(u.destination_port, VXLAN_PORT);
        assert_eq!(u.length as usize, p.len() + 8);
        match h.net {
            Some(NetHeaders::Ipv4(ip, _)) => {
                assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                assert_eq!(ip.total_len as usize, d.len() - 14);
                assert!(ip.dont_fragment);
                if t.params.udp_csum {
                    assert_eq!(u.checksum, u.calc_checksum_ipv4(&ip, p).unwrap());
                } else {
                    assert_eq!(u.checksum, 0);
                }
            }
            Some(NetHeaders::Ipv6(ip, _)) => {
                assert_eq!(ip.payload_length as usize, d.len() - 54);
                assert_eq!(u.checksum, u.calc_checksum_ipv6(&ip, p).unwrap());
            }
            _ => panic!("no IP"),
        }
        assert_eq!(&p[..8], &[0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
        p[8..].to_vec()
    }

    #[test]
    fn tunnel_roundtrip_all_underlays() {
        for (v6, csum) in [(false, false), (false, true), (true, false), (true, true)] {
            let t = tunnel(v6, csum);
            for inner in [&UDP4[..], &TCP6, &ARP, &UDP4[..14]] {
                let mut b = buf(inner);
                tunnel_push(&mut b, &t, 0xdead_beef).unwrap();
                assert_eq!(b.len(), inner.len() + t.header.len as usize);
                assert_eq!(check_outer(b.data(), &t, 0xdead_beef), inner);
                let m = tunnel_pop(&mut b, VXLAN_PORT).unwrap();
                assert_eq!(b.data(), inner);
                assert_eq!(m.tun_id, 0xab_cdef);
                if v6 {
                    assert_eq!(m.ipv6_src, 0x2001_0db8 << 96 | 1);
                    assert_eq!(m.ipv6_dst, 0x2001_0db8 << 96 | 2);
                    assert_eq!((m.ipv4_src, m.ipv4_dst), (0, 0));
                } else {
                    assert_eq!((m.ipv4_src, m.ipv4_dst), (0xc000_0201, 0xc000_0202));
                    assert_eq!((m.ipv6_src, m.ipv6_dst), (0, 0));
                }
            }
        }
    }

    #[test]
    fn tunnel_push_without_headroom() {
        let t = tunnel(true, false);
        let mut b = buf(&UDP4);
        b.push_head(HEADROOM - 69).unwrap();
        let before = b.data().to_vec();
        assert_eq!(tunnel_push(&mut b, &t, 1), Err(DropReason::NoHeadroom));
        assert_eq!(b.data(), &before[..]);
        let mut bad = tunnel(false, false);
        bad.header.len = 70; // inconsistent template
        let mut b = buf(&UDP4);
        assert_eq!(tunnel_push(&mut b, &bad, 1), Err(DropReason::ActionFailed));
        assert_eq!(b.data(), &UDP4);
    }

    fn encap(v6: bool, csum: bool) -> Vec<u8> {
        let mut b = buf(&UDP4);
        tunnel_push(&mut b, &tunnel(v6, csum), 42).unwrap();
        b.data().to_vec()
    }

    fn pop_err(frame: &[u8], e: DropReason) {
        let mut b = buf(frame);
        assert_eq!(tunnel_pop(&mut b, VXLAN_PORT), Err(e));
        assert_eq!(b.data(), frame, "changed on error");
    }

    /// Recomputes the IPv4 header checksum after a deliberate edit.
    fn fix_ip4(f: &mut [u8]) {
        f[24..26].fill(0);
        let hl = (f[14] & 0xf) as usize * 4;
        let c = !fold(sum_bytes(0, &f[14..14 + hl]));
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn tunnel_pop_rejects_ipv4_corruptions() {
        use DropReason::*;
        let good = encap(false, true);
        let mut f = good.clone();
        f[42] = 0x00; // VXLAN flags without I
        f[40..42].fill(0); // (UDP checksum off so the flags check is reached)
        pop_err(&f, VxlanBadFlags);
        let mut f = good.clone();
        f[42] = 0xf7; // every bit but I
        f[40..42].fill(0);
        pop_err(&f, VxlanBadFlags);
        let mut f = good.clone();
        f[43] = 0xff; // reserved bits: ignored
        f[40..42].fill(0);
        assert!(tunnel_pop(&mut buf(&f), VXLAN_PORT).is_ok());
        let mut f = good.clone();
        f[24] ^= 1; // IP checksum
        pop_err(&f, TunnelBadIp);
        let mut f = good.clone();
        f[14] = 0x46; // IHL 6 without options
        fix_ip4(&mut f);
        pop_err(&f, TunnelBadUdp); // UDP is then read at the wrong place
        let mut f = good.clone();
        f[14] = 0x65;
        fix_ip4(&mut f);
        pop_err(&f, TunnelBadIp);
        let mut f = good.clone();
        f[20] = 0x20; // MF
        fix_ip4(&mut f);
        pop_err(&f, TunnelBadIp);
        let mut f = good.clone();
        f[23] = 6; // TCP
        fix_ip4(&mut f);
        pop_err(&f, TunnelBadIp);
        let mut f = good.clone();
        f[17] += 1; // total length beyond the frame
        fix_ip4(&mut f);
        pop_err(&f, TunnelBadIp);
        let mut f = good.clone();
        f[17] -= 1; // total length shorter than UDP says
        fix_ip4(&mut f);
        pop_err(&f, TunnelBadUdp);
        let mut f = good.clone();
        f[59] ^= 0x40; // inner byte: UDP checksum
        pop_err(&f, TunnelBadUdp);
        let mut f = good.clone();
        f[36..38].copy_from_slice(&4790u16.to_be_bytes());
        pop_err(&f, TunnelBadUdp);
        let mut f = good.clone();
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        pop_err(&f, TunnelBadIp);
        for cut in [0, 13, 14, 33, 34, 41, 49] {
            pop_err(&good[..cut], TunnelTruncated);
        }
        pop_err(&good[..50], TunnelBadIp); // ends inside the inner frame
        pop_err(&good[..good.len() - 1], TunnelBadIp);
    }

    #[test]
    fn tunnel_pop_lengths_padding_vlan_and_zero_checksum() {
        use DropReason::*;
        // Zero UDP checksum accepted (IPv4 and IPv6).
        let mut b = buf(&encap(false, false));
        assert!(tunnel_pop(&mut b, VXLAN_PORT).is_ok());
        let mut f = encap(true, true);
        f[60..62].fill(0);
        let mut b = buf(&f);
        assert!(tunnel_pop(&mut b, VXLAN_PORT).is_ok());
        assert_eq!(b.data(), &UDP4);
        // Ethernet padding after the IP packet is trimmed.
        let mut f = encap(false, true);
        f.extend_from_slice(&[0; 6]);
        let mut b = buf(&f);
        tunnel_pop(&mut b, VXLAN_PORT).unwrap();
        assert_eq!(b.data(), &UDP4);
        // One outer VLAN tag is fine.
        let mut b = buf(&encap(true, true));
        push_vlan(&mut b, 0x8100, 10).unwrap();
        tunnel_pop(&mut b, VXLAN_PORT).unwrap();
        assert_eq!(b.data(), &UDP4);
        // Inner frame shorter than Ethernet.
        let mut b = buf(&UDP4[..13]);
        tunnel_push(&mut b, &tunnel(false, true), 1).unwrap();
        let f = b.data().to_vec();
        pop_err(&f, TunnelTruncated);
        // UDP length shorter than the 16 bytes UDP + VXLAN (IP length agrees).
        let mut f = encap(false, false);
        f[16] = 0;
        f[17] = 34;
        f[38] = 0;
        f[39] = 14;
        fix_ip4(&mut f);
        pop_err(&f, TunnelBadUdp);
        // IPv6: wrong version, next header, payload length, UDP length, checksum.
        let good = encap(true, true);
        let mut f = good.clone();
        f[14] = 0x40;
        pop_err(&f, TunnelBadIp);
        let mut f = good.clone();
        f[20] = 0; // hop-by-hop: UDP not directly after
        pop_err(&f, TunnelBadIp);
        let mut f = good.clone();
        f[19] += 1;
        pop_err(&f, TunnelBadIp);
        let mut f = good.clone();
        f[59] += 1;
        pop_err(&f, TunnelBadUdp);
        let mut f = good.clone();
        f[61] ^= 1;
        pop_err(&f, TunnelBadUdp);
        for cut in [20, 53, 54, 69] {
            pop_err(&good[..cut], TunnelTruncated);
        }
    }
}
