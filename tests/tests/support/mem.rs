//! A switch over memory ports: a real controller thread and worker thread, ring ports
//! numbered 1..=n that the test pushes frames into and drains frames out of.

use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_datapath::port::{FrameRing, MemPort, Port, PortKind};
use strato_datapath::worker::WorkerConfig;
use strato_flowtable::pipeline::{Pipeline, PortEnv};
use strato_switch::controller::{start, Running};

/// How long a frame may take to go in or come out.
pub const WAIT: Duration = Duration::from_secs(5);

/// `02:00:00:00:00:i`.
pub fn mac(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, i]
}

/// A UDP frame from host `src` to host `dst` (MACs [`mac`], addresses 10.0.0.x, 18 bytes of
/// payload, destination port 9).
pub fn udp(src: u8, dst: u8, sport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(mac(src), mac(dst))
        .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
        .udp(sport, 9);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 18]).expect("a UDP frame");
    v
}

/// A switch with `n` ring ports numbered 1..=n on one worker.
pub struct Switch {
    pub run: Running,
    /// Index p-1: frames into port p.
    pub rx: Vec<Arc<FrameRing>>,
    /// Index p-1: frames out of port p.
    pub tx: Vec<Arc<FrameRing>>,
}

impl Switch {
    pub fn new(p: Pipeline, n: u32, cfg: WorkerConfig) -> Switch {
        Switch::with_env(p, n, cfg, |_| {})
    }

    /// `n` ring ports, plus whatever `more` adds to the port environment (tunnels).
    pub fn with_env(
        p: Pipeline,
        n: u32,
        cfg: WorkerConfig,
        more: impl FnOnce(&mut PortEnv),
    ) -> Switch {
        let mut env = PortEnv::default();
        for i in 1..=n {
            env.add_port(i, true, true);
        }
        more(&mut env);
        let run = start(p, env, vec![cfg]).expect("start the controller");
        let (mut rx, mut tx) = (Vec::new(), Vec::new());
        let mut ports = Vec::new();
        for i in 1..=n {
            let (r, t) = (FrameRing::new(4096), FrameRing::new(4096));
            ports.push(Port::new(
                i,
                format!("p{i}"),
                PortKind::Memory(MemPort::rings(r.clone(), t.clone())),
            ));
            rx.push(r);
            tx.push(t);
        }
        run.handle
            .call(move |c| {
                for p in ports {
                    c.add_port(0, p);
                }
            })
            .expect("add the ports");
        run.handle.sync().expect("sync");
        Switch { run, rx, tx }
    }

    /// Pushes a frame into `port` (waiting while its ring is full).
    pub fn inject(&self, port: u32, f: &[u8]) {
        let t = Instant::now();
        while self.rx[port as usize - 1].push(f).is_err() {
            assert!(t.elapsed() < WAIT, "port {port} rx ring stayed full");
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Waits until `n` frames came out of `port` (or [`WAIT`] passed) and returns them.
    pub fn collect(&self, port: u32, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let t = Instant::now();
        while out.len() < n && t.elapsed() < WAIT {
            out.extend(self.tx[port as usize - 1].drain());
            std::thread::sleep(Duration::from_micros(200));
        }
        out
    }

    /// Lets traffic settle, then returns whatever came out of every port.
    pub fn settle(&self) -> Vec<Vec<Vec<u8>>> {
        self.run.handle.sync().expect("sync");
        std::thread::sleep(Duration::from_millis(30));
        self.run.handle.sync().expect("sync");
        self.tx.iter().map(|t| t.drain()).collect()
    }

    pub fn counters(&self) -> strato_datapath::stats::WorkerCounters {
        self.run.handle.sync().expect("sync");
        self.run
            .handle
            .call(|c| c.worker_counters(0))
            .expect("worker counters")
    }
}
