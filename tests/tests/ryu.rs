//! strato under a real external OpenFlow 1.3 controller: os-ken (Ryu's maintained fork)
//! running labs/osken/simple_switch_13.py, on the lab of labs/ryu3.toml (three hosts, fail_mode
//! secure, `[bridge] controllers`), built under a per-run name.
//!
//! - `osken_learning_switch_then_secure_without_controller`: (a) os-ken is the only controller:
//!   every pair of hosts pings, every flow in dump-flows (ovs-ofctl -O OpenFlow13 on the lab's
//!   listener) is the app's (cookie 0x5157: table-miss priority 0, learned in_port+eth_dst
//!   flows priority 10, consistent with where each host is), packet_ins carry the right in_port,
//!   and the learned flows' counters move under traffic; (c) os-ken is killed: with fail_mode
//!   secure the installed flows keep forwarding, and nothing is learned (a deleted flow is not
//!   replaced: that pair stops).
//! - `osken_failover_master_killed_slave_promoted`: (b) two os-ken instances, MASTER (6633) and
//!   SLAVE (6634), both in `controllers`: the slave gets no packet_in and installs nothing; the
//!   master is killed, the learned flows are deleted, the slave is promoted (ROLE_REQUEST MASTER
//!   with generation 2, through the app's trigger file) and every pair pings again through flows
//!   the promoted controller installed.
//!
//! Both run under a tshark capture of the switch namespace's loopback (the controller ports and
//! the listener): it must hold OpenFlow 1.3 frames on the controller connections, of the
//! expected message types, and no malformed frame sent by the switch (to a controller, or from
//! its listener); malformed frames sent by the peers are printed (tshark 4.0 flags some
//! ovs-ofctl OpenFlow 1.0 messages even to Open vSwitch; none are expected here).
//!
//! Checks are collected into a checklist printed as PASS/FAIL lines; the test fails at the end if
//! any failed. With `STRATO_TEST_SWITCH=ovs` the same tests run against Open vSwitch's userspace
//! datapath (the same namespaces, ports and controllers; `fail_mode=secure`) instead of strato:
//! that is how the tests themselves are checked to pass on a correct switch. Needs root, the os-ken venv at /var/cache/strato/osken-venv, tshark and ovs-ofctl
//! (scripts/bootstrap.sh installs them; CI runs it, as root); otherwise it skips saying why.
//! The lab, the controllers and the capture are stopped by Drop guards, also on panic; the two
//! tests are serialised.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use strato_labs::lab::Topology;
use strato_labs::netns::{self, Netns};

const STRATO: &str = env!("CARGO_BIN_EXE_strato-e2e");
const VENV: &str = "/var/cache/strato/osken-venv";
const APP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../labs/osken/simple_switch_13.py"
);
const LAB: &str = include_str!("../../labs/ryu3.toml");
/// The app's cookie and learned-flow priority (labs/osken/simple_switch_13.py defaults).
const COOKIE: &str = "cookie=0x5157,";
/// Ports inside the lab's switch namespace (its own loopback, so runs never meet).
const C1_PORT: u16 = 6633;
const C2_PORT: u16 = 6634;
const LISTEN_PORT: u16 = 6653;
/// How long the switch may take to (re)connect to a controller (it backs off).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::new(());

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn skip(name: &str) -> bool {
    if !netns::is_root() {
        eprintln!("SKIPPED {name}: needs root (namespaces, AF_XDP, capture); CI runs as root");
        return true;
    }
    if !Path::new(VENV).join("bin/osken-manager").is_file() {
        eprintln!("SKIPPED {name}: no os-ken venv at {VENV}; run scripts/bootstrap.sh");
        return true;
    }
    for (tool, pkg) in [("ovs-ofctl", "openvswitch-common"), ("tshark", "tshark")] {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !ok {
            eprintln!(
                "SKIPPED {name}: `{tool}` missing; install {pkg} (scripts/bootstrap.sh does)"
            );
            return true;
        }
    }
    false
}

fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A child started through `ip netns exec` (which execs it): SIGTERM, SIGKILL after 3 s.
struct Proc {
    child: Child,
}

impl Proc {
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill(self.child.id(), "-TERM");
            let t = Instant::now();
            while let Ok(None) = self.child.try_wait() {
                if t.elapsed() > Duration::from_secs(3) {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.wait();
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let d = std::env::temp_dir().join(format!("strato-ryu-{}", netns::run_prefix()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- the lab ----

/// The lab of labs/ryu3.toml under a per-run name; `strato lab down` on drop (which also ends
/// any process left in its namespaces). Or, with `STRATO_TEST_SWITCH=ovs`, the same namespaces
/// around Open vSwitch.
struct Lab {
    file: PathBuf,
    topo: Topology,
    ovs: Option<OvsSwitch>,
}

/// Open vSwitch's userspace datapath in the lab's namespaces: daemons stopped, then the
/// namespaces deleted, on drop.
struct OvsSwitch {
    dir: PathBuf,
    _hosts: Vec<Netns>,
    _sw: Netns,
}

impl Drop for OvsSwitch {
    fn drop(&mut self) {
        for f in ["vswitchd.pid", "ovsdb.pid"] {
            if let Ok(p) = std::fs::read_to_string(self.dir.join(f)) {
                if let Ok(p) = p.trim().parse::<u32>() {
                    kill(p, "-TERM");
                    let gone = wait_for(Duration::from_secs(3), || {
                        std::fs::read_to_string(format!("/proc/{p}/stat"))
                            .map_or(true, |s| s.contains(") Z"))
                    });
                    if !gone {
                        kill(p, "-KILL");
                    }
                }
            }
        }
    }
}

fn ovs_switch(topo: &Topology, dir: &Path, controllers: &[u16]) -> OvsSwitch {
    let dir = dir.join("ovs");
    std::fs::create_dir_all(&dir).unwrap();
    let sw = Netns::new(&topo.switch_ns()).expect("switch namespace");
    let mut hosts = Vec::new();
    for h in &topo.hosts {
        let ns = Netns::new(&topo.host_ns(&h.name)).expect("host namespace");
        netns::veth_pair("eth0", Some(&ns), &topo.host_ns(&h.name), Some(&sw)).expect("veth");
        ns.ip(&["link", "set", "dev", "eth0", "down"]).unwrap();
        if let Some(m) = h.mac {
            let mac = format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            );
            ns.ip(&["link", "set", "dev", "eth0", "address", &mac])
                .unwrap();
        }
        ns.ip(&["addr", "add", &h.cidr(), "dev", "eth0"]).unwrap();
        ns.ip(&["link", "set", "dev", "eth0", "up"]).unwrap();
        hosts.push(ns);
    }
    let d = dir.display().to_string();
    let ovs = OvsSwitch {
        dir,
        _hosts: hosts,
        _sw: sw,
    };
    let in_sw = |args: &[&str]| {
        let o = Command::new("ip")
            .args(["netns", "exec", &topo.switch_ns(), "env"])
            .args([
                format!("OVS_RUNDIR={d}"),
                format!("OVS_LOGDIR={d}"),
                format!("OVS_DBDIR={d}"),
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}:\n{}", text(&o));
    };
    let o = Command::new("ovsdb-tool")
        .args([
            "create",
            &format!("{d}/conf.db"),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let db = format!("unix:{d}/db.sock");
    in_sw(&[
        "ovsdb-server",
        &format!("{d}/conf.db"),
        &format!("--remote=p{db}"),
        &format!("--pidfile={d}/ovsdb.pid"),
        "--detach",
        &format!("--log-file={d}/ovsdb.log"),
    ]);
    in_sw(&["ovs-vsctl", &format!("--db={db}"), "--no-wait", "init"]);
    in_sw(&[
        "ovs-vswitchd",
        &db,
        &format!("--pidfile={d}/vswitchd.pid"),
        "--detach",
        &format!("--log-file={d}/vswitchd.log"),
    ]);
    let mut args: Vec<String> = [
        "ovs-vsctl",
        "add-br",
        "br0",
        "--",
        "set",
        "bridge",
        "br0",
        "datapath_type=netdev",
        "protocols=OpenFlow13",
        "fail_mode=secure",
    ]
    .map(String::from)
    .to_vec();
    args.insert(1, format!("--db={db}"));
    for (i, h) in topo.hosts.iter().enumerate() {
        let p = topo.host_ns(&h.name);
        args.extend(["--", "add-port", "br0", &p, "--", "set", "interface", &p].map(String::from));
        args.push(format!("ofport_request={}", i + 1));
    }
    args.extend(["--", "set-controller", "br0"].map(String::from));
    args.extend(controllers.iter().map(|p| format!("tcp:127.0.0.1:{p}")));
    args.push(format!("ptcp:{LISTEN_PORT}:127.0.0.1"));
    in_sw(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ovs
}

impl Lab {
    /// Brings labs/ryu3.toml up as a lab of its own name, with these controller ports.
    fn up(dir: &Path, controllers: &[u16]) -> Lab {
        let p = netns::run_prefix();
        let name = if p.len() <= 6 {
            p
        } else {
            format!("r{}", &p[p.len() - 5..])
        };
        let mut t: toml::Table = toml::from_str(LAB).expect("labs/ryu3.toml is TOML");
        t.insert("name".into(), name.clone().into());
        let bridge = t
            .get_mut("bridge")
            .and_then(|b| b.as_table_mut())
            .expect("labs/ryu3.toml has [bridge]");
        assert_eq!(bridge["fail_mode"].as_str(), Some("secure"));
        let ctl: Vec<toml::Value> = controllers
            .iter()
            .map(|p| format!("tcp:127.0.0.1:{p}").into())
            .collect();
        bridge.insert("controllers".into(), ctl.into());
        let listen = t["switch"]["openflow_listen"].as_array().expect("listener");
        assert_eq!(
            listen[0].as_str(),
            Some(format!("ptcp:{LISTEN_PORT}:127.0.0.1").as_str())
        );
        let lab_text = toml::to_string(&t).unwrap();
        let topo = Topology::parse(&lab_text).expect("the lab validates");
        let file = dir.join("lab.toml");
        std::fs::write(&file, &lab_text).unwrap();
        if std::env::var("STRATO_TEST_SWITCH").as_deref() == Ok("ovs") {
            println!("STRATO_TEST_SWITCH=ovs: running against Open vSwitch, not strato");
            let ovs = Some(ovs_switch(&topo, dir, controllers));
            let lab = Lab { file, topo, ovs };
            assert!(
                wait_for(Duration::from_secs(20), || lab.ofctl(&["show"]).0),
                "Open vSwitch's listener did not come up"
            );
            return lab;
        }
        let lab = Lab {
            file,
            topo,
            ovs: None,
        };
        let o = Command::new(STRATO)
            .args(["lab", "up"])
            .arg(&lab.file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "strato lab up ({}) failed:\n{}\n--- lab file ---\n{lab_text}",
            lab.file.display(),
            text(&o)
        );
        lab
    }

    /// "strato", or "Open vSwitch" under `STRATO_TEST_SWITCH=ovs`.
    fn label(&self) -> &'static str {
        if self.ovs.is_some() {
            "Open vSwitch"
        } else {
            "strato"
        }
    }

    fn sw(&self) -> String {
        self.topo.switch_ns()
    }

    fn host_ns(&self, i: usize) -> String {
        self.topo.host_ns(&self.topo.hosts[i].name)
    }

    fn mac(&self, i: usize) -> String {
        let m = self.topo.hosts[i].mac.expect("labs/ryu3.toml gives MACs");
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }

    fn log(&self) -> String {
        match &self.ovs {
            Some(o) => std::fs::read_to_string(o.dir.join("vswitchd.log")).unwrap_or_default(),
            None => {
                std::fs::read_to_string(self.topo.run_dir().join("strato.log")).unwrap_or_default()
            }
        }
    }

    /// One ping from host `a` to host `b` (a second try after a lost first one: the first packet
    /// of a pair waits for the controller).
    fn ping(&self, a: usize, b: usize) -> bool {
        let ip = self.topo.hosts[b].ip.to_string();
        (0..2).any(|_| {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.host_ns(a),
                    "ping",
                    "-c",
                    "1",
                    "-W",
                    "2",
                    &ip,
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        })
    }

    /// Every ordered pair; the ones that failed.
    fn ping_all(&self) -> Vec<String> {
        let n = self.topo.hosts.len();
        let mut bad = Vec::new();
        for a in 0..n {
            for b in 0..n {
                if a != b && !self.ping(a, b) {
                    bad.push(format!(
                        "{}->{}",
                        self.topo.hosts[a].name, self.topo.hosts[b].name
                    ));
                }
            }
        }
        bad
    }

    /// `ovs-ofctl -O OpenFlow13 ARGS` against the lab's listener, in the switch namespace.
    fn ofctl(&self, args: &[&str]) -> (bool, String) {
        let target = format!("tcp:127.0.0.1:{LISTEN_PORT}");
        let cmd_at = args.iter().position(|a| !a.starts_with("--")).unwrap();
        let mut full: Vec<&str> = vec!["-O", "OpenFlow13", "-t", "10"];
        full.extend_from_slice(&args[..=cmd_at]);
        full.push(&target);
        full.extend_from_slice(&args[cmd_at + 1..]);
        match Command::new("ip")
            .args(["netns", "exec", &self.sw(), "ovs-ofctl"])
            .args(&full)
            .output()
        {
            Ok(o) => (
                o.status.success() && o.stderr.is_empty(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
            ),
            Err(e) => (false, e.to_string()),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.ovs.is_some() {
            return;
        }
        match Command::new(STRATO)
            .args(["lab", "down"])
            .arg(&self.file)
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("lab guard: `strato lab down` failed:\n{}", text(&o)),
            Err(e) => eprintln!("lab guard: cannot run strato: {e}"),
        }
    }
}

// ---- os-ken ----

/// An os-ken instance running the app in the lab's switch namespace.
struct OsKen {
    proc: Proc,
    log: PathBuf,
}

impl OsKen {
    fn start(lab: &Lab, dir: &Path, name: &str, port: u16, env: &[(&str, String)]) -> OsKen {
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &lab.sw()])
            .arg(Path::new(VENV).join("bin/osken-manager"))
            .args(["--ofp-tcp-listen-port", &port.to_string(), APP])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().expect("start osken-manager");
        let k = OsKen {
            proc: Proc { child },
            log,
        };
        assert!(
            k.wait("SS13 start", Duration::from_secs(30)),
            "os-ken did not start:\n{}",
            k.text()
        );
        k
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The app's event lines (see the app's docs).
    fn events(&self, kind: &str) -> Vec<String> {
        let p = format!("SS13 {kind} ");
        self.text()
            .lines()
            .filter(|l| l.starts_with(&p))
            .map(str::to_string)
            .collect()
    }

    /// Waits until a line of the log contains every space-separated word of `words`.
    fn wait(&self, words: &str, timeout: Duration) -> bool {
        let w: Vec<&str> = words.split(' ').collect();
        wait_for(timeout, || {
            self.text()
                .lines()
                .any(|l| w.iter().all(|x| l.split(' ').any(|y| y == *x)))
        })
    }
}

// ---- capture ----

struct Capture {
    proc: Proc,
    file: PathBuf,
    ports: Vec<u16>,
}

impl Capture {
    fn start(ns: &str, ports: &[u16], dir: &Path) -> Capture {
        let file = dir.join("of.pcap");
        let log = dir.join("tshark.log");
        let filter = ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let child = Command::new("ip")
            .args([
                "netns", "exec", ns, "tshark", "-q", "-i", "lo", "-f", &filter, "-w",
            ])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start tshark");
        let c = Capture {
            proc: Proc { child },
            file,
            ports: ports.to_vec(),
        };
        assert!(
            wait_for(Duration::from_secs(20), || std::fs::read_to_string(&log)
                .is_ok_and(|s| s.contains("Capturing on"))),
            "tshark did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        c
    }

    /// Lines of `tshark -r` with a display filter (and fields, if any).
    fn read(&self, filter: &str, fields: &[&str]) -> Vec<String> {
        let mut c = Command::new("tshark");
        c.arg("-r").arg(&self.file);
        for p in &self.ports {
            c.args(["-d", &format!("tcp.port=={p},openflow")]);
        }
        c.args(["-Y", filter]);
        if !fields.is_empty() {
            c.args(["-T", "fields"]);
            for f in fields {
                c.args(["-e", f]);
            }
        }
        let o = c.output().expect("tshark -r");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    fn stop(&mut self) {
        std::thread::sleep(Duration::from_millis(500));
        self.proc.stop();
    }

    /// OpenFlow 1.3 message types seen on a TCP port: type -> frames.
    fn types_on(&self, port: u16) -> BTreeMap<u8, usize> {
        let mut m = BTreeMap::new();
        for l in self.read(
            &format!("tcp.port == {port} && openflow_v4"),
            &["openflow_v4.type"],
        ) {
            for t in l.split(',') {
                if let Ok(t) = t.trim().parse::<u8>() {
                    *m.entry(t).or_insert(0) += 1;
                }
            }
        }
        m
    }

    /// Checks the capture: OpenFlow 1.3 frames of each `want` type on each controller port,
    /// and nothing malformed from the switch (to the controller ports, from the listener port).
    fn check(&mut self, c: &mut Checks, want: &[(u16, &[(u8, &str)])]) {
        self.stop();
        for (port, types) in want {
            let seen = self.types_on(*port);
            let frames: usize = seen.values().sum();
            c.that(
                format!("tshark: OpenFlow 1.3 frames on the controller connection :{port}"),
                frames > 0,
                || format!("none; types seen {seen:?}"),
            );
            for (t, name) in *types {
                c.that(
                    format!("tshark: {name} (type {t}) on :{port}"),
                    seen.get(t).is_some_and(|&n| n > 0),
                    || format!("types seen (type: frames) {seen:?}"),
                );
            }
        }
        let mut from_switch = vec![format!("tcp.srcport == {LISTEN_PORT}")];
        from_switch.extend(want.iter().map(|(p, _)| format!("tcp.dstport == {p}")));
        let from_switch = format!("({})", from_switch.join(" || "));
        let bad = self.read(&format!("{from_switch} && _ws.malformed"), &[]);
        c.that(
            "tshark: no malformed OpenFlow frame from the switch",
            bad.is_empty(),
            || bad.join("\n"),
        );
        let peer = self.read(&format!("!{from_switch} && _ws.malformed"), &[]);
        for l in &peer {
            println!("malformed frame from a peer (not the switch): {l}");
        }
        let all = self.read("openflow_v4", &["frame.number"]).len();
        println!(
            "capture: {all} OpenFlow 1.3 frames, {} malformed from the switch, {} from peers",
            bad.len(),
            peer.len()
        );
    }
}

// ---- checklist ----

#[derive(Default)]
struct Checks {
    results: Vec<(String, Result<(), String>)>,
}

impl Checks {
    fn that(&mut self, name: impl Into<String>, ok: bool, why: impl FnOnce() -> String) {
        self.results
            .push((name.into(), if ok { Ok(()) } else { Err(why()) }));
    }

    fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.1.is_err()).count()
    }

    fn report(&self, title: &str) -> String {
        let mut s = format!(
            "==== {title}: {} checks, {} passed, {} failed\n",
            self.results.len(),
            self.results.len() - self.failed(),
            self.failed()
        );
        for (n, r) in &self.results {
            match r {
                Ok(()) => s.push_str(&format!("PASS {n}\n")),
                Err(e) => {
                    let e: String = e.chars().take(3000).collect();
                    s.push_str(&format!("FAIL {n}\n     {}\n", e.replace('\n', "\n     ")));
                }
            }
        }
        s
    }

    /// Prints the checklist (and, on failure, the logs) and fails the test if any check failed.
    fn finish(&self, title: &str, lab: &Lab, controllers: &[&OsKen]) {
        let r = self.report(title);
        println!("{r}");
        if self.failed() > 0 {
            for k in controllers {
                println!("---- {} ----\n{}", k.log.display(), k.text());
            }
            let log = lab.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            println!(
                "---- switch log (last 60 lines) ----\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            panic!("\n{r}");
        }
    }
}

// ---- reading dump-flows ----

fn flow_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.trim_start().starts_with("cookie="))
        .collect()
}

fn num_after(line: &str, key: &str) -> Option<u64> {
    let i = line.find(key)? + key.len();
    let d: String = line[i..].chars().take_while(char::is_ascii_digit).collect();
    d.parse().ok()
}

/// The learned flows: (in_port, eth_dst, output port, n_packets) of the app's priority-10 flows.
fn learned(out: &str) -> Vec<(u32, String, u32, u64)> {
    flow_lines(out)
        .into_iter()
        .filter(|l| l.contains(COOKIE) && l.contains("priority=10,"))
        .filter_map(|l| {
            let in_port = num_after(l, "in_port=")? as u32;
            let i = l.find("dl_dst=")? + 7;
            let mac = l.get(i..i + 17)?.to_string();
            let out_port = num_after(l, "actions=output:")? as u32;
            Some((in_port, mac, out_port, num_after(l, "n_packets=")?))
        })
        .collect()
}

/// Checks that the flow table holds only the app's flows, at least `min` learned ones, each
/// sending a host's MAC to that host's port (host i is on port i + 1).
fn check_flows(c: &mut Checks, lab: &Lab, what: &str, min: usize) -> String {
    let (ok, out) = lab.ofctl(&["dump-flows"]);
    c.that(
        format!("{what}: ovs-ofctl -O OpenFlow13 dump-flows works"),
        ok && out.contains("OFPST_FLOW reply (OF1.3)"),
        || out.clone(),
    );
    let flows = flow_lines(&out);
    c.that(
        format!("{what}: every flow is the controller's (cookie 0x5157): secure mode learns nothing itself"),
        !flows.is_empty() && flows.iter().all(|l| l.contains(COOKIE)),
        || out.clone(),
    );
    c.that(
        format!("{what}: the app's table-miss flow (priority 0 -> CONTROLLER)"),
        flows
            .iter()
            .any(|l| l.contains(COOKIE) && l.contains("priority=0 actions=CONTROLLER:65535")),
        || out.clone(),
    );
    let l = learned(&out);
    let right = |&(in_port, ref mac, out_port, _): &(u32, String, u32, u64)| {
        (0..lab.topo.hosts.len())
            .any(|h| lab.mac(h) == *mac && out_port == h as u32 + 1 && in_port != out_port)
    };
    c.that(
        format!("{what}: >= {min} learned flows (priority 10, in_port+dl_dst -> output), each to its host's port"),
        l.len() >= min && l.iter().all(right),
        || format!("{l:?}\n{out}"),
    );
    out
}

/// The app's packet_in lines must name the port each source host is really on.
fn check_packet_ins(c: &mut Checks, lab: &Lab, k: &OsKen, what: &str) {
    let pis = k.events("packet_in");
    let wrong: Vec<&String> = pis
        .iter()
        .filter(|l| {
            (0..lab.topo.hosts.len()).any(|h| {
                l.contains(&format!("src={}", lab.mac(h)))
                    && !l.contains(&format!("in_port={} ", h + 1))
            })
        })
        .collect();
    c.that(
        format!("{what}: packet_ins reached the controller with buffer_id NO_BUFFER and the right OXM in_port"),
        !pis.is_empty()
            && wrong.is_empty()
            && pis.iter().all(|l| l.contains("buffer_id=0xffffffff")),
        || format!("{} packet_ins, wrong in_port: {wrong:?}", pis.len()),
    );
}

fn no_errors(c: &mut Checks, k: &OsKen, what: &str) {
    let e = k.events("error");
    c.that(
        format!("{what}: the switch sent the controller no OFPT_ERROR"),
        e.is_empty(),
        || e.join("\n"),
    );
}

// ---- the tests ----

/// (a) os-ken as the only controller; then (c) no controller, fail_mode secure.
#[test]
fn osken_learning_switch_then_secure_without_controller() {
    let name = "osken_learning_switch_then_secure_without_controller";
    if skip(name) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new();
    let lab = Lab::up(&dir.0, &[C1_PORT]);
    let mut cap = Capture::start(&lab.sw(), &[C1_PORT, LISTEN_PORT], &dir.0);
    let mut c1 = OsKen::start(&lab, &dir.0, "c1", C1_PORT, &[]);
    let mut c = Checks::default();

    // (a)
    let connected = c1.wait("SS13 switch_features", CONNECT_TIMEOUT);
    c.that(
        "(a) the switch connects to the controller (tcp:127.0.0.1:6633)",
        connected,
        || c1.text(),
    );
    let feats = c1.events("switch_features");
    c.that(
        "(a) FEATURES_REPLY reports n_buffers=0",
        feats.iter().any(|l| l.contains("n_buffers=0 ")),
        || feats.join("\n"),
    );
    c.that(
        "(a) the app installed its table-miss flow",
        c1.wait("SS13 table_miss", Duration::from_secs(10)),
        || c1.text(),
    );
    let bad = lab.ping_all();
    c.that("(a) every pair pings (6/6)", bad.is_empty(), || {
        format!("failed: {bad:?}")
    });
    c.that(
        "(a) the controller made the forwarding decisions (>= 6 flow_adds in its log)",
        c1.events("flow_add").len() >= 6,
        || c1.text(),
    );
    check_packet_ins(&mut c, &lab, &c1, "(a)");
    let out = check_flows(&mut c, &lab, "(a)", 6);

    // Counters move under traffic: h1 -> h2, three pings.
    let key = |o: &str| {
        learned(o)
            .into_iter()
            .find(|(i, m, _, _)| *i == 1 && *m == lab.mac(1))
            .map(|f| f.3)
    };
    let before = key(&out);
    let ip2 = lab.topo.hosts[1].ip.to_string();
    let p = Command::new("ip")
        .args(["netns", "exec", &lab.host_ns(0)])
        .args(["ping", "-c", "3", "-i", "0.2", "-W", "1", &ip2])
        .output()
        .unwrap();
    let mut last = String::new();
    let moved = before.is_some()
        && wait_for(Duration::from_secs(5), || {
            last = lab.ofctl(&["dump-flows"]).1;
            key(&last).is_some_and(|n| n >= before.unwrap_or(0) + 3)
        });
    c.that(
        "(a) dump-flows: the learned flow's n_packets moves under traffic (+3 after ping -c 3)",
        p.status.success() && moved,
        || format!("before {before:?}\n{}\n{last}", text(&p)),
    );
    no_errors(&mut c, &c1, "(a)");

    // (c) the controller goes away; fail_mode secure keeps the installed flows forwarding.
    c1.proc.stop();
    c.that(
        "(c) the controller is gone",
        !c1.proc.running(),
        String::new,
    );
    std::thread::sleep(Duration::from_secs(1));
    let bad = lab.ping_all();
    c.that(
        "(c) no controller, fail_mode secure: installed flows keep forwarding (6/6)",
        bad.is_empty(),
        || format!("failed: {bad:?}"),
    );
    check_flows(&mut c, &lab, "(c)", 6);
    // ... and nothing is learned: without h1 -> h2's flow, h1 no longer reaches h2.
    let del = format!("priority=10,in_port=1,dl_dst={}", lab.mac(1));
    let (ok, o) = lab.ofctl(&["--strict", "del-flows", &del]);
    c.that("(c) --strict del-flows of one learned flow", ok, || {
        o.clone()
    });
    c.that(
        "(c) secure without a controller does not fall back to learning: h1 -> h2 stops",
        !lab.ping(0, 1) && lab.ping(0, 2),
        || lab.ofctl(&["dump-flows"]).1,
    );

    cap.check(
        &mut c,
        &[(
            C1_PORT,
            &[
                (6, "FEATURES_REPLY"),
                (10, "PACKET_IN"),
                (13, "PACKET_OUT"),
                (14, "FLOW_MOD"),
            ][..],
        )],
    );
    let title = format!("{} under os-ken simple_switch_13 (a, c)", lab.label());
    c.finish(&title, &lab, &[&c1]);
}

/// (b) MASTER and SLAVE; the master dies, the slave is promoted, new flows work.
#[test]
fn osken_failover_master_killed_slave_promoted() {
    let name = "osken_failover_master_killed_slave_promoted";
    if skip(name) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new();
    let lab = Lab::up(&dir.0, &[C1_PORT, C2_PORT]);
    let mut cap = Capture::start(&lab.sw(), &[C1_PORT, C2_PORT, LISTEN_PORT], &dir.0);
    let promote = dir.0.join("promote");
    let mut c1 = OsKen::start(
        &lab,
        &dir.0,
        "c1",
        C1_PORT,
        &[
            ("SS13_ROLE", "master".into()),
            ("SS13_GENERATION", "1".into()),
        ],
    );
    let c2 = OsKen::start(
        &lab,
        &dir.0,
        "c2",
        C2_PORT,
        &[
            ("SS13_ROLE", "slave".into()),
            ("SS13_GENERATION", "1".into()),
            ("SS13_PROMOTE_FILE", promote.display().to_string()),
        ],
    );
    let mut c = Checks::default();
    c.that(
        "(b) the switch connects to both controllers; ROLE_REPLY MASTER to the first",
        c1.wait("SS13 role_reply role=MASTER generation=1", CONNECT_TIMEOUT),
        || c1.text(),
    );
    c.that(
        "(b) ... and ROLE_REPLY SLAVE to the second",
        c2.wait("SS13 role_reply role=SLAVE generation=1", CONNECT_TIMEOUT),
        || c2.text(),
    );
    c.that(
        "(b) the master installed its table-miss flow",
        c1.wait("SS13 table_miss", Duration::from_secs(10)),
        || c1.text(),
    );
    c.that(
        "(b) h1 <-> h2 through the master",
        lab.ping(0, 1) && lab.ping(1, 0),
        || lab.ofctl(&["dump-flows"]).1,
    );
    c.that(
        "(b) the master installed their flows",
        c1.events("flow_add").len() >= 2,
        || c1.text(),
    );
    c.that(
        "(b) the slave was sent no packet_in (OF1.3 default async config for slaves)",
        c2.events("packet_in").is_empty(),
        || c2.text(),
    );
    no_errors(&mut c, &c1, "(b) master");

    // The master dies; its learned flows go; the slave is promoted.
    c1.proc.stop();
    c.that("(b) the master is gone", !c1.proc.running(), String::new);
    let (ok, o) = lab.ofctl(&["del-flows", "cookie=0x5157/-1"]);
    let left = flow_lines(&lab.ofctl(&["dump-flows"]).1).len();
    c.that(
        "(b) del-flows cookie=0x5157/-1 removes the master's flows",
        ok && left == 0,
        || format!("{o}\n{left} flows left"),
    );
    std::fs::write(&promote, "2\n").unwrap();
    c.that(
        "(b) the slave is promoted: ROLE_REPLY MASTER generation 2",
        c2.wait(
            "SS13 role_reply role=MASTER generation=2",
            Duration::from_secs(10),
        ),
        || c2.text(),
    );
    c.that(
        "(b) the promoted controller installs its table-miss flow",
        c2.wait("SS13 table_miss", Duration::from_secs(10)),
        || c2.text(),
    );
    let bad = lab.ping_all();
    c.that(
        "(b) after failover every pair pings (6/6), also pairs that never talked",
        bad.is_empty(),
        || format!("failed: {bad:?}"),
    );
    c.that(
        "(b) the promoted controller made those decisions (>= 6 flow_adds)",
        c2.events("flow_add").len() >= 6,
        || c2.text(),
    );
    check_packet_ins(&mut c, &lab, &c2, "(b) promoted");
    check_flows(&mut c, &lab, "(b) after failover", 6);
    no_errors(&mut c, &c2, "(b) promoted");

    cap.check(
        &mut c,
        &[
            (
                C1_PORT,
                &[(24, "ROLE_REQUEST"), (25, "ROLE_REPLY"), (14, "FLOW_MOD")][..],
            ),
            (
                C2_PORT,
                &[
                    (24, "ROLE_REQUEST"),
                    (25, "ROLE_REPLY"),
                    (10, "PACKET_IN"),
                    (13, "PACKET_OUT"),
                    (14, "FLOW_MOD"),
                ][..],
            ),
        ],
    );
    let title = format!("{} failover under two os-ken controllers (b)", lab.label());
    c.finish(&title, &lab, &[&c1, &c2]);
}
