//! The megaflow classifier: a per-worker tuple-space cache of masked keys -> datapath actions
//! (Open vSwitch's `dpcls`).
//!
//! Contract:
//! - Entries ("megaflows") are a [`Match`] plus [`DpAction`]s, named by a controller-assigned
//!   [`MegaflowId`]. There is at most one entry per id and at most one entry per match.
//!   Megaflows never overlap in behaviour (xlate guarantees that any megaflow matching a key
//!   gives the right actions for it), so [`MegaflowCache::lookup`] returns the first hit.
//! - One *subtable* per distinct mask: the mask, its non-zero word list and a hashbrown
//!   [`HashTable`] of slab slots keyed by [`FlowKey::hash_masked`]. Subtables are searched in
//!   rank order; [`MegaflowCache::rank`] sorts them by (exponentially decayed) hit counts.
//!   A subtable that becomes empty is removed at once.
//! - Entries live in a slab. A [`FlowRef`] (slot + generation) is a handle for the exact-match
//!   and signature caches ([`crate::emc`], [`crate::smc`]); every removal bumps the slot's
//!   generation, so [`MegaflowCache::get`] rejects a stale handle even after the slot is reused.
//!   While a handle is accepted its entry's match never changes (replacement in place keeps the
//!   match and only swaps id/actions/version), so a packet cached for that handle still matches.
//!   Callers must not change [`MegaflowEntry::m`] through [`MegaflowCache::get_mut`].
//! - Bounded: at most `capacity` entries; inserting into a full cache evicts one entry chosen as
//!   the least recently `used` of a few sampled slots (approximate LRU) and reports its id.
//! - Hot path: [`MegaflowCache::lookup`], [`MegaflowCache::lookup_smc`], `get`/`get_mut` never
//!   allocate and never panic. Inserts and removals may allocate; they run between bursts.
//! - `version` is stored, never interpreted (the worker compares it with the pipeline's).
//! - Generations are `u32` and wrap: a handle is misjudged only if its slot was reused 2^32
//!   times while the handle was kept, far beyond any cache entry's life.
//!
//! Layout (for cache misses, which dominate with 100k flows): per-slot metadata (generation,
//! hash, mask id) is a dense array beside the entries; an entry keeps its counters and actions
//! in its first cache line and the match after it. A handle check plus counter update touches
//! two lines; an SMC verification touches the metadata, the (hot) subtable mask and only the
//! lines of the entry key that its mask consults.

use crate::dpaction::DpAction;
use crate::flow_match::Match;
use crate::key::{FlowKey, PacketKey, KEY_WORDS};
use crate::smc::Smc;
use hashbrown::{HashMap, HashTable};

/// Controller-assigned name of a megaflow.
pub type MegaflowId = u64;

/// Default maximum number of megaflows per worker (as Open vSwitch's flow limit).
pub const DEFAULT_CAPACITY: usize = 200_000;

/// How many slots eviction samples to find an old entry.
const EVICT_SAMPLES: usize = 8;

/// No subtable (mask id is free).
const NO_POS: u32 = u32::MAX;

/// A handle on a cached megaflow: slab slot and the slot's generation when the handle was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowRef {
    /// Slab slot index.
    pub slot: u32,
    /// Generation of the slot; a mismatch means the entry was removed.
    pub gen: u32,
}

/// One cached megaflow. (`repr(C)`: counters and actions share the first cache line.)
#[derive(Clone, Debug)]
#[repr(C)]
pub struct MegaflowEntry {
    /// Controller-assigned id.
    pub id: MegaflowId,
    /// What to do with matching packets (empty: drop).
    pub actions: Box<[DpAction]>,
    /// Pipeline version the entry was translated at (stored, not interpreted).
    pub version: u64,
    /// Packets counted by the worker.
    pub packets: u64,
    /// Bytes counted by the worker.
    pub bytes: u64,
    /// Last use, in the caller's ticks (eviction picks small values).
    pub used: u64,
    /// The match (never change it in place: handles rely on it).
    pub m: Match,
}

/// Outcome of [`MegaflowCache::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// A new entry was created; `evicted` names the entry removed to make room, if any.
    Inserted {
        /// Handle on the new entry.
        flow: FlowRef,
        /// Id of the entry evicted because the cache was full.
        evicted: Option<MegaflowId>,
    },
    /// An entry with the same match existed; its id/actions/version were replaced in place.
    Replaced {
        /// Handle on the entry (still valid for older handles of it).
        flow: FlowRef,
        /// The id the entry had before (equal to the new id when re-inserted under it).
        old_id: MegaflowId,
    },
}

impl Insert {
    /// The handle on the inserted or replaced entry.
    pub fn flow(&self) -> FlowRef {
        match *self {
            Insert::Inserted { flow, .. } | Insert::Replaced { flow, .. } => flow,
        }
    }
}

/// Per-slot metadata, kept apart from the entries (dense: four per cache line).
#[derive(Clone, Copy, Debug)]
struct Meta {
    /// Bumped whenever the slot's entry is removed.
    gen: u32,
    /// Masked-key hash of the entry in its subtable.
    hash: u32,
    /// Stable id of the entry's mask (index into `mask_pos`).
    mask_id: u32,
}

/// All entries sharing one mask.
#[derive(Debug)]
struct Subtable {
    mask: FlowKey,
    /// Non-zero words of `mask` (first `nwords` are valid).
    words: [u8; KEY_WORDS],
    nwords: u8,
    mask_id: u32,
    /// Hits since the last rank, plus half of the previous count.
    hits: u64,
    /// (slot, masked-key hash) pairs.
    table: HashTable<(u32, u32)>,
}

impl Subtable {
    fn new(mask: FlowKey, mask_id: u32) -> Subtable {
        let mut words = [0u8; KEY_WORDS];
        let mut nwords = 0u8;
        for (i, &w) in mask.w.iter().enumerate() {
            if w != 0 {
                words[nwords as usize] = i as u8;
                nwords += 1;
            }
        }
        Subtable {
            mask,
            words,
            nwords,
            mask_id,
            hits: 0,
            table: HashTable::new(),
        }
    }

    #[inline(always)]
    fn words(&self) -> &[u8] {
        &self.words[..self.nwords as usize]
    }
}

/// hashbrown takes its control tag from the top 7 bits of a `u64` hash and the bucket from the
/// low bits: spread our 32-bit hash over both.
#[inline(always)]
fn wide(h: u32) -> u64 {
    ((h as u64) << 32) | h as u64
}

/// The per-worker megaflow classifier; see the module docs.
#[derive(Debug)]
pub struct MegaflowCache {
    /// In rank order (most hit first).
    subtables: Vec<Subtable>,
    /// Mask -> stable mask id.
    by_mask: HashMap<FlowKey, u32>,
    /// Mask id -> position in `subtables` (`NO_POS` when free).
    mask_pos: Vec<u32>,
    mask_free: Vec<u32>,
    /// Id -> slot.
    by_id: HashMap<MegaflowId, u32>,
    /// The slab: entries and their metadata, same indices.
    entries: Vec<Option<MegaflowEntry>>,
    meta: Vec<Meta>,
    free: Vec<u32>,
    len: usize,
    capacity: usize,
    /// xorshift state for eviction sampling.
    rng: u64,
}

impl Default for MegaflowCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MegaflowCache {
    /// An empty cache holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        MegaflowCache {
            subtables: Vec::new(),
            by_mask: HashMap::new(),
            mask_pos: Vec::new(),
            mask_free: Vec::new(),
            by_id: HashMap::new(),
            entries: Vec::new(),
            meta: Vec::new(),
            free: Vec::new(),
            len: 0,
            capacity: capacity.max(1),
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of subtables (distinct masks).
    pub fn subtable_count(&self) -> usize {
        self.subtables.len()
    }

    /// Caches a megaflow. If the same match is cached, its id/actions/version are replaced in
    /// place (`Replaced`; counters are kept when the id is unchanged, reset otherwise). If the
    /// id is cached with another match, that entry is removed first. If the cache is full, one
    /// entry is evicted (approximate LRU by `used`) and its id reported.
    pub fn insert(
        &mut self,
        id: MegaflowId,
        m: Match,
        actions: Box<[DpAction]>,
        version: u64,
        now: u64,
    ) -> Insert {
        if let Some(&slot) = self.by_id.get(&id) {
            let same = matches!(&self.entries[slot as usize], Some(e) if e.m == m);
            if !same {
                self.remove(id);
            }
        }
        if let Some(slot) = self.find_match(&m) {
            let flow = FlowRef {
                slot,
                gen: self.meta[slot as usize].gen,
            };
            // find_match only returns occupied slots.
            if let Some(e) = self.entries[slot as usize].as_mut() {
                let old_id = e.id;
                if old_id != id {
                    e.packets = 0;
                    e.bytes = 0;
                    self.by_id.remove(&old_id);
                    self.by_id.insert(id, slot);
                }
                e.id = id;
                e.actions = actions;
                e.version = version;
                e.used = now;
                return Insert::Replaced { flow, old_id };
            }
        }
        let evicted = if self.len >= self.capacity {
            self.evict_one()
        } else {
            None
        };
        let flow = self.insert_new(MegaflowEntry {
            id,
            actions,
            version,
            packets: 0,
            bytes: 0,
            used: now,
            m,
        });
        Insert::Inserted { flow, evicted }
    }

    fn insert_new(&mut self, entry: MegaflowEntry) -> FlowRef {
        let mask_id = match self.by_mask.get(entry.m.mask()) {
            Some(&id) => id,
            None => {
                let id = match self.mask_free.pop() {
                    Some(id) => id,
                    None => {
                        self.mask_pos.push(NO_POS);
                        (self.mask_pos.len() - 1) as u32
                    }
                };
                self.mask_pos[id as usize] = self.subtables.len() as u32;
                self.subtables.push(Subtable::new(*entry.m.mask(), id));
                self.by_mask.insert(*entry.m.mask(), id);
                id
            }
        };
        let sub = &mut self.subtables[self.mask_pos[mask_id as usize] as usize];
        let hash = entry.m.key().hash_masked(&sub.mask, sub.words());
        let id = entry.id;
        let slot = match self.free.pop() {
            Some(s) => {
                let md = &mut self.meta[s as usize];
                md.hash = hash;
                md.mask_id = mask_id;
                self.entries[s as usize] = Some(entry);
                s
            }
            None => {
                self.meta.push(Meta {
                    gen: 0,
                    hash,
                    mask_id,
                });
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
        };
        sub.table
            .insert_unique(wide(hash), (slot, hash), |&(_, h)| wide(h));
        self.by_id.insert(id, slot);
        self.len += 1;
        FlowRef {
            slot,
            gen: self.meta[slot as usize].gen,
        }
    }

    /// The subtable holding `mask`, if any.
    fn subtable_of(&self, mask_id: u32) -> Option<&Subtable> {
        let pos = *self.mask_pos.get(mask_id as usize)?;
        self.subtables.get(pos as usize)
    }

    /// The slot holding exactly `m`, if any.
    fn find_match(&self, m: &Match) -> Option<u32> {
        let sub = self.subtable_of(*self.by_mask.get(m.mask())?)?;
        let hash = m.key().hash_masked(&sub.mask, sub.words());
        let entries = &self.entries;
        sub.table
            .find(
                wide(hash),
                |&(s, _)| matches!(&entries[s as usize], Some(e) if e.m.key() == m.key()),
            )
            .map(|&(s, _)| s)
    }

    /// Evicts the least recently used of a few sampled entries; returns its id.
    fn evict_one(&mut self) -> Option<MegaflowId> {
        let n = self.entries.len();
        if n == 0 {
            return None;
        }
        let mut best: Option<(u64, MegaflowId)> = None;
        for _ in 0..EVICT_SAMPLES {
            let mut x = self.rng;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.rng = x;
            if let Some(e) = &self.entries[(x % n as u64) as usize] {
                if best.is_none_or(|(u, _)| e.used < u) {
                    best = Some((e.used, e.id));
                }
            }
        }
        let victim = match best {
            Some((_, id)) => id,
            None => self.entries.iter().find_map(|e| e.as_ref())?.id,
        };
        self.remove(victim);
        Some(victim)
    }

    /// Tuple-space search: the first entry (in subtable rank order) whose match selects `key`.
    /// Counts a hit on the subtable that answered. Never allocates.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey) -> Option<FlowRef> {
        let entries = &self.entries;
        for sub in self.subtables.iter_mut() {
            let words = &sub.words[..sub.nwords as usize];
            let mask = &sub.mask;
            let h = key.hash_masked(mask, words);
            let hit = sub.table.find(wide(h), |&(s, sh)| {
                sh == h
                    && match entries.get(s as usize) {
                        Some(Some(e)) => key.matches_masked(e.m.key(), mask, words),
                        _ => false,
                    }
            });
            if let Some(&(slot, _)) = hit {
                sub.hits += 1;
                let gen = self.meta.get(slot as usize).map_or(0, |m| m.gen);
                return Some(FlowRef { slot, gen });
            }
        }
        None
    }

    /// Verifies a signature-match-cache candidate for `pk`: the SMC's slot for `pk.hash`, if it
    /// holds an entry whose match selects `pk.key`. Never allocates.
    #[inline]
    pub fn lookup_smc(&self, smc: &Smc, pk: &PacketKey) -> Option<FlowRef> {
        self.verify_slot(smc.lookup(pk.hash)?, pk)
    }

    /// The SMC's verification step alone: a handle on `slot` when it holds an entry whose
    /// match selects `pk.key`. (The worker looks candidates up for a whole batch, prefetches
    /// them with [`MegaflowCache::prefetch_slot`], then verifies.)
    #[inline(always)]
    pub fn verify_slot(&self, slot: u32, pk: &PacketKey) -> Option<FlowRef> {
        let md = self.meta.get(slot as usize)?;
        let e = self.entries.get(slot as usize)?.as_ref()?;
        let sub = self.subtable_of(md.mask_id)?;
        if pk.key.matches_masked(e.m.key(), &sub.mask, sub.words()) {
            Some(FlowRef { slot, gen: md.gen })
        } else {
            None
        }
    }

    /// Prefetches the action list of the entry a handle names.
    #[inline(always)]
    pub fn prefetch_actions(&self, r: FlowRef) {
        if let Some(Some(e)) = self.entries.get(r.slot as usize) {
            if let Some(a) = e.actions.first() {
                crate::key::prefetch(a);
            }
        }
    }

    /// Prefetches what verifying or running slot `slot` touches: its metadata, the entry's
    /// counters and actions pointer, and the first words of its match.
    #[inline(always)]
    pub fn prefetch_slot(&self, slot: u32) {
        if let Some(md) = self.meta.get(slot as usize) {
            crate::key::prefetch(md);
        }
        if let Some(Some(e)) = self.entries.get(slot as usize) {
            crate::key::prefetch(e);
            crate::key::prefetch(e.m.key());
        }
    }

    /// The entry a handle names, or `None` when it was removed (even if the slot was reused).
    #[inline(always)]
    pub fn get(&self, r: FlowRef) -> Option<&MegaflowEntry> {
        if self.meta.get(r.slot as usize)?.gen != r.gen {
            return None;
        }
        self.entries.get(r.slot as usize)?.as_ref()
    }

    /// Mutable form of [`MegaflowCache::get`] (for counters; never change `m`).
    #[inline(always)]
    pub fn get_mut(&mut self, r: FlowRef) -> Option<&mut MegaflowEntry> {
        if self.meta.get(r.slot as usize)?.gen != r.gen {
            return None;
        }
        self.entries.get_mut(r.slot as usize)?.as_mut()
    }

    /// Handle on the entry with this id.
    pub fn find(&self, id: MegaflowId) -> Option<FlowRef> {
        let &slot = self.by_id.get(&id)?;
        Some(FlowRef {
            slot,
            gen: self.meta[slot as usize].gen,
        })
    }

    /// Removes the entry with this id; its handles become stale. Removes its subtable if that
    /// becomes empty.
    pub fn remove(&mut self, id: MegaflowId) -> Option<MegaflowEntry> {
        let slot = self.by_id.remove(&id)?;
        let entry = self.entries[slot as usize].take()?;
        let md = &mut self.meta[slot as usize];
        md.gen = md.gen.wrapping_add(1);
        let (hash, mask_id) = (md.hash, md.mask_id);
        self.free.push(slot);
        self.len -= 1;
        let pos = self.mask_pos[mask_id as usize] as usize;
        if let Some(sub) = self.subtables.get_mut(pos) {
            if let Ok(o) = sub.table.find_entry(wide(hash), |&(s, _)| s == slot) {
                o.remove();
            }
            if sub.table.is_empty() {
                self.subtables.remove(pos);
                self.by_mask.remove(entry.m.mask());
                self.mask_pos[mask_id as usize] = NO_POS;
                self.mask_free.push(mask_id);
                for (i, sub) in self.subtables.iter().enumerate().skip(pos) {
                    self.mask_pos[sub.mask_id as usize] = i as u32;
                }
            }
        }
        Some(entry)
    }

    /// Changes the version (and the actions, when given) of the entry with this id, keeping
    /// its handles valid. False when the id is not cached.
    pub fn update(
        &mut self,
        id: MegaflowId,
        actions: Option<Box<[DpAction]>>,
        version: u64,
    ) -> bool {
        let Some(&slot) = self.by_id.get(&id) else {
            return false;
        };
        let Some(e) = self.entries[slot as usize].as_mut() else {
            return false;
        };
        if let Some(a) = actions {
            e.actions = a;
        }
        e.version = version;
        true
    }

    /// Sorts subtables by hits (most first, stable for ties), then halves every count so the
    /// order follows recent traffic.
    pub fn rank(&mut self) {
        self.subtables.sort_by_key(|s| core::cmp::Reverse(s.hits));
        for (i, sub) in self.subtables.iter_mut().enumerate() {
            sub.hits /= 2;
            self.mask_pos[sub.mask_id as usize] = i as u32;
        }
    }

    /// Every cached entry (slab order).
    pub fn iter(&self) -> impl Iterator<Item = &MegaflowEntry> {
        self.entries.iter().filter_map(|e| e.as_ref())
    }

    /// Removes every entry; all handles become stale (slots keep their generations).
    pub fn clear(&mut self) {
        self.subtables.clear();
        self.by_mask.clear();
        self.mask_pos.clear();
        self.mask_free.clear();
        self.by_id.clear();
        self.free.clear();
        for i in (0..self.entries.len()).rev() {
            if self.entries[i].take().is_some() {
                self.meta[i].gen = self.meta[i].gen.wrapping_add(1);
            }
            self.free.push(i as u32);
        }
        self.len = 0;
    }

    /// Subtable masks in rank order (diagnostics and tests).
    pub fn subtable_masks(&self) -> impl Iterator<Item = &FlowKey> {
        self.subtables.iter().map(|s| &s.mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emc::Emc;
    use crate::key::Field;

    fn out(p: u32) -> Box<[DpAction]> {
        vec![DpAction::Output(p)].into_boxed_slice()
    }

    /// Exact in_port + IPv4 destination prefix of `len` bits.
    fn m_dst(port: u32, dst: u32, len: u32) -> Match {
        let mut m = Match::default().with(Field::InPort, port as u128);
        m.set_prefix(Field::Ipv4Dst, dst as u128, len).unwrap();
        m
    }

    fn key(port: u32, dst: u32, src: u32) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, port as u128);
        k.set(Field::EthType, 0x0800);
        k.set(Field::Ipv4Dst, dst as u128);
        k.set(Field::Ipv4Src, src as u128);
        k
    }

    #[test]
    fn insert_lookup_get_find_iter() {
        let mut c = MegaflowCache::new(16);
        assert!(c.is_empty());
        assert_eq!(c.capacity(), 16);
        let r = match c.insert(1, m_dst(1, 0x0a00_0000, 8), out(2), 5, 100) {
            Insert::Inserted {
                flow,
                evicted: None,
            } => flow,
            other => panic!("{other:?}"),
        };
        let r2 = c
            .insert(2, m_dst(1, 0x0a01_0200, 24), out(3), 5, 100)
            .flow();
        assert_eq!(c.len(), 2);
        assert_eq!(c.subtable_count(), 2);
        assert_eq!(c.lookup(&key(1, 0x0a09_0000, 7)), Some(r));
        assert_eq!(c.lookup(&key(1, 0x0b00_0000, 7)), None);
        assert_eq!(c.lookup(&key(2, 0x0a09_0000, 7)), None);
        // 10.1.2.5 matches both (they overlap as matches; either is acceptable).
        let hit = c.lookup(&key(1, 0x0a01_0205, 0)).unwrap();
        assert!(hit == r || hit == r2);
        let e = c.get(r).unwrap();
        assert_eq!((e.id, e.version, e.used, e.packets), (1, 5, 100, 0));
        assert_eq!(&*e.actions, &[DpAction::Output(2)]);
        assert_eq!(c.find(2), Some(r2));
        assert_eq!(c.find(3), None);
        let mut ids: Vec<_> = c.iter().map(|e| e.id).collect();
        ids.sort();
        assert_eq!(ids, [1, 2]);
        c.get_mut(r).unwrap().packets += 3;
        assert_eq!(c.get(r).unwrap().packets, 3);
        assert!(c.get(FlowRef { slot: 99, gen: 0 }).is_none());
    }

    #[test]
    fn catch_all_match_hits_everything() {
        let mut c = MegaflowCache::new(4);
        let r = c.insert(9, Match::CATCH_ALL, Box::new([]), 0, 0).flow();
        assert_eq!(c.lookup(&FlowKey::ZERO), Some(r));
        assert_eq!(c.lookup(&key(3, 4, 5)), Some(r));
    }

    #[test]
    fn same_match_replaces_in_place() {
        let mut c = MegaflowCache::new(16);
        let m = m_dst(1, 0x0a00_0000, 8);
        let r = c.insert(1, m, out(2), 1, 10).flow();
        c.get_mut(r).unwrap().packets = 7;
        // Same id, same match: replaced, counters kept, handle unchanged.
        assert_eq!(
            c.insert(1, m, out(4), 2, 20),
            Insert::Replaced { flow: r, old_id: 1 }
        );
        let e = c.get(r).unwrap();
        assert_eq!((e.id, e.version, e.used, e.packets), (1, 2, 20, 7));
        assert_eq!(&*e.actions, &[DpAction::Output(4)]);
        // Other id, same match: replaced, id index moves, counters reset.
        assert_eq!(
            c.insert(5, m, out(6), 3, 30),
            Insert::Replaced { flow: r, old_id: 1 }
        );
        assert_eq!(c.find(1), None);
        assert_eq!(c.find(5), Some(r));
        assert_eq!(c.get(r).unwrap().packets, 0);
        assert_eq!(c.len(), 1);
        assert!(c.remove(1).is_none());
        assert_eq!(c.remove(5).unwrap().version, 3);
        assert!(c.is_empty());
    }

    #[test]
    fn same_id_with_other_match_removes_the_old_entry() {
        let mut c = MegaflowCache::new(16);
        let r1 = c.insert(1, m_dst(1, 0x0a00_0000, 8), out(2), 1, 0).flow();
        let ins = c.insert(1, m_dst(1, 0x0b00_0000, 16), out(3), 1, 0);
        assert!(matches!(ins, Insert::Inserted { evicted: None, .. }));
        let r2 = ins.flow();
        assert_eq!(c.len(), 1);
        assert_ne!(r1, r2, "reused slot must carry a new generation");
        assert_eq!(c.get(r1).map(|e| e.id), None);
        assert_eq!(c.lookup(&key(1, 0x0a00_0001, 0)), None);
        assert_eq!(c.lookup(&key(1, 0x0b00_0001, 0)), Some(r2));
        assert_eq!(c.subtable_count(), 1, "the /8 subtable went away");
        assert_eq!(c.find(1), Some(r2));
    }

    #[test]
    fn eviction_at_capacity_reports_the_id() {
        let mut c = MegaflowCache::new(3);
        let refs: Vec<FlowRef> = (0..3)
            .map(|i| c.insert(i, m_dst(1, i as u32, 32), out(1), 0, i).flow())
            .collect();
        let Insert::Inserted {
            flow,
            evicted: Some(gone),
        } = c.insert(10, m_dst(1, 10, 32), out(1), 0, 50)
        else {
            panic!("no eviction at capacity");
        };
        assert!(gone < 3);
        assert_eq!(c.len(), 3);
        assert_eq!(c.find(gone), None);
        assert!(c.get(refs[gone as usize]).is_none());
        assert_eq!(c.lookup(&key(1, gone as u32, 0)), None);
        assert_eq!(c.lookup(&key(1, 10, 0)), Some(flow));
        // Replacing needs no room: nothing evicted.
        assert!(matches!(
            c.insert(10, m_dst(1, 10, 32), out(2), 1, 60),
            Insert::Replaced { old_id: 10, .. }
        ));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn eviction_prefers_old_entries() {
        let n = 100u64;
        let mut c = MegaflowCache::new(n as usize);
        for i in 0..n {
            c.insert(i, m_dst(1, i as u32, 32), out(1), 0, i);
        }
        let mut evicted = Vec::new();
        for j in 0..50u64 {
            match c.insert(1000 + j, m_dst(2, j as u32, 32), out(1), 0, 1000 + j) {
                Insert::Inserted {
                    evicted: Some(id), ..
                } => evicted.push(id),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(c.len(), n as usize);
        // A uniform pick would average ~50 (and pick new entries too); sampling 8 and taking
        // the least recently used keeps to the oldest.
        assert!(evicted.iter().all(|&id| id < n), "{evicted:?}");
        let mean = evicted.iter().sum::<u64>() as f64 / evicted.len() as f64;
        assert!(mean < 35.0, "mean evicted age rank {mean}");
    }

    #[test]
    fn stale_emc_and_smc_handles_after_remove_and_reuse() {
        let mut c = MegaflowCache::new(8);
        let mut emc = Emc::new(64);
        let mut smc = Smc::new(64);
        let pk = PacketKey::from_key(key(1, 0x0a00_0001, 3));
        let r = c.insert(1, m_dst(1, 0x0a00_0000, 8), out(2), 0, 0).flow();
        assert_eq!(c.lookup(&pk.key), Some(r));
        emc.insert(&pk, r);
        smc.insert(pk.hash, r.slot);
        assert_eq!(emc.lookup(&pk), Some(r));
        assert_eq!(c.lookup_smc(&smc, &pk), Some(r));

        c.remove(1).unwrap();
        assert_eq!(c.get(r).map(|e| e.id), None);
        assert_eq!(c.lookup_smc(&smc, &pk), None);

        // The slot is reused by a flow that does not match pk.
        let r2 = c.insert(2, m_dst(2, 0, 0), out(3), 0, 0).flow();
        assert_eq!(r2.slot, r.slot);
        assert_ne!(r2.gen, r.gen);
        let stale = emc.lookup(&pk).unwrap();
        assert_eq!(c.get(stale).map(|e| e.id), None);
        assert_eq!(c.lookup_smc(&smc, &pk), None);
        c.remove(2);

        // Reused by a flow that does match pk: the SMC hint verifies, the EMC handle stays stale.
        let r3 = c.insert(3, m_dst(1, 0x0a00_0000, 16), out(4), 0, 0).flow();
        assert_eq!(r3.slot, r.slot);
        assert_eq!(c.get(emc.lookup(&pk).unwrap()).map(|e| e.id), None);
        let v = c.lookup_smc(&smc, &pk).unwrap();
        assert_eq!(v, r3);
        assert_eq!(c.get(v).unwrap().id, 3);
    }

    #[test]
    fn update_changes_actions_and_version_only() {
        let mut c = MegaflowCache::new(4);
        let r = c.insert(1, m_dst(1, 5, 32), out(2), 1, 0).flow();
        assert!(c.update(1, None, 7));
        assert_eq!(c.get(r).unwrap().version, 7);
        assert_eq!(&*c.get(r).unwrap().actions, &[DpAction::Output(2)]);
        assert!(c.update(1, Some(Box::new([])), 8));
        let e = c.get(r).unwrap();
        assert_eq!((e.version, e.actions.len()), (8, 0));
        assert!(!c.update(2, None, 9));
        assert_eq!(c.lookup(&key(1, 5, 0)), Some(r));
    }

    #[test]
    fn rank_orders_by_hits_and_decays() {
        let mut c = MegaflowCache::new(16);
        let a = m_dst(1, 0x0a00_0000, 8);
        let b = m_dst(1, 0x0b01_0000, 16);
        c.insert(1, a, out(1), 0, 0);
        c.insert(2, b, out(1), 0, 0);
        let order = |c: &MegaflowCache| -> Vec<FlowKey> { c.subtable_masks().copied().collect() };
        assert_eq!(order(&c), [*a.mask(), *b.mask()]);
        for _ in 0..10 {
            c.lookup(&key(1, 0x0b01_0101, 0)).unwrap();
        }
        for _ in 0..4 {
            c.lookup(&key(1, 0x0a01_0101, 0)).unwrap();
        }
        c.rank();
        assert_eq!(order(&c), [*b.mask(), *a.mask()]);
        // Decayed to 5 and 2: 4 new hits on a (6) beat b (5).
        for _ in 0..4 {
            c.lookup(&key(1, 0x0a01_0101, 0)).unwrap();
        }
        c.rank();
        assert_eq!(order(&c), [*a.mask(), *b.mask()]);
        // Positions were reindexed: inserting into b's mask reuses its subtable.
        c.insert(3, m_dst(1, 0x0c01_0000, 16), out(1), 0, 0);
        assert_eq!(c.subtable_count(), 2);
        assert!(c.lookup(&key(1, 0x0c01_0009, 0)).is_some());
    }

    #[test]
    fn empty_subtables_are_removed_and_positions_kept_right() {
        let mut c = MegaflowCache::new(16);
        c.insert(1, m_dst(1, 0x0a00_0000, 8), out(1), 0, 0);
        c.insert(2, m_dst(1, 0x0b00_0000, 8), out(1), 0, 0);
        c.insert(3, m_dst(1, 0x0a01_0000, 16), out(1), 0, 0);
        c.insert(4, m_dst(1, 0x0a01_0200, 24), out(1), 0, 0);
        assert_eq!(c.subtable_count(), 3);
        c.remove(1);
        assert_eq!(c.subtable_count(), 3);
        c.remove(2);
        assert_eq!(c.subtable_count(), 2);
        // The /24 subtable moved down a position; it must still be found for insert and remove.
        c.insert(5, m_dst(1, 0x0a01_0300, 24), out(1), 0, 0);
        assert_eq!(c.subtable_count(), 2);
        c.remove(4);
        c.remove(5);
        assert_eq!(c.subtable_count(), 1);
        assert!(c.lookup(&key(1, 0x0a01_0300, 0)).is_some());
        c.remove(3);
        assert_eq!(c.subtable_count(), 0);
        assert!(c.is_empty());
        assert_eq!(c.lookup(&key(1, 0x0a01_0300, 0)), None);
    }

    #[test]
    fn clear_invalidates_every_handle() {
        let mut c = MegaflowCache::new(8);
        let refs: Vec<FlowRef> = (0..4)
            .map(|i| c.insert(i, m_dst(1, i as u32, 32), out(1), 0, 0).flow())
            .collect();
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.subtable_count(), 0);
        assert_eq!(c.iter().count(), 0);
        assert!(refs.iter().all(|&r| c.get(r).is_none()));
        assert_eq!(c.find(0), None);
        assert_eq!(c.lookup(&key(1, 0, 0)), None);
        let r = c.insert(7, m_dst(1, 0, 32), out(1), 0, 0).flow();
        assert!(!refs.contains(&r));
        assert_eq!(c.lookup(&key(1, 0, 0)), Some(r));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn capacity_zero_is_one() {
        let mut c = MegaflowCache::new(0);
        assert_eq!(c.capacity(), 1);
        c.insert(1, m_dst(1, 1, 32), out(1), 0, 0);
        let ins = c.insert(2, m_dst(1, 2, 32), out(1), 0, 0);
        assert!(matches!(
            ins,
            Insert::Inserted {
                evicted: Some(1),
                ..
            }
        ));
        assert_eq!(c.len(), 1);
    }
}
