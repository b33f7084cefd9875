//! The multi-host tenant lab (root): hypervisor hosts as namespaces each running `strato run`
//! with a `[tenant]` section, the tenant API on the first host, VMs on taps and veths.
//!
//! - `lab_comes_up_and_tears_down`: the parts that need no tenant traffic: namespaces, the
//!   underlay and management bridges, every daemon answering, the API reachable from the other
//!   host across the management bridge, ports bound by the API becoming taps and veths in the
//!   VMs, and nothing of the lab left after drop.
//! - `tenants_get_dhcp_and_stay_isolated_across_hosts`: the demo's scenario (`strato demo`):
//!   two tenants on 10.0.0.0/24, four VMs, DHCP leases equal to the ports' addresses, pings
//!   across hosts inside each tenant answered, pings to the other tenant's addresses not.
//! - `kernel_vxlan_peer_talks_to_a_strato_vm`: a Linux VXLAN device on the same underlay as a
//!   further host exchanges pings with a strato VM in both directions, and its rx counters show
//!   the frames really arrived as VXLAN.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;
use strato_labs::demo::{tenant_lab, TENANT_VMS};
use strato_labs::hvlab::{self, Attach, HvLab, LabConfig};
use strato_labs::netns;
use support::strato::STRATO;

fn tails(lab: &HvLab) -> String {
    lab.log_tails(25)
}

/// Adds a VM on network `id` of tenant red, failing the test with the daemons' logs.
fn add_vm(lab: &mut HvLab, vm: &str, host: &str, attach: Attach, id: &str) {
    let r = lab.add_vm(vm, host, attach, "red", id, None).map(|_| ());
    if let Err(e) = r {
        panic!("VM {vm}: {e}\n{}", tails(lab));
    }
}

#[test]
fn lab_comes_up_and_tears_down() {
    support::skip_unless_root!("lab_comes_up_and_tears_down");
    let mut cfg = LabConfig::new(STRATO, 2, 1);
    cfg.tenants = vec!["red".into()];
    let prefix;
    {
        let mut lab = HvLab::build(&cfg).unwrap_or_else(|e| panic!("lab: {e}"));
        prefix = lab.prefix().to_string();
        let mut names = netns::list_with_prefix(&prefix).unwrap();
        names.sort();
        let want: Vec<String> = ["fab", "hv1", "hv2", "kh1"]
            .iter()
            .map(|n| format!("{prefix}-{n}"))
            .collect();
        assert_eq!(names, want);

        // The management network: the API answers from the other host's namespace.
        let hv2 = lab.host("hv2").unwrap().ns();
        let (st, v) = lab
            .api_from(hv2, hvlab::PROVIDER_TOKEN, "GET", "/v2.0/networks", None)
            .unwrap_or_else(|e| panic!("API from hv2: {e}\n{}", tails(&lab)));
        assert_eq!(st, 200, "{v}");
        // A tenant token sees its own view; a wrong token is refused.
        let tok = hvlab::tenant_token("red");
        let (st, _) = lab
            .api_from(hv2, &tok, "GET", "/v2.0/networks", None)
            .unwrap();
        assert_eq!(st, 200);
        let (st, _) = lab
            .api_from(hv2, "wrong", "GET", "/v2.0/networks", None)
            .unwrap();
        assert_eq!(st, 401);
        let nets = lab.api("GET", "/v2.0/networks", None).unwrap();
        assert!(nets["networks"].as_array().unwrap().is_empty(), "{nets}");

        let net = lab.create_network("red", "red-net").unwrap();
        let vni = net["provider:segmentation_id"].as_u64().unwrap();
        assert!(vni >= 1, "{net}");
        let id = net["id"].as_str().unwrap().to_string();
        lab.create_subnet("red", &id, "10.0.0.0/24", None).unwrap();

        // Ports bound to hv1/hv2 become interfaces in the VMs: a tap strato creates, a veth.
        for (vm, host, attach) in [("a", "hv1", Attach::Tap), ("b", "hv2", Attach::Veth)] {
            add_vm(&mut lab, vm, host, attach, &id);
            let v = lab.vm(vm).unwrap();
            let mac = v.mac.clone();
            assert_eq!(v.port["binding:host_id"], host);
            assert_eq!(v.port["binding:profile"]["kind"], attach.kind());
            let o = lab
                .vm_exec(vm, "ip", &["-o", "link", "show", "dev", "eth0"])
                .unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success() && text.contains(&mac), "{text}");
            // strato shows the port on the host's bridge once its agent has attached it (the
            // binding reaches hv2 through the feed, then the attach thread opens it).
            let want = format!("{}-{vm}", attach.kind());
            let show = support::retry(
                Duration::from_secs(10),
                Duration::from_millis(50),
                || lab.stats(host).unwrap(),
                |show| show.ports.iter().any(|p| p.name == want),
            );
            assert!(
                show.ports.iter().any(|p| p.name == want),
                "{host} has no port for VM {vm}: {:?}\n{}",
                show.ports.iter().map(|p| &p.name).collect::<Vec<_>>(),
                tails(&lab)
            );
        }
        lab.check_daemons()
            .unwrap_or_else(|e| panic!("a daemon died: {e}"));
    }
    assert!(
        netns::list_with_prefix(&prefix).unwrap().is_empty(),
        "namespaces left after drop"
    );
}

#[test]
fn tenants_get_dhcp_and_stay_isolated_across_hosts() {
    support::skip_unless_root!("tenants_get_dhcp_and_stay_isolated_across_hosts");
    let (lab, _nets) =
        tenant_lab(STRATO.as_ref(), 0, false).unwrap_or_else(|e| panic!("tenant lab: {e}"));
    let mut addr = std::collections::BTreeMap::new();
    for vm in TENANT_VMS {
        let want = lab
            .vm(vm.name)
            .unwrap()
            .ip
            .expect("the port has an address");
        let (lo, hi) = strato_labs::demo::tenant_pool(vm.tenant);
        assert!(
            lo <= want && want <= hi,
            "{} got {want} outside its pool",
            vm.name
        );
        let lease = lab
            .dhcp(vm.name, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}\n{}", tails(&lab)));
        assert_eq!(lease.ip, want, "{}: lease {:?}", vm.name, lease.env);
        assert_eq!(
            lease.env.get("mask").map(String::as_str),
            Some("24"),
            "{:?}",
            lease.env
        );
        addr.insert(vm.name, lease.ip);
    }
    for (a, b) in [
        ("red1", "red2"),
        ("red2", "red1"),
        ("blue1", "blue2"),
        ("blue2", "blue1"),
    ] {
        let p = lab.ping(a, addr[b], 3).unwrap();
        assert!(
            p.all_ok(),
            "{a} -> {b} ({}) inside one tenant, across hosts:\n{}\n{}",
            addr[b],
            p.output,
            tails(&lab)
        );
    }
    for (a, b) in [
        ("red1", "blue2"),
        ("red2", "blue1"),
        ("blue1", "red2"),
        ("blue2", "red1"),
    ] {
        let p = lab.ping(a, addr[b], 3).unwrap();
        assert_eq!(
            p.received, 0,
            "{a} reached {b}'s address {} in the other tenant:\n{}",
            addr[b], p.output
        );
    }
    // The traffic crossed the underlay: each host's underlay port both sent and received.
    for h in ["hv1", "hv2"] {
        let s = lab.stats(h).unwrap();
        let ul = s
            .ports
            .iter()
            .find(|p| p.name == hvlab::UNDERLAY_IF)
            .unwrap_or_else(|| panic!("{h}: no underlay port in {:?}", s.ports));
        assert!(
            ul.rx_packets > 0 && ul.tx_packets > 0,
            "{h} underlay: {ul:?}"
        );
    }
}

#[test]
fn kernel_vxlan_peer_talks_to_a_strato_vm() {
    support::skip_unless_root!("kernel_vxlan_peer_talks_to_a_strato_vm");
    let mut cfg = LabConfig::new(STRATO, 2, 1);
    cfg.tenants = vec!["red".into()];
    let mut lab = HvLab::build(&cfg).unwrap_or_else(|e| panic!("lab: {e}"));
    let net = lab.create_network("red", "red-net").unwrap();
    let id = net["id"].as_str().unwrap().to_string();
    lab.create_subnet("red", &id, "10.0.0.0/24", None).unwrap();
    add_vm(&mut lab, "v1", "hv1", Attach::Tap, &id);
    add_vm(&mut lab, "v2", "hv2", Attach::Veth, &id);
    let kip = Ipv4Addr::new(10, 0, 0, 250);
    let k = lab
        .attach_kernel_host("kh1", "red", &id, kip, 24, "02:00:00:77:00:01")
        .unwrap_or_else(|e| panic!("{e}\n{}", tails(&lab)));
    assert_eq!(
        Some(u64::from(k.vni)),
        net["provider:segmentation_id"].as_u64()
    );
    for vm in ["v1", "v2"] {
        let want = lab.vm(vm).unwrap().ip;
        let lease = lab
            .dhcp(vm, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}\n{}", tails(&lab)));
        assert_eq!(Some(lease.ip), want);
    }
    let (rx0, _) = lab.kernel_vxlan_packets("kh1").unwrap();
    // strato VM -> kernel peer, from both hosts.
    for vm in ["v1", "v2"] {
        let p = lab.ping(vm, kip, 3).unwrap();
        assert!(
            p.all_ok(),
            "{vm} -> kernel VXLAN peer {kip}:\n{}\n{}",
            p.output,
            tails(&lab)
        );
    }
    // Kernel peer -> strato VMs.
    let kh = lab.kernel_host("kh1").unwrap().ns();
    for vm in ["v1", "v2"] {
        let ip = lab.vm(vm).unwrap().ip.unwrap();
        let p = HvLab::ping_in(kh, ip, 3).unwrap();
        assert!(
            p.all_ok(),
            "kernel VXLAN peer -> {vm} ({ip}):\n{}\n{}",
            p.output,
            tails(&lab)
        );
    }
    // What reached vx0 came in as VXLAN on the underlay (vx0 only ever sees decapsulated
    // frames of its VNI): at least the 6 echo requests and 6 replies' worth.
    let (rx1, _) = lab.kernel_vxlan_packets("kh1").unwrap();
    assert!(
        rx1 >= rx0 + 12,
        "vx0 rx packets went from {rx0} to {rx1}: the VXLAN frames did not arrive"
    );
}
