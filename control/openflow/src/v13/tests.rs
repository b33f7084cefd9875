//! Message-level tests of the 1.3 codec on hand-written byte arrays: round trips, typed
//! fields, inner length checks, raw fallbacks and errors.

use super::*;
use crate::{OfError, Reader};
use serde_json::json;
use std::net::Ipv6Addr;

fn roundtrip(b: &[u8]) -> Message {
    let m = Message::parse(b).unwrap();
    assert_eq!(m.emit(), b);
    m
}

#[test]
fn hello_with_version_bitmap() {
    let b = [4, 0, 0, 16, 0, 0, 0, 9, 0, 1, 0, 8, 0x40, 0, 0x06, 0x0e];
    let m = roundtrip(&b);
    assert_eq!(m.xid, 9);
    assert_eq!(
        m.body,
        Body::Hello(vec![HelloElem::VersionBitmap(vec![0x4000_060e])])
    );
    let j = m.to_ryu_json().unwrap();
    assert_eq!(
        j["OFPHello"]["elements"][0]["OFPHelloElemVersionBitmap"]["versions"],
        json!([1, 2, 3, 9, 10, 30])
    );
    // Element length beyond the message.
    assert!(matches!(
        Message::parse(&[4, 0, 0, 12, 0, 0, 0, 0, 0, 1, 0, 8]),
        Err(OfError::Truncated { .. })
    ));
    assert!(matches!(
        Message::parse(&[4, 0, 0, 12, 0, 0, 0, 0, 0, 1, 0, 2]),
        Err(OfError::BadLength { .. })
    ));
}

/// flow_mod: match in_port=1, eth_dst masked; apply_actions(set_field vlan_vid, output 2),
/// goto_table 3.
const FLOW_MOD: [u8; 112] = [
    4, 14, 0, 112, 0, 0, 0, 1, // header
    0, 0, 0, 0, 0, 0, 0, 0xab, // cookie
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // cookie mask
    1, 0, 0, 10, 0, 20, 0x80, 0, // table 1, add, idle 10, hard 20, priority 0x8000
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0xff, 0xff, 0xff, 0xff, 0, 1, 0,
    0, // buffer, out_port, out_group, flags
    0, 1, 0, 28, // match type 1, length 28
    0x80, 0, 0, 4, 0, 0, 0, 1, // in_port 1
    0x80, 0, 7, 12, 1, 2, 3, 4, 5, 6, 0xff, 0xff, 0xff, 0, 0, 0, // eth_dst/mask
    0, 0, 0, 0, // match padding
    0, 4, 0, 32, 0, 0, 0, 0, // apply_actions, len 32
    0, 25, 0, 16, 0x80, 0, 12, 2, 0x10, 0x05, 0, 0, 0, 0, 0, 0, // set_field vlan_vid 0x1005
    0, 0, 0, 8, 0, 0, 0, 2, // output port 2 ... continues
];

fn flow_mod_bytes() -> Vec<u8> {
    // The output action is 16 bytes; the const above holds its first 8, add the rest and goto.
    let mut b = FLOW_MOD.to_vec();
    let out_len = b.len() - 8;
    b.truncate(out_len);
    b.extend_from_slice(&[0, 0, 0, 16, 0, 0, 0, 2, 0xff, 0xe5, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&[0, 1, 0, 8, 3, 0, 0, 0]);
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    // apply_actions (at offset 80) length: 8 + 16 + 16
    b[82..84].copy_from_slice(&40u16.to_be_bytes());
    b
}

#[test]
fn flow_mod_typed() {
    let b = flow_mod_bytes();
    let m = roundtrip(&b);
    let Body::FlowMod(f) = &m.body else {
        panic!("not a flow_mod: {m:?}")
    };
    assert_eq!(
        (
            f.cookie,
            f.table_id,
            f.idle_timeout,
            f.hard_timeout,
            f.priority
        ),
        (0xab, 1, 10, 20, 0x8000)
    );
    assert_eq!(
        (f.out_port, f.out_group, f.flags),
        (0xffff_fffc, 0xffff_ffff, 1)
    );
    assert_eq!(
        f.match_.fields,
        vec![
            Oxm::basic(OxmField::InPort, 1),
            Oxm::Basic {
                field: OxmField::EthDst,
                value: 0x0102_0304_0506,
                mask: Some(0xffff_ff00_0000)
            },
        ]
    );
    assert_eq!(
        f.instructions,
        vec![
            Instruction::ApplyActions(vec![
                Action::SetField(Oxm::basic(OxmField::VlanVid, 0x1005)),
                Action::Output {
                    port: 2,
                    max_len: 0xffe5
                },
            ]),
            Instruction::GotoTable(3),
        ]
    );
    let j = m.to_ryu_json().unwrap();
    assert_eq!(
        j["OFPFlowMod"]["match"]["OFPMatch"]["oxm_fields"][1]["OXMTlv"]["mask"],
        json!("ff:ff:ff:00:00:00")
    );
}

#[test]
fn inner_lengths_are_checked() {
    let good = flow_mod_bytes();
    // Match length pointing past the message.
    let mut b = good.clone();
    b[50..52].copy_from_slice(&200u16.to_be_bytes());
    assert!(
        matches!(Message::parse(&b), Err(OfError::Truncated { .. })),
        "{:?}",
        Message::parse(&b)
    );
    // Instruction length past the end.
    let mut b = good.clone();
    b[82..84].copy_from_slice(&400u16.to_be_bytes());
    assert!(matches!(Message::parse(&b), Err(OfError::Truncated { .. })));
    // Action length 0 inside apply_actions.
    let mut b = good.clone();
    b[90..92].copy_from_slice(&0u16.to_be_bytes());
    assert!(
        matches!(Message::parse(&b), Err(OfError::BadLength { .. })),
        "{:?}",
        Message::parse(&b)
    );
    // Header length disagreeing with the bytes.
    let mut b = good.clone();
    b.push(0);
    assert!(matches!(Message::parse(&b), Err(OfError::BadLength { .. })));
    assert!(matches!(
        Message::parse(&good[..good.len() - 1]),
        Err(OfError::Truncated { .. })
    ));
}

#[test]
fn odd_actions_are_kept_raw() {
    // packet_out: unknown action type 99, output with non-zero padding, then 2 data bytes.
    let b = [
        4, 13, 0, 50, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 24, 0, 0, 0, 0, 0,
        0, // header .. pad
        0, 99, 0, 8, 1, 2, 3, 4, // unknown
        0, 0, 0, 16, 0, 0, 0, 2, 0, 0, 9, 9, 9, 9, 9, 9, // output, odd padding
        0xaa, 0xbb,
    ];
    let m = roundtrip(&b);
    let Body::PacketOut(p) = &m.body else {
        panic!("{m:?}")
    };
    assert_eq!(
        p.actions[0],
        Action::Unknown {
            type_: 99,
            body: vec![1, 2, 3, 4]
        }
    );
    assert!(matches!(p.actions[1], Action::Unknown { type_: 0, .. }));
    assert_eq!(p.data, [0xaa, 0xbb]);
    // actions_len past the end.
    let mut c = b;
    c[16..18].copy_from_slice(&100u16.to_be_bytes());
    assert!(matches!(Message::parse(&c), Err(OfError::Truncated { .. })));
}

#[test]
fn errors_and_raw_types() {
    let b = [
        4, 1, 0, 20, 0, 0, 0, 3, 0xff, 0xff, 0, 7, 0, 0, 0, 42, b'a', b'b', b'c', b'd',
    ];
    let m = roundtrip(&b);
    assert_eq!(
        m.body,
        Body::Error(ErrorMsg::Experimenter {
            exp_type: 7,
            experimenter: 42,
            data: b"abcd".to_vec()
        })
    );
    // meter_mod (29) is raw; 30 is not an OpenFlow 1.3 type.
    let m = roundtrip(&[4, 29, 0, 10, 0, 0, 0, 1, 5, 6]);
    assert_eq!(
        m.body,
        Body::Other {
            type_: 29,
            body: vec![5, 6]
        }
    );
    assert_eq!(m.to_ryu_json(), None);
    assert_eq!(
        Message::parse(&[4, 30, 0, 8, 0, 0, 0, 1]),
        Err(OfError::BadType(30))
    );
    assert_eq!(
        Message::parse(&[1, 0, 0, 8, 0, 0, 0, 1]),
        Err(OfError::BadVersion(1))
    );
    // Unknown multipart type (meter stats, 9) is raw as a whole.
    let b = [
        4, 18, 0, 24, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
    ];
    assert!(matches!(roundtrip(&b).body, Body::Other { type_: 18, .. }));
    // Port stats request.
    let b = [
        4, 18, 0, 24, 0, 0, 0, 1, 0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0,
    ];
    assert_eq!(
        roundtrip(&b).body,
        Body::MultipartRequest {
            flags: 1,
            body: MultipartRequest::PortStats(7)
        }
    );
}

#[test]
fn oxm_raw_and_ipv6() {
    // Nicira reg0 (class 1, field 0) and an IPv6 src with a wrong length stay raw.
    let b = [0, 1, 0, 4, 0, 0, 0x12, 0x34, 0x80, 0, 0x34, 2, 0xfe, 0x80];
    let mut r = Reader::new(&b);
    let a = Oxm::parse(&mut r).unwrap();
    let c = Oxm::parse(&mut r).unwrap();
    assert_eq!(
        a,
        Oxm::Raw {
            class: 1,
            field: 0,
            hasmask: false,
            payload: vec![0, 0, 0x12, 0x34]
        }
    );
    assert!(matches!(
        c,
        Oxm::Raw {
            class: 0x8000,
            field: 26,
            ..
        }
    ));
    let v6 = Oxm::basic(
        OxmField::Ipv6Src,
        u128::from(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
    );
    assert_eq!(v6.to_ryu_json()["OXMTlv"]["value"], json!("fe80::1"));
    let mut o = Vec::new();
    v6.emit(&mut o);
    assert_eq!(Oxm::parse(&mut Reader::new(&o)).unwrap(), v6);
    assert_eq!(base64(b"hoge"), "aG9nZQ==");
    assert_eq!(base64(b"fugafuga"), "ZnVnYWZ1Z2E=");
}

#[test]
fn group_mod_buckets_and_padding_errors() {
    // group_mod add, type select (1), group 5; one bucket (weight 0, watch any) with output 2.
    let b = [
        4, 15, 0, 48, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 5, // header, command, type, group
        0, 32, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, // bucket
        0, 0, 0, 16, 0, 0, 0, 2, 0xff, 0xff, 0, 0, 0, 0, 0, 0, // output 2
    ];
    let m = roundtrip(&b);
    assert_eq!(
        m.body,
        Body::GroupMod(GroupMod {
            command: 0,
            type_: 1,
            group_id: 5,
            buckets: vec![Bucket {
                weight: 0,
                watch_port: 0xffff_ffff,
                watch_group: 0xffff_ffff,
                actions: vec![Action::Output {
                    port: 2,
                    max_len: 0xffff
                }],
            }],
        })
    );
    assert_eq!(
        m.to_ryu_json().unwrap()["OFPGroupMod"]["buckets"][0]["OFPBucket"]["len"],
        json!(32)
    );
    // Non-zero bucket padding.
    let mut c = b;
    c[28] = 1;
    assert_eq!(
        Message::parse(&c),
        Err(OfError::NonZeroPadding {
            what: "bucket padding"
        })
    );
    // A bucket shorter than its fixed part.
    let mut c = b;
    c[17] = 8;
    assert_eq!(
        Message::parse(&c),
        Err(OfError::BadLength {
            what: "bucket",
            length: 8
        })
    );
    // Non-zero match padding in a flow_mod.
    let mut f = flow_mod_bytes();
    f[77] = 1;
    assert_eq!(
        Message::parse(&f),
        Err(OfError::NonZeroPadding {
            what: "match padding"
        })
    );
}
