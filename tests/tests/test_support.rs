//! The shared test support itself (no root, no peers needed): waits give up on time and
//! return what they saw, the checklist reports every failure, MACs round-trip, lab names fit,
//! temporary directories go, daemon configs parse, ovs-ofctl command lines put the target
//! after the command.

mod support;

use std::time::{Duration, Instant};
use support::checks::Checks;
use support::net::{format_mac, has_xdp_prog, link_mac, parse_mac};
use support::strato::{lab_name, DaemonConfig};
use support::{retry, tail, wait_for, Out, TempDir};

#[test]
fn waits_return_early_or_give_up_on_time() {
    let t = Instant::now();
    assert!(wait_for(
        Duration::from_secs(5),
        Duration::from_millis(1),
        || true
    ));
    assert!(t.elapsed() < Duration::from_secs(1));

    let t = Instant::now();
    assert!(!wait_for(
        Duration::from_millis(50),
        Duration::from_millis(5),
        || false
    ));
    assert!(t.elapsed() >= Duration::from_millis(50));

    let mut n = 0;
    let v = retry(
        Duration::from_secs(5),
        Duration::from_millis(1),
        || {
            n += 1;
            n
        },
        |&v| v == 3,
    );
    assert_eq!(v, 3, "the first value accepted");
    let v = retry(
        Duration::from_millis(20),
        Duration::from_millis(5),
        || 7,
        |_| false,
    );
    assert_eq!(v, 7, "the last value when time ran out");
}

#[test]
fn checklist_reports_every_check() {
    let mut c = Checks::default();
    c.that("a", true, || unreachable!("only called on failure"));
    c.that("b", false, || "why".into());
    c.check("c", Err("x".repeat(4000)));
    assert_eq!(c.failed(), 2);
    let r = c.report("t");
    assert!(
        r.starts_with("==== t: 3 checks, 1 passed, 2 failed\n"),
        "{r}"
    );
    assert!(
        r.contains("PASS a\n") && r.contains("FAIL b\n     why\n"),
        "{r}"
    );
    assert!(r.contains(&format!("{}...(cut)", "x".repeat(3000))), "{r}");
    assert!(!r.contains(&"x".repeat(3001)), "{r}");
}

#[test]
fn macs_lab_names_and_text() {
    let m = parse_mac("02:00:00:5e:be:ef").unwrap();
    assert_eq!(m, [2, 0, 0, 0x5e, 0xbe, 0xef]);
    assert_eq!(format_mac(m), "02:00:00:5e:be:ef");
    assert_eq!(parse_mac("02:00:00:5e:be"), None);
    assert_eq!(parse_mac("02:00:00:5e:be:ef:01"), None);
    assert_eq!(parse_mac("02:00:00:5e:be:zz"), None);
    let out = b"2: eth0@if3: <BROADCAST,UP> mtu 1500\n    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff";
    assert_eq!(link_mac(out), [2, 0, 0, 0, 0, 1]);
    assert!(has_xdp_prog("mtu 1500 xdpgeneric qdisc noqueue"));
    assert!(has_xdp_prog("    prog/xdp id 42 tag 0123456789abcdef"));
    assert!(!has_xdp_prog("mtu 1500 qdisc noqueue state UP"));

    for tag in ['s', 'o', 'r'] {
        let n = lab_name(tag);
        assert!(n.len() <= 6 && n.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(n, lab_name(tag), "a new name every call");
    }
    assert_eq!(tail("a\nb\nc", 2), "b\nc");
    assert_eq!(tail("a", 5), "a");
}

#[test]
fn temp_dirs_go_on_drop() {
    let d = TempDir::new(&format!("support-{}", std::process::id()));
    let p = d.path().to_path_buf();
    std::fs::write(d.join("f"), "x").unwrap();
    assert!(p.join("f").exists());
    drop(d);
    assert!(!p.exists());
}

#[test]
fn daemon_configs_are_valid_toml() {
    let d = TempDir::new(&format!("support-cfg-{}", std::process::id()));
    let cfg = DaemonConfig {
        dir: d.path(),
        log_level: Some("info"),
        api_listen: "127.0.0.1:9696",
        provider_token: "tok",
        more: "[tenant]\nhost = \"hv1\"\nunderlay = \"ul0\"\n\
               [[api.host]]\nname = \"hv1\"\nvtep_ip = \"192.0.2.1\"\n",
    };
    let path = cfg.write();
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let dir = d.path().display();
    assert_eq!(
        t["daemon"]["control_socket"].as_str(),
        Some(format!("{dir}/strato.sock").as_str())
    );
    assert_eq!(cfg.socket(), d.join("strato.sock"));
    assert_eq!(t["daemon"]["log_level"].as_str(), Some("info"));
    assert_eq!(t["bridge"]["fail_mode"].as_str(), Some("secure"));
    assert_eq!(t["api"]["listen"].as_str(), Some("127.0.0.1:9696"));
    assert_eq!(t["api"]["token"][0]["role"].as_str(), Some("provider"));
    assert_eq!(t["api"]["host"][0]["name"].as_str(), Some("hv1"));
    assert_eq!(t["tenant"]["underlay"].as_str(), Some("ul0"));
}

#[test]
fn ofctl_puts_the_target_after_the_command() {
    // Whether or not ovs-ofctl is installed, the command line is the same.
    let o = support::ovs::ofctl(
        None,
        "OpenFlow13",
        "tcp:127.0.0.1:1",
        &["--strict", "del-flows", "priority=1"],
    );
    assert_eq!(
        o.cmd,
        "ovs-ofctl -O OpenFlow13 -t 10 --strict del-flows tcp:127.0.0.1:1 priority=1"
    );
    let o = Out::from("x".into(), Err(std::io::Error::other("no such program")));
    assert!(!o.ok);
    assert_eq!(
        o.show(),
        "$ x\n(exit FAILED)\n--- stderr ---\nno such program"
    );
}
