//! `strato lab` through the real binary: a bad topology is refused with the field named (no root
//! needed), and, as root, a three-host lab (two AF_XDP veth hosts, one tap host) goes up, every
//! pair pings, `exec` runs in the right namespace with the command's status, and `down` leaves no
//! namespace, interface or run directory behind, also when an assertion fails (a Drop guard runs
//! `down`). The lab's name comes from `netns::run_prefix()`, so parallel runs never meet.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;
use strato_labs::netns;
use support::net::{ping_once, xdp_attached};
use support::strato::{ctl_json, lab_name, strato, StratoLab};
use support::{text, TempDir};

/// `text` as `lab.toml` in a temporary directory of its own; its path.
fn topo_file(tag: &str, text: &str) -> (TempDir, String) {
    let dir = TempDir::new(&format!("lab-test-{tag}"));
    let f = dir.join("lab.toml");
    std::fs::write(&f, text).unwrap();
    let path = f.to_str().unwrap().to_string();
    (dir, path)
}

/// `strato lab exec --lab FILE HOST -- CMD...`.
fn lab_exec(file: &str, host: &str, cmd: &[&str]) -> Output {
    strato(&[&["lab", "exec", "--lab", file, host, "--"][..], cmd].concat())
}

/// `strato ctl --socket SOCK ARGS`, which must fail with exit 1, naming `what` on stderr.
fn ctl_refused(sock: &str, args: &[&str], what: &str) {
    let o = strato(&[&["ctl", "--socket", sock][..], args].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(what),
        "{}",
        text(&o)
    );
}

fn topology(name: &str) -> String {
    format!(
        r#"name = "{name}"

[[host]]
name = "h1"
ip = "10.0.0.1/24"
link = "afxdp"
mac = "02:00:00:00:00:01"

[[host]]
name = "h2"
ip = "10.0.0.2/24"
link = "afxdp"
mac = "02:00:00:00:00:02"

[[host]]
name = "h3"
ip = "10.0.0.3/24"
link = "tap"
mac = "02:00:00:00:00:03"
"#
    )
}

/// Interfaces in this (the root) namespace whose name starts with `prefix`.
fn root_links_with_prefix(prefix: &str) -> Vec<String> {
    let out = netns::ip(&["-o", "link", "show"]).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|s| s.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn bad_topologies_are_refused_with_the_field_named() {
    let name = lab_name('s');
    let bad = topology(&name).replace("10.0.0.2/24", "10.0.0.2");
    let (_d1, f) = topo_file(&format!("{name}bad"), &bad);
    let o = strato(&["lab", "up", &f]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("strato lab: "), "{err}");
    assert!(
        err.contains("`host[1].ip`") && err.contains("prefix length"),
        "{err}"
    );
    assert!(
        netns::list_with_prefix(&format!("{name}-"))
            .unwrap()
            .is_empty(),
        "nothing was built"
    );

    let (_d2, f2) = topo_file(&format!("{name}ok"), &topology(&name));
    let o = strato(&["lab", "exec", "--lab", &f2, "h9", "--", "true"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("has no host `h9` (hosts: h1, h2, h3)"),
        "{err}"
    );

    let o = strato(&["lab", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for sub in ["up", "down", "exec", "ping-all"] {
        assert!(help.contains(sub), "{sub} missing from:\n{help}");
    }
}

#[test]
fn three_host_lab_up_ping_all_exec_down() {
    support::skip_unless_root!("three_host_lab_up_ping_all_exec_down");
    let name = lab_name('s');
    let prefix = format!("{name}-");
    let dir = TempDir::new(&format!("lab-test-{name}"));
    let pid;
    let (run_dir, path) = {
        let lab = StratoLab::new(dir.join("lab.toml"), &name, &topology(&name));
        let f = lab.path();
        let o = lab.up();
        assert!(o.status.success(), "lab up failed:\n{}", text(&o));
        let mut nss = netns::list_with_prefix(&prefix).unwrap();
        nss.sort();
        assert_eq!(
            nss,
            ["h1", "h2", "h3", "sw"].map(|h| format!("{name}-{h}")),
            "{}",
            text(&o)
        );
        pid = lab.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "daemon runs");

        let o = lab.up();
        assert!(!o.status.success(), "second up must refuse:\n{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("already up") && err.contains("strato lab down"),
            "{err}"
        );

        // exec runs in the host's namespace: h3's eth0 is the tap, moved and configured.
        let o = lab_exec(f, "h3", &["ip", "-o", "addr", "show", "dev", "eth0"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("10.0.0.3/24"),
            "{}",
            text(&o)
        );
        let o = lab_exec(f, "h3", &["ip", "-d", "link", "show", "dev", "eth0"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("02:00:00:00:00:03") && out.contains("tun type tap"),
            "{}",
            text(&o)
        );
        let o = lab_exec(f, "h1", &["ip", "-o", "addr", "show", "dev", "eth0"]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("10.0.0.1/24"),
            "{}",
            text(&o)
        );
        let o = lab_exec(f, "h2", &["sh", "-c", "exit 7"]);
        assert_eq!(o.status.code(), Some(7), "{}", text(&o));

        let o = strato(&["lab", "ping-all", f]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("6/6 pairs reachable"),
            "ping-all:\n{}\n--- daemon log ---\n{}",
            text(&o),
            lab.log()
        );

        let o = lab.down();
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains(&format!("removed namespace {name}-sw"))
                && out.contains(&format!("daemon (pid {pid}")),
            "{}",
            text(&o)
        );
        (lab.run_dir(), f.to_string())
    };
    // The guard ran `down` once more: idempotent. Nothing of the lab is left.
    assert!(netns::list_with_prefix(&prefix).unwrap().is_empty());
    assert!(root_links_with_prefix(&prefix).is_empty());
    assert!(!run_dir.exists());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "daemon still runs: {stat}"
    );
    let o = strato(&["lab", "down", &path]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("nothing to remove"),
        "{}",
        text(&o)
    );
}

/// The ports issue's acceptance scenario: learning visible in dump-flows, del-port stops only
/// that host, a veth deleted under the daemon takes only its port down, SIGTERM removes every
/// XDP program, and nothing is left behind.
#[test]
fn daemon_learns_survives_port_loss_and_cleans_up() {
    support::skip_unless_root!("daemon_learns_survives_port_loss_and_cleans_up");
    let name = lab_name('s');
    let topo = format!("{}\n[[host]]\nname = \"h4\"\nip = \"10.0.0.4/24\"\nlink = \"afxdp\"\nmac = \"02:00:00:00:00:04\"\n", topology(&name));
    let lab = StratoLab::in_temp_dir(&format!("lab-test-{name}"), &name, &topo);
    let o = lab.up();
    assert!(o.status.success(), "{}", text(&o));
    let sock = lab.socket().to_str().unwrap().to_string();
    let ns = |h: &str| format!("{name}-{h}");
    let ping = |ns: &str, ip: &str| ping_once(ns, ip, 1);
    let o = strato(&["lab", "ping-all", lab.path()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("12/12"),
        "{}",
        text(&o)
    );

    // MAC learning is visible as rules: every host's MAC as a learned source and destination.
    let flows = ctl_json(&sock, &["dump-flows"]);
    let flows = flows["flows"].as_array().unwrap();
    for h in 1..=4 {
        let mac = format!("02:00:00:00:00:0{h}");
        assert!(
            flows.iter().any(|f| f["match"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("dl_src={mac}"))),
            "{mac} not learned: {flows:?}"
        );
        assert!(
            flows.iter().any(|f| f["match"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("dl_dst={mac}"))),
            "{mac} not learned: {flows:?}"
        );
    }

    // Bad requests get a clear error (exit 1) and change nothing.
    ctl_refused(
        &sock,
        &["add-port", "nosuchif0", "--kind", "afxdp"],
        "nosuchif0",
    );
    ctl_refused(
        &sock,
        &["add-port", &format!("{name}-h4"), "--kind", "afxdp"],
        "already exists",
    );
    assert!(
        ping(&ns("h1"), "10.0.0.4"),
        "a refused request disturbed forwarding"
    );

    // del-port: h1 is cut off; the others still reach each other. Its XDP program is gone.
    let h1_port = format!("{name}-h1");
    assert!(xdp_attached(&ns("sw"), &h1_port));
    let o = strato(&["ctl", "--socket", &sock, "del-port", &h1_port]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !xdp_attached(&ns("sw"), &h1_port),
        "del-port left the XDP program"
    );
    assert!(!ping(&ns("h1"), "10.0.0.2"));
    assert!(
        ping(&ns("h2"), "10.0.0.3") && ping(&ns("h3"), "10.0.0.4") && ping(&ns("h4"), "10.0.0.2")
    );
    // Deleting it twice, or a port that never existed, is a clear error (exit 1).
    ctl_refused(&sock, &["del-port", &h1_port], &h1_port);

    // h2's veth deleted under the daemon: its port goes down (shown, with a reason), the daemon
    // keeps running and the others keep forwarding.
    netns::ip(&["-n", &ns("h2"), "link", "del", "eth0"]).unwrap();
    let h2_port = || {
        let show = ctl_json(&sock, &["show"]);
        show["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == format!("{name}-h2"))
            .cloned()
            .unwrap()
    };
    let every = Duration::from_millis(100);
    let p = support::retry(Duration::from_secs(10), every, h2_port, |p| {
        p["up"] == false
    });
    assert!(p["up"] == false, "port never went down: {p}");
    assert!(
        p["down_reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{p}"
    );
    assert!(
        ping(&ns("h3"), "10.0.0.4") && ping(&ns("h4"), "10.0.0.3"),
        "the other ports stopped forwarding"
    );
    let stats = ctl_json(&sock, &["stats"]);
    assert!(stats["ports"].as_array().unwrap().len() >= 3, "{stats}");

    // SIGTERM: the daemon exits and no XDP program is left on the switch's interfaces.
    let pid = lab.pid();
    let h4_port = format!("{name}-h4");
    assert!(xdp_attached(&ns("sw"), &h4_port));
    support::signal(pid, libc::SIGTERM);
    assert!(
        support::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            !support::alive(pid)
        }),
        "daemon did not exit on SIGTERM"
    );
    assert!(
        !xdp_attached(&ns("sw"), &h4_port),
        "XDP program left after SIGTERM"
    );
    assert!(
        !Path::new(&sock).exists(),
        "control socket left after SIGTERM"
    );

    let o = lab.down();
    assert!(o.status.success(), "{}", text(&o));
    assert!(netns::list_with_prefix(&format!("{name}-"))
        .unwrap()
        .is_empty());
    assert!(root_links_with_prefix(&format!("{name}-")).is_empty());
}
