//! Open vSwitch as the reference switch (its userspace datapath in namespaces of the test's
//! own), and `ovs-ofctl`, the OpenFlow client both switches are driven with.

use super::net::host_on;
use super::{terminate_pids, text, Out};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use strato_labs::netns::{self, Netns};

/// What Open vSwitch needs: `ovs-vsctl`, `ovs-vswitchd` and `ovsdb-server` (Debian's
/// openvswitch-switch), and `ovs-ofctl` (openvswitch-common).
pub fn need_ovs() -> Result<(), String> {
    super::tool("ovs-ofctl", "openvswitch-common")?;
    super::tool("ovs-vswitchd", "openvswitch-switch")
}

/// `ovs-ofctl -O VERSION -t 10 [OPTIONS] CMD TARGET [ARGS]`, in namespace `ns` when given
/// (a listener on a namespace's loopback). `args` is the command line without the target:
/// its leading `--...` words are the options, the next word the command, the rest the
/// command's arguments.
pub fn ofctl(ns: Option<&str>, version: &str, target: &str, args: &[&str]) -> Out {
    let cmd_at = args
        .iter()
        .position(|a| !a.starts_with("--"))
        .expect("an ovs-ofctl command");
    let mut full: Vec<&str> = vec!["-O", version, "-t", "10"];
    full.extend_from_slice(&args[..=cmd_at]);
    full.push(target);
    full.extend_from_slice(&args[cmd_at + 1..]);
    let line = format!("ovs-ofctl {}", full.join(" "));
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "ovs-ofctl"]);
            c
        }
        None => Command::new("ovs-ofctl"),
    };
    c.args(&full);
    Out::run(line, &mut c)
}

/// A host of an [`OvsSwitch`]: its namespace, the switch-side port name (the port number is
/// its position in the list, from 1), `eth0`'s MAC and address.
pub struct OvsHost {
    pub ns: String,
    pub port: String,
    pub mac: String,
    pub cidr: String,
}

/// `ovsdb-server` and `ovs-vswitchd` in a new namespace, with bridge `br0` (`netdev`, the
/// userspace datapath; `fail_mode=secure`) and a veth port per host. On drop the daemons are
/// stopped (SIGTERM, SIGKILL after 3 s), then the namespaces deleted.
pub struct OvsSwitch {
    dir: PathBuf,
    // Dropped after the daemons are stopped (drop runs first): the namespaces go last.
    _hosts: Vec<Netns>,
    sw: Netns,
}

impl OvsSwitch {
    /// Starts it in namespace `sw_ns`, its files (database, pid files, logs) in `dir`;
    /// `protocols` as OVS spells them (`OpenFlow10,OpenFlow13`), `controllers` the targets
    /// of `set-controller br0` (`tcp:...` to connect, `ptcp:...` to listen). Listeners come
    /// up a moment later: the caller waits for them.
    pub fn start(
        dir: &Path,
        sw_ns: &str,
        hosts: &[OvsHost],
        protocols: &str,
        controllers: &[String],
    ) -> OvsSwitch {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let sw = Netns::new(sw_ns).unwrap_or_else(|e| panic!("namespace {sw_ns}: {e}"));
        let host_ns: Vec<Netns> = hosts
            .iter()
            .map(|h| host_on(&sw, &h.ns, &h.port, &h.mac, &h.cidr))
            .collect();
        let ovs = OvsSwitch {
            dir: dir.to_path_buf(),
            _hosts: host_ns,
            sw,
        };
        let d = dir.display().to_string();
        let db = format!("unix:{d}/db.sock");
        netns::run(
            "ovsdb-tool",
            &[
                "create",
                &format!("{d}/conf.db"),
                "/usr/share/openvswitch/vswitch.ovsschema",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        ovs.in_sw(&[
            "ovsdb-server",
            &format!("{d}/conf.db"),
            &format!("--remote=p{db}"),
            &format!("--pidfile={d}/ovsdb.pid"),
            "--detach",
            &format!("--log-file={d}/ovsdb.log"),
        ]);
        ovs.in_sw(&["ovs-vsctl", &format!("--db={db}"), "--no-wait", "init"]);
        ovs.in_sw(&[
            "ovs-vswitchd",
            &db,
            &format!("--pidfile={d}/vswitchd.pid"),
            "--detach",
            &format!("--log-file={d}/vswitchd.log"),
        ]);
        let mut vsctl: Vec<String> = [
            "ovs-vsctl",
            &format!("--db={db}"),
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
            &format!("protocols={protocols}"),
            "fail_mode=secure",
        ]
        .map(String::from)
        .to_vec();
        for (i, h) in hosts.iter().enumerate() {
            vsctl.extend(
                [
                    "--",
                    "add-port",
                    "br0",
                    &h.port,
                    "--",
                    "set",
                    "interface",
                    &h.port,
                ]
                .map(String::from),
            );
            vsctl.push(format!("ofport_request={}", i + 1));
        }
        if !controllers.is_empty() {
            vsctl.extend(["--", "set-controller", "br0"].map(String::from));
            vsctl.extend(controllers.iter().cloned());
        }
        ovs.in_sw(&vsctl.iter().map(String::as_str).collect::<Vec<_>>());
        ovs
    }

    /// Runs a program in the switch's namespace with the OVS directories pointing at `dir`;
    /// it must succeed.
    fn in_sw(&self, args: &[&str]) {
        let d = self.dir.display();
        let o = Command::new("ip")
            .args(["netns", "exec", self.sw.name(), "env"])
            .args([
                format!("OVS_RUNDIR={d}"),
                format!("OVS_LOGDIR={d}"),
                format!("OVS_DBDIR={d}"),
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(o.status.success(), "{args:?}:\n{}", text(&o));
    }

    /// The switch's namespace.
    pub fn ns(&self) -> &str {
        self.sw.name()
    }

    /// ovs-vswitchd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("vswitchd.log")).unwrap_or_default()
    }
}

impl Drop for OvsSwitch {
    fn drop(&mut self) {
        let pids: Vec<u32> = ["vswitchd.pid", "ovsdb.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        terminate_pids(&pids, Duration::from_secs(3));
    }
}

/// The flow entries of `ovs-ofctl dump-flows` output (the lines that start with `cookie=`).
pub fn flow_entries(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.trim_start().starts_with("cookie="))
        .collect()
}

/// The number right after `key` in `line` (`n_packets=` and the like).
pub fn num_after(line: &str, key: &str) -> Option<u64> {
    let i = line.find(key)? + key.len();
    let digits: String = line[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
