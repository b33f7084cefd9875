//! ARP responder: answers an ARP request for an IPv4 address the controller knows, so tenant
//! ARP never floods across the overlay.
//!
//! Contract:
//! - Input: an Ethernet frame (optionally with one 802.1Q tag) and a lookup IPv4 -> MAC.
//! - Answered: an Ethernet/IPv4 ARP request (opcode 1) from a unicast sender with a non-zero
//!   sender IP different from the target IP, whose target the lookup knows. The reply is an ARP
//!   reply from the looked-up MAC, addressed to the requester's sender hardware address, with
//!   the request's VLAN tag, padded to 60 bytes.
//! - Not answered (typed [`ArpOutcome`] says which): other EtherTypes, truncated or non
//!   Ethernet/IPv4 ARP (htype, ptype, hlen, plen), replies and other opcodes, probes (sender IP
//!   0.0.0.0) and announcements (sender IP == target IP), multicast or zero sender addresses,
//!   unknown targets.
//! - Never panics on any input.

use std::net::Ipv4Addr;

use etherparse::EtherType;
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress};

use super::{build_frame, is_unicast_mac, parse_l2, L2Error, Mac};

/// What [`respond`] did with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArpOutcome {
    /// An ARP reply to send back out of the request's port.
    Reply(Vec<u8>),
    /// Not an ARP frame (another EtherType, or more than one VLAN tag).
    NotArp,
    /// A truncated frame, or ARP that is not Ethernet/IPv4 (htype, ptype, hlen or plen).
    Malformed,
    /// An ARP reply or another opcode (only requests are answered).
    NotRequest,
    /// A probe (sender IP 0.0.0.0) or an announcement (sender IP == target IP).
    Gratuitous,
    /// The sender hardware address (or the Ethernet source) is multicast or zero.
    BadSender,
    /// The lookup does not know the target IP.
    UnknownTarget,
}

impl ArpOutcome {
    /// A stable name for counters (`reply`, `not_arp`, `malformed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ArpOutcome::Reply(_) => "reply",
            ArpOutcome::NotArp => "not_arp",
            ArpOutcome::Malformed => "malformed",
            ArpOutcome::NotRequest => "not_request",
            ArpOutcome::Gratuitous => "gratuitous",
            ArpOutcome::BadSender => "bad_sender",
            ArpOutcome::UnknownTarget => "unknown_target",
        }
    }

    /// The reply frame, if there is one.
    pub fn into_reply(self) -> Option<Vec<u8>> {
        match self {
            ArpOutcome::Reply(f) => Some(f),
            _ => None,
        }
    }
}

/// The reply to `frame` if it is an ARP request for an address `lookup` knows (see the module
/// contract), else `None`.
pub fn reply(frame: &[u8], lookup: impl Fn(Ipv4Addr) -> Option<Mac>) -> Option<Vec<u8>> {
    respond(frame, lookup).into_reply()
}

/// Like [`reply`], but says why when there is no reply.
pub fn respond(frame: &[u8], lookup: impl Fn(Ipv4Addr) -> Option<Mac>) -> ArpOutcome {
    let (l2, payload) = match parse_l2(frame) {
        Ok(x) => x,
        Err(L2Error::Truncated) => return ArpOutcome::Malformed,
        Err(L2Error::MultipleTags) => return ArpOutcome::NotArp,
    };
    if l2.ether_type != EtherType::ARP {
        return ArpOutcome::NotArp;
    }
    let Ok(packet) = ArpPacket::new_checked(payload) else {
        return ArpOutcome::Malformed;
    };
    let Ok(ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    }) = ArpRepr::parse(&packet)
    else {
        return ArpOutcome::Malformed;
    };
    if operation != ArpOperation::Request {
        return ArpOutcome::NotRequest;
    }
    if source_protocol_addr.is_unspecified() || source_protocol_addr == target_protocol_addr {
        return ArpOutcome::Gratuitous;
    }
    let requester: Mac = source_hardware_addr.0;
    if !is_unicast_mac(&requester) || !is_unicast_mac(&l2.src) {
        return ArpOutcome::BadSender;
    }
    let Some(mac) = lookup(target_protocol_addr) else {
        return ArpOutcome::UnknownTarget;
    };
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: target_protocol_addr,
        target_hardware_addr: source_hardware_addr,
        target_protocol_addr: source_protocol_addr,
    };
    ArpOutcome::Reply(build_frame(
        requester,
        mac,
        l2.vlan.as_ref(),
        EtherType::ARP,
        repr.buffer_len(),
        |p| repr.emit(&mut ArpPacket::new_unchecked(p)),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{TestRng, MIN_FRAME_LEN};
    use super::*;

    const REQ_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    const KNOWN_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
    const REQ_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const KNOWN_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn lookup(ip: Ipv4Addr) -> Option<Mac> {
        (ip == KNOWN_IP).then_some(KNOWN_MAC)
    }

    /// "Who has 10.0.0.2? Tell 10.0.0.1" from 02:00:00:00:00:01, as a capture shows it.
    const REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08,
        0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, hlen, plen, op
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sha, spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // tha, tpa
    ];

    /// The reply the kernel would send for 10.0.0.2 at 02:00:00:00:00:02 (padded to 60).
    const REPLY: [u8; 42] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06, //
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, //
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 10, 0, 0, 2, //
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, //
    ];

    #[test]
    fn answers_a_request_byte_for_byte() {
        let r = reply(&REQUEST, lookup).unwrap();
        assert_eq!(r.len(), MIN_FRAME_LEN);
        assert_eq!(&r[..42], &REPLY[..]);
        assert!(r[42..].iter().all(|&b| b == 0));
    }

    #[test]
    fn answers_a_request_built_with_etherparse_keeping_the_vlan_tag() {
        use etherparse::{ArpHardwareId, ArpOperation as Op, ArpPacket as EpArp, PacketBuilder};
        let arp = EpArp::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            Op::REQUEST,
            &REQ_MAC,
            &REQ_IP.octets(),
            &[0; 6],
            &KNOWN_IP.octets(),
        )
        .unwrap();
        let b = PacketBuilder::ethernet2(REQ_MAC, [0xff; 6])
            .single_vlan(etherparse::VlanId::try_new(77).unwrap())
            .arp(arp);
        let mut f = Vec::new();
        b.write(&mut f).unwrap();
        let r = reply(&f, lookup).unwrap();
        let p = etherparse::SlicedPacket::from_ethernet(&r).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
            panic!("{p:?}")
        };
        assert_eq!(eth.destination(), REQ_MAC);
        assert_eq!(eth.source(), KNOWN_MAC);
        assert_eq!(
            p.vlan_ids().iter().map(|v| v.value()).collect::<Vec<_>>(),
            [77]
        );
        let Some(etherparse::NetSlice::Arp(a)) = &p.net else {
            panic!("{p:?}")
        };
        assert_eq!(a.operation(), Op::REPLY);
        assert_eq!(a.sender_hw_addr(), &KNOWN_MAC[..]);
        assert_eq!(a.sender_protocol_addr(), &KNOWN_IP.octets()[..]);
        assert_eq!(a.target_hw_addr(), &REQ_MAC[..]);
        assert_eq!(a.target_protocol_addr(), &REQ_IP.octets()[..]);
    }

    #[test]
    fn unicast_refresh_requests_are_answered_too() {
        let mut f = REQUEST;
        f[..6].copy_from_slice(&KNOWN_MAC);
        f[32..38].copy_from_slice(&KNOWN_MAC);
        assert!(reply(&f, lookup).is_some());
    }

    #[test]
    fn unknown_target_is_not_answered() {
        let mut f = REQUEST;
        f[41] = 9;
        assert_eq!(respond(&f, lookup), ArpOutcome::UnknownTarget);
    }

    #[test]
    fn probes_and_announcements_are_not_answered() {
        let mut probe = REQUEST;
        probe[28..32].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(respond(&probe, lookup), ArpOutcome::Gratuitous);
        let mut announce = REQUEST;
        announce[28..32].copy_from_slice(&KNOWN_IP.octets());
        assert_eq!(respond(&announce, lookup), ArpOutcome::Gratuitous);
    }

    #[test]
    fn replies_and_other_opcodes_are_not_answered() {
        assert_eq!(respond(&REPLY, lookup), ArpOutcome::NotRequest);
        let mut rarp = REQUEST;
        rarp[21] = 3;
        assert_eq!(respond(&rarp, lookup), ArpOutcome::NotRequest);
    }

    #[test]
    fn wrong_hardware_or_protocol_is_malformed() {
        for (i, v) in [(15, 6u8), (16, 0x86), (18, 8), (19, 16)] {
            let mut f = REQUEST;
            f[i] = v;
            assert_eq!(respond(&f, lookup), ArpOutcome::Malformed, "byte {i} = {v}");
        }
    }

    #[test]
    fn truncated_frames_are_malformed() {
        for n in 0..42 {
            let o = respond(&REQUEST[..n], lookup);
            assert!(
                matches!(o, ArpOutcome::Malformed),
                "{n} bytes: {o:?} (a truncated frame is never answered)"
            );
        }
    }

    #[test]
    fn multicast_senders_are_refused() {
        let mut f = REQUEST;
        f[22] = 0x01;
        assert_eq!(respond(&f, lookup), ArpOutcome::BadSender);
        let mut g = REQUEST;
        g[6] = 0x03;
        assert_eq!(respond(&g, lookup), ArpOutcome::BadSender);
    }

    #[test]
    fn other_ethertypes_and_qinq_are_not_arp() {
        let mut f = REQUEST;
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(respond(&f, lookup), ArpOutcome::NotArp);
        let mut q = REQUEST[..12].to_vec();
        q.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0, 0, 2]);
        q.extend_from_slice(&REQUEST[12..]);
        assert_eq!(respond(&q, lookup), ArpOutcome::NotArp);
    }

    #[test]
    fn random_and_mutated_frames_never_panic() {
        let mut rng = TestRng(0x5eed_a4b0_0000_0001);
        let mut replies = 0;
        for _ in 0..200_000 {
            let f = rng.mutate(&REQUEST);
            if let Some(r) = reply(&f, |_| Some(KNOWN_MAC)) {
                // Whatever was answered is a well-formed ARP reply.
                let (l2, p) = parse_l2(&r).unwrap();
                assert_eq!(l2.ether_type, EtherType::ARP);
                let repr = ArpRepr::parse(&ArpPacket::new_checked(p).unwrap()).unwrap();
                assert!(matches!(
                    repr,
                    ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Reply,
                        ..
                    }
                ));
                replies += 1;
            }
        }
        assert!(replies > 0, "some mutations still are valid requests");
    }
}
