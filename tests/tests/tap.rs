//! Tap ports (root only; every test names what it makes after a per-run prefix and tears it
//! down, also on failure: taps and veths in the root namespace through [`RootLink`] guards,
//! namespaces through [`Netns`]).
//!
//! The "VM" is a network namespace holding the tap interface: a tap is opened (created) in the
//! root namespace, then moved into a fresh namespace, where it is an ordinary NIC with an
//! address. Traffic is only ever sent by `ping` inside that namespace, towards addresses of its
//! own /24 that only the test's responder (behind the port) answers.

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use strato_datapath::buf::{BufPool, MAX_FRAME};
use strato_datapath::port::tap::{TapConfig, TapError, TapPort};
use strato_datapath::port::{Port, PortKind, BURST};
use strato_labs::netns::{ip, run_prefix, veth_pair, Netns, RootLink};
use support::net::{link_mac, rx_packets};

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, EtherType, Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket,
    TransportSlice,
};

const WAIT: Duration = Duration::from_secs(8);
/// The MAC the test's responder (the "switch side") answers with.
const PEER_MAC: [u8; 6] = [0x02, 0x53, 0x54, 0x00, 0x00, 0x02];

fn link_exists(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).is_ok()
}

/// The `<FLAGS>` of `ip -o link show` output.
fn link_flags(out: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(out);
    let a = s.find('<').unwrap_or_else(|| panic!("no flags in {s}"));
    let b = s[a..].find('>').unwrap() + a;
    s[a + 1..b].split(',').map(str::to_string).collect()
}

/// A "VM": namespace `<p>vm` holding the tap `tap`, up, with `addr`/24.
fn vm_with_tap(p: &str, tap: &str, addr: &str) -> Netns {
    let ns = Netns::new(&format!("{p}vm")).unwrap();
    ip(&["link", "set", tap, "netns", ns.name()]).unwrap();
    ns.ip(&["link", "set", tap, "up"]).unwrap();
    ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", tap])
        .unwrap();
    ns
}

/// Creates a tap named after `p` (root namespace) and returns it with its guard.
fn open_created(p: &str) -> (TapPort, RootLink) {
    let name = format!("{p}t");
    let guard = RootLink(name.clone());
    let tap = TapPort::open(&TapConfig {
        name: name.clone(),
        create: true,
    })
    .unwrap();
    (tap, guard)
}

fn ping(ns: &Netns, args: &[&str]) -> Child {
    ns.command("ping")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Receives through `port` until `done` says so or `WAIT` passes; returns every frame seen.
fn receive_until(
    port: &mut Port,
    pool: &mut BufPool,
    mut done: impl FnMut(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    let mut out = [0u32; BURST];
    let t = Instant::now();
    while !done(&seen) && t.elapsed() < WAIT {
        let r = port.rx_burst(pool, &mut out);
        assert!(port.up, "port went down: {:?}", port.down_reason);
        for &b in &out[..r.n] {
            seen.push(pool.get(b).data().to_vec());
            pool.free(b);
        }
        if r.n == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    seen
}

fn arp_of(frame: &[u8]) -> Option<ArpEthIpv4Packet> {
    let s = SlicedPacket::from_ethernet(frame).ok()?;
    match s.net? {
        NetSlice::Arp(a) => a.to_packet().try_eth_ipv4().ok(),
        _ => None,
    }
}

/// (1) The namespace's ARP requests for an unused address arrive through the port, from the
/// tap's MAC.
#[test]
fn tap_receives_arp_from_vm() {
    support::skip_unless_root!("tap_receives_arp_from_vm");
    let p = run_prefix();
    let (tap, _guard) = open_created(&p);
    let name = tap.ifname().to_string();
    assert_eq!(name, format!("{p}t"));
    assert!(tap.created());
    let out = ip(&["-o", "link", "show", "dev", &name]).unwrap();
    assert!(
        link_flags(&out.stdout).contains(&"UP".to_string()),
        "open sets the link up: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mac = tap.mac().unwrap();
    let ns = vm_with_tap(&p, &name, "10.77.1.1");
    // The MAC seen from the tap queue after the move is the NIC's MAC inside the "VM".
    assert_eq!(
        link_mac(&ns.ip(&["link", "show", &name]).unwrap().stdout),
        mac
    );

    let mut port = Port::new(1, name.clone(), PortKind::Tap(tap));
    let mut pool = BufPool::new(256);
    let mut pinger = ping(&ns, &["-c", "3", "-i", "0.3", "-W", "1", "10.77.1.99"]);
    let seen = receive_until(&mut port, &mut pool, |s| {
        s.iter().filter(|f| arp_of(f).is_some()).count() >= 2
    });
    let _ = pinger.kill();
    let _ = pinger.wait();
    let arps: Vec<_> = seen
        .iter()
        .filter_map(|f| arp_of(f).map(|a| (f, a)))
        .collect();
    assert!(
        arps.len() >= 2,
        "expected ARP requests, got {} frames",
        seen.len()
    );
    for (f, a) in &arps {
        assert_eq!(&f[0..6], &[0xff; 6], "broadcast");
        assert_eq!(&f[6..12], &mac, "Ethernet source is the tap's MAC");
        assert_eq!(a.operation, ArpOperation::REQUEST);
        assert_eq!(a.sender_mac, mac);
        assert_eq!(a.sender_ipv4, [10, 77, 1, 1]);
        assert_eq!(a.target_ipv4, [10, 77, 1, 99]);
    }
    assert!(port.counters.rx_packets >= 2);
    assert!(port.counters.rx_bytes >= 2 * 42);
}

/// Builds the answer to `frame` as the host 10.77.2.2 with `PEER_MAC`: an ARP reply to an ARP
/// request for it, an echo reply to an echo request to it; `None` for anything else.
fn answer(frame: &[u8]) -> Option<Vec<u8>> {
    let s = SlicedPacket::from_ethernet(frame).ok()?;
    let src_mac: [u8; 6] = frame[6..12].try_into().ok()?;
    let me = [10, 77, 2, 2];
    let mut v = Vec::new();
    match (s.net?, s.transport) {
        (NetSlice::Arp(a), _) => {
            let a = a.to_packet().try_eth_ipv4().ok()?;
            if a.operation != ArpOperation::REQUEST || a.target_ipv4 != me {
                return None;
            }
            let reply = ArpEthIpv4Packet {
                operation: ArpOperation::REPLY,
                sender_mac: PEER_MAC,
                sender_ipv4: me,
                target_mac: a.sender_mac,
                target_ipv4: a.sender_ipv4,
            };
            PacketBuilder::ethernet2(PEER_MAC, src_mac)
                .arp(reply.into())
                .write(&mut v)
                .ok()?;
        }
        (NetSlice::Ipv4(ip4), Some(TransportSlice::Icmpv4(icmp))) => {
            let h = ip4.header();
            if h.destination() != me {
                return None;
            }
            let Icmpv4Type::EchoRequest(e) = icmp.icmp_type() else {
                return None;
            };
            PacketBuilder::ethernet2(PEER_MAC, src_mac)
                .ipv4(me, h.source(), 64)
                .icmpv4_echo_reply(e.id, e.seq)
                .write(&mut v, icmp.payload())
                .ok()?;
        }
        _ => return None,
    }
    Some(v)
}

/// (2) A responder behind the port answers ARP and echo requests: `ping -c 3` in the "VM"
/// succeeds through rx_burst and tx.
#[test]
fn ping_through_tap_port() {
    support::skip_unless_root!("ping_through_tap_port");
    let p = run_prefix();
    let (tap, _guard) = open_created(&p);
    let name = tap.ifname().to_string();
    let ns = vm_with_tap(&p, &name, "10.77.2.1");
    let mut port = Port::new(1, name.clone(), PortKind::Tap(tap));
    let mut pool = BufPool::new(256);
    let mut pinger = ping(&ns, &["-c", "3", "-i", "0.2", "-W", "2", "10.77.2.2"]);
    let mut out = [0u32; BURST];
    let (mut arp_replies, mut echo_replies) = (0, 0);
    let t = Instant::now();
    let status = loop {
        if let Some(st) = pinger.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < WAIT, "ping did not finish");
        let r = port.rx_burst(&mut pool, &mut out);
        assert!(port.up, "port went down: {:?}", port.down_reason);
        for &b in &out[..r.n] {
            let reply = answer(pool.get(b).data());
            pool.free(b);
            let Some(reply) = reply else { continue };
            if reply[12..14] == EtherType::ARP.0.to_be_bytes() {
                arp_replies += 1;
            } else {
                echo_replies += 1;
            }
            let rb = pool.alloc().unwrap();
            pool.get_mut(rb).fill(&reply).unwrap();
            assert_eq!(port.send(&mut pool, rb), 0);
        }
        if port.has_pending() {
            assert_eq!(port.flush(&mut pool), 0, "tap refused a reply");
        }
        if r.n == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let o = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(status.success(), "ping failed: {text}");
    assert!(text.contains("3 received"), "{text}");
    assert!(
        arp_replies >= 1,
        "the VM resolved the peer through the port"
    );
    assert_eq!(echo_replies, 3);
    assert_eq!(port.counters.tx_packets, arp_replies + echo_replies);
    assert_eq!(port.counters.tx_dropped, 0);
    assert_eq!(pool.free_count(), 256, "every buffer returned");
    // The kernel's view agrees: the VM's NIC received what the port sent.
    assert_eq!(rx_packets(&ns, &name), arp_replies + echo_replies);
}

/// (3) Attaching to an existing persistent tap leaves it in place on drop; a created tap is
/// deleted on drop; a second attach to a held tap is `Busy`.
#[test]
fn persistent_attach_and_created_delete() {
    support::skip_unless_root!("persistent_attach_and_created_delete");
    let p = run_prefix();
    let pers = format!("{p}p");
    let _g = RootLink(pers.clone());
    ip(&["tuntap", "add", "dev", &pers, "mode", "tap"]).unwrap();
    for create in [false, true] {
        let tap = TapPort::open(&TapConfig {
            name: pers.clone(),
            create,
        })
        .unwrap();
        assert!(!tap.created(), "attached, not created (create = {create})");
        assert_eq!(tap.ifname(), pers);
        let out = ip(&["-o", "link", "show", "dev", &pers]).unwrap();
        assert!(link_flags(&out.stdout).contains(&"UP".to_string()));
        let e = TapPort::open(&TapConfig {
            name: pers.clone(),
            create: true,
        })
        .unwrap_err();
        assert!(matches!(&e, TapError::Busy(n) if *n == pers), "{e:?}");
        assert!(e.to_string().contains("busy"), "{e}");
        drop(tap);
        assert!(link_exists(&pers), "a persistent tap stays after drop");
    }

    let made = format!("{p}c");
    let _g2 = RootLink(made.clone());
    let tap = TapPort::open(&TapConfig {
        name: made.clone(),
        create: true,
    })
    .unwrap();
    assert!(tap.created());
    assert!(link_exists(&made));
    drop(tap);
    assert!(!link_exists(&made), "a created tap is deleted on drop");
}

/// (4) Errors that say what is wrong: name too long, not found, a veth and a tun where a tap
/// was asked for, a multi-queue tap.
#[test]
fn open_errors() {
    support::skip_unless_root!("open_errors");
    let p = run_prefix();
    let long = format!("{p}{}", "x".repeat(16 - p.len()));
    assert_eq!(long.len(), 16);
    let e = TapPort::open(&TapConfig {
        name: long.clone(),
        create: true,
    })
    .unwrap_err();
    assert!(matches!(e, TapError::NameTooLong { len: 16, .. }), "{e:?}");
    assert!(!link_exists(&long));

    let missing = format!("{p}m");
    let e = TapPort::open(&TapConfig {
        name: missing.clone(),
        create: false,
    })
    .unwrap_err();
    assert!(
        matches!(&e, TapError::NotFound(n) if *n == missing),
        "{e:?}"
    );
    assert!(!link_exists(&missing), "create = false never creates");

    // A veth with the name (its peer in a namespace of ours; both go with the guard/namespace).
    let ns = Netns::new(&format!("{p}ns")).unwrap();
    let veth = format!("{p}v");
    let _gv = RootLink(veth.clone());
    veth_pair(&veth, None, "eth0", Some(&ns)).unwrap();
    let e = TapPort::open(&TapConfig {
        name: veth.clone(),
        create: true,
    })
    .unwrap_err();
    assert!(
        matches!(&e, TapError::NotATap { name, what } if *name == veth && what.contains("not a tun/tap")),
        "{e:?}"
    );
    assert!(e.to_string().contains("not a tap"), "{e}");

    let tun = format!("{p}u");
    let _gt = RootLink(tun.clone());
    ip(&["tuntap", "add", "dev", &tun, "mode", "tun"]).unwrap();
    let e = TapPort::open(&TapConfig {
        name: tun.clone(),
        create: true,
    })
    .unwrap_err();
    assert!(
        matches!(&e, TapError::NotATap { what, .. } if what.contains("tun (layer-3)")),
        "{e:?}"
    );

    let mq = format!("{p}q");
    let _gq = RootLink(mq.clone());
    ip(&["tuntap", "add", "dev", &mq, "mode", "tap", "multi_queue"]).unwrap();
    let e = TapPort::open(&TapConfig {
        name: mq.clone(),
        create: false,
    })
    .unwrap_err();
    assert!(matches!(&e, TapError::MultiQueue(n) if *n == mq), "{e:?}");
}

/// Oversize frames are counted and dropped; an empty pool leaves frames queued in the kernel;
/// deleting the device is reported once, then the port is quiet.
#[test]
fn oversize_no_buffer_and_device_gone() {
    support::skip_unless_root!("oversize_no_buffer_and_device_gone");
    let p = run_prefix();
    let (mut tap, _guard) = open_created(&p);
    let name = tap.ifname().to_string();
    let ns = vm_with_tap(&p, &name, "10.77.3.1");
    ns.ip(&["link", "set", &name, "mtu", "4000"]).unwrap();
    // A static neighbour: the echo requests go out at once, no ARP first.
    ns.ip(&[
        "neigh",
        "add",
        "10.77.3.2",
        "lladdr",
        "02:53:54:00:00:02",
        "dev",
        &name,
    ])
    .unwrap();
    let mut out = [0u32; BURST];
    let mut pool = BufPool::new(64);
    // Drain whatever the VM sent when its link came up (IPv6 router/neighbour solicitations).
    std::thread::sleep(Duration::from_millis(300));
    loop {
        let r = tap.rx_burst(&mut pool, &mut out);
        for &b in &out[..r.n] {
            pool.free(b);
        }
        if r.n == 0 {
            break;
        }
    }
    assert_eq!(pool.free_count(), 64);

    let big = (MAX_FRAME + 500 - 14 - 20 - 8).to_string();
    let _ = ns.exec("ping", &["-c", "1", "-W", "1", "-s", &big, "10.77.3.2"]);
    let _ = ns.exec("ping", &["-c", "1", "-W", "1", "-s", "100", "10.77.3.2"]);

    let mut empty = BufPool::new(0);
    let r = tap.rx_burst(&mut empty, &mut out);
    assert_eq!((r.n, r.no_buffer, r.oversize), (0, true, 0), "{r:?}");

    let r = tap.rx_burst(&mut pool, &mut out);
    assert!(r.error.is_none(), "{r:?}");
    assert_eq!(r.oversize, 1, "the big echo request was dropped: {r:?}");
    let frames: Vec<Vec<u8>> = out[..r.n]
        .iter()
        .map(|&b| pool.get(b).data().to_vec())
        .collect();
    for &b in &out[..r.n] {
        pool.free(b);
    }
    let echo = frames
        .iter()
        .find(|f| f.len() == 14 + 20 + 8 + 100)
        .unwrap_or_else(|| panic!("no 142-byte echo request among {} frames", frames.len()));
    assert_eq!(&echo[0..6], &PEER_MAC, "it waited in the kernel queue");

    // The device goes away with its namespace: one error, then nothing.
    drop(ns);
    let t = Instant::now();
    let err = loop {
        let r = tap.rx_burst(&mut pool, &mut out);
        for &b in &out[..r.n] {
            pool.free(b);
        }
        if let Some(e) = r.error {
            break e;
        }
        assert!(t.elapsed() < WAIT, "deleting the tap was never reported");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(err.0.contains(&name), "{err}");
    for _ in 0..3 {
        assert_eq!(
            tap.rx_burst(&mut pool, &mut out),
            Default::default(),
            "reported once"
        );
    }
    let b = pool.alloc().unwrap();
    pool.get_mut(b).fill(&[0u8; 60]).unwrap();
    assert_eq!(tap.tx(&pool, &[b]), 0);
    pool.free(b);
    assert_eq!(pool.free_count(), 64);
}

/// A write error that means the device is gone takes the port down through `Port`.
#[test]
fn device_gone_takes_port_down() {
    support::skip_unless_root!("device_gone_takes_port_down");
    let p = run_prefix();
    let (tap, _guard) = open_created(&p);
    let name = tap.ifname().to_string();
    let mut port = Port::new(7, name.clone(), PortKind::Tap(tap));
    let mut pool = BufPool::new(8);
    ip(&["link", "del", &name]).unwrap();
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, [0xff; 6])
        .arp(
            ArpEthIpv4Packet {
                operation: ArpOperation::REQUEST,
                sender_mac: PEER_MAC,
                sender_ipv4: [10, 77, 4, 2],
                target_mac: [0; 6],
                target_ipv4: [10, 77, 4, 1],
            }
            .into(),
        )
        .write_to_vec(&mut frame)
        .unwrap();
    let b = pool.alloc().unwrap();
    pool.get_mut(b).fill(&frame).unwrap();
    port.send(&mut pool, b);
    assert_eq!(port.flush(&mut pool), 1, "a deleted tap takes nothing");
    let mut out = [0u32; BURST];
    let r = port.rx_burst(&mut pool, &mut out);
    assert_eq!(r.n, 0);
    assert!(!port.up, "the port went down");
    assert!(port.down_pending);
    let why = port.down_reason.clone().unwrap();
    assert!(why.0.contains(&name), "{why}");
    assert_eq!(pool.free_count(), 8);
}
