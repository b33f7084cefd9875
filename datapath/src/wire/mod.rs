//! Checked, zero-copy header views shared by [`crate::extract`] and [`crate::exec`], in the
//! style of smoltcp's `wire` module.
//!
//! Contract:
//! - One file per header. Each has a view over a buffer that starts at that header:
//!   [`ethernet::Frame`], [`vlan::Tag`], [`arp::Packet`], [`ipv4::Packet`], [`ipv6::Packet`]
//!   (and [`ipv6::ExtHeader`], [`ipv6::FragHeader`]), [`udp::Packet`], [`tcp::Packet`],
//!   [`sctp::Packet`], [`icmp::Packet`] (ICMPv4 and ICMPv6) and [`vxlan::Packet`]. Field byte
//!   ranges live in each file's private `mod field`; nothing outside a file knows an offset.
//! - Getters need `T: AsRef<[u8]>`, setters `T: AsMut<[u8]>` as well. Values are host-order
//!   integers (IPv4 addresses `u32`, IPv6 addresses `u128`, MAC addresses `[u8; 6]` or the
//!   flow key's 48-bit integer form).
//! - Untrusted bytes enter through `new_checked`, which is `Err(`[`Error::Truncated`]`)` when
//!   the buffer is shorter than the header's fixed part (`HEADER_LEN` of that file). After it,
//!   no accessor panics. Accessors read the fixed part as one fixed-size chunk, so they cannot
//!   panic even on a view made with `new_unchecked` over a buffer that is too short: such a
//!   view reads zeros and its setters write nothing (a fallback for the caller's bug, never a
//!   behaviour to rely on). Variable parts (payloads, options) are returned with `get`, empty
//!   when the lengths disagree with the buffer.
//! - A view checks lengths only. Semantic checks (versions, header and total lengths, which
//!   fragment) are predicates on the view; what counts as malformed, and what happens then, is
//!   the caller's contract (extract and exec differ on purpose; see their docs).
//! - Numbers: [`ethertype`] and [`ip_proto`] hold the protocol numbers both callers use.
//! - [`checksum`]: the Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//! - No allocation, no `unsafe`.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod sctp;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

/// Why a buffer is not a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends inside the header's fixed part.
    #[error("buffer shorter than the header")]
    Truncated,
}

/// Ethertypes.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// Reverse ARP (same packet format as ARP).
    pub const RARP: u16 = 0x8035;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1Q VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (S-tag, QinQ).
    pub const QINQ: u16 = 0x88a8;
    /// Smallest real ethertype: below it the field is an IEEE 802.3 length.
    pub const MIN_TYPE: u16 = 0x0600;

    /// True for the two tag protocol identifiers, 802.1Q and 802.1ad.
    #[inline(always)]
    pub const fn is_vlan(t: u16) -> bool {
        t == VLAN || t == QINQ
    }
}

/// IP protocol numbers (IPv4 protocol, IPv6 next header).
pub mod ip_proto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPTS: u8 = 0;
    /// ICMP (IPv4).
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Big-endian reads and writes of header fields on fixed-size chunks. Every range a view
/// passes is a constant inside its chunk, so each index check folds away at compile time.
mod rw {
    /// A field's byte range within its header.
    pub type Field = core::ops::Range<usize>;

    #[inline(always)]
    pub fn get_u16<const N: usize>(h: &[u8; N], f: Field) -> u16 {
        u16::from_be_bytes([h[f.start], h[f.start + 1]])
    }

    #[inline(always)]
    pub fn get_u32<const N: usize>(h: &[u8; N], f: Field) -> u32 {
        let a = f.start;
        u32::from_be_bytes([h[a], h[a + 1], h[a + 2], h[a + 3]])
    }

    #[inline(always)]
    pub fn get_u64<const N: usize>(h: &[u8; N], f: Field) -> u64 {
        let a = f.start;
        u64::from_be_bytes([
            h[a],
            h[a + 1],
            h[a + 2],
            h[a + 3],
            h[a + 4],
            h[a + 5],
            h[a + 6],
            h[a + 7],
        ])
    }

    #[inline(always)]
    pub fn get_u128<const N: usize>(h: &[u8; N], f: Field) -> u128 {
        (get_u64(h, f.start..f.start + 8) as u128) << 64
            | get_u64(h, f.start + 8..f.start + 16) as u128
    }

    /// A 6-byte MAC address field.
    #[inline(always)]
    pub fn get_mac<const N: usize>(h: &[u8; N], f: Field) -> [u8; 6] {
        let a = f.start;
        [h[a], h[a + 1], h[a + 2], h[a + 3], h[a + 4], h[a + 5]]
    }

    /// A 6-byte MAC address field as a 48-bit integer, read as one 8-byte load when the two
    /// bytes after it are inside the chunk.
    #[inline(always)]
    pub fn get_mac_u64<const N: usize>(h: &[u8; N], f: Field) -> u64 {
        if f.start + 8 <= N {
            get_u64(h, f.start..f.start + 8) >> 16
        } else {
            let m = get_mac(h, f);
            u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
        }
    }

    #[inline(always)]
    pub fn put<const N: usize, const M: usize>(h: &mut [u8; N], f: Field, v: [u8; M]) {
        h[f.start..f.start + M].copy_from_slice(&v);
    }

    #[inline(always)]
    pub fn put_u16<const N: usize>(h: &mut [u8; N], f: Field, v: u16) {
        put(h, f, v.to_be_bytes());
    }

    #[inline(always)]
    pub fn put_u32<const N: usize>(h: &mut [u8; N], f: Field, v: u32) {
        put(h, f, v.to_be_bytes());
    }

    #[inline(always)]
    pub fn put_u128<const N: usize>(h: &mut [u8; N], f: Field, v: u128) {
        put(h, f, v.to_be_bytes());
    }
}

/// The parts every view shares: construction, the fixed-size chunk its accessors read, and
/// the rest of the buffer. `$hl` is the header's fixed length.
macro_rules! view {
    ($name:ident, $hl:expr) => {
        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps `buffer` without a length check (see the module docs of [`crate::wire`]:
            /// a short buffer reads as zeros, never a panic).
            #[inline(always)]
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wraps `buffer` after checking it holds the fixed header.
            #[inline(always)]
            pub fn new_checked(buffer: T) -> Result<Self, $crate::wire::Error> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// `Err(Truncated)` when the buffer is shorter than the fixed header.
            #[inline(always)]
            pub fn check_len(&self) -> Result<(), $crate::wire::Error> {
                if self.buffer.as_ref().len() < $hl {
                    Err($crate::wire::Error::Truncated)
                } else {
                    Ok(())
                }
            }

            /// The buffer back.
            #[inline(always)]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The fixed header (zeros on an unchecked view over a short buffer).
            #[inline(always)]
            fn header(&self) -> &[u8; $hl] {
                self.buffer.as_ref().first_chunk().unwrap_or(&[0; $hl])
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            /// The fixed header, writable (`None` only on an unchecked view over a short
            /// buffer).
            #[inline(always)]
            #[allow(dead_code)] // views without setters (IPv6 extension headers)
            fn header_mut(&mut self) -> Option<&mut [u8; $hl]> {
                self.buffer.as_mut().first_chunk_mut()
            }
        }
    };
}
pub(crate) use view;
