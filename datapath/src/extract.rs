//! Fast flow-key extraction: one Ethernet frame -> [`PacketKey`] (key words, map, hash).
//!
//! Contract:
//! - [`extract`] never panics and never allocates, on any input bytes. Each header is
//!   bounds-checked once, through a [`crate::wire`] view's `new_checked` (whose accessors read
//!   a fixed-size chunk), and whole key words are composed from the header fields (see
//!   [`strato_flowtable::key::words`] for the layout).
//! - `out.map` is a function of *which headers were parsed*, never of field values: words 0, 1, 2
//!   always; 5..=10 when `tun` is `Some`; 3 for IPv4; 14..=17 and 23 for IPv6; 4 when an L4
//!   header (TCP/UDP/SCTP/ICMP/ICMPv6) was parsed; 21..=22 for an ND target; 18..=20 for ARP.
//!   `out.hash == out.key.hash_map(out.map)`, and every word outside `out.map` is zero.
//! - `out` must hold the [`PacketKey`] invariant on entry (words outside `out.map` are zero), as
//!   [`PacketKey::default`] and every earlier result of `extract` do: only the words of the old
//!   map that the new map lacks are cleared, so a reused key costs no full reset.
//!
//! Semantics (Open vSwitch's flow extraction where it has one):
//! - A frame shorter than 14 bytes is dropped: `Err(DropReason::TruncatedEthernet)`. Every other
//!   frame gives `Ok`, with [`ExtractInfo::malformed`] set when an L2.5/L3/L4 header below was
//!   malformed or cut short; the key then holds only what parsed cleanly.
//! - `in_port` -> `in_port`; `tun` -> `tun_id`, `tun_src`/`tun_dst`, `tun_ipv6_src`/`_dst`.
//! - Ethernet destination, source and type. One 802.1Q / 802.1ad tag (TPID 0x8100 or 0x88a8):
//!   `vlan_tci = pcp << 13 | VLAN_PRESENT | vid` (the wire DEI bit is dropped, like OVS) and
//!   `eth_type` = the inner ethertype. A tag cut short: malformed, `vlan_tci = 0`,
//!   `eth_type` = the TPID, nothing more. A second tag (QinQ): `eth_type` = that inner TPID and
//!   nothing more is parsed (not malformed).
//! - An ethertype below 0x0600 is an 802.3 length: `eth_type = 0x05ff` (OVS's "no ethertype"),
//!   nothing more.
//! - ARP (0x0806): fewer than 28 bytes: malformed, no ARP fields. With htype 1, ptype 0x0800,
//!   hlen 6, plen 4: `arp_op`, `arp_sha`, `arp_spa`, `arp_tha`, `arp_tpa`. Other ARP kinds: no
//!   ARP fields, not malformed.
//! - IPv4 (0x0800): version 4, IHL >= 5, total length >= IHL * 4 and the frame holds total length
//!   bytes (bytes past it are Ethernet padding, ignored); otherwise malformed and no L3 fields.
//!   `nw_src`, `nw_dst`, `nw_proto`, `nw_tos`, `nw_ttl`, `nw_frag` ([`FRAG_ANY`] when MF is set
//!   or the offset is non-zero, plus [`FRAG_LATER`] when the offset is non-zero). The header
//!   checksum is not checked (an L2 switch forwards such frames). L4 is parsed, unless a later
//!   fragment, inside `[IHL * 4, total length)`:
//!   - TCP (6): 20 bytes, data offset >= 5 and data offset * 4 <= the L4 length; `tp_src`,
//!     `tp_dst`, `tcp_flags` = low 12 bits of the offset/flags word. Else malformed, no L4.
//!   - UDP (17): 8 bytes; SCTP (132): 12 bytes: `tp_src`, `tp_dst`.
//!   - ICMP (1): 8 bytes: `icmp_type`, `icmp_code`.
//!   - Too short: malformed, no L4 fields (L3 fields stay). Other protocols: no L4.
//! - IPv6 (0x86dd): version 6, 40 bytes, and the frame holds 40 + payload length bytes (else
//!   malformed, no L3 fields). `ipv6_src`, `ipv6_dst`, `nw_tos` = traffic class, `nw_ttl` = hop
//!   limit, `ipv6_label`. Extension headers hop-by-hop (0), routing (43), destination options
//!   (60) and AH (51) are skipped, in any order, at most 8 headers in a chain (fragment headers
//!   count); a truncated header (an AH needs 12 bytes) or a longer chain is malformed: L3
//!   fields stay, `nw_proto` = the last next header reached, no L4. Fragment (44): [`FRAG_ANY`],
//!   plus [`FRAG_LATER`] when the offset is non-zero (then `nw_proto` = its next header and no
//!   L4). `nw_proto` = the final
//!   next header. L4 inside the payload length: TCP/UDP/SCTP as for IPv4; ICMPv6 (58): 8 bytes,
//!   `icmp_type`, `icmp_code`, and for neighbor solicitation / advertisement (135 / 136, code 0)
//!   with at least 24 bytes, `nd_target` (a shorter ND message keeps type/code, has no target
//!   and is not marked malformed). A jumbogram (payload length 0) is malformed.
//! - Any other ethertype: L2 fields only.

use crate::stats::DropReason;
use crate::wire::{arp, ethernet, ethertype, icmp, ip_proto, ipv4, ipv6, sctp, tcp, udp, vlan};
use strato_flowtable::key::{words as W, PacketKey, FRAG_ANY, FRAG_LATER, KEY_WORDS, VLAN_PRESENT};
use strato_flowtable::PortNo;

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

/// OVS's `FLOW_DL_TYPE_NONE`: the flow key's ethertype of an 802.3 (length) frame.
const ETH_NONE: u16 = 0x05ff;

/// Longest IPv6 extension-header chain walked.
const MAX_IPV6_EXT_HEADERS: u32 = 8;

const fn bit(word: usize) -> u32 {
    1 << word
}
const MAP_BASE: u32 = bit(W::PORT_TYPE_TCI) | bit(W::ETH_DST_PROTO_FRAG) | bit(W::ETH_SRC_TOS_TTL);
const MAP_TUN: u32 = bit(W::TUN_ID)
    | bit(W::TUN_IPV4)
    | bit(W::TUN_IPV6_SRC)
    | bit(W::TUN_IPV6_SRC + 1)
    | bit(W::TUN_IPV6_DST)
    | bit(W::TUN_IPV6_DST + 1);
const MAP_IPV4: u32 = bit(W::IPV4);
const MAP_IPV6: u32 = bit(W::IPV6_SRC)
    | bit(W::IPV6_SRC + 1)
    | bit(W::IPV6_DST)
    | bit(W::IPV6_DST + 1)
    | bit(W::IPV6_LABEL);
const MAP_L4: u32 = bit(W::L4);
const MAP_ND: u32 = bit(W::ND_TARGET) | bit(W::ND_TARGET + 1);
const MAP_ARP: u32 = bit(W::ARP_PA) | bit(W::ARP_SHA_OP) | bit(W::ARP_THA);
const MAP_V4_L4: u32 = MAP_BASE | MAP_IPV4 | MAP_L4;
const MAP_V6_L4: u32 = MAP_BASE | MAP_IPV6 | MAP_L4;

// Every map word must exist in the key (hash_map indexes by map bit).
const _: () =
    assert!((MAP_BASE | MAP_TUN | MAP_IPV6 | MAP_L4 | MAP_ND | MAP_ARP) >> KEY_WORDS == 0);

/// What the L3 parsers hand back: the low 16 bits of words 1 and 2, map bits, malformed.
#[derive(Clone, Copy)]
struct L3 {
    /// `ip_proto << 8 | ip_frag`.
    proto_frag: u64,
    /// `ip_tos << 8 | ip_ttl`.
    tos_ttl: u64,
    /// Map bits of the words written.
    map: u32,
    malformed: bool,
}

const L3_NONE: L3 = L3 {
    proto_frag: 0,
    tos_ttl: 0,
    map: 0,
    malformed: false,
};
const L3_MALFORMED: L3 = L3 {
    proto_frag: 0,
    tos_ttl: 0,
    map: 0,
    malformed: true,
};

/// Extracts `frame`'s key into `out` (fills key, map and hash). See the module docs for the
/// semantics; `out` must hold the [`PacketKey`] invariant (words outside `map` are zero).
#[inline(always)]
pub fn extract(
    frame: &[u8],
    in_port: PortNo,
    tun: Option<&TunnelMeta>,
    out: &mut PacketKey,
) -> Result<ExtractInfo, DropReason> {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return Err(DropReason::TruncatedEthernet);
    };
    let rest = eth.payload();
    let old_map = out.map;
    let k = &mut out.key.w;
    let mut map = MAP_BASE;

    if let Some(t) = tun {
        k[W::TUN_ID] = t.tun_id;
        k[W::TUN_IPV4] = (t.ipv4_src as u64) << 32 | t.ipv4_dst as u64;
        k[W::TUN_IPV6_SRC] = (t.ipv6_src >> 64) as u64;
        k[W::TUN_IPV6_SRC + 1] = t.ipv6_src as u64;
        k[W::TUN_IPV6_DST] = (t.ipv6_dst >> 64) as u64;
        k[W::TUN_IPV6_DST + 1] = t.ipv6_dst as u64;
        map |= MAP_TUN;
    }

    let mut eth_type = eth.ethertype();
    let mut tci = 0u16;
    let mut payload = rest;
    let mut l3 = L3_NONE;
    'l3: {
        if ethertype::is_vlan(eth_type) {
            let Ok(tag) = vlan::Tag::new_checked(rest) else {
                l3.malformed = true;
                break 'l3;
            };
            tci = tag.tci() | VLAN_PRESENT;
            eth_type = tag.ethertype();
            payload = tag.payload();
            if ethertype::is_vlan(eth_type) {
                break 'l3;
            }
        }
        l3 = match eth_type {
            ethertype::IPV4 => ipv4(payload, k),
            ethertype::IPV6 => ipv6(payload, k),
            ethertype::ARP => arp(payload, k),
            t if t < ethertype::MIN_TYPE => {
                eth_type = ETH_NONE;
                L3_NONE
            }
            _ => L3_NONE,
        };
    }
    map |= l3.map;

    k[W::PORT_TYPE_TCI] = (in_port as u64) << 32 | (eth_type as u64) << 16 | tci as u64;
    k[W::ETH_DST_PROTO_FRAG] = eth.dst_addr_u64() << 16 | l3.proto_frag;
    k[W::ETH_SRC_TOS_TTL] = eth.src_addr_u64() << 16 | l3.tos_ttl;

    // Words the previous packet set and this one does not: back to zero.
    let mut stale = old_map & !map;
    while stale != 0 {
        let i = stale.trailing_zeros() as usize;
        stale &= stale - 1;
        if let Some(w) = k.get_mut(i) {
            *w = 0;
        }
    }
    out.map = map;
    // The common maps as constants: `hash_map` then unrolls into straight-line code.
    out.hash = match map {
        MAP_V4_L4 => out.key.hash_map(MAP_V4_L4),
        MAP_V6_L4 => out.key.hash_map(MAP_V6_L4),
        m => out.key.hash_map(m),
    };
    Ok(ExtractInfo {
        malformed: l3.malformed,
    })
}

/// IPv4 header and its L4.
#[inline(always)]
fn ipv4(p: &[u8], k: &mut [u64; KEY_WORDS]) -> L3 {
    let Ok(ip) = ipv4::Packet::new_checked(p) else {
        return L3_MALFORMED;
    };
    // `ipv4::Packet::check_lengths`, written out: one branch per condition here keeps this
    // path as short as the hand-written reads were (and tells the slice below its bounds).
    let (ihl, total) = (ip.header_len(), ip.total_len() as usize);
    if ip.version() != 4 || ihl < ipv4::HEADER_LEN || total < ihl || p.len() < total {
        return L3_MALFORMED;
    }
    // One read of the flags/offset word for both tests (as separate accessors the two reads
    // compile to byte-wise code that costs four instructions more per packet).
    let ff = ip.flags_and_offset();
    let later = ff & ipv4::OFFSET_MASK != 0;
    let frag = if later {
        FRAG_ANY | FRAG_LATER
    } else if ff & ipv4::FLAG_MF != 0 {
        FRAG_ANY
    } else {
        0
    };
    let proto = ip.protocol();
    k[W::IPV4] = ip.addrs_u64();
    let mut l3 = L3 {
        proto_frag: (proto as u64) << 8 | frag as u64,
        tos_ttl: (ip.tos() as u64) << 8 | ip.ttl() as u64,
        map: MAP_IPV4,
        malformed: false,
    };
    if !later {
        // ihl <= total <= p.len(), so the range is in bounds; `get` keeps it panic-free anyway.
        let l4 = p.get(ihl..total).unwrap_or_default();
        transport(proto, ip_proto::ICMP, l4, k, &mut l3);
    }
    l3
}

/// L4 header of an IPv4 or IPv6 packet (`icmp` is the protocol number of that version's ICMP).
#[inline(always)]
fn transport(proto: u8, icmp: u8, l4: &[u8], k: &mut [u64; KEY_WORDS], l3: &mut L3) {
    let word = match proto {
        ip_proto::TCP => match tcp::Packet::new_checked(l4) {
            Ok(t) if t.check_lengths() => (t.ports() as u64) << 32 | (t.flags() as u64) << 16,
            _ => {
                l3.malformed = true;
                return;
            }
        },
        ip_proto::UDP => match udp::Packet::new_checked(l4) {
            Ok(u) => (u.ports() as u64) << 32,
            Err(_) => {
                l3.malformed = true;
                return;
            }
        },
        ip_proto::SCTP => match sctp::Packet::new_checked(l4) {
            Ok(s) => (s.ports() as u64) << 32,
            Err(_) => {
                l3.malformed = true;
                return;
            }
        },
        p if p == icmp => match icmp::Packet::new_checked(l4) {
            Ok(c) if l4.len() >= icmp::MESSAGE_MIN_LEN => {
                if icmp == ip_proto::ICMPV6 && c.is_nd() {
                    if let Ok(nd) = icmp::NdMessage::new_checked(l4) {
                        let t = nd.target();
                        k[W::ND_TARGET] = (t >> 64) as u64;
                        k[W::ND_TARGET + 1] = t as u64;
                        l3.map |= MAP_ND;
                    }
                }
                c.type_code() as u64
            }
            _ => {
                l3.malformed = true;
                return;
            }
        },
        _ => return,
    };
    k[W::L4] = word;
    l3.map |= MAP_L4;
}

/// IPv6 header, its extension-header chain and its L4.
#[inline]
fn ipv6(p: &[u8], k: &mut [u64; KEY_WORDS]) -> L3 {
    let Ok(ip) = ipv6::Packet::new_checked(p) else {
        return L3_MALFORMED;
    };
    if !ip.check_lengths() {
        return L3_MALFORMED;
    }
    let mut rest = ip.payload();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    k[W::IPV6_SRC] = (src >> 64) as u64;
    k[W::IPV6_SRC + 1] = src as u64;
    k[W::IPV6_DST] = (dst >> 64) as u64;
    k[W::IPV6_DST + 1] = dst as u64;
    k[W::IPV6_LABEL] = (ip.flow_label() as u64) << 32;
    let mut l3 = L3 {
        proto_frag: 0,
        tos_ttl: (ip.traffic_class() as u64) << 8 | ip.hop_limit() as u64,
        map: MAP_IPV6,
        malformed: false,
    };

    let mut nh = ip.next_header();
    let mut frag = 0u8;
    let mut count = 0u32;
    let parse_l4 = loop {
        let len = match nh {
            ip_proto::HOPOPTS | ip_proto::ROUTING | ip_proto::DSTOPTS | ip_proto::AH => {
                match ipv6::ExtHeader::new_checked(rest) {
                    // An AH needs at least 12 bytes (payload length >= 1, RFC 4302).
                    Ok(e) if nh == ip_proto::AH && e.len_field() == 0 => usize::MAX,
                    Ok(e) => e.header_len(nh),
                    Err(_) => usize::MAX,
                }
            }
            ip_proto::FRAGMENT => ipv6::EXT_MIN_LEN,
            _ => break true,
        };
        if count == MAX_IPV6_EXT_HEADERS {
            l3.malformed = true;
            break false;
        }
        count += 1;
        let Some(after) = rest.get(len..) else {
            l3.malformed = true;
            break false;
        };
        // `len >= 8` bytes are there, so the next-header byte (and a fragment header) is.
        let next = ipv6::ExtHeader::new_unchecked(rest).next_header();
        if nh == ip_proto::FRAGMENT {
            frag |= FRAG_ANY;
            if ipv6::FragHeader::new_unchecked(rest).frag_offset() != 0 {
                frag |= FRAG_LATER;
                nh = next;
                break false;
            }
        }
        nh = next;
        rest = after;
    };
    l3.proto_frag = (nh as u64) << 8 | frag as u64;
    if parse_l4 {
        transport(nh, ip_proto::ICMPV6, rest, k, &mut l3);
    }
    l3
}

/// ARP for IPv4 over Ethernet.
#[inline]
fn arp(p: &[u8], k: &mut [u64; KEY_WORDS]) -> L3 {
    let Ok(a) = arp::Packet::new_checked(p) else {
        return L3_MALFORMED;
    };
    if !a.is_ethernet_ipv4() {
        return L3_NONE;
    }
    k[W::ARP_PA] = (a.spa() as u64) << 32 | a.tpa() as u64;
    k[W::ARP_SHA_OP] = a.sha_u64() << 16 | a.operation() as u64;
    k[W::ARP_THA] = a.tha_u64() << 16;
    L3 {
        map: MAP_ARP,
        ..L3_NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_flowtable::key::{Field, FlowKey};

    const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    /// 10.0.0.1 -> 10.0.0.2, tos 0xb8, ttl 64, proto UDP, total length 28, id 0x1234.
    const IPV4_UDP: [u8; 28] = [
        0x45, 0xb8, 0x00, 0x1c, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 0,
        0, 2, // UDP 12345 -> 53, length 8
        0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
    ];
    /// IPv4 with one option word (IHL 6), proto TCP, total length 44; TCP 80 -> 1024, data
    /// offset 5, flags SYN|ACK plus the NS bit (0x112).
    const IPV4_OPT_TCP: [u8; 44] = [
        0x46, 0x00, 0x00, 0x2c, 0, 0, 0x40, 0x00, 0x05, 0x06, 0, 0, 192, 168, 1, 1, 192, 168, 1, 2,
        0x01, 0x01, 0x01, 0x00, // NOP NOP NOP EOL
        0x00, 0x50, 0x04, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0x51, 0x12, 0xff, 0xff, 0, 0, 0, 0,
    ];
    /// ARP request 02:..:02 / 10.0.0.2 asks for 10.0.0.1.
    const ARP_REQ: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, 0x02, 0, 0, 0, 0, 0x02, 10, 0, 0, 2, 0, 0, 0, 0,
        0, 0, 10, 0, 0, 1,
    ];
    /// IPv6 header: traffic class 0xa5, flow label 0x12345, next header set by the test,
    /// hop limit 255, fe80::1 -> fe80::2; payload length patched by `ipv6`.
    const IPV6_HDR: [u8; 40] = [
        0x6a, 0x51, 0x23, 0x45, 0, 0, 0, 255, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    /// TCP 443 -> 50000, data offset 5, flags FIN|ACK.
    const TCP: [u8; 20] = [
        0x01, 0xbb, 0xc3, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x11, 0, 0, 0, 0, 0, 0,
    ];
    /// UDP 546 -> 547.
    const UDP: [u8; 8] = [0x02, 0x22, 0x02, 0x23, 0x00, 0x08, 0, 0];
    /// Neighbor solicitation for fe80::2.
    const ND_NS: [u8; 24] = [
        135, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];

    fn eth(ty: u16, payload: &[u8]) -> Vec<u8> {
        [&DST[..], &SRC[..], &ty.to_be_bytes(), payload].concat()
    }

    fn ipv6(nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = IPV6_HDR;
        h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        h[6] = nh;
        eth(0x86dd, &[&h[..], payload].concat())
    }

    /// Extracts into a key that a different packet used before (checks the stale reset too),
    /// and checks the map/hash invariants.
    fn run(frame: &[u8], tun: Option<&TunnelMeta>) -> (PacketKey, ExtractInfo) {
        let mut dirty = PacketKey::default();
        let junk = ipv6(58, &ND_NS);
        let tm = TunnelMeta {
            tun_id: 9,
            ipv4_src: 1,
            ipv4_dst: 2,
            ipv6_src: 3,
            ipv6_dst: 4,
        };
        extract(&junk, 77, Some(&tm), &mut dirty).unwrap();
        let mut arp = PacketKey::default();
        extract(&eth(0x0806, &ARP_REQ), 1, None, &mut arp).unwrap();
        let mut fresh = PacketKey::default();
        let info = extract(frame, 7, tun, &mut fresh).unwrap();
        assert_eq!(extract(frame, 7, tun, &mut dirty).unwrap(), info);
        assert_eq!(extract(frame, 7, tun, &mut arp).unwrap(), info);
        assert!(
            dirty == fresh && arp == fresh,
            "{dirty:?} / {arp:?} != {fresh:?}"
        );
        assert_eq!(fresh.hash, fresh.key.hash_map(fresh.map));
        assert_eq!(fresh.key.nonzero_map() & !fresh.map, 0);
        assert_eq!(fresh.map & MAP_BASE, MAP_BASE);
        (fresh, info)
    }

    fn get(k: &PacketKey, f: Field) -> u128 {
        k.key.get(f)
    }

    #[test]
    fn shorter_than_ethernet_is_dropped() {
        let mut k = PacketKey::default();
        assert_eq!(
            extract(&[0u8; 13], 1, None, &mut k),
            Err(DropReason::TruncatedEthernet)
        );
        assert_eq!(
            extract(&[], 1, None, &mut k),
            Err(DropReason::TruncatedEthernet)
        );
        // 14 bytes is a complete (empty) Ethernet frame.
        assert!(extract(&[0u8; 14], 1, None, &mut k).is_ok());
    }

    #[test]
    fn ipv4_udp_fields_and_map() {
        let (k, info) = run(&eth(0x0800, &IPV4_UDP), None);
        assert!(!info.malformed);
        let mut want = FlowKey::ZERO;
        want.set(Field::InPort, 7);
        want.set(Field::EthDst, 0x0200_0000_0001);
        want.set(Field::EthSrc, 0x0200_0000_0002);
        want.set(Field::EthType, 0x0800);
        want.set(Field::Ipv4Src, 0x0a00_0001);
        want.set(Field::Ipv4Dst, 0x0a00_0002);
        want.set(Field::IpProto, 17);
        want.set(Field::IpTos, 0xb8);
        want.set(Field::IpTtl, 64);
        want.set(Field::TpSrc, 12345);
        want.set(Field::TpDst, 53);
        assert_eq!(k.key, want);
        assert_eq!(k.map, MAP_BASE | MAP_IPV4 | MAP_L4);
    }

    #[test]
    fn ethernet_padding_after_total_length_is_ignored() {
        let mut padded = eth(0x0800, &IPV4_UDP);
        padded.extend_from_slice(&[0xee; 18]);
        assert_eq!(run(&padded, None), run(&eth(0x0800, &IPV4_UDP), None));
    }

    #[test]
    fn in_port_and_tunnel_metadata() {
        let tm = TunnelMeta {
            tun_id: 5001,
            ipv4_src: 0xc0a8_0001,
            ipv4_dst: 0xc0a8_0002,
            ipv6_src: 0x2001_0db8 << 96 | 1,
            ipv6_dst: 0x2001_0db8 << 96 | 2,
        };
        let (k, _) = run(&eth(0x0800, &IPV4_UDP), Some(&tm));
        assert_eq!(get(&k, Field::InPort), 7);
        assert_eq!(get(&k, Field::TunId), 5001);
        assert_eq!(get(&k, Field::TunIpv4Src), 0xc0a8_0001);
        assert_eq!(get(&k, Field::TunIpv4Dst), 0xc0a8_0002);
        assert_eq!(get(&k, Field::TunIpv6Src), tm.ipv6_src);
        assert_eq!(get(&k, Field::TunIpv6Dst), tm.ipv6_dst);
        assert_eq!(k.map, MAP_BASE | MAP_TUN | MAP_IPV4 | MAP_L4);
        // Same tunnel map even when the metadata is all zero: the map follows presence.
        let (z, _) = run(&eth(0x0800, &IPV4_UDP), Some(&TunnelMeta::default()));
        assert_eq!(z.map, k.map);
    }

    #[test]
    fn vlan_tag_drops_dei_and_sets_present() {
        // PCP 5, DEI 1, VID 100.
        let tagged = eth(0x8100, &[&[0xb0, 0x64, 0x08, 0x00][..], &IPV4_UDP].concat());
        let (k, info) = run(&tagged, None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::VlanTci), 5 << 13 | 0x1000 | 100);
        assert_eq!(get(&k, Field::EthType), 0x0800);
        assert_eq!(get(&k, Field::TpDst), 53);
        // 802.1ad TPID works the same way.
        let ad = eth(0x88a8, &[&[0x00, 0x07, 0x08, 0x00][..], &IPV4_UDP].concat());
        assert_eq!(get(&run(&ad, None).0, Field::VlanTci), 0x1007);
    }

    #[test]
    fn truncated_vlan_tag_is_malformed() {
        let (k, info) = run(&eth(0x8100, &[0x00, 0x64, 0x08]), None);
        assert!(info.malformed);
        assert_eq!(get(&k, Field::VlanTci), 0);
        assert_eq!(get(&k, Field::EthType), 0x8100);
        assert_eq!(k.map, MAP_BASE);
    }

    #[test]
    fn second_tag_stops_parsing() {
        let qinq = eth(
            0x88a8,
            &[
                &[0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00][..],
                &IPV4_UDP,
            ]
            .concat(),
        );
        let (k, info) = run(&qinq, None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::VlanTci), 0x100a);
        assert_eq!(get(&k, Field::EthType), 0x8100);
        assert_eq!(k.map, MAP_BASE);
    }

    #[test]
    fn ieee_802_3_length_becomes_no_ethertype() {
        let (k, info) = run(&eth(0x0026, &[0x42, 0x42, 0x03, 0, 0, 0]), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::EthType), 0x05ff);
        assert_eq!(k.map, MAP_BASE);
    }

    #[test]
    fn arp_fields() {
        let (k, info) = run(&eth(0x0806, &ARP_REQ), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::ArpOp), 1);
        assert_eq!(get(&k, Field::ArpSha), 0x0200_0000_0002);
        assert_eq!(get(&k, Field::ArpSpa), 0x0a00_0002);
        assert_eq!(get(&k, Field::ArpTha), 0);
        assert_eq!(get(&k, Field::ArpTpa), 0x0a00_0001);
        assert_eq!(k.map, MAP_BASE | MAP_ARP);
        // A reply with a target hardware address.
        let mut reply = ARP_REQ;
        reply[7] = 2;
        reply[18..24].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x03]);
        let (r, _) = run(&eth(0x0806, &reply), None);
        assert_eq!(get(&r, Field::ArpOp), 2);
        assert_eq!(get(&r, Field::ArpTha), 0x0200_0000_0003);
        assert_eq!(get(&r, Field::ArpTpa), 0x0a00_0001);
    }

    #[test]
    fn short_arp_is_malformed_other_arp_is_not() {
        let (k, info) = run(&eth(0x0806, &ARP_REQ[..27]), None);
        assert!(info.malformed);
        assert_eq!(k.map, MAP_BASE);
        let mut other = ARP_REQ;
        other[1] = 6; // IEEE 802 hardware
        let (k, info) = run(&eth(0x0806, &other), None);
        assert!(!info.malformed);
        assert_eq!(k.map, MAP_BASE);
        assert_eq!(get(&k, Field::EthType), 0x0806);
    }

    #[test]
    fn bad_ipv4_headers_are_malformed_without_l3() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        let mut v = IPV4_UDP;
        v[0] = 0x65; // version 6
        cases.push(v.to_vec());
        let mut v = IPV4_UDP;
        v[0] = 0x44; // IHL 4
        cases.push(v.to_vec());
        let mut v = IPV4_UDP;
        v[3] = 19; // total length < IHL * 4
        cases.push(v.to_vec());
        let mut v = IPV4_UDP;
        v[3] = 29; // total length past the frame
        cases.push(v.to_vec());
        cases.push(IPV4_UDP[..19].to_vec()); // not even a header
        for c in cases {
            let (k, info) = run(&eth(0x0800, &c), None);
            assert!(info.malformed, "{c:x?}");
            assert_eq!(k.map, MAP_BASE, "{c:x?}");
            assert_eq!(get(&k, Field::IpProto), 0);
            assert_eq!(get(&k, Field::IpTtl), 0);
        }
    }

    #[test]
    fn ipv4_options_and_tcp_flags() {
        let (k, info) = run(&eth(0x0800, &IPV4_OPT_TCP), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::Ipv4Src), 0xc0a8_0101);
        assert_eq!(get(&k, Field::IpProto), 6);
        assert_eq!(get(&k, Field::IpFrag), 0); // DF alone is not a fragment
        assert_eq!(get(&k, Field::TpSrc), 80);
        assert_eq!(get(&k, Field::TpDst), 1024);
        assert_eq!(get(&k, Field::TcpFlags), 0x112);
    }

    #[test]
    fn bad_tcp_data_offset_is_malformed_but_keeps_l3() {
        for doff in [0x40u8, 0x61] {
            let mut p = IPV4_OPT_TCP;
            p[36] = doff; // 4 (< 5) or 6 (24 bytes > the 20 present)
            let (k, info) = run(&eth(0x0800, &p), None);
            assert!(info.malformed);
            assert_eq!(k.map, MAP_BASE | MAP_IPV4);
            assert_eq!(get(&k, Field::IpProto), 6);
            assert_eq!(get(&k, Field::TpSrc), 0);
        }
    }

    #[test]
    fn ipv4_fragments() {
        let mut first = IPV4_UDP;
        first[6] = 0x20; // MF, offset 0
        let (k, info) = run(&eth(0x0800, &first), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::IpFrag), FRAG_ANY as u128);
        assert_eq!(get(&k, Field::TpDst), 53);
        let mut later = IPV4_UDP;
        later[7] = 0x01; // offset 8 bytes, no MF: the last fragment
        let (k, info) = run(&eth(0x0800, &later), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::IpFrag), (FRAG_ANY | FRAG_LATER) as u128);
        assert_eq!(get(&k, Field::IpProto), 17);
        assert_eq!(k.map, MAP_BASE | MAP_IPV4);
    }

    #[test]
    fn sctp_icmp_and_other_protocols() {
        let mut sctp = [
            &IPV4_UDP[..20],
            &[0x0b, 0xb8, 0x0b, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        sctp[3] = 32;
        sctp[9] = 132;
        let (k, _) = run(&eth(0x0800, &sctp), None);
        assert_eq!((get(&k, Field::TpSrc), get(&k, Field::TpDst)), (3000, 3001));
        let mut icmp = IPV4_UDP;
        icmp[9] = 1;
        icmp[20] = 3; // destination unreachable
        icmp[21] = 4; // fragmentation needed
        let (k, _) = run(&eth(0x0800, &icmp), None);
        assert_eq!((get(&k, Field::IcmpType), get(&k, Field::IcmpCode)), (3, 4));
        assert_eq!(get(&k, Field::TpSrc), 0);
        let mut gre = IPV4_UDP;
        gre[9] = 47;
        let (k, info) = run(&eth(0x0800, &gre), None);
        assert!(!info.malformed);
        assert_eq!(k.map, MAP_BASE | MAP_IPV4);
    }

    #[test]
    fn short_l4_is_malformed_but_keeps_l3() {
        for (proto, len) in [(17u8, 7usize), (132, 11), (1, 7), (6, 19)] {
            let mut p = [&IPV4_UDP[..20], &[0u8; 19][..len]].concat();
            p[3] = (20 + len) as u8;
            p[9] = proto;
            let (k, info) = run(&eth(0x0800, &p), None);
            assert!(info.malformed, "proto {proto}");
            assert_eq!(k.map, MAP_BASE | MAP_IPV4);
            assert_eq!(get(&k, Field::IpProto), proto as u128);
        }
    }

    #[test]
    fn ipv6_tcp_fields() {
        let (k, info) = run(&ipv6(6, &TCP), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::EthType), 0x86dd);
        assert_eq!(get(&k, Field::Ipv6Src), 0xfe80 << 112 | 1);
        assert_eq!(get(&k, Field::Ipv6Dst), 0xfe80 << 112 | 2);
        assert_eq!(get(&k, Field::IpTos), 0xa5);
        assert_eq!(get(&k, Field::IpTtl), 255);
        assert_eq!(get(&k, Field::Ipv6Label), 0x12345);
        assert_eq!(get(&k, Field::IpProto), 6);
        assert_eq!(get(&k, Field::TpSrc), 443);
        assert_eq!(get(&k, Field::TpDst), 50000);
        assert_eq!(get(&k, Field::TcpFlags), 0x011);
        assert_eq!(k.map, MAP_BASE | MAP_IPV6 | MAP_L4);
    }

    #[test]
    fn bad_ipv6_headers_are_malformed_without_l3() {
        let good = ipv6(17, &UDP);
        let mut v5 = good.clone();
        v5[14] = 0x5a;
        let mut long = good.clone();
        long[19] = 9; // payload length 9 > 8 present
        for f in [v5, long, good[..14 + 39].to_vec()] {
            let (k, info) = run(&f, None);
            assert!(info.malformed);
            assert_eq!(k.map, MAP_BASE);
            assert_eq!(get(&k, Field::IpTtl), 0);
        }
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> AH (12 bytes) -> UDP.
        let hbh = [60u8, 0, 1, 4, 0, 0, 0, 0];
        let dst = [51u8, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let ah = [17u8, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
        let (k, info) = run(&ipv6(0, &[&hbh[..], &dst, &ah, &UDP].concat()), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::IpProto), 17);
        assert_eq!(get(&k, Field::TpSrc), 546);
        // Routing header cut short: malformed, proto = 43, no L4.
        let (k, info) = run(&ipv6(43, &[6u8, 1, 0, 0, 0, 0, 0, 0]), None);
        assert!(info.malformed);
        assert_eq!(get(&k, Field::IpProto), 43);
        assert_eq!(k.map, MAP_BASE | MAP_IPV6);
        // An AH with payload length 0 is too short to be one.
        let (k, info) = run(&ipv6(51, &[17u8, 0, 0, 0, 0, 0, 0, 0]), None);
        assert!(info.malformed);
        assert_eq!(get(&k, Field::IpProto), 51);
    }

    #[test]
    fn ipv6_chain_longer_than_eight_is_malformed() {
        let dst = |nh: u8| [nh, 0, 1, 4, 0, 0, 0, 0];
        let mut eight = Vec::new();
        for _ in 0..7 {
            eight.extend_from_slice(&dst(60));
        }
        eight.extend_from_slice(&dst(17));
        eight.extend_from_slice(&UDP);
        let (k, info) = run(&ipv6(60, &eight), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::TpDst), 547);
        let mut nine = dst(60).to_vec();
        nine.extend_from_slice(&eight);
        let (k, info) = run(&ipv6(60, &nine), None);
        assert!(info.malformed);
        assert_eq!(get(&k, Field::IpProto), 60);
        assert_eq!(k.map, MAP_BASE | MAP_IPV6);
    }

    #[test]
    fn ipv6_fragments() {
        let first = [17u8, 0, 0x00, 0x01, 0, 0, 0, 7]; // offset 0, M
        let (k, info) = run(&ipv6(44, &[&first[..], &UDP].concat()), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::IpFrag), FRAG_ANY as u128);
        assert_eq!(get(&k, Field::IpProto), 17);
        assert_eq!(get(&k, Field::TpSrc), 546);
        let later = [17u8, 0, 0x00, 0x08, 0, 0, 0, 7]; // offset 1 (8 bytes), last
        let (k, info) = run(&ipv6(44, &[&later[..], &UDP].concat()), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::IpFrag), (FRAG_ANY | FRAG_LATER) as u128);
        assert_eq!(get(&k, Field::IpProto), 17);
        assert_eq!(k.map, MAP_BASE | MAP_IPV6);
        let (k, info) = run(&ipv6(44, &first[..7]), None);
        assert!(info.malformed);
        assert_eq!(get(&k, Field::IpProto), 44);
    }

    #[test]
    fn icmpv6_and_neighbor_discovery() {
        let (k, info) = run(&ipv6(58, &ND_NS), None);
        assert!(!info.malformed);
        assert_eq!(get(&k, Field::IcmpType), 135);
        assert_eq!(get(&k, Field::NdTarget), 0xfe80 << 112 | 2);
        assert_eq!(k.map, MAP_BASE | MAP_IPV6 | MAP_L4 | MAP_ND);
        // Too short for a target: type/code only, not malformed.
        let (k, info) = run(&ipv6(58, &ND_NS[..23]), None);
        assert!(!info.malformed);
        assert_eq!(k.map, MAP_BASE | MAP_IPV6 | MAP_L4);
        // Echo request: no target; non-zero code on an NS: no target.
        let (k, _) = run(&ipv6(58, &[128u8, 0, 0, 0, 0, 1, 0, 1]), None);
        assert_eq!(
            (get(&k, Field::IcmpType), get(&k, Field::NdTarget)),
            (128, 0)
        );
        let mut ns1 = ND_NS;
        ns1[1] = 1;
        assert_eq!(run(&ipv6(58, &ns1), None).0.map & MAP_ND, 0);
        // ICMPv6 shorter than 8 bytes: malformed.
        let (k, info) = run(&ipv6(58, &ND_NS[..7]), None);
        assert!(info.malformed);
        assert_eq!(k.map, MAP_BASE | MAP_IPV6);
        // ICMPv4's number inside IPv6 is not parsed.
        let (k, info) = run(&ipv6(1, &ND_NS), None);
        assert!(!info.malformed);
        assert_eq!(k.map, MAP_BASE | MAP_IPV6);
    }

    #[test]
    fn other_ethertypes_have_l2_fields_only() {
        let (k, info) = run(&eth(0x88cc, &[0x02, 0x07, 0x04, 0, 0, 0, 0, 0, 1]), None);
        assert!(!info.malformed);
        assert_eq!(k.map, MAP_BASE);
        let mut want = FlowKey::ZERO;
        want.set(Field::InPort, 7);
        want.set(Field::EthDst, 0x0200_0000_0001);
        want.set(Field::EthSrc, 0x0200_0000_0002);
        want.set(Field::EthType, 0x88cc);
        assert_eq!(k.key, want);
    }
}
