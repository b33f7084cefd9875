//! Datapath action execution on packet buffers: set-field with checksum fixes, VLAN push/pop,
//! TTL decrement, and VXLAN encapsulation/decapsulation (RFC 7348).
//!
//! The worker walks a megaflow's [`strato_flowtable::DpAction`] list and calls one function here
//! per action; outputs and clones are the worker's business. Headers are located with cheap
//! bounds-checked reads (no etherparse on this path; it is the reference in the tests).
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
use strato_flowtable::key::Field;
use strato_flowtable::tunnel::{
    udp_src_port, TunnelPush, VXLAN_FLAG_I, VXLAN_IPV4_HDR_LEN, VXLAN_IPV6_HDR_LEN,
};

const ETH_HLEN: usize = 14;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_RARP: u16 = 0x8035;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const PROTO_SCTP: u8 = 132;

const ICMPV6_NS: u8 = 135;
const ICMPV6_NA: u8 = 136;

/// UDP + VXLAN header bytes.
const UDP_VXLAN_LEN: usize = 16;

// ---------------------------------------------------------------------------------------------
// Byte helpers (callers check bounds first).

#[inline(always)]
fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

#[inline(always)]
fn put16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
fn is_vlan_tpid(t: u16) -> bool {
    t == ETH_P_8021Q || t == ETH_P_8021AD
}

// ---------------------------------------------------------------------------------------------
// Internet checksum (RFC 1071) and incremental update (RFC 1624).

#[inline(always)]
fn be64(c: &[u8]) -> u64 {
    u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
}

/// One's-complement 64-bit add (end-around carry; never overflows).
#[inline(always)]
fn add64(a: u64, b: u64) -> u64 {
    let (r, carry) = a.overflowing_add(b);
    r + carry as u64
}

/// Adds `data` as big-endian 16-bit words (odd tail padded with zero) to `acc` (< 2^34).
/// Works on 64-bit words in two independent carry chains (the one's-complement sum is the same
/// modulo 0xffff for any word size that is a multiple of 16 bits). Returns a value < 2^34.
#[inline(always)]
fn sum_bytes(acc: u64, data: &[u8]) -> u64 {
    let (mut s0, mut s1) = (acc, 0u64);
    let mut c16 = data.chunks_exact(16);
    for c in &mut c16 {
        s0 = add64(s0, be64(&c[..8]));
        s1 = add64(s1, be64(&c[8..]));
    }
    let mut s = add64(s0, s1);
    let rest = c16.remainder();
    let mut c2 = rest.chunks_exact(2);
    let mut t = 0u64;
    for c in &mut c2 {
        t += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [b] = c2.remainder() {
        t += (*b as u64) << 8;
    }
    s = add64(s, t);
    (s & 0xffff_ffff) + (s >> 32)
}

/// Folds an unfolded sum to 16 bits with end-around carries.
#[inline(always)]
fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// RFC 1624 eqn. 3: the checksum after the bytes `old` (even length) became `new`.
#[inline(always)]
fn csum_replace(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = (!csum) as u64;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += (!u16::from_be_bytes([o[0], o[1]])) as u64;
        acc += u16::from_be_bytes([n[0], n[1]]) as u64;
    }
    !fold(acc)
}

/// Updates the checksum stored at `at` for `old` -> `new`. A UDP checksum of 0 ("none") is left
/// alone, and a computed 0 is sent as 0xffff.
#[inline(always)]
fn fix_csum(d: &mut [u8], at: usize, udp: bool, old: &[u8], new: &[u8]) {
    let c = be16(d, at);
    if udp && c == 0 {
        return;
    }
    let mut n = csum_replace(c, old, new);
    if udp && n == 0 {
        n = 0xffff;
    }
    put16(d, at, n);
}

// ---------------------------------------------------------------------------------------------
// CRC32c (Castagnoli, reflected 0x82f63b78) for SCTP.

const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32C: [u32; 256] = crc32c_table();

#[inline]
fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32C[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC32c of `data` (initial value and final xor 0xffffffff), as SCTP and iSCSI use it.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

/// Recomputes the SCTP checksum of the SCTP packet `sctp` (>= 12 bytes, checked by the caller).
fn sctp_fix(sctp: &mut [u8]) {
    let mut crc = crc32c_update(!0, &sctp[..8]);
    crc = crc32c_update(crc, &[0; 4]);
    crc = !crc32c_update(crc, &sctp[12..]);
    sctp[8..12].copy_from_slice(&crc.to_le_bytes());
}

// ---------------------------------------------------------------------------------------------
// Header location.

/// L3 offset and ethertype after at most one VLAN tag; `None` when shorter than the headers.
#[inline(always)]
fn l2(d: &[u8]) -> Option<(usize, u16)> {
    if d.len() < ETH_HLEN {
        return None;
    }
    let et = be16(d, 12);
    if is_vlan_tpid(et) {
        if d.len() < ETH_HLEN + 4 {
            return None;
        }
        Some((ETH_HLEN + 4, be16(d, 16)))
    } else {
        Some((ETH_HLEN, et))
    }
}

/// A usable IP header and where its upper layer is.
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

enum L3 {
    Ip(Ip),
    /// Ethernet/IPv4 ARP (or RARP) at this offset, 28 bytes present.
    Arp(usize),
    /// An IP ethertype whose header is unusable.
    BadIp,
    /// Anything else (including frames too short for Ethernet).
    Other,
}

#[inline(always)]
fn l3(d: &[u8]) -> L3 {
    let Some((o, et)) = l2(d) else {
        return L3::Other;
    };
    match et {
        ETH_P_IPV4 => ipv4(d, o).map_or(L3::BadIp, L3::Ip),
        ETH_P_IPV6 => ipv6(d, o).map_or(L3::BadIp, L3::Ip),
        ETH_P_ARP | ETH_P_RARP => {
            if d.len() >= o + 28 && d[o..o + 6] == [0, 1, 8, 0, 6, 4] {
                L3::Arp(o)
            } else {
                L3::Other
            }
        }
        _ => L3::Other,
    }
}

#[inline(always)]
fn ipv4(d: &[u8], o: usize) -> Option<Ip> {
    if d.len() < o + 20 || d[o] >> 4 != 4 {
        return None;
    }
    let hl = ((d[o] & 0x0f) as usize) * 4;
    let tl = be16(d, o + 2) as usize;
    if hl < 20 || tl < hl || o + tl > d.len() {
        return None;
    }
    let fo = be16(d, o + 6);
    Some(Ip {
        off: o,
        end: o + tl,
        v6: false,
        proto: d[o + 9],
        l4: o + hl,
        frag: fo & 0x3fff != 0,
        later: fo & 0x1fff != 0,
        rt_dst: false,
    })
}

#[inline(always)]
fn ipv6(d: &[u8], o: usize) -> Option<Ip> {
    if d.len() < o + 40 || d[o] >> 4 != 6 {
        return None;
    }
    let end = o + 40 + be16(d, o + 4) as usize;
    if end > d.len() {
        return None;
    }
    let mut ip = Ip {
        off: o,
        end,
        v6: true,
        proto: d[o + 6],
        l4: o + 40,
        frag: false,
        later: false,
        rt_dst: false,
    };
    for _ in 0..8 {
        let p = ip.l4;
        let hlen = match ip.proto {
            0 | 43 | 60 if p + 8 <= end => {
                if ip.proto == 43 && d[p + 3] != 0 {
                    ip.rt_dst = true;
                }
                (d[p + 1] as usize + 1) * 8
            }
            44 if p + 8 <= end => {
                ip.frag = true;
                ip.later = be16(d, p + 2) & 0xfff8 != 0;
                8
            }
            51 if p + 8 <= end => (d[p + 1] as usize + 2) * 4,
            _ => break,
        };
        ip.proto = d[p];
        ip.l4 = p + hlen;
    }
    Some(ip)
}

/// Where the pseudo-header-covered L4 checksum is: `(offset, is_udp)`.
#[inline(always)]
fn l4_pseudo_csum(ip: &Ip) -> Option<(usize, bool)> {
    if ip.later {
        return None;
    }
    let l4 = ip.l4;
    match ip.proto {
        PROTO_TCP if l4 + 18 <= ip.end => Some((l4 + 16, false)),
        PROTO_UDP if l4 + 8 <= ip.end => Some((l4 + 6, true)),
        PROTO_ICMPV6 if ip.v6 && l4 + 4 <= ip.end => Some((l4 + 2, false)),
        _ => None,
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
            if d.len() < ETH_HLEN {
                return FAIL;
            }
            let at = if field == Field::EthDst { 0 } else { 6 };
            d[at..at + 6].copy_from_slice(&(v as u64).to_be_bytes()[2..]);
            Ok(())
        }
        Field::VlanTci | Field::VlanVid | Field::VlanPcp => {
            if d.len() < ETH_HLEN + 4 || !is_vlan_tpid(be16(d, 12)) {
                return FAIL;
            }
            let tci = be16(d, 14);
            let v = v as u16;
            let new = match field {
                Field::VlanTci => (tci & 0x1000) | (v & 0xefff),
                Field::VlanVid => (tci & 0xf000) | v,
                _ => (tci & 0x1fff) | (v << 13),
            };
            put16(d, 14, new);
            Ok(())
        }
        Field::ArpOp | Field::ArpSpa | Field::ArpTpa | Field::ArpSha | Field::ArpTha => {
            let L3::Arp(a) = l3(d) else {
                return FAIL;
            };
            match field {
                Field::ArpOp => put16(d, a + 6, v as u16),
                Field::ArpSha => d[a + 8..a + 14].copy_from_slice(&(v as u64).to_be_bytes()[2..]),
                Field::ArpSpa => d[a + 14..a + 18].copy_from_slice(&(v as u32).to_be_bytes()),
                Field::ArpTha => d[a + 18..a + 24].copy_from_slice(&(v as u64).to_be_bytes()[2..]),
                _ => d[a + 24..a + 28].copy_from_slice(&(v as u32).to_be_bytes()),
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
            set_ip(d, &ip, field, v)
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
            let l4 = ip.l4;
            if !ip.v6
                || ip.later
                || ip.proto != PROTO_ICMPV6
                || l4 + 24 > ip.end
                || !matches!(d[l4], ICMPV6_NS | ICMPV6_NA)
            {
                return FAIL;
            }
            let new = v.to_be_bytes();
            let mut old = [0u8; 16];
            old.copy_from_slice(&d[l4 + 8..l4 + 24]);
            d[l4 + 8..l4 + 24].copy_from_slice(&new);
            fix_csum(d, l4 + 2, false, &old, &new);
            Ok(())
        }
        _ => FAIL,
    }
}

/// Replaces the 16-bit word at `at` and fixes the checksum at `csum_at`.
#[inline(always)]
fn set_word(d: &mut [u8], at: usize, new: u16, csum_at: usize, udp: bool) {
    let old = be16(d, at);
    put16(d, at, new);
    fix_csum(d, csum_at, udp, &old.to_be_bytes(), &new.to_be_bytes());
}

#[inline(always)]
fn set_ip(d: &mut [u8], ip: &Ip, field: Field, v: u128) -> Result<(), DropReason> {
    let o = ip.off;
    match field {
        Field::IpTos | Field::IpDscp | Field::IpEcn => {
            let tos = if ip.v6 {
                (d[o] << 4) | (d[o + 1] >> 4)
            } else {
                d[o + 1]
            };
            let v = v as u8;
            let new = match field {
                Field::IpTos => v,
                Field::IpDscp => (tos & 0x03) | (v << 2),
                _ => (tos & 0xfc) | v,
            };
            if ip.v6 {
                d[o] = (d[o] & 0xf0) | (new >> 4);
                d[o + 1] = (d[o + 1] & 0x0f) | (new << 4);
            } else {
                set_word(d, o, u16::from_be_bytes([d[o], new]), o + 10, false);
            }
        }
        Field::IpTtl => {
            if ip.v6 {
                d[o + 7] = v as u8;
            } else {
                set_word(
                    d,
                    o + 8,
                    u16::from_be_bytes([v as u8, d[o + 9]]),
                    o + 10,
                    false,
                );
            }
        }
        Field::Ipv4Src | Field::Ipv4Dst => {
            if ip.v6 {
                return FAIL;
            }
            let at = if field == Field::Ipv4Src {
                o + 12
            } else {
                o + 16
            };
            let new = (v as u32).to_be_bytes();
            let mut old = [0u8; 4];
            old.copy_from_slice(&d[at..at + 4]);
            d[at..at + 4].copy_from_slice(&new);
            fix_csum(d, o + 10, false, &old, &new);
            if let Some((c, udp)) = l4_pseudo_csum(ip) {
                fix_csum(d, c, udp, &old, &new);
            }
        }
        Field::Ipv6Src | Field::Ipv6Dst => {
            if !ip.v6 {
                return FAIL;
            }
            let dst = field == Field::Ipv6Dst;
            let at = if dst { o + 24 } else { o + 8 };
            let new = v.to_be_bytes();
            let mut old = [0u8; 16];
            old.copy_from_slice(&d[at..at + 16]);
            d[at..at + 16].copy_from_slice(&new);
            if !(dst && ip.rt_dst) {
                if let Some((c, udp)) = l4_pseudo_csum(ip) {
                    fix_csum(d, c, udp, &old, &new);
                }
            }
        }
        _ => {
            // Ipv6Label
            if !ip.v6 {
                return FAIL;
            }
            let v = v as u32;
            d[o + 1] = (d[o + 1] & 0xf0) | ((v >> 16) as u8 & 0x0f);
            d[o + 2] = (v >> 8) as u8;
            d[o + 3] = v as u8;
        }
    }
    Ok(())
}

#[inline(always)]
fn set_l4(d: &mut [u8], ip: &Ip, field: Field, v: u16) -> Result<(), DropReason> {
    if ip.later {
        return FAIL;
    }
    let (l4, end) = (ip.l4, ip.end);
    match field {
        Field::TpSrc | Field::TpDst => {
            let at = l4 + if field == Field::TpSrc { 0 } else { 2 };
            match ip.proto {
                PROTO_TCP if l4 + 20 <= end => set_word(d, at, v, l4 + 16, false),
                PROTO_UDP if l4 + 8 <= end => set_word(d, at, v, l4 + 6, true),
                PROTO_SCTP if l4 + 12 <= end && !ip.frag => {
                    put16(d, at, v);
                    sctp_fix(&mut d[l4..end]);
                }
                _ => return FAIL,
            }
        }
        Field::TcpFlags => {
            if ip.proto != PROTO_TCP || l4 + 20 > end {
                return FAIL;
            }
            let w = (be16(d, l4 + 12) & 0xf000) | (v & 0x0fff);
            set_word(d, l4 + 12, w, l4 + 16, false);
        }
        _ => {
            // IcmpType / IcmpCode
            let icmp = if ip.v6 { PROTO_ICMPV6 } else { PROTO_ICMP };
            if ip.proto != icmp || l4 + 4 > end {
                return FAIL;
            }
            let w = if field == Field::IcmpType {
                u16::from_be_bytes([v as u8, d[l4 + 1]])
            } else {
                u16::from_be_bytes([d[l4], v as u8])
            };
            set_word(d, l4, w, l4 + 2, false);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// VLAN, TTL

/// Inserts an 802.1Q/802.1ad tag after the MAC addresses.
#[inline]
pub fn push_vlan(buf: &mut Buf, tpid: u16, tci: u16) -> Result<(), DropReason> {
    if buf.len() < ETH_HLEN {
        return FAIL;
    }
    let gap = buf.insert_gap(12, 4).ok_or(DropReason::NoHeadroom)?;
    gap[..2].copy_from_slice(&tpid.to_be_bytes());
    gap[2..].copy_from_slice(&tci.to_be_bytes());
    Ok(())
}

/// Removes the outer VLAN tag; no-op when the frame is untagged.
#[inline]
pub fn pop_vlan(buf: &mut Buf) {
    let d = buf.data();
    if d.len() >= ETH_HLEN + 4 && is_vlan_tpid(be16(d, 12)) {
        buf.remove_gap(12, 4);
    }
}

/// Decrements the IPv4 TTL (incremental header checksum update) or IPv6 hop limit.
/// `Err(TtlExpired)` (unchanged) when it is <= 1; non-IP frames: `Ok`, unchanged.
#[inline]
pub fn dec_ttl(buf: &mut Buf) -> Result<(), DropReason> {
    let d = buf.data_mut();
    match l3(d) {
        L3::Ip(ip) => {
            let o = ip.off;
            let at = if ip.v6 { o + 7 } else { o + 8 };
            let ttl = d[at];
            if ttl <= 1 {
                return Err(DropReason::TtlExpired);
            }
            if ip.v6 {
                d[at] = ttl - 1;
            } else {
                set_word(
                    d,
                    at,
                    u16::from_be_bytes([ttl - 1, d[at + 1]]),
                    o + 10,
                    false,
                );
            }
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
    let sport = udp_src_port(flow_hash).to_be_bytes();
    let ulen = (inner + UDP_VXLAN_LEN) as u16;
    if h.ipv6 {
        const U: usize = 54;
        if h.len as usize != VXLAN_IPV6_HDR_LEN {
            return FAIL;
        }
        let hdr = buf
            .push_head(VXLAN_IPV6_HDR_LEN)
            .ok_or(DropReason::NoHeadroom)?;
        hdr.copy_from_slice(&h.bytes);
        put16(hdr, 18, ulen); // payload length
        hdr[U..U + 2].copy_from_slice(&sport);
        put16(hdr, U + 4, ulen);
        let d = buf.data_mut();
        // pseudo header: addresses, length, next header; then UDP (checksum 0), VXLAN, inner.
        let acc = sum_bytes(ulen as u64 + PROTO_UDP as u64, &d[22..U]);
        let mut c = !fold(sum_bytes(acc, &d[U..]));
        if c == 0 {
            c = 0xffff;
        }
        put16(d, U + 6, c);
    } else {
        const U: usize = 34;
        if h.len as usize != VXLAN_IPV4_HDR_LEN {
            return FAIL;
        }
        let hdr = buf
            .push_head(VXLAN_IPV4_HDR_LEN)
            .ok_or(DropReason::NoHeadroom)?;
        hdr.copy_from_slice(&h.bytes[..VXLAN_IPV4_HDR_LEN]);
        let total = ulen + 20;
        put16(hdr, 16, total);
        // The template's checksum covers total length 0: RFC 1624 with m = 0.
        let c = !fold((!be16(hdr, 24)) as u64 + total as u64);
        put16(hdr, 24, c);
        hdr[U..U + 2].copy_from_slice(&sport);
        put16(hdr, U + 4, ulen);
        if t.params.udp_csum {
            let d = buf.data_mut();
            let acc = sum_bytes(ulen as u64 + PROTO_UDP as u64, &d[26..U]);
            let mut c = !fold(sum_bytes(acc, &d[U..]));
            if c == 0 {
                c = 0xffff;
            }
            put16(d, U + 6, c);
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
    let len = d.len();
    let Some((o, et)) = l2(d) else {
        return Err(TunnelTruncated);
    };
    let mut meta = TunnelMeta::default();
    // (UDP offset, IP end, where the pseudo header's addresses are)
    let (u, end, addrs) = match et {
        ETH_P_IPV4 => {
            if len < o + 20 {
                return Err(TunnelTruncated);
            }
            let hl = ((d[o] & 0x0f) as usize) * 4;
            if d[o] >> 4 != 4 || hl < 20 {
                return Err(TunnelBadIp);
            }
            if len < o + hl {
                return Err(TunnelTruncated);
            }
            if fold(sum_bytes(0, &d[o..o + hl])) != 0xffff
                || be16(d, o + 6) & 0x3fff != 0
                || d[o + 9] != PROTO_UDP
            {
                return Err(TunnelBadIp);
            }
            if len < o + hl + UDP_VXLAN_LEN {
                return Err(TunnelTruncated);
            }
            let tl = be16(d, o + 2) as usize;
            if tl < hl || o + tl > len {
                return Err(TunnelBadIp);
            }
            meta.ipv4_src = u32::from_be_bytes([d[o + 12], d[o + 13], d[o + 14], d[o + 15]]);
            meta.ipv4_dst = u32::from_be_bytes([d[o + 16], d[o + 17], d[o + 18], d[o + 19]]);
            (o + hl, o + tl, o + 12..o + 20)
        }
        ETH_P_IPV6 => {
            if len < o + 40 {
                return Err(TunnelTruncated);
            }
            if d[o] >> 4 != 6 || d[o + 6] != PROTO_UDP {
                return Err(TunnelBadIp);
            }
            if len < o + 40 + UDP_VXLAN_LEN {
                return Err(TunnelTruncated);
            }
            let end = o + 40 + be16(d, o + 4) as usize;
            if end > len {
                return Err(TunnelBadIp);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&d[o + 8..o + 24]);
            meta.ipv6_src = u128::from_be_bytes(a);
            a.copy_from_slice(&d[o + 24..o + 40]);
            meta.ipv6_dst = u128::from_be_bytes(a);
            (o + 40, end, o + 8..o + 40)
        }
        _ => return Err(TunnelBadIp),
    };
    let ulen = be16(d, u + 4) as usize;
    if ulen != end - u || ulen < UDP_VXLAN_LEN || be16(d, u + 2) != dst_port {
        return Err(TunnelBadUdp);
    }
    if be16(d, u + 6) != 0 {
        let pseudo = sum_bytes(PROTO_UDP as u64 + ulen as u64, &d[addrs]);
        if fold(sum_bytes(pseudo, &d[u..end])) != 0xffff {
            return Err(TunnelBadUdp);
        }
    }
    let vx = u + 8;
    if d[vx] & VXLAN_FLAG_I == 0 {
        return Err(VxlanBadFlags);
    }
    if ulen - UDP_VXLAN_LEN < ETH_HLEN {
        return Err(TunnelTruncated);
    }
    meta.tun_id = u32::from_be_bytes([0, d[vx + 4], d[vx + 5], d[vx + 6]]) as u64;
    buf.truncate(end);
    buf.pull_head(u + UDP_VXLAN_LEN);
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
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
