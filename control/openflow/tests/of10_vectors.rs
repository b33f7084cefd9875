//! OpenFlow 1.0 codec against Ryu's test vectors (`tests/vectors/openflow/of10`, vendored unedited): every `.packet`
//! parses, re-emits byte-for-byte, and its `to_ryu_json()` equals the `.packet.json` Ryu wrote.
//! Nicira vendor actions (the `ovs-ofctl-of10-*` vectors) are kept raw: their vendor id and
//! subtype are checked against Ryu's decoded form, everything else is compared in full. A packet
//! decoded by Ryu's packet library (`data: {"Packet": ...}`) is compared by decoding the data with
//! etherparse. Every `.truncatedN`, and every strict prefix of every vector, is an error.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use strato_openflow::{self as openflow, v10, OfError};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/openflow/of10");

fn files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap_or_else(|e| panic!("vectors dir {DIR} unreadable: {e}"))
        .map(|e| e.expect("dir entry").path())
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

fn mac(m: [u8; 6]) -> String {
    v10::mac_str(&m)
}

/// Ryu's `Packet` JSON for an Ethernet/IPv4/ICMP frame, built with etherparse.
fn ryu_packet_json(data: &[u8]) -> Value {
    let eth = etherparse::Ethernet2HeaderSlice::from_slice(data).expect("ethernet header");
    let mut protocols = vec![json!({"ethernet": {
        "dst": mac(eth.destination()), "src": mac(eth.source()), "ethertype": eth.ether_type().0,
    }})];
    let rest = &data[eth.slice().len()..];
    if eth.ether_type() == etherparse::EtherType::IPV4 {
        let ip = etherparse::Ipv4HeaderSlice::from_slice(rest).expect("ipv4 header");
        let flags = (u8::from(ip.dont_fragment()) << 1) | u8::from(ip.more_fragments());
        let options = ip.options();
        protocols.push(json!({"ipv4": {
            "version": ip.version(), "header_length": ip.ihl(),
            "tos": (ip.dcp().value() << 2) | ip.ecn().value(), "total_length": ip.total_len(),
            "identification": ip.identification(), "flags": flags, "offset": ip.fragments_offset().value(),
            "ttl": ip.ttl(), "proto": ip.protocol().0, "csum": ip.header_checksum(),
            "src": ip.source_addr().to_string(), "dst": ip.destination_addr().to_string(),
            "option": if options.is_empty() { Value::Null } else { json!(v10::base64(options)) },
        }}));
        let l4 = &rest[ip.slice().len()..ip.total_len() as usize];
        if ip.protocol() == etherparse::IpNumber::ICMP {
            let icmp = etherparse::Icmpv4Slice::from_slice(l4).expect("icmp");
            let b = icmp.bytes5to8();
            assert!(
                matches!(icmp.type_u8(), 0 | 8),
                "only ICMP echo is decoded here"
            );
            protocols.push(json!({"icmp": {
                "type": icmp.type_u8(), "code": icmp.code_u8(), "csum": icmp.checksum(),
                "data": {"echo": {
                    "id": u16::from_be_bytes([b[0], b[1]]), "seq": u16::from_be_bytes([b[2], b[3]]),
                    "data": v10::base64(icmp.payload()),
                }},
            }}));
        }
    }
    json!({"Packet": {"protocols": protocols}})
}

/// The actions of a message, for the vendor-action check.
fn actions(m: &v10::Message) -> &[v10::Action] {
    match &m.body {
        v10::Body::FlowMod(f) => &f.actions,
        v10::Body::PacketOut(p) => &p.actions,
        _ => &[],
    }
}

/// Replaces Ryu's decoded Nicira actions (`NXAction*`) by ours after checking that ours is the
/// raw vendor action with the same vendor id and subtype. Returns how many were checked.
fn check_vendor_actions(
    expected: &mut Value,
    actual: &Value,
    typed: &[v10::Action],
    what: &str,
) -> usize {
    let (Some(exp), Some(act)) = (
        expected
            .as_object_mut()
            .and_then(|o| o.values_mut().next())
            .and_then(|b| b.get_mut("actions"))
            .and_then(Value::as_array_mut),
        actual
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|b| b.get("actions"))
            .and_then(Value::as_array),
    ) else {
        // No action list (a features reply's `actions` is a bitmap).
        return 0;
    };
    assert_eq!(exp.len(), typed.len(), "{what}: number of actions");
    let mut n = 0;
    for (i, e) in exp.iter_mut().enumerate() {
        let (cls, fields) = e
            .as_object()
            .and_then(|o| o.iter().next())
            .expect("action object");
        if !cls.starts_with("NX") {
            continue;
        }
        let v10::Action::Vendor { vendor, body } = &typed[i] else {
            panic!(
                "{what}: action {i} ({cls}) is not kept as a vendor action: {:?}",
                typed[i]
            );
        };
        assert_eq!(
            json!(vendor),
            fields["vendor"],
            "{what}: action {i} vendor id"
        );
        let subtype = u16::from_be_bytes([body[0], body[1]]);
        assert_eq!(
            json!(subtype),
            fields["subtype"],
            "{what}: action {i} Nicira subtype"
        );
        *e = act[i].clone();
        n += 1;
    }
    n
}

#[test]
fn ryu_of10_vectors() {
    let all = files();
    let mut covered = Vec::new();
    let mut skipped = Vec::new();
    let mut vendor_checked = 0;
    for p in all.iter().filter(|p| name(p).ends_with(".packet")) {
        let n = name(p);
        let bytes = std::fs::read(p).expect("read vector");
        let json_path = PathBuf::from(format!("{}.json", p.display()));
        let mut expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).expect("read json"))
                .expect("json parses");
        // Through the version dispatcher, as the channel will.
        let (msg, used) = match openflow::parse(&bytes) {
            Ok((openflow::Message::V10(m), used)) => (m, used),
            Ok(other) => panic!("{n}: not an OpenFlow 1.0 message: {other:?}"),
            Err(e) => {
                skipped.push(format!("{n}: {e}"));
                continue;
            }
        };
        assert_eq!(used, bytes.len(), "{n}: consumed length");
        assert_eq!(msg.emit(), bytes, "{n}: re-emit differs");
        assert_eq!(
            openflow::emit(&openflow::Message::V10(msg.clone())),
            bytes,
            "{n}: dispatcher emit"
        );

        let mut actual = msg.to_ryu_json();
        vendor_checked += check_vendor_actions(&mut expected, &actual, actions(&msg), &n);
        // Ryu's packet library decoded `data`: decode ours the same way and compare that.
        let decoded = expected
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|b| b.get("data"))
            .cloned();
        if let Some(d) = decoded.filter(Value::is_object) {
            let v10::Body::PacketOut(po) = &msg.body else {
                panic!("{n}: decoded data on a non packet-out")
            };
            let ours = ryu_packet_json(&po.data);
            assert_eq!(ours, d, "{n}: decoded packet");
            let body = actual
                .as_object_mut()
                .and_then(|o| o.values_mut().next())
                .expect("class body");
            body["data"] = ours;
        }
        assert_eq!(actual, expected, "{n}: JSON differs from Ryu's");
        covered.push(n);
    }
    println!("covered {} of10 vectors:", covered.len());
    for c in &covered {
        println!("  {c}");
    }
    for s in &skipped {
        println!("  SKIPPED {s}");
    }
    assert!(
        skipped.is_empty(),
        "every OpenFlow 1.0 message type is supported, yet vectors failed: {skipped:#?}"
    );
    assert!(
        covered.len() >= 13,
        "expected at least the 13 vectors of Ryu d6cda4f4, found {}",
        covered.len()
    );
    assert_eq!(
        vendor_checked, 7,
        "the seven ovs-ofctl-of10-* vectors each hold one Nicira action"
    );
}

#[test]
fn truncations_are_errors() {
    let all = files();
    let mut n_trunc = 0;
    for p in all.iter().filter(|p| name(p).contains(".truncated")) {
        let bytes = std::fs::read(p).expect("read vector");
        let err = openflow::parse(&bytes).expect_err(&name(p));
        assert!(
            matches!(err, OfError::Truncated { .. }),
            "{}: {err}",
            name(p)
        );
        n_trunc += 1;
    }
    println!("{n_trunc} .truncatedN vectors");
    // And every strict prefix of every vector, through both entry points.
    let mut n_prefix = 0;
    for p in all.iter().filter(|p| name(p).ends_with(".packet")) {
        let bytes = std::fs::read(p).expect("read vector");
        for k in 0..bytes.len() {
            assert!(
                openflow::parse(&bytes[..k]).is_err(),
                "{} prefix {k}",
                name(p)
            );
            assert!(
                v10::Message::parse(&bytes[..k]).is_err(),
                "{} prefix {k}",
                name(p)
            );
            n_prefix += 1;
        }
    }
    assert!(n_prefix > 1000, "prefixes checked: {n_prefix}");
}
