//! TCP header (RFC 9293).
//!
//! Contract: see [`crate::wire`]. [`Packet::new_checked`] needs the [`HEADER_LEN`]-byte fixed
//! header; [`Packet::check_lengths`] adds the data offset. [`Packet::adjust_checksum`] needs
//! only the bytes up to the checksum field, so a segment cut short after it still has its
//! checksum kept right.

use super::checksum;
use super::rw::{self, Field};

mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const OFF_FLAGS: Field = 12..14;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    pub const PORTS: Field = 0..4;
}

/// Bytes of the fixed header (data offset 5).
pub const HEADER_LEN: usize = field::URGENT.end;
/// Bytes up to the end of the checksum field.
const CSUM_END: usize = field::CHECKSUM.end;
/// The flag bits of the offset/flags word (the three reserved bits included).
pub const FLAGS_MASK: u16 = 0x0fff;

/// A view of a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Packet, HEADER_LEN);

impl<T: AsRef<[u8]>> Packet<T> {
    /// True when the data offset is at least 5 and the header it gives fits the buffer.
    #[inline(always)]
    pub fn check_lengths(&self) -> bool {
        let off = self.header()[field::OFF_FLAGS.start] >> 4;
        off >= 5 && off as usize * 4 <= self.buffer.as_ref().len()
    }

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

    /// Sequence number.
    #[inline(always)]
    pub fn seq_number(&self) -> u32 {
        rw::get_u32(self.header(), field::SEQ_NUM)
    }

    /// Acknowledgment number.
    #[inline(always)]
    pub fn ack_number(&self) -> u32 {
        rw::get_u32(self.header(), field::ACK_NUM)
    }

    /// Header length in bytes (data offset * 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (self.header()[field::OFF_FLAGS.start] >> 4) as usize * 4
    }

    /// The flag bits (low 12 bits of the offset/flags word: NS, CWR, ECE, URG, ACK, PSH,
    /// RST, SYN, FIN and the reserved bits).
    #[inline(always)]
    pub fn flags(&self) -> u16 {
        rw::get_u16(self.header(), field::OFF_FLAGS) & FLAGS_MASK
    }

    /// Window.
    #[inline(always)]
    pub fn window(&self) -> u16 {
        rw::get_u16(self.header(), field::WINDOW)
    }

    /// Checksum.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        rw::get_u16(self.header(), field::CHECKSUM)
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

    /// Sets the checksum.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::CHECKSUM, v);
        }
    }

    /// Updates the checksum for covered bytes `old` that became `new` (RFC 1624; equal even
    /// lengths). Needs only the bytes up to the checksum field.
    #[inline(always)]
    pub fn adjust_checksum(&mut self, old: &[u8], new: &[u8]) {
        if let Some(h) = self.buffer.as_mut().first_chunk_mut::<CSUM_END>() {
            let c = checksum::replace(rw::get_u16(h, field::CHECKSUM), old, new);
            rw::put_u16(h, field::CHECKSUM, c);
        }
    }

    /// Replaces the 16-bit word `f` and updates the checksum.
    #[inline(always)]
    fn update_word(&mut self, f: Field, new: u16) {
        if let Some(h) = self.header_mut() {
            let old = rw::get_u16(h, f.clone());
            rw::put_u16(h, f, new);
            let c = checksum::replace_u16(rw::get_u16(h, field::CHECKSUM), old, new);
            rw::put_u16(h, field::CHECKSUM, c);
        }
    }

    /// Sets the source port, updating the checksum.
    #[inline(always)]
    pub fn update_src_port(&mut self, v: u16) {
        self.update_word(field::SRC_PORT, v);
    }

    /// Sets the destination port, updating the checksum.
    #[inline(always)]
    pub fn update_dst_port(&mut self, v: u16) {
        self.update_word(field::DST_PORT, v);
    }

    /// Sets the flag bits (low 12 bits of `v`; the data offset is kept), updating the
    /// checksum.
    #[inline(always)]
    pub fn update_flags(&mut self, v: u16) {
        let w = rw::get_u16(self.header(), field::OFF_FLAGS);
        self.update_word(field::OFF_FLAGS, (w & !FLAGS_MASK) | (v & FLAGS_MASK));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40000 -> 80, seq 0x12345678, SYN, window 1024, checksum 0x8685 (over 192.168.1.10 ->
    /// 192.168.1.20), 3 payload bytes.
    static SEGMENT: [u8; 23] = [
        0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0x04,
        0x00, 0x86, 0x85, 0x00, 0x00, 0xde, 0xad, 0xbe,
    ];
    static ADDRS: [u8; 8] = [192, 168, 1, 10, 192, 168, 1, 20];

    fn ok(s: &[u8]) -> bool {
        let p = checksum::pseudo_header(&ADDRS, super::super::ip_proto::TCP, s.len());
        checksum::verify(p, s)
    }

    #[test]
    fn deconstruct() {
        assert!(ok(&SEGMENT));
        let p = Packet::new_checked(&SEGMENT[..]).unwrap();
        assert!(p.check_lengths());
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!(p.ports(), 40000 << 16 | 80);
        assert_eq!((p.seq_number(), p.ack_number()), (0x1234_5678, 0));
        assert_eq!((p.header_len(), p.flags(), p.window()), (20, 0x002, 1024));
        assert_eq!(p.checksum(), 0x8685);
        assert_eq!(
            Packet::new_checked(&SEGMENT[..19]),
            Err(super::super::Error::Truncated)
        );
    }

    #[test]
    fn data_offset() {
        for (off, good) in [(0x40u8, false), (0x50, true), (0x60, false)] {
            let mut b = SEGMENT;
            b[12] = off;
            let p = Packet::new_checked(&b[..20]).unwrap();
            assert_eq!(p.check_lengths(), good, "{off:x}");
        }
    }

    #[test]
    fn update() {
        let mut b = SEGMENT;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.update_src_port(1);
        p.update_dst_port(8080);
        p.update_flags(0xf012); // data offset kept
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.flags(), 0x012);
        assert!(ok(&b));
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.update_src_port(40000);
        p.update_dst_port(80);
        p.update_flags(0x002);
        assert_eq!(b, SEGMENT);
        // The checksum of a segment cut after the checksum field is still adjusted.
        let mut cut = [0u8; 18];
        cut.copy_from_slice(&SEGMENT[..18]);
        Packet::new_unchecked(&mut cut[..]).adjust_checksum(&[0, 0], &[0, 1]);
        assert_eq!(&cut[16..18], &[0x86, 0x84]);
        let mut short = [0u8; 17];
        Packet::new_unchecked(&mut short[..]).adjust_checksum(&[0, 0], &[0, 1]);
        assert_eq!(short, [0; 17]);
    }
}
