//! The packet-rate harness behind `strato bench pipeline`.
//!
//! Contract:
//! - Each scenario builds a real worker ([`strato_datapath::worker::Worker`]) with memory
//!   ports, programs it the way the controller does (OpenFlow-style rules -> xlate -> megaflow
//!   installs through the command queue; `classifier_100k` installs its 100,000 megaflows
//!   directly), replays prebuilt 64-byte frames on one port and counts what leaves.
//! - The worker runs inline on the calling thread, pinned to one core: no other thread takes
//!   part, so a run is repeatable under `valgrind --tool=callgrind`.
//! - Warm-up first (caches filled); then exactly `packets` frames are processed and timed.
//! - The baseline is a plain rx -> tx copy loop over the same kind of ports and the same frames,
//!   measured in the same run: the harness's own limit.
//! - A run that did not reach steady state (a miss, an upcall or an unexpected drop during the
//!   measured part) is an error, not a number.

use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_datapath::port::{MemPort, Port, PortKind, BURST};
use strato_datapath::worker::{
    Command, IdlePolicy, Notifier, Worker, WorkerChannels, WorkerConfig,
};
use strato_datapath::{buf::BufPool, extract::extract};
use strato_flowtable::key::{Field, PacketKey};
use strato_flowtable::pipeline::{Action, OfPort, Pipeline, PortEnv, TunnelPortCfg};
use strato_flowtable::{xlate, DpAction, Match};

/// The scenarios, in the order they run.
pub const SCENARIOS: &[&str] = &[
    "l2_fwd_1flow",
    "l2_fwd_10kflows",
    "vxlan_encap",
    "vxlan_decap",
    "classifier_100k",
];

/// Frame length used by every scenario (the VM-side frame; VXLAN adds 50 outer bytes).
pub const FRAME_LEN: usize = 64;

const RX: u32 = 1;
const TX: u32 = 2;
const TUN: u32 = 10;
const LOCAL_VTEP: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 1);
const REMOTE_VTEP: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 2);
const LOCAL_VTEP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0x01];
const REMOTE_VTEP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0x02];
const VNI: u32 = 5001;

/// Harness options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Packets per measured run.
    pub packets: u64,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Measure the baseline copy loop too.
    pub baseline: bool,
}

/// One scenario's result.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Million packets per second through the pipeline.
    pub mpps: f64,
    /// Nanoseconds per packet.
    pub ns_per_pkt: f64,
    /// Million packets per second of the plain copy loop (0 when skipped).
    pub baseline_copy_mpps: f64,
    /// Packets measured.
    pub packets: u64,
    /// Distinct flows in the offered traffic.
    pub flows: usize,
    /// Megaflows cached.
    pub megaflows: usize,
    /// Share of lookups answered by the exact-match cache (percent).
    pub emc_hit_pct: f64,
    /// Share answered by the signature-match cache (percent).
    pub smc_hit_pct: f64,
    /// Share answered by the megaflow classifier (percent).
    pub megaflow_hit_pct: f64,
}

/// Harness errors.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// unknown scenario {0:?} (known: l2_fwd_1flow, l2_fwd_10kflows, vxlan_encap, vxlan_decap, classifier_100k)
    #[error("unknown scenario {0:?} (known: l2_fwd_1flow, l2_fwd_10kflows, vxlan_encap, vxlan_decap, classifier_100k)")]
    UnknownScenario(String),
    /// the scenario did not reach steady state: {0}
    #[error("the scenario did not reach steady state: {0}")]
    NotSteady(String),
    /// setting up the scenario failed: {0}
    #[error("setting up the scenario failed: {0}")]
    Setup(String),
}

/// A built scenario: frames to replay on port 1, and how to program the worker.
struct Scenario {
    frames: Vec<Vec<u8>>,
    rx_port: u32,
    /// Megaflows to install (match, actions).
    megaflows: Vec<(Match, Vec<DpAction>)>,
    /// Frames expected out per frame in.
    tx_port: u32,
}

/// Runs one scenario.
pub fn run_scenario(name: &str, opts: &Options) -> Result<ScenarioResult, BenchError> {
    let sc = match name {
        "l2_fwd_1flow" => l2_fwd(1)?,
        "l2_fwd_10kflows" => l2_fwd(10_000)?,
        "vxlan_encap" => vxlan_encap()?,
        "vxlan_decap" => vxlan_decap()?,
        "classifier_100k" => classifier_100k()?,
        other => return Err(BenchError::UnknownScenario(other.to_string())),
    };
    if let Some(core) = opts.core {
        // Best effort: an unpinned run is still a run, and says so.
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            eprintln!("bench: could not pin to core {core}; running unpinned");
        }
    }
    let baseline = if opts.baseline {
        baseline_copy(&sc.frames, opts.packets)
    } else {
        Duration::ZERO
    };
    let (mut w, _ch) = build_worker(&sc)?;
    // Warm-up: every frame several times, enough for probabilistic EMC insertion to settle.
    let warm = (sc.frames.len() as u64 * 20).max(2_000_000);
    run_packets(&mut w, sc.rx_port, warm);
    check_steady(&mut w, sc.tx_port, warm, "warm-up")?;
    w.reset_counters();
    let t = run_packets(&mut w, sc.rx_port, opts.packets);
    check_steady(&mut w, sc.tx_port, opts.packets, "measured run")?;
    let c = w.counters();
    let lookups = (c.emc_hits + c.smc_hits + c.megaflow_hits).max(1) as f64;
    let secs = t.as_secs_f64().max(1e-9);
    Ok(ScenarioResult {
        name: name.to_string(),
        mpps: opts.packets as f64 / secs / 1e6,
        ns_per_pkt: secs * 1e9 / opts.packets as f64,
        baseline_copy_mpps: if opts.baseline {
            opts.packets as f64 / baseline.as_secs_f64().max(1e-9) / 1e6
        } else {
            0.0
        },
        packets: opts.packets,
        flows: sc.frames.len(),
        megaflows: w.cache().len(),
        emc_hit_pct: 100.0 * c.emc_hits as f64 / lookups,
        smc_hit_pct: 100.0 * c.smc_hits as f64 / lookups,
        megaflow_hit_pct: 100.0 * c.megaflow_hits as f64 / lookups,
    })
}

/// Formats results as a table.
pub fn table(results: &[ScenarioResult], packets: u64, core: usize) -> String {
    let mut s = format!(
        "strato bench pipeline: {packets} packets of {FRAME_LEN} bytes per scenario, one worker pinned to core {core}\n\n"
    );
    s += &format!(
        "{:<18} {:>8} {:>9} {:>14} {:>8} {:>7} {:>10} {:>6} {:>6} {:>6}\n",
        "scenario",
        "Mpps",
        "ns/pkt",
        "copy-loop Mpps",
        "ratio",
        "flows",
        "megaflows",
        "emc%",
        "smc%",
        "mf%"
    );
    for r in results {
        let ratio = if r.baseline_copy_mpps > 0.0 {
            r.mpps / r.baseline_copy_mpps
        } else {
            0.0
        };
        s += &format!(
            "{:<18} {:>8.2} {:>9.1} {:>14.2} {:>8.2} {:>7} {:>10} {:>6.1} {:>6.1} {:>6.1}\n",
            r.name,
            r.mpps,
            r.ns_per_pkt,
            r.baseline_copy_mpps,
            ratio,
            r.flows,
            r.megaflows,
            r.emc_hit_pct,
            r.smc_hit_pct,
            r.megaflow_hit_pct
        );
    }
    s
}

fn build_worker(sc: &Scenario) -> Result<(Worker, Arc<WorkerChannels>), BenchError> {
    let cfg = WorkerConfig {
        idle: IdlePolicy::BusyPoll,
        cmd_queue: 16384,
        ..WorkerConfig::default()
    };
    let ch = WorkerChannels::new(&cfg, Arc::new(Notifier::default()));
    let mut w = Worker::new(cfg, ch.clone());
    w.add_port(Port::new(
        sc.rx_port,
        "gen",
        PortKind::Memory(MemPort::replay(&sc.frames, 0)),
    ));
    for p in [RX, TX] {
        if p != sc.rx_port {
            w.add_port(Port::new(
                p,
                format!("sink{p}"),
                PortKind::Memory(MemPort::sink()),
            ));
        }
    }
    for (i, (m, actions)) in sc.megaflows.iter().enumerate() {
        let mut cmd = Command::Install {
            id: i as u64 + 1,
            m: Box::new(*m),
            actions: actions.clone().into(),
            version: 0,
        };
        // The queue is bounded: let the worker drain it when full.
        while let Err(c) = ch.cmds.push(cmd) {
            cmd = c;
            w.poll_once();
        }
    }
    while !ch.cmds.is_empty() {
        w.poll_once();
    }
    if w.cache().len() != sc.megaflows.len() {
        return Err(BenchError::Setup(format!(
            "{} megaflows installed, {} expected",
            w.cache().len(),
            sc.megaflows.len()
        )));
    }
    Ok((w, ch))
}

/// Replays exactly `n` frames through the worker; returns the time taken.
fn run_packets(w: &mut Worker, rx: u32, n: u64) -> Duration {
    set_remaining(w, rx, n);
    let t = Instant::now();
    while remaining(w, rx) > 0 {
        w.poll_once();
    }
    t.elapsed()
}

fn set_remaining(w: &mut Worker, rx: u32, n: u64) {
    if let Some(PortKind::Memory(m)) = w.port_mut(rx).map(|p| &mut p.kind) {
        m.set_remaining(n);
    }
}

fn remaining(w: &mut Worker, rx: u32) -> u64 {
    match w.port_mut(rx).map(|p| &p.kind) {
        Some(PortKind::Memory(m)) => m.remaining(),
        _ => 0,
    }
}

fn check_steady(w: &mut Worker, tx: u32, n: u64, what: &str) -> Result<(), BenchError> {
    let c = w.counters().clone();
    let sent = w.port_mut(tx).map(|p| p.counters.tx_packets).unwrap_or(0);
    if c.misses != 0 || c.upcalls != 0 || c.total_drops() != 0 || sent != n {
        return Err(BenchError::NotSteady(format!(
            "{what}: {n} offered, {sent} sent, {} misses, {} upcalls, {} drops {:?}",
            c.misses,
            c.upcalls,
            c.total_drops(),
            strato_datapath::DropReason::ALL
                .iter()
                .filter(|r| c.dropped(**r) > 0)
                .map(|r| (r.name(), c.dropped(*r)))
                .collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// The plain rx -> tx copy loop: the same replay port and sink, no lookup.
fn baseline_copy(frames: &[Vec<u8>], n: u64) -> Duration {
    let mut pool = BufPool::new(4096);
    let mut rx = Port::new(RX, "gen", PortKind::Memory(MemPort::replay(frames, n)));
    let mut tx = Port::new(TX, "sink", PortKind::Memory(MemPort::sink()));
    let mut bufs = [0u32; BURST];
    let t = Instant::now();
    loop {
        let r = rx.rx_burst(&mut pool, &mut bufs);
        if r.n == 0 {
            break;
        }
        for &b in &bufs[..r.n] {
            tx.send(&mut pool, b);
        }
        tx.flush(&mut pool);
    }
    std::hint::black_box(tx.counters.tx_packets);
    t.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Frames

fn mac(prefix: u8, i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, prefix, b[0], b[1], b[2], b[3]]
}

/// A `FRAME_LEN`-byte Ethernet/IPv4/UDP frame.
pub fn udp_frame(
    src: [u8; 6],
    dst: [u8; 6],
    ip_src: [u8; 4],
    ip_dst: [u8; 4],
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(src, dst)
        .ipv4(ip_src, ip_dst, 64)
        .udp(sport, dport);
    let payload = vec![0x5a; FRAME_LEN - 14 - 20 - 8];
    let mut v = Vec::with_capacity(FRAME_LEN);
    // Cannot fail: writing into a Vec.
    let _ = b.write(&mut v, &payload);
    v
}

fn key_of(
    frame: &[u8],
    in_port: u32,
    tun: Option<&strato_datapath::extract::TunnelMeta>,
) -> Result<PacketKey, BenchError> {
    let mut pk = PacketKey::default();
    extract(frame, in_port, tun, &mut pk)
        .map_err(|r| BenchError::Setup(format!("frame did not extract: {}", r.name())))?;
    Ok(pk)
}

/// Translates every frame's key through the pipeline and collects distinct megaflows.
fn megaflows_via_xlate(
    p: &Pipeline,
    env: &PortEnv,
    keys: impl IntoIterator<Item = PacketKey>,
) -> Vec<(Match, Vec<DpAction>)> {
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::new();
    for pk in keys {
        if out
            .iter()
            .any(|(m, _): &(Match, Vec<DpAction>)| m.matches(&pk.key))
        {
            continue;
        }
        let x = xlate::xlate(p, env, &pk.key);
        if seen.insert(x.megaflow, ()).is_none() {
            out.push((x.megaflow, x.actions));
        }
    }
    out
}

fn env_with_ports(ports: &[u32]) -> PortEnv {
    let mut env = PortEnv::default();
    for &p in ports {
        env.add_port(p, true, true);
    }
    env
}

/// `l2_fwd_1flow` / `l2_fwd_10kflows`: L2 forwarding by destination MAC. With many flows the
/// rules match the low 6 bits of the destination MAC, so 10,000 MAC pairs fold into 64
/// megaflows (in_port + dl_dst/00:00:00:00:00:3f).
fn l2_fwd(flows: u32) -> Result<Scenario, BenchError> {
    let frames: Vec<Vec<u8>> = (0..flows)
        .map(|i| {
            udp_frame(
                mac(0xa0, i),
                mac(0xb0, i),
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                1234,
                5678,
            )
        })
        .collect();
    let mut p = Pipeline::default();
    if flows == 1 {
        let m = Match::default()
            .with(Field::InPort, RX as u128)
            .with(Field::EthDst, mac_u(mac(0xb0, 0)));
        p.add_apply(0, 100, m, vec![Action::Output(OfPort::Port(TX))])
            .map_err(setup)?;
    } else {
        for j in 0..64u128 {
            let m = Match::default()
                .with(Field::InPort, RX as u128)
                .with_masked(Field::EthDst, j, 0x3f);
            p.add_apply(0, 100, m, vec![Action::Output(OfPort::Port(TX))])
                .map_err(setup)?;
        }
    }
    let env = env_with_ports(&[RX, TX]);
    let keys = frames
        .iter()
        .map(|f| key_of(f, RX, None))
        .collect::<Result<Vec<_>, _>>()?;
    let megaflows = megaflows_via_xlate(&p, &env, keys);
    Ok(Scenario {
        frames,
        rx_port: RX,
        megaflows,
        tx_port: TX,
    })
}

fn mac_u(m: [u8; 6]) -> u128 {
    strato_flowtable::key::mac_to_u64(&m) as u128
}

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

fn tunnel_env() -> PortEnv {
    let mut env = env_with_ports(&[RX, TX]);
    env.add_tunnel(TunnelPortCfg {
        port: TUN,
        underlay_port: TX,
        local_ip: IpAddr::V4(LOCAL_VTEP),
        local_mac: LOCAL_VTEP_MAC,
        remote_ip: None,
        vni: None,
        dst_port: strato_flowtable::tunnel::VXLAN_PORT,
        ttl: 64,
        udp_csum: false,
        neighbors: [(IpAddr::V4(REMOTE_VTEP), REMOTE_VTEP_MAC)]
            .into_iter()
            .collect(),
    });
    env
}

/// `vxlan_encap`: a VM frame from port 1 goes into VNI 5001 towards the remote VTEP.
fn vxlan_encap() -> Result<Scenario, BenchError> {
    let frames = vec![udp_frame(
        mac(0xa0, 1),
        mac(0xb0, 1),
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        1234,
        5678,
    )];
    let mut p = Pipeline::default();
    let m = Match::default().with(Field::InPort, RX as u128);
    p.add_apply(
        0,
        100,
        m,
        vec![
            Action::SetField {
                field: Field::TunId,
                value: VNI as u128,
            },
            Action::SetField {
                field: Field::TunIpv4Dst,
                value: u32::from(REMOTE_VTEP) as u128,
            },
            Action::Output(OfPort::Port(TUN)),
        ],
    )
    .map_err(setup)?;
    let env = tunnel_env();
    let keys = frames
        .iter()
        .map(|f| key_of(f, RX, None))
        .collect::<Result<Vec<_>, _>>()?;
    let megaflows = megaflows_via_xlate(&p, &env, keys);
    if !megaflows
        .iter()
        .all(|(_, a)| matches!(a.as_slice(), [DpAction::TunnelPush(_)]))
    {
        return Err(BenchError::Setup(format!(
            "xlate did not produce a tunnel push: {megaflows:?}"
        )));
    }
    Ok(Scenario {
        frames,
        rx_port: RX,
        megaflows,
        tx_port: TX,
    })
}

/// A VXLAN frame as a remote VTEP (the Linux kernel) sends it: UDP checksum set.
pub fn vxlan_frame(inner: &[u8], vni: u32, sport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(REMOTE_VTEP_MAC, LOCAL_VTEP_MAC)
        .ipv4(REMOTE_VTEP.octets(), LOCAL_VTEP.octets(), 64)
        .udp(sport, strato_flowtable::tunnel::VXLAN_PORT);
    let mut payload = vec![0x08, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(inner);
    let mut v = Vec::new();
    // Cannot fail: writing into a Vec.
    let _ = b.write(&mut v, &payload);
    v
}

/// `vxlan_decap`: VXLAN frames from the remote VTEP arrive on the underlay port 2, are
/// decapsulated, and the inner frame (VNI 5001) goes to the VM on port 1.
fn vxlan_decap() -> Result<Scenario, BenchError> {
    let inner = udp_frame(
        mac(0xb0, 1),
        mac(0xa0, 1),
        [10, 0, 0, 2],
        [10, 0, 0, 1],
        5678,
        1234,
    );
    let frames = vec![vxlan_frame(&inner, VNI, 49_152)];
    let mut p = Pipeline::default();
    let m = Match::default()
        .with(Field::InPort, TUN as u128)
        .with(Field::TunId, VNI as u128);
    p.add_apply(0, 100, m, vec![Action::Output(OfPort::Port(RX))])
        .map_err(setup)?;
    let env = tunnel_env();
    let outer = key_of(&frames[0], TX, None)?;
    let meta = strato_datapath::extract::TunnelMeta {
        tun_id: VNI as u64,
        ipv4_src: u32::from(REMOTE_VTEP),
        ipv4_dst: u32::from(LOCAL_VTEP),
        ..Default::default()
    };
    let inner_key = key_of(&inner, TUN, Some(&meta))?;
    let megaflows = megaflows_via_xlate(&p, &env, [outer, inner_key]);
    if megaflows.len() != 2 || !matches!(megaflows[0].1.as_slice(), [DpAction::TunnelPop { .. }]) {
        return Err(BenchError::Setup(format!(
            "expected a tunnel pop and an inner megaflow: {megaflows:?}"
        )));
    }
    Ok(Scenario {
        frames,
        rx_port: TX,
        megaflows,
        tx_port: RX,
    })
}

/// `classifier_100k`: 100,000 exact flows spread over 100 masks, offered in a shuffled order so
/// the exact-match cache thrashes. Mask i consults in_port, dl_type, nw_proto, tp_dst, an
/// nw_src prefix of 8 + i % 25 bits, and one of {nothing, tp_src, nw_dst/24, nw_dst/32}; flow
/// j lives in mask j / 1000, whose number is also the top byte of its source address, so every
/// frame matches exactly one megaflow.
fn classifier_100k() -> Result<Scenario, BenchError> {
    const MASKS: u32 = 100;
    const PER_MASK: u32 = 1000;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut frames = Vec::with_capacity((MASKS * PER_MASK) as usize);
    let mut megaflows = Vec::with_capacity(frames.capacity());
    for g in 0..MASKS {
        let plen = 8 + g % 25;
        let variant = g / 25;
        for k in 0..PER_MASK {
            let r = next();
            let src = (g << 24) | ((r as u32) & 0x00ff_ffff);
            let dst = 0x0a00_0000 | ((r >> 24) as u32 & 0x00ff_ffff);
            let sport = (r >> 48) as u16;
            let f = udp_frame(
                mac(0xa0, 1),
                mac(0xb0, 1),
                src.to_be_bytes(),
                dst.to_be_bytes(),
                sport,
                k as u16,
            );
            let key = key_of(&f, RX, None)?.key;
            let mut m = Match::default()
                .with(Field::InPort, RX as u128)
                .with(Field::EthType, 0x0800)
                .with(Field::IpProto, 17)
                .with(Field::TpDst, k as u128);
            m.set_prefix(Field::Ipv4Src, src as u128, plen)
                .map_err(setup)?;
            match variant {
                0 => {}
                1 => {
                    m.set(Field::TpSrc, sport as u128);
                }
                2 => {
                    m.set_prefix(Field::Ipv4Dst, dst as u128, 24)
                        .map_err(setup)?;
                }
                _ => {
                    m.set(Field::Ipv4Dst, dst as u128);
                }
            }
            debug_assert!(m.matches(&key));
            frames.push(f);
            megaflows.push((m, vec![DpAction::Output(TX)]));
        }
    }
    // Shuffle the offered order (Fisher-Yates, fixed seed): consecutive packets are unrelated.
    for i in (1..frames.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        frames.swap(i, j);
    }
    Ok(Scenario {
        frames,
        rx_port: RX,
        megaflows,
        tx_port: TX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_runs_and_forwards_everything() {
        for name in SCENARIOS {
            let r = run_scenario(
                name,
                &Options {
                    packets: 50_000,
                    core: None,
                    baseline: true,
                },
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(r.mpps > 0.0 && r.baseline_copy_mpps > 0.0, "{r:?}");
        }
    }

    #[test]
    fn scenario_shapes() {
        assert_eq!(l2_fwd(10_000).unwrap().megaflows.len(), 64);
        assert_eq!(l2_fwd(1).unwrap().megaflows.len(), 1);
        let c = classifier_100k().unwrap();
        assert_eq!(c.frames.len(), 100_000);
        let masks: std::collections::HashSet<_> =
            c.megaflows.iter().map(|(m, _)| *m.mask()).collect();
        assert_eq!(masks.len(), 100);
        assert!(run_scenario(
            "nope",
            &Options {
                packets: 1,
                core: None,
                baseline: false
            }
        )
        .is_err());
    }
}
