//! Fuzz target for `strato_datapath::exec`: arbitrary bytes as a frame through `tunnel_pop`,
//! `set_field` (every field), `dec_ttl`, `pop_vlan` and `push_vlan`, plus valid VXLAN frames
//! (built with `tunnel_push` around the arbitrary bytes) with one byte flipped, so the deeper
//! checks of `tunnel_pop` are reached. Properties: nothing panics; every error leaves the buffer
//! unchanged; successes change lengths only as documented.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use strato_datapath::buf::{Buf, MAX_FRAME};
use strato_datapath::exec::{dec_ttl, pop_vlan, push_vlan, set_field, tunnel_pop, tunnel_push};
use strato_flowtable::key::Field;
use strato_flowtable::tunnel::{TunnelParams, TunnelPush, VXLAN_PORT};

/// Control bytes in front of the frame.
const CTL: usize = 24;

fuzz_target!(|data: &[u8]| {
    if data.len() < CTL {
        return;
    }
    let (ctl, frame) = data.split_at(CTL);
    if frame.len() > MAX_FRAME - 100 {
        return;
    }
    let mut b = Buf::new();

    // tunnel_pop on the raw bytes.
    b.fill(frame).unwrap();
    let port = if ctl[0] & 1 == 0 {
        VXLAN_PORT
    } else {
        u16::from_be_bytes([ctl[1], ctl[2]])
    };
    match tunnel_pop(&mut b, port) {
        Ok(_) => assert!(b.len() >= 14 && b.len() + 50 <= frame.len()),
        Err(_) => assert_eq!(b.data(), frame),
    }

    // set_field, any field, any value.
    b.fill(frame).unwrap();
    let field = Field::ALL[ctl[3] as usize % Field::ALL.len()];
    let mut v = [0u8; 16];
    v.copy_from_slice(&ctl[4..20]);
    match set_field(&mut b, field, u128::from_le_bytes(v)) {
        Ok(()) => assert_eq!(b.len(), frame.len()),
        Err(_) => assert_eq!(b.data(), frame),
    }

    // dec_ttl
    b.fill(frame).unwrap();
    match dec_ttl(&mut b) {
        Ok(()) => assert_eq!(b.len(), frame.len()),
        Err(_) => assert_eq!(b.data(), frame),
    }

    // pop_vlan / push_vlan
    b.fill(frame).unwrap();
    pop_vlan(&mut b);
    assert!(b.len() == frame.len() || b.len() + 4 == frame.len());
    b.fill(frame).unwrap();
    match push_vlan(&mut b, 0x8100, u16::from_le_bytes([ctl[20], ctl[21]])) {
        Ok(()) => {
            assert_eq!(b.len(), frame.len() + 4);
            pop_vlan(&mut b);
            assert_eq!(b.data(), frame);
        }
        Err(_) => assert_eq!(b.data(), frame),
    }

    // A valid encapsulation of the bytes, with at most one byte flipped.
    let v6 = ctl[0] & 2 != 0;
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (
            Ipv6Addr::from([ctl[4]; 16]).into(),
            Ipv6Addr::from([ctl[5]; 16]).into(),
        )
    } else {
        (
            Ipv4Addr::from([ctl[4]; 4]).into(),
            Ipv4Addr::from([ctl[5]; 4]).into(),
        )
    };
    let t = TunnelPush::new(
        1,
        2,
        TunnelParams {
            vni: u32::from_le_bytes([ctl[6], ctl[7], ctl[8], 0]),
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: src,
            dst_ip: dst,
            ttl: ctl[9],
            tos: ctl[10],
            dst_port: VXLAN_PORT,
            udp_csum: ctl[0] & 4 != 0,
        },
    )
    .unwrap();
    b.fill(frame).unwrap();
    tunnel_push(
        &mut b,
        &t,
        u32::from_le_bytes([ctl[11], ctl[12], ctl[13], ctl[14]]),
    )
    .unwrap();
    if ctl[15] != 0 {
        let at = u16::from_le_bytes([ctl[16], ctl[17]]) as usize % b.len();
        b.data_mut()[at] ^= ctl[15];
    }
    let encap = b.data().to_vec();
    match tunnel_pop(&mut b, VXLAN_PORT) {
        Ok(m) => {
            assert_eq!(b.len() + t.header.len as usize, encap.len());
            if ctl[15] == 0 {
                assert_eq!(b.data(), frame);
                assert_eq!(m.tun_id, t.params.vni as u64);
            }
        }
        Err(_) => {
            assert_eq!(b.data(), &encap[..]);
            // unflipped encapsulations of >= 14-byte frames always decapsulate
            assert!(ctl[15] != 0 || frame.len() < 14);
        }
    }
});
