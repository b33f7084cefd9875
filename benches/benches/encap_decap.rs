//! Criterion micro-bench of action execution (`strato_datapath::exec`), ns per 64-byte frame:
//! - `tunnel_push/ipv4` (UDP checksum off, the default), `tunnel_push/ipv4_csum`,
//!   `tunnel_push/ipv6` (checksum always computed): encapsulation into the headroom;
//! - `tunnel_pop/ipv4`, `tunnel_pop/ipv4_csum`, `tunnel_pop/ipv6`: validation and strip of the
//!   frames the pushes produce (checksum verified when present);
//! - `set_field/ipv4_dst_udp`: rewrite of the IPv4 destination with IP and UDP checksum
//!   updates.
//!
//! Each timed iteration undoes its work with a constant-time buffer move (`pull_head` after a
//! push, `push_head` after a pop, which leaves the stripped bytes in place), so no frame copy is
//! timed. The inner frame is built with etherparse once, outside the timed loop.

use criterion::{criterion_group, criterion_main, Criterion};
use etherparse::PacketBuilder;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use strato_datapath::buf::Buf;
use strato_datapath::exec::{set_field, tunnel_pop, tunnel_push};
use strato_flowtable::key::Field;
use strato_flowtable::tunnel::{TunnelParams, TunnelPush, VXLAN_PORT};

/// A 64-byte IPv4/UDP frame (without FCS).
fn inner() -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(12345, 80);
    let mut f = Vec::new();
    b.write(&mut f, &[0xab; 64 - 42]).expect("frame");
    assert_eq!(f.len(), 64);
    f
}

fn tunnel(v6: bool, udp_csum: bool) -> TunnelPush {
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (
            "2001:db8::1".parse::<Ipv6Addr>().expect("addr").into(),
            "2001:db8::2".parse::<Ipv6Addr>().expect("addr").into(),
        )
    } else {
        (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(192, 0, 2, 2).into(),
        )
    };
    TunnelPush::new(
        1,
        2,
        TunnelParams {
            vni: 5001,
            src_mac: [2, 0, 0, 0, 0, 0xa],
            dst_mac: [2, 0, 0, 0, 0, 0xb],
            src_ip: src,
            dst_ip: dst,
            ttl: 64,
            tos: 0,
            dst_port: VXLAN_PORT,
            udp_csum,
        },
    )
    .expect("tunnel")
}

const CASES: [(&str, bool, bool); 3] = [
    ("ipv4", false, false),
    ("ipv4_csum", false, true),
    ("ipv6", true, true),
];

fn bench(c: &mut Criterion) {
    let frame = inner();

    let mut g = c.benchmark_group("tunnel_push");
    for (name, v6, csum) in CASES {
        let t = tunnel(v6, csum);
        let n = t.header.len as usize;
        let mut b = Buf::new();
        b.fill(&frame).expect("fill");
        let mut hash = 0u32;
        g.bench_function(name, |bn| {
            bn.iter(|| {
                hash = hash.wrapping_add(0x9e37_79b9);
                tunnel_push(black_box(&mut b), black_box(&t), hash).expect("push");
                b.pull_head(n);
            })
        });
        assert_eq!(b.data(), &frame[..]);
    }
    g.finish();

    let mut g = c.benchmark_group("tunnel_pop");
    for (name, v6, csum) in CASES {
        let t = tunnel(v6, csum);
        let n = t.header.len as usize;
        let mut b = Buf::new();
        b.fill(&frame).expect("fill");
        tunnel_push(&mut b, &t, 7).expect("push");
        let encap = b.data().to_vec();
        g.bench_function(name, |bn| {
            bn.iter(|| {
                let m = tunnel_pop(black_box(&mut b), VXLAN_PORT).expect("pop");
                black_box(m);
                b.push_head(n);
            })
        });
        assert_eq!(b.data(), &encap[..]);
    }
    g.finish();

    let mut g = c.benchmark_group("set_field");
    let mut b = Buf::new();
    b.fill(&frame).expect("fill");
    let mut i = 0u32;
    g.bench_function("ipv4_dst_udp", |bn| {
        bn.iter(|| {
            i = i.wrapping_add(1);
            let v = 0x0a00_0002 + (i & 1);
            set_field(black_box(&mut b), Field::Ipv4Dst, v as u128).expect("set");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
