//! Criterion micro-benches of the per-worker flow caches: ns per lookup for
//! - `emc_hit`: one flow, EMC lookup plus handle validation (`MegaflowCache::get`);
//! - `megaflow/1_subtable`: tuple-space lookup, 100,000 entries under one mask, random keys;
//! - `megaflow/100_subtables`: 100,000 entries over 100 masks (1,000 each), random keys, so
//!   about half the subtables are probed per packet;
//! - `smc_hit/100_subtables`: the same set through the SMC (lookup + verification), the path a
//!   worker takes when the EMC thrashes.
//!
//! Keys are pre-built `PacketKey`s drawn with a fixed-seed xorshift (deterministic runs).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use strato_flowtable::emc::Emc;
use strato_flowtable::megaflow::MegaflowCache;
use strato_flowtable::smc::Smc;
use strato_flowtable::{DpAction, Field, FlowKey, Match, PacketKey};

const ENTRIES: u32 = 100_000;
/// Pre-built random lookup keys (power of two).
const KEYS: usize = 1 << 14;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A UDP/IPv4 packet key as the extractor would produce it.
fn packet(dst: u32, src: u32, sport: u16, dport: u16) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::InPort, 1);
    k.set(Field::EthType, 0x0800);
    k.set(Field::EthDst, 0x0200_0000_0001);
    k.set(Field::EthSrc, 0x0200_0000_0002);
    k.set(Field::IpProto, 17);
    k.set(Field::IpTtl, 64);
    k.set(Field::Ipv4Dst, dst as u128);
    k.set(Field::Ipv4Src, src as u128);
    k.set(Field::TpSrc, sport as u128);
    k.set(Field::TpDst, dport as u128);
    k
}

/// Mask `i` of `n` distinct masks: in_port, dl_type and the exact destination always, plus a
/// source prefix length and optional L4 ports chosen by `i`.
fn mask_match(i: u32, key: &FlowKey) -> Match {
    let mut m = Match::default()
        .with(Field::InPort, key.get(Field::InPort))
        .with(Field::EthType, 0x0800)
        .with(Field::Ipv4Dst, key.get(Field::Ipv4Dst));
    m.set_prefix(Field::Ipv4Src, key.get(Field::Ipv4Src), i % 33)
        .expect("prefix fits");
    if (i / 33) & 1 == 1 {
        m.set(Field::TpDst, key.get(Field::TpDst));
    }
    if (i / 66) & 1 == 1 {
        m.set(Field::TpSrc, key.get(Field::TpSrc));
    }
    m
}

/// 100,000 megaflows over `masks` masks and `KEYS` random packet keys that each hit one.
fn build(masks: u32) -> (MegaflowCache, Vec<PacketKey>) {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let per = ENTRIES / masks;
    let mut mf = MegaflowCache::new(ENTRIES as usize);
    let mut entry_keys = Vec::with_capacity(ENTRIES as usize);
    for i in 0..masks {
        for j in 0..per {
            let k = packet(
                0x0a00_0000 | (i << 16) | j,
                rng.next() as u32,
                rng.next() as u16,
                rng.next() as u16,
            );
            let id = (i * per + j) as u64;
            let m = mask_match(i, &k);
            mf.insert(id, m, vec![DpAction::Output(2)].into(), 0, 0);
            entry_keys.push((k, m));
        }
    }
    assert_eq!(mf.len(), ENTRIES as usize);
    assert_eq!(mf.subtable_count(), masks as usize);
    let keys = (0..KEYS)
        .map(|_| {
            let (k, m) = entry_keys[(rng.next() % entry_keys.len() as u64) as usize];
            // Randomise the bits the megaflow does not consult.
            let mut p = k;
            p.set(Field::Ipv4Src, rng.next() as u128);
            p.set(Field::TpSrc, rng.next() as u128);
            p.set(Field::TpDst, rng.next() as u128);
            let mut q = p;
            for w in 0..q.w.len() {
                q.w[w] = (p.w[w] & !m.mask().w[w]) | m.key().w[w];
            }
            PacketKey::from_key(q)
        })
        .collect();
    (mf, keys)
}

fn bench_emc(c: &mut Criterion) {
    let key = packet(0x0a00_0001, 0x0a00_0002, 1000, 2000);
    let pk = PacketKey::from_key(key);
    let mut mf = MegaflowCache::new(16);
    let m = Match::new(key, FlowKey::ALL_ONES);
    let r = mf
        .insert(1, m, vec![DpAction::Output(2)].into(), 0, 0)
        .flow();
    let mut emc = Emc::default();
    emc.insert(&pk, r);
    c.bench_function("emc_hit", |b| {
        b.iter(|| {
            let r = emc.lookup(black_box(&pk));
            black_box(r.and_then(|r| mf.get(r)).map(|e| e.actions.len()))
        })
    });
}

fn bench_megaflow(c: &mut Criterion) {
    let mut g = c.benchmark_group("megaflow");
    for masks in [1u32, 100] {
        let (mut mf, keys) = build(masks);
        let mut i = 0usize;
        g.bench_function(format!("{masks}_subtables"), |b| {
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                let r = mf.lookup(black_box(&keys[i].key));
                debug_assert!(r.is_some());
                black_box(r)
            })
        });
    }
    g.finish();
}

fn bench_smc(c: &mut Criterion) {
    let (mut mf, keys) = build(100);
    let mut smc = Smc::default();
    for pk in &keys {
        let r = mf.lookup(&pk.key).expect("every key hits");
        smc.insert(pk.hash, r.slot);
    }
    let hits = keys
        .iter()
        .filter(|pk| mf.lookup_smc(&smc, pk).is_some())
        .count();
    assert!(hits * 100 >= keys.len() * 99, "SMC hit rate {hits}/{KEYS}");
    let mut i = 0usize;
    c.bench_function("smc_hit/100_subtables", |b| {
        b.iter(|| {
            i = (i + 1) & (KEYS - 1);
            black_box(mf.lookup_smc(&smc, black_box(&keys[i])))
        })
    });
}

criterion_group!(benches, bench_emc, bench_megaflow, bench_smc);
criterion_main!(benches);
