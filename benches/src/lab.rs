//! `strato bench lab`: the side-by-side benchmark on real wires.
//!
//! One topology, built fresh for each candidate: a sender namespace and a receiver namespace,
//! each with a veth to a switch namespace. The same generator (`strato gen`, AF_XDP, 64-byte
//! UDP) sends from the sender; the same sink (`strato gen --sink`) counts at the receiver. The
//! switch in the middle is, in turn:
//! - `strato`: `strato run` with both switch-side veths as AF_XDP ports (MAC-learning mode);
//! - `bridge`: the Linux bridge;
//! - `ovs`: Open vSwitch's userspace datapath (`ovs-vswitchd`, `datapath_type=netdev`, `afxdp`
//!   ports), run inside the switch namespace with its own database and run directory;
//! - `raw`: a raw AF_XDP rx -> tx forward with no lookup at all: the limit of these wires.
//!
//! It reports received Mpps for each and the ratios strato/bridge, strato/ovs, strato/raw, all
//! measured in one run. Everything is built under a per-run prefix and torn down afterwards,
//! also on failure. Open vSwitch is installed from Debian when missing (`--no-ovs` skips it).

use serde::Serialize;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_datapath::buf::BufPool;
use strato_datapath::port::afxdp::{AfXdpConfig, AfXdpError, AfXdpPort};
use strato_datapath::port::BURST;
use strato_labs::netns::{self, run_prefix, Netns, NetnsError};

/// `strato bench lab` options.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchLabArgs {
    /// Seconds each candidate is measured.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Frame size in bytes (without FCS).
    #[arg(long, default_value_t = 64)]
    pub size: u16,
    /// Skip Open vSwitch (no install, reported as 0).
    #[arg(long)]
    pub no_ovs: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The result.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BenchLabResult {
    /// Mpps received through each candidate.
    pub mpps: Mpps,
    /// Ratios.
    pub ratios: Ratios,
    /// Frame size used.
    pub size: u16,
    /// Seconds per candidate.
    pub seconds: f64,
}

/// Mpps per candidate.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Mpps {
    /// strato over AF_XDP.
    pub strato: f64,
    /// The Linux bridge.
    pub bridge: f64,
    /// Open vSwitch userspace datapath.
    pub ovs: f64,
    /// Raw AF_XDP forward.
    pub raw: f64,
}

/// Ratios of strato to the others.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Ratios {
    /// strato / bridge.
    pub strato_over_bridge: f64,
    /// strato / ovs.
    pub strato_over_ovs: f64,
    /// strato / raw.
    pub strato_over_raw: f64,
}

/// Why the side-by-side benchmark failed. Each variant's doc comment is its message.
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum BenchLabError {
    /// Building the topology (namespaces, veths, links) failed.
    #[displaydoc("{0}")]
    Netns(#[from] NetnsError),
    /// strato bench lab needs root (namespaces, AF_XDP)
    NotRoot,
    /// cannot find the strato binary: {0}
    Exe(#[source] std::io::Error),
    /// cannot start {what}: {source}
    Start {
        /// The process (`the sink`, `strato` ...).
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// sink lost
    SinkLost,
    /// sink: {0}
    Sink(#[source] std::io::Error),
    /// the sink printed no result: {0}
    NoResult(String),
    /// strato did not come up in 10 s
    NotUp,
    /// {path}: {source}
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// {program}: {source}
    Run {
        /// The program.
        program: &'static str,
        /// Why it could not run.
        source: std::io::Error,
    },
    /// {program} failed (log in {dir})
    Failed {
        /// The program.
        program: &'static str,
        /// Where its log is.
        dir: String,
    },
    /// ovs-vsctl {args}: {stderr}
    Vsctl {
        /// Its arguments.
        args: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// Why `strato bench raw-forward` failed. Each variant's doc comment is its message.
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum RawForwardError {
    /// {iface}: {source}
    Open {
        /// The interface.
        iface: String,
        /// Why.
        source: AfXdpError,
    },
    /// cannot handle signals: {0}
    Signals(#[source] std::io::Error),
}

/// The wires: sender, receiver and switch namespaces with two veths.
struct Wires {
    prefix: String,
    snd: Netns,
    rcv: Netns,
    sw: Netns,
    rcv_mac: String,
}

impl Wires {
    fn build() -> Result<Wires, BenchLabError> {
        let prefix = run_prefix();
        let snd = Netns::new(&format!("{prefix}-snd"))?;
        let rcv = Netns::new(&format!("{prefix}-rcv"))?;
        let sw = Netns::new(&format!("{prefix}-sw"))?;
        netns::veth_pair("eth0", Some(&snd), &format!("{prefix}a"), Some(&sw))?;
        netns::veth_pair("eth0", Some(&rcv), &format!("{prefix}b"), Some(&sw))?;
        snd.ip(&["addr", "add", "10.99.0.1/24", "dev", "eth0"])?;
        rcv.ip(&["addr", "add", "10.99.0.2/24", "dev", "eth0"])?;
        let out = rcv.exec("cat", &["/sys/class/net/eth0/address"])?;
        let rcv_mac = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(Wires {
            prefix,
            snd,
            rcv,
            sw,
            rcv_mac,
        })
    }

    fn a(&self) -> String {
        format!("{}a", self.prefix)
    }
    fn b(&self) -> String {
        format!("{}b", self.prefix)
    }
}

/// A child process killed (SIGTERM, then SIGKILL) on drop.
struct Proc(Option<Child>);

impl Proc {
    fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            // SAFETY: kill(2) on a pid we spawned and have not reaped; no memory is touched.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn strato_exe() -> Result<String, BenchLabError> {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .map_err(BenchLabError::Exe)
}

/// Sends for `seconds` and returns the Mpps the sink counted.
fn measure(w: &Wires, seconds: f64, size: u16) -> Result<f64, BenchLabError> {
    let exe = strato_exe()?;
    let sink_secs = format!("{}", seconds + 2.0);
    let sink = w
        .rcv
        .command(&exe)
        .args([
            "gen",
            "--sink",
            "--iface",
            "eth0",
            "--duration",
            &sink_secs,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| BenchLabError::Start {
            what: "the sink",
            source,
        })?;
    let mut sink = Proc(Some(sink));
    std::thread::sleep(Duration::from_millis(700));
    let size_s = size.to_string();
    let dur = format!("{seconds}");
    let mut gen = Proc(Some(
        w.snd
            .command(&exe)
            .args([
                "gen",
                "--iface",
                "eth0",
                "--size",
                &size_s,
                "--duration",
                &dur,
                "--dst-mac",
                &w.rcv_mac,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BenchLabError::Start {
                what: "the generator",
                source,
            })?,
    ));
    let Some(child) = sink.0.take() else {
        return Err(BenchLabError::SinkLost);
    };
    let out = child.wait_with_output().map_err(BenchLabError::Sink)?;
    gen.stop();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| BenchLabError::NoResult(String::from_utf8_lossy(&out.stdout).into_owned()))?;
    let packets = v["packets"].as_f64().unwrap_or(0.0);
    // The sink ran longer than the sender: rate over the sending time.
    Ok(packets / seconds / 1e6)
}

fn run_strato(w: &Wires, seconds: f64, size: u16) -> Result<f64, BenchLabError> {
    let dir = std::env::temp_dir().join(format!("{}-strato", w.prefix));
    std::fs::create_dir_all(&dir).map_err(|source| BenchLabError::Io {
        path: dir.clone(),
        source,
    })?;
    let sock = dir.join("strato.sock");
    let cfg = format!(
        "[daemon]\ncontrol_socket = \"{}\"\nstate_dir = \"{}\"\nlog_level = \"warn\"\nbusy_poll = true\n\n[[port]]\nname = \"{}\"\nkind = \"afxdp\"\n\n[[port]]\nname = \"{}\"\nkind = \"afxdp\"\n",
        sock.display(),
        dir.display(),
        w.a(),
        w.b()
    );
    let path = dir.join("strato.toml");
    std::fs::write(&path, cfg).map_err(|source| BenchLabError::Io {
        path: path.clone(),
        source,
    })?;
    let exe = strato_exe()?;
    let mut d = Proc(Some(
        w.sw.command(&exe)
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BenchLabError::Start {
                what: "strato",
                source,
            })?,
    ));
    let t = Instant::now();
    while strato_ctl::call(&sock, &strato_ctl::Request::Show).is_err() {
        if t.elapsed() > Duration::from_secs(10) {
            return Err(BenchLabError::NotUp);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = measure(w, seconds, size);
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn run_bridge(w: &Wires, seconds: f64, size: u16) -> Result<f64, BenchLabError> {
    w.sw.ip(&["link", "add", "br0", "type", "bridge"])?;
    w.sw.ip(&["link", "set", &w.a(), "master", "br0"])?;
    w.sw.ip(&["link", "set", &w.b(), "master", "br0"])?;
    w.sw.ip(&["link", "set", "br0", "up"])?;
    let r = measure(w, seconds, size);
    let _ = w.sw.ip(&["link", "del", "br0"]);
    r
}

/// Open vSwitch inside the switch namespace, with its own database and run directory.
fn run_ovs(w: &Wires, seconds: f64, size: u16) -> Result<f64, BenchLabError> {
    if Command::new("ovs-vswitchd")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("bench: installing Debian's openvswitch-switch (for the OVS comparison)");
        netns::run(
            "apt-get",
            &[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "openvswitch-switch",
            ],
        )?;
    }
    let dir = std::env::temp_dir().join(format!("{}-ovs", w.prefix));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|source| BenchLabError::Io {
        path: dir.clone(),
        source,
    })?;
    let d = dir.display().to_string();
    let db = format!("{d}/conf.db");
    netns::run(
        "ovsdb-tool",
        &["create", &db, "/usr/share/openvswitch/vswitch.ovsschema"],
    )?;
    let env = |c: &mut Command| {
        c.env("OVS_RUNDIR", &d)
            .env("OVS_LOGDIR", &d)
            .env("OVS_DBDIR", &d);
    };
    let sock = format!("unix:{d}/db.sock");
    let mut c = w.sw.command("ovsdb-server");
    env(&mut c);
    c.args([
        &db,
        &format!("--remote=p{sock}"),
        &format!("--pidfile={d}/ovsdb.pid"),
        "--detach",
        &format!("--log-file={d}/ovsdb.log"),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let st = c.status().map_err(|source| BenchLabError::Run {
        program: "ovsdb-server",
        source,
    })?;
    if !st.success() {
        return Err(BenchLabError::Failed {
            program: "ovsdb-server",
            dir: d.clone(),
        });
    }
    let vsctl = |args: &[&str]| -> Result<(), BenchLabError> {
        let mut c = w.sw.command("ovs-vsctl");
        env(&mut c);
        let o = c
            .arg(format!("--db={sock}"))
            .args(args)
            .output()
            .map_err(|source| BenchLabError::Run {
                program: "ovs-vsctl",
                source,
            })?;
        if !o.status.success() {
            return Err(BenchLabError::Vsctl {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            });
        }
        Ok(())
    };
    let result = (|| {
        vsctl(&["--no-wait", "init"])?;
        let mut c = w.sw.command("ovs-vswitchd");
        env(&mut c);
        c.args([
            sock.as_str(),
            &format!("--pidfile={d}/vswitchd.pid"),
            "--detach",
            &format!("--log-file={d}/vswitchd.log"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let st = c.status().map_err(|source| BenchLabError::Run {
            program: "ovs-vswitchd",
            source,
        })?;
        if !st.success() {
            return Err(BenchLabError::Failed {
                program: "ovs-vswitchd",
                dir: d.clone(),
            });
        }
        vsctl(&[
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
        ])?;
        for p in [w.a(), w.b()] {
            vsctl(&[
                "add-port",
                "br0",
                &p,
                "--",
                "set",
                "interface",
                &p,
                "type=afxdp",
            ])?;
        }
        std::thread::sleep(Duration::from_secs(2));
        measure(w, seconds, size)
    })();
    for pid in ["vswitchd.pid", "ovsdb.pid"] {
        if let Ok(p) = std::fs::read_to_string(format!("{d}/{pid}")) {
            if let Ok(p) = p.trim().parse::<i32>() {
                // SAFETY: kill(2) on the pid OVS wrote for the daemon we started; no memory is touched.
                unsafe {
                    libc::kill(p, libc::SIGTERM);
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `strato bench raw-forward`: AF_XDP rx on `a` -> tx on `b`, no lookup (both directions).
pub fn raw_forward(a: &str, b: &str) -> Result<(), RawForwardError> {
    let open = |iface: &str| {
        AfXdpPort::open(&AfXdpConfig::new(iface)).map_err(|source| RawForwardError::Open {
            iface: iface.to_string(),
            source,
        })
    };
    let mut pa = open(a)?;
    let mut pb = open(b)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(RawForwardError::Signals)?;
    }
    let mut pool = BufPool::new(4 * BURST);
    let mut bufs = [0u32; BURST];
    while !stop.load(Ordering::Relaxed) {
        forward(&mut pa, &mut pb, &mut pool, &mut bufs);
        forward(&mut pb, &mut pa, &mut pool, &mut bufs);
    }
    Ok(())
}

fn forward(rx: &mut AfXdpPort, tx: &mut AfXdpPort, pool: &mut BufPool, bufs: &mut [u32; BURST]) {
    let r = rx.rx_burst(pool, bufs);
    let _ = tx.tx(pool, &bufs[..r.n]);
    for &x in &bufs[..r.n] {
        pool.free(x);
    }
}

fn run_raw(w: &Wires, seconds: f64, size: u16) -> Result<f64, BenchLabError> {
    let exe = strato_exe()?;
    let mut fwd = Proc(Some(
        w.sw.command(&exe)
            .args(["bench", "raw-forward", "--a", &w.a(), "--b", &w.b()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BenchLabError::Start {
                what: "the raw forwarder",
                source,
            })?,
    ));
    std::thread::sleep(Duration::from_millis(700));
    let r = measure(w, seconds, size);
    fwd.stop();
    r
}

/// Runs the benchmark.
pub fn run(a: &BenchLabArgs) -> Result<BenchLabResult, BenchLabError> {
    if !netns::is_root() {
        return Err(BenchLabError::NotRoot);
    }
    let mut res = BenchLabResult {
        size: a.size,
        seconds: a.seconds,
        ..Default::default()
    };
    type Candidate = fn(&Wires, f64, u16) -> Result<f64, BenchLabError>;
    let candidates: [(&str, Candidate); 4] = [
        ("raw", run_raw),
        ("strato", run_strato),
        ("bridge", run_bridge),
        ("ovs", run_ovs),
    ];
    for (name, f) in candidates {
        if name == "ovs" && a.no_ovs {
            continue;
        }
        eprintln!(
            "bench: {name}: building the topology and measuring for {} s ...",
            a.seconds
        );
        let w = Wires::build()?;
        let mpps = f(&w, a.seconds, a.size)?;
        eprintln!("bench: {name}: {mpps:.3} Mpps");
        match name {
            "raw" => res.mpps.raw = mpps,
            "strato" => res.mpps.strato = mpps,
            "bridge" => res.mpps.bridge = mpps,
            _ => res.mpps.ovs = mpps,
        }
    }
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
    res.ratios = Ratios {
        strato_over_bridge: ratio(res.mpps.strato, res.mpps.bridge),
        strato_over_ovs: ratio(res.mpps.strato, res.mpps.ovs),
        strato_over_raw: ratio(res.mpps.strato, res.mpps.raw),
    };
    Ok(res)
}

/// Formats the result as a table.
pub fn table(r: &BenchLabResult) -> String {
    format!(
        "strato bench lab: {} B UDP, {} s per candidate, sender -> switch -> receiver over veths\n\n\
         candidate   Mpps\n\
         raw AF_XDP  {:.3}\n\
         strato      {:.3}\n\
         bridge      {:.3}\n\
         ovs         {:.3}\n\n\
         strato/bridge {:.2}   strato/ovs {:.2}   strato/raw {:.2}\n",
        r.size,
        r.seconds,
        r.mpps.raw,
        r.mpps.strato,
        r.mpps.bridge,
        r.mpps.ovs,
        r.ratios.strato_over_bridge,
        r.ratios.strato_over_ovs,
        r.ratios.strato_over_raw
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        assert_eq!(
            BenchLabError::NotRoot.to_string(),
            "strato bench lab needs root (namespaces, AF_XDP)"
        );
        let e = BenchLabError::Start {
            what: "the sink",
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(e.to_string().starts_with("cannot start the sink: "), "{e}");
        let e = BenchLabError::Failed {
            program: "ovsdb-server",
            dir: "/tmp/x".into(),
        };
        assert_eq!(e.to_string(), "ovsdb-server failed (log in /tmp/x)");
        let e = BenchLabError::Io {
            path: "/tmp/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(e.to_string().starts_with("/tmp/x: "), "{e}");
    }
}
