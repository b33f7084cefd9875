//! The OpenFlow 1.3 match (`ofp_match` of type OXM): a type/length item whose body is a list of
//! OXM TLVs, zero-padded to 8 bytes after its length.
//!
//! Contract: [`Match::parse`] reads one match from the reader (fields and padding). A type other
//! than OXM (1) is [`OfError::Unknown`] with `what` "match type" (the channel answers it with
//! OFPBMC_BAD_TYPE); a bad length is [`OfError::BadLength`] / [`OfError::Truncated`]; non-zero
//! padding is [`OfError::NonZeroPadding`].

use super::super::tlv::{Align, TlvFormat, TlvWriter};
use super::super::{OfError, Reader};
use super::Oxm;
use serde_json::{json, Value};

/// `OFPMT_OXM`, the only match type OpenFlow 1.3 defines for use.
const OFPMT_OXM: u16 = 1;

/// The match: type, length (header and fields), fields, padding to 8.
pub(crate) const MATCH: TlvFormat = TlvFormat::type_len(
    "match",
    4,
    Align::Padded {
        to: 8,
        what: "match padding",
    },
);

/// An `ofp_match` of type OXM (1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Match {
    /// The OXM TLVs, in wire order.
    pub fields: Vec<Oxm>,
}

impl Match {
    /// Reads one match (and its padding) from `r`.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Match, OfError> {
        // The type is checked before the length, so that another match type (1.0's standard
        // match) is reported as such, not as a bad length.
        let mut head = r.clone();
        let t = head.u16("match type")?;
        head.u16("match length")?;
        if t != OFPMT_OXM {
            return Err(OfError::Unknown {
                what: "match type",
                value: t as u32,
            });
        }
        let m = r.tlv(&MATCH)?;
        let mut rr = Reader::new(m.body);
        let mut fields = Vec::new();
        while rr.remaining() > 0 {
            fields.push(Oxm::parse(&mut rr)?);
        }
        Ok(Match { fields })
    }

    /// Appends the match and its padding.
    pub(crate) fn emit(&self, o: &mut Vec<u8>) {
        TlvWriter::new(o, MATCH).item(OFPMT_OXM, |o| {
            for f in &self.fields {
                f.emit(o);
            }
        });
    }

    /// The match's length field (header and fields, without padding).
    fn wire_len(&self) -> usize {
        let mut v = Vec::new();
        self.emit(&mut v);
        u16::from_be_bytes([v[2], v[3]]) as usize
    }

    /// Ryu's `{"OFPMatch": {"length", "oxm_fields", "type"}}`.
    pub fn to_ryu_json(&self) -> Value {
        let f: Vec<Value> = self.fields.iter().map(Oxm::to_ryu_json).collect();
        json!({"OFPMatch": {"length": self.wire_len(), "oxm_fields": f, "type": 1}})
    }
}
