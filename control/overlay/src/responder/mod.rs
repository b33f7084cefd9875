//! ARP, IPv6 neighbor discovery and DHCPv4 responders: the controller's answers to the frames
//! the datapath punts to it, so tenant networks need no ARP/ND flooding across the overlay and
//! each subnet with DHCP enabled gets a native DHCPv4 server (the OpenStack Neutron model).
//!
//! Contract:
//! - Pure: frames in, frames out. No I/O, no clock, no global state. The caller supplies the
//!   address lookups (closures over the controller's model) and sends a reply out of the port
//!   the request came in on.
//! - Every byte is untrusted (it comes from a tenant). Nothing here panics on any input: a frame
//!   that is not a well-formed request this code answers yields no reply and a typed outcome
//!   that says why ([`arp::ArpOutcome`], [`nd::NdOutcome`], [`dhcp::DhcpOutcome`]), each with a
//!   stable `name()` for counters.
//! - Layer 2 is Ethernet II, optionally with one 802.1Q tag; a reply carries the request's tag
//!   unchanged (same PCP, DEI and VLAN id). Frames with two or more tags are not answered.
//! - Headers are parsed and built with well-kept libraries: etherparse for the Ethernet and VLAN
//!   headers, smoltcp's wire reprs for ARP, IPv4, UDP, DHCPv4, IPv6 and ICMPv6/NDISC (which also
//!   verify and fill in the checksums).
//! - Reply frames are at least [`MIN_FRAME_LEN`] bytes (zero padding after the payload).

pub mod arp;
pub mod dhcp;
pub mod nd;

use etherparse::{EtherType, Ethernet2Header, SingleVlanHeader};

/// A MAC address as six bytes.
pub type Mac = [u8; 6];

/// The Ethernet broadcast address.
pub const BROADCAST_MAC: Mac = [0xff; 6];

/// The minimum Ethernet frame length without the FCS; shorter replies are zero-padded.
pub const MIN_FRAME_LEN: usize = 60;

/// Why a frame's Ethernet layer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum L2Error {
    /// the frame is shorter than its Ethernet (and VLAN) header
    #[error("the frame is shorter than its Ethernet (and VLAN) header")]
    Truncated,
    /// the frame carries more than one VLAN tag
    #[error("the frame carries more than one VLAN tag")]
    MultipleTags,
}

/// A frame's Ethernet layer: addresses, the optional 802.1Q tag and the inner EtherType.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct L2 {
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// The 802.1Q tag, if any (its `ether_type` is the inner one).
    pub vlan: Option<SingleVlanHeader>,
    /// The EtherType of the payload (after the tag, if any).
    pub ether_type: EtherType,
}

/// True for a unicast (not group, not all-zero) MAC address.
pub(crate) fn is_unicast_mac(mac: &Mac) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

fn is_tag(t: EtherType) -> bool {
    t == EtherType::VLAN_TAGGED_FRAME
        || t == EtherType::PROVIDER_BRIDGING
        || t == EtherType::VLAN_DOUBLE_TAGGED_FRAME
}

/// Splits a frame into its Ethernet layer and payload. One 802.1Q (0x8100) tag is accepted;
/// 802.1ad / QinQ (0x88a8, 0x9100, or a second tag) is refused.
pub(crate) fn parse_l2(frame: &[u8]) -> Result<(L2, &[u8]), L2Error> {
    let (eth, rest) = Ethernet2Header::from_slice(frame).map_err(|_| L2Error::Truncated)?;
    let (vlan, ether_type, payload) = if eth.ether_type == EtherType::VLAN_TAGGED_FRAME {
        let (tag, rest) = SingleVlanHeader::from_slice(rest).map_err(|_| L2Error::Truncated)?;
        if is_tag(tag.ether_type) {
            return Err(L2Error::MultipleTags);
        }
        let inner = tag.ether_type;
        (Some(tag), inner, rest)
    } else if is_tag(eth.ether_type) {
        return Err(L2Error::MultipleTags);
    } else {
        (None, eth.ether_type, rest)
    };
    Ok((
        L2 {
            dst: eth.destination,
            src: eth.source,
            vlan,
            ether_type,
        },
        payload,
    ))
}

/// Builds a frame `dst <- src` (with `vlan` as is, its inner EtherType set to `ether_type`)
/// whose payload is `payload_len` zero bytes that `fill` then writes; padded to
/// [`MIN_FRAME_LEN`].
pub(crate) fn build_frame(
    dst: Mac,
    src: Mac,
    vlan: Option<&SingleVlanHeader>,
    ether_type: EtherType,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let eth = Ethernet2Header {
        source: src,
        destination: dst,
        ether_type: if vlan.is_some() {
            EtherType::VLAN_TAGGED_FRAME
        } else {
            ether_type
        },
    };
    let head = Ethernet2Header::LEN + vlan.map_or(0, |_| SingleVlanHeader::LEN);
    let mut out = Vec::with_capacity((head + payload_len).max(MIN_FRAME_LEN));
    out.extend_from_slice(&eth.to_bytes());
    if let Some(tag) = vlan {
        let tag = SingleVlanHeader {
            ether_type,
            ..tag.clone()
        };
        out.extend_from_slice(&tag.to_bytes());
    }
    out.resize(head + payload_len, 0);
    fill(&mut out[head..]);
    if out.len() < MIN_FRAME_LEN {
        out.resize(MIN_FRAME_LEN, 0);
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift64*) for the never-panic tests of the three
/// responders; no dependency, reproducible from the seed.
#[cfg(test)]
pub(crate) struct TestRng(pub u64);

#[cfg(test)]
impl TestRng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Mutations of `seed`: random bytes flipped, truncations, extensions and pure noise.
    pub fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut f = seed.to_vec();
        match self.below(4) {
            0 => {
                for _ in 0..1 + self.below(4) {
                    if !f.is_empty() {
                        let i = self.below(f.len());
                        f[i] = self.next_u64() as u8;
                    }
                }
            }
            1 => f.truncate(self.below(seed.len() + 1)),
            2 => {
                for _ in 0..self.below(64) {
                    f.push(self.next_u64() as u8);
                }
                if !f.is_empty() {
                    let i = self.below(f.len());
                    f[i] ^= 1 << self.below(8);
                }
            }
            _ => {
                let n = self.below(600);
                f = (0..n).map(|_| self.next_u64() as u8).collect();
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{VlanId, VlanPcp};

    #[test]
    fn untagged_and_tagged_frames_split() {
        let mut f = vec![1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 0x08, 0x06];
        f.extend_from_slice(&[0xaa; 28]);
        let (l2, p) = parse_l2(&f).unwrap();
        assert_eq!(l2.dst, [1, 2, 3, 4, 5, 6]);
        assert_eq!(l2.src, [10, 11, 12, 13, 14, 15]);
        assert_eq!(l2.ether_type, EtherType::ARP);
        assert!(l2.vlan.is_none());
        assert_eq!(p.len(), 28);

        // 802.1Q, PCP 5, VID 100, inner ARP.
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0xa0, 0x64, 0x08, 0x06]);
        t.extend_from_slice(&[0xaa; 28]);
        let (l2, p) = parse_l2(&t).unwrap();
        let tag = l2.vlan.unwrap();
        assert_eq!(tag.vlan_id.value(), 100);
        assert_eq!(tag.pcp.value(), 5);
        assert_eq!(l2.ether_type, EtherType::ARP);
        assert_eq!(p.len(), 28);
    }

    #[test]
    fn short_and_double_tagged_frames_are_refused() {
        assert_eq!(parse_l2(&[0; 13]).unwrap_err(), L2Error::Truncated);
        let mut t = vec![0; 12];
        t.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert_eq!(parse_l2(&t).unwrap_err(), L2Error::Truncated);
        let mut q = vec![0; 12];
        q.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x81, 0x00, 0x00, 0x06, 0x08, 0x06]);
        assert_eq!(parse_l2(&q).unwrap_err(), L2Error::MultipleTags);
        let mut ad = vec![0; 12];
        ad.extend_from_slice(&[0x88, 0xa8, 0x00, 0x05, 0x08, 0x06]);
        assert_eq!(parse_l2(&ad).unwrap_err(), L2Error::MultipleTags);
    }

    #[test]
    fn built_frames_keep_the_tag_and_are_padded() {
        let tag = SingleVlanHeader {
            pcp: VlanPcp::try_new(3).unwrap(),
            drop_eligible_indicator: true,
            vlan_id: VlanId::try_new(42).unwrap(),
            ether_type: EtherType::IPV4,
        };
        let f = build_frame([1; 6], [2; 6], Some(&tag), EtherType::ARP, 28, |p| {
            p.fill(0x55)
        });
        assert_eq!(f.len(), 60);
        let (l2, p) = parse_l2(&f).unwrap();
        assert_eq!(
            (l2.dst, l2.src, l2.ether_type),
            ([1; 6], [2; 6], EtherType::ARP)
        );
        let got = l2.vlan.unwrap();
        assert_eq!(got.vlan_id, tag.vlan_id);
        assert_eq!(got.pcp, tag.pcp);
        assert!(got.drop_eligible_indicator);
        assert_eq!(&p[..28], &[0x55; 28]);
        assert!(p[28..].iter().all(|&b| b == 0));

        let big = build_frame([1; 6], [2; 6], None, EtherType::IPV6, 100, |_| {});
        assert_eq!(big.len(), 114);
    }

    #[test]
    fn unicast_macs() {
        assert!(is_unicast_mac(&[0x02, 0, 0, 0, 0, 1]));
        assert!(!is_unicast_mac(&[0x01, 0, 0x5e, 0, 0, 1]));
        assert!(!is_unicast_mac(&BROADCAST_MAC));
        assert!(!is_unicast_mac(&[0; 6]));
    }
}
