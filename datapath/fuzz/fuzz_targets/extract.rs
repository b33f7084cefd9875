//! Fuzz target for `strato_datapath::extract::extract`: arbitrary bytes must never panic, and
//! the resulting packet key must keep its invariants (hash over the map, non-zero words inside
//! the map, base words always mapped, same result into a reused key), with and without tunnel
//! metadata.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strato_datapath::extract::{extract, TunnelMeta};
use strato_datapath::DropReason;
use strato_flowtable::key::PacketKey;

fn check(frame: &[u8], tun: Option<&TunnelMeta>, reused: &mut PacketKey) {
    let mut fresh = PacketKey::default();
    let got = extract(frame, 3, tun, &mut fresh);
    assert_eq!(got, extract(frame, 3, tun, reused));
    match got {
        Err(e) => {
            assert_eq!(e, DropReason::TruncatedEthernet);
            assert!(frame.len() < 14);
        }
        Ok(_) => {
            assert!(frame.len() >= 14);
            assert_eq!(fresh.hash, fresh.key.hash_map(fresh.map));
            assert_eq!(fresh.key.nonzero_map() & !fresh.map, 0);
            assert_eq!(fresh.map & 0b111, 0b111);
            assert_eq!(fresh.map & (0b11_1111 << 5) != 0, tun.is_some());
            assert!(reused.same_flow(&fresh) && reused.key == fresh.key);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes (when present) seed the tunnel metadata; the frame is the rest, and
    // also the whole input, so that short inputs still reach the Ethernet checks.
    let (seed, frame) = data.split_at(data.len().min(8));
    let mut s = [0u8; 8];
    s[..seed.len()].copy_from_slice(seed);
    let v = u64::from_le_bytes(s);
    let tun = TunnelMeta {
        tun_id: v & 0xff_ffff,
        ipv4_src: v as u32,
        ipv4_dst: (v >> 32) as u32,
        ipv6_src: (v as u128) << 64 | 1,
        ipv6_dst: v as u128,
    };
    // A key reused across the calls, as a worker reuses its burst's keys.
    let mut reused = PacketKey::default();
    check(data, None, &mut reused);
    check(frame, Some(&tun), &mut reused);
    check(frame, None, &mut reused);
    check(data, Some(&tun), &mut reused);
});
