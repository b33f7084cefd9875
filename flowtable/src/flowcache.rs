//! The flow cache: a worker's three cache levels and the one policy that ties them together
//! (Open vSwitch's EMC -> SMC -> dpcls order, OPTE's epoch-checked unified flow table).
//!
//! Contract:
//! - A [`FlowCache`] owns an [`Emc`], an optional [`Smc`] and a [`MegaflowCache`], and the
//!   pipeline version it answers for. A lookup tries the EMC, then the SMC, then the megaflow
//!   classifier, and returns a handle the caller may pass to [`MegaflowCache::get_mut`] (through
//!   [`FlowCache::megaflows_mut`]) until it next changes the cache.
//! - Versions: every megaflow carries the version it was translated against; the cache answers
//!   for [`FlowCache::version`], which only rises ([`FlowCache::advance_version`]). An entry of
//!   an older version is never returned, whichever level found it. One function makes that
//!   check for every level.
//! - Learning: a classifier hit is recorded in the SMC and offered to the EMC; an SMC hit is
//!   offered to the EMC. The EMC takes an offer with probability 1 / `emc_insert_inv_prob`
//!   (Open vSwitch's defence against EMC thrashing), decided by a per-cache xorshift32, so
//!   runs are deterministic for a given seed.
//! - Counting, through [`CacheCounters`] (at most one hit per lookup):
//!   - EMC: a live, current entry is an `emc_hit`; a live entry of an older version is a
//!     `stale_hit` and the lookup goes on; a handle whose megaflow is gone goes on silently.
//!   - SMC: a verified, current candidate is an `smc_hit`; anything else goes on silently.
//!   - Classifier: a current entry is a `megaflow_hit`; an older one is a `stale_hit` and the
//!     lookup misses (megaflows never overlap, so no other entry can answer); no entry is a
//!     plain miss, which the caller counts.
//! - [`FlowCache::lookup_batch`] runs the same policy level by level over a burst (each level
//!   over every packet still unanswered, prefetching what the next one touches). Its handles
//!   equal [`FlowCache::lookup`]'s; so do its counts, except that a flow seen twice in one
//!   burst finds the levels as they were at the burst's start (what its first packet taught
//!   the EMC and SMC is used from the next burst on).
//! - Hot path (lookups, prefetches): no allocation, no locks, no `dyn` (the counters are a
//!   type parameter), no panics. Installs, removals and [`FlowCache::flush`] run between
//!   bursts.

use crate::emc::{Emc, EMC_ENTRIES};
use crate::key::PacketKey;
use crate::megaflow::{FlowRef, MegaflowCache, DEFAULT_CAPACITY};
use crate::smc::{Smc, DEFAULT_SMC_ENTRIES};

/// Where a flow cache reports its hits. Implemented by the datapath's worker counters (one
/// increment each, inlined) and by [`CacheStats`].
pub trait CacheCounters {
    /// An exact-match cache hit.
    fn emc_hit(&mut self);
    /// A signature-match cache hit.
    fn smc_hit(&mut self);
    /// A megaflow classifier hit.
    fn megaflow_hit(&mut self);
    /// An entry of an older version was found (and not used).
    fn stale_hit(&mut self);
}

/// Plain hit counters, for callers without counters of their own (tests, benches).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Exact-match cache hits.
    pub emc_hits: u64,
    /// Signature-match cache hits.
    pub smc_hits: u64,
    /// Megaflow classifier hits.
    pub megaflow_hits: u64,
    /// Entries found with an older version (treated as misses).
    pub stale_hits: u64,
}

impl CacheCounters for CacheStats {
    #[inline(always)]
    fn emc_hit(&mut self) {
        self.emc_hits += 1;
    }
    #[inline(always)]
    fn smc_hit(&mut self) {
        self.smc_hits += 1;
    }
    #[inline(always)]
    fn megaflow_hit(&mut self) {
        self.megaflow_hits += 1;
    }
    #[inline(always)]
    fn stale_hit(&mut self) {
        self.stale_hits += 1;
    }
}

/// Sizes and learning policy of a [`FlowCache`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowCacheConfig {
    /// Exact-match cache entries (see [`Emc::new`]).
    pub emc_entries: usize,
    /// Signature-match cache entries (see [`Smc::new`]; 0: no SMC).
    pub smc_entries: usize,
    /// Megaflows the classifier holds before evicting.
    pub megaflow_capacity: usize,
    /// The EMC takes one offered flow in this many (0 or 1: every one).
    pub emc_insert_inv_prob: u32,
    /// Seed of the EMC insert decision (0 is replaced by a fixed non-zero seed).
    pub seed: u32,
}

/// Seed used when the configured one is 0 (xorshift stays at 0 forever).
const DEFAULT_SEED: u32 = 0x9e37_79b9;

impl Default for FlowCacheConfig {
    fn default() -> Self {
        FlowCacheConfig {
            emc_entries: EMC_ENTRIES,
            smc_entries: DEFAULT_SMC_ENTRIES,
            megaflow_capacity: DEFAULT_CAPACITY,
            emc_insert_inv_prob: 100,
            seed: DEFAULT_SEED,
        }
    }
}

/// What [`FlowCache::validity`] found for a handle.
enum Validity {
    /// The entry exists and is of the current version.
    Fresh,
    /// The entry exists but is older than the current version.
    Stale,
    /// The handle's entry was removed.
    Gone,
}

/// A worker's flow caches and the version they answer for; see the module docs.
#[derive(Debug)]
pub struct FlowCache {
    emc: Emc,
    smc: Option<Smc>,
    megaflows: MegaflowCache,
    version: u64,
    rng: u32,
    emc_insert_inv_prob: u32,
}

impl Default for FlowCache {
    fn default() -> Self {
        Self::new(&FlowCacheConfig::default())
    }
}

impl FlowCache {
    /// Empty caches of the configured sizes, at version 0.
    pub fn new(cfg: &FlowCacheConfig) -> FlowCache {
        FlowCache {
            emc: Emc::new(cfg.emc_entries),
            smc: (cfg.smc_entries > 0).then(|| Smc::new(cfg.smc_entries)),
            megaflows: MegaflowCache::new(cfg.megaflow_capacity),
            version: 0,
            rng: if cfg.seed == 0 {
                DEFAULT_SEED
            } else {
                cfg.seed
            },
            emc_insert_inv_prob: cfg.emc_insert_inv_prob,
        }
    }

    /// The version the cache answers for: older entries are never returned.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Raises the version to `version` (a lower one changes nothing).
    pub fn advance_version(&mut self, version: u64) {
        self.version = self.version.max(version);
    }

    /// The megaflow classifier (read-only: dumps, statistics).
    pub fn megaflows(&self) -> &MegaflowCache {
        &self.megaflows
    }

    /// The megaflow classifier, for installs, revalidation, removals, ranking and the hit
    /// counters of entries. Handles held by the EMC and SMC stay safe across any change: they
    /// are validated on every use.
    #[inline(always)]
    pub fn megaflows_mut(&mut self) -> &mut MegaflowCache {
        &mut self.megaflows
    }

    /// The exact-match cache (read-only).
    pub fn emc(&self) -> &Emc {
        &self.emc
    }

    /// The signature-match cache, if configured (read-only).
    pub fn smc(&self) -> Option<&Smc> {
        self.smc.as_ref()
    }

    /// Empties all three levels (the version is kept).
    pub fn flush(&mut self) {
        self.megaflows.clear();
        self.emc.clear();
        if let Some(s) = &mut self.smc {
            s.clear();
        }
    }

    /// The version check, for every level.
    #[inline(always)]
    fn validity(&self, fr: FlowRef) -> Validity {
        match self.megaflows.get(fr) {
            Some(e) if e.version >= self.version => Validity::Fresh,
            Some(_) => Validity::Stale,
            None => Validity::Gone,
        }
    }

    /// Prefetches the EMC positions of `hash` (a batch stage ahead of [`FlowCache::emc_lookup`]).
    #[inline(always)]
    pub fn prefetch_emc(&self, hash: u32) {
        self.emc.prefetch(hash);
    }

    /// Prefetches the action list of a handle's entry (ahead of running it).
    #[inline(always)]
    pub fn prefetch_actions(&self, fr: FlowRef) {
        self.megaflows.prefetch_actions(fr);
    }

    /// The EMC level alone: a current entry for exactly this flow.
    #[inline(always)]
    pub fn emc_lookup<C: CacheCounters>(&self, pk: &PacketKey, c: &mut C) -> Option<FlowRef> {
        let fr = self.emc.lookup(pk)?;
        match self.validity(fr) {
            Validity::Fresh => {
                c.emc_hit();
                Some(fr)
            }
            Validity::Stale => {
                c.stale_hit();
                None
            }
            Validity::Gone => None,
        }
    }

    /// The SMC's verification of candidate `slot` for `pk`: a current entry in that slot whose
    /// match selects the key. On a hit the EMC is offered the flow.
    #[inline(always)]
    fn smc_verify<C: CacheCounters>(
        &mut self,
        slot: u32,
        pk: &PacketKey,
        c: &mut C,
    ) -> Option<FlowRef> {
        let fr = self.megaflows.verify_slot(slot, pk)?;
        if !matches!(self.validity(fr), Validity::Fresh) {
            return None;
        }
        c.smc_hit();
        self.maybe_emc_insert(pk, fr);
        Some(fr)
    }

    /// The SMC level alone (none configured: a miss).
    #[inline]
    pub fn smc_lookup<C: CacheCounters>(&mut self, pk: &PacketKey, c: &mut C) -> Option<FlowRef> {
        let slot = self.smc.as_ref()?.lookup(pk.hash)?;
        self.smc_verify(slot, pk, c)
    }

    /// The megaflow classifier (tuple-space search); on a hit the SMC and EMC learn the flow.
    #[inline]
    pub fn classify<C: CacheCounters>(&mut self, pk: &PacketKey, c: &mut C) -> Option<FlowRef> {
        let fr = self.megaflows.lookup(&pk.key)?;
        if let Validity::Fresh = self.validity(fr) {
            c.megaflow_hit();
            if let Some(smc) = &mut self.smc {
                smc.insert(pk.hash, fr.slot);
            }
            self.maybe_emc_insert(pk, fr);
            Some(fr)
        } else {
            c.stale_hit();
            None
        }
    }

    /// EMC, then SMC, then the classifier, for one packet.
    #[inline]
    pub fn lookup<C: CacheCounters>(&mut self, pk: &PacketKey, c: &mut C) -> Option<FlowRef> {
        if let Some(fr) = self.emc_lookup(pk, c) {
            return Some(fr);
        }
        if let Some(fr) = self.smc_lookup(pk, c) {
            return Some(fr);
        }
        self.classify(pk, c)
    }

    /// [`FlowCache::lookup`] for the packets `i < n` of a burst with `live[i]` set, level by
    /// level: prefetch EMC -> EMC -> prefetch SMC buckets -> SMC candidates (prefetching their
    /// megaflows) -> verify -> classifier for the rest -> prefetch the action lists that the
    /// SMC and classifier found. `found[i]` gets each live packet's handle (`None`: a miss);
    /// the others are left alone. `N` is at most 256; with `n` above `N` nothing is looked up.
    #[inline]
    pub fn lookup_batch<C: CacheCounters, const N: usize>(
        &mut self,
        keys: &[PacketKey; N],
        live: &[bool; N],
        n: usize,
        found: &mut [Option<FlowRef>; N],
        c: &mut C,
    ) {
        const { assert!(N <= 256, "burst indices are u8") };
        if n > N {
            return;
        }

        // Level 1: exact-match cache.
        for (k, _) in keys.iter().zip(&live[..n]).filter(|(_, l)| **l) {
            self.emc.prefetch(k.hash);
        }
        let mut miss = [0u8; N];
        let mut misses = 0;
        for i in 0..n {
            if !live[i] {
                continue;
            }
            match self.emc_lookup(&keys[i], c) {
                Some(fr) => found[i] = Some(fr),
                None => {
                    miss[misses] = i as u8;
                    misses += 1;
                }
            }
        }
        if misses == 0 {
            return;
        }
        let (emc_miss, emc_misses) = (miss, misses);

        // Level 2: signature-match cache, in three passes (bucket, candidate, verify).
        if let Some(smc) = &self.smc {
            for &i in &miss[..misses] {
                smc.prefetch(keys[i as usize].hash);
            }
            let mut cand = [u32::MAX; N];
            for (j, &i) in miss[..misses].iter().enumerate() {
                if let Some(slot) = smc.lookup(keys[i as usize].hash) {
                    cand[j] = slot;
                    self.megaflows.prefetch_slot(slot);
                }
            }
            let mut still = 0;
            for j in 0..misses {
                let i = miss[j] as usize;
                let hit = if cand[j] == u32::MAX {
                    None
                } else {
                    self.smc_verify(cand[j], &keys[i], c)
                };
                match hit {
                    Some(fr) => found[i] = Some(fr),
                    None => {
                        miss[still] = i as u8;
                        still += 1;
                    }
                }
            }
            misses = still;
        }

        // Level 3: the megaflow classifier for what is left.
        if misses > 0 {
            self.classify_batch(keys, &miss[..misses], found, c);
        }

        // Prefetch the action lists the SMC and classifier found (their entry lines are warm
        // from verification; EMC hits' action lists are hot already).
        for &i in &emc_miss[..emc_misses] {
            if let Some(fr) = found[i as usize] {
                self.megaflows.prefetch_actions(fr);
            }
        }
    }

    /// The classifier level of [`FlowCache::lookup_batch`] for the packets `miss` names.
    ///
    /// Out of line and cold on purpose: inlined (or called once per packet) into the burst
    /// loop, its registers spill into the EMC-hit path; as one cold call per burst it costs
    /// nothing next to a tuple-space search, and the cache-hit path keeps its registers
    /// (measured with callgrind on `strato bench pipeline`: 1 to 4 instructions a packet fewer
    /// on every scenario than an out-of-line call per packet).
    #[cold]
    #[inline(never)]
    fn classify_batch<C: CacheCounters, const N: usize>(
        &mut self,
        keys: &[PacketKey; N],
        miss: &[u8],
        found: &mut [Option<FlowRef>; N],
        c: &mut C,
    ) {
        for &i in miss {
            if let (Some(k), Some(f)) = (keys.get(i as usize), found.get_mut(i as usize)) {
                *f = self.classify(k, c);
            }
        }
    }

    /// Offers `pk -> fr` to the EMC, which takes it with probability 1 / `emc_insert_inv_prob`.
    #[inline(always)]
    fn maybe_emc_insert(&mut self, pk: &PacketKey, fr: FlowRef) {
        let p = self.emc_insert_inv_prob;
        if p > 1 {
            // xorshift32: cheap, deterministic per cache.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 17;
            self.rng ^= self.rng << 5;
            if !self.rng.is_multiple_of(p) {
                return;
            }
        }
        self.emc.insert(pk, fr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpaction::DpAction;
    use crate::flow_match::Match;
    use crate::key::{Field, FlowKey};
    use crate::megaflow::MegaflowId;

    /// An IPv4 packet key from port 1 to `dst`.
    fn key(dst: u32) -> PacketKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, 1);
        k.set(Field::EthType, 0x0800);
        k.set(Field::Ipv4Dst, dst as u128);
        PacketKey::from_key(k)
    }

    /// A cache with room to spare; `inv_prob`: EMC insert probability; `smc`: with an SMC.
    fn cache(inv_prob: u32, smc: bool) -> FlowCache {
        FlowCache::new(&FlowCacheConfig {
            emc_entries: 1 << 16,
            smc_entries: if smc { 1 << 16 } else { 0 },
            megaflow_capacity: 10_000,
            emc_insert_inv_prob: inv_prob,
            seed: 1,
        })
    }

    /// Never inserts into the EMC within these tests (the rng would have to hit u32::MAX).
    const EMC_NEVER: u32 = u32::MAX;

    /// Installs megaflow `id`: in_port 1, IPv4, exactly `dst`.
    fn install(fc: &mut FlowCache, id: MegaflowId, dst: u32, version: u64) {
        let m = Match::default()
            .with(Field::InPort, 1)
            .with(Field::EthType, 0x0800)
            .with(Field::Ipv4Dst, dst as u128);
        fc.megaflows_mut()
            .insert(id, m, vec![DpAction::Output(2)].into(), version, 0);
    }

    /// One lookup: its answer (the megaflow id) and what it counted.
    fn delta(fc: &mut FlowCache, pk: &PacketKey) -> (Option<MegaflowId>, CacheStats) {
        let mut c = CacheStats::default();
        let fr = fc.lookup(pk, &mut c);
        (
            fr.map(|fr| fc.megaflows().get(fr).expect("valid handle").id),
            c,
        )
    }

    const EMC_HIT: CacheStats = CacheStats {
        emc_hits: 1,
        smc_hits: 0,
        megaflow_hits: 0,
        stale_hits: 0,
    };
    const SMC_HIT: CacheStats = CacheStats {
        emc_hits: 0,
        smc_hits: 1,
        megaflow_hits: 0,
        stale_hits: 0,
    };
    const MEGAFLOW_HIT: CacheStats = CacheStats {
        emc_hits: 0,
        smc_hits: 0,
        megaflow_hits: 1,
        stale_hits: 0,
    };
    const NOTHING: CacheStats = CacheStats {
        emc_hits: 0,
        smc_hits: 0,
        megaflow_hits: 0,
        stale_hits: 0,
    };
    fn stale(n: u64) -> CacheStats {
        CacheStats {
            stale_hits: n,
            ..NOTHING
        }
    }

    #[test]
    fn miss_counts_nothing() {
        let mut fc = cache(1, true);
        assert_eq!(delta(&mut fc, &key(1)), (None, NOTHING));
        install(&mut fc, 7, 1, 0);
        assert_eq!(delta(&mut fc, &key(2)), (None, NOTHING));
    }

    #[test]
    fn classifier_hit_teaches_emc() {
        let mut fc = cache(1, true);
        install(&mut fc, 7, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        assert_eq!(fc.emc().len(), 1);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), EMC_HIT));
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), EMC_HIT));
    }

    #[test]
    fn smc_answers_when_emc_declines() {
        let mut fc = cache(EMC_NEVER, true);
        install(&mut fc, 7, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        assert!(fc.emc().is_empty());
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), SMC_HIT));
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), SMC_HIT));
    }

    #[test]
    fn smc_hit_teaches_emc() {
        // inv_prob 2 with seed 1: the rng declines the first five offers and takes the sixth
        // (the classifier's, then four of the SMC's, then the fifth SMC hit's).
        let mut fc = cache(2, true);
        install(&mut fc, 7, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        for _ in 0..5 {
            assert!(fc.emc().is_empty());
            assert_eq!(delta(&mut fc, &key(1)), (Some(7), SMC_HIT));
        }
        assert_eq!(fc.emc().len(), 1);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), EMC_HIT));
    }

    #[test]
    fn without_smc_the_classifier_answers() {
        let mut fc = cache(EMC_NEVER, false);
        assert!(fc.smc().is_none());
        install(&mut fc, 7, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
    }

    #[test]
    fn stale_after_version_bump_then_revalidated() {
        let mut fc = cache(1, true);
        install(&mut fc, 7, 1, 1);
        fc.advance_version(1);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), EMC_HIT));

        fc.advance_version(2);
        // EMC entry stale (+1), SMC candidate stale (silent), classifier entry stale (+1).
        assert_eq!(delta(&mut fc, &key(1)), (None, stale(2)));
        assert_eq!(delta(&mut fc, &key(1)), (None, stale(2)));

        // Revalidated in place: the same handles are good again, from the EMC on.
        assert!(fc.megaflows_mut().update(7, None, 2));
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), EMC_HIT));
    }

    #[test]
    fn stale_smc_candidate_is_silent() {
        let mut fc = cache(EMC_NEVER, true);
        install(&mut fc, 7, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), SMC_HIT));
        fc.advance_version(1);
        // No EMC entry; the SMC candidate is stale (silent); the classifier's is counted.
        assert_eq!(delta(&mut fc, &key(1)), (None, stale(1)));
    }

    #[test]
    fn version_only_rises() {
        let mut fc = cache(1, true);
        assert_eq!(fc.version(), 0);
        fc.advance_version(5);
        fc.advance_version(3);
        assert_eq!(fc.version(), 5);
        // Entries newer than the cache's version are current.
        install(&mut fc, 7, 1, 6);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
    }

    #[test]
    fn removed_megaflow_is_a_plain_miss() {
        let mut fc = cache(1, true);
        install(&mut fc, 7, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        assert!(fc.megaflows_mut().remove(7).is_some());
        // The EMC and SMC still hold the handle; it is rejected without a count.
        assert_eq!(delta(&mut fc, &key(1)), (None, NOTHING));
        // A new megaflow for the key reuses the slot: the EMC's handle (old generation) is
        // still rejected; the SMC's hint names only the slot, and verifying it finds the new
        // entry, whose match selects the key, so it answers (and teaches the EMC).
        install(&mut fc, 8, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(8), SMC_HIT));
        assert_eq!(delta(&mut fc, &key(1)), (Some(8), EMC_HIT));
        // Without an SMC, the classifier finds it.
        let mut fc = cache(1, false);
        install(&mut fc, 7, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        assert!(fc.megaflows_mut().remove(7).is_some());
        assert_eq!(delta(&mut fc, &key(1)), (None, NOTHING));
        install(&mut fc, 8, 1, 0);
        assert_eq!(delta(&mut fc, &key(1)), (Some(8), MEGAFLOW_HIT));
        assert_eq!(delta(&mut fc, &key(1)), (Some(8), EMC_HIT));
    }

    #[test]
    fn flush_empties_every_level_and_keeps_the_version() {
        let mut fc = cache(1, true);
        fc.advance_version(3);
        install(&mut fc, 7, 1, 3);
        assert_eq!(delta(&mut fc, &key(1)), (Some(7), MEGAFLOW_HIT));
        fc.flush();
        assert!(fc.megaflows().is_empty());
        assert!(fc.emc().is_empty());
        assert_eq!(fc.version(), 3);
        assert_eq!(delta(&mut fc, &key(1)), (None, NOTHING));
    }

    /// Looks up `flows` distinct flows once each; returns what the pass counted.
    fn pass(fc: &mut FlowCache, flows: u32) -> CacheStats {
        let mut c = CacheStats::default();
        for d in 0..flows {
            assert!(fc.lookup(&key(d), &mut c).is_some());
        }
        c
    }

    #[test]
    fn emc_insert_probability() {
        // (inv_prob, flows, learned at least, learned at most); the EMC is kept nearly empty
        // so that its replacement never loses a learned flow.
        for (inv, flows, lo, hi) in [(0, 100, 100, 100), (1, 100, 100, 100), (4, 2000, 420, 580)] {
            let mut fc = cache(inv, true);
            for d in 0..flows {
                install(&mut fc, d as u64, d, 0);
            }
            let first = pass(&mut fc, flows);
            assert_eq!(
                first,
                CacheStats {
                    megaflow_hits: flows as u64,
                    ..NOTHING
                },
                "inv {inv}"
            );
            let learned = fc.emc().len() as u32;
            assert!((lo..=hi).contains(&learned), "inv {inv}: {learned} learned");
            // Second pass: what the EMC learned hits there, the rest in the SMC.
            let second = pass(&mut fc, flows);
            assert_eq!(
                second,
                CacheStats {
                    emc_hits: learned as u64,
                    smc_hits: (flows - learned) as u64,
                    ..NOTHING
                },
                "inv {inv}"
            );
        }
    }

    #[test]
    fn batch_equals_per_packet() {
        const N: usize = 32;
        let setup = || {
            let mut fc = cache(1, true);
            for d in 0..40 {
                install(&mut fc, d as u64, d, 1);
            }
            fc.advance_version(1);
            fc
        };
        let (mut one, mut batch) = (setup(), setup());
        // Distinct flows per burst: known (0..40), unknown (1000..), some dead slots.
        let burst = |b: u32| -> ([PacketKey; N], [bool; N]) {
            let keys = core::array::from_fn(|i| {
                let i = i as u32;
                key(if i % 5 == 4 {
                    1000 + i
                } else {
                    (i + 7 * b) % 40
                })
            });
            let live = core::array::from_fn(|i| i % 7 != 6);
            (keys, live)
        };
        let step = |one: &mut FlowCache, batch: &mut FlowCache, b: u32| {
            let (keys, live) = burst(b);
            let mut c1 = CacheStats::default();
            let mut c2 = CacheStats::default();
            let want: Vec<_> = (0..N)
                .filter(|&i| live[i])
                .map(|i| one.lookup(&keys[i], &mut c1))
                .collect();
            let mut found = [None; N];
            batch.lookup_batch(&keys, &live, N, &mut found, &mut c2);
            let got: Vec<_> = (0..N).filter(|&i| live[i]).map(|i| found[i]).collect();
            assert_eq!(got, want, "burst {b}");
            assert_eq!(c2, c1, "burst {b}");
            c1
        };
        let mut total = CacheStats::default();
        for b in 0..6 {
            let c = step(&mut one, &mut batch, b);
            total.emc_hits += c.emc_hits;
            total.megaflow_hits += c.megaflow_hits;
        }
        // Both paths saw every kind of hit.
        assert!(total.emc_hits > 0 && total.megaflow_hits > 0, "{total:?}");
        // Stale entries after a version bump, some revalidated, one removed.
        for fc in [&mut one, &mut batch] {
            fc.advance_version(2);
            for d in 0..20 {
                fc.megaflows_mut().update(d as u64, None, 2);
            }
            fc.megaflows_mut().remove(3);
        }
        for b in 0..6 {
            step(&mut one, &mut batch, b);
        }
    }

    #[test]
    fn batch_through_the_smc() {
        const N: usize = 8;
        let mut fc = cache(EMC_NEVER, true);
        for d in 0..N as u32 {
            install(&mut fc, d as u64, d, 0);
        }
        let keys: [PacketKey; N] = core::array::from_fn(|i| key(i as u32));
        let live = [true; N];
        let mut found = [None; N];
        let mut c = CacheStats::default();
        fc.lookup_batch(&keys, &live, N, &mut found, &mut c);
        assert_eq!(
            c,
            CacheStats {
                megaflow_hits: N as u64,
                ..NOTHING
            }
        );
        let mut c = CacheStats::default();
        fc.lookup_batch(&keys, &live, N, &mut found, &mut c);
        assert_eq!(
            c,
            CacheStats {
                smc_hits: N as u64,
                ..NOTHING
            }
        );
        for (i, fr) in found.iter().enumerate() {
            let id = fr.and_then(|fr| fc.megaflows().get(fr)).map(|e| e.id);
            assert_eq!(id, Some(i as u64));
        }
    }

    #[test]
    fn batch_leaves_dead_slots_and_refuses_n_past_n() {
        const N: usize = 4;
        let mut fc = cache(1, true);
        install(&mut fc, 7, 1, 0);
        let keys = [key(1); N];
        let sentinel = Some(FlowRef { slot: 99, gen: 99 });
        let mut found = [sentinel; N];
        let mut c = CacheStats::default();
        // More packets than the burst holds: nothing is looked up.
        fc.lookup_batch(&keys, &[true; N], N + 1, &mut found, &mut c);
        assert_eq!(c, NOTHING);
        assert_eq!(found, [sentinel; N]);
        // Only slot 1 is live.
        fc.lookup_batch(&keys, &[false, true, false, false], N, &mut found, &mut c);
        assert_eq!(c, MEGAFLOW_HIT);
        assert_eq!(found[0], sentinel);
        assert_eq!(found[2], sentinel);
        assert_eq!(found[3], sentinel);
        assert_eq!(
            found[1].and_then(|fr| fc.megaflows().get(fr)).map(|e| e.id),
            Some(7)
        );
        // A burst of EMC hits only.
        let mut c = CacheStats::default();
        fc.lookup_batch(&keys, &[true; N], 2, &mut found, &mut c);
        assert_eq!(
            c,
            CacheStats {
                emc_hits: 2,
                ..NOTHING
            }
        );
        assert_eq!(found[0], found[1]);
        assert_eq!(found[2], sentinel);
    }
}
