//! A worker driven inline (no threads): a packet the controller re-injects with
//! [`Command::Execute`] whose actions pop a tunnel goes on through the same batch pipeline as a
//! received burst (a batch of one), with the same counters and the same recirculation limit.

use std::net::Ipv4Addr;
use std::sync::Arc;
use strato_datapath::buf::Buf;
use strato_datapath::dpif::{Command, Notifier, WorkerChannels};
use strato_datapath::exec::tunnel_push;
use strato_datapath::port::{FrameRing, MemPort, Port, PortKind};
use strato_datapath::stats::DropReason;
use strato_datapath::worker::{IdlePolicy, Worker, WorkerConfig, MAX_RECIRC};
use strato_flowtable::key::Field;
use strato_flowtable::tunnel::{TunnelParams, TunnelPush, VXLAN_PORT};
use strato_flowtable::{DpAction, Match};

const UPLINK: u32 = 1;
const VM: u32 = 2;
const TUN: u32 = 10;

/// 02:..:01 -> 02:..:02, 10.0.0.1:1234 -> 10.0.0.2:53 UDP, 5 bytes payload.
fn inner() -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1234, 53);
    let mut v = Vec::new();
    b.write(&mut v, &[1, 2, 3, 4, 5]).unwrap();
    v
}

/// `frame` inside `layers` VXLAN encapsulations (VNI 5001, IPv4 underlay).
fn encap(frame: &[u8], layers: usize) -> Vec<u8> {
    let t = TunnelPush::new(
        TUN,
        UPLINK,
        TunnelParams {
            vni: 5001,
            src_mac: [2, 0, 0, 0, 0xee, 1],
            dst_mac: [2, 0, 0, 0, 0xee, 2],
            src_ip: Ipv4Addr::new(192, 168, 100, 2).into(),
            dst_ip: Ipv4Addr::new(192, 168, 100, 1).into(),
            ttl: 64,
            tos: 0,
            dst_port: VXLAN_PORT,
            udp_csum: true,
        },
    )
    .unwrap();
    let mut b = Buf::new();
    b.fill(frame).unwrap();
    for _ in 0..layers {
        tunnel_push(&mut b, &t, 7).unwrap();
    }
    b.data().to_vec()
}

struct Rig {
    w: Worker,
    ch: Arc<WorkerChannels>,
    vm_tx: Arc<FrameRing>,
    cfg: WorkerConfig,
}

/// A worker with the uplink and the VM port, and one megaflow for packets decapsulated onto
/// the tunnel port.
fn rig(on_tunnel: Vec<DpAction>) -> Rig {
    let cfg = WorkerConfig {
        idle: IdlePolicy::BusyPoll,
        emc_insert_inv_prob: 1,
        ..WorkerConfig::default()
    };
    let ch = WorkerChannels::new(&cfg, Arc::new(Notifier::default()));
    let mut w = Worker::new(cfg.clone(), ch.clone());
    let vm_tx = FrameRing::new(64);
    w.add_port(Port::new(
        UPLINK,
        "uplink",
        PortKind::Memory(MemPort::sink()),
    ));
    w.add_port(Port::new(
        VM,
        "vm",
        PortKind::Memory(MemPort::rings(FrameRing::new(64), vm_tx.clone())),
    ));
    let m = Match::default().with(Field::InPort, TUN as u128);
    ch.cmds
        .push(Command::Install {
            id: 1,
            m: Box::new(m),
            actions: on_tunnel.into(),
            version: 0,
        })
        .ok()
        .unwrap();
    w.poll_once();
    assert_eq!(w.cache().len(), 1);
    Rig { w, ch, vm_tx, cfg }
}

fn execute(r: &mut Rig, frame: &[u8]) {
    let mut f = r.ch.frames.pop().unwrap();
    f.set(frame);
    r.ch.cmds
        .push(Command::Execute {
            in_port: UPLINK,
            tun: None,
            frame: f,
            actions: vec![DpAction::TunnelPop { port: TUN }].into(),
        })
        .ok()
        .unwrap();
    r.w.poll_once();
}

#[test]
fn reinjected_tunnel_pop_goes_through_the_pipeline() {
    let mut r = rig(vec![DpAction::Output(VM)]);
    let inner = inner();
    execute(&mut r, &encap(&inner, 1));
    let c = r.w.counters().clone();
    assert_eq!(c.executed, 1);
    assert_eq!(c.recirculations, 1);
    assert_eq!(c.megaflow_hits, 1, "the inner packet was looked up");
    assert_eq!((c.misses, c.total_drops()), (0, 0));
    assert_eq!(r.vm_tx.pop().as_deref(), Some(&inner[..]));
    // Again: the exact-match cache learnt the inner flow on the batch path.
    execute(&mut r, &encap(&inner, 1));
    let c = r.w.counters().clone();
    assert_eq!((c.executed, c.recirculations, c.emc_hits), (2, 2, 1));
    assert_eq!(r.w.free_buffers(), r.cfg.buffers);
}

#[test]
fn reinjected_pop_without_a_megaflow_goes_up_as_a_miss() {
    let mut r = rig(vec![DpAction::Output(VM)]);
    r.ch.cmds.push(Command::Remove(1)).ok().unwrap();
    execute(&mut r, &encap(&inner(), 1));
    let c = r.w.counters().clone();
    assert_eq!((c.recirculations, c.misses, c.upcalls), (1, 1, 1));
    let u = r.ch.upcalls.pop().unwrap();
    assert_eq!(u.in_port, TUN);
    assert_eq!(u.tun.map(|t| t.tun_id), Some(5001));
    assert_eq!(u.frame.bytes(), &inner()[..]);
    assert_eq!(r.w.free_buffers(), r.cfg.buffers);
}

#[test]
fn nested_pops_stop_at_the_recirculation_limit() {
    // Every decapsulated packet is popped again: the pop after MAX_RECIRC - 1 recirculations
    // is dropped, as on the batch path.
    let mut r = rig(vec![DpAction::TunnelPop { port: TUN }]);
    execute(&mut r, &encap(&inner(), MAX_RECIRC as usize + 1));
    let c = r.w.counters().clone();
    assert_eq!(c.recirculations, MAX_RECIRC as u64);
    assert_eq!(c.dropped(DropReason::RecircLimit), 1);
    assert_eq!(c.total_drops(), 1);
    assert_eq!(r.vm_tx.len(), 0);
    assert_eq!(r.w.free_buffers(), r.cfg.buffers);
    // Within the limit: after the last real pop the plain inner frame meets the pop again and
    // is dropped as a bad tunnel packet (too short for UDP + VXLAN after its IP header),
    // never looped.
    let mut r = rig(vec![DpAction::TunnelPop { port: TUN }]);
    execute(&mut r, &encap(&inner(), MAX_RECIRC as usize - 1));
    let c = r.w.counters().clone();
    assert_eq!(c.recirculations, MAX_RECIRC as u64 - 1);
    assert_eq!(c.dropped(DropReason::RecircLimit), 0);
    assert_eq!(c.dropped(DropReason::TunnelTruncated), 1);
    assert_eq!(c.total_drops(), 1);
    assert_eq!(r.w.free_buffers(), r.cfg.buffers);
}
