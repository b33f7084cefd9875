//! Signature match cache (SMC): packet hash -> megaflow slab slot, the second cache level of
//! a worker (Open vSwitch's SMC idea).
//!
//! Contract:
//! - Keyed by a packet's full-key hash ([`crate::key::PacketKey::hash`]). Each entry is a 16-bit
//!   signature (hash bits 31..16) and a megaflow slot; [`SMC_WAYS`] entries per bucket, the
//!   bucket chosen by the low hash bits. A bucket holds at most one entry per signature, so a
//!   lookup yields at most one candidate slot.
//! - A candidate is only a hint: signatures collide and slots get reused. The caller verifies it
//!   with [`crate::megaflow::MegaflowCache::lookup_smc`] (entry present and its match selects the
//!   key); since megaflows never overlap in behaviour, any verified entry is a right answer.
//! - Fixed memory (8 bytes per entry, one 32-byte bucket per [`SMC_WAYS`] entries; the default
//!   1<<20 entries take 8 MiB), allocated once by [`Smc::new`]. Lookup and insert are O(1),
//!   never allocate, never panic. Replacement when a bucket is full is round-robin.
//! - Why it exists: with many masks the EMC thrashes and a tuple-space search probes about half
//!   the subtables per packet; an SMC hit costs one bucket read plus one match verification.

/// Entries per bucket.
pub const SMC_WAYS: usize = 4;

/// Default number of entries.
pub const DEFAULT_SMC_ENTRIES: usize = 1 << 20;

/// Largest number of entries [`Smc::new`] accepts (larger requests are clamped).
pub const MAX_SMC_ENTRIES: usize = 1 << 24;

/// Entry layout: bit 48 valid, bits 47..32 signature, bits 31..0 slot.
const VALID: u64 = 1 << 48;
const TAG_MASK: u64 = VALID | (0xffff << 32);

#[inline(always)]
fn tag(hash: u32) -> u64 {
    VALID | (((hash >> 16) as u64) << 32)
}

/// One bucket: [`SMC_WAYS`] packed entries (0 = empty), 32-byte aligned so it never straddles a
/// cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Bucket([u64; SMC_WAYS]);

/// The signature match cache; see the module docs.
pub struct Smc {
    buckets: Box<[Bucket]>,
    /// `buckets.len() - 1`.
    mask: usize,
    /// Round-robin victim way.
    victim: u32,
}

impl Default for Smc {
    fn default() -> Self {
        Self::new(DEFAULT_SMC_ENTRIES)
    }
}

impl core::fmt::Debug for Smc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Smc")
            .field("entries", &self.capacity())
            .finish()
    }
}

impl Smc {
    /// A cache of `entries` entries, rounded up to a power of two and clamped to
    /// `SMC_WAYS..=MAX_SMC_ENTRIES`.
    pub fn new(entries: usize) -> Smc {
        let entries = entries.clamp(SMC_WAYS, MAX_SMC_ENTRIES).next_power_of_two();
        let n = entries / SMC_WAYS;
        Smc {
            buckets: vec![Bucket::default(); n].into_boxed_slice(),
            mask: n - 1,
            victim: 0,
        }
    }

    /// Number of entries (ways times buckets).
    pub fn capacity(&self) -> usize {
        self.buckets.len() * SMC_WAYS
    }

    /// Prefetches the bucket of `hash` (a batch stage ahead of [`Smc::lookup`]).
    #[inline(always)]
    pub fn prefetch(&self, hash: u32) {
        if let Some(b) = self.buckets.get(hash as usize & self.mask) {
            crate::key::prefetch(b);
        }
    }

    /// The candidate megaflow slot for a packet hash, if its signature is cached.
    #[inline(always)]
    pub fn lookup(&self, hash: u32) -> Option<u32> {
        let b = self.buckets.get(hash as usize & self.mask)?;
        let want = tag(hash);
        for &e in &b.0 {
            if e & TAG_MASK == want {
                return Some(e as u32);
            }
        }
        None
    }

    /// Records that packets with this hash hit megaflow `slot`. Overwrites the entry with the
    /// same signature, else an empty way, else a round-robin victim.
    #[inline]
    pub fn insert(&mut self, hash: u32, slot: u32) {
        let Some(b) = self.buckets.get_mut(hash as usize & self.mask) else {
            return;
        };
        let t = tag(hash);
        let new = t | slot as u64;
        let mut empty = None;
        for (i, e) in b.0.iter_mut().enumerate() {
            if *e & TAG_MASK == t {
                *e = new;
                return;
            }
            if *e == 0 && empty.is_none() {
                empty = Some(i);
            }
        }
        let way = match empty {
            Some(i) => i,
            None => {
                self.victim = self.victim.wrapping_add(1);
                self.victim as usize % SMC_WAYS
            }
        };
        b.0[way] = new;
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
    }

    /// Number of occupied entries (O(capacity); diagnostics and tests).
    pub fn occupied(&self) -> usize {
        self.buckets
            .iter()
            .map(|b| b.0.iter().filter(|&&e| e != 0).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_and_clamp() {
        assert_eq!(Smc::new(0).capacity(), SMC_WAYS);
        assert_eq!(Smc::new(5).capacity(), 8);
        assert_eq!(Smc::new(1024).capacity(), 1024);
        assert_eq!(Smc::new(usize::MAX).capacity(), MAX_SMC_ENTRIES);
        assert_eq!(core::mem::size_of::<Bucket>(), 32);
    }

    #[test]
    fn insert_lookup_overwrite_clear() {
        let mut s = Smc::new(64);
        assert_eq!(s.lookup(0x1234_0005), None);
        s.insert(0x1234_0005, 7);
        assert_eq!(s.lookup(0x1234_0005), Some(7));
        // Same bucket (low bits), other signature: a miss.
        assert_eq!(s.lookup(0x4321_0005), None);
        // Same signature and bucket: overwritten, not duplicated.
        s.insert(0x1234_0005, 9);
        assert_eq!(s.lookup(0x1234_0005), Some(9));
        assert_eq!(s.occupied(), 1);
        // Slot 0 and slot u32::MAX are representable.
        s.insert(0x0000_0001, 0);
        s.insert(0xffff_0002, u32::MAX);
        assert_eq!(s.lookup(0x0000_0001), Some(0));
        assert_eq!(s.lookup(0xffff_0002), Some(u32::MAX));
        s.clear();
        assert_eq!(s.occupied(), 0);
        assert_eq!(s.lookup(0x1234_0005), None);
        assert_eq!(s.lookup(0x0000_0001), None);
    }

    #[test]
    fn full_bucket_replaces_one_way() {
        let mut s = Smc::new(64); // 16 buckets
        let hashes: Vec<u32> = (1..=SMC_WAYS as u32 + 1).map(|i| (i << 16) | 3).collect();
        for (i, &h) in hashes.iter().enumerate() {
            s.insert(h, i as u32);
        }
        assert_eq!(s.occupied(), SMC_WAYS);
        let present: Vec<u32> = hashes.iter().filter_map(|&h| s.lookup(h)).collect();
        assert_eq!(present.len(), SMC_WAYS);
        // The newest always survives its own insert; other buckets are untouched.
        assert_eq!(s.lookup(hashes[SMC_WAYS]), Some(SMC_WAYS as u32));
        assert_eq!(s.lookup((1 << 16) | 4), None);
    }
}
