//! IEEE 802.1Q / 802.1ad VLAN tag: the 4 bytes after a frame's tag protocol identifier (the
//! TPID sits in the Ethernet ethertype field): tag control information (PCP, DEI, VID), then
//! the inner ethertype.
//!
//! Contract: see [`crate::wire`]. [`Tag::new_checked`] needs [`HEADER_LEN`] bytes.

use super::rw::{self, Field};

mod field {
    use super::Field;

    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
}

/// Bytes of a tag (after the TPID).
pub const HEADER_LEN: usize = field::ETHERTYPE.end;
/// Bytes a tag adds to a frame (TPID + TCI).
pub const TAG_LEN: usize = 4;
/// The DEI (drop eligible) bit of the TCI.
pub const TCI_DEI: u16 = 0x1000;
/// The VID bits of the TCI.
pub const TCI_VID: u16 = 0x0fff;
/// Where the PCP starts in the TCI.
pub const PCP_SHIFT: u32 = 13;

/// A view of a VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Tag, HEADER_LEN);

impl<T: AsRef<[u8]>> Tag<T> {
    /// Tag control information: PCP (3 bits), DEI (1), VID (12).
    #[inline(always)]
    pub fn tci(&self) -> u16 {
        rw::get_u16(self.header(), field::TCI)
    }

    /// Priority code point.
    #[inline(always)]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> PCP_SHIFT) as u8
    }

    /// Drop eligible indicator.
    #[inline(always)]
    pub fn dei(&self) -> bool {
        self.tci() & TCI_DEI != 0
    }

    /// VLAN identifier.
    #[inline(always)]
    pub fn vid(&self) -> u16 {
        self.tci() & TCI_VID
    }

    /// The ethertype behind the tag.
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        rw::get_u16(self.header(), field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Tag<&'a T> {
    /// Everything after the tag (L3, or another tag).
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let d: &'a [u8] = self.buffer.as_ref();
        d.get(HEADER_LEN..).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tag<T> {
    /// Sets the tag control information.
    #[inline(always)]
    pub fn set_tci(&mut self, tci: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::TCI, tci);
        }
    }

    /// Sets the VID (low 12 bits of `vid`), keeping PCP and DEI.
    #[inline(always)]
    pub fn set_vid(&mut self, vid: u16) {
        self.set_tci((self.tci() & !TCI_VID) | (vid & TCI_VID));
    }

    /// Sets the PCP (low 3 bits of `pcp`), keeping DEI and VID.
    #[inline(always)]
    pub fn set_pcp(&mut self, pcp: u8) {
        let keep = self.tci() & !(0x7 << PCP_SHIFT);
        self.set_tci(keep | ((pcp as u16 & 0x7) << PCP_SHIFT));
    }

    /// Sets the inner ethertype.
    #[inline(always)]
    pub fn set_ethertype(&mut self, t: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::ETHERTYPE, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PCP 5, DEI 1, VID 100, inner IPv4.
    static TAG: [u8; 4] = [0xb0, 0x64, 0x08, 0x00];

    #[test]
    fn deconstruct() {
        let t = Tag::new_checked(&TAG[..]).unwrap();
        assert_eq!(t.tci(), 0xb064);
        assert_eq!((t.pcp(), t.dei(), t.vid()), (5, true, 100));
        assert_eq!(t.ethertype(), 0x0800);
        assert!(t.payload().is_empty());
        assert_eq!(
            Tag::new_checked(&[0u8, 1, 8, 0, 0x45][..])
                .unwrap()
                .payload(),
            &[0x45]
        );
        assert_eq!(
            Tag::new_checked(&TAG[..3]),
            Err(super::super::Error::Truncated)
        );
    }

    #[test]
    fn construct() {
        let mut b = [0u8; 4];
        let mut t = Tag::new_checked(&mut b[..]).unwrap();
        t.set_tci(TCI_DEI);
        t.set_pcp(5);
        t.set_vid(0xf064); // bits above the VID ignored
        t.set_ethertype(0x0800);
        assert_eq!(b, TAG);
        let mut t = Tag::new_checked(&mut b[..]).unwrap();
        t.set_pcp(0);
        t.set_vid(7);
        assert_eq!(t.tci(), 0x1007);
    }
}
