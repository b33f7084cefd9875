//! Tenant acceptance against a real `strato run` daemon (root; skips, saying why, otherwise).
//!
//! One daemon runs in its own namespace ("hv1") with `[api]` (on 127.0.0.1 inside that
//! namespace; this test reaches it from threads that entered the namespace) and `[tenant]`
//! (host "hv1", underlay `ul0`: a veth whose peer `ulf` sits in a "fabric" namespace holding the
//! kernel address of a second host "hv2", so the fabric sees everything strato puts on the
//! underlay). Two VM namespaces have veth pairs whose host ends live in hv1's namespace, named
//! as their ports' `binding:profile` says. Phases, each with its own failing assertions and a
//! positive control next to every negative check:
//! 1. 1,000 ports created concurrently (16 HTTP clients, provider token) on one network with a
//!    /20 subnet: all 201, distinct IPs and MACs; two are the VMs' ports, one is bound to hv2.
//!    The VMs (addresses configured statically from `fixed_ips`) ping each other. The daemon
//!    is restarted (SIGTERM, start again on the same `state_dir`): the same 1,000 ports with the
//!    same IPs and MACs are listed, and the ping works again. Timings are printed.
//! 2. Spoofing: VM1 pinging from a second, unassigned IP, then from a forged MAC: no reply, VM2
//!    receives nothing, and the SpoofL3Drop / SpoofL2Drop rules' packet counters (from
//!    `strato ctl --json dump-flows`) rise; pings from the right addresses work before/after.
//! 3. ARP suppression: VM1 arpings the hv2-bound port's address and gets the agent's reply,
//!    while an AF_PACKET capture in the fabric sees no ARP frame (plain or inside VXLAN) for
//!    that address. Control: arping an address no port has is flooded to hv2 over VXLAN, and
//!    the same capture sees it.
//! 4. Port delete: with VM1 pinging VM2 every 100 ms, VM2's port is deleted through the API;
//!    no reply arrives more than 1 s after the delete returned (replies arrived before it).
//!
//! Everything is made under this run's prefix ([`netns::run_prefix`]); the daemon is stopped
//! and the namespaces deleted on drop, also when an assertion fails (the daemon's log tail is
//! printed then). `STRATO_TENANT_DAEMON_PORTS=N` changes the number of ports (default 1000).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde_json::{json, Value};
use strato_labs::netns::{self, Netns};
use support::net::{disable_ipv6, ping_count as ping, rx_packets, sh};
use support::strato::{api_call, ctl_json, http_agent, Daemon, DaemonConfig};
use support::TempDir;

const TOKEN: &str = "tenant-daemon-provider";
const API: &str = "127.0.0.1:9696";
const VTEP1: &str = "192.0.2.1";
const VTEP2: &str = "192.0.2.2";
const CIDR: &str = "10.20.0.0/20";
/// Addresses no port gets (1,000 ports fill 10.20.0.2 .. 10.20.3.x).
const SPOOF_IP: &str = "10.20.15.200";
const UNKNOWN_IP: &str = "10.20.15.201";
const FORGED_MAC: &str = "02:00:00:5e:be:ef";
const THREADS: usize = 16;
const VXLAN_PORT: u16 = 4789;

/// One create: (index, status and body or transport error, latency).
type Created = (usize, Result<(u16, Value), String>, Duration);

/// The lab. Field order is drop order: the daemon stops before its namespace goes, and the
/// directory (config, state, the daemon's log) goes last, kept when the test failed.
struct Lab {
    daemon: Option<Daemon>,
    vm1: Netns,
    vm2: Netns,
    hv1: Netns,
    fab: Netns,
    config: PathBuf,
    dir: TempDir,
}

impl Lab {
    fn log(&self) -> PathBuf {
        self.dir.join("strato.log")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("strato.sock")
    }

    fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "daemon already running");
        self.daemon = Some(Daemon::start(
            &self.config,
            Some(&self.hv1),
            Some(&self.log()),
        ));
    }

    /// `strato ctl --socket S --json ARGS`.
    fn ctl(&self, args: &[&str]) -> Value {
        ctl_json(self.socket(), args)
    }

    /// Packets counted by the tenant rules of kind `kind` (cookie bits 43..40).
    fn kind_packets(&self, kind: u64) -> u64 {
        let v = self.ctl(&["dump-flows"]);
        v["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .filter(|f| {
                let c = f["cookie"].as_u64().unwrap_or(0);
                c >> 48 == 0x5443 && (c >> 40) & 0xf == kind
            })
            .map(|f| f["packets"].as_u64().unwrap_or(0))
            .sum()
    }

    /// [`Lab::kind_packets`] once it reaches `at_least` (rule counters are credited from the
    /// workers' megaflow counters periodically, so they trail the traffic), or its value
    /// after `limit`.
    fn wait_kind_packets(&self, kind: u64, at_least: u64, limit: Duration) -> u64 {
        support::retry(
            limit,
            Duration::from_millis(100),
            || self.kind_packets(kind),
            |&n| n >= at_least,
        )
    }

    /// The agent's counters (`strato ctl show`).
    fn agent_stats(&self) -> Value {
        self.ctl(&["show"])["tenant"]["stats"].clone()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            eprintln!(
                "---- strato run log ({}), last lines ----\n{}",
                self.log().display(),
                support::tail(&log, 80)
            );
        }
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
    }
}

/// Runs `f` on a thread that entered namespace `ns` (setns only changes that thread).
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    strato_labs::netns::in_netns(ns, f).unwrap_or_else(|e| panic!("entering {ns}: {e}"))
}

/// One API call (from a thread inside hv1's namespace).
fn call(
    agent: &ureq::Agent,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    api_call(agent, TOKEN, method, &format!("http://{API}{path}"), body)
}

/// One API call from the test's own thread.
fn api(lab: &Lab, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let r = in_ns(lab.hv1.name(), || {
        call(&http_agent(), method, path, body.as_ref())
    });
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until the API answers; returns how long that took.
fn wait_api(lab: &Lab) -> Duration {
    in_ns(lab.hv1.name(), || {
        support::strato::wait_api(
            &http_agent(),
            TOKEN,
            &format!("http://{API}"),
            Duration::from_secs(30),
        )
    })
}

/// A port's (MAC, first fixed IP).
fn mac_ip(p: &Value) -> (String, String) {
    (
        p["mac_address"].as_str().unwrap_or_default().to_string(),
        p["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Every port of `net`: id -> (MAC, IP).
fn list_ports(lab: &Lab, net: &str) -> BTreeMap<String, (String, String)> {
    let (st, v) = api(lab, "GET", "/v2.0/ports", None);
    assert_eq!(st, 200, "{v}");
    v["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter(|p| p["network_id"] == net)
        .map(|p| (p["id"].as_str().unwrap_or_default().to_string(), mac_ip(p)))
        .collect()
}

/// Pings until one reply (at most `limit`); returns the time it took, or None.
fn ping_until(ns: &Netns, dst: &str, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    // One echo request with a 200 ms wait: the time found is good to about that.
    let ok = support::wait_for(limit, Duration::from_millis(20), || {
        sh(ns, "ping", &["-n", "-c", "1", "-W", "0.2", dst]).0
    });
    ok.then(|| t.elapsed())
}

/// An AF_PACKET socket on `ifname` inside `ns`.
fn packet_socket(ns: &str, ifname: &str) -> OwnedFd {
    strato_labs::netns::packet_socket(ns, ifname)
        .unwrap_or_else(|e| panic!("packet socket on {ifname} in {ns}: {e}"))
}

/// Everything seen on an interface (both directions) while it runs.
struct Capture {
    stop: Arc<AtomicBool>,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Capture {
    fn start(fd: OwnedFd) -> Capture {
        let stop = Arc::new(AtomicBool::new(false));
        let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let (s2, f2) = (stop.clone(), frames.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s2.load(Ordering::Relaxed) {
                // SAFETY: recv(2) into a buffer we own, with its length.
                let n =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n > 0 {
                    f2.lock().unwrap().push(buf[..n as usize].to_vec());
                }
            }
        });
        Capture {
            stop,
            frames,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.frames.lock().unwrap())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The ARP target address of a frame: the frame's own ARP, or (`inner`) the ARP inside a
/// VXLAN packet to UDP port 4789.
fn arp_target(frame: &[u8]) -> Option<(bool, std::net::Ipv4Addr)> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    match (&p.net, &p.transport) {
        (Some(NetSlice::Arp(a)), _) => {
            let t: [u8; 4] = a.target_protocol_addr().try_into().ok()?;
            Some((false, t.into()))
        }
        (_, Some(TransportSlice::Udp(u))) if u.destination_port() == VXLAN_PORT => {
            let inner = u.payload().get(8..)?;
            let (_, t) = arp_target(inner)?;
            Some((true, t))
        }
        _ => None,
    }
}

/// Unix time in seconds.
fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn build_lab(prefix: &str) -> Lab {
    let dir = TempDir::new(&format!("tenant-daemon-{prefix}")).keep_on_panic();
    std::fs::create_dir_all(dir.join("state")).expect("state dir");
    let hv1 = Netns::new(&format!("{prefix}-hv1")).expect("hv1");
    let fab = Netns::new(&format!("{prefix}-fab")).expect("fabric");
    let vm1 = Netns::new(&format!("{prefix}-vm1")).expect("vm1");
    let vm2 = Netns::new(&format!("{prefix}-vm2")).expect("vm2");
    for ns in [&hv1, &fab, &vm1, &vm2] {
        // No IPv6 chatter (router solicitations, DAD) on interfaces made from here on.
        disable_ipv6(Some(ns), "all");
        disable_ipv6(Some(ns), "default");
    }
    netns::veth_pair("ul0", Some(&hv1), "ulf", Some(&fab)).expect("underlay veth");
    fab.ip(&["addr", "add", &format!("{VTEP2}/24"), "dev", "ulf"])
        .expect("fabric address");
    netns::veth_pair("vm1h", Some(&hv1), "eth0", Some(&vm1)).expect("vm1 veth");
    netns::veth_pair("vm2h", Some(&hv1), "eth0", Some(&vm2)).expect("vm2 veth");
    let config = DaemonConfig {
        dir: dir.path(),
        log_level: Some("info"),
        api_listen: API,
        provider_token: TOKEN,
        more: &format!(
            "[tenant]\nhost = \"hv1\"\nunderlay = \"ul0\"\n\
             [[api.host]]\nname = \"hv1\"\nvtep_ip = \"{VTEP1}\"\n\
             [[api.host]]\nname = \"hv2\"\nvtep_ip = \"{VTEP2}\"\n"
        ),
    }
    .write();
    Lab {
        daemon: None,
        vm1,
        vm2,
        hv1,
        fab,
        config,
        dir,
    }
}

/// The body of port `i`: 0 and 1 are VM1's and VM2's (veths in hv1), 2 is bound to hv2.
fn port_body(net: &str, i: usize) -> Value {
    let mut p = json!({
        "network_id": net, "tenant_id": "t1", "name": format!("p{i}"),
        "device_id": format!("dev-{i}"), "device_owner": "compute:test",
    });
    match i {
        0 | 1 => {
            p["binding:host_id"] = json!("hv1");
            p["binding:profile"] = json!({"interface": format!("vm{}h", i + 1), "kind": "veth"});
        }
        2 => {
            // A port is bound only with both host and interface (its VM sits on hv2).
            p["binding:host_id"] = json!("hv2");
            p["binding:profile"] = json!({"interface": "vmr", "kind": "veth"});
        }
        _ => {}
    }
    json!({ "port": p })
}

#[test]
fn tenant_daemon_scale_restart_spoofing_suppression_and_delete() {
    support::skip_unless_root!("tenant_daemon_scale_restart_spoofing_suppression_and_delete");
    let nports: usize = std::env::var("STRATO_TENANT_DAEMON_PORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .max(3);
    let prefix = netns::run_prefix();
    let mut lab = build_lab(&prefix);
    lab.start_daemon();
    let up = wait_api(&lab);
    eprintln!("daemon up: API answered after {up:?}");

    // ---- 1. 1,000 ports concurrently, two VMs, restart ----
    let (st, v) = api(
        &lab,
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "scale", "tenant_id": "t1"}})),
    );
    assert_eq!(st, 201, "{v}");
    let net = v["network"]["id"].as_str().expect("network id").to_string();
    let (st, v) = api(
        &lab,
        "POST",
        "/v2.0/subnets",
        Some(
            json!({"subnet": {"network_id": net, "tenant_id": "t1", "cidr": CIDR,
                               "ip_version": 4}}),
        ),
    );
    assert_eq!(st, 201, "{v}");

    let t = Instant::now();
    let results: Vec<Created> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|k| {
                let (net, ns) = (&net, lab.hv1.name());
                s.spawn(move || {
                    in_ns(ns, || {
                        let a = http_agent();
                        (k..nports)
                            .step_by(THREADS)
                            .map(|i| {
                                let t = Instant::now();
                                let r = call(&a, "POST", "/v2.0/ports", Some(&port_body(net, i)));
                                (i, r, t.elapsed())
                            })
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    });
    let create_time = t.elapsed();
    let mut lat: Vec<Duration> = results.iter().map(|r| r.2).collect();
    lat.sort();
    let mut ports: BTreeMap<usize, Value> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, r, _) in results {
        match r {
            Ok((201, v)) => {
                ports.insert(i, v["port"].clone());
            }
            Ok((st, v)) => failures.push(format!("port {i}: {st} {v}")),
            Err(e) => failures.push(format!("port {i}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {nports} creates failed, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(ports.len(), nports);
    eprintln!(
        "created {nports} ports with {THREADS} concurrent clients in {create_time:?} \
         ({:.0}/s); per request p50 {:?} p99 {:?} max {:?}",
        nports as f64 / create_time.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
    let macs: HashSet<String> = ports.values().map(|p| mac_ip(p).0).collect();
    let ips: HashSet<String> = ports.values().map(|p| mac_ip(p).1).collect();
    assert_eq!(macs.len(), nports, "MACs are not distinct");
    assert_eq!(ips.len(), nports, "IPs are not distinct");
    assert!(
        !ips.contains("") && !macs.contains(""),
        "a port has no IP or MAC"
    );
    assert!(!ips.contains(SPOOF_IP) && !ips.contains(UNKNOWN_IP));
    let before = list_ports(&lab, &net);
    assert_eq!(before.len(), nports, "ports listed");

    let (mac1, ip1) = mac_ip(&ports[&0]);
    let (mac2, ip2) = mac_ip(&ports[&1]);
    let (mac_r, ip_r) = mac_ip(&ports[&2]);
    let port2_id = ports[&1]["id"].as_str().expect("id").to_string();
    for (vm, mac, ip) in [(&lab.vm1, &mac1, &ip1), (&lab.vm2, &mac2, &ip2)] {
        vm.ip(&["link", "set", "eth0", "down"]).expect("down");
        vm.ip(&["link", "set", "eth0", "address", mac])
            .expect("mac");
        vm.ip(&["addr", "add", &format!("{ip}/20"), "dev", "eth0"])
            .expect("addr");
        vm.ip(&["link", "set", "eth0", "up"]).expect("up");
    }
    let first = ping_until(&lab.vm1, &ip2, Duration::from_secs(30));
    assert!(
        first.is_some(),
        "VM1 {ip1} never reached VM2 {ip2}; agent: {}",
        lab.agent_stats()
    );
    eprintln!(
        "VM1 -> VM2 ping answered {:?} after the creates ended; agent: {}",
        first.unwrap_or_default(),
        lab.agent_stats()
    );
    let (n, out) = ping(&lab.vm1, &ip2, 5, None);
    assert_eq!(n, 5, "steady ping VM1 -> VM2:\n{out}");

    // Restart on the same state_dir.
    let d = lab.daemon.take().expect("daemon");
    let restart = Instant::now();
    let stop_time = d.stop();
    lab.start_daemon();
    let api_time = wait_api(&lab);
    let after = list_ports(&lab, &net);
    let list_time = restart.elapsed();
    let ping_again = ping_until(&lab.vm1, &ip2, Duration::from_secs(30));
    assert_eq!(after.len(), nports, "ports listed after the restart");
    assert_eq!(
        after, before,
        "ports, IPs or MACs changed across the restart"
    );
    assert!(
        ping_again.is_some(),
        "VM1 never reached VM2 after the restart; agent: {}",
        lab.agent_stats()
    );
    eprintln!(
        "restart: SIGTERM -> exit {stop_time:?}; start -> API up {api_time:?}; \
         SIGTERM -> {nports} ports listed {list_time:?}; SIGTERM -> ping answered {:?}",
        restart.elapsed()
    );
    let (n, out) = ping(&lab.vm1, &ip2, 5, None);
    assert_eq!(n, 5, "steady ping VM1 -> VM2 after the restart:\n{out}");

    // ---- 2. Spoofing ----
    const L2: u64 = 2;
    const L3: u64 = 4;
    let (l2_0, l3_0) = (lab.kind_packets(L2), lab.kind_packets(L3));
    lab.vm1
        .ip(&["addr", "add", &format!("{SPOOF_IP}/20"), "dev", "eth0"])
        .expect("second address");
    let rx0 = rx_packets(&lab.vm2, "eth0");
    let (n, out) = ping(&lab.vm1, &ip2, 3, Some(SPOOF_IP));
    let rx1 = rx_packets(&lab.vm2, "eth0");
    let l3_1 = lab.wait_kind_packets(L3, l3_0 + 3, Duration::from_secs(3));
    lab.vm1
        .ip(&["addr", "del", &format!("{SPOOF_IP}/20"), "dev", "eth0"])
        .expect("second address removed");
    assert_eq!(n, 0, "a ping from an unassigned IP got replies:\n{out}");
    assert_eq!(rx1 - rx0, 0, "VM2 received frames sent from a wrong IP");
    assert!(
        l3_1 >= l3_0 + 3,
        "SpoofL3Drop packets {l3_0} -> {l3_1}: the spoofed pings were not counted"
    );
    let (n, out) = ping(&lab.vm1, &ip2, 3, Some(&ip1));
    assert_eq!(n, 3, "positive control: ping from the right IP:\n{out}");

    lab.vm1
        .ip(&["link", "set", "eth0", "address", FORGED_MAC])
        .expect("forged MAC");
    let rx0 = rx_packets(&lab.vm2, "eth0");
    let (n, out) = ping(&lab.vm1, &ip2, 3, None);
    let rx1 = rx_packets(&lab.vm2, "eth0");
    let l2_1 = lab.wait_kind_packets(L2, l2_0 + 3, Duration::from_secs(3));
    lab.vm1
        .ip(&["link", "set", "eth0", "address", &mac1])
        .expect("MAC restored");
    assert_eq!(n, 0, "a ping from a forged MAC got replies:\n{out}");
    assert_eq!(rx1 - rx0, 0, "VM2 received frames sent from a wrong MAC");
    assert!(
        l2_1 >= l2_0 + 3,
        "SpoofL2Drop packets {l2_0} -> {l2_1}: the forged frames were not counted"
    );
    let (n, out) = ping(&lab.vm1, &ip2, 3, None);
    assert_eq!(
        n, 3,
        "positive control: ping with the right MAC again:\n{out}"
    );
    eprintln!(
        "spoofing: wrong IP -> SpoofL3Drop {l3_0} -> {l3_1}; wrong MAC -> SpoofL2Drop \
         {l2_0} -> {l2_1}; VM2 received nothing of either"
    );

    // ---- 3. ARP suppression on the underlay ----
    let replies0 = lab.agent_stats()["arp_replies"].as_u64().unwrap_or(0);
    let cap = Capture::start(packet_socket(lab.fab.name(), "ulf"));
    std::thread::sleep(Duration::from_millis(200));
    let (ok_r, out_r) = sh(
        &lab.vm1,
        "arping",
        &["-c", "3", "-w", "5", "-I", "eth0", &ip_r],
    );
    let (ok_u, out_u) = sh(
        &lab.vm1,
        "arping",
        &["-c", "2", "-w", "3", "-I", "eth0", UNKNOWN_IP],
    );
    std::thread::sleep(Duration::from_millis(300));
    let frames = cap.finish();
    let replies1 = lab.agent_stats()["arp_replies"].as_u64().unwrap_or(0);
    let targets: Vec<(bool, std::net::Ipv4Addr)> =
        frames.iter().filter_map(|f| arp_target(f)).collect();
    let count = |ip: &str| {
        let ip: std::net::Ipv4Addr = ip.parse().expect("ip");
        targets.iter().filter(|(_, t)| *t == ip).count()
    };
    let (for_r, for_u) = (count(&ip_r), count(UNKNOWN_IP));
    let inner_u = targets
        .iter()
        .filter(|(inner, t)| *inner && t.to_string() == UNKNOWN_IP)
        .count();
    eprintln!(
        "underlay capture: {} frames, ARP for the hv2 port {ip_r}: {for_r}, for unknown \
         {UNKNOWN_IP}: {for_u} ({inner_u} inside VXLAN); agent arp_replies {replies0} -> \
         {replies1}",
        frames.len()
    );
    assert!(
        ok_r && out_r.to_lowercase().contains(&mac_r.to_lowercase()),
        "positive control: arping {ip_r} (port on hv2) got no reply with its MAC {mac_r}:\n{out_r}"
    );
    assert!(
        replies1 >= replies0 + 3,
        "agent arp_replies {replies0} -> {replies1}"
    );
    assert_eq!(
        for_r, 0,
        "ARP for {ip_r}, a known address, reached the underlay"
    );
    assert!(
        !ok_u,
        "arping an address no port has was answered:\n{out_u}"
    );
    assert!(
        inner_u >= 1,
        "positive control: the ARP for unknown {UNKNOWN_IP} (flooded to hv2) was not seen \
         in the fabric, so the capture proves nothing ({} frames captured)",
        frames.len()
    );

    // ---- 4. Port delete stops the traffic at once ----
    let mut pinger = lab
        .vm1
        .command("ping")
        .args(["-n", "-D", "-i", "0.1", "-W", "1", "-w", "6", &ip2])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_secs(2));
    let del_start = now_unix();
    let (st, v) = api(&lab, "DELETE", &format!("/v2.0/ports/{port2_id}"), None);
    let del_end = now_unix();
    assert_eq!(st, 204, "{v}");
    let stdout = pinger.stdout.take().expect("ping stdout");
    let replies: Vec<f64> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            let s = l.strip_prefix('[')?;
            s[..s.find(']')?].parse().ok()
        })
        .collect();
    let _ = pinger.wait();
    let before_del = replies.iter().filter(|&&t| t < del_start).count();
    let late: Vec<f64> = replies
        .iter()
        .copied()
        .filter(|&t| t > del_end + 1.0)
        .collect();
    let last = replies.iter().copied().fold(f64::MIN, f64::max);
    let after_del: Vec<String> = replies
        .iter()
        .filter(|&&t| t >= del_start)
        .map(|t| format!("{:+.3}", t - del_end))
        .collect();
    eprintln!(
        "delete: DELETE took {:.3} s; {before_del} replies before it, last reply {:.3} s after \
         it returned, {} replies later than 1 s after; replies after the DELETE was sent, in s \
         from its return: {after_del:?}",
        del_end - del_start,
        last - del_end,
        late.len()
    );
    assert!(
        before_del >= 10,
        "positive control: only {before_del} replies in the 2 s before the delete"
    );
    assert!(
        late.is_empty(),
        "{} replies arrived more than 1 s after the port was deleted",
        late.len()
    );
    let (n, out) = ping(&lab.vm1, &ip2, 2, None);
    assert_eq!(n, 0, "VM2 still answers after its port was deleted:\n{out}");
}
