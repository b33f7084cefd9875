//! `Match`: a key and a mask. The key is always stored pre-masked (`key & mask == key`), so two
//! matches are equal exactly when they select the same set of packets.
//!
//! Prefix masks on addresses are built with [`Match::set_prefix`]; arbitrary bit masks with
//! [`Match::set_masked`]. A match carries the list of its mask's non-zero words, which is what the
//! tuple-space classifiers hash and compare.

use crate::key::{Field, FlowKey, KEY_WORDS};
use core::fmt;

/// A key/mask pair selecting a set of packets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Match {
    key: FlowKey,
    mask: FlowKey,
}

/// Error building a match from user input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// prefix length {len} is longer than the {bits}-bit field {field}
    #[error("prefix length {len} is longer than the {bits}-bit field {field}")]
    PrefixTooLong {
        /// The field.
        field: Field,
        /// Requested length.
        len: u32,
        /// Field width.
        bits: u32,
    },
}

impl Match {
    /// The match that selects every packet (table-miss rules use it).
    pub const CATCH_ALL: Match = Match {
        key: FlowKey::ZERO,
        mask: FlowKey::ZERO,
    };

    /// Builds a match from a key and a mask (the key is masked here).
    pub fn new(key: FlowKey, mask: FlowKey) -> Match {
        Match {
            key: key.and(&mask),
            mask,
        }
    }

    /// The (masked) key.
    #[inline(always)]
    pub fn key(&self) -> &FlowKey {
        &self.key
    }

    /// The mask.
    #[inline(always)]
    pub fn mask(&self) -> &FlowKey {
        &self.mask
    }

    /// Exact match on a field.
    pub fn set(&mut self, f: Field, v: u128) -> &mut Self {
        self.set_masked(f, v, f.full_mask())
    }

    /// Masked match on a field: bits set in `mask` must equal those of `v`. Bits already
    /// consulted by the match outside `mask` are released.
    pub fn set_masked(&mut self, f: Field, v: u128, mask: u128) -> &mut Self {
        let mask = mask & f.full_mask();
        self.mask.set(f, mask);
        self.key.set(f, v & mask);
        self
    }

    /// Prefix match (CIDR style) on an address field: the top `len` bits.
    pub fn set_prefix(&mut self, f: Field, v: u128, len: u32) -> Result<&mut Self, MatchError> {
        let bits = f.bits();
        if len > bits {
            return Err(MatchError::PrefixTooLong {
                field: f,
                len,
                bits,
            });
        }
        let mask = if len == 0 {
            0
        } else {
            (f.full_mask() >> (bits - len)) << (bits - len)
        };
        Ok(self.set_masked(f, v, mask))
    }

    /// Builder form of [`Match::set`].
    pub fn with(mut self, f: Field, v: u128) -> Match {
        self.set(f, v);
        self
    }

    /// Builder form of [`Match::set_masked`].
    pub fn with_masked(mut self, f: Field, v: u128, mask: u128) -> Match {
        self.set_masked(f, v, mask);
        self
    }

    /// The value (masked) and mask of one field.
    pub fn field(&self, f: Field) -> (u128, u128) {
        (self.key.get(f), self.mask.get(f))
    }

    /// True when `key` is selected by this match.
    #[inline]
    pub fn matches(&self, key: &FlowKey) -> bool {
        (0..KEY_WORDS).all(|i| key.w[i] & self.mask.w[i] == self.key.w[i])
    }

    /// Indices of the mask's non-zero words.
    pub fn mask_words(&self) -> Vec<u8> {
        mask_words(&self.mask)
    }

    /// True when this match selects a superset of what `other` selects (`other` is at least as
    /// specific and agrees on every bit this match consults).
    pub fn covers(&self, other: &Match) -> bool {
        self.mask.is_subset_of(&other.mask) && other.key.and(&self.mask) == self.key
    }

    /// True when some packet could match both.
    pub fn overlaps(&self, other: &Match) -> bool {
        let common = self.mask.and(&other.mask);
        self.key.and(&common) == other.key.and(&common)
    }
}

/// Indices of the non-zero words of a mask.
pub fn mask_words(mask: &FlowKey) -> Vec<u8> {
    (0..KEY_WORDS as u8)
        .filter(|&i| mask.w[i as usize] != 0)
        .collect()
}

impl fmt::Debug for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::key::Field as F;
        let mut first = true;
        for &fld in Field::ALL {
            // Print sub-fields only through their parents.
            if matches!(
                fld,
                F::VlanVid | F::VlanPresent | F::VlanPcp | F::IpDscp | F::IpEcn
            ) {
                continue;
            }
            let (v, m) = self.field(fld);
            if m == 0 {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if m == fld.full_mask() {
                write!(f, "{}={}", fld.name(), crate::fmt::FieldValue(fld, v))?;
            } else {
                write!(
                    f,
                    "{}={}/{}",
                    fld.name(),
                    crate::fmt::FieldValue(fld, v),
                    crate::fmt::FieldValue(fld, m)
                )?;
            }
        }
        if first {
            f.write_str("*")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masks() {
        let mut m = Match::default();
        m.set_prefix(Field::Ipv4Src, 0x0a01_0203, 16).unwrap();
        assert_eq!(m.field(Field::Ipv4Src), (0x0a01_0000, 0xffff_0000));
        let mut k = FlowKey::ZERO;
        k.set(Field::Ipv4Src, 0x0a01_ffff);
        assert!(m.matches(&k));
        k.set(Field::Ipv4Src, 0x0a02_0000);
        assert!(!m.matches(&k));
        assert!(m.set_prefix(Field::Ipv4Src, 0, 33).is_err());
        m.set_prefix(Field::Ipv6Dst, u128::MAX, 64).unwrap();
        assert_eq!(m.field(Field::Ipv6Dst).1, u128::MAX << 64);
        m.set_prefix(Field::Ipv4Dst, 5, 0).unwrap();
        assert_eq!(m.field(Field::Ipv4Dst), (0, 0));
    }

    #[test]
    fn covers_and_overlaps() {
        let wide = Match::default().with(Field::EthType, 0x0800);
        let narrow = wide.with(Field::IpProto, 17);
        assert!(wide.covers(&narrow));
        assert!(!narrow.covers(&wide));
        assert!(wide.overlaps(&narrow));
        let other = Match::default().with(Field::EthType, 0x86dd);
        assert!(!other.overlaps(&narrow));
        assert_eq!(format!("{}", Match::CATCH_ALL), "*");
        assert_eq!(format!("{narrow}"), "dl_type=0x0800,nw_proto=17");
    }
}
