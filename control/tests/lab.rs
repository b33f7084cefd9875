//! `strato lab` through the real binary: a bad topology is refused with the field named (no root
//! needed), and, as root, a three-host lab (two AF_XDP veth hosts, one tap host) goes up, every
//! pair pings, `exec` runs in the right namespace with the command's status, and `down` leaves no
//! namespace, interface or run directory behind, also when an assertion fails (a Drop guard runs
//! `down`). The lab's name comes from `netns::run_prefix()`, so parallel runs never meet.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use strato_control::netns;

const STRATO: &str = env!("CARGO_BIN_EXE_strato");

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
