//! VXLAN header (RFC 7348): flags (the I bit says the VNI is valid), 24 reserved bits, the
//! 24-bit VNI, 8 reserved bits.
//!
//! Contract: see [`crate::wire`]. [`Packet::new_checked`] needs [`HEADER_LEN`] bytes; the
//! reserved bits are neither checked nor written.

use super::rw::{self, Field};
pub use strato_flowtable::tunnel::VXLAN_FLAG_I as FLAG_I;

mod field {
    use super::Field;

    pub const FLAGS: usize = 0;
    pub const VNI: Field = 4..7;
    pub const VNI_RSVD: Field = 4..8;
}

/// Bytes of the header.
pub const HEADER_LEN: usize = field::VNI_RSVD.end;

/// A view of a VXLAN packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Packet, HEADER_LEN);

impl<T: AsRef<[u8]>> Packet<T> {
    /// The flags byte.
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.header()[field::FLAGS]
    }

    /// True when the I flag is set (the VNI is valid).
    #[inline(always)]
    pub fn has_vni(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The VNI.
    #[inline(always)]
    pub fn vni(&self) -> u32 {
        rw::get_u32(self.header(), field::VNI_RSVD) >> 8
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The encapsulated frame.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let d: &'a [u8] = self.buffer.as_ref();
        d.get(HEADER_LEN..).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the flags byte.
    #[inline(always)]
    pub fn set_flags(&mut self, v: u8) {
        if let Some(h) = self.header_mut() {
            h[field::FLAGS] = v;
        }
    }

    /// Sets the VNI (low 24 bits of `vni`).
    #[inline(always)]
    pub fn set_vni(&mut self, vni: u32) {
        if let Some(h) = self.header_mut() {
            let b = vni.to_be_bytes();
            rw::put(h, field::VNI, [b[1], b[2], b[3]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// I flag, VNI 0xabcdef, then two bytes of inner frame.
    static PACKET: [u8; 10] = [0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0, 0x02, 0x00];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert!(p.has_vni());
        assert_eq!((p.flags(), p.vni()), (0x08, 0xab_cdef));
        assert_eq!(p.payload(), &[0x02, 0x00]);
        assert_eq!(
            Packet::new_checked(&PACKET[..7]),
            Err(super::super::Error::Truncated)
        );
        let mut b = PACKET;
        b[0] = 0xf7;
        b[7] = 0xff; // reserved bits are ignored
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(!p.has_vni());
        assert_eq!(p.vni(), 0xab_cdef);
    }

    #[test]
    fn construct() {
        let mut b = [0u8; 10];
        b[8..].copy_from_slice(&PACKET[8..]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_flags(FLAG_I);
        p.set_vni(0xffab_cdef);
        assert_eq!(b, PACKET);
    }
}
