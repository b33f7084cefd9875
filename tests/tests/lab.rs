//! `strato lab` through the real binary: a bad topology is refused with the field named (no root
//! needed), and, as root, a three-host lab (two AF_XDP veth hosts, one tap host) goes up, every
//! pair pings, `exec` runs in the right namespace with the command's status, and `down` leaves no
//! namespace, interface or run directory behind, also when an assertion fails (a Drop guard runs
//! `down`). The lab's name comes from `netns::run_prefix()`, so parallel runs never meet.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use strato_labs::netns;

const STRATO: &str = env!("CARGO_BIN_EXE_strato-e2e");

fn strato(args: &[&str]) -> Output {
    Command::new(STRATO)
        .args(args)
        .output()
        .expect("run the strato binary")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A lab name (<= 6 chars, no `-`) derived from this run's prefix.
fn lab_name() -> String {
    let p = netns::run_prefix();
    let n = if p.len() <= 6 {
        p
    } else {
        format!("s{}", &p[p.len() - 5..])
    };
    assert!(
        n.len() <= 6 && n.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{n}"
    );
    n
}

/// A temporary directory with a topology file in it; removed on drop.
struct TopoFile {
    dir: PathBuf,
    file: PathBuf,
}

impl TopoFile {
    fn new(name: &str, text: &str) -> TopoFile {
        let dir = std::env::temp_dir().join(format!("strato-lab-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lab.toml");
        std::fs::write(&file, text).unwrap();
        TopoFile { dir, file }
    }

    fn path(&self) -> &str {
        self.file.to_str().unwrap()
    }
}

impl Drop for TopoFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `strato lab down FILE` on drop, so a failed assertion leaves nothing behind.
struct LabGuard<'a>(&'a TopoFile);

impl Drop for LabGuard<'_> {
    fn drop(&mut self) {
        let o = strato(&["lab", "down", self.0.path()]);
        if !o.status.success() {
            eprintln!("lab guard: `strato lab down` failed:\n{}", text(&o));
        }
    }
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
    let name = lab_name();
    let bad = topology(&name).replace("10.0.0.2/24", "10.0.0.2");
    let f = TopoFile::new(&format!("{name}bad"), &bad);
    let o = strato(&["lab", "up", f.path()]);
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

    let f2 = TopoFile::new(&format!("{name}ok"), &topology(&name));
    let o = strato(&["lab", "exec", "--lab", f2.path(), "h9", "--", "true"]);
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
    if !netns::is_root() {
        eprintln!("SKIPPED three_host_lab_up_ping_all_exec_down: needs root (CI runs as root)");
        return;
    }
    let name = lab_name();
    let prefix = format!("{name}-");
    let f = TopoFile::new(&name, &topology(&name));
    let run_dir = Path::new("/run/strato-lab").join(&name);
    let pid;
    {
        let _guard = LabGuard(&f);
        let o = strato(&["lab", "up", f.path()]);
        assert!(o.status.success(), "lab up failed:\n{}", text(&o));
        let mut nss = netns::list_with_prefix(&prefix).unwrap();
        nss.sort();
        assert_eq!(
            nss,
            ["h1", "h2", "h3", "sw"].map(|h| format!("{name}-{h}")),
            "{}",
            text(&o)
        );
        pid = std::fs::read_to_string(run_dir.join("strato.pid"))
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "daemon runs");

        let o = strato(&["lab", "up", f.path()]);
        assert!(!o.status.success(), "second up must refuse:\n{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("already up") && err.contains("strato lab down"),
            "{err}"
        );

        // exec runs in the host's namespace: h3's eth0 is the tap, moved and configured.
        let o = strato(&[
            "lab",
            "exec",
            "--lab",
            f.path(),
            "h3",
            "--",
            "ip",
            "-o",
            "addr",
            "show",
            "dev",
            "eth0",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("10.0.0.3/24"),
            "{}",
            text(&o)
        );
        let o = strato(&[
            "lab",
            "exec",
            "--lab",
            f.path(),
            "h3",
            "--",
            "ip",
            "-d",
            "link",
            "show",
            "dev",
            "eth0",
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("02:00:00:00:00:03") && out.contains("tun type tap"),
            "{}",
            text(&o)
        );
        let o = strato(&[
            "lab",
            "exec",
            "--lab",
            f.path(),
            "h1",
            "--",
            "ip",
            "-o",
            "addr",
            "show",
            "dev",
            "eth0",
        ]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("10.0.0.1/24"),
            "{}",
            text(&o)
        );
        let o = strato(&[
            "lab",
            "exec",
            "--lab",
            f.path(),
            "h2",
            "--",
            "sh",
            "-c",
            "exit 7",
        ]);
        assert_eq!(o.status.code(), Some(7), "{}", text(&o));

        let o = strato(&["lab", "ping-all", f.path()]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("6/6 pairs reachable"),
            "ping-all:\n{}\n--- daemon log ---\n{}",
            text(&o),
            std::fs::read_to_string(run_dir.join("strato.log")).unwrap_or_default()
        );

        let o = strato(&["lab", "down", f.path()]);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains(&format!("removed namespace {name}-sw"))
                && out.contains(&format!("daemon (pid {pid}")),
            "{}",
            text(&o)
        );
    }
    // The guard ran `down` once more: idempotent. Nothing of the lab is left.
    assert!(netns::list_with_prefix(&prefix).unwrap().is_empty());
    assert!(root_links_with_prefix(&prefix).is_empty());
    assert!(!run_dir.exists());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "daemon still runs: {stat}"
    );
    let o = strato(&["lab", "down", f.path()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("nothing to remove"),
        "{}",
        text(&o)
    );
}

fn ping(ns: &str, ip: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", ip])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ctl_json(sock: &str, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["ctl", "--socket", sock, "--json"];
    a.extend_from_slice(args);
    let o = strato(&a);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn xdp_attached(ns: &str, dev: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns, "-d", "link", "show", "dev", dev])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("xdp"))
        .unwrap_or(false)
}

/// The ports issue's acceptance scenario: learning visible in dump-flows, del-port stops only
/// that host, a veth deleted under the daemon takes only its port down, SIGTERM removes every
/// XDP program, and nothing is left behind.
#[test]
fn daemon_learns_survives_port_loss_and_cleans_up() {
    if !netns::is_root() {
        eprintln!(
            "SKIPPED daemon_learns_survives_port_loss_and_cleans_up: needs root (CI runs as root)"
        );
        return;
    }
    let name = lab_name();
    let topo = format!("{}\n[[host]]\nname = \"h4\"\nip = \"10.0.0.4/24\"\nlink = \"afxdp\"\nmac = \"02:00:00:00:00:04\"\n", topology(&name));
    let file = TopoFile::new(&name, &topo);
    let _guard = LabGuard(&file);
    let o = strato(&["lab", "up", file.path()]);
    assert!(o.status.success(), "{}", text(&o));
    let sock = format!("/run/strato-lab/{name}/strato.sock");
    let ns = |h: &str| format!("{name}-{h}");
    let o = strato(&["lab", "ping-all", file.path()]);
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
    let o = strato(&[
        "ctl",
        "--socket",
        &sock,
        "add-port",
        "nosuchif0",
        "--kind",
        "afxdp",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nosuchif0"),
        "{}",
        text(&o)
    );
    let o = strato(&[
        "ctl",
        "--socket",
        &sock,
        "add-port",
        &format!("{name}-h4"),
        "--kind",
        "afxdp",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exists"),
        "{}",
        text(&o)
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
    let o = strato(&["ctl", "--socket", &sock, "del-port", &h1_port]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&h1_port),
        "{}",
        text(&o)
    );

    // h2's veth deleted under the daemon: its port goes down (shown, with a reason), the daemon
    // keeps running and the others keep forwarding.
    netns::ip(&["-n", &ns("h2"), "link", "del", "eth0"]).unwrap();
    let t = std::time::Instant::now();
    loop {
        let show = ctl_json(&sock, &["show"]);
        let p = show["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == format!("{name}-h2"))
            .cloned()
            .unwrap();
        if p["up"] == false {
            assert!(
                p["down_reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{p}"
            );
            break;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "port never went down: {p}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        ping(&ns("h3"), "10.0.0.4") && ping(&ns("h4"), "10.0.0.3"),
        "the other ports stopped forwarding"
    );
    let stats = ctl_json(&sock, &["stats"]);
    assert!(stats["ports"].as_array().unwrap().len() >= 3, "{stats}");

    // SIGTERM: the daemon exits and no XDP program is left on the switch's interfaces.
    let pid: i32 = std::fs::read_to_string(format!("/run/strato-lab/{name}/strato.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let h4_port = format!("{name}-h4");
    assert!(xdp_attached(&ns("sw"), &h4_port));
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let t = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "daemon did not exit on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !xdp_attached(&ns("sw"), &h4_port),
        "XDP program left after SIGTERM"
    );
    assert!(
        !Path::new(&sock).exists(),
        "control socket left after SIGTERM"
    );

    let o = strato(&["lab", "down", file.path()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(netns::list_with_prefix(&format!("{name}-"))
        .unwrap()
        .is_empty());
    assert!(root_links_with_prefix(&format!("{name}-")).is_empty());
}
