//! UDP header (RFC 768).
//!
//! Contract: see [`crate::wire`]. [`Packet::new_checked`] needs [`HEADER_LEN`] bytes. A
//! checksum of 0 means "none" (IPv4 only, RFC 768); [`Packet::adjust_checksum`] keeps it 0
//! and never stores a computed 0 (sent as 0xffff instead).

use super::checksum;
use super::rw::{self, Field};

mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const PORTS: Field = 0..4;
}

/// Bytes of the header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Packet, HEADER_LEN);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Source port.
    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        rw::get_u16(self.header(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        rw::get_u16(self.header(), field::DST_PORT)
    }

    /// Both ports, source in the high half (the flow key's form).
    #[inline(always)]
    pub fn ports(&self) -> u32 {
        rw::get_u32(self.header(), field::PORTS)
    }

    /// Length field (header and payload).
    #[inline(always)]
    pub fn len(&self) -> u16 {
        rw::get_u16(self.header(), field::LENGTH)
    }

    /// True when the length field is 0.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checksum field (0: none).
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        rw::get_u16(self.header(), field::CHECKSUM)
    }

    /// True when the checksum verifies over the datagram (by its length field) plus the
    /// pseudo-header sum `pseudo` ([`checksum::pseudo_header`]); false when the datagram does
    /// not fit the buffer. A zero checksum is not special here.
    #[inline(always)]
    pub fn verify_checksum(&self, pseudo: u64) -> bool {
        self.buffer
            .as_ref()
            .get(..self.len() as usize)
            .is_some_and(|d| checksum::verify(pseudo, d))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload by the length field (empty when it does not fit the buffer).
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let d: &'a [u8] = self.buffer.as_ref();
        d.get(HEADER_LEN..self.len() as usize).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    #[inline(always)]
    pub fn set_src_port(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::SRC_PORT, v);
        }
    }

    /// Sets the destination port.
    #[inline(always)]
    pub fn set_dst_port(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::DST_PORT, v);
        }
    }

    /// Sets the length field.
    #[inline(always)]
    pub fn set_len(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::LENGTH, v);
        }
    }

    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::CHECKSUM, v);
        }
    }

    /// Updates the checksum for covered bytes `old` that became `new` (RFC 1624; equal even
    /// lengths). A checksum of 0 stays 0; a computed 0 is stored as 0xffff.
    #[inline(always)]
    pub fn adjust_checksum(&mut self, old: &[u8], new: &[u8]) {
        let c = self.checksum();
        if c == 0 {
            return;
        }
        let n = checksum::replace(c, old, new);
        self.set_checksum(if n == 0 { 0xffff } else { n });
    }

    /// Sets the source port, updating the checksum.
    #[inline(always)]
    pub fn update_src_port(&mut self, v: u16) {
        let old = self.src_port();
        self.set_src_port(v);
        self.adjust_checksum(&old.to_be_bytes(), &v.to_be_bytes());
    }

    /// Sets the destination port, updating the checksum.
    #[inline(always)]
    pub fn update_dst_port(&mut self, v: u16) {
        let old = self.dst_port();
        self.set_dst_port(v);
        self.adjust_checksum(&old.to_be_bytes(), &v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1234 -> 53, length 13, checksum 0xddc4 (over 10.0.0.1 -> 10.0.0.2), 5 payload bytes.
    static PACKET: [u8; 13] = [
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x0d, 0xdd, 0xc4, 0x01, 0x02, 0x03, 0x04, 0x05,
    ];
    /// The IPv4 source and destination of PACKET.
    static ADDRS: [u8; 8] = [10, 0, 0, 1, 10, 0, 0, 2];

    fn pseudo(len: usize) -> u64 {
        checksum::pseudo_header(&ADDRS, super::super::ip_proto::UDP, len)
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (1234, 53));
        assert_eq!(p.ports(), 1234 << 16 | 53);
        assert_eq!((p.len(), p.checksum()), (13, 0xddc4));
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5]);
        assert!(p.verify_checksum(pseudo(13)));
        assert!(!Packet::new_checked(&PACKET[..12])
            .unwrap()
            .verify_checksum(pseudo(13)));
        assert_eq!(
            Packet::new_checked(&PACKET[..7]),
            Err(super::super::Error::Truncated)
        );
    }

    #[test]
    fn construct_and_update() {
        let mut b = PACKET;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.update_src_port(4321);
        p.update_dst_port(5353);
        assert!(p.verify_checksum(pseudo(13)));
        p.update_src_port(1234);
        p.update_dst_port(53);
        assert_eq!(b, PACKET);
        // No checksum stays no checksum.
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_checksum(0);
        p.update_dst_port(1);
        assert_eq!(p.checksum(), 0);
        p.set_len(8);
        assert!(Packet::new_checked(&b[..]).unwrap().payload().is_empty());
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        let mut b = PACKET;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        // Choose the new port so the updated checksum computes to 0.
        let s = checksum::fold((!0xddc4u16) as u64 + (!1234u16) as u64);
        p.update_src_port(0xffff - s);
        assert_eq!(p.checksum(), 0xffff);
    }
}
