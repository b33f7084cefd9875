//! IPv4 header (RFC 791).
//!
//! Contract: see [`crate::wire`]. [`Packet::new_checked`] needs the [`HEADER_LEN`]-byte fixed
//! header; whether the header is usable (version, IHL, total length against the buffer) is
//! [`Packet::check_lengths`], a separate step because extract and exec react differently. The
//! `update_*` setters keep the header checksum right incrementally (RFC 1624).

use super::checksum;
use super::rw::{self, Field};

mod field {
    use super::Field;

    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
    /// TTL and protocol: one 16-bit word of the checksum.
    pub const TTL_PROTOCOL: Field = 8..10;
    /// Version/IHL and TOS: one 16-bit word of the checksum.
    pub const VER_TOS: Field = 0..2;
    /// Both addresses.
    pub const ADDRS: Field = 12..20;
}

/// Bytes of the fixed header (IHL 5).
pub const HEADER_LEN: usize = field::DST.end;

/// The don't-fragment flag in the flags/offset word.
pub const FLAG_DF: u16 = 0x4000;
/// The more-fragments flag in the flags/offset word.
pub const FLAG_MF: u16 = 0x2000;
/// The fragment offset (8-byte units) in the flags/offset word.
pub const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Packet, HEADER_LEN);

impl<T: AsRef<[u8]>> Packet<T> {
    /// True when the header is usable: version 4, IHL >= 5, and IHL * 4 <= total length <=
    /// the buffer (bytes past the total length are padding).
    #[inline(always)]
    pub fn check_lengths(&self) -> bool {
        let (hl, tl) = (self.header_len(), self.total_len() as usize);
        self.version() == 4 && hl >= HEADER_LEN && tl >= hl && self.buffer.as_ref().len() >= tl
    }

    /// Version (4).
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.header()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4, options included).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (self.header()[field::VER_IHL] & 0x0f) as usize * 4
    }

    /// Type of service (DSCP << 2 | ECN).
    #[inline(always)]
    pub fn tos(&self) -> u8 {
        self.header()[field::TOS]
    }

    /// Total length (header and payload).
    #[inline(always)]
    pub fn total_len(&self) -> u16 {
        rw::get_u16(self.header(), field::LENGTH)
    }

    /// Identification.
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        rw::get_u16(self.header(), field::IDENT)
    }

    /// The flags and fragment offset word ([`FLAG_DF`], [`FLAG_MF`], [`OFFSET_MASK`]): one
    /// read when several of its bits are wanted.
    #[inline(always)]
    pub fn flags_and_offset(&self) -> u16 {
        rw::get_u16(self.header(), field::FLG_OFF)
    }

    /// The don't-fragment flag.
    #[inline(always)]
    pub fn dont_frag(&self) -> bool {
        self.flags_and_offset() & FLAG_DF != 0
    }

    /// The more-fragments flag.
    #[inline(always)]
    pub fn more_frags(&self) -> bool {
        self.flags_and_offset() & FLAG_MF != 0
    }

    /// Fragment offset in 8-byte units.
    #[inline(always)]
    pub fn frag_offset(&self) -> u16 {
        self.flags_and_offset() & OFFSET_MASK
    }

    /// Any fragment: more fragments follow or the offset is non-zero.
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        self.flags_and_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// A non-first fragment (no L4 header in it).
    #[inline(always)]
    pub fn is_later_fragment(&self) -> bool {
        self.frag_offset() != 0
    }

    /// Time to live.
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        self.header()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        self.header()[field::PROTOCOL]
    }

    /// Header checksum.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        rw::get_u16(self.header(), field::CHECKSUM)
    }

    /// Source address.
    #[inline(always)]
    pub fn src_addr(&self) -> u32 {
        rw::get_u32(self.header(), field::SRC)
    }

    /// Destination address.
    #[inline(always)]
    pub fn dst_addr(&self) -> u32 {
        rw::get_u32(self.header(), field::DST)
    }

    /// Both addresses as one word, source in the high half (the flow key's form).
    #[inline(always)]
    pub fn addrs_u64(&self) -> u64 {
        rw::get_u64(self.header(), field::ADDRS)
    }

    /// The header with its options (`header_len` bytes; empty when they are not all there).
    #[inline(always)]
    pub fn header_bytes(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(..self.header_len())
            .unwrap_or_default()
    }

    /// True when the header checksum (over `header_len` bytes) verifies; false when the
    /// buffer does not hold the whole header.
    #[inline(always)]
    pub fn verify_checksum(&self) -> bool {
        self.buffer
            .as_ref()
            .get(..self.header_len())
            .is_some_and(|h| checksum::verify(0, h))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Source and destination address bytes, as the UDP/TCP pseudo header sums them (empty
    /// on an unchecked view over a short buffer).
    #[inline(always)]
    pub fn pseudo_addrs(&self) -> &'a [u8] {
        let d: &'a [u8] = self.buffer.as_ref();
        d.get(field::ADDRS).unwrap_or_default()
    }

    /// The payload: `[header_len, total_len)` (empty when the lengths do not fit the buffer).
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let (hl, tl) = (self.header_len(), self.total_len() as usize);
        let d: &'a [u8] = self.buffer.as_ref();
        d.get(hl..tl).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the total length.
    #[inline(always)]
    pub fn set_total_len(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::LENGTH, v);
        }
    }

    /// Sets the header checksum.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::CHECKSUM, v);
        }
    }

    /// Sets the source address.
    #[inline(always)]
    pub fn set_src_addr(&mut self, a: u32) {
        if let Some(h) = self.header_mut() {
            rw::put_u32(h, field::SRC, a);
        }
    }

    /// Sets the destination address.
    #[inline(always)]
    pub fn set_dst_addr(&mut self, a: u32) {
        if let Some(h) = self.header_mut() {
            rw::put_u32(h, field::DST, a);
        }
    }

    /// Sets the TTL.
    #[inline(always)]
    pub fn set_ttl(&mut self, v: u8) {
        if let Some(h) = self.header_mut() {
            h[field::TTL] = v;
        }
    }

    /// Sets the TOS.
    #[inline(always)]
    pub fn set_tos(&mut self, v: u8) {
        if let Some(h) = self.header_mut() {
            h[field::TOS] = v;
        }
    }

    /// Computes and stores the header checksum over `header_len` bytes (nothing when the
    /// buffer does not hold them).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        if let Some(h) = self.buffer.as_ref().get(..hl) {
            let c = checksum::compute(0, h);
            self.set_checksum(c);
        }
    }

    /// Replaces the 16-bit word `f` and updates the header checksum.
    #[inline(always)]
    fn update_word(&mut self, f: Field, new: u16) {
        if let Some(h) = self.header_mut() {
            let old = rw::get_u16(h, f.clone());
            rw::put_u16(h, f, new);
            let c = checksum::replace_u16(rw::get_u16(h, field::CHECKSUM), old, new);
            rw::put_u16(h, field::CHECKSUM, c);
        }
    }

    /// Sets the TTL, updating the header checksum.
    #[inline(always)]
    pub fn update_ttl(&mut self, v: u8) {
        let w = u16::from_be_bytes([v, self.protocol()]);
        self.update_word(field::TTL_PROTOCOL, w);
    }

    /// Sets the TOS, updating the header checksum.
    #[inline(always)]
    pub fn update_tos(&mut self, v: u8) {
        let w = u16::from_be_bytes([self.header()[field::VER_IHL], v]);
        self.update_word(field::VER_TOS, w);
    }

    /// Sets the total length, updating the header checksum.
    #[inline(always)]
    pub fn update_total_len(&mut self, v: u16) {
        self.update_word(field::LENGTH, v);
    }

    /// Sets the source address, updating the header checksum; returns the old address.
    #[inline(always)]
    pub fn update_src_addr(&mut self, a: u32) -> u32 {
        let old = self.src_addr();
        self.set_src_addr(a);
        self.adjust_checksum(&old.to_be_bytes(), &a.to_be_bytes());
        old
    }

    /// Sets the destination address, updating the header checksum; returns the old address.
    #[inline(always)]
    pub fn update_dst_addr(&mut self, a: u32) -> u32 {
        let old = self.dst_addr();
        self.set_dst_addr(a);
        self.adjust_checksum(&old.to_be_bytes(), &a.to_be_bytes());
        old
    }

    #[inline(always)]
    fn adjust_checksum(&mut self, old: &[u8], new: &[u8]) {
        let c = checksum::replace(self.checksum(), old, new);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.0.1 -> 10.0.0.2, UDP, TTL 64, DF, total length 33, checksum 0x26ca, then 13
    /// payload bytes and 2 bytes of padding.
    static PACKET: [u8; 35] = [
        0x45, 0x00, 0x00, 0x21, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x26, 0xca, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, 0x04, 0xd2, 0x00, 0x35, 0x00, 0x0d, 0xdd, 0xc4, 0x01, 0x02,
        0x03, 0x04, 0x05, 0xee, 0xee,
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert!(p.check_lengths());
        assert_eq!((p.version(), p.header_len(), p.tos()), (4, 20, 0));
        assert_eq!((p.total_len(), p.ident()), (33, 0));
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!((p.ttl(), p.protocol(), p.checksum()), (64, 17, 0x26ca));
        assert_eq!((p.src_addr(), p.dst_addr()), (0x0a00_0001, 0x0a00_0002));
        assert_eq!(p.addrs_u64(), 0x0a00_0001_0a00_0002);
        assert_eq!(p.pseudo_addrs(), &PACKET[12..20]);
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &PACKET[20..33]);
        assert_eq!(p.header_bytes(), &PACKET[..20]);
    }

    #[test]
    fn fragments() {
        let mut b = PACKET;
        b[6] = 0x20; // MF, offset 0
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.more_frags() && p.is_fragment() && !p.is_later_fragment());
        b[6] = 0x00;
        b[7] = 0x02; // offset 2 (16 bytes), last
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.frag_offset(), 2);
        assert!(!p.more_frags() && p.is_fragment() && p.is_later_fragment());
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(
            Packet::new_checked(&PACKET[..19]),
            Err(super::super::Error::Truncated)
        );
        for (at, v) in [(0, 0x65u8), (0, 0x44), (3, 19), (3, 36)] {
            let mut b = PACKET;
            b[at] = v;
            assert!(
                !Packet::new_checked(&b[..]).unwrap().check_lengths(),
                "{at} {v}"
            );
        }
        // IHL 6 needs 24 header bytes: the header is not all there on a 22-byte buffer.
        let mut b = PACKET;
        b[0] = 0x46;
        let p = Packet::new_checked(&b[..22]).unwrap();
        assert!(!p.verify_checksum());
        assert!(p.header_bytes().is_empty() && p.payload().is_empty());
    }

    #[test]
    fn construct_and_update() {
        let mut b = PACKET;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.update_ttl(63);
        assert!(p.verify_checksum());
        p.update_tos(0xb8);
        assert_eq!(p.tos(), 0xb8);
        assert!(p.verify_checksum());
        assert_eq!(p.update_src_addr(0xc0a8_0001), 0x0a00_0001);
        assert_eq!(p.update_dst_addr(0xc0a8_0002), 0x0a00_0002);
        assert!(p.verify_checksum());
        p.update_total_len(34);
        assert!(p.verify_checksum());
        p.set_checksum(0);
        p.fill_checksum();
        assert!(p.verify_checksum());
        // Undo every change: the original bytes (and checksum) come back.
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.update_ttl(64);
        p.update_tos(0);
        p.update_src_addr(0x0a00_0001);
        p.update_dst_addr(0x0a00_0002);
        p.update_total_len(33);
        assert_eq!(b, PACKET);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_total_len(40);
        p.set_ttl(1);
        p.set_tos(4);
        p.set_src_addr(1);
        p.set_dst_addr(2);
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!((p.total_len(), p.ttl(), p.tos()), (40, 1, 4));
        assert_eq!((p.src_addr(), p.dst_addr()), (1, 2));
    }
}
