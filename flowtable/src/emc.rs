//! Exact-match cache (EMC): a packet's exact key -> megaflow handle, the first cache level of a
//! worker (Open vSwitch's EMC).
//!
//! Contract:
//! - A fixed, power-of-two array of entries allocated once by [`Emc::new`] ([`EMC_ENTRIES`] by
//!   default, about 2 MiB). Each packet hash has two candidate positions (low hash bits, and
//!   the hash rotated by 16); [`Emc::insert`] refreshes the entry already holding the flow, else
//!   takes an empty (or caller-declared invalid) position, else replaces the older of the two.
//! - Entries compare like [`PacketKey::same_flow`] (same `map`, same `hash`, same words under
//!   the map), word-parallel: see `Entry::same`. The entry stores `key`, `map`, `hash` and the handle side by side (not a
//!   whole `PacketKey`, whose alignment padding would push the handle onto another cache line).
//! - Why not hashbrown (which the issue text asked for): a hot-path cache must replace in O(1)
//!   with no rehash, no tombstones, no growth and no allocation; a fixed set-associative array
//!   does exactly that, and losing an entry only costs a megaflow lookup.
//! - The returned [`FlowRef`] may be stale (its megaflow removed or replaced in its slot); the
//!   caller validates it with [`crate::megaflow::MegaflowCache::get`].
//! - Lookup and insert never allocate and never panic.

use crate::key::{FlowKey, PacketKey, KEY_WORDS};
use crate::megaflow::FlowRef;

/// Default number of entries per worker.
pub const EMC_ENTRIES: usize = 8192;

/// Largest number of entries [`Emc::new`] accepts (larger requests are clamped).
pub const MAX_EMC_ENTRIES: usize = 1 << 20;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Entry {
    key: FlowKey,
    map: u32,
    hash: u32,
    flow: FlowRef,
    /// Insert clock value when written (age for replacement).
    stamp: u32,
    live: bool,
}

const EMPTY: Entry = Entry {
    key: FlowKey::ZERO,
    map: 0,
    hash: 0,
    flow: FlowRef { slot: 0, gen: 0 },
    stamp: 0,
    live: false,
};

impl Entry {
    /// `PacketKey::same_flow` against the stored fields: same map and hash, then whole words
    /// (the first cache line always, the rest only when the map reaches past it). Unmapped
    /// words are zero by `PacketKey`'s contract, so this is `same_flow`'s relation; a key that
    /// breaks the contract can only miss, never hit another flow.
    #[inline(always)]
    fn same(&self, pk: &PacketKey) -> bool {
        if self.map != pk.map || self.hash != pk.hash || !self.live {
            return false;
        }
        let (a, b) = (&self.key.w, &pk.key.w);
        let mut diff = 0u64;
        for i in 0..LINE_WORDS {
            diff |= a[i] ^ b[i];
        }
        if pk.map >> LINE_WORDS != 0 {
            for i in LINE_WORDS..KEY_WORDS {
                diff |= a[i] ^ b[i];
            }
        }
        diff == 0
    }
}

/// Key words in the first cache line of an entry.
const LINE_WORDS: usize = 8;

/// The exact-match cache; see the module docs.
pub struct Emc {
    entries: Box<[Entry]>,
    /// `entries.len() - 1`.
    mask: usize,
    len: usize,
    clock: u32,
}

impl Default for Emc {
    fn default() -> Self {
        Self::new(EMC_ENTRIES)
    }
}

impl core::fmt::Debug for Emc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Emc")
            .field("entries", &self.entries.len())
            .field("len", &self.len)
            .finish()
    }
}

impl Emc {
    /// A cache of `entries` entries, rounded up to a power of two and clamped to
    /// `2..=MAX_EMC_ENTRIES`.
    pub fn new(entries: usize) -> Emc {
        let n = entries.clamp(2, MAX_EMC_ENTRIES).next_power_of_two();
        Emc {
            entries: vec![EMPTY; n].into_boxed_slice(),
            mask: n - 1,
            len: 0,
            clock: 0,
        }
    }

    /// Number of positions.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Number of occupied positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Prefetches both candidate positions of `hash` (a batch stage ahead of [`Emc::lookup`]).
    #[inline(always)]
    pub fn prefetch(&self, hash: u32) {
        for i in self.positions(hash) {
            if let Some(e) = self.entries.get(i) {
                crate::key::prefetch(e);
            }
        }
    }

    #[inline(always)]
    fn positions(&self, hash: u32) -> [usize; 2] {
        [
            hash as usize & self.mask,
            hash.rotate_right(16) as usize & self.mask,
        ]
    }

    /// The cached handle for this exact flow, if any (possibly stale: validate it).
    #[inline(always)]
    pub fn lookup(&self, pk: &PacketKey) -> Option<FlowRef> {
        let [a, b] = self.positions(pk.hash);
        match self.entries.get(a) {
            Some(e) if e.same(pk) => Some(e.flow),
            _ => match self.entries.get(b) {
                Some(e) if e.same(pk) => Some(e.flow),
                _ => None,
            },
        }
    }

    /// Caches `pk -> flow`, treating every occupied position as valid. See
    /// [`Emc::insert_checked`].
    #[inline]
    pub fn insert(&mut self, pk: &PacketKey, flow: FlowRef) {
        self.insert_checked(pk, flow, |_| true);
    }

    /// Caches `pk -> flow`. An entry already holding this flow is refreshed; else an empty
    /// position, or one whose handle `valid` rejects (e.g. `|f| megaflows.get(f).is_some()`),
    /// is taken; else the older of the two positions is replaced.
    #[inline]
    pub fn insert_checked(
        &mut self,
        pk: &PacketKey,
        flow: FlowRef,
        valid: impl Fn(FlowRef) -> bool,
    ) {
        self.clock = self.clock.wrapping_add(1);
        let clock = self.clock;
        let pos = self.positions(pk.hash);
        let mut target = None;
        for i in pos {
            if self.entries.get(i).is_some_and(|e| e.same(pk)) {
                target = Some(i);
                break;
            }
        }
        if target.is_none() {
            for i in pos {
                if self
                    .entries
                    .get(i)
                    .is_some_and(|e| !e.live || !valid(e.flow))
                {
                    target = Some(i);
                    break;
                }
            }
        }
        let i = target.unwrap_or_else(|| {
            let age = |i: usize| {
                self.entries
                    .get(i)
                    .map_or(0, |e| clock.wrapping_sub(e.stamp))
            };
            if age(pos[1]) > age(pos[0]) {
                pos[1]
            } else {
                pos[0]
            }
        });
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        if !e.live {
            self.len += 1;
        }
        *e = Entry {
            key: pk.key,
            map: pk.map,
            hash: pk.hash,
            flow,
            stamp: clock,
            live: true,
        };
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.entries.fill(EMPTY);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Field;

    /// A packet key with a chosen hash (the EMC only requires equal flows to hash equally).
    fn pk(dst: u64, hash: u32) -> PacketKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, 1);
        k.set(Field::EthDst, dst as u128);
        PacketKey {
            key: k,
            map: k.nonzero_map(),
            hash,
        }
    }

    fn fr(slot: u32) -> FlowRef {
        FlowRef { slot, gen: 0 }
    }

    #[test]
    fn sizes() {
        assert_eq!(Emc::new(0).capacity(), 2);
        assert_eq!(Emc::new(100).capacity(), 128);
        assert_eq!(Emc::default().capacity(), EMC_ENTRIES);
        assert_eq!(Emc::new(usize::MAX).capacity(), MAX_EMC_ENTRIES);
        assert_eq!(core::mem::size_of::<Entry>(), 256);
    }

    #[test]
    fn hit_miss_refresh_clear() {
        let mut e = Emc::new(64);
        let a = PacketKey::from_key(pk(1, 0).key);
        assert_eq!(e.lookup(&a), None);
        e.insert(&a, fr(3));
        assert_eq!(e.lookup(&a), Some(fr(3)));
        assert_eq!(e.len(), 1);
        // Refresh: same flow, new handle, no new entry.
        e.insert(&a, fr(4));
        assert_eq!(e.lookup(&a), Some(fr(4)));
        assert_eq!(e.len(), 1);
        // Different words, map or hash: a miss.
        let b = PacketKey::from_key(pk(2, 0).key);
        assert_eq!(e.lookup(&b), None);
        let mut c = a;
        c.map |= 1 << 5;
        assert_eq!(e.lookup(&c), None);
        let mut d = a;
        d.hash ^= 1 << 20;
        assert_eq!(e.lookup(&d), None);
        e.clear();
        assert_eq!((e.len(), e.lookup(&a)), (0, None));
    }

    #[test]
    fn agrees_with_same_flow() {
        let mut e = Emc::new(64);
        let a = pk(7, 0x55);
        e.insert(&a, fr(1));
        for other in [pk(7, 0x55), pk(8, 0x55), pk(7, 0x56)] {
            assert_eq!(e.lookup(&other).is_some(), a.same_flow(&other), "{other:?}");
        }
        // Words past the first cache line (IPv6 addresses) are compared too.
        let v6 = |lo: u128| {
            let mut k = pk(7, 0).key;
            k.set(Field::EthType, 0x86dd);
            k.set(Field::Ipv6Dst, (0xfd00u128 << 112) | lo);
            PacketKey::from_key(k)
        };
        let (x, y) = (v6(1), v6(2));
        e.insert(&x, fr(2));
        let y_same_hash = PacketKey { hash: x.hash, ..y };
        assert!(!x.same_flow(&y_same_hash));
        assert_eq!(e.lookup(&x), Some(fr(2)));
        assert_eq!(e.lookup(&y_same_hash), None);
        assert_eq!(e.lookup(&y), None);
    }

    #[test]
    fn two_positions_then_oldest_replaced() {
        let mut e = Emc::new(16);
        let h = 0x0003_0005; // positions 5 and 3
        let (a, b, c, d) = (pk(1, h), pk(2, h), pk(3, h), pk(4, h));
        e.insert(&a, fr(1));
        e.insert(&b, fr(2));
        assert_eq!((e.lookup(&a), e.lookup(&b)), (Some(fr(1)), Some(fr(2))));
        assert_eq!(e.len(), 2);
        // Both positions full: the older (a) goes.
        e.insert(&c, fr(3));
        assert_eq!(e.lookup(&a), None);
        assert_eq!((e.lookup(&b), e.lookup(&c)), (Some(fr(2)), Some(fr(3))));
        assert_eq!(e.len(), 2);
        // Refreshing b makes c the older one...
        e.insert(&b, fr(2));
        // ...but a caller-declared invalid handle goes first regardless of age.
        e.insert_checked(&d, fr(4), |f| f != fr(2));
        assert_eq!(e.lookup(&b), None);
        assert_eq!((e.lookup(&c), e.lookup(&d)), (Some(fr(3)), Some(fr(4))));
        // Plain insert with c now oldest.
        e.insert(&a, fr(1));
        assert_eq!(e.lookup(&c), None);
        assert_eq!((e.lookup(&d), e.lookup(&a)), (Some(fr(4)), Some(fr(1))));
        // Other hashes are unaffected.
        assert_eq!(e.lookup(&pk(1, 0x0007_0007)), None);
    }
}
