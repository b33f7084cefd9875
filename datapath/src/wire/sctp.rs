//! SCTP common header (RFC 9260) and its CRC32c checksum (RFC 3309).
//!
//! Contract: see [`crate::wire`]. [`Packet::new_checked`] needs [`HEADER_LEN`] bytes; the
//! checksum covers the whole buffer the view holds, so give it exactly the SCTP packet.

use super::rw::{self, Field};

mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const VERIFICATION_TAG: Field = 4..8;
    pub const CHECKSUM: Field = 8..12;
    pub const PORTS: Field = 0..4;
}

/// Bytes of the common header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of an SCTP packet.
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

    /// Verification tag.
    #[inline(always)]
    pub fn verification_tag(&self) -> u32 {
        rw::get_u32(self.header(), field::VERIFICATION_TAG)
    }

    /// The checksum as sent (CRC32c, little-endian on the wire).
    #[inline(always)]
    pub fn checksum(&self) -> u32 {
        rw::get_u32(self.header(), field::CHECKSUM).swap_bytes()
    }

    /// The CRC32c of the packet with its checksum field taken as zero.
    pub fn compute_checksum(&self) -> u32 {
        let d = self.buffer.as_ref();
        let mut crc = crc32c_update(!0, d.get(..field::CHECKSUM.start).unwrap_or_default());
        crc = crc32c_update(crc, &[0; 4]);
        !crc32c_update(crc, d.get(HEADER_LEN..).unwrap_or_default())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port (the checksum is not touched).
    #[inline(always)]
    pub fn set_src_port(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::SRC_PORT, v);
        }
    }

    /// Sets the destination port (the checksum is not touched).
    #[inline(always)]
    pub fn set_dst_port(&mut self, v: u16) {
        if let Some(h) = self.header_mut() {
            rw::put_u16(h, field::DST_PORT, v);
        }
    }

    /// Recomputes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        let crc = self.compute_checksum();
        if let Some(h) = self.header_mut() {
            rw::put(h, field::CHECKSUM, crc.to_le_bytes());
        }
    }
}

/// CRC32c (Castagnoli, reflected polynomial 0x82f63b78), one table row per byte value.
const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32C: [u32; 256] = crc32c_table();

#[inline]
fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32C[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC32c of `data` (initial value and final xor 0xffffffff), as SCTP and iSCSI use it.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SCTP INIT 0 -> 0 as Scapy's regression suite builds it (checksum 40 2c 0b 5f).
    static PACKET: [u8; 40] = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x2c, 0x0b, 0x5f, 0x01, 0x00, 0x00,
        0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x05, 0x00, 0x08, 0x7f, 0x00, 0x00, 0x01,
    ];

    #[test]
    fn crc32c_known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 B.4: 32 bytes of zeros / of ones.
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 32]), 0x62a8_ab43);
    }

    #[test]
    fn deconstruct_and_checksum() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.ports()), (0, 0, 0));
        assert_eq!(p.verification_tag(), 0);
        assert_eq!(p.checksum(), 0x5f0b_2c40);
        assert_eq!(p.compute_checksum(), p.checksum());
        assert_eq!(
            Packet::new_checked(&PACKET[..11]),
            Err(super::super::Error::Truncated)
        );
    }

    #[test]
    fn set_ports_and_fill() {
        let mut b = PACKET;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_port(5000);
        p.set_dst_port(6000);
        p.fill_checksum();
        assert_eq!((p.src_port(), p.dst_port()), (5000, 6000));
        assert_eq!(p.compute_checksum(), p.checksum());
        assert_ne!(&b[8..12], &PACKET[8..12]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_port(0);
        p.set_dst_port(0);
        p.fill_checksum();
        assert_eq!(b, PACKET);
    }
}
