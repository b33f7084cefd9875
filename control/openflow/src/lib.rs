//! OpenFlow 1.0 and 1.3 on the wire: typed messages with `parse` / `emit` (byte-for-byte), for the
//! controller channel. [`v10`] and [`v13`] hold each version's messages; this crate holds what
//! they share: the header, the error type, a bounds-checked [`Reader`] (with the append helpers
//! beside it) and the length-prefixed item lists of [`tlv`]. No I/O and no `unsafe`: bytes in,
//! typed messages out, and back.
//!
//! Contract: untrusted bytes enter only through `parse` functions, which never panic; a message
//! that is too short, whose length field disagrees with the bytes, or whose version or type is
//! unknown is an [`OfError`] naming what is wrong (the channel answers it with the OpenFlow error
//! the spec names). Anything a switch need not understand (unknown actions, OXM fields,
//! properties) is kept as raw bytes so that `emit(parse(b)) == b`.

#![forbid(unsafe_code)]

pub mod tlv;
pub mod v10;
pub mod v13;
mod wire;

pub use tlv::{Align, Layout, Tlv, TlvFormat, TlvReader, TlvWriter};
pub use wire::Reader;

/// OpenFlow 1.0 wire version.
pub const OFP10: u8 = 0x01;
/// OpenFlow 1.3 wire version.
pub const OFP13: u8 = 0x04;
/// Size of the common header.
pub const HEADER_LEN: usize = 8;

/// The common OpenFlow header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Wire version.
    pub version: u8,
    /// Message type.
    pub type_: u8,
    /// Total message length, header included.
    pub length: u16,
    /// Transaction id.
    pub xid: u32,
}

impl Header {
    /// Reads a header (does not check that the whole message is present).
    pub fn parse(b: &[u8]) -> Result<Header, OfError> {
        let h = b.get(..HEADER_LEN).ok_or(OfError::Truncated {
            what: "header",
            need: HEADER_LEN,
            have: b.len(),
        })?;
        let length = u16::from_be_bytes([h[2], h[3]]);
        if (length as usize) < HEADER_LEN {
            return Err(OfError::BadLength {
                what: "header",
                length: length as usize,
            });
        }
        Ok(Header {
            version: h[0],
            type_: h[1],
            length,
            xid: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        })
    }

    /// Appends the header to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.push(self.type_);
        out.extend_from_slice(&self.length.to_be_bytes());
        out.extend_from_slice(&self.xid.to_be_bytes());
    }
}

/// Why bytes are not a valid message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfError {
    /// {what} is truncated: need {need} bytes, have {have}
    #[error("{what} is truncated: need {need} bytes, have {have}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes there.
        have: usize,
    },
    /// {what} has a bad length {length}
    #[error("{what} has a bad length {length}")]
    BadLength {
        /// What was being read.
        what: &'static str,
        /// The length found.
        length: usize,
    },
    /// unsupported OpenFlow version {0:#04x}
    #[error("unsupported OpenFlow version {0:#04x}")]
    BadVersion(u8),
    /// unknown message type {0}
    #[error("unknown message type {0}")]
    BadType(u8),
    /// unknown {what} {value}
    #[error("unknown {what} {value}")]
    Unknown {
        /// The kind of thing (multipart type, instruction, ...).
        what: &'static str,
        /// The value found.
        value: u32,
    },
    /// {what} is not zero; senders must zero padding
    #[error("{what} is not zero; senders must zero padding")]
    NonZeroPadding {
        /// The padding.
        what: &'static str,
    },
}

/// Standard base64 with padding (RFC 4648), as Ryu prints byte strings in its JSON.
pub fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Bytes as `aa:bb:cc:dd:ee:ff`.
pub fn mac_str(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The bytes of `b` up to the first NUL, as (lossy) UTF-8 (fixed-size name fields).
pub fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A message of either version.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// OpenFlow 1.0.
    V10(v10::Message),
    /// OpenFlow 1.3.
    V13(v13::Message),
}

/// Parses one message from the front of `b`; returns it and its length. `b` may hold more
/// (a stream); it must hold at least the whole first message.
pub fn parse(b: &[u8]) -> Result<(Message, usize), OfError> {
    let h = Header::parse(b)?;
    let len = h.length as usize;
    let msg = b.get(..len).ok_or(OfError::Truncated {
        what: "message",
        need: len,
        have: b.len(),
    })?;
    match h.version {
        OFP10 => Ok((Message::V10(v10::Message::parse(msg)?), len)),
        OFP13 => Ok((Message::V13(v13::Message::parse(msg)?), len)),
        v => Err(OfError::BadVersion(v)),
    }
}

/// Emits a message of either version.
pub fn emit(m: &Message) -> Vec<u8> {
    match m {
        Message::V10(m) => m.emit(),
        Message::V13(m) => m.emit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_reader() {
        let h = Header::parse(&[4, 0, 0, 16, 0, 0, 0, 7]).unwrap();
        assert_eq!((h.version, h.type_, h.length, h.xid), (4, 0, 16, 7));
        let mut out = Vec::new();
        h.emit(&mut out);
        assert_eq!(out, [4, 0, 0, 16, 0, 0, 0, 7]);
        assert!(matches!(
            Header::parse(&[4, 0, 0]),
            Err(OfError::Truncated { .. })
        ));
        assert!(matches!(
            Header::parse(&[4, 0, 0, 4, 0, 0, 0, 0]),
            Err(OfError::BadLength { .. })
        ));
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("x").unwrap(), 0x0102);
        assert!(r.u16("y").is_err());
        assert_eq!(r.u8("z").unwrap(), 3);
        assert!(matches!(
            parse(&[9, 0, 0, 8, 0, 0, 0, 0]),
            Err(OfError::BadVersion(9))
        ));
    }
}
