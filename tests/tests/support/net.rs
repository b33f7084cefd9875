//! Commands and pings inside network namespaces, and facts about interfaces (MAC, rx counter,
//! XDP program). Namespaces are named by the caller (made with its per-run prefix); nothing
//! here sends traffic outside them.

use std::process::Command;
use strato_labs::netns::{self, Netns};

/// Runs `cmd ARGS` inside `ns`: (exit 0, stdout then stderr).
pub fn sh(ns: &Netns, cmd: &str, args: &[&str]) -> (bool, String) {
    let o = ns
        .command(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd} in {}: {e}", ns.name()));
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.success(), s)
}

/// One `ping -c 1 -W WAIT IP` from namespace `ns` (by name): whether it was answered.
pub fn ping_once(ns: &str, ip: &str, wait_s: u32) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ping",
            "-c",
            "1",
            "-W",
            &wait_s.to_string(),
            ip,
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `ping -n -c COUNT -i 0.2 -W 1 [-I SRC] DST` inside `ns`: replies received, and the output.
pub fn ping_count(ns: &Netns, dst: &str, count: u32, src: Option<&str>) -> (u32, String) {
    let c = count.to_string();
    let mut args = vec!["-n", "-c", &c, "-i", "0.2", "-W", "1"];
    if let Some(s) = src {
        args.extend(["-I", s]);
    }
    args.push(dst);
    let (_, out) = sh(ns, "ping", &args);
    let n = out
        .lines()
        .find_map(|l| {
            let i = l.find(" received")?;
            l[..i].rsplit(", ").next()?.trim().parse().ok()
        })
        .unwrap_or(0);
    (n, out)
}

/// The interface's received-packet counter (`/sys/class/net/DEV/statistics/rx_packets`).
pub fn rx_packets(ns: &Netns, dev: &str) -> u64 {
    let (ok, out) = sh(
        ns,
        "cat",
        &[&format!("/sys/class/net/{dev}/statistics/rx_packets")],
    );
    assert!(ok, "{out}");
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("rx_packets of {dev}: {e}: {out}"))
}

/// Turns IPv6 off on `dev` (or `all` / `default`) in `ns` (or here), so no router
/// solicitations, DAD or MLD reports appear on the wire and counts stay exact.
pub fn disable_ipv6(ns: Option<&Netns>, dev: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
    match ns {
        Some(ns) => {
            ns.exec("sh", &["-c", &format!("echo 1 > {path}")])
                .unwrap_or_else(|e| panic!("{path} in {}: {e}", ns.name()));
        }
        None => std::fs::write(&path, "1").unwrap_or_else(|e| panic!("{path}: {e}")),
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut it = s.split(':');
    for b in &mut m {
        *b = u8::from_str_radix(it.next()?, 16).ok()?;
    }
    it.next().is_none().then_some(m)
}

pub fn format_mac(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

/// The MAC in `ip link show` output.
pub fn link_mac(out: &[u8]) -> [u8; 6] {
    let s = String::from_utf8_lossy(out);
    let w = s
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no link/ether in {s}"));
    parse_mac(w).unwrap_or_else(|| panic!("bad MAC {w} in {s}"))
}

/// `ip -d link show dev DEV` in namespace `ns` (by name), or here.
pub fn link_details(ns: Option<&str>, dev: &str) -> String {
    let args = ["-d", "link", "show", "dev", dev];
    let out = match ns {
        Some(ns) => netns::ip(&[&["-n", ns][..], &args].concat()),
        None => netns::ip(&args),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `ip -d link` output shows an XDP program attached.
pub fn has_xdp_prog(ip_d_link: &str) -> bool {
    ip_d_link.contains("prog/xdp")
        || ip_d_link.contains("xdpgeneric")
        || ip_d_link.contains(" xdp ")
}

/// Whether `dev` in namespace `ns` has an XDP program attached (false when it is gone).
pub fn xdp_attached(ns: &str, dev: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns, "-d", "link", "show", "dev", dev])
        .output()
        .is_ok_and(|o| has_xdp_prog(&String::from_utf8_lossy(&o.stdout)))
}

/// A host namespace `name` whose `eth0` is one end of a veth; the other end, `port`, goes to
/// namespace `sw`. `eth0` gets `mac` and `cidr` and is up.
pub fn host_on(sw: &Netns, name: &str, port: &str, mac: &str, cidr: &str) -> Netns {
    let h = Netns::new(name).unwrap_or_else(|e| panic!("namespace {name}: {e}"));
    netns::veth_pair("eth0", Some(&h), port, Some(sw)).unwrap_or_else(|e| panic!("veth: {e}"));
    for args in [
        &["link", "set", "dev", "eth0", "down"][..],
        &["link", "set", "dev", "eth0", "address", mac],
        &["addr", "add", cidr, "dev", "eth0"],
        &["link", "set", "dev", "eth0", "up"],
    ] {
        h.ip(args).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    h
}
