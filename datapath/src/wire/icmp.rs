//! ICMP (RFC 792) and ICMPv6 (RFC 4443) common header, and the neighbor solicitation /
//! advertisement body of IPv6 neighbor discovery (RFC 4861).
//!
//! Contract: see [`crate::wire`]. [`Packet::new_checked`] needs the [`HEADER_LEN`]-byte
//! common header (type, code, checksum); every real message has at least
//! [`MESSAGE_MIN_LEN`] bytes, which is for the caller to require. [`NdMessage::new_checked`]
//! needs [`ND_LEN`] bytes.

use super::checksum;
use super::rw::{self, Field};

mod field {
    use super::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const TYPE_CODE: Field = 0..2;
    pub const CHECKSUM: Field = 2..4;
    pub const ND_TARGET: Field = 8..24;
}

/// Bytes of the common header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;
/// Smallest ICMP / ICMPv6 message (the common header and 4 type-specific bytes).
pub const MESSAGE_MIN_LEN: usize = 8;
/// Bytes of a neighbor solicitation / advertisement up to the end of its target address.
pub const ND_LEN: usize = field::ND_TARGET.end;

/// ICMPv6 neighbor solicitation.
pub const ND_NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 neighbor advertisement.
pub const ND_NEIGHBOR_ADVERT: u8 = 136;

/// A view of an ICMP or ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Packet, HEADER_LEN);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Message type.
    #[inline(always)]
    pub fn msg_type(&self) -> u8 {
        self.header()[field::TYPE]
    }

    /// Message code.
    #[inline(always)]
    pub fn code(&self) -> u8 {
        self.header()[field::CODE]
    }

    /// Type and code as one word, type in the high byte (the flow key's form).
    #[inline(always)]
    pub fn type_code(&self) -> u16 {
        rw::get_u16(self.header(), field::TYPE_CODE)
    }

    /// Checksum.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        rw::get_u16(self.header(), field::CHECKSUM)
    }

    /// True for an ICMPv6 neighbor solicitation or advertisement (type 135/136, code 0).
    #[inline(always)]
    pub fn is_nd(&self) -> bool {
        self.code() == 0 && matches!(self.msg_type(), ND_NEIGHBOR_SOLICIT | ND_NEIGHBOR_ADVERT)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the checksum.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::CHECKSUM, v);
        }
    }

    /// Updates the checksum for covered bytes `old` that became `new` (RFC 1624).
    #[inline(always)]
    pub fn adjust_checksum(&mut self, old: &[u8], new: &[u8]) {
        let c = checksum::replace(self.checksum(), old, new);
        self.set_checksum(c);
    }

    #[inline(always)]
    fn update_type_code(&mut self, new: u16) {
        if let Some(h) = self.header_mut() {
            let old = rw::get_u16(h, field::TYPE_CODE);
            rw::put_u16(h, field::TYPE_CODE, new);
            let c = checksum::replace_u16(rw::get_u16(h, field::CHECKSUM), old, new);
            rw::put_u16(h, field::CHECKSUM, c);
        }
    }

    /// Sets the type, updating the checksum.
    #[inline(always)]
    pub fn update_type(&mut self, v: u8) {
        self.update_type_code(u16::from_be_bytes([v, self.code()]));
    }

    /// Sets the code, updating the checksum.
    #[inline(always)]
    pub fn update_code(&mut self, v: u8) {
        self.update_type_code(u16::from_be_bytes([self.msg_type(), v]));
    }
}

/// A view of an ICMPv6 neighbor solicitation or advertisement (the message, not its
/// options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdMessage<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(NdMessage, ND_LEN);

impl<T: AsRef<[u8]>> NdMessage<T> {
    /// The target address.
    #[inline(always)]
    pub fn target(&self) -> u128 {
        rw::get_u128(self.header(), field::ND_TARGET)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdMessage<T> {
    /// Sets the target address, updating the ICMPv6 checksum.
    #[inline(always)]
    pub fn update_target(&mut self, a: u128) {
        if let Some(h) = self.header_mut() {
            let mut old = [0u8; 16];
            old.copy_from_slice(&h[field::ND_TARGET]);
            let new = a.to_be_bytes();
            rw::put(h, field::ND_TARGET, new);
            let c = checksum::replace(rw::get_u16(h, field::CHECKSUM), &old, &new);
            rw::put_u16(h, field::CHECKSUM, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Neighbor solicitation fd00::1 -> ff02::1:ff00:2 for target fd00::2, with a source
    /// link-layer address option (checksum 0x7d97).
    static NS: [u8; 32] = [
        0x87, 0x00, 0x7d, 0x97, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x01,
    ];
    /// fd00::1, ff02::1:ff00:2.
    static ADDRS: [u8; 32] = [
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 0xff, 0, 0, 2,
    ];
    /// Echo request, id 7, seq 9, 8 bytes of 'a' (checksum 0x726a).
    static ECHO: [u8; 16] = [
        0x08, 0x00, 0x72, 0x6a, 0x00, 0x07, 0x00, 0x09, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61,
        0x61,
    ];

    fn ns_ok(m: &[u8]) -> bool {
        let p = checksum::pseudo_header(&ADDRS, super::super::ip_proto::ICMPV6, m.len());
        checksum::verify(p, m)
    }

    #[test]
    fn deconstruct() {
        assert!(ns_ok(&NS));
        assert!(checksum::verify(0, &ECHO));
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.type_code()), (8, 0, 0x0800));
        assert_eq!(p.checksum(), 0x726a);
        assert!(!p.is_nd());
        let n = Packet::new_checked(&NS[..]).unwrap();
        assert!(n.is_nd());
        let nd = NdMessage::new_checked(&NS[..]).unwrap();
        assert_eq!(nd.target(), 0xfd00 << 112 | 2);
        assert_eq!(
            Packet::new_checked(&ECHO[..3]),
            Err(super::super::Error::Truncated)
        );
        assert!(NdMessage::new_checked(&NS[..23]).is_err());
    }

    #[test]
    fn update() {
        let mut b = ECHO;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.update_type(0);
        p.update_code(3);
        assert_eq!((p.msg_type(), p.code()), (0, 3));
        assert!(checksum::verify(0, &b));
        let mut b = NS;
        let mut nd = NdMessage::new_checked(&mut b[..]).unwrap();
        nd.update_target(0xfe80 << 112 | 0xabcd);
        assert!(ns_ok(&b));
        let mut nd = NdMessage::new_checked(&mut b[..]).unwrap();
        nd.update_target(0xfd00 << 112 | 2);
        assert_eq!(b, NS);
        // A covered payload word changed by someone else: the checksum follows.
        let mut b = ECHO;
        b[8..10].copy_from_slice(b"zz");
        Packet::new_checked(&mut b[..])
            .unwrap()
            .adjust_checksum(b"aa", b"zz");
        assert!(checksum::verify(0, &b));
    }
}
