//! Acceptance of strato's passive OpenFlow listener by the real `ovs-ofctl` (Debian
//! openvswitch-common), `-O OpenFlow10` and `-O OpenFlow13`, with Open vSwitch as the reference.
//!
//! Each test builds the same two-host topology twice, in namespaces of its own:
//! - a strato lab (`strato lab up`, `[bridge] fail_mode = "secure"`, no controller,
//!   `[daemon] openflow_listen = ["ptcp:6653:127.0.0.1", "punix:<run dir>/of.sock"]`);
//! - Open vSwitch's userspace datapath (`ovs-vswitchd`, netdev bridge, `fail_mode=secure`,
//!   `protocols=OpenFlow10,OpenFlow13`, `set-controller br0 ptcp:6653:127.0.0.1`), with the
//!   same port names, port numbers, host addresses and MACs.
//!
//! Then it runs one scenario of ovs-ofctl commands and traffic against both: show, add-flow (also
//! by port name), add-flows FILE, dump-flows (counters moving under ping), dump-aggregate,
//! mod-flows (loose, then --strict, checked by traffic), dump-ports, dump-ports-desc,
//! dump-tables, packet-out (an ARP request the receiving host's kernel must see),
//! del-flows (loose, --strict, all), and for 1.3 add-group/mod-group/del-groups/dump-groups,
//! dump-group-stats and a flow whose group forwards real traffic; plus `show` over the unix
//! listener. Every ovs-ofctl command must exit 0 with nothing on stderr, and its output must equal
//! what ovs-ofctl printed for Open vSwitch after the same steps, once values that legitimately
//! differ are masked (durations, packet/byte counters, xids, datapath id, MAC addresses, OVS's
//! LOCAL port, the Nicira-only `idle_age`/`hard_age` and `NXST_` names OVS uses for 1.0).
//!
//! The same semantic checks (counters moved, traffic obeyed the flows, the packet-out arrived)
//! run on Open vSwitch first: if the reference fails them, the test itself is wrong and it
//! panics saying so. strato's failures are collected, all printed as a checklist
//! (`PASS`/`FAIL` per check), then the test fails if any did.
//!
//! The whole run of each test is captured with tshark on the strato switch namespace's loopback
//! (`tcp port 6653`): strato's side of it (`tcp.srcport == 6653`) must hold OpenFlow frames of
//! the version under test (so the check can fail) and no frame tshark calls malformed
//! (`_ws.malformed`). Malformed frames sent by ovs-ofctl are printed, not failed: tshark 4.0's
//! OpenFlow 1.0 dissector flags every FLOW_MOD without actions (72 bytes: del-flows,
//! actions=drop) as malformed, also when ovs-ofctl sends it to Open vSwitch itself.
//!
//! Needs root (namespaces, veths, AF_XDP, capture); skips saying why otherwise, or when
//! ovs-ofctl, ovs-vswitchd or tshark are missing (scripts/bootstrap.sh installs them; CI runs
//! it and runs as root). Everything is torn down by Drop guards, also when an assertion fails.
//! The two tests are serialised (one lab and one OVS at a time on these 2-core machines).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;
use strato_labs::netns;
use support::checks::Checks;
use support::ovs::{flow_entries, num_after, OvsHost, OvsSwitch};
use support::strato::{lab_name, StratoLab, LAB_RUN_DIR};
use support::tshark::Capture;
use support::{text, Out, TempDir};

/// The OpenFlow listener port in both switch namespaces (each namespace has its own loopback,
/// so parallel runs never meet).
const OF_PORT: u16 = 6653;
/// Host MACs and addresses (the same in both topologies).
const MACS: [&str; 2] = ["02:00:00:00:00:01", "02:00:00:00:00:02"];
const IPS: [&str; 2] = ["10.0.0.1", "10.0.0.2"];
/// The packet-out's frame: an ARP request from 02:00:00:00:00:99 / 10.0.0.99 for 10.0.0.2.
const ARP_FROM_99: &str =
    "ffffffffffff020000000099080600010800060400010200000000990a0000630000000000000a000002";

static SERIAL: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// tshark

/// What a finished capture holds.
#[derive(Debug)]
struct CaptureReport {
    /// Frames tshark dissected as OpenFlow 1.0 / 1.3 (both directions).
    of10: usize,
    of13: usize,
    /// OpenFlow 1.0 / 1.3 frames the switch sent (source port: its listener).
    switch_of10: usize,
    switch_of13: usize,
    /// tshark's one-line summaries of malformed frames the switch sent.
    malformed_switch: Vec<String>,
    /// ... and of malformed frames its peers (ovs-ofctl) sent.
    malformed_peer: Vec<String>,
    /// Message type -> frames (1.0 and 1.3 together, as "v1:T" / "v4:T").
    types: BTreeMap<String, usize>,
}

/// Stops the capture and reads it back; the switch is the side on `switch_port`.
fn finish(mut cap: Capture, switch_port: u16) -> CaptureReport {
    cap.stop();
    let mut types = BTreeMap::new();
    for (proto, field, tag) in [
        ("openflow_v1", "openflow_1_0.type", "v1"),
        ("openflow_v4", "openflow_v4.type", "v4"),
    ] {
        for l in cap.read(proto, &[field]) {
            for t in l.split(',').filter(|t| !t.is_empty()) {
                *types.entry(format!("{tag}:{t}")).or_insert(0) += 1;
            }
        }
    }
    let from = format!("tcp.srcport == {switch_port}");
    let to = format!("tcp.dstport == {switch_port}");
    let frames = |filter: &str| cap.read(filter, &["frame.number"]).len();
    CaptureReport {
        of10: frames("openflow_v1"),
        of13: frames("openflow_v4"),
        switch_of10: frames(&format!("{from} && openflow_v1")),
        switch_of13: frames(&format!("{from} && openflow_v4")),
        malformed_switch: cap.read(&format!("{from} && _ws.malformed"), &[]),
        malformed_peer: cap.read(&format!("{to} && _ws.malformed"), &[]),
        types,
    }
}

// ---------------------------------------------------------------------------------------------
// the two switches

/// Where ovs-ofctl finds a switch, and its hosts.
struct Target {
    /// "ovs" or "strato".
    label: &'static str,
    /// The switch's namespace (ovs-ofctl runs there: the listener is on its loopback).
    sw_ns: String,
    /// Host namespaces, h1 and h2.
    hosts: [String; 2],
    /// Switch-side port names (the same in both topologies).
    port_names: [String; 2],
}

impl Target {
    fn of_target(&self) -> String {
        format!("tcp:127.0.0.1:{OF_PORT}")
    }
}

fn strato_topology(name: &str, listen: &[String]) -> String {
    let listen: Vec<String> = listen.iter().map(|l| format!("{l:?}")).collect();
    format!(
        "name = \"{name}\"\n\
         [switch]\nworker_cores = [1]\nopenflow_listen = [{}]\n\
         [bridge]\nfail_mode = \"secure\"\n\
         [[host]]\nname = \"h1\"\nip = \"{}/24\"\nlink = \"afxdp\"\nmac = \"{}\"\n\
         [[host]]\nname = \"h2\"\nip = \"{}/24\"\nlink = \"afxdp\"\nmac = \"{}\"\n",
        listen.join(", "),
        IPS[0],
        MACS[0],
        IPS[1],
        MACS[1]
    )
}

/// Brings the strato lab up with a TCP and a unix listener. Returns the lab, whether the unix
/// listener was accepted (if the daemon refuses `punix:`, the lab is brought up again with the
/// TCP listener alone so the rest can still be checked), and the first attempt's error.
fn strato_up(dir: &Path) -> (StratoLab, Target, bool, String) {
    let name = lab_name('o');
    let unix = format!("punix:{LAB_RUN_DIR}/{name}/of.sock");
    let tcp = format!("ptcp:{OF_PORT}:127.0.0.1");
    let mut unix_ok = true;
    let mut first_err = String::new();
    let lab = StratoLab::new(
        dir.join("lab.toml"),
        &name,
        &strato_topology(&name, &[tcp.clone(), unix]),
    );
    let o = lab.up();
    if !o.status.success() {
        unix_ok = false;
        first_err = text(&o);
        std::fs::write(&lab.file, strato_topology(&name, &[tcp])).unwrap();
        let o = lab.up();
        assert!(
            o.status.success(),
            "strato lab up failed with the TCP listener alone:\n{}\n(with the unix listener too:\n{first_err})",
            text(&o)
        );
    }
    let t = Target {
        label: "strato",
        sw_ns: format!("{name}-sw"),
        hosts: [format!("{name}-h1"), format!("{name}-h2")],
        port_names: [format!("{name}-h1"), format!("{name}-h2")],
    };
    (lab, t, unix_ok, first_err)
}

/// Open vSwitch's userspace datapath in namespaces of its own, with the same port names,
/// numbers, MACs and addresses as the strato lab, listening where strato's listener does.
fn ovs_up(dir: &Path, port_names: &[String; 2]) -> (OvsSwitch, Target) {
    let p = netns::run_prefix();
    let hosts: Vec<OvsHost> = port_names
        .iter()
        .enumerate()
        .map(|(i, pn)| OvsHost {
            ns: format!("{p}-oh{}", i + 1),
            port: pn.clone(),
            mac: MACS[i].into(),
            cidr: format!("{}/24", IPS[i]),
        })
        .collect();
    let ovs_dir = dir.join(format!("{p}-ovs"));
    let ovs = OvsSwitch::start(
        &ovs_dir,
        &format!("{p}-osw"),
        &hosts,
        "OpenFlow10,OpenFlow13",
        &[format!("ptcp:{OF_PORT}:127.0.0.1")],
    );
    let target = Target {
        label: "ovs",
        sw_ns: ovs.ns().to_string(),
        hosts: [hosts[0].ns.clone(), hosts[1].ns.clone()],
        port_names: port_names.clone(),
    };
    // The listener comes up asynchronously.
    assert!(
        support::wait_for(Duration::from_secs(20), Duration::from_millis(200), || {
            ofctl(&target, "OpenFlow13", &["show"], None).ok
        }),
        "Open vSwitch's listener did not come up (logs in {})",
        ovs_dir.display()
    );
    (ovs, target)
}

// ---------------------------------------------------------------------------------------------
// running commands

/// `ovs-ofctl -O VER -t 10 [OPTS] CMD TARGET ARGS...` in the switch's namespace (options are
/// the leading `--...` arguments), against its TCP listener unless `target` says otherwise.
fn ofctl(t: &Target, ver: &str, args: &[&str], target: Option<&str>) -> Out {
    let target = target.map_or_else(|| t.of_target(), str::to_string);
    support::ovs::ofctl(Some(&t.sw_ns), ver, &target, args)
}

/// Repeats an ovs-ofctl command until `done(stdout)` or 5 s have passed; the last output.
/// Switches count in their datapath and fold counters into flow/group/table statistics
/// periodically (Open vSwitch's revalidators: every 500 ms), so counters settle a moment after
/// the traffic.
fn ofctl_until(t: &Target, ver: &str, args: &[&str], done: impl Fn(&str) -> bool) -> Out {
    support::retry(
        Duration::from_secs(5),
        Duration::from_millis(250),
        || ofctl(t, ver, args, None),
        |o| !o.ok || done(&o.stdout),
    )
}

fn in_host(t: &Target, h: usize, args: &[&str]) -> Out {
    let line = format!("[{}] {}", t.hosts[h], args.join(" "));
    Out::run(
        line,
        Command::new("ip")
            .args(["netns", "exec", &t.hosts[h]])
            .args(args),
    )
}

fn ping(t: &Target, from: usize, to: usize, count: u32) -> Out {
    in_host(
        t,
        from,
        &[
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            IPS[to],
        ],
    )
}

/// The named outputs of one scenario run.
#[derive(Default)]
struct Transcript {
    steps: Vec<(String, Out)>,
}

impl Transcript {
    fn push(&mut self, name: &str, o: Out) {
        self.steps.push((name.to_string(), o));
    }

    fn get(&self, name: &str) -> &Out {
        &self
            .steps
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no step {name}"))
            .1
    }

    fn render(&self) -> String {
        self.steps
            .iter()
            .map(|(n, o)| format!("## {n}\n{}", o.show()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Steps whose ovs-ofctl command must succeed with an empty stderr.
const OFCTL_STEPS_BOTH: &[&str] = &[
    "show",
    "del-flows-initial",
    "add-flow",
    "add-flow-by-name",
    "add-flows",
    "dump-flows-1",
    "dump-flows-2",
    "dump-aggregate",
    "mod-flows",
    "dump-flows-3",
    "mod-flows-strict",
    "dump-ports",
    "dump-ports-1",
    "dump-ports-desc",
    "dump-tables",
    "packet-out",
    "del-flows-in_port",
    "dump-flows-5",
    "del-flows-strict",
    "dump-flows-6",
    "del-flows-all",
    "dump-flows-7",
];
const OFCTL_STEPS_13: &[&str] = &[
    "dump-table-features",
    "del-groups-initial",
    "add-group-all",
    "add-group-select",
    "add-group-indirect",
    "dump-groups-1",
    "add-flow-group",
    "dump-group-stats",
    "mod-group",
    "del-group-2",
    "dump-groups-2",
    "del-group-1",
    "dump-flows-4",
    "del-groups-all",
    "dump-groups-3",
];

/// The scenario: the same commands and traffic against either switch.
fn scenario(t: &Target, ver: &str, dir: &Path) -> Transcript {
    let of13 = ver == "OpenFlow13";
    let mut tr = Transcript::default();
    let o = |args: &[&str]| ofctl(t, ver, args, None);
    tr.push("show", o(&["show"]));
    for (i, p) in t.port_names.iter().enumerate() {
        let l = Command::new("ip")
            .args(["-n", &t.sw_ns, "-o", "link", "show", "dev", p])
            .output();
        tr.push(
            &format!("port-{}-link", i + 1),
            Out::from(format!("ip link show {p}"), l),
        );
    }
    if of13 {
        // ovs-ofctl asks for the table features (and port descriptions) before any flow_mod
        // or group_mod unless --no-names; here on their own.
        tr.push("dump-table-features", o(&["dump-table-features"]));
    }
    tr.push("del-flows-initial", o(&["del-flows"]));
    if of13 {
        tr.push("del-groups-initial", o(&["del-groups"]));
    }
    tr.push(
        "add-flow",
        o(&[
            "add-flow",
            "priority=100,in_port=1,dl_dst=02:00:00:00:00:02,actions=output:2",
        ]),
    );
    // By name: ovs-ofctl resolves it from the switch's port descriptions.
    let by_name = format!(
        "priority=100,in_port={},dl_dst=02:00:00:00:00:01,actions=output:1",
        t.port_names[1]
    );
    tr.push("add-flow-by-name", o(&["add-flow", &by_name]));
    let flows = dir.join(format!("{}-flows.txt", t.label));
    std::fs::write(
        &flows,
        "priority=50,arp,in_port=1,actions=output:2\n\
         priority=50,arp,in_port=2,actions=output:1\n\
         cookie=0x5157,priority=20,ip,nw_dst=10.0.0.99,actions=drop\n",
    )
    .unwrap();
    tr.push("add-flows", o(&["add-flows", flows.to_str().unwrap()]));
    tr.push("dump-flows-1", o(&["dump-flows"]));
    tr.push("ping-1", ping(t, 0, 1, 3));
    tr.push(
        "dump-flows-2",
        ofctl_until(t, ver, &["dump-flows"], counters_moved),
    );
    tr.push(
        "dump-aggregate",
        ofctl_until(t, ver, &["dump-aggregate"], aggregate_counted),
    );
    tr.push(
        "mod-flows",
        o(&[
            "mod-flows",
            "in_port=1,dl_dst=02:00:00:00:00:02,actions=drop",
        ]),
    );
    tr.push("dump-flows-3", o(&["dump-flows"]));
    tr.push("ping-2", ping(t, 0, 1, 1));
    tr.push(
        "mod-flows-strict",
        o(&[
            "--strict",
            "mod-flows",
            "priority=100,in_port=1,dl_dst=02:00:00:00:00:02,actions=output:2",
        ]),
    );
    tr.push("ping-3", ping(t, 0, 1, 2));
    tr.push(
        "dump-ports",
        ofctl_until(t, ver, &["dump-ports"], ports_counted),
    );
    tr.push("dump-ports-1", o(&["dump-ports", "1"]));
    tr.push("dump-ports-desc", o(&["dump-ports-desc"]));
    tr.push(
        "dump-tables",
        ofctl_until(t, ver, &["dump-tables"], table0_counted),
    );
    // packet-out: an ARP request for h2 from an address nobody has; h2's kernel records the
    // sender in its neighbour table only if the frame really arrived.
    let _ = in_host(t, 1, &["ip", "neigh", "flush", "dev", "eth0"]);
    let po = format!("in_port=controller packet={ARP_FROM_99} actions=output:2");
    tr.push("packet-out", o(&["packet-out", &po]));
    std::thread::sleep(Duration::from_millis(300));
    tr.push(
        "packet-out-seen",
        in_host(t, 1, &["ip", "neigh", "show", "10.0.0.99"]),
    );
    if of13 {
        tr.push(
            "add-group-all",
            o(&["add-group", "group_id=1,type=all,bucket=output:2"]),
        );
        tr.push(
            "add-group-select",
            o(&[
                "add-group",
                "group_id=2,type=select,bucket=weight:10,output:1,bucket=weight:20,output:2",
            ]),
        );
        tr.push(
            "add-group-indirect",
            o(&["add-group", "group_id=3,type=indirect,bucket=output:1"]),
        );
        tr.push("dump-groups-1", o(&["dump-groups"]));
        tr.push(
            "add-flow-group",
            o(&["add-flow", "priority=60,arp,in_port=1,actions=group:1"]),
        );
        // h1 must ARP again: its request now goes through group 1.
        let _ = in_host(t, 0, &["ip", "neigh", "flush", "dev", "eth0"]);
        let _ = in_host(t, 1, &["ip", "neigh", "flush", "dev", "eth0"]);
        tr.push("ping-group", ping(t, 0, 1, 2));
        tr.push(
            "dump-group-stats",
            ofctl_until(t, ver, &["dump-group-stats"], group1_counted),
        );
        tr.push(
            "mod-group",
            o(&["mod-group", "group_id=3,type=indirect,bucket=output:2"]),
        );
        tr.push("del-group-2", o(&["del-groups", "group_id=2"]));
        tr.push("dump-groups-2", o(&["dump-groups"]));
        // Deleting a group deletes the flows that use it.
        tr.push("del-group-1", o(&["del-groups", "group_id=1"]));
        tr.push("dump-flows-4", o(&["dump-flows"]));
        tr.push("del-groups-all", o(&["del-groups"]));
        tr.push("dump-groups-3", o(&["dump-groups"]));
    }
    tr.push("del-flows-in_port", o(&["del-flows", "in_port=2"]));
    tr.push("dump-flows-5", o(&["dump-flows"]));
    tr.push(
        "del-flows-strict",
        o(&["--strict", "del-flows", "priority=50,arp,in_port=1"]),
    );
    tr.push("dump-flows-6", o(&["dump-flows"]));
    tr.push("del-flows-all", o(&["del-flows"]));
    tr.push("dump-flows-7", o(&["dump-flows"]));
    tr
}

// ---------------------------------------------------------------------------------------------
// normalising and reading ovs-ofctl's output

/// Replaces the value after each `key` (up to the next character not in `class`) by `mask`.
fn mask_after(s: &str, key: &str, class: fn(char) -> bool, mask: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let end = rest.find(|c: char| !class(c)).unwrap_or(rest.len());
        if end > 0 {
            out.push_str(mask);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn is_num(c: char) -> bool {
    c.is_ascii_digit() || c == '.'
}
fn is_hexish(c: char) -> bool {
    c.is_ascii_hexdigit() || c == 'x' || c == ':'
}

/// Masks what legitimately differs between two switches given the same commands and traffic.
fn norm(s: &str) -> String {
    let mut s = s
        .replace("NXST_FLOW reply", "OFPST_FLOW reply")
        .replace("NXST_AGGREGATE reply", "OFPST_AGGREGATE reply");
    for k in ["xid=", "dpid:", "addr:"] {
        s = mask_after(&s, k, is_hexish, "X");
    }
    for k in [
        "duration=",
        "n_packets=",
        "n_bytes=",
        "packet_count=",
        "byte_count=",
        "pkts=",
        "bytes=",
        "drop=",
        "errs=",
        "frame=",
        "over=",
        "crc=",
        "coll=",
        "lookup=",
        "matched=",
        "miss_send_len=",
        "n_tables:",
    ] {
        s = mask_after(&s, k, is_num, "N");
    }
    // Nicira-only fields Open vSwitch adds to 1.0 flow stats (a switch without the extension
    // has no such fields).
    for k in [", idle_age=", ", hard_age="] {
        while let Some(i) = s.find(k) {
            let end = s[i + k.len()..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(s.len(), |e| i + k.len() + e);
            s.replace_range(i..end, "");
        }
    }
    s
}

/// Flow lines of a dump-flows output, normalised and sorted.
fn flow_lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = flow_entries(out).into_iter().map(norm).collect();
    v.sort();
    v
}

/// The raw flow line whose text contains every one of `parts`.
fn find_flow<'a>(out: &'a str, parts: &[&str]) -> Option<&'a str> {
    flow_entries(out)
        .into_iter()
        .find(|l| parts.iter().all(|p| l.contains(p)))
}

/// The normalised lines of each port's block in a dump-ports / dump-ports-desc / show output,
/// by port number (LOCAL and other named ports under "LOCAL"), plus the other lines.
fn port_blocks(out: &str) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut other = Vec::new();
    let mut cur: Option<String> = None;
    for l in out.lines() {
        let t = l.trim_start();
        // dump-ports: "  port  1: rx ..." / "  port LOCAL: ..."; desc: " 1(name): addr:..."
        let key = if let Some(r) = t.strip_prefix("port ") {
            r.split(':').next().map(|p| p.trim().to_string())
        } else if l.starts_with(' ') && !l.starts_with("  ") && t.contains("): addr:") {
            t.split('(').next().map(str::to_string)
        } else {
            None
        };
        if let Some(k) = key {
            cur = Some(k.clone());
            blocks.entry(k).or_default().push(norm(l));
        } else if l.starts_with("     ") || l.starts_with("           ") {
            match &cur {
                Some(k) => blocks.entry(k.clone()).or_default().push(norm(l)),
                None => other.push(norm(l)),
            }
        } else {
            cur = None;
            other.push(norm(l));
        }
    }
    (blocks, other)
}

/// The "  table N:" blocks of a dump-tables output: table -> its lines.
fn table_blocks(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = None;
    for l in out.lines() {
        // "  table 0:" or, when the switch names its tables, "  table 0 (\"name\"):".
        if let Some(r) = l.strip_prefix("  table ") {
            let id: String = r.chars().take_while(char::is_ascii_digit).collect();
            cur = (!id.is_empty()).then_some(id);
            continue;
        }
        if l.trim().is_empty() || !l.starts_with("    ") {
            cur = None;
            continue;
        }
        if let Some(c) = &cur {
            m.entry(c.clone()).or_default().push(l.trim().to_string());
        }
    }
    m
}

// ---------------------------------------------------------------------------------------------
// checks

/// A checklist: every check is run and printed; the test fails at the end if any failed.
fn equal_lines(what: &str, want: &[String], got: &[String]) -> Result<(), String> {
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "{what} differ from Open vSwitch's (normalised)\n--- ovs ---\n{}\n--- strato ---\n{}",
            want.join("\n"),
            got.join("\n")
        ))
    }
}

/// dump-flows after `ping -c 3` h1 -> h2: >= 3 packets (98 bytes each) per dl_dst flow, >= 1
/// on the ARP flow from port 1 (h1's broadcast request; h2's unicast reply takes the
/// higher-priority dl_dst flow).
fn counters_moved(out: &str) -> bool {
    let moved = |parts: &[&str], min: u64| {
        find_flow(out, parts)
            .and_then(|l| num_after(l, "n_packets="))
            .is_some_and(|n| n >= min)
    };
    moved(&["in_port=1,dl_dst=02:00:00:00:00:02"], 3)
        && moved(&["in_port=2,dl_dst=02:00:00:00:00:01"], 3)
        && moved(&["arp,in_port=1"], 1)
        && find_flow(out, &["in_port=1,dl_dst=02:00:00:00:00:02"])
            .and_then(|l| num_after(l, "n_bytes="))
            .is_some_and(|n| n >= 3 * 98)
}

/// dump-aggregate after that ping: the 5 flows, >= 8 packets (2 ARP, 6 ICMP).
fn aggregate_counted(out: &str) -> bool {
    out.contains("flow_count=5") && num_after(out, "packet_count=").is_some_and(|n| n >= 8)
}

/// The raw two or three lines of port `p` in a dump-ports output.
fn port_stats(out: &str, p: &str) -> String {
    out.lines()
        .skip_while(|l| !l.trim_start().starts_with(&format!("port  {p}:")))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n")
}

/// dump-ports after the pings: ports 1 and 2 listed, >= 4 packets into 1 and out of 2.
fn ports_counted(out: &str) -> bool {
    let (ports, _) = port_blocks(out);
    ports.contains_key("1")
        && ports.contains_key("2")
        && num_after(&port_stats(out, "1"), "rx pkts=").is_some_and(|n| n >= 4)
        && num_after(&port_stats(out, "2"), "tx pkts=").is_some_and(|n| n >= 4)
}

/// dump-tables: table 0 holds the 5 flows and counted lookups and matches.
fn table0_counted(out: &str) -> bool {
    let t0 = table_blocks(out)
        .get("0")
        .cloned()
        .unwrap_or_default()
        .join("\n");
    t0.contains("active=5,")
        && num_after(&t0, "lookup=").is_some_and(|n| n > 0)
        && num_after(&t0, "matched=").is_some_and(|n| n > 0)
}

/// dump-group-stats: group 1 (used by one flow) counted the ARP request it forwarded.
fn group1_counted(out: &str) -> bool {
    out.lines().any(|l| {
        l.contains("group_id=1,")
            && l.contains("ref_count=1,")
            && num_after(l, "packet_count=").is_some_and(|n| n >= 1)
    })
}

/// Checks that must hold for any correct switch (run on Open vSwitch first: the reference).
fn semantic_checks(ver: &str, t: &Target, tr: &Transcript, c: &mut Checks) {
    let of13 = ver == "OpenFlow13";
    let v = if of13 { "1.3" } else { "1.0" };
    let mut steps: Vec<&str> = OFCTL_STEPS_BOTH.to_vec();
    if of13 {
        steps.extend_from_slice(OFCTL_STEPS_13);
    }
    for s in steps {
        let o = tr.get(s);
        // ovs-ofctl's dump commands print an OFPT_ERROR reply and still exit 0.
        c.that(
            format!("{v} {s}: exits 0, no error, nothing on stderr"),
            o.ok && o.stderr.trim().is_empty() && !o.stdout.contains("OFPT_ERROR"),
            || o.show(),
        );
    }
    let f1 = &tr.get("dump-flows-1").stdout;
    c.that(
        format!("{v} add-flow/add-flows: the 5 flows are listed"),
        flow_lines(f1).len() == 5
            && find_flow(
                f1,
                &["priority=100,in_port=1,dl_dst=02:00:00:00:00:02 actions=output:2"],
            )
            .is_some()
            && find_flow(
                f1,
                &["priority=100,in_port=2,dl_dst=02:00:00:00:00:01 actions=output:1"],
            )
            .is_some()
            && find_flow(
                f1,
                &[
                    "cookie=0x5157,",
                    "priority=20,ip,nw_dst=10.0.0.99 actions=drop",
                ],
            )
            .is_some(),
        || f1.clone(),
    );
    let p1 = tr.get("ping-1");
    c.that(
        format!("{v} ping h1->h2 through the added flows"),
        p1.ok,
        || p1.show(),
    );
    let f2 = &tr.get("dump-flows-2").stdout;
    c.that(
        format!("{v} dump-flows: counters moved under traffic (>= 3 per dl_dst flow, >= 1 on the arp flow)"),
        counters_moved(f2),
        || f2.clone(),
    );
    let agg = &tr.get("dump-aggregate").stdout;
    c.that(
        format!("{v} dump-aggregate: flow_count=5, packets counted"),
        aggregate_counted(agg),
        || agg.clone(),
    );
    let f3 = &tr.get("dump-flows-3").stdout;
    c.that(
        format!("{v} mod-flows: actions replaced, counters kept"),
        find_flow(f3, &["in_port=1,dl_dst=02:00:00:00:00:02 actions=drop"])
            .and_then(|l| num_after(l, "n_packets="))
            .is_some_and(|n| n >= 3)
            && flow_lines(f3).len() == 5,
        || f3.clone(),
    );
    let p2 = tr.get("ping-2");
    c.that(
        format!("{v} mod-flows: traffic obeys the drop"),
        !p2.ok && f3.contains("dl_dst=02:00:00:00:00:02 actions=drop"),
        || format!("{}\n{f3}", p2.show()),
    );
    let p3 = tr.get("ping-3");
    c.that(
        format!("{v} --strict mod-flows: forwarding restored"),
        p3.ok,
        || p3.show(),
    );
    let dp = &tr.get("dump-ports").stdout;
    c.that(
        format!("{v} dump-ports: ports 1 and 2, rx and tx packets counted"),
        ports_counted(dp),
        || dp.clone(),
    );
    let dp1 = &tr.get("dump-ports-1").stdout;
    c.that(
        format!("{v} dump-ports PORT: just that port"),
        dp1.contains(": 1 ports") && dp1.contains("port  1:") && !dp1.contains("port  2:"),
        || dp1.clone(),
    );
    let desc = &tr.get("dump-ports-desc").stdout;
    c.that(
        format!("{v} dump-ports-desc: both ports with their names, link up"),
        t.port_names.iter().enumerate().all(|(i, n)| {
            desc.lines()
                .any(|l| l.starts_with(&format!(" {}({n}): addr:", i + 1)))
        }) && !port_blocks(desc)
            .0
            .iter()
            .filter(|(k, _)| *k == "1" || *k == "2")
            .any(|(_, b)| b.iter().any(|l| l.contains("LINK_DOWN"))),
        || desc.clone(),
    );
    let show = &tr.get("show").stdout;
    c.that(
        format!("{v} show: n_buffers:0 and both ports"),
        show.contains(", n_buffers:0")
            && t.port_names.iter().enumerate().all(|(i, n)| {
                show.lines()
                    .any(|l| l.starts_with(&format!(" {}({n}): addr:", i + 1)))
            }),
        || show.clone(),
    );
    // Port descriptions carry the switch-side interfaces' own MAC addresses.
    let mac_of = |i: usize| {
        let l = &tr.get(&format!("port-{}-link", i + 1)).stdout;
        l.split("link/ether ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("?")
            .to_string()
    };
    c.that(
        format!("{v} show, dump-ports-desc: each port's addr is its interface's MAC"),
        (0..2).all(|i| {
            let want = format!(" {}({}): addr:{}", i + 1, t.port_names[i], mac_of(i));
            show.lines().any(|l| l == want) && desc.lines().any(|l| l == want)
        }),
        || {
            format!(
                "want {} and {}
{show}
{desc}",
                mac_of(0),
                mac_of(1)
            )
        },
    );
    if of13 {
        let tf = &tr.get("dump-table-features").stdout;
        c.that(
            format!("{v} dump-table-features: table 0 described"),
            tf.lines().any(|l| l == "  table 0:") && tf.contains("max_entries="),
            || tf.clone(),
        );
    }
    let tables = &tr.get("dump-tables").stdout;
    c.that(
        format!("{v} dump-tables: table 0 has the 5 flows and counted lookups"),
        table0_counted(tables),
        || tables.clone(),
    );
    let seen = tr.get("packet-out-seen");
    c.that(
        format!("{v} packet-out: h2 received the frame (neighbour 10.0.0.99 learned)"),
        seen.stdout.contains("02:00:00:00:00:99"),
        || seen.show(),
    );
    if of13 {
        let g1 = &tr.get("dump-groups-1").stdout;
        c.that(
            format!("{v} add-group: all three groups listed"),
            g1.contains(" group_id=1,type=all,bucket=actions=output:2")
                && g1.contains(" group_id=2,type=select,bucket=weight:10,actions=output:1,bucket=weight:20,actions=output:2")
                && g1.contains(" group_id=3,type=indirect,bucket=actions=output:1"),
            || g1.clone(),
        );
        let pg = tr.get("ping-group");
        c.that(
            format!("{v} a flow with actions=group:1 forwards"),
            pg.ok,
            || pg.show(),
        );
        let gs = &tr.get("dump-group-stats").stdout;
        c.that(
            format!("{v} dump-group-stats: group 1 counted the ARP it forwarded, ref_count=1"),
            group1_counted(gs),
            || gs.clone(),
        );
        let g2 = &tr.get("dump-groups-2").stdout;
        c.that(
            format!("{v} mod-group and del-groups group_id=2"),
            g2.contains(" group_id=3,type=indirect,bucket=actions=output:2")
                && !g2.contains("group_id=2"),
            || g2.clone(),
        );
        let f4 = &tr.get("dump-flows-4").stdout;
        c.that(
            format!("{v} del-groups also deletes the flows that use the group"),
            !f4.contains("group:1") && flow_lines(f4).len() == 5,
            || f4.clone(),
        );
        let g3 = &tr.get("dump-groups-3").stdout;
        c.that(
            format!("{v} del-groups: none left"),
            !g3.contains("group_id=")
                && g3.contains("OFPST_GROUP_DESC reply")
                && g2.contains("group_id=3"),
            || g3.clone(),
        );
    }
    let f5 = &tr.get("dump-flows-5").stdout;
    c.that(
        format!("{v} del-flows in_port=2 (loose) removes exactly the in_port=2 flows"),
        flow_lines(f5).len() == 3 && !f5.contains("in_port=2"),
        || f5.clone(),
    );
    let f6 = &tr.get("dump-flows-6").stdout;
    c.that(
        format!("{v} --strict del-flows removes exactly that flow"),
        flow_lines(f6).len() == 2 && !f6.contains("arp"),
        || f6.clone(),
    );
    let f7 = &tr.get("dump-flows-7").stdout;
    c.that(
        format!("{v} del-flows: none left"),
        flow_lines(f7).is_empty() && f7.contains("_FLOW reply") && flow_lines(f6).len() == 2,
        || f7.clone(),
    );
}

/// strato's outputs against Open vSwitch's for the same steps.
fn format_checks(ver: &str, ovs: &Transcript, st: &Transcript, c: &mut Checks) {
    let of13 = ver == "OpenFlow13";
    let v = if of13 { "1.3" } else { "1.0" };
    let header = |s: &str| s.lines().next().map(norm).unwrap_or_default();
    // dump-flows: header and every flow line.
    let mut dumps = vec![
        "dump-flows-1",
        "dump-flows-2",
        "dump-flows-3",
        "dump-flows-5",
        "dump-flows-6",
        "dump-flows-7",
    ];
    if of13 {
        dumps.push("dump-flows-4");
    }
    for s in dumps {
        let (o, g) = (&ovs.get(s).stdout, &st.get(s).stdout);
        let mut want = vec![header(o)];
        want.extend(flow_lines(o));
        let mut got = vec![header(g)];
        got.extend(flow_lines(g));
        c.check(
            format!("{v} {s}: as Open vSwitch prints it"),
            equal_lines(s, &want, &got),
        );
    }
    for s in ["dump-aggregate", "dump-ports-1"] {
        let want: Vec<String> = ovs.get(s).stdout.lines().map(norm).collect();
        let got: Vec<String> = st.get(s).stdout.lines().map(norm).collect();
        c.check(
            format!("{v} {s}: as Open vSwitch prints it"),
            equal_lines(s, &want, &got),
        );
    }
    // dump-ports: the header up to the port count, and ports 1 and 2 line by line.
    let upto_count = |s: &str| {
        let h = header(s);
        h.rsplit_once(": ")
            .map_or(h.clone(), |(a, _)| a.to_string())
    };
    for s in ["dump-ports", "dump-ports-desc", "show"] {
        let (o, g) = (&ovs.get(s).stdout, &st.get(s).stdout);
        let (ob, _) = port_blocks(o);
        let (gb, _) = port_blocks(g);
        let pick = |b: &BTreeMap<String, Vec<String>>| -> Vec<String> {
            let mut v = Vec::new();
            for p in ["1", "2"] {
                let lines = b.get(p).cloned().unwrap_or_default();
                // Port descriptions: the name line and config:/state: lines (speed and
                // features are the port's own business).
                v.extend(lines.into_iter().filter(|l| {
                    s == "dump-ports" || l.contains("): addr:") || l.contains("config:")
                }));
            }
            v
        };
        c.check(
            format!("{v} {s}: header and ports 1, 2 as Open vSwitch prints them"),
            equal_lines(
                s,
                &[vec![upto_count(o)], pick(&ob)].concat(),
                &[vec![upto_count(g)], pick(&gb)].concat(),
            ),
        );
    }
    // show: the features line, and the config reply line.
    let show_lines = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                l.starts_with("OFPT_")
                    || l.starts_with("OFPST_")
                    || l.starts_with("n_tables:")
                    || l.starts_with("capabilities:")
                    || l.starts_with("actions:")
            })
            .map(|l| {
                let l = norm(l);
                // Capabilities and 1.0 action bits are the switch's own: keep the label only.
                match l.split_once(": ") {
                    Some((k, _)) if k == "capabilities" || k == "actions" => k.to_string(),
                    _ => l,
                }
            })
            .collect()
    };
    c.check(
        format!("{v} show: message lines as Open vSwitch prints them"),
        equal_lines(
            "show",
            &show_lines(&ovs.get("show").stdout),
            &show_lines(&st.get("show").stdout),
        ),
    );
    // dump-tables: header, table 0's own line (with its name, if the switch sends one: Open
    // vSwitch sends none, so ovs-ofctl prints "  table 0:" and folds identical tables into
    // "tables 2...N: ditto") and its counters line.
    let tables = |s: &str| -> Vec<String> {
        let mut v = vec![header(s)];
        v.extend(
            s.lines()
                .filter(|l| l.starts_with("  table 0:") || l.starts_with("  table 0 ("))
                .map(str::to_string),
        );
        if let Some(b) = table_blocks(s).get("0") {
            v.extend(
                b.iter()
                    .filter(|l| l.starts_with("active="))
                    .map(|l| norm(l)),
            );
        }
        v
    };
    c.check(
        format!("{v} dump-tables: header and table 0 as Open vSwitch prints them"),
        equal_lines(
            "dump-tables",
            &tables(&ovs.get("dump-tables").stdout),
            &tables(&st.get("dump-tables").stdout),
        ),
    );
    if of13 {
        for s in [
            "dump-groups-1",
            "dump-groups-2",
            "dump-groups-3",
            "dump-group-stats",
        ] {
            let lines = |x: &str| {
                let mut v: Vec<String> = x.lines().map(norm).collect();
                if v.len() > 1 {
                    v[1..].sort();
                }
                v
            };
            c.check(
                format!("{v} {s}: as Open vSwitch prints it"),
                equal_lines(s, &lines(&ovs.get(s).stdout), &lines(&st.get(s).stdout)),
            );
        }
    }
}

fn acceptance(ver: &str, test: &str) {
    support::skip_unless_root!(test);
    support::need!(test, support::ovs::need_ovs());
    support::need!(test, support::tshark::need_tshark());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new(&format!("ofctl-{}", netns::run_prefix()));

    // strato first (it names the ports); the capture covers everything done to it.
    let (lab, st_target, unix_ok, unix_err) = strato_up(dir.path());
    let capture = Capture::start(&st_target.sw_ns, &[OF_PORT], dir.path());
    let (ovs, ovs_target) = ovs_up(dir.path(), &st_target.port_names);

    let ovs_tr = scenario(&ovs_target, ver, dir.path());
    let mut reference = Checks::default();
    semantic_checks(ver, &ovs_target, &ovs_tr, &mut reference);
    assert_eq!(
        reference.failed(),
        0,
        "the REFERENCE (Open vSwitch) fails this test's own checks, so the test is wrong:\n{}\n{}",
        reference.report("Open vSwitch"),
        ovs_tr.render()
    );
    drop(ovs);

    let st_tr = scenario(&st_target, ver, dir.path());
    let mut c = Checks::default();
    semantic_checks(ver, &st_target, &st_tr, &mut c);
    format_checks(ver, &ovs_tr, &st_tr, &mut c);

    // The unix listener answers the same switch.
    let v = if ver == "OpenFlow13" { "1.3" } else { "1.0" };
    c.that(
        format!("{v} [daemon] openflow_listen accepts punix:PATH"),
        unix_ok,
        || format!("strato lab up refused it:\n{unix_err}"),
    );
    if unix_ok {
        let sock = format!("unix:{}", lab.run_dir().join("of.sock").display());
        let o = ofctl(&st_target, ver, &["show"], Some(&sock));
        let dpid = |s: &str| {
            s.split("dpid:")
                .nth(1)
                .map(|d| d[..16.min(d.len())].to_string())
        };
        c.that(
            format!("{v} show over the unix listener: same switch"),
            o.ok && dpid(&o.stdout).is_some() && dpid(&o.stdout) == dpid(&st_tr.get("show").stdout),
            || o.show(),
        );
    }

    let cap = finish(capture, OF_PORT);
    let of_frames = if ver == "OpenFlow13" {
        cap.switch_of13
    } else {
        cap.switch_of10
    };
    c.that(
        format!("{v} tshark: strato sent OpenFlow {v} frames (dissected)"),
        of_frames > 0,
        || format!("{cap:?}"),
    );
    c.that(
        format!("{v} tshark: no malformed OpenFlow frame from strato"),
        cap.malformed_switch.is_empty(),
        || {
            format!(
                "{} malformed:\n{}",
                cap.malformed_switch.len(),
                cap.malformed_switch.join("\n")
            )
        },
    );

    let report = c.report(&format!("strato, ovs-ofctl -O {ver}"));
    println!("{report}");
    println!(
        "capture: {} OpenFlow 1.0 frames, {} OpenFlow 1.3 frames ({} / {} from strato); \
         malformed: {} from strato, {} from ovs-ofctl (tshark 4.0 flags 1.0 FLOW_MODs without \
         actions); frames by type: {:?}",
        cap.of10,
        cap.of13,
        cap.switch_of10,
        cap.switch_of13,
        cap.malformed_switch.len(),
        cap.malformed_peer.len(),
        cap.types
    );
    for l in &cap.malformed_peer {
        println!("  malformed from ovs-ofctl: {l}");
    }
    if c.failed() > 0 {
        println!("---- strato transcript ----\n{}", st_tr.render());
        println!("---- Open vSwitch transcript ----\n{}", ovs_tr.render());
        println!(
            "---- strato.log (last 40 lines) ----\n{}",
            support::tail(&lab.log(), 40)
        );
    }
    drop(lab);
    assert_eq!(c.failed(), 0, "\n{report}");
}

#[test]
fn ovs_ofctl_openflow10_acceptance() {
    acceptance("OpenFlow10", "ovs_ofctl_openflow10_acceptance");
}

#[test]
fn ovs_ofctl_openflow13_acceptance() {
    acceptance("OpenFlow13", "ovs_ofctl_openflow13_acceptance");
}

/// The normaliser and the output readers, on Open vSwitch 3.1's real output (no root needed).
#[test]
fn readers_work_on_real_ovs_output() {
    let flows = "NXST_FLOW reply (xid=0x4):\n \
        cookie=0x0, duration=10.444s, table=0, n_packets=1, n_bytes=42, idle_age=10, priority=100,in_port=2,dl_dst=02:00:00:00:00:01 actions=output:1\n \
        cookie=0x5157, duration=0.5s, table=0, n_packets=0, n_bytes=0, idle_age=0, hard_age=3, priority=50,arp actions=FLOOD\n";
    let l = flow_lines(flows);
    assert_eq!(
        l,
        [
            " cookie=0x0, duration=Ns, table=0, n_packets=N, n_bytes=N, priority=100,in_port=2,dl_dst=02:00:00:00:00:01 actions=output:1",
            " cookie=0x5157, duration=Ns, table=0, n_packets=N, n_bytes=N, priority=50,arp actions=FLOOD",
        ]
    );
    assert_eq!(
        norm("NXST_FLOW reply (xid=0x4):"),
        "OFPST_FLOW reply (xid=X):"
    );
    let f = find_flow(flows, &["in_port=2"]).unwrap();
    assert_eq!(num_after(f, "n_packets="), Some(1));
    assert_eq!(num_after(f, "n_bytes="), Some(42));

    let ports = "OFPST_PORT reply (OF1.3) (xid=0x2): 3 ports\n  \
        port LOCAL: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0\n           \
        tx pkts=0, bytes=0, drop=1, errs=0, coll=0\n           duration=22.333s\n  \
        port  1: rx pkts=15, bytes=1286, drop=0, errs=0, frame=0, over=0, crc=0\n           \
        tx pkts=10, bytes=740, drop=0, errs=0, coll=0\n           duration=22.316s\n";
    let (b, other) = port_blocks(ports);
    assert_eq!(other, ["OFPST_PORT reply (OF1.3) (xid=X): 3 ports"]);
    assert_eq!(b["1"].len(), 3);
    assert_eq!(
        b["1"][0],
        "  port  1: rx pkts=N, bytes=N, drop=N, errs=N, frame=N, over=N, crc=N"
    );
    assert!(b.contains_key("LOCAL"));

    let desc = "OFPST_PORT_DESC reply (OF1.3) (xid=0x2):\n \
        1(v1): addr:4e:cf:f8:d6:c8:5d\n     config:     0\n     state:      LIVE\n     \
        current:    10GB-FD COPPER\n     speed: 10000 Mbps now, 0 Mbps max\n \
        LOCAL(br0): addr:ae:82:52:13:6e:47\n     config:     PORT_DOWN\n     state:      LINK_DOWN\n";
    let (b, _) = port_blocks(desc);
    assert_eq!(b["1"][0], " 1(v1): addr:X");
    assert_eq!(b["1"].len(), 5);
    assert_eq!(b["LOCAL"].len(), 3);

    let tables = "OFPST_TABLE reply (OF1.3) (xid=0x2):\n  table 0:\n    active=4, lookup=23, matched=14\n\n  table 1:\n    active=0, lookup=0, matched=0\n\n  tables 2...253: ditto\n";
    let t = table_blocks(tables);
    assert_eq!(t["0"], ["active=4, lookup=23, matched=14"]);
    let named = table_blocks(
        "OFPST_TABLE reply (xid=0x2):\n  table 0 (\"table0\"):\n    active=5, lookup=15, matched=15\n",
    );
    assert_eq!(named["0"], ["active=5, lookup=15, matched=15"]);
    assert_eq!(norm(&t["0"][0]), "active=4, lookup=N, matched=N");
    assert_eq!(
        norm("OFPT_FEATURES_REPLY (OF1.3) (xid=0x2): dpid:0000000000000abc"),
        "OFPT_FEATURES_REPLY (OF1.3) (xid=X): dpid:X"
    );
    assert_eq!(
        norm("n_tables:254, n_buffers:0"),
        "n_tables:N, n_buffers:0",
        "n_buffers is compared, not masked"
    );
    assert_eq!(
        norm(" group_id=1,duration=0.168s,ref_count=1,packet_count=0,byte_count=0,bucket0:packet_count=0,byte_count=0"),
        " group_id=1,duration=Ns,ref_count=1,packet_count=N,byte_count=N,bucket0:packet_count=N,byte_count=N"
    );
    // The checklist reports failures and counts them.
    let mut c = Checks::default();
    c.that("a", true, String::new);
    c.that("b", false, || "why".into());
    assert_eq!(c.failed(), 1);
    let r = c.report("t");
    assert!(
        r.contains("PASS a") && r.contains("FAIL b") && r.contains("why"),
        "{r}"
    );
}
