//! IPv6 neighbor discovery responder: answers a neighbor solicitation for an IPv6 address the
//! controller knows with a neighbor advertisement (RFC 4861), the IPv6 side of ARP suppression.
//!
//! Contract:
//! - Input: an Ethernet frame (optionally with one 802.1Q tag) and a lookup IPv6 -> MAC (and,
//!   with [`respond`], whether the address belongs to a router).
//! - Answered: a valid neighbor solicitation (RFC 4861 7.1.1: IPv6 next header ICMPv6 with no
//!   extension headers, hop limit 255, correct ICMPv6 checksum, code 0, target not multicast,
//!   unicast source) whose target the lookup knows. The advertisement comes from the target
//!   address and the looked-up MAC, goes to the solicitation's source (IPv6) and to its source
//!   link-layer address option, else its Ethernet source (L2); it has hop limit 255, the
//!   Solicited and Override flags (and Router when the lookup says so), a target link-layer
//!   address option, a correct checksum, and the request's VLAN tag.
//! - Not answered (typed [`NdOutcome`] says which): other frames, truncated or malformed
//!   packets, bad checksums, invalid solicitations, duplicate address detection (unspecified
//!   source: the address is being claimed, not resolved), unknown targets.
//! - Never panics on any input.

use std::net::Ipv6Addr;

use etherparse::EtherType;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags,
    NdiscRepr, RawHardwareAddress,
};

use super::{build_frame, is_unicast_mac, parse_l2, L2Error, Mac};

/// What the lookup knows about a target address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    /// The address's MAC.
    pub mac: Mac,
    /// The address is a router's (sets the Router flag, RFC 4861 4.4).
    pub router: bool,
}

/// What [`respond`] did with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdOutcome {
    /// A neighbor advertisement to send back out of the request's port.
    Advert(Vec<u8>),
    /// Not a neighbor solicitation (another EtherType or ICMPv6 type, extension headers, more
    /// than one VLAN tag).
    NotSolicitation,
    /// A truncated frame or a malformed IPv6, ICMPv6 or NDISC option layout.
    Malformed,
    /// The ICMPv6 checksum is wrong.
    BadChecksum,
    /// Fails RFC 4861 7.1.1 (hop limit not 255, code not 0, multicast target or source, or a
    /// link-layer address option that is not 6 bytes or not unicast).
    Invalid,
    /// Duplicate address detection (unspecified source): not answered.
    DuplicateAddressDetection,
    /// The lookup does not know the target address.
    UnknownTarget,
}

impl NdOutcome {
    /// A stable name for counters (`advert`, `not_solicitation`, `malformed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            NdOutcome::Advert(_) => "advert",
            NdOutcome::NotSolicitation => "not_solicitation",
            NdOutcome::Malformed => "malformed",
            NdOutcome::BadChecksum => "bad_checksum",
            NdOutcome::Invalid => "invalid",
            NdOutcome::DuplicateAddressDetection => "dad",
            NdOutcome::UnknownTarget => "unknown_target",
        }
    }

    /// The advertisement frame, if there is one.
    pub fn into_reply(self) -> Option<Vec<u8>> {
        match self {
            NdOutcome::Advert(f) => Some(f),
            _ => None,
        }
    }
}

/// The neighbor advertisement answering `frame`, if it is a valid neighbor solicitation for an
/// address `lookup` knows (a host's, so the Router flag is clear), else `None`.
pub fn reply(frame: &[u8], lookup: impl Fn(Ipv6Addr) -> Option<Mac>) -> Option<Vec<u8>> {
    respond(frame, |a| {
        lookup(a).map(|mac| Neighbor { mac, router: false })
    })
    .into_reply()
}

/// Like [`reply`], with the Router flag from the lookup, and saying why when there is no reply.
pub fn respond(frame: &[u8], lookup: impl Fn(Ipv6Addr) -> Option<Neighbor>) -> NdOutcome {
    let (l2, payload) = match parse_l2(frame) {
        Ok(x) => x,
        Err(L2Error::Truncated) => return NdOutcome::Malformed,
        Err(L2Error::MultipleTags) => return NdOutcome::NotSolicitation,
    };
    if l2.ether_type != EtherType::IPV6 {
        return NdOutcome::NotSolicitation;
    }
    let Ok(ip) = Ipv6Packet::new_checked(payload) else {
        return NdOutcome::Malformed;
    };
    let Ok(ip_repr) = Ipv6Repr::parse(&ip) else {
        return NdOutcome::Malformed;
    };
    if ip_repr.next_header != IpProtocol::Icmpv6 {
        return NdOutcome::NotSolicitation;
    }
    let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
        return NdOutcome::Malformed;
    };
    if icmp.msg_type() != Icmpv6Message::NeighborSolicit {
        return NdOutcome::NotSolicitation;
    }
    let (src, dst) = (ip_repr.src_addr, ip_repr.dst_addr);
    if !icmp.verify_checksum(&src, &dst) {
        return NdOutcome::BadChecksum;
    }
    if ip_repr.hop_limit != 255 || icmp.msg_code() != 0 {
        return NdOutcome::Invalid;
    }
    let Ok(Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr,
        lladdr,
    })) = Icmpv6Repr::parse(&src, &dst, &icmp, &ChecksumCapabilities::default())
    else {
        return NdOutcome::Malformed;
    };
    if target_addr.is_multicast() || src.is_multicast() {
        return NdOutcome::Invalid;
    }
    if src.is_unspecified() {
        return NdOutcome::DuplicateAddressDetection;
    }
    let requester: Mac = match lladdr {
        Some(l) => match <Mac>::try_from(l.as_bytes()) {
            Ok(m) => m,
            Err(_) => return NdOutcome::Invalid,
        },
        None => l2.src,
    };
    if !is_unicast_mac(&requester) {
        return NdOutcome::Invalid;
    }
    let Some(nb) = lookup(target_addr) else {
        return NdOutcome::UnknownTarget;
    };
    let mut flags = NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE;
    if nb.router {
        flags |= NdiscNeighborFlags::ROUTER;
    }
    let icmp_repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags,
        target_addr,
        lladdr: Some(RawHardwareAddress::from_bytes(&nb.mac)),
    });
    let out_ip = Ipv6Repr {
        src_addr: target_addr,
        dst_addr: src,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp_repr.buffer_len(),
        hop_limit: 255,
    };
    NdOutcome::Advert(build_frame(
        requester,
        nb.mac,
        l2.vlan.as_ref(),
        EtherType::IPV6,
        out_ip.buffer_len() + out_ip.payload_len,
        |p| {
            let mut ip = Ipv6Packet::new_unchecked(p);
            out_ip.emit(&mut ip);
            icmp_repr.emit(
                &out_ip.src_addr,
                &out_ip.dst_addr,
                &mut Icmpv6Packet::new_unchecked(ip.payload_mut()),
                &ChecksumCapabilities::default(),
            );
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::TestRng;
    use super::*;
    use etherparse::{
        icmpv6::NeighborAdvertisementHeader, Icmpv6Slice, Icmpv6Type, NetSlice, PacketBuilder,
        SlicedPacket, TransportSlice,
    };

    const REQ_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const KNOWN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
    const REQ_IP: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    const KNOWN_IP: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    const SOLICITED_NODE: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);

    fn lookup(a: Ipv6Addr) -> Option<Mac> {
        (a == KNOWN_IP).then_some(KNOWN_MAC)
    }

    /// A solicitation for fd00::2 from fd00::1 (02:00:00:00:00:01) to ff02::1:ff00:2, with a
    /// source link-layer address option, as Linux sends it (checksum 0x7d97).
    const NS: [u8; 86] = [
        0x33, 0x33, 0xff, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, //
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, // ver, len 32, icmpv6, hop 255
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src fd00::1
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0x02, // dst ff02::1:ff00:2
        0x87, 0x00, 0x7d, 0x97, 0, 0, 0, 0, // type 135, code 0, checksum, reserved
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target fd00::2
        0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // SLLAO
    ];

    /// Builds a solicitation with etherparse (its own checksum code), optionally with a VLAN
    /// tag and a source link-layer address option.
    fn ns(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        target: Ipv6Addr,
        sllao: Option<Mac>,
        vid: Option<u16>,
    ) -> Vec<u8> {
        let mut payload = target.octets().to_vec();
        if let Some(m) = sllao {
            payload.extend_from_slice(&[1, 1]);
            payload.extend_from_slice(&m);
        }
        let eth = PacketBuilder::ethernet2(REQ_MAC, [0x33, 0x33, 0xff, 0, 0, 2]);
        let mut out = Vec::new();
        match vid {
            Some(v) => eth
                .single_vlan(etherparse::VlanId::try_new(v).unwrap())
                .ipv6(src.octets(), dst.octets(), 255)
                .icmpv6(Icmpv6Type::NeighborSolicitation)
                .write(&mut out, &payload)
                .unwrap(),
            None => eth
                .ipv6(src.octets(), dst.octets(), 255)
                .icmpv6(Icmpv6Type::NeighborSolicitation)
                .write(&mut out, &payload)
                .unwrap(),
        }
        out
    }

    /// Checks an advertisement with etherparse: addresses, flags, target, TLLAO, checksum.
    fn check_na(frame: &[u8], to_mac: Mac, to_ip: Ipv6Addr, router: bool) -> Option<u16> {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
            panic!("{p:?}")
        };
        assert_eq!(eth.destination(), to_mac);
        assert_eq!(eth.source(), KNOWN_MAC);
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!("{p:?}")
        };
        let h = ip.header();
        assert_eq!(h.source_addr(), KNOWN_IP);
        assert_eq!(h.destination_addr(), to_ip);
        assert_eq!(h.hop_limit(), 255);
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
            panic!("{p:?}")
        };
        let icmp: &Icmpv6Slice = icmp;
        assert!(icmp.is_checksum_valid(KNOWN_IP.octets(), to_ip.octets()));
        assert_eq!(
            icmp.icmp_type(),
            Icmpv6Type::NeighborAdvertisement(NeighborAdvertisementHeader {
                router,
                solicited: true,
                r#override: true,
            })
        );
        let body = icmp.payload();
        assert_eq!(&body[..16], &KNOWN_IP.octets());
        // Target link-layer address option: type 2, length 1 (8 bytes), the MAC.
        assert_eq!(&body[16..18], &[2, 1]);
        assert_eq!(&body[18..24], &KNOWN_MAC);
        assert_eq!(body.len(), 24);
        p.vlan_ids().first().map(|v| v.value())
    }

    #[test]
    fn static_solicitation_has_a_valid_checksum() {
        // The array above is what etherparse builds too (so its checksum is right).
        assert_eq!(
            &NS[..],
            &ns(REQ_IP, SOLICITED_NODE, KNOWN_IP, Some(REQ_MAC), None)[..]
        );
    }

    #[test]
    fn answers_a_solicitation() {
        let r = reply(&NS, lookup).unwrap();
        assert_eq!(check_na(&r, REQ_MAC, REQ_IP, false), None);
        assert_eq!(r.len(), 14 + 40 + 32);
    }

    #[test]
    fn router_flag_comes_from_the_lookup() {
        let o = respond(&NS, |a| {
            (a == KNOWN_IP).then_some(Neighbor {
                mac: KNOWN_MAC,
                router: true,
            })
        });
        let NdOutcome::Advert(r) = o else {
            panic!("{o:?}")
        };
        check_na(&r, REQ_MAC, REQ_IP, true);
    }

    #[test]
    fn keeps_the_vlan_tag_and_answers_unicast_probes_without_sllao() {
        // A unicast NUD probe to the target itself, no SLLAO: reply to the Ethernet source.
        let f = ns(REQ_IP, KNOWN_IP, KNOWN_IP, None, Some(300));
        let r = reply(&f, lookup).unwrap();
        assert_eq!(check_na(&r, REQ_MAC, REQ_IP, false), Some(300));
        // A link-local requester.
        let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        let f = ns(
            ll,
            SOLICITED_NODE,
            KNOWN_IP,
            Some([0x02, 0, 0, 0, 0, 0x09]),
            None,
        );
        let r = reply(&f, lookup).unwrap();
        check_na(&r, [0x02, 0, 0, 0, 0, 0x09], ll, false);
    }

    #[test]
    fn dad_and_unknown_targets_are_not_answered() {
        let dad = ns(Ipv6Addr::UNSPECIFIED, SOLICITED_NODE, KNOWN_IP, None, None);
        assert_eq!(
            respond(&dad, |_| None::<Neighbor>),
            NdOutcome::DuplicateAddressDetection
        );
        assert!(reply(&dad, lookup).is_none());
        let other = ns(
            REQ_IP,
            SOLICITED_NODE,
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9),
            None,
            None,
        );
        assert!(reply(&other, lookup).is_none());
        assert_eq!(
            respond(&other, |a| lookup(a)
                .map(|mac| Neighbor { mac, router: false })),
            NdOutcome::UnknownTarget
        );
    }

    fn outcome(f: &[u8]) -> NdOutcome {
        respond(f, |a| lookup(a).map(|mac| Neighbor { mac, router: false }))
    }

    #[test]
    fn bad_checksum_hop_limit_and_code_are_refused() {
        let mut c = NS;
        c[57] ^= 1;
        assert_eq!(outcome(&c), NdOutcome::BadChecksum);
        // Hop limit 64: the checksum does not cover it, so this is the RFC check.
        let mut h = NS;
        h[21] = 64;
        assert_eq!(outcome(&h), NdOutcome::Invalid);
        // Code 1 (checksum fixed up: code is in the same 16-bit word as the type).
        let mut k = NS;
        k[55] = 1;
        let sum = u16::from_be_bytes([k[56], k[57]]);
        let fixed = checksum_after_add(sum, 0x0001);
        k[56..58].copy_from_slice(&fixed.to_be_bytes());
        assert_eq!(outcome(&k), NdOutcome::Invalid);
    }

    /// The checksum after `delta` is added to the checksummed data (RFC 1624 incremental update).
    fn checksum_after_add(sum: u16, delta: u16) -> u16 {
        let s = !sum as u32 + delta as u32;
        let s = (s & 0xffff) + (s >> 16);
        !(s as u16)
    }

    #[test]
    fn multicast_target_and_bad_options_are_refused() {
        let m = ns(REQ_IP, SOLICITED_NODE, SOLICITED_NODE, None, None);
        assert_eq!(outcome(&m), NdOutcome::Invalid);
        // A zero-length option is malformed (RFC 4861 4.6).
        let mut payload = KNOWN_IP.octets().to_vec();
        payload.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        let mut z = Vec::new();
        PacketBuilder::ethernet2(REQ_MAC, [0x33; 6])
            .ipv6(REQ_IP.octets(), SOLICITED_NODE.octets(), 255)
            .icmpv6(Icmpv6Type::NeighborSolicitation)
            .write(&mut z, &payload)
            .unwrap();
        assert_eq!(outcome(&z), NdOutcome::Malformed);
        // An SLLAO with a group MAC.
        let g = ns(
            REQ_IP,
            SOLICITED_NODE,
            KNOWN_IP,
            Some([0x01, 0, 0x5e, 0, 0, 1]),
            None,
        );
        assert_eq!(outcome(&g), NdOutcome::Invalid);
        // Too short for the target address.
        let mut s = Vec::new();
        PacketBuilder::ethernet2(REQ_MAC, [0x33; 6])
            .ipv6(REQ_IP.octets(), SOLICITED_NODE.octets(), 255)
            .icmpv6(Icmpv6Type::NeighborSolicitation)
            .write(&mut s, &[0xfd, 0])
            .unwrap();
        assert_eq!(outcome(&s), NdOutcome::Malformed);
    }

    #[test]
    fn other_packets_are_not_solicitations() {
        let mut echo = Vec::new();
        PacketBuilder::ethernet2(REQ_MAC, KNOWN_MAC)
            .ipv6(REQ_IP.octets(), KNOWN_IP.octets(), 64)
            .icmpv6_echo_request(1, 1)
            .write(&mut echo, &[0; 8])
            .unwrap();
        assert_eq!(outcome(&echo), NdOutcome::NotSolicitation);
        // Our own advertisement fed back.
        let na = reply(&NS, lookup).unwrap();
        assert_eq!(outcome(&na), NdOutcome::NotSolicitation);
        let mut udp = Vec::new();
        PacketBuilder::ethernet2(REQ_MAC, KNOWN_MAC)
            .ipv6(REQ_IP.octets(), KNOWN_IP.octets(), 255)
            .udp(1, 2)
            .write(&mut udp, &[0; 8])
            .unwrap();
        assert_eq!(outcome(&udp), NdOutcome::NotSolicitation);
        let mut v4 = NS;
        v4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(outcome(&v4), NdOutcome::NotSolicitation);
    }

    #[test]
    fn truncated_frames_are_never_answered() {
        for n in 0..NS.len() {
            let o = outcome(&NS[..n]);
            assert!(
                matches!(o, NdOutcome::Malformed | NdOutcome::NotSolicitation),
                "{n} bytes: {o:?}"
            );
        }
        // The IPv6 payload length claims more than the frame has.
        let mut l = NS;
        l[19] = 0x28;
        assert_eq!(outcome(&l), NdOutcome::Malformed);
        // IPv6 version field wrong.
        let mut v = NS;
        v[14] = 0x40;
        assert_eq!(outcome(&v), NdOutcome::Malformed);
    }

    #[test]
    fn random_and_mutated_frames_never_panic() {
        let mut rng = TestRng(0x0dd5_eed0_0000_0006);
        let mut answered = 0;
        for _ in 0..200_000 {
            let f = rng.mutate(&NS);
            if let Some(r) = reply(&f, |_| Some(KNOWN_MAC)) {
                // Whatever was answered is a valid advertisement with a good checksum.
                let p = SlicedPacket::from_ethernet(&r).unwrap();
                let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
                    panic!("{p:?}")
                };
                let Some(NetSlice::Ipv6(ip)) = &p.net else {
                    panic!("{p:?}")
                };
                let h = ip.header();
                assert!(icmp.is_checksum_valid(h.source(), h.destination()));
                answered += 1;
            }
        }
        assert!(answered > 0, "some mutations still are valid solicitations");
    }
}
