//! A tshark capture of OpenFlow on a namespace's loopback, read back with display filters.

use super::{wait_for_text, Proc};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a capture needs.
pub fn need_tshark() -> Result<(), String> {
    super::tool("tshark", "tshark")
}

/// tshark writing `DIR/of.pcap` from `lo` in a namespace, TCP on the given ports (dissected
/// as OpenFlow when read); stopped on drop.
pub struct Capture {
    proc: Proc,
    file: PathBuf,
    ports: Vec<u16>,
}

impl Capture {
    /// Starts it and waits (20 s at most) until tshark says it captures.
    pub fn start(ns: &str, ports: &[u16], dir: &Path) -> Capture {
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
            .stderr(std::fs::File::create(&log).expect("tshark log"))
            .spawn()
            .expect("start tshark");
        let c = Capture {
            proc: Proc::new(child, Duration::from_secs(3)),
            file,
            ports: ports.to_vec(),
        };
        assert!(
            wait_for_text(&log, "Capturing on", Duration::from_secs(20)),
            "tshark did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        c
    }

    /// Stops the capture: tshark writes everything out on SIGTERM (after a moment for the
    /// last frames to be seen).
    pub fn stop(&mut self) {
        std::thread::sleep(Duration::from_millis(500));
        self.proc.stop();
    }

    /// The non-empty lines (trimmed) of `tshark -r` with a display filter, and fields if any
    /// (`-T fields -e F`...), else one summary line per frame.
    pub fn read(&self, filter: &str, fields: &[&str]) -> Vec<String> {
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
        let o = c.output().expect("run tshark -r");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}
