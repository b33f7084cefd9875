//! xlate and pipeline micro-benches:
//! - `xlate/l2_1000`: one table of 1,000 `eth_dst` rules, one packet translated;
//! - `xlate/3_tables_10_masks`: in_port -> metadata + goto, then an ACL table with 10 masks,
//!   then an L2 table matching metadata + eth_dst;
//! - `pipeline/add_100k`: 100,000 flow adds into an empty pipeline (throughput = adds/s).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use strato_flowtable::pipeline::{
    Action, AddOptions, Instructions, OfPort, Pipeline, PortEnv, RuleSpec,
};
use strato_flowtable::xlate::{xlate_into, Xlation};
use strato_flowtable::{Field, FlowKey, Match};

fn env() -> PortEnv {
    let mut e = PortEnv::default();
    for p in 1..=8 {
        e.add_port(p, true, true);
    }
    e
}

fn l2_rule(table: u8, i: u64, with_md: bool) -> RuleSpec {
    let mut m = Match::default().with(Field::EthDst, 0x0200_0000_0000 | i as u128);
    if with_md {
        m.set(Field::Metadata, 1);
    }
    RuleSpec::new(
        table,
        m,
        100,
        Instructions::apply(vec![Action::Output(OfPort::Port((i % 8) as u32 + 1))]),
    )
}

fn packet(mac: u64) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::InPort, 1);
    k.set(Field::EthDst, 0x0200_0000_0000 | mac as u128);
    k.set(Field::EthSrc, 0x0200_0000_0fff);
    k.set(Field::EthType, 0x0800);
    k.set(Field::IpProto, 6);
    k.set(Field::Ipv4Src, 0x0a00_0001);
    k.set(Field::Ipv4Dst, 0x0a00_0102);
    k.set(Field::IpTtl, 64);
    k.set(Field::TpSrc, 33000);
    k.set(Field::TpDst, 80);
    k
}

fn three_tables() -> Pipeline {
    let mut p = Pipeline::new(3).unwrap();
    let add = |p: &mut Pipeline, s: RuleSpec| {
        p.add(s, AddOptions::default(), 0).unwrap();
    };
    for port in 1..=8u128 {
        add(
            &mut p,
            RuleSpec::new(
                0,
                Match::default().with(Field::InPort, port),
                10,
                Instructions::default().metadata(1, u64::MAX).goto(1),
            ),
        );
    }
    // Ten masks in the ACL table: IPv4 destination prefixes /8../32 in steps of 3 (9 masks)
    // plus one 5-tuple-ish mask; the low-priority catch-all passes to L2.
    for (i, len) in (8..=32).step_by(3).enumerate() {
        let mut m = Match::default().with(Field::EthType, 0x0800);
        m.set_prefix(Field::Ipv4Dst, 0xc0a8_0000 + i as u128, len)
            .unwrap();
        add(
            &mut p,
            RuleSpec::new(1, m, 100 + len as u16, Instructions::default()),
        );
    }
    let m = Match::default()
        .with(Field::EthType, 0x0800)
        .with(Field::IpProto, 6)
        .with(Field::TpDst, 22);
    add(&mut p, RuleSpec::new(1, m, 200, Instructions::default()));
    add(
        &mut p,
        RuleSpec::new(1, Match::CATCH_ALL, 0, Instructions::default().goto(2)),
    );
    for i in 0..1_000 {
        add(&mut p, l2_rule(2, i, true));
    }
    p
}

fn bench(c: &mut Criterion) {
    let env = env();
    let mut g = c.benchmark_group("xlate");
    let mut p = Pipeline::new(1).unwrap();
    for i in 0..1_000 {
        p.add(l2_rule(0, i, false), AddOptions::default(), 0)
            .unwrap();
    }
    let k = packet(500);
    let mut x = Xlation::default();
    g.bench_function("l2_1000", |b| {
        b.iter(|| {
            xlate_into(&p, &env, black_box(&k), &mut x);
            black_box(x.actions.len())
        })
    });
    let p3 = three_tables();
    xlate_into(&p3, &env, &k, &mut x);
    assert_eq!(x.rules.len(), 3, "the packet crosses all three tables");
    g.bench_function("3_tables_10_masks", |b| {
        b.iter(|| {
            xlate_into(&p3, &env, black_box(&k), &mut x);
            black_box(x.actions.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(100_000));
    let specs: Vec<RuleSpec> = (0..100_000).map(|i| l2_rule(0, i, false)).collect();
    g.bench_function("add_100k", |b| {
        b.iter_batched(
            || (Pipeline::new(1).unwrap(), specs.clone()),
            |(mut p, specs)| {
                for s in specs {
                    p.add(s, AddOptions::default(), 0).unwrap();
                }
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
