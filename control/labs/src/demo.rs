//! `strato demo`: two hypervisor hosts, two tenants with the same CIDR, VXLAN between them.
//!
//! - As root, [`run_tenant`] runs the real thing on a multi-host lab ([`crate::hvlab`]): two
//!   host namespaces each running `strato run` with a `[tenant]` section (the first also serving
//!   the tenant API), an underlay bridge between their AF_XDP underlays, two tenants `red` and
//!   `blue` both on 10.0.0.0/24, and four VMs ([`TENANT_VMS`]: each tenant one VM per host,
//!   tap and veth mixed). The networks, subnets and ports are created through the Neutron API;
//!   the VMs get their addresses by DHCP (busybox udhcpc) from strato; pings across hosts inside
//!   each tenant must succeed and pings to an address that exists only in the other tenant must
//!   fail; then each host's `ctl stats` and `dump-flows` are printed and the lab is torn down
//!   (also on failure). Any check that fails makes the demo fail (non-zero exit).
//! - [`run`] (`strato demo --memory`, and the fallback when not root) is the in-memory version:
//!   each host a full strato (controller thread + worker thread), their underlay ports joined
//!   back to back by two frame rings, VMs as memory ports, the flow rules written here by hand
//!   the way the tenant compiler writes them: VM port -> (VNI, remote VTEP) -> tunnel; tunnel +
//!   VNI -> VM port. Every packet's first appearance goes up as an upcall, is translated,
//!   installed and re-injected; the rest hit the caches.

use crate::hvlab::{Attach, HvLab, HvLabError, LabConfig};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_datapath::port::{FrameRing, MemPort, Port, PortKind};
use strato_datapath::stats::PortCounters;
use strato_datapath::stats::WorkerCounters;
use strato_datapath::worker::WorkerConfig;
use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{Action, OfPort, Pipeline, PortEnv, TunnelPortCfg};
use strato_flowtable::tunnel::VXLAN_PORT;
use strato_flowtable::Match;
use strato_switch::controller::{start, ControlError, Running};

/// Tunnel (virtual) port number on each host.
pub const TUNNEL: u32 = 10;
/// Underlay port number on each host.
pub const UNDERLAY: u32 = 3;

/// One tenant's VNI and its VM on each host.
#[derive(Clone, Copy, Debug)]
pub struct Tenant {
    /// Name.
    pub name: &'static str,
    /// VXLAN network identifier.
    pub vni: u32,
    /// VM port number on both hosts.
    pub port: u32,
}

/// The demo's two tenants (both use 10.0.0.0/24).
pub const TENANTS: [Tenant; 2] = [
    Tenant {
        name: "red",
        vni: 100,
        port: 1,
    },
    Tenant {
        name: "blue",
        vni: 200,
        port: 2,
    },
];

/// One host of the demo.
pub struct Host {
    /// Host name.
    pub name: &'static str,
    /// VTEP address.
    pub vtep: Ipv4Addr,
    /// The running switch.
    pub switch: Running,
    /// VM port rings (to the VM = what strato transmits; from the VM = what it receives),
    /// per tenant.
    pub vms: Vec<(Arc<FrameRing>, Arc<FrameRing>)>,
}

/// The demo topology.
pub struct Lab {
    /// Host A and host B.
    pub hosts: [Host; 2],
}

/// One host's worker counters and its ports' counters (number, name, counters).
pub type HostCounters = (WorkerCounters, Vec<(u32, String, PortCounters)>);

/// What one direction of VM traffic achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Tenant of the sender.
    pub tenant: &'static str,
    /// Frames sent.
    pub sent: u32,
    /// Frames the same tenant's VM on the other host received.
    pub same_tenant: u32,
    /// Frames any other tenant's VM received.
    pub other_tenants: u32,
}

fn vm_mac(tenant: usize, host: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, tenant as u8 + 1, host as u8 + 1]
}

fn vtep_mac(host: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0xee, host as u8 + 1]
}

/// A UDP datagram from tenant `t`'s VM on `host` to its VM on the other host
/// (10.0.0.{host+1} -> 10.0.0.{other+1}).
pub fn vm_frame(t: usize, host: usize, seq: u16) -> Vec<u8> {
    let other = 1 - host;
    let b = etherparse::PacketBuilder::ethernet2(vm_mac(t, host), vm_mac(t, other))
        .ipv4([10, 0, 0, host as u8 + 1], [10, 0, 0, other as u8 + 1], 64)
        .udp(40_000 + seq, 7);
    let mut v = Vec::new();
    // Cannot fail: writing into a Vec.
    let _ = b.write(&mut v, b"strato demo payload");
    v
}

fn host_rules(host: usize) -> Pipeline {
    let remote = if host == 0 {
        Ipv4Addr::new(192, 168, 100, 2)
    } else {
        Ipv4Addr::new(192, 168, 100, 1)
    };
    let mut p = Pipeline::default();
    for t in TENANTS {
        let from_vm = Match::default().with(Field::InPort, t.port as u128);
        let to_tunnel = vec![
            Action::SetField {
                field: Field::TunId,
                value: t.vni as u128,
            },
            Action::SetField {
                field: Field::TunIpv4Dst,
                value: u32::from(remote) as u128,
            },
            Action::Output(OfPort::Port(TUNNEL)),
        ];
        // Cannot fail: fixed, valid rules.
        let _ = p.add_apply(0, 100, from_vm, to_tunnel);
        let from_tunnel = Match::default()
            .with(Field::InPort, TUNNEL as u128)
            .with(Field::TunId, t.vni as u128);
        let _ = p.add_apply(
            0,
            100,
            from_tunnel,
            vec![Action::Output(OfPort::Port(t.port))],
        );
    }
    p
}

fn host_env(host: usize) -> PortEnv {
    let (local, remote) = if host == 0 { (1u8, 2u8) } else { (2, 1) };
    let mut env = PortEnv::default();
    for t in TENANTS {
        env.add_port(t.port, true, true);
    }
    env.add_port(UNDERLAY, true, false);
    env.add_tunnel(TunnelPortCfg {
        port: TUNNEL,
        underlay_port: UNDERLAY,
        local_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 100, local)),
        local_mac: vtep_mac(host),
        remote_ip: None,
        vni: None,
        dst_port: VXLAN_PORT,
        ttl: 64,
        udp_csum: true,
        neighbors: [(
            IpAddr::V4(Ipv4Addr::new(192, 168, 100, remote)),
            vtep_mac(1 - host),
        )]
        .into_iter()
        .collect(),
    });
    env
}

/// Builds and starts both hosts.
pub fn build() -> Result<Lab, ControlError> {
    let a_to_b = FrameRing::new(1024);
    let b_to_a = FrameRing::new(1024);
    let mut hosts = Vec::new();
    for (h, name) in ["host-a", "host-b"].into_iter().enumerate() {
        let cfg = WorkerConfig {
            emc_insert_inv_prob: 1,
            smc_entries: 1 << 12,
            megaflow_capacity: 4096,
            buffers: 2048,
            ..WorkerConfig::default()
        };
        let switch = start(host_rules(h), host_env(h), vec![cfg])?;
        let (rx, tx) = if h == 0 {
            (b_to_a.clone(), a_to_b.clone())
        } else {
            (a_to_b.clone(), b_to_a.clone())
        };
        let mut vms = Vec::new();
        let mut ports = vec![Port::new(
            UNDERLAY,
            "underlay",
            PortKind::Memory(MemPort::rings(rx, tx)),
        )];
        for t in TENANTS {
            let (from_vm, to_vm) = (FrameRing::new(256), FrameRing::new(256));
            ports.push(Port::new(
                t.port,
                format!("{}-vm", t.name),
                PortKind::Memory(MemPort::rings(from_vm.clone(), to_vm.clone())),
            ));
            vms.push((to_vm, from_vm));
        }
        switch.handle.call(move |c| {
            for p in ports {
                c.add_port(0, p);
            }
        })?;
        switch.handle.sync()?;
        let vtep = Ipv4Addr::new(192, 168, 100, h as u8 + 1);
        hosts.push(Host {
            name,
            vtep,
            switch,
            vms,
        });
    }
    let [a, b]: [Host; 2] = hosts.try_into().map_err(|_| ControlError::Stopped)?;
    Ok(Lab { hosts: [a, b] })
}

impl Lab {
    /// Tenant `t`'s VM on `host` sends `n` frames to its peer; waits for them to arrive and
    /// reports where they went.
    pub fn send(&self, t: usize, host: usize, n: u32) -> Result<Delivery, ControlError> {
        let other = &self.hosts[1 - host];
        for (to_vm, _) in &other.vms {
            to_vm.drain();
        }
        let from_vm = &self.hosts[host].vms[t].1;
        let mut sent = 0;
        for i in 0..n {
            while from_vm.push(&vm_frame(t, host, i as u16)).is_err() {
                std::thread::sleep(Duration::from_micros(100));
            }
            sent += 1;
        }
        let mut got = vec![0u32; TENANTS.len()];
        let t0 = Instant::now();
        while got[t] < n && t0.elapsed() < Duration::from_secs(5) {
            for (i, (to_vm, _)) in other.vms.iter().enumerate() {
                for f in to_vm.drain() {
                    // Count only frames that are the sender's, intact.
                    if f.get(6..12) == Some(&vm_mac(t, host)[..]) {
                        got[i] += 1;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Settle, then count anything that leaked to another tenant.
        std::thread::sleep(Duration::from_millis(20));
        for (i, (to_vm, _)) in other.vms.iter().enumerate() {
            got[i] += to_vm
                .drain()
                .iter()
                .filter(|f| f.get(6..12) == Some(&vm_mac(t, host)[..]))
                .count() as u32;
        }
        let other_tenants = got
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != t)
            .map(|(_, c)| c)
            .sum();
        Ok(Delivery {
            tenant: TENANTS[t].name,
            sent,
            same_tenant: got[t],
            other_tenants,
        })
    }

    /// Per-host worker counters and per-port counters (synchronised snapshot).
    pub fn counters(&self) -> Result<Vec<HostCounters>, ControlError> {
        let mut out = Vec::new();
        for h in &self.hosts {
            h.switch.handle.sync()?;
            out.push(h.switch.handle.call(|c| c.counters())?);
        }
        Ok(out)
    }
}

/// Runs the demo and prints what happened.
pub fn run(packets: u32) -> Result<(), ControlError> {
    println!("strato demo: two hypervisor hosts (host-a 192.168.100.1, host-b 192.168.100.2), VXLAN between them");
    println!(
        "tenants red (VNI 100) and blue (VNI 200), both 10.0.0.0/24; one VM of each on each host\n"
    );
    let lab = build()?;
    let mut ok = true;
    for (t, tenant) in TENANTS.iter().enumerate() {
        for host in 0..2 {
            let d = lab.send(t, host, packets)?;
            let good = d.same_tenant == d.sent && d.other_tenants == 0;
            ok &= good;
            println!(
                "{:<5} 10.0.0.{} ({}) -> 10.0.0.{} ({}): sent {}, received by {} VM {}, by other tenants {}  [{}]",
                tenant.name,
                host + 1,
                lab.hosts[host].name,
                2 - host,
                lab.hosts[1 - host].name,
                d.sent,
                tenant.name,
                d.same_tenant,
                d.other_tenants,
                if good { "ok" } else { "FAILED" }
            );
        }
    }
    println!();
    for (h, (w, ports)) in lab.counters()?.into_iter().enumerate() {
        println!(
            "{}: rx {} pkts, emc hits {}, smc hits {}, megaflow hits {}, upcalls {}, recirculations {}, drops {}",
            lab.hosts[h].name, w.rx_packets, w.emc_hits, w.smc_hits, w.megaflow_hits, w.upcalls, w.recirculations, w.total_drops()
        );
        for (no, name, c) in ports {
            println!(
                "  port {no:>2} {name:<10} rx {:>5} pkts {:>7} B   tx {:>5} pkts {:>7} B",
                c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes
            );
        }
    }
    if ok {
        println!("\ndemo ok: traffic crosses hosts inside each tenant and never between tenants");
        Ok(())
    } else {
        Err(ControlError::Demo(
            "some traffic did not arrive where it should (see above)".into(),
        ))
    }
}

// ---- the tenant demo on a real multi-host lab ----

/// Why the tenant demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Building or driving the lab failed.
    #[error(transparent)]
    Lab(#[from] HvLabError),
    /// Checks failed: {0}
    #[error("the demo's checks failed: {0}")]
    Checks(String),
}

/// One VM of the tenant demo.
#[derive(Debug, Clone, Copy)]
pub struct TenantVm {
    /// VM name.
    pub name: &'static str,
    /// Its tenant (`tenant_id`).
    pub tenant: &'static str,
    /// Its hypervisor host.
    pub host: &'static str,
    /// How it is attached.
    pub attach: Attach,
}

/// The demo's VMs: each tenant one VM per host, taps and veths mixed.
pub const TENANT_VMS: [TenantVm; 4] = [
    TenantVm {
        name: "red1",
        tenant: "red",
        host: "hv1",
        attach: Attach::Tap,
    },
    TenantVm {
        name: "red2",
        tenant: "red",
        host: "hv2",
        attach: Attach::Veth,
    },
    TenantVm {
        name: "blue1",
        tenant: "blue",
        host: "hv1",
        attach: Attach::Veth,
    },
    TenantVm {
        name: "blue2",
        tenant: "blue",
        host: "hv2",
        attach: Attach::Tap,
    },
];

/// The subnet both tenants use.
pub const TENANT_CIDR: &str = "10.0.0.0/24";

/// Each tenant's allocation pool inside [`TENANT_CIDR`]: disjoint, so that an address of one
/// tenant exists nowhere in the other (what the cross-tenant pings aim at).
pub fn tenant_pool(tenant: &str) -> (Ipv4Addr, Ipv4Addr) {
    if tenant == "red" {
        (Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 99))
    } else {
        (Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 199))
    }
}

/// The demo's tenants, in order.
pub const TENANT_NAMES: [&str; 2] = ["red", "blue"];

/// Builds the demo's lab (two hosts, `kernel_hosts` kernel VXLAN hosts), both tenants'
/// networks and subnets, and the four VMs; returns the lab and each tenant's network object.
pub fn tenant_lab(
    exe: &Path,
    kernel_hosts: usize,
    progress: bool,
) -> Result<(HvLab, BTreeMap<&'static str, serde_json::Value>), HvLabError> {
    let mut cfg = LabConfig::new(exe, 2, kernel_hosts);
    cfg.tenants = TENANT_NAMES.iter().map(|t| t.to_string()).collect();
    cfg.progress = progress;
    let mut lab = HvLab::build(&cfg)?;
    let mut nets = BTreeMap::new();
    for t in TENANT_NAMES {
        let net = lab.create_network(t, &format!("{t}-net"))?;
        let id = net["id"].as_str().unwrap_or_default().to_string();
        let sub = lab.create_subnet(t, &id, TENANT_CIDR, Some(tenant_pool(t)))?;
        if progress {
            println!(
                "demo: tenant {t}: network {id} (VNI {}), subnet {} {TENANT_CIDR} pool {}-{}",
                net["provider:segmentation_id"],
                sub["id"].as_str().unwrap_or("?"),
                tenant_pool(t).0,
                tenant_pool(t).1
            );
        }
        nets.insert(t, net);
    }
    for vm in TENANT_VMS {
        let id = nets[vm.tenant]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        lab.add_vm(vm.name, vm.host, vm.attach, vm.tenant, &id, None)?;
    }
    Ok((lab, nets))
}

/// Runs the tenant demo with `exe` as the daemon binary (see the module docs); `pings` echo
/// requests per check.
pub fn run_tenant(exe: &Path, pings: u32) -> Result<(), DemoError> {
    println!("strato demo: two hypervisor hosts (namespaces hv1, hv2), each running `strato run` with a [tenant] section;");
    println!("hv1 serves the tenant API; tenants red and blue both use {TENANT_CIDR}; VXLAN on the underlay bridge\n");
    let (lab, _nets) = tenant_lab(exe, 0, true)?;
    let mut failures: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        println!("demo: {what}  [{}]", if ok { "ok" } else { "FAILED" });
        if !ok {
            failures.push(what);
        }
    };

    println!("\n== DHCP (busybox udhcpc in each VM; strato answers from the port's fixed IP)");
    let mut addr: BTreeMap<&str, Ipv4Addr> = BTreeMap::new();
    for vm in TENANT_VMS {
        let want = lab.vm(vm.name)?.ip;
        match lab.dhcp(vm.name, Duration::from_secs(10)) {
            Ok(l) => {
                check(
                    Some(l.ip) == want,
                    format!(
                        "{} ({}, {}) leased {} (port's address {})",
                        vm.name,
                        vm.tenant,
                        vm.host,
                        l.ip,
                        want.map(|i| i.to_string()).unwrap_or_else(|| "none".into())
                    ),
                );
                addr.insert(vm.name, l.ip);
            }
            Err(e) => check(false, format!("{}: {e}", vm.name)),
        }
    }

    println!("\n== pings inside each tenant, across hosts (must answer)");
    for (a, b) in [
        ("red1", "red2"),
        ("red2", "red1"),
        ("blue1", "blue2"),
        ("blue2", "blue1"),
    ] {
        let Some(&dst) = addr.get(b) else {
            check(false, format!("{a} -> {b}: {b} has no address"));
            continue;
        };
        let p = lab.ping(a, dst, pings)?;
        check(
            p.all_ok(),
            format!(
                "{a} -> {b} ({dst}): {}/{} replies",
                p.received, p.transmitted
            ),
        );
    }

    println!(
        "\n== pings across tenants (must get nothing: the address exists only in the other tenant)"
    );
    for (a, b) in [("red1", "blue2"), ("blue1", "red2")] {
        let Some(&dst) = addr.get(b) else {
            check(false, format!("{a} -> {b}: {b} has no address"));
            continue;
        };
        let p = lab.ping(a, dst, pings)?;
        check(
            p.received == 0 && p.transmitted > 0,
            format!(
                "{a} -> {dst} ({b}'s address, other tenant): {}/{} replies",
                p.received, p.transmitted
            ),
        );
    }

    for h in lab.hosts() {
        println!("\n== {}: strato ctl stats", h.name);
        match lab.stats(&h.name) {
            Ok(s) => print!("{}", strato_ctl::render_stats(&s)),
            Err(e) => check(false, format!("{}: stats: {e}", h.name)),
        }
        println!("\n== {}: strato ctl dump-flows", h.name);
        match lab.dump_flows(&h.name) {
            Ok(f) => print!("{}", strato_ctl::render_flows(&f)),
            Err(e) => check(false, format!("{}: dump-flows: {e}", h.name)),
        }
    }
    if failures.is_empty() {
        println!("\ndemo ok: DHCP served every VM, traffic crosses hosts inside each tenant and never between tenants");
        Ok(())
    } else {
        println!("\n== the daemons' logs end with:\n{}", lab.log_tails(15));
        Err(DemoError::Checks(failures.join("; ")))
    }
}
