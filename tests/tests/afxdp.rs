//! AF_XDP ports on real veths (root only; each test builds its own namespaces under a per-run
//! prefix and tears them down, also on failure).
//!
//! Topology: a host namespace `<prefix>h` holds `eth0` (10.77.0.1/24); its peer `<prefix>s`
//! stays in the root namespace with no address and is opened as an [`AfXdpPort`] (or, in the
//! namespace test, lives in a second namespace). Traffic is generated inside the host namespace
//! with bash's `/dev/udp` (no extra tools needed) and by the port itself.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use strato_datapath::buf::BufPool;
use strato_datapath::port::afxdp::{AfXdpConfig, AfXdpError, AfXdpPort, XdpMode, XdpModeUsed};
use strato_datapath::port::{Port, PortKind, BURST};
use strato_labs::netns::{ip, run_prefix, veth_pair, Netns, RootLink};
use support::net::{disable_ipv6, has_xdp_prog, link_details, link_mac, rx_packets};

const HOST_IP: [u8; 4] = [10, 77, 0, 1];
const FAKE_IP: [u8; 4] = [10, 77, 0, 2];
const FAKE_MAC: [u8; 6] = [0x02, 0, 0, 0x77, 0, 0x02];
const TEST_ETHERTYPE: [u8; 2] = [0x88, 0xb5];

/// Host namespace with eth0 (10.77.0.1/24) and the switch end `sw` in the root namespace.
struct Lab {
    ns: Netns,
    sw: String,
    host_mac: [u8; 6],
    _link: RootLink,
}

fn lab(p: &str) -> Lab {
    let ns = Netns::new(&format!("{p}h")).unwrap();
    let sw = format!("{p}s");
    let link = RootLink(sw.clone());
    veth_pair(&sw, None, "eth0", Some(&ns)).unwrap();
    disable_ipv6(None, &sw);
    disable_ipv6(Some(&ns), "eth0");
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", "eth0"])
        .unwrap();
    let host_mac = link_mac(
        &ns.ip(&["-o", "link", "show", "dev", "eth0"])
            .unwrap()
            .stdout,
    );
    Lab {
        ns,
        sw,
        host_mac,
        _link: link,
    }
}

/// Sends `n` one-byte UDP datagrams to 10.77.0.2:9 from inside `ns` (bash's /dev/udp).
fn udp_sender(ns: &Netns, n: u32) -> Child {
    ns.command("bash")
        .args([
            "-c",
            &format!("for ((i=0;i<{n};i++)); do echo -n x >/dev/udp/10.77.0.2/9; done 2>/dev/null"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash")
}

fn xdp_shown(ns: Option<&Netns>, dev: &str) -> String {
    link_details(ns.map(Netns::name), dev)
}

/// Lets the host send to 10.77.0.2 (nobody) without ARP: a permanent neighbour entry.
fn fake_neighbour(l: &Lab) {
    l.ns.ip(&[
        "neigh",
        "replace",
        "10.77.0.2",
        "lladdr",
        "02:00:00:77:00:02",
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])
    .unwrap();
}

fn is_arp_request(f: &[u8], mac: [u8; 6], tpa: [u8; 4]) -> bool {
    f.len() >= 42
        && f[12..14] == [8, 6]
        && f[20..22] == [0, 1]
        && f[22..28] == mac
        && f[38..42] == tpa
}

/// An ARP reply from FAKE_MAC/FAKE_IP to the host.
fn arp_reply(host_mac: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&host_mac);
    f.extend_from_slice(&FAKE_MAC);
    f.extend_from_slice(&[8, 6, 0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&FAKE_MAC);
    f.extend_from_slice(&FAKE_IP);
    f.extend_from_slice(&host_mac);
    f.extend_from_slice(&HOST_IP);
    f.resize(60, 0);
    f
}

fn test_frame(host_mac: [u8; 6], seq: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&host_mac);
    f.extend_from_slice(&FAKE_MAC);
    f.extend_from_slice(&TEST_ETHERTYPE);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(60, 0xab);
    f
}

fn is_udp_to_9(f: &[u8]) -> bool {
    match etherparse::SlicedPacket::from_ethernet(f) {
        Ok(p) => {
            matches!(p.transport, Some(etherparse::TransportSlice::Udp(u)) if u.destination_port() == 9)
        }
        Err(_) => false,
    }
}

/// Sends one frame, retrying while the port refuses it (ring full), up to a second.
fn send_one(port: &mut AfXdpPort, pool: &mut BufPool, frame: &[u8]) {
    let b = pool.alloc().expect("pool");
    pool.get_mut(b).fill(frame).unwrap();
    let t = Instant::now();
    while port.tx(pool, &[b]) != 1 {
        assert!(t.elapsed() < Duration::from_secs(1), "tx refused for 1 s");
    }
    pool.free(b);
}

/// (1) ARP requests from the host arrive; a crafted ARP reply is learned by the host, which
/// then sends its queued UDP datagram to the learned MAC.
#[test]
fn arp_both_ways_on_a_real_veth() {
    support::skip_unless_root!("arp_both_ways_on_a_real_veth");
    let l = lab(&run_prefix());
    let mut port = AfXdpPort::open(&AfXdpConfig::new(&l.sw)).unwrap();
    println!("afxdp port on {} in {} mode", l.sw, port.mode());
    let mut pool = BufPool::new(256);
    let mut out = [0u32; BURST];
    let rx0 = rx_packets(&l.ns, "eth0");

    let mut sender = udp_sender(&l.ns, 1);
    let t = Instant::now();
    let mut arp_seen = 0;
    while arp_seen == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no ARP request from the host"
        );
        let r = port.rx_burst(&mut pool, &mut out);
        assert_eq!(r.error, None);
        for &b in &out[..r.n] {
            if is_arp_request(pool.get(b).data(), l.host_mac, FAKE_IP) {
                arp_seen += 1;
            }
            pool.free(b);
        }
    }
    send_one(&mut port, &mut pool, &arp_reply(l.host_mac));

    // The host learns the reply, then flushes its queued datagram to FAKE_MAC.
    let t = Instant::now();
    let mut learned = false;
    let mut udp_to_fake = 0;
    while !(learned && udp_to_fake > 0) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "learned={learned} udp_to_fake={udp_to_fake}"
        );
        let r = port.rx_burst(&mut pool, &mut out);
        for &b in &out[..r.n] {
            let f = pool.get(b).data();
            if f[..6] == FAKE_MAC && f[6..12] == l.host_mac && is_udp_to_9(f) {
                udp_to_fake += 1;
            }
            pool.free(b);
        }
        if !learned {
            let n =
                l.ns.ip(&["neigh", "show", "10.77.0.2", "dev", "eth0"])
                    .unwrap();
            learned = String::from_utf8_lossy(&n.stdout).contains("02:00:00:77:00:02");
        }
    }
    let _ = sender.wait();
    assert!(rx_packets(&l.ns, "eth0") > rx0, "host counted our reply");
    assert_eq!(pool.free_count(), 256, "every buffer returned");
}

/// (2) 10k frames each way, then every UMEM frame is accounted for.
#[test]
fn accounting_balances_after_10k_each_way() {
    support::skip_unless_root!("accounting_balances_after_10k_each_way");
    const N: u32 = 10_000;
    let l = lab(&run_prefix());
    fake_neighbour(&l);
    let mut port = AfXdpPort::open(&AfXdpConfig::new(&l.sw)).unwrap();
    assert!(port.balanced(), "{:?}", port.accounting());
    let mut pool = BufPool::new(1024);
    let mut out = [0u32; BURST];

    // Host -> port.
    let t0 = Instant::now();
    let mut sender = udp_sender(&l.ns, N);
    let mut got = 0u32;
    let mut last = Instant::now();
    let mut done_at = None;
    loop {
        let r = port.rx_burst(&mut pool, &mut out);
        assert_eq!(r.error, None);
        for &b in &out[..r.n] {
            if is_udp_to_9(pool.get(b).data()) {
                got += 1;
            }
            pool.free(b);
        }
        if r.n > 0 {
            last = Instant::now();
        }
        if done_at.is_none() && sender.try_wait().unwrap().is_some() {
            done_at = Some(Instant::now());
        }
        if got == N || (done_at.is_some() && last.elapsed() > Duration::from_millis(500)) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "sender too slow");
    }
    let secs = last.duration_since(t0).as_secs_f64();
    println!(
        "rx: {got} of {N} frames in {secs:.2} s ({:.0} frames/s; bash /dev/udp is the limit); kernel stats {:?}",
        got as f64 / secs,
        port.kernel_stats()
    );
    assert_eq!(got, N, "every datagram received");

    // Port -> host.
    let rx0 = rx_packets(&l.ns, "eth0");
    let frames: Vec<Vec<u8>> = (0..BURST as u32)
        .map(|i| test_frame(l.host_mac, i))
        .collect();
    let mut sent = 0u32;
    let t = Instant::now();
    while sent < N {
        let k = (N - sent).min(BURST as u32) as usize;
        let mut bufs = [0u32; BURST];
        for (i, slot) in bufs[..k].iter_mut().enumerate() {
            *slot = pool.alloc().unwrap();
            pool.get_mut(*slot).fill(&frames[i]).unwrap();
        }
        sent += port.tx(&pool, &bufs[..k]) as u32;
        for &b in &bufs[..k] {
            pool.free(b);
        }
        // Receive bursts reclaim and kick too; drain anything the host sent.
        let r = port.rx_burst(&mut pool, &mut out);
        for &b in &out[..r.n] {
            pool.free(b);
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "tx stalled at {sent}"
        );
    }
    // Quiesce: every transmit frame comes back from the completion ring.
    let t = Instant::now();
    while port.accounting().tx_in_flight > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "frames stuck in flight: {:?}",
            port.accounting()
        );
        let _ = port.tx(&pool, &[]);
        let r = port.rx_burst(&mut pool, &mut out);
        for &b in &out[..r.n] {
            pool.free(b);
        }
    }
    let r = port.rx_burst(&mut pool, &mut out);
    for &b in &out[..r.n] {
        pool.free(b);
    }
    let t = Instant::now();
    let mut delta = 0;
    while delta < N as u64 && t.elapsed() < Duration::from_secs(3) {
        delta = rx_packets(&l.ns, "eth0") - rx0;
    }
    let a = port.accounting();
    println!("tx: {sent} accepted, host counted {delta}; accounting {a:?}");
    assert_eq!(delta, N as u64, "host received every frame we sent");
    assert!(port.balanced(), "{a:?}");
    assert_eq!(a.fill, port.rx_frames(), "fill ring kept full: {a:?}");
    assert_eq!(a.rx_pending, 0);
    assert_eq!(a.tx_free, a.total - port.rx_frames(), "{a:?}");
    assert_eq!(pool.free_count(), 1024);
    let _ = sender.wait();
}

/// (3) Deleting the veth under an open port: a PortError, the port goes down, no panic.
#[test]
fn deleted_interface_is_a_port_error() {
    support::skip_unless_root!("deleted_interface_is_a_port_error");
    let l = lab(&run_prefix());
    let p = AfXdpPort::open(&AfXdpConfig::new(&l.sw)).unwrap();
    let mut port = Port::new(1, l.sw.clone(), PortKind::AfXdp(Box::new(p)));
    let mut pool = BufPool::new(64);
    let mut out = [0u32; BURST];
    assert_eq!(port.rx_burst(&mut pool, &mut out).error, None);
    ip(&["link", "del", &l.sw]).unwrap();
    let t = Instant::now();
    let mut bursts = 0u64;
    while port.up {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "deletion not noticed after {bursts} bursts"
        );
        let r = port.rx_burst(&mut pool, &mut out);
        for &b in &out[..r.n] {
            pool.free(b);
        }
        bursts += 1;
    }
    let why = port.down_reason.clone().unwrap();
    println!("noticed after {bursts} bursts: {why}");
    assert!(why.0.contains(&l.sw) && why.0.contains("gone"), "{why}");
    assert!(port.down_pending);
    // A down port neither receives nor sends; the buffer is still returned.
    let b = pool.alloc().unwrap();
    pool.get_mut(b).fill(&[0u8; 60]).unwrap();
    port.send(&mut pool, b);
    assert_eq!(port.flush(&mut pool), 1);
    // The port kind itself keeps reporting the error, without syscalls or panics.
    if let PortKind::AfXdp(x) = &mut port.kind {
        assert!(x.rx_burst(&mut pool, &mut out).error.is_some());
        let b = pool.alloc().unwrap();
        assert_eq!(x.tx(&pool, &[b]), 0);
        pool.free(b);
    }
    assert_eq!(pool.free_count(), 64);
    drop(port); // libxdp detaches from a vanished ifindex: must not crash
}

/// (4) A missing interface gives the clear error.
#[test]
fn missing_interface_is_named() {
    let name = format!("{}zz", run_prefix());
    let e = AfXdpPort::open(&AfXdpConfig::new(&name)).err().unwrap();
    assert!(matches!(e, AfXdpError::NoSuchInterface(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("interface {name} does not exist")),
        "{e}"
    );
}

/// (5) The XDP program is attached while the port is open and gone after drop; also in SKB
/// mode, and a second socket on the same queue is "busy".
#[test]
fn program_removed_on_drop_and_busy_queue() {
    support::skip_unless_root!("program_removed_on_drop_and_busy_queue");
    let l = lab(&run_prefix());
    assert!(!has_xdp_prog(&xdp_shown(None, &l.sw)));
    for (mode, want) in [
        (XdpMode::Auto, None),
        (XdpMode::Skb, Some(XdpModeUsed::Skb)),
        (XdpMode::Native, Some(XdpModeUsed::Native)),
    ] {
        let cfg = AfXdpConfig {
            mode,
            ..AfXdpConfig::new(&l.sw)
        };
        let port = AfXdpPort::open(&cfg).unwrap();
        if let Some(w) = want {
            assert_eq!(port.mode(), w);
        }
        let shown = xdp_shown(None, &l.sw);
        assert!(has_xdp_prog(&shown), "{mode:?}: no program shown:\n{shown}");
        if port.mode() == XdpModeUsed::Skb {
            assert!(shown.contains("xdpgeneric"), "{shown}");
        }
        println!("{mode:?} -> {} mode:\n{shown}", port.mode());
        if mode == XdpMode::Auto {
            // Busy is reported only after the retry window (BUSY_RETRY): check it once.
            let busy = AfXdpPort::open(&cfg).err().unwrap();
            assert!(matches!(busy, AfXdpError::Busy { .. }), "{busy:?}");
            println!("second open: {busy}");
        }
        drop(port);
        let shown = xdp_shown(None, &l.sw);
        assert!(
            !has_xdp_prog(&shown),
            "{mode:?}: program left after drop:\n{shown}"
        );
    }
    match Command::new("bpftool")
        .args(["net", "show", "dev", &l.sw])
        .output()
    {
        Ok(o) => {
            let s = String::from_utf8_lossy(&o.stdout);
            assert!(!s.contains("xsk_def_prog"), "bpftool still shows it:\n{s}");
        }
        Err(_) => println!("bpftool not installed: checked with `ip -d link` only"),
    }
}

/// The switch end inside a namespace: opened (and dropped) from inside it.
#[test]
fn port_inside_a_namespace() {
    support::skip_unless_root!("port_inside_a_namespace");
    let p = run_prefix();
    let host = Netns::new(&format!("{p}h")).unwrap();
    let swns = Netns::new(&format!("{p}w")).unwrap();
    veth_pair("sw0", Some(&swns), "eth0", Some(&host)).unwrap();
    disable_ipv6(Some(&host), "eth0");
    host.ip(&["addr", "add", "10.77.0.1/24", "dev", "eth0"])
        .unwrap();
    let host_mac = link_mac(
        &host
            .ip(&["-o", "link", "show", "dev", "eth0"])
            .unwrap()
            .stdout,
    );
    // Not visible from here.
    assert!(matches!(
        AfXdpPort::open(&AfXdpConfig::new("sw0")),
        Err(AfXdpError::NoSuchInterface(_))
    ));
    let mut port = AfXdpPort::open_in_netns(&AfXdpConfig::new("sw0"), swns.name()).unwrap();
    assert_eq!(port.netns(), Some(swns.name()));
    assert!(has_xdp_prog(&xdp_shown(Some(&swns), "sw0")));
    let mut pool = BufPool::new(64);
    let mut out = [0u32; BURST];
    let mut sender = udp_sender(&host, 1);
    let t = Instant::now();
    let mut seen = false;
    while !seen {
        assert!(t.elapsed() < Duration::from_secs(5), "no ARP request");
        let r = port.rx_burst(&mut pool, &mut out);
        assert_eq!(r.error, None);
        for &b in &out[..r.n] {
            seen |= is_arp_request(pool.get(b).data(), host_mac, FAKE_IP);
            pool.free(b);
        }
    }
    let rx0 = rx_packets(&host, "eth0");
    send_one(&mut port, &mut pool, &arp_reply(host_mac));
    let t = Instant::now();
    while rx_packets(&host, "eth0") == rx0 {
        assert!(t.elapsed() < Duration::from_secs(3), "reply not received");
    }
    let _ = sender.wait();
    drop(port);
    let shown = xdp_shown(Some(&swns), "sw0");
    assert!(!has_xdp_prog(&shown), "program left after drop:\n{shown}");
}

/// Throughput smoke (reported, not asserted beyond "frames arrive"): one UDP socket in the host
/// namespace writing as fast as bash can, the port receiving on this thread.
#[test]
fn rx_throughput_smoke() {
    support::skip_unless_root!("rx_throughput_smoke");
    const N: u32 = 100_000;
    let l = lab(&run_prefix());
    fake_neighbour(&l);
    let mut port = AfXdpPort::open(&AfXdpConfig::new(&l.sw)).unwrap();
    let mut pool = BufPool::new(1024);
    let mut out = [0u32; BURST];
    let t0 = Instant::now();
    let mut sender = l
        .ns
        .command("bash")
        .args([
            "-c",
            &format!(
                "exec 3>/dev/udp/10.77.0.2/9; for ((i=0;i<{N};i++)); do echo -n x >&3; done 2>/dev/null"
            ),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash");
    let (mut got, mut first, mut last) = (0u64, None, t0);
    let mut done = false;
    while !(done && last.elapsed() > Duration::from_millis(300)) {
        let r = port.rx_burst(&mut pool, &mut out);
        assert_eq!(r.error, None);
        if r.n > 0 {
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
        }
        for &b in &out[..r.n] {
            got += is_udp_to_9(pool.get(b).data()) as u64;
            pool.free(b);
        }
        done = done || sender.try_wait().unwrap().is_some();
        assert!(t0.elapsed() < Duration::from_secs(120), "sender too slow");
    }
    let _ = sender.wait();
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    println!(
        "throughput smoke ({} mode): {got} of {N} frames in {secs:.2} s = {:.0} frames/s (generator: bash, one socket); kernel stats {:?}",
        port.mode(),
        got as f64 / secs.max(1e-9),
        port.kernel_stats()
    );
    assert!(got > 0, "no frames received");
    assert!(port.balanced(), "{:?}", port.accounting());
}
