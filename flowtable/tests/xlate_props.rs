//! Property test of xlate against the reference interpreter.
//!
//! For random pipelines (1-3 tables, up to 30 rules, matches on random subsets of a handful of
//! fields with small value domains and random bit/prefix masks, random actions; up to 6 groups
//! of all four types with random weights, watch ports (up or down) and watch groups, chained to
//! each other, then one random group modify) and random packets `k`: `x = xlate(k)` must match
//! `k`, and for many keys `k2` inside `x.megaflow` (random keys with the megaflow's bits
//! forced, and random keys that happen to match), `apply_dp(k2, &x.actions) == execute(k2)`.
//! The same for random packet-out action lists (with output:TABLE and groups, in_port a port or
//! the controller): `apply_dp(k2, &xlate_actions(k).actions) == execute_actions(k2)`. A unit
//! test shows the check catches a megaflow whose mask misses one consulted bit; another that
//! the generator really exercises every group type and the SELECT hash.

use proptest::prelude::*;
use proptest::sample::Index;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use strato_flowtable::group::{Bucket, GroupSpec, GroupType};
use strato_flowtable::key::{Field, FlowKey, KEY_WORDS, VLAN_PRESENT};
use strato_flowtable::pipeline::{
    Action, AddOptions, Instructions, OfPort, Pipeline, PortEnv, RuleSpec, TableMiss,
    TunnelPortCfg, IN_PORT_CONTROLLER,
};
use strato_flowtable::semantics::{apply_dp, execute, execute_actions, Effect};
use strato_flowtable::xlate::{xlate, xlate_actions, Xlation};
use strato_flowtable::{DpAction, Match};

const LOCAL4: u32 = 0xc0a8_0001; // 192.168.0.1
const REMOTE4: u32 = 0xc0a8_0002; // 192.168.0.2 (has a neighbor)
const LOCAL6: u128 = 0xfd00_0000_0000_0000_0000_0000_0000_0001;
const REMOTE6: u128 = 0xfd00_0000_0000_0000_0000_0000_0000_0002;
const PRESENT: u128 = VLAN_PRESENT as u128;

/// Small value domains, so random rules overlap and random packets hit them.
fn domain(f: Field) -> &'static [u128] {
    use Field::*;
    match f {
        InPort => &[1, 2, 3, 4, 10],
        EthType => &[0x0800, 0x86dd, 0x0806],
        VlanTci => &[0, PRESENT | 1, PRESENT | 2, PRESENT | (3 << 13) | 1],
        VlanVid => &[1, 2, 5],
        VlanPcp => &[0, 3],
        EthDst => &[1, 2, 3, 0xffff_ffff_ffff],
        EthSrc => &[1, 2],
        IpProto => &[1, 6, 17, 58],
        IpFrag => &[0, 0, 1, 3],
        IpTtl => &[0, 1, 2, 3, 64],
        IpTos => &[0, 0xb9],
        IpDscp => &[0, 0x2e],
        Ipv4Dst => &[0x0a00_0001, 0x0a00_0002, LOCAL4 as u128, 0x0a00_0101],
        Ipv4Src => &[0x0a00_0001, 0x0a00_0003],
        Ipv6Dst => &[1, 2, LOCAL6],
        Ipv6Src => &[1, 3],
        TpDst => &[80, 4789, 53],
        TpSrc => &[80, 1000, 2000],
        TunId => &[0, 5, 7, 1 << 30],
        TunIpv4Dst => &[0, REMOTE4 as u128, 0xc0a8_0003],
        TunIpv6Dst => &[0, REMOTE6],
        IcmpType => &[0, 135],
        Metadata => &[0, 1, 2, 0x30, 0x31],
        Reg0 => &[0, 1, 2],
        _ => &[0],
    }
}

const KEY_FIELDS: &[Field] = &[
    Field::InPort,
    Field::EthType,
    Field::VlanTci,
    Field::EthDst,
    Field::EthSrc,
    Field::IpProto,
    Field::IpFrag,
    Field::IpTtl,
    Field::IpTos,
    Field::Ipv4Dst,
    Field::Ipv6Dst,
    Field::TpDst,
    Field::TunId,
    Field::TunIpv4Dst,
    Field::TunIpv6Dst,
    Field::IcmpType,
    Field::Metadata,
    Field::Reg0,
    // Read by the SELECT hash only.
    Field::Ipv4Src,
    Field::Ipv6Src,
    Field::TpSrc,
];

const MATCH_FIELDS: &[Field] = &[
    Field::InPort,
    Field::EthType,
    Field::VlanTci,
    Field::EthDst,
    Field::IpProto,
    Field::IpFrag,
    Field::IpTtl,
    Field::IpTos,
    Field::Ipv4Dst,
    Field::TpDst,
    Field::TunId,
    Field::Metadata,
    Field::Reg0,
];

const SET_FIELDS: &[Field] = &[
    Field::EthDst,
    Field::EthSrc,
    Field::Ipv4Dst,
    Field::Ipv4Src,
    Field::Ipv6Dst,
    Field::TpDst,
    Field::TpSrc,
    Field::VlanVid,
    Field::VlanPcp,
    Field::IpTtl,
    Field::IpTos,
    Field::IpDscp,
    Field::IcmpType,
    Field::Metadata,
    Field::Reg0,
    Field::TunId,
    Field::TunIpv4Dst,
    Field::TunIpv6Dst,
];

const OUT_PORTS: &[u32] = &[1, 2, 3, 4, 10, 11, 99];
/// Group ids the generator uses (rules and buckets name them; some are never added).
const GROUP_IDS: &[u32] = &[1, 2, 3, 4, 5, 6];

fn env(flags: u8) -> PortEnv {
    let mut env = PortEnv::default();
    for p in 1..=4u32 {
        let bit = 1 << (2 * (p - 1));
        env.add_port(p, flags & bit != 0 || p == 1, flags & (bit << 1) != 0);
    }
    let mut t4 = TunnelPortCfg::new(
        10,
        1,
        IpAddr::V4(Ipv4Addr::from(LOCAL4)),
        [2, 0, 0, 0, 0, 1],
    );
    t4.neighbors
        .insert(IpAddr::V4(Ipv4Addr::from(REMOTE4)), [2, 0, 0, 0, 0, 0xaa]);
    env.add_tunnel(t4);
    let mut t6 = TunnelPortCfg::new(
        11,
        2,
        IpAddr::V6(Ipv6Addr::from(LOCAL6)),
        [2, 0, 0, 0, 0, 2],
    );
    t6.remote_ip = Some(IpAddr::V6(Ipv6Addr::from(REMOTE6)));
    t6.vni = Some(7);
    t6.neighbors
        .insert(IpAddr::V6(Ipv6Addr::from(REMOTE6)), [2, 0, 0, 0, 0, 0xbb]);
    env.add_tunnel(t6);
    env
}

fn pick(f: Field, i: Index) -> u128 {
    let d = domain(f);
    d[i.index(d.len())]
}

/// One match constraint: (field, value index, mask kind, random bits).
fn arb_constraint() -> impl Strategy<Value = (Field, Index, u8, u128)> {
    (
        prop::sample::select(MATCH_FIELDS),
        any::<Index>(),
        0u8..4,
        any::<u128>(),
    )
}

fn constraint_into(m: &mut Match, (f, vi, kind, bits): (Field, Index, u8, u128)) {
    let full = f.full_mask();
    let mask = match kind {
        0 | 1 => full,
        // A few bit masks and prefixes per field, so rules share subtables (and tie).
        2 => [1, 2, 3, full >> 1, full ^ 1][(bits % 5) as usize] & full,
        _ => {
            let len = [f.bits() / 2, f.bits() - 1, 1][(bits % 3) as usize];
            (full >> (f.bits() - len)) << (f.bits() - len)
        }
    };
    m.set_masked(f, pick(f, vi), mask);
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => prop::sample::select(OUT_PORTS).prop_map(|p| Action::Output(OfPort::Port(p))),
        1 => Just(Action::Output(OfPort::InPort)),
        1 => Just(Action::Output(OfPort::Flood)),
        1 => Just(Action::Output(OfPort::All)),
        1 => Just(Action::Output(OfPort::Controller { max_len: 128 })),
        5 => (prop::sample::select(SET_FIELDS), any::<Index>())
            .prop_map(|(f, i)| Action::SetField { field: f, value: pick(f, i) }),
        1 => Just(Action::PushVlan { tpid: 0x8100 }),
        1 => Just(Action::PopVlan),
        2 => Just(Action::DecTtl),
        1 => prop::sample::select(&[5u64, 7, 1 << 30][..]).prop_map(|vni| Action::SetTunnel { vni }),
        4 => prop::sample::select(GROUP_IDS).prop_map(Action::Group),
    ]
}

/// A packet-out action: anything a rule may do, and output:TABLE.
fn arb_packet_out_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => arb_action(),
        1 => Just(Action::Output(OfPort::Table)),
    ]
}

#[derive(Debug, Clone)]
struct BucketGen {
    weight: u16,
    watch_port: Option<u32>,
    watch_group: Option<u32>,
    actions: Vec<Action>,
}

#[derive(Debug, Clone)]
struct GroupGen {
    id: u32,
    kind: GroupType,
    buckets: Vec<BucketGen>,
}

fn arb_bucket() -> impl Strategy<Value = BucketGen> {
    (
        prop::sample::select(&[0u16, 1, 2, 5][..]),
        // Ports 2-4 go up and down with the env flags, 1 is always up, 5 does not exist.
        prop::option::weighted(0.6, 1u32..=5),
        prop::option::weighted(0.3, prop::sample::select(GROUP_IDS)),
        prop::collection::vec(arb_action(), 0..4),
    )
        .prop_map(|(weight, watch_port, watch_group, actions)| BucketGen {
            weight,
            watch_port,
            watch_group,
            actions,
        })
}

fn arb_group() -> impl Strategy<Value = GroupGen> {
    (
        prop::sample::select(GROUP_IDS),
        prop::sample::select(
            &[
                GroupType::All,
                GroupType::Select,
                GroupType::Select,
                GroupType::Indirect,
                GroupType::FastFailover,
            ][..],
        ),
        prop::collection::vec(arb_bucket(), 0..5),
    )
        .prop_map(|(id, kind, buckets)| GroupGen { id, kind, buckets })
}

/// Shapes a generated group into one the pipeline accepts as far as its own fields go
/// (weights, watches, bucket count), keeping only references to groups in `known` (`None`:
/// keep them all, for a modify that may be refused as a loop).
fn group_spec(g: &GroupGen, known: Option<&[u32]>) -> GroupSpec {
    let keep = |id: u32| known.is_none_or(|k| k.contains(&id));
    let mut buckets: Vec<Bucket> = g
        .buckets
        .iter()
        .map(|b| {
            let mut out = Bucket::new(
                b.actions
                    .iter()
                    .copied()
                    .filter(|a| !matches!(a, Action::Group(x) if !keep(*x)))
                    .collect(),
            );
            if g.kind == GroupType::Select {
                out.weight = b.weight;
            }
            if g.kind.has_liveness() {
                out.watch_port = b.watch_port;
                out.watch_group = b.watch_group.filter(|x| keep(*x));
                if g.kind == GroupType::FastFailover && !out.is_watched() {
                    out.watch_port = Some(1 + b.weight as u32 % 5);
                }
            }
            out
        })
        .collect();
    if g.kind == GroupType::Indirect {
        buckets.truncate(1);
        if buckets.is_empty() {
            buckets.push(Bucket::new(vec![Action::Output(OfPort::Port(2))]));
        }
    }
    GroupSpec::new(g.id, g.kind, buckets)
}

#[derive(Debug, Clone)]
struct RuleGen {
    table: Index,
    priority: u16,
    constraints: Vec<(Field, Index, u8, u128)>,
    actions: Vec<Action>,
    goto: Option<Index>,
    metadata: Option<(u64, u64)>,
}

fn arb_rule() -> impl Strategy<Value = RuleGen> {
    (
        any::<Index>(),
        0u16..4,
        prop::collection::vec(arb_constraint(), 0..3),
        prop::collection::vec(arb_action(), 0..6),
        prop::option::of(any::<Index>()),
        prop::option::weighted(
            0.3,
            (
                prop::sample::select(&[0u64, 1, 0x30, 0x31][..]),
                prop::sample::select(&[0xffu64, 0xf0, 0x0f, u64::MAX][..]),
            ),
        ),
    )
        .prop_map(
            |(table, priority, constraints, actions, goto, metadata)| RuleGen {
                table,
                priority,
                constraints,
                actions,
                goto,
                metadata,
            },
        )
}

fn build(
    n_tables: usize,
    misses: &[u8],
    groups: &[GroupGen],
    modify: Option<&GroupGen>,
    rules: &[RuleGen],
) -> Pipeline {
    let mut p = Pipeline::new(n_tables).unwrap();
    for (t, m) in misses.iter().take(n_tables).enumerate() {
        let miss = [TableMiss::Drop, TableMiss::Controller, TableMiss::Continue][*m as usize % 3];
        p.set_table_miss(t as u8, miss).unwrap();
    }
    // Groups chain only to groups added before them (a duplicate id is refused), then one
    // modify may point anywhere (a loop is refused and leaves the pipeline as it was).
    for g in groups {
        let known: Vec<u32> = p.groups().map(|g| g.id).collect();
        let _ = p.group_add(group_spec(g, Some(&known)), 0);
    }
    if let Some(g) = modify {
        let v = p.version();
        if p.group_modify(group_spec(g, None)).is_err() {
            assert_eq!(p.version(), v, "a refused modify changes nothing");
        }
    }
    for r in rules {
        let table = r.table.index(n_tables) as u8;
        let mut m = Match::default();
        for c in &r.constraints {
            constraint_into(&mut m, *c);
        }
        let actions = r
            .actions
            .iter()
            .copied()
            .filter(|a| !matches!(a, Action::Group(g) if p.group(*g).is_none()))
            .collect();
        let mut ins = Instructions::apply(actions);
        ins.write_metadata = r.metadata;
        let later = n_tables - 1 - table as usize;
        if later > 0 {
            ins.goto_table = r.goto.map(|g| table + 1 + g.index(later) as u8);
        }
        p.add(
            RuleSpec::new(table, m, r.priority, ins),
            AddOptions::default(),
            0,
        )
        .unwrap();
    }
    p
}

/// splitmix64: the test's own deterministic randomness for the many `k2` per packet.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn key(&mut self) -> FlowKey {
        let mut k = FlowKey::ZERO;
        for &f in KEY_FIELDS {
            let d = domain(f);
            k.set(f, d[(self.next() % d.len() as u64) as usize]);
        }
        k
    }
    fn noise(&mut self) -> FlowKey {
        let mut k = FlowKey::ZERO;
        for w in k.w.iter_mut() {
            *w = self.next();
        }
        k
    }
}

fn force(rand: &FlowKey, m: &Match) -> FlowKey {
    let mut k = FlowKey::ZERO;
    for i in 0..KEY_WORDS {
        k.w[i] = (rand.w[i] & !m.mask().w[i]) | m.key().w[i];
    }
    k
}

/// Keys inside `m`: forced domain keys, forced noise, and domain keys that happen to match.
fn keys_inside(m: &Match, rng: &mut Rng, n: usize) -> Vec<FlowKey> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n / 2 {
        out.push(force(&rng.key(), m));
    }
    for _ in 0..n / 4 {
        out.push(force(&rng.noise(), m));
    }
    let mut tries = 0;
    while out.len() < n && tries < 64 * n {
        tries += 1;
        let k = rng.key();
        if m.matches(&k) {
            out.push(k);
        }
    }
    out
}

/// The first key inside `m` on which the actions disagree with the reference, if any.
fn counterexample(
    p: &Pipeline,
    env: &PortEnv,
    actions: &[DpAction],
    keys: &[FlowKey],
) -> Option<(FlowKey, Vec<Effect>, Vec<Effect>)> {
    counterexample_by(actions, keys, |k2| execute(p, env, k2))
}

fn counterexample_by(
    actions: &[DpAction],
    keys: &[FlowKey],
    reference: impl Fn(&FlowKey) -> Vec<Effect>,
) -> Option<(FlowKey, Vec<Effect>, Vec<Effect>)> {
    keys.iter().find_map(|k2| {
        let got = apply_dp(k2, actions);
        let want = reference(k2);
        (got != want).then_some((*k2, got, want))
    })
}

/// Checks one translation of `k` against `reference` on `k` and keys across its megaflow.
fn check_xlation(
    k: &FlowKey,
    x: &Xlation,
    rng: &mut Rng,
    reference: impl Fn(&FlowKey) -> Vec<Effect>,
) -> Result<(), TestCaseError> {
    prop_assert!(
        x.megaflow.matches(k),
        "megaflow {} does not match {:?}",
        x.megaflow,
        k
    );
    if x.truncated {
        // Chains of ALL groups can exceed MAX_ACTIONS; the drop is the documented outcome.
        return Ok(());
    }
    let mut keys = vec![*k];
    keys.extend(keys_inside(&x.megaflow, rng, 32));
    if let Some((k2, got, want)) = counterexample_by(&x.actions, &keys, reference) {
        prop_assert!(
            false,
            "k={k:?}\nmegaflow={}\nactions={}\nk2={k2:?}\ndatapath={got:#?}\nreference={want:#?}",
            x.megaflow,
            strato_flowtable::dpaction::ActionList(&x.actions)
        );
    }
    Ok(())
}

fn key_from(idx: &[Index]) -> FlowKey {
    let mut k = FlowKey::ZERO;
    for (&f, &i) in KEY_FIELDS.iter().zip(idx) {
        k.set(f, pick(f, i));
    }
    k
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn xlate_agrees_with_reference(
        n_tables in 1usize..=3,
        misses in prop::collection::vec(0u8..3, 3),
        flags in any::<u8>(),
        groups in prop::collection::vec(arb_group(), 0..8),
        modify in prop::option::weighted(0.5, arb_group()),
        rules in prop::collection::vec(arb_rule(), 0..30),
        packets in prop::collection::vec(prop::collection::vec(any::<Index>(), KEY_FIELDS.len()), 8),
        packet_outs in prop::collection::vec(
            (prop::collection::vec(arb_packet_out_action(), 0..6), any::<bool>()),
            4,
        ),
        seed in any::<u64>(),
    ) {
        let p = build(n_tables, &misses, &groups, modify.as_ref(), &rules);
        let env = env(flags);
        let mut rng = Rng(seed);
        for idx in &packets {
            let k = key_from(idx);
            let x = xlate(&p, &env, &k);
            check_xlation(&k, &x, &mut rng, |k2| execute(&p, &env, k2))?;
        }
        // Packet-outs of the same packets (groups named by no added group are dropped from the
        // list, as the channel would refuse them).
        for (i, (actions, from_controller)) in packet_outs.iter().enumerate() {
            let actions: Vec<Action> = actions
                .iter()
                .copied()
                .filter(|a| !matches!(a, Action::Group(g) if p.group(*g).is_none()))
                .collect();
            let mut k = key_from(&packets[i]);
            if *from_controller {
                k.set(Field::InPort, IN_PORT_CONTROLLER as u128);
            }
            let x = xlate_actions(&p, &env, &k, &actions);
            check_xlation(&k, &x, &mut rng, |k2| execute_actions(&p, &env, k2, &actions))?;
        }
    }
}

/// The generator is not vacuous for groups: over many generated pipelines and packets,
/// translations go through every group type, SELECT groups hash, few translations are
/// truncated, and packet-outs run the pipeline through output:TABLE.
#[test]
fn generator_exercises_groups() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let case = (
        prop::collection::vec(arb_group(), 0..8),
        prop::collection::vec(arb_rule(), 0..30),
        any::<u8>(),
    );
    let (mut by_kind, mut hashed, mut truncated, mut translations) = ([0usize; 4], 0, 0, 0);
    let mut table_runs = 0;
    for _ in 0..300 {
        let (groups, rules, flags) = case.new_tree(&mut runner).unwrap().current();
        let p = build(2, &[2, 0, 0], &groups, None, &rules);
        let env = env(flags);
        let mut rng = Rng(flags as u64);
        for _ in 0..8 {
            let k = rng.key();
            let x = xlate(&p, &env, &k);
            translations += 1;
            truncated += x.truncated as usize;
            for g in &x.groups {
                let kind = p.group(*g).unwrap().kind;
                by_kind[kind as usize] += 1;
            }
            // A SELECT hash un-wildcards eth_src, which no rule matches or sets... except
            // set-field; count translations whose mask has it.
            if x.megaflow.mask().get(Field::EthSrc) != 0 {
                hashed += 1;
            }
            let po = xlate_actions(&p, &env, &k, &[Action::Output(OfPort::Table)]);
            table_runs += !po.rules.is_empty() as usize;
        }
    }
    println!(
        "{translations} translations: groups by kind (all, select, indirect, ff) {by_kind:?}, \
         {hashed} hashed, {truncated} truncated, {table_runs} packet-outs matched rules"
    );
    assert!(by_kind.iter().all(|&n| n > 100), "{by_kind:?}");
    assert!(hashed > 50, "{hashed}");
    assert!(
        truncated * 50 < translations,
        "{truncated} of {translations}"
    );
    assert!(table_runs > 100, "{table_runs}");
}

/// The check is not vacuous: drop one consulted bit from a correct megaflow and a key on the
/// other side of that bit exposes it.
#[test]
fn narrowed_mask_is_caught() {
    let mut p = Pipeline::new(1).unwrap();
    p.add(
        RuleSpec::new(
            0,
            Match::default().with(Field::EthDst, 2),
            10,
            Instructions::apply(vec![Action::Output(OfPort::Port(2))]),
        ),
        AddOptions::default(),
        0,
    )
    .unwrap();
    p.add(
        RuleSpec::new(
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::Output(OfPort::Port(3))]),
        ),
        AddOptions::default(),
        0,
    )
    .unwrap();
    let env = env(0xff);
    let mut k = FlowKey::ZERO;
    k.set(Field::InPort, 1);
    k.set(Field::EthDst, 2);
    let x = xlate(&p, &env, &k);
    assert_eq!(x.actions, vec![DpAction::Output(2)]);
    let mut rng = Rng(1);
    let keys = keys_inside(&x.megaflow, &mut rng, 64);
    assert!(counterexample(&p, &env, &x.actions, &keys).is_none());
    // Release bit 1 of eth_dst (the set bit of value 2).
    let mut narrowed_mask = *x.megaflow.mask();
    narrowed_mask.set(Field::EthDst, Field::EthDst.full_mask() & !2);
    let narrowed = Match::new(k, narrowed_mask);
    let keys = keys_inside(&narrowed, &mut rng, 64);
    let (k2, got, want) =
        counterexample(&p, &env, &x.actions, &keys).expect("a key across the dropped bit");
    assert_eq!(k2.get(Field::EthDst), 0);
    assert_ne!(got, want);

    // The same for a bit consulted by an action rather than a lookup: dec_ttl needs eth_type.
    let mut p = Pipeline::new(1).unwrap();
    p.add(
        RuleSpec::new(
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::DecTtl, Action::Output(OfPort::Port(2))]),
        ),
        AddOptions::default(),
        0,
    )
    .unwrap();
    let mut k = FlowKey::ZERO;
    k.set(Field::InPort, 1);
    k.set(Field::EthType, 0x0806);
    k.set(Field::IpTtl, 5);
    let x = xlate(&p, &env, &k);
    assert_eq!(x.actions, vec![DpAction::Output(2)], "no dec_ttl on ARP");
    assert_eq!(x.megaflow.field(Field::EthType), (0x0806, 0xffff));
    let mut m = *x.megaflow.mask();
    m.set(Field::EthType, 0xffff & !0x0006); // releases the bits that tell 0x0806 from 0x0800
    let narrowed = Match::new(k, m);
    let mut ip = k;
    ip.set(Field::EthType, 0x0800);
    assert!(narrowed.matches(&ip));
    assert!(counterexample(&p, &env, &x.actions, &[ip]).is_some());
}
