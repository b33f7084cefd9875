//! Criterion micro-bench of the fast key extractor (`strato_datapath::extract::extract`): ns per
//! frame, extracting into a reused `PacketKey` as a worker does, for
//! - `ipv4_udp`, `ipv4_tcp`, `vlan_ipv4_udp`, `arp`: 64-byte frames (without FCS; ARP padded);
//! - `ipv6_tcp`: the smallest IPv6/TCP frame, 74 bytes (IPv6 and TCP headers do not fit in 64).
//!
//! Frames are built with etherparse's `PacketBuilder` once, outside the timed loop.

use criterion::{criterion_group, criterion_main, Criterion};
use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, EtherType, PacketBuilder, VlanId};
use std::hint::black_box;
use strato_datapath::extract::extract;
use strato_flowtable::key::PacketKey;

const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const FRAME: usize = 64;

/// Payload that brings a frame with `headers` bytes of headers to 64 bytes (or none).
fn fill(headers: usize) -> Vec<u8> {
    vec![0xab; FRAME.saturating_sub(headers)]
}

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();

    let b = PacketBuilder::ethernet2(SRC, DST)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(12345, 4789);
    let p = fill(b.size(0));
    let mut f = Vec::new();
    b.write(&mut f, &p).expect("ipv4/udp");
    out.push(("ipv4_udp", f));

    let b = PacketBuilder::ethernet2(SRC, DST)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 80, 1, 65535)
        .ack(1);
    let p = fill(b.size(0));
    let mut f = Vec::new();
    b.write(&mut f, &p).expect("ipv4/tcp");
    out.push(("ipv4_tcp", f));

    let b = PacketBuilder::ethernet2(SRC, DST)
        .single_vlan(VlanId::try_new(100).expect("vid"))
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(12345, 53);
    let p = fill(b.size(0));
    let mut f = Vec::new();
    b.write(&mut f, &p).expect("vlan/ipv4/udp");
    out.push(("vlan_ipv4_udp", f));

    let b = PacketBuilder::ethernet2(SRC, DST)
        .ipv6([0xfe; 16], [0xfd; 16], 64)
        .tcp(40000, 443, 1, 65535)
        .syn();
    let mut f = Vec::new();
    b.write(&mut f, &[]).expect("ipv6/tcp");
    out.push(("ipv6_tcp", f));

    let arp = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        ArpOperation::REQUEST,
        &SRC,
        &[10, 0, 0, 1],
        &[0; 6],
        &[10, 0, 0, 2],
    )
    .expect("arp");
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, [0xff; 6])
        .arp(arp)
        .write(&mut f)
        .expect("arp");
    f.resize(FRAME, 0); // Ethernet padding
    out.push(("arp", f));
    out
}

fn bench_extract(c: &mut Criterion) {
    let mut g = c.benchmark_group("extract");
    for (name, frame) in frames() {
        let mut key = PacketKey::default();
        // Sanity outside the timed loop: the frame parses cleanly.
        let info = extract(&frame, 1, None, &mut key).expect("frame >= 14 bytes");
        assert!(!info.malformed, "{name} is malformed");
        g.bench_function(name, |b| {
            b.iter(|| extract(black_box(&frame), black_box(1), None, black_box(&mut key)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_extract);
criterion_main!(benches);
