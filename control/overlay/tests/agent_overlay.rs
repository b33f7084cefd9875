//! Two hosts' tenant agents in one process, joined back to back by memory rings as their
//! underlay, following one tenant service: VMs (memory ports attached through the agents'
//! attach requests) of two tenants with the same CIDR. Checks the whole path the daemon uses,
//! minus the kernel: underlay ARP between the VTEPs, ARP suppression, VXLAN across hosts,
//! isolation between tenants, spoof drops, head-end replication and port deletion.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strato_datapath::port::{FrameRing, MemPort, Port as DpPort, PortKind};
use strato_datapath::worker::WorkerConfig;
use strato_flowtable::pipeline::{Pipeline, PortEnv};
use strato_overlay::agent::{self, source, underlay, Agent, AgentSpec, AgentStats};
use strato_overlay::compiler::RuleKind;
use strato_switch::controller::{start, ControllerHandle, Running};
use strato_tenant::auth::Caller;
use strato_tenant::ipam::GatewaySpec;
use strato_tenant::model::{InterfaceKind, LocalInterface, MacAddr, Port};
use strato_tenant::service::{NetworkCreate, PortCreate, SubnetCreate};
use strato_tenant::{TenantConfig, TenantService};

const UNDERLAY: u32 = 100;
const TUNNEL: u32 = 4789;
const WAIT: Duration = Duration::from_secs(10);

/// A VM's rings: what it sends (the switch reads) and what it receives.
#[derive(Clone)]
struct Vm {
    to_switch: Arc<FrameRing>,
    from_switch: Arc<FrameRing>,
}

struct Host {
    run: Running,
    vms: Arc<Mutex<HashMap<String, Vm>>>,
}

impl Host {
    fn handle(&self) -> &ControllerHandle {
        &self.run.handle
    }

    fn vm(&self, name: &str) -> Vm {
        let t = Instant::now();
        loop {
            if let Some(v) = self.vms.lock().unwrap().get(name) {
                return v.clone();
            }
            assert!(t.elapsed() < WAIT, "{name} was never attached");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stats(&self) -> AgentStats {
        agent::status(self.handle())
            .unwrap()
            .expect("agent installed")
            .1
    }

    /// Packets counted by the rules of `kind`.
    fn rule_packets(&self, kind: RuleKind) -> u64 {
        self.handle()
            .call(move |c| {
                c.pipeline()
                    .rules()
                    .filter(|r| RuleKind::of_cookie(r.cookie) == Some(kind))
                    .map(|r| r.packets)
                    .sum()
            })
            .unwrap()
    }
}

fn config() -> TenantConfig {
    toml::from_str(
        r#"
        [[token]]
        token = "p"
        role = "provider"
        [[host]]
        name = "hv1"
        vtep_ip = "192.0.2.1"
        [[host]]
        name = "hv2"
        vtep_ip = "192.0.2.2"
        "#,
    )
    .unwrap()
}

fn host(
    name: &str,
    svc: &Arc<TenantService>,
    ul_rx: Arc<FrameRing>,
    ul_tx: Arc<FrameRing>,
    mac: [u8; 6],
) -> Host {
    let run = start(
        Pipeline::default(),
        PortEnv::default(),
        vec![WorkerConfig::default()],
    )
    .unwrap();
    let h = run.handle.clone();
    h.call(move |c| {
        c.add_port(
            0,
            DpPort::new(
                UNDERLAY,
                "ul",
                PortKind::Memory(MemPort::rings(ul_rx, ul_tx)),
            ),
        );
        c.update(|_, env| {
            env.add_port(UNDERLAY, true, true);
        });
    })
    .unwrap();
    // The attach thread: a memory port per interface the agent asks for.
    let vms: Arc<Mutex<HashMap<String, Vm>>> = Arc::default();
    let (tx, rx) = crossbeam::channel::unbounded::<LocalInterface>();
    let (h2, vms2) = (h.clone(), vms.clone());
    std::thread::spawn(move || {
        let mut next = 1;
        while let Ok(i) = rx.recv() {
            if vms2.lock().unwrap().contains_key(&i.name) {
                continue;
            }
            let vm = Vm {
                to_switch: FrameRing::new(256),
                from_switch: FrameRing::new(256),
            };
            let (no, name) = (next, i.name.clone());
            next += 1;
            let port = DpPort::new(
                no,
                name.clone(),
                PortKind::Memory(MemPort::rings(vm.to_switch.clone(), vm.from_switch.clone())),
            );
            if h2
                .call(move |c| {
                    c.add_port(0, port);
                    c.update(|_, env| {
                        env.add_port(no, true, true);
                    });
                })
                .is_err()
            {
                return;
            }
            vms2.lock().unwrap().insert(name, vm);
        }
    });
    let wake: source::Wake = {
        let h = h.clone();
        Arc::new(move || h.wake())
    };
    let spec = AgentSpec {
        host: name.into(),
        underlay: UNDERLAY,
        underlay_mac: mac,
        tunnel_ofport: TUNNEL,
        attach: Box::new(move |i| {
            let _ = tx.send(i);
        }),
    };
    agent::install(&h, Agent::new(spec, source::local(svc, wake))).unwrap();
    Host { run, vms }
}

fn port(svc: &TenantService, net: &str, host: &str, ifname: &str) -> Port {
    svc.create_port(
        &Caller::provider("t"),
        PortCreate {
            network_id: net.into(),
            host_id: Some(host.into()),
            interface: Some(Some(LocalInterface {
                name: ifname.into(),
                kind: InterfaceKind::Veth,
            })),
            ..Default::default()
        },
    )
    .unwrap()
}

fn network(svc: &TenantService, tenant: &str) -> String {
    let c = Caller::provider(tenant);
    let n = svc
        .create_network(&c, NetworkCreate::default())
        .unwrap()
        .network;
    subnet(svc, tenant, &n.id, "10.0.0.0/24");
    n.id
}

fn subnet(svc: &TenantService, tenant: &str, net: &str, cidr: &str) {
    svc.create_subnet(
        &Caller::provider(tenant),
        SubnetCreate {
            tenant_id: None,
            network_id: net.into(),
            name: None,
            description: None,
            cidr: cidr.parse().unwrap(),
            ip_version: None,
            gateway: GatewaySpec::Default,
            allocation_pools: None,
            dns_nameservers: None,
            host_routes: None,
            enable_dhcp: None,
        },
    )
    .unwrap();
}

fn ip4(p: &Port) -> Ipv4Addr {
    p.fixed_ips
        .iter()
        .find_map(|f| match f.ip_address {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .expect("an IPv4 address")
}

fn ip6(p: &Port) -> Ipv6Addr {
    p.fixed_ips
        .iter()
        .find_map(|f| match f.ip_address {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
        .expect("an IPv6 address")
}

/// A neighbor solicitation from `src` (its global address) for `target`, to the target's
/// solicited-node multicast group, with the source link-layer address option.
fn neighbor_solicit(src: &Port, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let mut payload = t.to_vec();
    payload.extend_from_slice(&[1, 1]);
    payload.extend_from_slice(&src.mac_address.0);
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(
        src.mac_address.0,
        [0x33, 0x33, 0xff, t[13], t[14], t[15]],
    )
    .ipv6(ip6(src).octets(), group.octets(), 255)
    .icmpv6(etherparse::Icmpv6Type::NeighborSolicitation)
    .write(&mut out, &payload)
    .unwrap();
    out
}

fn udp(src: &Port, dst_mac: MacAddr, dst_ip: Ipv4Addr, tag: u8) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(src.mac_address.0, dst_mac.0)
        .ipv4(ip4(src).octets(), dst_ip.octets(), 64)
        .udp(4000, 5000);
    let payload = [tag; 32];
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, &payload).unwrap();
    out
}

/// Waits for a frame on `ring` that `want` accepts; false after `within`.
fn expect_on(ring: &FrameRing, within: Duration, want: impl Fn(&[u8]) -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Some(f) = ring.pop() {
            if want(&f) {
                return true;
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Sends `frame` from `vm` until `dst` receives it (the first packets of a flow may arrive
/// before the remote VTEP is resolved), or gives up after `within`.
fn deliver(vm: &Vm, frame: &[u8], dst: &Vm, within: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        vm.to_switch.push(frame).unwrap();
        if expect_on(&dst.from_switch, Duration::from_millis(50), |f| f == frame) {
            return true;
        }
    }
    false
}

#[test]
fn two_hosts_two_tenants_over_vxlan() {
    let svc = Arc::new(TenantService::in_memory(&config()).unwrap());
    let a = network(&svc, "tenant-a");
    let b = network(&svc, "tenant-b");
    // Tenant A is dual stack: its ports also get an IPv6 address (answered by ND).
    subnet(&svc, "tenant-a", &a, "fd00:a::/64");
    let a1 = port(&svc, &a, "hv1", "a1");
    let a2 = port(&svc, &a, "hv2", "a2");
    let b1 = port(&svc, &b, "hv1", "b1");
    let b2 = port(&svc, &b, "hv2", "b2");
    // Same CIDR, same allocation order: both tenants hand out the same addresses.
    assert_eq!(ip4(&a1), ip4(&b1));
    assert_eq!(ip4(&a2), ip4(&b2));

    let (ab, ba) = (FrameRing::new(1024), FrameRing::new(1024));
    let hv1 = host("hv1", &svc, ba.clone(), ab.clone(), [2, 0, 0, 0, 1, 1]);
    let hv2 = host("hv2", &svc, ab, ba, [2, 0, 0, 0, 2, 2]);
    let (va1, va2, vb1, vb2) = (hv1.vm("a1"), hv2.vm("a2"), hv1.vm("b1"), hv2.vm("b2"));

    // The VTEPs resolve each other by ARP on the underlay.
    let t = Instant::now();
    while hv1.stats().vteps_resolved < 1 || hv2.stats().vteps_resolved < 1 {
        assert!(
            t.elapsed() < WAIT,
            "VTEPs unresolved: {:?} {:?}",
            hv1.stats(),
            hv2.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // ARP for a2's address is answered on hv1 by the agent, with a2's MAC.
    let req = underlay::arp_request(a1.mac_address.0, ip4(&a1), ip4(&a2));
    va1.to_switch.push(&req).unwrap();
    assert!(
        expect_on(&va1.from_switch, WAIT, |f| f.len() >= 42
            && f[12..14] == [0x08, 0x06]
            && f[20..22] == [0, 2]
            && f[22..28] == a2.mac_address.0),
        "no ARP reply for a2: {:?}",
        hv1.stats()
    );
    assert_eq!(hv1.stats().arp_replies, 1);
    // ... and never crossed the overlay: a2 sees no ARP request.
    assert!(!expect_on(
        &va2.from_switch,
        Duration::from_millis(200),
        |f| f[12..14] == [0x08, 0x06]
    ));

    // A neighbor solicitation for a2's IPv6 address is answered on hv1 with a2's MAC: an
    // ICMPv6 neighbor advertisement (type 136) whose target is that address.
    let ns = neighbor_solicit(&a1, ip6(&a2));
    va1.to_switch.push(&ns).unwrap();
    assert!(
        expect_on(&va1.from_switch, WAIT, |f| f.len() >= 78
            && f[12..14] == [0x86, 0xdd]
            && f[54] == 136
            && f[62..78] == ip6(&a2).octets()
            && f[6..12] == a2.mac_address.0),
        "no neighbor advertisement for a2: {:?}",
        hv1.stats()
    );
    assert_eq!(hv1.stats().nd_replies, 1);

    // Unicast across hosts inside each tenant, over VXLAN.
    let f = udp(&a1, a2.mac_address, ip4(&a2), 1);
    assert!(deliver(&va1, &f, &va2, WAIT), "a1 -> a2 not delivered");
    let f = udp(&b2, b1.mac_address, ip4(&b1), 2);
    assert!(deliver(&vb2, &f, &vb1, WAIT), "b2 -> b1 not delivered");

    // Across tenants: a1 to b2's MAC goes nowhere (b2 is not on a1's network).
    let f = udp(&a1, b2.mac_address, ip4(&b2), 3);
    assert!(!deliver(&va1, &f, &vb2, Duration::from_millis(500)));
    assert!(!expect_on(
        &va2.from_switch,
        Duration::from_millis(100),
        |g| g == f
    ));

    // A spoofed source MAC is dropped and counted by the L2 spoof rule.
    let spoof_before = hv1.rule_packets(RuleKind::SpoofL2Drop);
    let mut f = udp(&a1, a2.mac_address, ip4(&a2), 4);
    f[6..12].copy_from_slice(&[2, 0x66, 0, 0, 0, 1]);
    assert!(!deliver(&va1, &f, &va2, Duration::from_millis(300)));
    assert!(hv1.rule_packets(RuleKind::SpoofL2Drop) > spoof_before);

    // A broadcast from a1 reaches a2 (head-end replication) and never tenant B.
    let bcast = underlay::arp_request(a1.mac_address.0, ip4(&a1), Ipv4Addr::new(10, 0, 0, 99));
    assert!(
        deliver(&va1, &bcast, &va2, WAIT),
        "broadcast not replicated to hv2"
    );
    assert!(!expect_on(
        &vb2.from_switch,
        Duration::from_millis(200),
        |g| g == bcast
    ));
    assert!(!expect_on(
        &vb1.from_switch,
        Duration::from_millis(50),
        |g| g == bcast
    ));

    // Deleting a2 stops its traffic.
    svc.delete_port(&Caller::provider("tenant-a"), &a2.id)
        .unwrap();
    let t = Instant::now();
    let f = udp(&a1, a2.mac_address, ip4(&a2), 5);
    loop {
        // The change reaches the agents asynchronously; once it has, nothing more arrives.
        va2.from_switch.drain();
        if !deliver(&va1, &f, &va2, Duration::from_millis(200)) {
            break;
        }
        assert!(t.elapsed() < WAIT, "a2 still reachable after its deletion");
    }
    let st = hv1.stats();
    assert!(st.changes >= 1);
    // hv1 knows a1, b1 (local), b2 (remote) with rules; a2 is gone.
    assert_eq!((st.ports_active, st.ports_skipped), (3, 0), "{st:?}");
    // Everything between the hosts went over the underlay ports (VXLAN and the VTEPs' ARP).
    let ul_tx = hv1
        .handle()
        .call(|c| {
            c.counters()
                .1
                .into_iter()
                .find(|(no, _, _)| *no == UNDERLAY)
                .map(|(_, _, k)| k.tx_packets)
        })
        .unwrap()
        .unwrap();
    assert!(ul_tx >= 3, "underlay tx {ul_tx}");
    drop(hv1);
    drop(hv2);
}
