//! Byte-level reading and writing shared by both codecs: [`Reader`], a bounds-checked big-endian
//! cursor over untrusted bytes, and the append helpers that emit fields, zero padding and
//! back-patched lengths into a `Vec<u8>`.
//!
//! Contract: every `Reader` read either succeeds or returns [`OfError::Truncated`] naming what
//! was being read (never a panic); [`Reader::zero_pad`] refuses non-zero padding with
//! [`OfError::NonZeroPadding`]. The writers only append (or patch bytes they wrote earlier) and
//! never panic: a length that does not fit its u16 field is saturated, not wrapped.

use super::OfError;

/// A bounds-checked big-endian reader over a message. Every read either succeeds or returns
/// [`OfError::Truncated`] naming `what`.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `b`.
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, pos: 0 }
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// The unread bytes, without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }
    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], OfError> {
        let s = self
            .b
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or(OfError::Truncated {
                what,
                need: n,
                have: self.remaining(),
            })?;
        self.pos += n;
        Ok(s)
    }
    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], OfError> {
        let s = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, OfError> {
        Ok(self.array::<1>(what)?[0])
    }
    /// Big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, OfError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    /// Big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, OfError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    /// Big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, OfError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    /// Skips `n` bytes (padding).
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), OfError> {
        self.bytes(n, what).map(|_| ())
    }
    /// Skips `n` padding bytes, which must be zero (every known sender zeroes padding; that
    /// is what lets `emit` reproduce a parsed message without storing it).
    pub fn zero_pad(&mut self, n: usize, what: &'static str) -> Result<(), OfError> {
        if self.bytes(n, what)?.iter().any(|&x| x != 0) {
            return Err(OfError::NonZeroPadding { what });
        }
        Ok(())
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.pos..];
        self.pos = self.b.len();
        s
    }
}

/// Appends one byte.
pub(crate) fn p8(o: &mut Vec<u8>, v: u8) {
    o.push(v);
}
/// Appends a big-endian u16.
pub(crate) fn p16(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
/// Appends a big-endian u32.
pub(crate) fn p32(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}
/// Appends a big-endian u64.
pub(crate) fn p64(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_be_bytes());
}
/// Appends `n` zero bytes.
pub(crate) fn pad(o: &mut Vec<u8>, n: usize) {
    o.resize(o.len() + n, 0);
}
/// Appends `b` cut or zero-padded to exactly `n` bytes (fixed-size string fields).
pub(crate) fn fixed(o: &mut Vec<u8>, b: &[u8], n: usize) {
    o.extend_from_slice(&b[..b.len().min(n)]);
    pad(o, n.saturating_sub(b.len()));
}
/// Bytes of padding that bring `len` up to a multiple of `align` (`align` > 0).
pub(crate) fn pad_to(len: usize, align: usize) -> usize {
    (align - len % align) % align
}
/// Bytes of padding that bring `len` up to a multiple of 8.
pub(crate) fn pad8(len: usize) -> usize {
    pad_to(len, 8)
}
/// Writes `len` as a big-endian u16 at `at` (saturated if it does not fit; nothing is written
/// if `at` is out of range, which callers rule out by construction).
pub(crate) fn put_len16(o: &mut [u8], at: usize, len: usize) {
    let v = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(s) = o.get_mut(at..at + 2) {
        s.copy_from_slice(&v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_and_padding() {
        let mut o = Vec::new();
        p8(&mut o, 1);
        p16(&mut o, 0x0203);
        p32(&mut o, 0x0405_0607);
        p64(&mut o, 0x0809_0a0b_0c0d_0e0f);
        assert_eq!(o, (1..=15).collect::<Vec<u8>>());
        assert_eq!((pad8(0), pad8(1), pad8(8), pad8(12)), (0, 7, 0, 4));
        assert_eq!((pad_to(3, 4), pad_to(4, 4)), (1, 0));
        let mut o = vec![0; 4];
        put_len16(&mut o, 1, 0x1234);
        assert_eq!(o, [0, 0x12, 0x34, 0]);
        put_len16(&mut o, 0, 70_000);
        assert_eq!(o[..2], [0xff, 0xff]);
        put_len16(&mut o, 3, 1); // out of range: ignored, no panic
        let mut o = Vec::new();
        fixed(&mut o, b"abc", 5);
        fixed(&mut o, b"abcdef", 2);
        assert_eq!(o, b"abc\0\0ab");
    }

    #[test]
    fn zero_pad_is_typed() {
        let mut r = Reader::new(&[0, 0, 1]);
        r.zero_pad(2, "p").unwrap();
        assert_eq!(
            r.clone().zero_pad(1, "q"),
            Err(OfError::NonZeroPadding { what: "q" })
        );
        assert_eq!(r.peek_rest(), [1]);
        assert!(matches!(
            r.zero_pad(2, "r"),
            Err(OfError::Truncated {
                what: "r",
                need: 2,
                have: 1
            })
        ));
    }
}
