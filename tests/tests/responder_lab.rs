//! The ARP, ND and DHCP responders against real clients (root; skips, saying why, otherwise).
//!
//! Two namespaces made with this run's prefix: a "server" one holding one end of a veth pair,
//! read and written by this test through an AF_PACKET socket that runs the responders (and
//! answers pings to the known addresses, so a ping proves the whole resolution), and a "client"
//! one with the other end, where the real tools run:
//! - busybox `udhcpc` twice: once with broadcast replies requested and `-R` (RELEASE on exit),
//!   then once with `-a` (it ARP-probes the offered address: the responder must not answer the
//!   probe, or the client declines), applying what it got through its event script; then the
//!   test checks `ip addr`, `ip route` (default and option 121 routes), the MTU, and the DNS
//!   servers, domain, lease and server id the script saw;
//! - `ping` to a known IPv4 address (ARP resolved by the responder) and `ip neigh`;
//! - iputils `arping` (a reply from the known MAC; and `arping -D`, a probe, gets none);
//! - `ping -6` to a known IPv6 address (ND resolved by the responder) and `ip -6 neigh`.
//!
//! Namespaces (and so the veths) are deleted on drop, also when an assertion fails.
//! `STRATO_RESPONDER_CAPTURE=DIR` writes the first DHCP DISCOVER seen to
//! `DIR/udhcpc_discover.bin` (how `control/overlay/src/responder/dhcp/testdata/` was made).

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use strato_labs::netns::{self, Netns};
use strato_overlay::responder::dhcp::{DhcpConfig, DhcpOutcome, DhcpServer, HostRoute};
use strato_overlay::responder::{arp, nd, Mac};
use support::net::{disable_ipv6, format_mac, sh as out};
use support::TempDir;

const CLIENT_MAC: Mac = [0x02, 0x5e, 0x00, 0x00, 0x00, 0x10];
const SERVER_MAC: Mac = [0x02, 0x5e, 0x00, 0x00, 0x00, 0x02];
const PEER_MAC: Mac = [0x02, 0x5e, 0x00, 0x00, 0x00, 0x20];
const PEER6_MAC: Mac = [0x02, 0x5e, 0x00, 0x00, 0x00, 0x26];
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 20);
const UNKNOWN_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 99);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0x10);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0x26);

fn dhcp_config() -> DhcpConfig {
    DhcpConfig {
        server_ip: SERVER_IP,
        server_mac: SERVER_MAC,
        subnet: Ipv4Addr::new(10, 77, 0, 0),
        prefix_len: 24,
        router: Some(GATEWAY),
        dns_servers: vec![Ipv4Addr::new(10, 77, 0, 53), Ipv4Addr::new(192, 0, 2, 53)],
        host_routes: vec![HostRoute {
            destination: Ipv4Addr::new(192, 168, 100, 0),
            prefix_len: 24,
            nexthop: Ipv4Addr::new(10, 77, 0, 254),
        }],
        lease_time: 86400,
        mtu: Some(1450),
        domain: Some("openstacklocal".into()),
    }
}

/// The controller's view: which IPv4 addresses it knows (ports' fixed IPs; the client's own
/// address is known too, as in Neutron, so answering its ARP probe would be a bug).
fn arp_lookup(ip: Ipv4Addr) -> Option<Mac> {
    match ip {
        PEER_IP => Some(PEER_MAC),
        GATEWAY => Some([0x02, 0x5e, 0, 0, 0, 0x01]),
        SERVER_IP => Some(SERVER_MAC),
        CLIENT_IP => Some(CLIENT_MAC),
        _ => None,
    }
}

fn nd_lookup(ip: Ipv6Addr) -> Option<Mac> {
    match ip {
        PEER6 => Some(PEER6_MAC),
        CLIENT6 => Some(CLIENT_MAC),
        _ => None,
    }
}

fn dhcp_lookup(mac: Mac) -> Option<Ipv4Addr> {
    (mac == CLIENT_MAC).then_some(CLIENT_IP)
}

use strato_labs::netns::packet_socket;

/// Receives one frame that came in (not one this socket sent); `None` on timeout.
fn recv_incoming(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: an all-zero sockaddr_ll is valid; recvfrom fills it.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
    // SAFETY: buf and sll are valid for writes of the lengths passed.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut sll as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n <= 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
        return None;
    }
    Some(n as usize)
}

fn send(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: frame is valid for reads of its length; the socket is bound to one interface.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

/// Echo replies for pings to the known addresses (the "VMs" behind the responder), built with
/// etherparse, so that a successful ping proves the address was resolved to the right MAC.
fn echo_reply(frame: &[u8]) -> Option<Vec<u8>> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
        return None;
    };
    let mut out = Vec::new();
    match (&p.net, &p.transport) {
        (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) => {
            let h = ip.header();
            let dst = h.destination_addr();
            let mac = arp_lookup(dst).filter(|m| *m == eth.destination())?;
            let Icmpv4Type::EchoRequest(e) = icmp.icmp_type() else {
                return None;
            };
            PacketBuilder::ethernet2(mac, eth.source())
                .ipv4(dst.octets(), h.source(), 64)
                .icmpv4_echo_reply(e.id, e.seq)
                .write(&mut out, icmp.payload())
                .ok()?;
        }
        (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) => {
            let h = ip.header();
            let dst = h.destination_addr();
            let mac = nd_lookup(dst).filter(|m| *m == eth.destination())?;
            let Icmpv6Type::EchoRequest(e) = icmp.icmp_type() else {
                return None;
            };
            PacketBuilder::ethernet2(mac, eth.source())
                .ipv6(dst.octets(), h.source(), 64)
                .icmpv6_echo_reply(e.id, e.seq)
                .write(&mut out, icmp.payload())
                .ok()?;
        }
        _ => return None,
    }
    Some(out)
}

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// The responder loop on its own thread; stopped and joined on drop.
struct Responder {
    stop: Arc<AtomicBool>,
    counts: Counts,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start(fd: OwnedFd, capture: Option<PathBuf>) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Counts = Arc::default();
        let (s, c) = (stop.clone(), counts.clone());
        let thread = std::thread::spawn(move || {
            let dhcp = DhcpServer::new(dhcp_config()).expect("DHCP configuration");
            let mut buf = vec![0u8; 65536];
            let mut captured = false;
            let count = |k: String| *c.lock().unwrap().entry(k).or_default() += 1;
            while !s.load(Ordering::Relaxed) {
                let Some(n) = recv_incoming(&fd, &mut buf) else {
                    continue;
                };
                let f = &buf[..n];
                let a = arp::respond(f, arp_lookup);
                if a != arp::ArpOutcome::NotArp {
                    count(format!("arp.{}", a.name()));
                    if let Some(r) = a.into_reply() {
                        send(&fd, &r);
                    }
                    continue;
                }
                let v = nd::respond(f, |ip| {
                    nd_lookup(ip).map(|mac| nd::Neighbor { mac, router: false })
                });
                if v != nd::NdOutcome::NotSolicitation {
                    count(format!("nd.{}", v.name()));
                    if let Some(r) = v.into_reply() {
                        send(&fd, &r);
                    }
                    continue;
                }
                let d = dhcp.respond(f, dhcp_lookup);
                if !matches!(d, DhcpOutcome::Ignored(_)) {
                    if let (Some(dir), false, DhcpOutcome::Offer { .. }) = (&capture, captured, &d)
                    {
                        std::fs::write(dir.join("udhcpc_discover.bin"), f).expect("capture");
                        captured = true;
                    }
                }
                if d != DhcpOutcome::Ignored(strato_overlay::responder::dhcp::IgnoreReason::NotDhcp)
                {
                    count(format!("dhcp.{}", d.name()));
                    if let Some(r) = d.into_reply() {
                        send(&fd, &r);
                    }
                    continue;
                }
                if let Some(r) = echo_reply(f) {
                    count("echo_reply".into());
                    send(&fd, &r);
                }
            }
        });
        Responder {
            stop,
            counts,
            thread: Some(thread),
        }
    }

    fn count(&self, k: &str) -> u64 {
        self.counts.lock().unwrap().get(k).copied().unwrap_or(0)
    }

    /// Waits up to 3 s for counter `k` to reach 1 (frames a client sent just before it exited
    /// may still be on their way), then returns it.
    fn wait_count(&self, k: &str) -> u64 {
        let every = Duration::from_millis(50);
        support::retry(Duration::from_secs(3), every, || self.count(k), |&n| n > 0)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// udhcpc's event script: records each event's environment and applies bound/renew the way a
/// distribution script does (address, RFC 3442 routes or else the router, MTU), without
/// touching /etc/resolv.conf (the DNS servers and domain are checked from the record).
const SCRIPT: &str = r#"#!/bin/sh
env | sort > "$RESP_LAB_DIR/env.$1"
case "$1" in
  deconfig)
    ip link set "$interface" up
    ip -4 addr flush dev "$interface"
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then ip route add "$1" dev "$interface"
        else ip route add "$1" via "$2" dev "$interface"; fi
        shift 2
      done
    elif [ -n "$router" ]; then
      ip route add default via "${router%% *}" dev "$interface"
    fi
    ;;
esac
exit 0
"#;

fn env_of(dir: &Path, event: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join(format!("env.{event}")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn real_clients_resolve_and_configure_through_the_responders() {
    let test = "real_clients_resolve_and_configure_through_the_responders";
    support::skip_unless_root!(test);
    let udhcpc: Vec<&str> = if support::have("udhcpc") {
        vec!["udhcpc"]
    } else if support::have("busybox") {
        vec!["busybox", "udhcpc"]
    } else {
        support::skipped(
            test,
            "no udhcpc (apt-get install udhcpc, or busybox); scripts/bootstrap.sh installs it",
        );
        return;
    };
    let p = netns::run_prefix();
    let server_ns = Netns::new(&format!("{p}rs")).expect("server namespace");
    let client = Netns::new(&format!("{p}rc")).expect("client namespace");
    netns::veth_pair("eth0", Some(&server_ns), "eth0", Some(&client)).expect("veth pair");
    // The server end: no addresses and no IPv6, so its kernel never answers anything itself.
    disable_ipv6(Some(&server_ns), "eth0");
    server_ns
        .ip(&["link", "set", "eth0", "promisc", "on"])
        .unwrap();
    let mac = format_mac(CLIENT_MAC);
    client.ip(&["link", "set", "eth0", "down"]).unwrap();
    client
        .ip(&["link", "set", "eth0", "address", &mac])
        .unwrap();
    client.ip(&["link", "set", "eth0", "up"]).unwrap();

    let dir = TempDir::new(&format!("responder-lab-{p}"));
    let script = dir.join("script.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let capture = std::env::var_os("STRATO_RESPONDER_CAPTURE").map(PathBuf::from);
    let fd = packet_socket(server_ns.name(), "eth0").expect("AF_PACKET socket");
    let responder = Responder::start(fd, capture);

    // udhcpc in the client namespace; `stay`: it keeps running once bound, and is then stopped
    // with SIGTERM (with -R it sends a RELEASE then: busybox skips that when -q makes it exit).
    let run_udhcpc = |extra: &[&str], stay: bool| {
        let mut args: Vec<&str> = udhcpc[1..].to_vec();
        args.extend(["-f", "-n", "-t", "4", "-T", "1", "-i", "eth0", "-s"]);
        args.push(script.to_str().unwrap());
        args.extend(["-O", "staticroutes", "-O", "mtu", "-O", "domain"]);
        if !stay {
            args.push("-q");
        }
        args.extend_from_slice(extra);
        let _ = std::fs::remove_file(dir.join("env.bound"));
        let mut child = client
            .command(udhcpc[0])
            .env("RESP_LAB_DIR", dir.path())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run udhcpc");
        // A client that never settles (say it declines every offer) fails the test after
        // 30 s instead of hanging it.
        let settled = support::wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
            if stay {
                dir.join("env.bound").exists()
            } else {
                child.try_wait().ok().flatten().is_some()
            }
        });
        let timed_out = !settled;
        if settled && stay {
            // `ip netns exec` execs the command, so the child is udhcpc itself (not yet
            // waited for, so the pid is still its own).
            support::signal(child.id(), libc::SIGTERM);
        }
        if timed_out {
            let _ = child.kill();
        }
        let o = child.wait_with_output().expect("wait for udhcpc");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            !timed_out,
            "udhcpc {extra:?} did not finish in 30 s:\n{text}"
        );
        assert!(
            dir.join("env.bound").exists(),
            "udhcpc {extra:?} got no lease:\n{text}"
        );
        assert!(
            stay || o.status.success(),
            "udhcpc {extra:?} failed:\n{text}"
        );
        text
    };

    // (c1) Broadcast replies requested, RELEASE when stopped.
    let t = run_udhcpc(&["-B", "-R"], true);
    eprintln!("udhcpc -B -R:\n{t}");
    assert!(responder.count("dhcp.ack") >= 1, "{:?}", responder.counts);
    assert!(
        responder.wait_count("dhcp.release") >= 1,
        "RELEASE counted: {:?}",
        responder.counts
    );

    // (c2) Unicast replies; `-a` probes the offered address with ARP first.
    let t = run_udhcpc(&["-a"], false);
    eprintln!("udhcpc -a:\n{t}");
    assert!(
        responder.count("arp.gratuitous") >= 1,
        "the probe was seen and not answered: {:?}",
        responder.counts
    );
    assert_eq!(responder.count("dhcp.decline"), 0, "{:?}", responder.counts);
    let (_, addr) = out(&client, "ip", &["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains("inet 10.77.0.10/24"), "ip addr:\n{addr}");
    let (_, routes) = out(&client, "ip", &["-4", "route", "show", "dev", "eth0"]);
    assert!(
        routes.contains("default via 10.77.0.1"),
        "ip route:\n{routes}"
    );
    assert!(
        routes.contains("192.168.100.0/24 via 10.77.0.254"),
        "ip route:\n{routes}"
    );
    let (_, link) = out(&client, "ip", &["-o", "link", "show", "dev", "eth0"]);
    assert!(link.contains("mtu 1450"), "ip link:\n{link}");
    let env = env_of(dir.path(), "bound");
    assert_eq!(
        env.get("ip").map(String::as_str),
        Some("10.77.0.10"),
        "{env:?}"
    );
    assert_eq!(
        env.get("dns").map(|s| s.trim()),
        Some("10.77.0.53 192.0.2.53"),
        "{env:?}"
    );
    assert_eq!(
        env.get("domain").map(String::as_str),
        Some("openstacklocal"),
        "{env:?}"
    );
    assert_eq!(
        env.get("serverid").map(String::as_str),
        Some("10.77.0.2"),
        "{env:?}"
    );
    assert_eq!(
        env.get("lease").map(String::as_str),
        Some("86400"),
        "{env:?}"
    );
    assert_eq!(
        env.get("router").map(|s| s.trim()),
        Some("10.77.0.1"),
        "{env:?}"
    );
    eprintln!("client after DHCP:\n{addr}{routes}{link}");

    // (a) ARP: ping a known address; the responder resolves it, the test answers the ping.
    let (ok, t) = out(
        &client,
        "ping",
        &["-c", "1", "-W", "2", &PEER_IP.to_string()],
    );
    assert!(ok, "ping {PEER_IP}:\n{t}");
    let (_, neigh) = out(
        &client,
        "ip",
        &["neigh", "show", &PEER_IP.to_string(), "dev", "eth0"],
    );
    assert!(
        neigh.contains("lladdr 02:5e:00:00:00:20"),
        "ip neigh:\n{neigh}"
    );
    eprintln!("ip neigh: {neigh}");
    assert!(responder.count("arp.reply") >= 1, "{:?}", responder.counts);
    // An address nobody has stays unresolved.
    let (ok, _) = out(
        &client,
        "ping",
        &["-c", "1", "-W", "1", &UNKNOWN_IP.to_string()],
    );
    assert!(!ok, "ping to an unknown address succeeded");
    assert!(
        responder.count("arp.unknown_target") >= 1,
        "{:?}",
        responder.counts
    );
    let (ok, v) = out(&client, "arping", &["-V"]);
    if ok && v.contains("iputils") {
        let (ok, t) = out(
            &client,
            "arping",
            &["-c", "1", "-w", "2", "-I", "eth0", &PEER_IP.to_string()],
        );
        assert!(ok, "arping:\n{t}");
        assert!(
            t.to_lowercase().contains("02:5e:00:00:00:20"),
            "arping:\n{t}"
        );
        // Duplicate address detection (sender 0.0.0.0): no reply, so arping -D succeeds.
        let (ok, t) = out(
            &client,
            "arping",
            &[
                "-D",
                "-c",
                "2",
                "-w",
                "3",
                "-I",
                "eth0",
                &PEER_IP.to_string(),
            ],
        );
        assert!(ok, "arping -D got an answer to a probe:\n{t}");
    } else {
        eprintln!("responder lab: iputils arping missing; ARP checked with ping and ip neigh only");
    }

    // (b) ND: ping -6 a known address.
    client
        .ip(&[
            "-6",
            "addr",
            "add",
            &format!("{CLIENT6}/64"),
            "dev",
            "eth0",
            "nodad",
        ])
        .unwrap();
    let (ok, t) = out(
        &client,
        "ping",
        &["-6", "-c", "1", "-W", "3", &PEER6.to_string()],
    );
    assert!(ok, "ping -6 {PEER6}:\n{t}\n{:?}", responder.counts);
    let (_, neigh6) = out(
        &client,
        "ip",
        &["-6", "neigh", "show", &PEER6.to_string(), "dev", "eth0"],
    );
    assert!(
        neigh6.contains("lladdr 02:5e:00:00:00:26"),
        "ip -6 neigh:\n{neigh6}"
    );
    assert!(!neigh6.contains("router"), "ip -6 neigh:\n{neigh6}");
    eprintln!("ip -6 neigh: {neigh6}");
    assert!(responder.count("nd.advert") >= 1, "{:?}", responder.counts);

    eprintln!("responder outcomes: {:?}", responder.counts.lock().unwrap());
    drop(responder);
}
