//! IPv6 header (RFC 8200), its generic extension header (hop-by-hop, routing, destination
//! options; AH, RFC 4302, with its own length unit) and the fragment header.
//!
//! Contract: see [`crate::wire`]. [`Packet::new_checked`] needs the [`HEADER_LEN`]-byte
//! header; [`Packet::check_lengths`] adds the version and the payload length against the
//! buffer. [`ExtHeader`] and [`FragHeader`] need [`EXT_MIN_LEN`] bytes. How a chain of
//! extension headers is walked (how many, what a short one means) is the caller's contract.

use super::ip_proto;
use super::rw::{self, Field};

mod field {
    use super::Field;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
    /// Both addresses.
    pub const ADDRS: Field = 8..40;

    // Extension headers.
    pub const EXT_NXT_HDR: usize = 0;
    pub const EXT_LEN: usize = 1;
    pub const RT_SEGMENTS_LEFT: usize = 3;
    pub const FRAG_OFF_M: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
    pub const EXT_END: usize = 8;
}

/// Bytes of the header.
pub const HEADER_LEN: usize = field::DST.end;
/// Smallest extension header (and the size of a fragment header).
pub const EXT_MIN_LEN: usize = field::EXT_END;

const TC_SHIFT: u32 = 20;
const FLOW_MASK: u32 = 0x000f_ffff;

/// A view of an IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(Packet, HEADER_LEN);

impl<T: AsRef<[u8]>> Packet<T> {
    /// True when the header is usable: version 6 and the buffer holds the payload length
    /// (bytes past it are padding).
    #[inline(always)]
    pub fn check_lengths(&self) -> bool {
        self.version() == 6
            && self.buffer.as_ref().len() >= HEADER_LEN + self.payload_len() as usize
    }

    #[inline(always)]
    fn vtf(&self) -> u32 {
        rw::get_u32(self.header(), field::VER_TC_FLOW)
    }

    /// Version (6).
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.header()[field::VER_TC_FLOW.start] >> 4
    }

    /// Traffic class.
    #[inline(always)]
    pub fn traffic_class(&self) -> u8 {
        (self.vtf() >> TC_SHIFT) as u8
    }

    /// Flow label (20 bits).
    #[inline(always)]
    pub fn flow_label(&self) -> u32 {
        self.vtf() & FLOW_MASK
    }

    /// Payload length (extension headers included).
    #[inline(always)]
    pub fn payload_len(&self) -> u16 {
        rw::get_u16(self.header(), field::LENGTH)
    }

    /// Next header.
    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        self.header()[field::NXT_HDR]
    }

    /// Hop limit.
    #[inline(always)]
    pub fn hop_limit(&self) -> u8 {
        self.header()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline(always)]
    pub fn src_addr(&self) -> u128 {
        rw::get_u128(self.header(), field::SRC)
    }

    /// Destination address.
    #[inline(always)]
    pub fn dst_addr(&self) -> u128 {
        rw::get_u128(self.header(), field::DST)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Source and destination address bytes, as the upper-layer pseudo header sums them
    /// (empty on an unchecked view over a short buffer).
    #[inline(always)]
    pub fn pseudo_addrs(&self) -> &'a [u8] {
        let d: &'a [u8] = self.buffer.as_ref();
        d.get(field::ADDRS).unwrap_or_default()
    }

    /// The payload by the payload length (empty when it does not fit the buffer).
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        let end = HEADER_LEN + self.payload_len() as usize;
        let d: &'a [u8] = self.buffer.as_ref();
        d.get(HEADER_LEN..end).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline(always)]
    fn set_vtf(&mut self, v: u32) {
        if let Some(h) = self.header_mut() {
            rw::put_u32(h, field::VER_TC_FLOW, v);
        }
    }

    /// Sets the traffic class.
    #[inline(always)]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let v = (self.vtf() & !(0xff << TC_SHIFT)) | (tc as u32) << TC_SHIFT;
        self.set_vtf(v);
    }

    /// Sets the flow label (low 20 bits of `label`).
    #[inline(always)]
    pub fn set_flow_label(&mut self, label: u32) {
        let v = (self.vtf() & !FLOW_MASK) | (label & FLOW_MASK);
        self.set_vtf(v);
    }

    /// Sets the payload length.
    #[inline(always)]
    pub fn set_payload_len(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::LENGTH, v);
        }
    }

    /// Sets the next header.
    #[inline(always)]
    pub fn set_next_header(&mut self, v: u8) {
        if let Some(h) = self.header_mut() {
            h[field::NXT_HDR] = v;
        }
    }

    /// Sets the hop limit.
    #[inline(always)]
    pub fn set_hop_limit(&mut self, v: u8) {
        if let Some(h) = self.header_mut() {
            h[field::HOP_LIMIT] = v;
        }
    }

    /// Sets the source address.
    #[inline(always)]
    pub fn set_src_addr(&mut self, a: u128) {
        if let Some(h) = self.header_mut() {
            rw::put_u128(h, field::SRC, a);
        }
    }

    /// Sets the destination address.
    #[inline(always)]
    pub fn set_dst_addr(&mut self, a: u128) {
        if let Some(h) = self.header_mut() {
            rw::put_u128(h, field::DST, a);
        }
    }
}

/// A view of an extension header with the generic layout (next header, length, data):
/// hop-by-hop options, routing, destination options, and AH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(ExtHeader, EXT_MIN_LEN);

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Next header.
    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        self.header()[field::EXT_NXT_HDR]
    }

    /// The raw length field.
    #[inline(always)]
    pub fn len_field(&self) -> u8 {
        self.header()[field::EXT_LEN]
    }

    /// Header length in bytes, for the header announced as `kind`: AH counts 4-byte units
    /// minus 2 (RFC 4302), the others 8-byte units minus 1 (RFC 8200).
    #[inline(always)]
    pub fn header_len(&self, kind: u8) -> usize {
        let n = self.len_field() as usize;
        if kind == ip_proto::AH {
            (n + 2) * 4
        } else {
            (n + 1) * 8
        }
    }

    /// Segments left (a routing header's fourth byte).
    #[inline(always)]
    pub fn segments_left(&self) -> u8 {
        self.header()[field::RT_SEGMENTS_LEFT]
    }
}

/// A view of a fragment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragHeader<T: AsRef<[u8]>> {
    buffer: T,
}

super::view!(FragHeader, EXT_MIN_LEN);

impl<T: AsRef<[u8]>> FragHeader<T> {
    /// Next header.
    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        self.header()[field::EXT_NXT_HDR]
    }

    /// Fragment offset in 8-byte units.
    #[inline(always)]
    pub fn frag_offset(&self) -> u16 {
        rw::get_u16(self.header(), field::FRAG_OFF_M) >> 3
    }

    /// The M (more fragments) flag.
    #[inline(always)]
    pub fn more_frags(&self) -> bool {
        rw::get_u16(self.header(), field::FRAG_OFF_M) & 1 != 0
    }

    /// Identification.
    #[inline(always)]
    pub fn ident(&self) -> u32 {
        rw::get_u32(self.header(), field::FRAG_IDENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Traffic class 0xa5, flow label 0x12345, payload length 8, UDP, hop limit 255,
    /// fe80::1 -> fe80::2, 8 payload bytes, 2 bytes of padding.
    static PACKET: [u8; 50] = [
        0x6a, 0x51, 0x23, 0x45, 0x00, 0x08, 0x11, 0xff, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 1, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x02, 0x22, 0x02, 0x23,
        0x00, 0x08, 0, 0, 0xee, 0xee,
    ];
    /// Hop-by-hop (next: routing), 8 bytes; routing, segments left 1, 16 bytes; fragment
    /// (offset 1, M, ident 7); AH with length 1 (12 bytes).
    static HBH: [u8; 8] = [43, 0, 1, 4, 0, 0, 0, 0];
    static RT: [u8; 16] = [44, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    static FRAG: [u8; 8] = [51, 0, 0x00, 0x09, 0, 0, 0, 7];
    static AH: [u8; 12] = [17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert!(p.check_lengths());
        assert_eq!(p.version(), 6);
        assert_eq!((p.traffic_class(), p.flow_label()), (0xa5, 0x12345));
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (8, 17, 255)
        );
        assert_eq!(p.src_addr(), 0xfe80 << 112 | 1);
        assert_eq!(p.dst_addr(), 0xfe80 << 112 | 2);
        assert_eq!(p.pseudo_addrs(), &PACKET[8..40]);
        assert_eq!(p.payload(), &PACKET[40..48]);
        assert_eq!(
            Packet::new_checked(&PACKET[..39]),
            Err(super::super::Error::Truncated)
        );
        assert!(!Packet::new_checked(&PACKET[..47]).unwrap().check_lengths());
        let mut v4 = PACKET;
        v4[0] = 0x4a;
        assert!(!Packet::new_checked(&v4[..]).unwrap().check_lengths());
    }

    #[test]
    fn construct() {
        let mut b = [0u8; 50];
        b[0] = 0x60;
        b[40..].copy_from_slice(&PACKET[40..]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_traffic_class(0xa5);
        p.set_flow_label(0xf1_2345); // bits above 20 ignored
        p.set_payload_len(8);
        p.set_next_header(17);
        p.set_hop_limit(255);
        p.set_src_addr(0xfe80 << 112 | 1);
        p.set_dst_addr(0xfe80 << 112 | 2);
        assert_eq!(b, PACKET);
    }

    #[test]
    fn extension_headers() {
        let h = ExtHeader::new_checked(&HBH[..]).unwrap();
        assert_eq!((h.next_header(), h.header_len(ip_proto::HOPOPTS)), (43, 8));
        let r = ExtHeader::new_checked(&RT[..]).unwrap();
        assert_eq!((r.next_header(), r.header_len(ip_proto::ROUTING)), (44, 16));
        assert_eq!(r.segments_left(), 1);
        let f = FragHeader::new_checked(&FRAG[..]).unwrap();
        assert_eq!(
            (f.next_header(), f.frag_offset(), f.more_frags()),
            (51, 1, true)
        );
        assert_eq!(f.ident(), 7);
        let a = ExtHeader::new_checked(&AH[..]).unwrap();
        assert_eq!((a.next_header(), a.header_len(ip_proto::AH)), (17, 12));
        assert!(ExtHeader::new_checked(&HBH[..7]).is_err());
        assert!(FragHeader::new_checked(&FRAG[..7]).is_err());
    }
}
