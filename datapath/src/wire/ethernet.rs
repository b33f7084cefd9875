//! Ethernet II frame header (IEEE 802.3 with an ethertype): destination and source MAC, then
//! the ethertype, or a VLAN tag protocol identifier followed by a [`super::vlan::Tag`].
//!
//! Contract: see [`crate::wire`]. [`Frame::new_checked`] needs [`HEADER_LEN`] bytes;
//! [`Frame::l3`] finds where L3 starts behind at most one tag.

use super::rw::{self, Field};
use super::{ethertype, vlan};

mod field {
    use super::Field;

    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
}

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = field::ETHERTYPE.end;
/// Bytes of the two MAC addresses: a VLAN tag is inserted after them.
pub const ADDRS_LEN: usize = field::SRC.end;

/// A view of an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Frame, HEADER_LEN);

impl<T: AsRef<[u8]>> Frame<T> {
    /// Destination MAC address.
    #[inline(always)]
    pub fn dst_addr(&self) -> [u8; 6] {
        rw::get_mac(self.header(), field::DST)
    }

    /// Source MAC address.
    #[inline(always)]
    pub fn src_addr(&self) -> [u8; 6] {
        rw::get_mac(self.header(), field::SRC)
    }

    /// Destination MAC address as a 48-bit integer (the flow key's form).
    #[inline(always)]
    pub fn dst_addr_u64(&self) -> u64 {
        rw::get_mac_u64(self.header(), field::DST)
    }

    /// Source MAC address as a 48-bit integer.
    #[inline(always)]
    pub fn src_addr_u64(&self) -> u64 {
        rw::get_mac_u64(self.header(), field::SRC)
    }

    /// The ethertype field (a tag protocol identifier on tagged frames, an 802.3 length below
    /// [`ethertype::MIN_TYPE`]).
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        rw::get_u16(self.header(), field::ETHERTYPE)
    }

    /// Where L3 starts and its ethertype, behind at most one VLAN tag (802.1Q or 802.1ad):
    /// `(14, ethertype)` untagged, `(18, inner ethertype)` tagged (a second tag's TPID is
    /// returned as the ethertype; nothing behind it is located). `None` when the frame ends
    /// inside the header or the tag.
    #[inline(always)]
    pub fn l3(&self) -> Option<(usize, u16)> {
        self.check_len().ok()?;
        let et = self.ethertype();
        if ethertype::is_vlan(et) {
            let after = self.buffer.as_ref().get(HEADER_LEN..).unwrap_or_default();
            let tag = vlan::Tag::new_checked(after).ok()?;
            Some((HEADER_LEN + vlan::HEADER_LEN, tag.ethertype()))
        } else {
            Some((HEADER_LEN, et))
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// Everything after the fixed header (a VLAN tag or L3).
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let d: &'a [u8] = self.buffer.as_ref();
        d.get(HEADER_LEN..).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    #[inline(always)]
    pub fn set_dst_addr(&mut self, a: [u8; 6]) {
        if let Some(h) = self.header_mut() {
            rw::put(h, field::DST, a);
        }
    }

    /// Sets the source MAC address.
    #[inline(always)]
    pub fn set_src_addr(&mut self, a: [u8; 6]) {
        if let Some(h) = self.header_mut() {
            rw::put(h, field::SRC, a);
        }
    }

    /// Sets the destination MAC from the low 48 bits of `v`.
    #[inline(always)]
    pub fn set_dst_addr_u64(&mut self, v: u64) {
        self.set_dst_addr(mac_of(v));
    }

    /// Sets the source MAC from the low 48 bits of `v`.
    #[inline(always)]
    pub fn set_src_addr_u64(&mut self, v: u64) {
        self.set_src_addr(mac_of(v));
    }

    /// Sets the ethertype field.
    #[inline(always)]
    pub fn set_ethertype(&mut self, t: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::ETHERTYPE, t);
        }
    }

    /// Everything after the fixed header, writable.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or_default()
    }
}

/// The low 48 bits of `v` as a MAC address.
#[inline(always)]
pub(crate) fn mac_of(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 02:00:00:00:00:01 <- 02:00:00:00:00:02, IPv4, two payload bytes.
    static FRAME: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, 0xaa, 0xbb,
    ];
    /// The same with an 802.1Q tag (PCP 5, DEI 1, VID 100) in front of IPv4.
    static TAGGED: [u8; 20] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x81, 0x00, 0xb0, 0x64, 0x08, 0x00, 0xaa,
        0xbb,
    ];

    #[test]
    fn deconstruct() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.dst_addr_u64(), 0x0200_0000_0001);
        assert_eq!(f.src_addr_u64(), 0x0200_0000_0002);
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
        assert_eq!(f.l3(), Some((14, ethertype::IPV4)));
        let t = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(t.ethertype(), ethertype::VLAN);
        assert_eq!(t.l3(), Some((18, ethertype::IPV4)));
    }

    #[test]
    fn construct() {
        let mut b = [0u8; 16];
        let mut f = Frame::new_checked(&mut b[..]).unwrap();
        f.set_dst_addr([2, 0, 0, 0, 0, 1]);
        f.set_src_addr_u64(0xffff_0200_0000_0002); // bits above 48 ignored
        f.set_ethertype(ethertype::IPV4);
        f.payload_mut().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!(b, FRAME);
        let mut f = Frame::new_unchecked(&mut b[..]);
        f.set_dst_addr_u64(0x0a0b_0c0d_0e0f);
        assert_eq!(&b[..6], &[0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
    }

    #[test]
    fn short_buffers() {
        assert_eq!(
            Frame::new_checked(&FRAME[..13]),
            Err(super::super::Error::Truncated)
        );
        assert!(Frame::new_checked(&FRAME[..14])
            .unwrap()
            .payload()
            .is_empty());
        // A tag cut short, and nothing at all.
        assert_eq!(Frame::new_unchecked(&TAGGED[..17]).l3(), None);
        assert_eq!(Frame::new_unchecked(&TAGGED[..18]).l3(), Some((18, 0x0800)));
        assert_eq!(Frame::new_unchecked(&[][..]).l3(), None);
        // An unchecked view over a short buffer reads zeros and writes nothing.
        let f = Frame::new_unchecked(&FRAME[..3]);
        assert_eq!((f.dst_addr(), f.ethertype()), ([0; 6], 0));
        let mut short = [1u8; 3];
        Frame::new_unchecked(&mut short[..]).set_ethertype(0);
        assert_eq!(short, [1; 3]);
    }
}
