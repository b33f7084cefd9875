//! The OpenFlow 1.3 channel against the real `ovs-ofctl -O OpenFlow13`, plus raw-socket checks
//! of negotiation failure, errors on bad input and connection survival.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use strato_datapath::worker::WorkerConfig;
use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{Action, OfPort, Pipeline, PortEnv};
use strato_openflow::v13::{Body, ErrorMsg, Message};
use strato_switch::controller::start;
use strato_switch::ofchannel::{listen, listen_with, OfConfig};

fn have_ofctl() -> bool {
    Command::new("ovs-ofctl").arg("--version").output().is_ok()
}

fn ofctl(port: u16, args: &[&str]) -> (bool, String, String) {
    let target = format!("tcp:127.0.0.1:{port}");
    // Options (`--strict`), then the command, the target and the command's arguments.
    let cmd = args.iter().position(|a| !a.starts_with("--")).unwrap();
    let mut full = vec!["-O", "OpenFlow13", "--no-names", "-t", "10"];
    full.extend_from_slice(&args[..=cmd]);
    full.push(&target);
    full.extend_from_slice(&args[cmd + 1..]);
    let o = Command::new("ovs-ofctl").args(&full).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn ovs_ofctl_add_dump_del_show() {
    if !have_ofctl() {
        println!("SKIPPED ovs_ofctl_add_dump_del_show: install openvswitch-common (scripts/bootstrap.sh does)");
        return;
    }
    let running = start(
        Pipeline::default(),
        PortEnv::default(),
        vec![WorkerConfig::default()],
    )
    .unwrap();
    let ch = listen_with(
        "ptcp:0:127.0.0.1",
        running.handle.clone(),
        OfConfig {
            datapath_id: 0xabc,
            ..OfConfig::default()
        },
    )
    .unwrap();
    let port = ch.local_addr().port();

    let (ok, out, err) = ofctl(
        port,
        &[
            "add-flow",
            "priority=10,in_port=1,dl_dst=02:00:00:00:00:02,actions=output:2",
        ],
    );
    assert!(ok, "add-flow 1 failed: {out} {err}");
    let (ok, out, err) = ofctl(
        port,
        &[
            "add-flow",
            "table=0,priority=20,ip,nw_dst=10.0.0.0/24,actions=mod_vlan_vid:5,dec_ttl,output:3",
        ],
    );
    assert!(ok, "add-flow 2 failed: {out} {err}");

    // The pipeline really has them.
    let rules = running
        .handle
        .call(|c| {
            let mut v: Vec<_> = c
                .pipeline()
                .rules()
                .map(|r| (r.priority, r.matching, r.instructions.clone()))
                .collect();
            v.sort_by_key(|r| r.0);
            v
        })
        .unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].1.field(Field::InPort), (1, 0xffff_ffff));
    assert_eq!(
        rules[0].1.field(Field::EthDst),
        (0x02_00_00_00_00_02, 0xffff_ffff_ffff)
    );
    assert_eq!(
        rules[0].2.apply_actions,
        vec![Action::Output(OfPort::Port(2))]
    );
    assert_eq!(rules[1].1.field(Field::Ipv4Dst), (0x0a00_0000, 0xffff_ff00));
    assert_eq!(rules[1].1.field(Field::EthType), (0x0800, 0xffff));

    let (ok, out, err) = ofctl(
        port,
        &[
            "add-flow",
            "table=1,priority=5,tcp,tp_dst=80,actions=write_metadata:0x5/0xff,goto_table:2",
        ],
    );
    assert!(ok, "add-flow 3 failed: {out} {err}");
    let (ok, out, err) = ofctl(port, &["dump-flows", "table=1"]);
    assert!(ok, "dump-flows table=1 failed: {out} {err}");
    assert!(
        out.contains("priority=5,tcp,tp_dst=80 actions=write_metadata:0x5/0xff,goto_table:2"),
        "{out}"
    );
    let (ok, out, err) = ofctl(port, &["dump-aggregate"]);
    assert!(ok, "dump-aggregate failed: {out} {err}");
    assert!(out.contains("flow_count=3"), "{out}");
    let (ok, _, _) = ofctl(port, &["del-flows", "table=1"]);
    assert!(ok);

    let (ok, out, err) = ofctl(port, &["dump-flows"]);
    assert!(ok, "dump-flows failed: {out} {err}");
    println!("{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("priority=")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    let l1 = lines.iter().find(|l| l.contains("priority=10")).unwrap();
    assert!(
        l1.contains("in_port=1,dl_dst=02:00:00:00:00:02 actions=output:2"),
        "{l1}"
    );
    let l2 = lines.iter().find(|l| l.contains("priority=20")).unwrap();
    assert!(l2.contains("ip,nw_dst=10.0.0.0/24"), "{l2}");
    assert!(l2.contains("dec_ttl"), "{l2}");
    // mod_vlan_vid on an untagged match becomes push_vlan + set_field (vid 5 | PRESENT).
    assert!(
        l2.contains("push_vlan:0x8100,set_field:4101->vlan_vid"),
        "{l2}"
    );
    assert!(l2.contains("output:3"), "{l2}");
    assert!(l2.contains("n_packets=0"), "{l2}");

    // Loose delete with a match removes only the IP rule.
    let (ok, out, err) = ofctl(port, &["del-flows", "ip,nw_dst=10.0.0.0/24"]);
    assert!(ok, "del-flows failed: {out} {err}");
    let (ok, out, _) = ofctl(port, &["dump-flows"]);
    assert!(ok);
    assert!(out.contains("dl_dst=02:00:00:00:00:02"), "{out}");
    assert!(!out.contains("nw_dst"), "{out}");
    assert_eq!(running.handle.call(|c| c.pipeline().len()).unwrap(), 1);

    // Strict delete needs the priority.
    let (ok, _, _) = ofctl(
        port,
        &[
            "--strict",
            "del-flows",
            "in_port=1,dl_dst=02:00:00:00:00:02",
        ],
    );
    assert!(ok);
    assert_eq!(running.handle.call(|c| c.pipeline().len()).unwrap(), 1);
    let (ok, _, _) = ofctl(
        port,
        &[
            "--strict",
            "del-flows",
            "priority=10,in_port=1,dl_dst=02:00:00:00:00:02",
        ],
    );
    assert!(ok);
    assert_eq!(running.handle.call(|c| c.pipeline().len()).unwrap(), 0);

    let (ok, out, err) = ofctl(port, &["show"]);
    assert!(ok, "show failed: {out} {err}");
    assert!(out.contains("dpid:0000000000000abc"), "{out}");
    assert!(out.contains("n_tables:64"), "{out}");

    // An unsupported action is refused with an error; the channel keeps working.
    let (ok, _, err) = ofctl(port, &["add-flow", "actions=normal"]);
    assert!(!ok);
    assert!(err.contains("OFPBAC_BAD_OUT_PORT"), "{err}");
    let (ok, _, err) = ofctl(port, &["add-flow", "mpls,mpls_label=5,actions=drop"]);
    assert!(!ok);
    assert!(err.contains("OFPBMC_BAD_FIELD"), "{err}");
    let (ok, _, err) = ofctl(port, &["add-flow", "mpls,actions=drop"]);
    assert!(ok, "{err}");
    assert_eq!(running.handle.call(|c| c.pipeline().len()).unwrap(), 1);
    let (ok, _, _) = ofctl(port, &["dump-flows"]);
    assert!(ok);
    drop(ch);
    running.stop();
}

fn read_msg(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h).ok()?;
    let len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let mut b = h.to_vec();
    b.resize(len.max(8), 0);
    s.read_exact(&mut b[8..]).ok()?;
    Some(b)
}

#[test]
fn raw_negotiation_errors_and_bad_lengths() {
    let running = start(
        Pipeline::default(),
        PortEnv::default(),
        vec![WorkerConfig::default()],
    )
    .unwrap();
    let ch = listen("ptcp:0:127.0.0.1", running.handle.clone()).unwrap();
    let addr = ch.local_addr();
    let connect = || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };

    // A 1.1-only peer (no version in common) is refused with HELLO_FAILED and closed.
    let mut s = connect();
    let hello = read_msg(&mut s).unwrap();
    assert_eq!((hello[0], hello[1]), (4, 0));
    s.write_all(&[2, 0, 0, 8, 0, 0, 0, 1]).unwrap();
    let e = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert!(
        matches!(
            e.body,
            Body::Error(ErrorMsg::Standard {
                type_: 0,
                code: 0,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(read_msg(&mut s).is_none());

    // A 1.3 peer: unknown type -> BAD_REQUEST/BAD_TYPE; the connection keeps working.
    let mut s = connect();
    read_msg(&mut s).unwrap();
    s.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).unwrap();
    s.write_all(&[4, 30, 0, 8, 0, 0, 0, 2]).unwrap();
    let e = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert_eq!(e.xid, 2);
    assert!(
        matches!(
            e.body,
            Body::Error(ErrorMsg::Standard {
                type_: 1,
                code: 1,
                ..
            })
        ),
        "{e:?}"
    );
    s.write_all(&[4, 2, 0, 12, 0, 0, 0, 3, 9, 8, 7, 6]).unwrap();
    let r = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert_eq!(r, Message::new(3, Body::EchoReply(vec![9, 8, 7, 6])));
    // A features request with a body is a bad length, answered, and the connection survives.
    s.write_all(&[4, 5, 0, 12, 0, 0, 0, 4, 0, 0, 0, 0]).unwrap();
    let e = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert!(
        matches!(
            e.body,
            Body::Error(ErrorMsg::Standard {
                type_: 1,
                code: 6,
                ..
            })
        ),
        "{e:?}"
    );
    s.write_all(&[4, 20, 0, 8, 0, 0, 0, 5]).unwrap();
    let r = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert_eq!(r, Message::new(5, Body::BarrierReply));
    // A length below the header size is answered with BAD_LEN, then closes only this
    // connection.
    s.write_all(&[4, 2, 0, 4, 0, 0, 0, 6]).unwrap();
    let e = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert!(
        matches!(
            e.body,
            Body::Error(ErrorMsg::Standard {
                type_: 1,
                code: 6,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(read_msg(&mut s).is_none());
    let mut s2 = connect();
    read_msg(&mut s2).unwrap();
    s2.write_all(&[4, 0, 0, 8, 0, 0, 0, 1, 4, 2, 0, 8, 0, 0, 0, 7])
        .unwrap();
    let r = Message::parse(&read_msg(&mut s2).unwrap()).unwrap();
    assert_eq!(r, Message::new(7, Body::EchoReply(vec![])));

    // Garbage with honest lengths never kills the channel: every message gets an answer or is
    // ignored, and an echo afterwards still works.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..500u32 {
        let len = 8 + (rnd() % 120) as usize;
        let mut m: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        m[0] = 4;
        m[1] = (rnd() % 32) as u8;
        if m[1] == 0 || m[1] == 20 {
            m[1] = 14; // not HELLO or BARRIER (a barrier would wait for the workers)
        }
        m[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        m[4..8].copy_from_slice(&i.to_be_bytes());
        s2.write_all(&m).unwrap();
    }
    s2.write_all(&[4, 2, 0, 8, 0xff, 0xff, 0xff, 0xff]).unwrap();
    loop {
        let r = Message::parse(&read_msg(&mut s2).unwrap()).unwrap();
        if r.xid == u32::MAX {
            assert_eq!(r.body, Body::EchoReply(vec![]));
            break;
        }
    }

    // Dropping the channel stops it: the connection closes and the port is free.
    drop(ch);
    assert!(read_msg(&mut s2).is_none());
    assert!(TcpStream::connect(addr).is_err());
    running.stop();
}
