//! Property test of the flow caches against a linear-scan model.
//!
//! A random sequence of insert/remove/update/lookup/rank/clear runs against `MegaflowCache`
//! and a `Vec<(Match, id)>`. Matches are drawn from a small space so that masks repeat,
//! matches collide (replace in place), ids are reused with other matches, and the small
//! capacity forces evictions. After every step the cache's contents equal the model's; every
//! lookup hit is an entry whose match selects the key, and a lookup misses exactly when no
//! model match selects it. Each lookup also goes through a tiny EMC and SMC (to force
//! collisions and stale handles): a handle they return that `get` accepts must name an entry
//! whose match selects the key.

use proptest::prelude::*;
use strato_flowtable::emc::Emc;
use strato_flowtable::megaflow::{Insert, MegaflowCache, MegaflowId};
use strato_flowtable::smc::Smc;
use strato_flowtable::{DpAction, Field, FlowKey, Match, PacketKey};

const CAPACITY: usize = 10;

#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // test input, built once per case
enum Op {
    Insert {
        id: MegaflowId,
        m: Match,
        ver: u64,
    },
    Remove(MegaflowId),
    Update {
        id: MegaflowId,
        ver: u64,
        drop: bool,
    },
    Lookup(FlowKey),
    Rank,
    Clear,
}

fn key_strategy() -> impl Strategy<Value = FlowKey> {
    (0u32..3, 0u32..8, 0u32..3, 0u32..2).prop_map(|(port, dst, tp, src)| {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, port as u128);
        k.set(Field::EthType, 0x0800);
        k.set(Field::Ipv4Dst, 0x0a00_0000 | dst as u128);
        k.set(Field::Ipv4Src, src as u128);
        k.set(Field::TpDst, tp as u128);
        k
    })
}

fn match_strategy() -> impl Strategy<Value = Match> {
    (
        key_strategy(),
        any::<bool>(),
        prop::sample::select(vec![0u32, 29, 30, 32]),
        any::<bool>(),
    )
        .prop_map(|(k, use_port, dst_len, use_tp)| {
            let mut m = Match::default().with(Field::EthType, 0x0800);
            if use_port {
                m.set(Field::InPort, k.get(Field::InPort));
            }
            m.set_prefix(Field::Ipv4Dst, k.get(Field::Ipv4Dst), dst_len)
                .expect("prefix fits");
            if use_tp {
                m.set(Field::TpDst, k.get(Field::TpDst));
            }
            m
        })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..14, match_strategy(), 0u64..4).prop_map(|(id, m, ver)| Op::Insert { id, m, ver }),
        2 => (0u64..14).prop_map(Op::Remove),
        1 => (0u64..14, 0u64..4, any::<bool>()).prop_map(|(id, ver, drop)| Op::Update { id, ver, drop }),
        8 => key_strategy().prop_map(Op::Lookup),
        1 => Just(Op::Rank),
        1 => Just(Op::Clear),
    ]
}

fn check_same_contents(c: &MegaflowCache, model: &[(Match, MegaflowId, u64)]) {
    assert_eq!(c.len(), model.len());
    let mut got: Vec<_> = c.iter().map(|e| (e.id, e.m, e.version)).collect();
    let mut want: Vec<_> = model.iter().map(|&(m, id, v)| (id, m, v)).collect();
    got.sort_by_key(|x| x.0);
    want.sort_by_key(|x| x.0);
    assert_eq!(got, want);
    for &(m, id, _) in model {
        let r = c.find(id).expect("model id is cached");
        assert_eq!(c.get(r).map(|e| e.m), Some(m));
    }
}

fn run(ops: Vec<Op>) {
    let mut c = MegaflowCache::new(CAPACITY);
    let mut emc = Emc::new(4);
    let mut smc = Smc::new(8);
    // (match, id, version)
    let mut model: Vec<(Match, MegaflowId, u64)> = Vec::new();
    for op in ops {
        match op {
            Op::Insert { id, m, ver } => {
                if let Some(i) = model.iter().position(|e| e.1 == id && e.0 != m) {
                    model.remove(i);
                }
                let res = c.insert(id, m, vec![DpAction::Output(id as u32)].into(), ver, 0);
                match (model.iter().position(|e| e.0 == m), res) {
                    (Some(i), Insert::Replaced { old_id, flow }) => {
                        assert_eq!(model[i].1, old_id);
                        model[i] = (m, id, ver);
                        assert_eq!(c.get(flow).map(|e| e.id), Some(id));
                    }
                    (None, Insert::Inserted { evicted, flow }) => {
                        if model.len() == CAPACITY {
                            let gone = evicted.expect("full cache evicts");
                            let i = model
                                .iter()
                                .position(|e| e.1 == gone)
                                .expect("evicted a cached id");
                            model.remove(i);
                        } else {
                            assert_eq!(evicted, None);
                        }
                        model.push((m, id, ver));
                        assert_eq!(c.get(flow).map(|e| e.m), Some(m));
                    }
                    (pos, res) => panic!("model position {pos:?} but cache said {res:?}"),
                }
            }
            Op::Remove(id) => {
                let want = model
                    .iter()
                    .position(|e| e.1 == id)
                    .map(|i| model.remove(i));
                let r = c.find(id);
                let got = c.remove(id);
                assert_eq!(got.map(|e| (e.m, e.id)), want.map(|e| (e.0, e.1)));
                if let Some(r) = r {
                    assert!(c.get(r).is_none(), "handle survives remove");
                }
            }
            Op::Update { id, ver, drop } => {
                let actions = drop.then(|| Box::<[DpAction]>::from([]));
                let present = model.iter_mut().find(|e| e.1 == id);
                let expect = present.is_some();
                if let Some(e) = present {
                    e.2 = ver;
                }
                assert_eq!(c.update(id, actions, ver), expect);
            }
            Op::Lookup(key) => {
                let pk = PacketKey::from_key(key);
                if let Some(r) = emc.lookup(&pk) {
                    if let Some(e) = c.get(r) {
                        assert!(e.m.matches(&key), "EMC handle names another flow");
                    }
                }
                if let Some(r) = c.lookup_smc(&smc, &pk) {
                    let e = c.get(r).expect("verified SMC handle is live");
                    assert!(e.m.matches(&key), "SMC handle names another flow");
                }
                let any = model.iter().any(|e| e.0.matches(&key));
                match c.lookup(&key) {
                    Some(r) => {
                        let e = c.get(r).expect("lookup returns a live handle");
                        assert!(e.m.matches(&key));
                        assert!(any);
                        emc.insert_checked(&pk, r, |f| c.get(f).is_some());
                        smc.insert(pk.hash, r.slot);
                    }
                    None => assert!(!any, "miss although a cached match selects the key"),
                }
            }
            Op::Rank => c.rank(),
            Op::Clear => {
                c.clear();
                model.clear();
            }
        }
        check_same_contents(&c, &model);
        assert!(c.subtable_count() <= c.len(), "an empty subtable was kept");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn caches_agree_with_linear_model(ops in prop::collection::vec(op_strategy(), 1..120)) {
        run(ops);
    }
}
