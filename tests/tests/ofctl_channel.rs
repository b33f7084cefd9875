//! strato's OpenFlow channel (in process, over memory ports) driven by the real `ovs-ofctl`
//! (Debian's openvswitch-common): OpenFlow 1.3 over TCP (add, dump, delete, show, refused
//! actions), and OpenFlow 1.0 over a unix socket (`punix:`: show, flows with counters moving
//! under traffic, mod-flows redirecting it, stats, refused actions, the socket file removed
//! with the listener). Skips, saying why, when ovs-ofctl is missing.

mod support;

use std::time::Duration;
use strato_datapath::worker::WorkerConfig;
use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{Action, OfPort, Pipeline, PortEnv};
use strato_switch::controller::start;
use strato_switch::ofchannel::{self, listen_with, OfConfig};
use support::mem::{udp, Switch};
use support::TempDir;

/// How long rule counters may take to be credited (on the controller's stats tick).
const COUNTERS_WAIT: Duration = Duration::from_secs(10);

fn need_ofctl() -> Result<(), String> {
    support::tool("ovs-ofctl", "openvswitch-common")
}

/// `ovs-ofctl -O OpenFlow13 --no-names -t 10 [OPTS] CMD tcp:127.0.0.1:PORT ARGS`: (exit 0,
/// stdout, stderr).
fn ofctl(port: u16, args: &[&str]) -> (bool, String, String) {
    let target = format!("tcp:127.0.0.1:{port}");
    let args = [&["--no-names"][..], args].concat();
    let o = support::ovs::ofctl(None, "OpenFlow13", &target, &args);
    (o.ok, o.stdout, o.stderr)
}

/// `ovs-ofctl -O OpenFlow10 --no-names -t 10 CMD TARGET ARGS`: (exit 0, stdout then stderr).
fn ofctl10(target: &str, args: &[&str]) -> (bool, String) {
    let args = [&["--no-names"][..], args].concat();
    let o = support::ovs::ofctl(None, "OpenFlow10", target, &args);
    (o.ok, o.all())
}

#[test]
fn ovs_ofctl_add_dump_del_show() {
    support::need!("ovs_ofctl_add_dump_del_show", need_ofctl());
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

#[test]
fn openflow10_and_punix_with_ovs_ofctl() {
    support::need!("openflow10_and_punix_with_ovs_ofctl", need_ofctl());
    let sw = Switch::new(Pipeline::default(), 3, WorkerConfig::default());
    ofchannel::configure(&sw.run.handle, OfConfig::default()).unwrap();
    let dir = TempDir::new(&format!("of-{}", std::process::id()));
    let sock = dir.join("br0.mgmt");
    let ch =
        ofchannel::listen(&format!("punix:{}", sock.display()), sw.run.handle.clone()).unwrap();
    let target = format!("unix:{}", sock.display());

    let (ok, out) = ofctl10(&target, &["show"]);
    assert!(ok, "{out}");
    assert!(out.contains("OFPT_FEATURES_REPLY (xid="), "{out}");
    assert!(out.contains(" 1(p1): addr:"), "{out}");
    let (ok, out) = ofctl10(
        &target,
        &[
            "add-flow",
            "priority=7,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=output:2",
        ],
    );
    assert!(ok, "{out}");
    let f = udp(1, 2, 1000);
    for _ in 0..3 {
        sw.inject(1, &f);
    }
    assert_eq!(sw.collect(2, 3).len(), 3);
    // Counters move (credited on the next stats tick).
    let (ok, out) = support::retry(
        COUNTERS_WAIT,
        Duration::from_millis(200),
        || ofctl10(&target, &["dump-flows"]),
        |(ok, out)| !ok || out.contains("n_packets=3,"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("OFPST_FLOW reply (xid="), "{out}");
    assert!(
        out.contains("priority=7,ip,in_port=1,nw_dst=10.0.0.0/24 actions=output:2"),
        "{out}"
    );
    assert!(out.contains("n_packets=3,"), "counters never moved: {out}");
    let (ok, out) = ofctl10(
        &target,
        &[
            "mod-flows",
            "in_port=1,ip,nw_dst=10.0.0.0/24,actions=output:3",
        ],
    );
    assert!(ok, "{out}");
    sw.inject(1, &f);
    assert_eq!(sw.collect(3, 1).len(), 1);
    let (ok, out) = ofctl10(&target, &["dump-ports"]);
    assert!(ok, "{out}");
    assert!(out.contains("OFPST_PORT reply"), "{out}");
    let (ok, out) = ofctl10(&target, &["dump-tables"]);
    assert!(ok, "{out}");
    assert!(out.contains("OFPST_TABLE reply"), "{out}");
    let (ok, out) = ofctl10(&target, &["del-flows"]);
    assert!(ok, "{out}");
    assert_eq!(sw.run.handle.call(|c| c.pipeline().len()).unwrap(), 0);
    // Unsupported 1.0 actions are refused with a 1.0 error.
    let (ok, out) = ofctl10(&target, &["add-flow", "actions=enqueue:1:1"]);
    assert!(!ok, "{out}");
    assert!(out.contains("OFPBAC_BAD_TYPE"), "{out}");
    drop(ch);
    assert!(
        !sock.exists(),
        "the socket file is removed with the listener"
    );
    sw.run.stop();
}
