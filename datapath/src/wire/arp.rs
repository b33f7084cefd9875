//! ARP (RFC 826) for IPv4 over Ethernet; RARP (RFC 903) has the same layout.
//!
//! Contract: see [`crate::wire`]. [`Packet::new_checked`] needs [`HEADER_LEN`] bytes, the size
//! of an Ethernet/IPv4 ARP packet; [`Packet::is_ethernet_ipv4`] says whether it is one (other
//! hardware or protocol types have other sizes and are not read by this view).

use super::ethertype;
use super::rw::{self, Field};

mod field {
    use super::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
    pub const TYPES: Field = 0..4;
    pub const LENS: Field = 4..6;
}

/// Bytes of an Ethernet/IPv4 ARP packet.
pub const HEADER_LEN: usize = field::TPA.end;
/// Hardware type Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// ARP request.
pub const OP_REQUEST: u16 = 1;
/// ARP reply.
pub const OP_REPLY: u16 = 2;

/// A view of an ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Packet, HEADER_LEN);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Hardware type.
    #[inline(always)]
    pub fn htype(&self) -> u16 {
        rw::get_u16(self.header(), field::HTYPE)
    }

    /// Protocol type.
    #[inline(always)]
    pub fn ptype(&self) -> u16 {
        rw::get_u16(self.header(), field::PTYPE)
    }

    /// Hardware address length.
    #[inline(always)]
    pub fn hlen(&self) -> u8 {
        self.header()[field::HLEN]
    }

    /// Protocol address length.
    #[inline(always)]
    pub fn plen(&self) -> u8 {
        self.header()[field::PLEN]
    }

    /// True for Ethernet/IPv4: htype 1, ptype 0x0800, hlen 6, plen 4.
    #[inline(always)]
    pub fn is_ethernet_ipv4(&self) -> bool {
        const TYPES: u32 = (HTYPE_ETHERNET as u32) << 16 | ethertype::IPV4 as u32;
        rw::get_u32(self.header(), field::TYPES) == TYPES
            && rw::get_u16(self.header(), field::LENS) == 0x0604
    }

    /// Operation.
    #[inline(always)]
    pub fn operation(&self) -> u16 {
        rw::get_u16(self.header(), field::OPER)
    }

    /// Sender hardware address.
    #[inline(always)]
    pub fn sha(&self) -> [u8; 6] {
        rw::get_mac(self.header(), field::SHA)
    }

    /// Sender hardware address as a 48-bit integer (the flow key's form).
    #[inline(always)]
    pub fn sha_u64(&self) -> u64 {
        rw::get_mac_u64(self.header(), field::SHA)
    }

    /// Sender protocol address.
    #[inline(always)]
    pub fn spa(&self) -> u32 {
        rw::get_u32(self.header(), field::SPA)
    }

    /// Target hardware address.
    #[inline(always)]
    pub fn tha(&self) -> [u8; 6] {
        rw::get_mac(self.header(), field::THA)
    }

    /// Target hardware address as a 48-bit integer.
    #[inline(always)]
    pub fn tha_u64(&self) -> u64 {
        rw::get_mac_u64(self.header(), field::THA)
    }

    /// Target protocol address.
    #[inline(always)]
    pub fn tpa(&self) -> u32 {
        rw::get_u32(self.header(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the operation.
    #[inline(always)]
    pub fn set_operation(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::OPER, v);
        }
    }

    /// Sets the sender hardware address from the low 48 bits of `v`.
    #[inline(always)]
    pub fn set_sha_u64(&mut self, v: u64) {
        if let Some(h) = self.header_mut() {
            rw::put(h, field::SHA, super::ethernet::mac_of(v));
        }
    }

    /// Sets the sender protocol address.
    #[inline(always)]
    pub fn set_spa(&mut self, v: u32) {
        if let Some(h) = self.header_mut() {
            rw::put_u32(h, field::SPA, v);
        }
    }

    /// Sets the target hardware address from the low 48 bits of `v`.
    #[inline(always)]
    pub fn set_tha_u64(&mut self, v: u64) {
        if let Some(h) = self.header_mut() {
            rw::put(h, field::THA, super::ethernet::mac_of(v));
        }
    }

    /// Sets the target protocol address.
    #[inline(always)]
    pub fn set_tpa(&mut self, v: u32) {
        if let Some(h) = self.header_mut() {
            rw::put_u32(h, field::TPA, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request: 02:00:00:00:00:01 / 10.0.0.1 asks who has 10.0.0.2.
    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02,
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert!(p.is_ethernet_ipv4());
        assert_eq!(
            (p.htype(), p.ptype(), p.hlen(), p.plen()),
            (1, 0x0800, 6, 4)
        );
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sha(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(p.sha_u64(), 0x0200_0000_0001);
        assert_eq!((p.spa(), p.tpa()), (0x0a00_0001, 0x0a00_0002));
        assert_eq!((p.tha(), p.tha_u64()), ([0; 6], 0));
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]),
            Err(super::super::Error::Truncated)
        );
        let mut other = REQUEST;
        other[5] = 16;
        assert!(!Packet::new_checked(&other[..]).unwrap().is_ethernet_ipv4());
    }

    #[test]
    fn construct() {
        let mut b = [0u8; 28];
        b[..6].copy_from_slice(&REQUEST[..6]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_operation(OP_REPLY);
        p.set_sha_u64(0x0200_0000_0001);
        p.set_spa(0x0a00_0001);
        p.set_tha_u64(0x0200_0000_0002);
        p.set_tpa(0x0a00_0002);
        assert_eq!(p.operation(), OP_REPLY);
        assert_eq!(p.tha_u64(), 0x0200_0000_0002);
        p.set_operation(OP_REQUEST);
        p.set_tha_u64(0);
        assert_eq!(b, REQUEST);
    }
}
