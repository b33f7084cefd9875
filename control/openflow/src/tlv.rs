//! Lists of length-prefixed items, the shape OpenFlow uses for actions, instructions, group
//! buckets, hello elements, table-feature properties, the 1.3 match and multipart stats records.
//! A [`TlvFormat`] names one such shape (where the u16 length sits, the smallest valid length,
//! the alignment rule); [`Reader::tlv`] and [`TlvReader`] read items of it, [`TlvWriter`]
//! writes them and back-patches each length.
//!
//! Contract, reading: an item is accepted only if its length field is present, at least
//! `min_len`, obeys the format's [`Align`] rule and fits in the bytes left; otherwise the error
//! is [`OfError::Truncated`] (length field missing, or the item or its padding runs past the
//! end) or [`OfError::BadLength`] (too small, or not a multiple of the required alignment), with
//! `what` set to the format's name. Padding after an item ([`Align::Padded`]) must be zero
//! ([`OfError::NonZeroPadding`]). Nothing panics on any input. [`TlvReader`] stops after the
//! first error.
//!
//! Contract, writing: [`TlvWriter`] writes the header, lets the caller write the body, then
//! patches the length to what was written (header and body; padding of [`Align::Padded`]
//! formats follows uncounted, as zeros). Lengths over `u16::MAX` saturate.

use super::wire::{p16, pad, pad_to, put_len16};
use super::{OfError, Reader};

/// Where an item's u16 length field sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `type: u16, length: u16, body` (actions, instructions, hello elements, properties,
    /// the 1.3 match).
    TypeLen,
    /// `length: u16, body` (group buckets, flow / group / table-feature stats records).
    Len,
}

impl Layout {
    /// Byte offset of the length field inside an item.
    pub const fn len_at(self) -> usize {
        match self {
            Layout::TypeLen => 2,
            Layout::Len => 0,
        }
    }
}

/// How an item's length relates to alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Any length (1.3 actions and instructions: an odd one is the codec's business, it keeps
    /// such an item raw).
    Any,
    /// The length itself must be a multiple of this (1.0 actions: 8).
    Multiple(usize),
    /// The length does not count the zero padding that follows the item up to a multiple of
    /// `to` (the 1.3 match, hello elements, table-feature properties: 8).
    Padded {
        /// Alignment, in bytes.
        to: usize,
        /// What the padding is called in errors.
        what: &'static str,
    },
}

/// One shape of length-prefixed item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvFormat {
    /// What the items are called in errors.
    pub what: &'static str,
    /// Where the length sits.
    pub layout: Layout,
    /// The smallest valid length (at least the header: type and length, or the length and the
    /// record's fixed fields).
    pub min_len: usize,
    /// The alignment rule.
    pub align: Align,
}

/// One item read from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The item's type for [`Layout::TypeLen`]; 0 for [`Layout::Len`] records, which have none.
    pub type_: u16,
    /// The whole item as its length counts it: header and body, no alignment padding.
    pub bytes: &'a [u8],
    /// The bytes after the length field.
    pub body: &'a [u8],
}

impl TlvFormat {
    /// A format of [`Layout::TypeLen`] items.
    pub const fn type_len(what: &'static str, min_len: usize, align: Align) -> TlvFormat {
        TlvFormat {
            what,
            layout: Layout::TypeLen,
            min_len,
            align,
        }
    }

    /// A format of [`Layout::Len`] records.
    pub const fn len_first(what: &'static str, min_len: usize) -> TlvFormat {
        TlvFormat {
            what,
            layout: Layout::Len,
            min_len,
            align: Align::Any,
        }
    }

    /// The items filling `b`, in order.
    pub fn items(self, b: &[u8]) -> TlvReader<'_> {
        TlvReader {
            r: Reader::new(b),
            f: self,
            failed: false,
        }
    }

    /// Parses every item filling `b` with `each`; the first error ends it.
    pub fn parse_list<'a, T>(
        self,
        b: &'a [u8],
        mut each: impl FnMut(Tlv<'a>) -> Result<T, OfError>,
    ) -> Result<Vec<T>, OfError> {
        self.items(b).map(|i| i.and_then(&mut each)).collect()
    }

    /// Like [`TlvFormat::parse_list`], but every item's length is checked before the first
    /// item is parsed (so a framing error anywhere in the list wins over a bad item early in
    /// it; multipart bodies are framed this way).
    pub fn parse_framed<'a, T>(
        self,
        b: &'a [u8],
        each: impl FnMut(Tlv<'a>) -> Result<T, OfError>,
    ) -> Result<Vec<T>, OfError> {
        let items: Vec<Tlv<'a>> = self.items(b).collect::<Result<_, _>>()?;
        items.into_iter().map(each).collect()
    }

    fn padding(&self, len: usize) -> usize {
        match self.align {
            Align::Padded { to, .. } if to > 0 => pad_to(len, to),
            _ => 0,
        }
    }
}

impl<'a> Reader<'a> {
    /// Reads one item of format `f` at the current position, and the padding after it (see
    /// the [module contract](super::tlv)).
    pub fn tlv(&mut self, f: &TlvFormat) -> Result<Tlv<'a>, OfError> {
        let rest = self.peek_rest();
        let at = f.layout.len_at();
        let have = rest.len();
        let l = rest.get(at..at + 2).ok_or(OfError::Truncated {
            what: f.what,
            need: f.min_len.max(at + 2),
            have,
        })?;
        let len = u16::from_be_bytes([l[0], l[1]]) as usize;
        let misaligned = matches!(f.align, Align::Multiple(n) if !len.is_multiple_of(n));
        if len < f.min_len || len < at + 2 || misaligned {
            return Err(OfError::BadLength {
                what: f.what,
                length: len,
            });
        }
        let bytes = self.bytes(len, f.what).map_err(|_| OfError::Truncated {
            what: f.what,
            need: len,
            have,
        })?;
        if let Align::Padded { what, .. } = f.align {
            self.zero_pad(f.padding(len), what)?;
        }
        let type_ = match f.layout {
            Layout::TypeLen => u16::from_be_bytes([bytes[0], bytes[1]]),
            Layout::Len => 0,
        };
        Ok(Tlv {
            type_,
            bytes,
            body: &bytes[at + 2..],
        })
    }
}

/// The items of one format filling a byte slice: yields each item, or the first error and then
/// nothing.
#[derive(Clone, Debug)]
pub struct TlvReader<'a> {
    r: Reader<'a>,
    f: TlvFormat,
    failed: bool,
}

impl<'a> Iterator for TlvReader<'a> {
    type Item = Result<Tlv<'a>, OfError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.remaining() == 0 {
            return None;
        }
        let item = self.r.tlv(&self.f);
        self.failed = item.is_err();
        Some(item)
    }
}

/// Appends items of one format to a buffer, each length back-patched once its body is written.
#[derive(Debug)]
pub struct TlvWriter<'o> {
    out: &'o mut Vec<u8>,
    f: TlvFormat,
    start: usize,
}

impl<'o> TlvWriter<'o> {
    /// A writer appending items of format `f` to `out`.
    pub fn new(out: &'o mut Vec<u8>, f: TlvFormat) -> TlvWriter<'o> {
        let start = out.len();
        TlvWriter { out, f, start }
    }

    /// Appends one item: its type ([`Layout::TypeLen`] only; records have none and `type_` is
    /// not written), a length, whatever `body` appends, then the length patched and any
    /// [`Align::Padded`] padding.
    pub fn item(&mut self, type_: u16, body: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        let o = &mut *self.out;
        let start = o.len();
        if self.f.layout == Layout::TypeLen {
            p16(o, type_);
        }
        let at = o.len();
        p16(o, 0);
        body(o);
        let len = o.len() - start;
        put_len16(o, at, len);
        pad(o, self.f.padding(len));
        self
    }

    /// Appends one [`Layout::Len`] record (the same as [`TlvWriter::item`] without a type).
    pub fn record(&mut self, body: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.item(0, body)
    }

    /// Bytes this writer has appended (items and their padding).
    pub fn written(&self) -> usize {
        self.out.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACT: TlvFormat = TlvFormat::type_len("act", 4, Align::Any);
    const ACT8: TlvFormat = TlvFormat::type_len("act8", 8, Align::Multiple(8));
    const PROP: TlvFormat = TlvFormat::type_len(
        "prop",
        4,
        Align::Padded {
            to: 8,
            what: "prop padding",
        },
    );
    const REC: TlvFormat = TlvFormat::len_first("rec", 4);

    #[test]
    fn reads_type_len_items() {
        let b = [0, 7, 0, 6, 0xaa, 0xbb, 0, 9, 0, 4];
        let v: Vec<Tlv<'_>> = ACT.items(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].type_, v[0].bytes, v[0].body), (7, &b[..6], &b[4..6]));
        assert_eq!((v[1].type_, v[1].body), (9, &[][..]));
        assert_eq!(ACT.parse_list(&[], |t| Ok(t.type_)), Ok(vec![]));
    }

    #[test]
    fn length_errors_are_typed() {
        // Length field missing.
        assert_eq!(
            ACT.parse_list(&[0, 1, 0], |t| Ok(t.type_)),
            Err(OfError::Truncated {
                what: "act",
                need: 4,
                have: 3
            })
        );
        // Below the minimum; the header itself.
        assert_eq!(
            ACT.parse_list(&[0, 1, 0, 3], |t| Ok(t.type_)),
            Err(OfError::BadLength {
                what: "act",
                length: 3
            })
        );
        // Past the end.
        assert_eq!(
            ACT.parse_list(&[0, 1, 0, 9, 0, 0], |t| Ok(t.type_)),
            Err(OfError::Truncated {
                what: "act",
                need: 9,
                have: 6
            })
        );
        // Not a multiple of 8; then a good one.
        assert_eq!(
            ACT8.parse_list(&[0, 1, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0], |t| Ok(t.type_)),
            Err(OfError::BadLength {
                what: "act8",
                length: 12
            })
        );
        assert_eq!(
            ACT8.parse_list(&[0, 1, 0, 8, 0, 0, 0, 0], |t| Ok(t.type_)),
            Ok(vec![1])
        );
        // The iterator stops after the first error.
        let mut it = ACT.items(&[0, 1, 0, 2, 0, 1, 0, 4]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // An error from the callback ends the list too.
        let e = OfError::Unknown {
            what: "x",
            value: 1,
        };
        assert_eq!(
            ACT.parse_list(&[0, 1, 0, 4], |_| Err::<(), _>(e.clone())),
            Err(e)
        );
    }

    #[test]
    fn framed_lists_check_every_length_first() {
        // The first item's body is "bad" for the callback; the second item's length is wrong.
        let b = [0, 1, 0, 4, 0, 2, 0, 3];
        let each = |t: Tlv<'_>| {
            if t.type_ == 1 {
                Err(OfError::Unknown {
                    what: "item",
                    value: 1,
                })
            } else {
                Ok(t.type_)
            }
        };
        assert!(matches!(
            ACT.parse_list(&b, each),
            Err(OfError::Unknown { .. })
        ));
        assert_eq!(
            ACT.parse_framed(&b, each),
            Err(OfError::BadLength {
                what: "act",
                length: 3
            })
        );
        assert_eq!(ACT.parse_framed(&b[..4], |t| Ok(t.type_)), Ok(vec![1]));
    }

    #[test]
    fn padded_items() {
        // 6-byte property, 2 bytes of padding, then a 12-byte one with 4.
        let b = [
            0, 1, 0, 6, 5, 6, 0, 0, //
            0, 2, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0,
        ];
        let v = PROP
            .parse_list(&b, |t| Ok((t.type_, t.body.to_vec())))
            .unwrap();
        assert_eq!(v, [(1, vec![5, 6]), (2, vec![1, 2, 3, 4, 5, 6, 7, 8])]);
        let mut bad = b;
        bad[7] = 1;
        assert_eq!(
            PROP.parse_list(&bad, |t| Ok(t.type_)),
            Err(OfError::NonZeroPadding {
                what: "prop padding"
            })
        );
        assert!(matches!(
            PROP.parse_list(&b[..b.len() - 1], |t| Ok(t.type_)),
            Err(OfError::Truncated {
                what: "prop padding",
                ..
            })
        ));
        // One item read from a longer buffer leaves the reader after its padding.
        let mut r = Reader::new(&b);
        assert_eq!(r.tlv(&PROP).unwrap().type_, 1);
        assert_eq!(r.pos(), 8);
    }

    #[test]
    fn records_have_the_length_first() {
        let b = [0, 6, 1, 2, 3, 4, 0, 4, 9, 9];
        let v = REC.parse_list(&b, |t| Ok((t.type_, t.body))).unwrap();
        assert_eq!(v, [(0, &[1, 2, 3, 4][..]), (0, &[9, 9][..])]);
        assert!(matches!(
            REC.parse_list(&[0], |t| Ok(t.type_)),
            Err(OfError::Truncated { need: 4, .. })
        ));
        assert!(matches!(
            REC.parse_list(&[0, 2, 0, 0], |t| Ok(t.type_)),
            Err(OfError::BadLength { length: 2, .. })
        ));
    }

    #[test]
    fn a_format_below_its_own_header_does_not_panic() {
        let f = TlvFormat::type_len("tiny", 0, Align::Multiple(0));
        assert!(matches!(
            f.parse_list(&[0, 1, 0, 2], |t| Ok(t.type_)),
            Err(OfError::BadLength { length: 2, .. })
        ));
        let p = TlvFormat::type_len("p0", 4, Align::Padded { to: 0, what: "p" });
        assert_eq!(
            p.parse_list(&[0, 1, 0, 5, 7], |t| Ok(t.body[0])),
            Ok(vec![7])
        );
    }

    #[test]
    fn writer_back_patches_and_pads() {
        let mut o = vec![0xee];
        let mut w = TlvWriter::new(&mut o, PROP);
        w.item(1, |o| o.extend_from_slice(&[5, 6]))
            .item(2, |o| o.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(w.written(), 24);
        assert_eq!(
            o,
            [
                0xee, 0, 1, 0, 6, 5, 6, 0, 0, //
                0, 2, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0,
            ]
        );
        // What the writer writes, the reader reads back.
        let v = PROP
            .parse_list(&o[1..], |t| Ok((t.type_, t.body.len())))
            .unwrap();
        assert_eq!(v, [(1, 2), (2, 8)]);

        let mut o = Vec::new();
        TlvWriter::new(&mut o, REC)
            .record(|o| o.push(9))
            .item(77, |o| o.push(8));
        assert_eq!(o, [0, 3, 9, 0, 3, 8]);

        let mut o = Vec::new();
        TlvWriter::new(&mut o, ACT).item(3, |o| o.resize(o.len() + 70_000, 0));
        assert_eq!(o[2..4], [0xff, 0xff]);
    }
}
