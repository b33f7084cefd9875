//! Scenario tests over memory ports: a real controller thread and real worker threads, driven
//! by frames pushed into port rings and checked on the frames that come out and on counters.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_datapath::port::{FrameRing, MemPort, Port, PortKind};
use strato_datapath::stats::DropReason;
use strato_datapath::worker::{
    Command, IdlePolicy, Notifier, Worker, WorkerChannels, WorkerConfig,
};
use strato_flowtable::key::{mac_to_u64, Field};
use strato_flowtable::pipeline::{Action, OfPort, Pipeline, PortEnv, RuleFilter};
use strato_flowtable::{DpAction, Match};
use strato_labs::demo;
use strato_switch::controller::start;
use support::mem::{mac, udp, Switch};

fn cfg() -> WorkerConfig {
    WorkerConfig {
        emc_insert_inv_prob: 1,
        smc_entries: 1 << 12,
        megaflow_capacity: 1 << 14,
        buffers: 2048,
        idle: IdlePolicy::Backoff { max_sleep_us: 200 },
        ..WorkerConfig::default()
    }
}

fn l2_pipeline() -> Pipeline {
    let mut p = Pipeline::default();
    for port in 1..=3u32 {
        let m = Match::default().with(Field::EthDst, mac_to_u64(&mac(port as u8)) as u128);
        p.add_apply(0, 100, m, vec![Action::Output(OfPort::Port(port))])
            .unwrap();
    }
    p
}

#[test]
fn misses_are_installed_and_no_packet_is_lost() {
    let sw = Switch::new(l2_pipeline(), 3, cfg());
    // 8 flows x 50 packets from port 1 to host 2 (port 2) and host 3 (port 3), sent at once:
    // many packets of a flow miss before its megaflow arrives; every one must still arrive.
    for _ in 0..50 {
        for f in 0..8u16 {
            sw.inject(1, &udp(1, 2 + (f % 2) as u8, 1000 + f));
        }
    }
    let to2 = sw.collect(2, 200);
    let to3 = sw.collect(3, 200);
    assert_eq!((to2.len(), to3.len()), (200, 200));
    assert!(to2.iter().all(|f| f[0..6] == mac(2)));
    let c = sw.counters();
    assert_eq!(c.rx_packets, 400);
    assert_eq!(c.total_drops(), 0, "{c:?}");
    // Every packet either hit a cache or went up and was re-injected.
    assert_eq!(
        c.emc_hits + c.smc_hits + c.megaflow_hits + c.misses + c.stale_hits,
        400
    );
    assert_eq!(c.executed, c.upcalls);
    // The megaflows consult in_port and dl_dst only (the rules' mask): two megaflows.
    let flows = sw.run.handle.dump_flows().unwrap();
    assert_eq!(flows[0].flows.len(), 2, "{:?}", flows[0].flows);
    for f in &flows[0].flows {
        assert_eq!(
            *f.m.mask(),
            *Match::default()
                .with(Field::InPort, 0xffff_ffff)
                .with(Field::EthDst, (1u128 << 48) - 1)
                .mask()
        );
    }
    // Second round: all hits, no upcalls.
    let before = sw.counters();
    for _ in 0..20 {
        sw.inject(1, &udp(1, 2, 1000));
    }
    assert_eq!(sw.collect(2, 20).len(), 20);
    let after = sw.counters();
    assert_eq!(after.upcalls, before.upcalls, "no upcalls once cached");
    assert_eq!(
        after.emc_hits - before.emc_hits + after.smc_hits - before.smc_hits + after.megaflow_hits
            - before.megaflow_hits,
        20
    );
}

#[test]
fn exact_match_cache_hit_deltas() {
    let sw = Switch::new(l2_pipeline(), 3, cfg());
    sw.inject(1, &udp(1, 2, 7));
    assert_eq!(sw.collect(2, 1).len(), 1);
    let c0 = sw.counters();
    assert_eq!((c0.misses, c0.upcalls, c0.emc_hits), (1, 1, 0));
    sw.inject(1, &udp(1, 2, 7));
    assert_eq!(sw.collect(2, 1).len(), 1);
    let c1 = sw.counters();
    // First packet after install: classifier hit, inserted into the EMC (insert probability 1).
    assert_eq!(
        (
            c1.megaflow_hits - c0.megaflow_hits,
            c1.emc_hits - c0.emc_hits
        ),
        (1, 0)
    );
    sw.inject(1, &udp(1, 2, 7));
    assert_eq!(sw.collect(2, 1).len(), 1);
    let c2 = sw.counters();
    assert_eq!(
        (
            c2.emc_hits - c1.emc_hits,
            c2.megaflow_hits - c1.megaflow_hits,
            c2.upcalls - c1.upcalls
        ),
        (1, 0, 0)
    );
    // Another flow of the same megaflow (other source port): SMC/EMC miss, classifier hit.
    sw.inject(1, &udp(1, 2, 8));
    assert_eq!(sw.collect(2, 1).len(), 1);
    let c3 = sw.counters();
    assert_eq!(
        (c3.megaflow_hits - c2.megaflow_hits, c3.upcalls - c2.upcalls),
        (1, 0)
    );
}

#[test]
fn rule_change_then_barrier_redirects_every_later_packet() {
    let sw = Switch::new(l2_pipeline(), 3, cfg());
    for _ in 0..20 {
        sw.inject(1, &udp(1, 2, 5));
    }
    assert_eq!(sw.collect(2, 20).len(), 20);
    // Cached now. Redirect dl_dst=host2 to port 3 at a higher priority, then barrier.
    sw.run
        .handle
        .update(|p, _| {
            let m = Match::default().with(Field::EthDst, mac_to_u64(&mac(2)) as u128);
            p.add_apply(0, 200, m, vec![Action::Output(OfPort::Port(3))])
                .unwrap();
        })
        .unwrap();
    for _ in 0..50 {
        sw.inject(1, &udp(1, 2, 5));
    }
    let out = sw.settle();
    assert_eq!(
        out[1].len(),
        0,
        "no packet after the barrier may use the old megaflow"
    );
    assert_eq!(out[2].len(), 50);
    // Deleting the rule brings the old behaviour back.
    sw.run
        .handle
        .update(|p, _| {
            let m = Match::default().with(Field::EthDst, mac_to_u64(&mac(2)) as u128);
            p.delete(&RuleFilter::strict(0, m, 200)).unwrap();
        })
        .unwrap();
    for _ in 0..10 {
        sw.inject(1, &udp(1, 2, 5));
    }
    let out = sw.settle();
    assert_eq!((out[1].len(), out[2].len()), (10, 0));
    let st = sw.run.handle.call(|c| c.stats()).unwrap();
    assert!(
        st.revalidations >= 2 && st.revalidated_updates + st.revalidated_deletes >= 1,
        "{st:?}"
    );
}

#[test]
fn revalidation_under_continuous_traffic_never_uses_a_stale_megaflow() {
    let sw = Switch::new(l2_pipeline(), 3, cfg());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ring = sw.rx[0].clone();
    let s2 = stop.clone();
    let sender = std::thread::spawn(move || {
        let f = udp(1, 2, 77);
        let mut sent = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            if ring.push(&f).is_ok() {
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(50));
    sw.run
        .handle
        .update(|p, _| {
            let m = Match::default().with(Field::EthDst, mac_to_u64(&mac(2)) as u128);
            p.add_apply(0, 200, m, vec![Action::Output(OfPort::Port(3))])
                .unwrap();
        })
        .unwrap();
    // Everything still queued in port 2's output was decided before the barrier; drop it.
    let before_barrier = sw.tx[1].drain().len();
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let out = sw.settle();
    assert!(before_barrier > 0, "traffic flowed before the change");
    assert_eq!(
        out[1].len(),
        0,
        "a packet left by the old port after the barrier"
    );
    assert!(!out[2].is_empty());
    assert_eq!(
        before_barrier as u64 + out[2].len() as u64,
        sent,
        "nothing lost"
    );
}

#[test]
fn flood_uses_split_horizon() {
    let mut p = Pipeline::default();
    p.add_apply(0, 0, Match::default(), vec![Action::Output(OfPort::Flood)])
        .unwrap();
    let sw = Switch::new(p, 4, cfg());
    for _ in 0..5 {
        sw.inject(2, &udp(2, 9, 1));
    }
    let out = sw.settle();
    assert_eq!(
        out.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![5, 0, 5, 5]
    );
    let c = sw.counters();
    assert_eq!(c.total_drops(), 0);
}

#[test]
fn bad_frames_are_counted_and_never_stop_the_worker() {
    let mut p = Pipeline::default();
    // Plain L2: everything from port 1 to port 2.
    p.add_apply(
        0,
        0,
        Match::default().with(Field::InPort, 1),
        vec![Action::Output(OfPort::Port(2))],
    )
    .unwrap();
    let sw = Switch::new(p, 2, cfg());
    sw.inject(1, &[0u8; 10]); // truncated Ethernet
    sw.inject(1, &vec![0u8; 3000]); // larger than a buffer
    let mut bad_ihl = udp(1, 2, 1);
    bad_ihl[14] = 0x43; // IHL 3
    sw.inject(1, &bad_ihl);
    let mut unknown = udp(1, 2, 1);
    unknown[12..14].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental ethertype
    sw.inject(1, &unknown);
    let mut short_ip = udp(1, 2, 1);
    short_ip.truncate(30);
    sw.inject(1, &short_ip);
    sw.inject(1, &udp(1, 2, 1));
    let out = sw.settle();
    // Malformed L3 and unknown ethertypes are switched as plain L2.
    assert_eq!(out[1].len(), 4);
    let c = sw.counters();
    assert_eq!(c.dropped(DropReason::TruncatedEthernet), 1);
    assert_eq!(c.dropped(DropReason::Oversize), 1);
    assert_eq!(c.malformed_l3, 2);
    assert_eq!(c.total_drops(), 2);
}

#[test]
fn two_hosts_two_tenants_over_vxlan() {
    let lab = demo::build().unwrap();
    for t in 0..2 {
        for host in 0..2 {
            let d = lab.send(t, host, 20).unwrap();
            assert_eq!((d.same_tenant, d.other_tenants), (20, 0), "{d:?}");
        }
    }
    let counters = lab.counters().unwrap();
    for (w, ports) in counters {
        assert_eq!(w.total_drops(), 0, "{w:?}");
        assert!(w.recirculations >= 40, "{w:?}");
        let underlay = ports.iter().find(|p| p.0 == demo::UNDERLAY).unwrap();
        assert_eq!(
            underlay.2.tx_packets, 40,
            "each host encapsulates its VMs' 40 frames"
        );
        assert_eq!(underlay.2.rx_packets, 40);
    }
}

/// Drives a worker inline (no threads) to check queue-full behaviour and frame accounting.
#[test]
fn full_upcall_queue_is_counted_and_buffers_balance() {
    let cfg = WorkerConfig {
        upcall_queue: 4,
        idle: IdlePolicy::BusyPoll,
        ..WorkerConfig::default()
    };
    let ch = WorkerChannels::new(&cfg, Arc::new(Notifier::default()));
    let mut w = Worker::new(cfg.clone(), ch.clone());
    let (rx, tx) = (FrameRing::new(64), FrameRing::new(64));
    w.add_port(Port::new(
        1,
        "p1",
        PortKind::Memory(MemPort::rings(rx.clone(), tx.clone())),
    ));
    for i in 0..10 {
        rx.push(&udp(1, 2, i)).unwrap();
    }
    w.poll_once();
    let c = w.counters().clone();
    assert_eq!(c.upcalls, 4);
    assert_eq!(c.dropped(DropReason::UpcallQueueFull), 6);
    assert_eq!(
        w.free_buffers(),
        cfg.buffers,
        "every buffer back in the pool"
    );
    // The controller side: answer one upcall by installing a drop megaflow and re-injecting.
    let u = ch.upcalls.pop().unwrap();
    let m = Match::new(
        u.key.key,
        *Match::default().with(Field::InPort, 0xffff_ffff).mask(),
    );
    ch.cmds
        .push(Command::Install {
            id: 1,
            m: Box::new(m),
            actions: vec![DpAction::Output(1)].into(),
            version: 0,
        })
        .ok()
        .unwrap();
    ch.cmds
        .push(Command::Execute {
            in_port: 1,
            tun: None,
            frame: u.frame,
            actions: vec![DpAction::Output(1)].into(),
        })
        .ok()
        .unwrap();
    w.poll_once();
    assert_eq!(tx.len(), 1, "re-injected packet sent");
    rx.push(&udp(1, 2, 99)).unwrap();
    w.poll_once();
    assert_eq!(tx.len(), 2, "new flow hits the installed megaflow");
    assert_eq!(w.free_buffers(), cfg.buffers);
    // Stale entries are never used: a version bump without a verdict makes the entry a miss.
    let before = w.counters().clone();
    ch.cmds
        .push(Command::Revalidate {
            version: 1,
            ops: vec![],
        })
        .ok()
        .unwrap();
    rx.push(&udp(1, 2, 99)).unwrap();
    w.poll_once();
    let after = w.counters().clone();
    assert_eq!(tx.len(), 2, "stale megaflow not used");
    assert_eq!(after.stale_hits - before.stale_hits, 1);
}

#[test]
fn rule_counters_follow_traffic_and_idle_rules_expire() {
    use strato_flowtable::pipeline::{AddOptions, Instructions, RuleSpec};
    let mut p = Pipeline::default();
    let m = Match::default().with(Field::EthDst, mac_to_u64(&mac(2)) as u128);
    let mut spec = RuleSpec::new(
        0,
        m,
        100,
        Instructions::apply(vec![Action::Output(OfPort::Port(2))]),
    );
    spec.idle_timeout = 1;
    let id = p.add(spec, AddOptions::default(), 0).unwrap().id;
    let sw = Switch::new(p, 2, cfg());
    for _ in 0..30 {
        sw.inject(1, &udp(1, 2, 3));
    }
    assert_eq!(sw.collect(2, 30).len(), 30);
    // Counters reach the rule at the controller's next tick (megaflow stats are pulled).
    let t = Instant::now();
    let mut credited = 0;
    while t.elapsed() < Duration::from_secs(4) {
        credited = sw
            .run
            .handle
            .call(move |c| c.pipeline().get(id).map(|r| r.packets))
            .unwrap()
            .unwrap_or(0);
        if credited >= 30 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Packets that went up are credited by the controller, the rest through megaflow stats.
    assert_eq!(credited, 30, "rule credited with {credited} packets");
    // Idle for over a second: the rule expires, the megaflow is revalidated away, and traffic
    // now misses (table-miss: drop).
    let t = Instant::now();
    while sw.run.handle.call(|c| c.stats().expired).unwrap() == 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "rule never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    sw.run.handle.sync().unwrap();
    sw.inject(1, &udp(1, 2, 3));
    let out = sw.settle();
    assert_eq!(out[1].len(), 0);
    assert!(sw
        .run
        .handle
        .call(move |c| c.pipeline().get(id).is_none())
        .unwrap());
}

/// A VXLAN frame from 192.168.100.2 to the local VTEP 192.168.100.1 (UDP checksum set, as
/// Linux sends it), with chosen flags and destination port.
fn vxlan(inner: &[u8], vni: u32, flags: u8, dport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0xee, 2], [2, 0, 0, 0, 0xee, 1])
        .ipv4([192, 168, 100, 2], [192, 168, 100, 1], 64)
        .udp(50_000, dport);
    let mut payload = vec![flags, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(inner);
    let mut v = Vec::new();
    b.write(&mut v, &payload).unwrap();
    v
}

#[test]
fn vxlan_bad_input_is_counted_or_switched_as_plain_l2() {
    use strato_flowtable::pipeline::TunnelPortCfg;
    // Port 1: a VM. Port 2: the underlay. Port 3: where plain (non-tunnel) underlay traffic goes.
    let mut p = Pipeline::default();
    let from_tunnel = Match::default()
        .with(Field::InPort, 10)
        .with(Field::TunId, 5001);
    p.add_apply(0, 100, from_tunnel, vec![Action::Output(OfPort::Port(1))])
        .unwrap();
    p.add_apply(
        0,
        10,
        Match::default().with(Field::InPort, 2),
        vec![Action::Output(OfPort::Port(3))],
    )
    .unwrap();
    let sw = Switch::with_env(p, 3, cfg(), |env| {
        env.add_tunnel(TunnelPortCfg::new(
            10,
            2,
            "192.168.100.1".parse().unwrap(),
            [2, 0, 0, 0, 0xee, 1],
        ));
    });
    let inner = udp(5, 6, 77);
    sw.inject(2, &vxlan(&inner, 5001, 0x08, 4789)); // good
    sw.inject(2, &vxlan(&inner, 5001, 0x00, 4789)); // I flag missing
    let mut bad_csum = vxlan(&inner, 5001, 0x08, 4789);
    let last = bad_csum.len() - 1;
    bad_csum[last] ^= 0xff; // payload byte changed: UDP checksum no longer matches
    sw.inject(2, &bad_csum);
    let mut bad_ip = vxlan(&inner, 5001, 0x08, 4789);
    bad_ip[24] ^= 0x01; // outer IPv4 header checksum broken
    sw.inject(2, &bad_ip);
    sw.inject(2, &vxlan(&inner, 5001, 0x08, 4790)); // not VXLAN's port: plain L2
    sw.inject(2, &vxlan(&inner, 7777, 0x08, 4789)); // unknown VNI: decapsulated, no rule: dropped
    let out = sw.settle();
    assert_eq!(
        out[0],
        vec![inner.clone()],
        "only the good frame reaches the VM, decapsulated"
    );
    assert_eq!(
        out[2].len(),
        1,
        "the frame to port 4790 is switched as plain L2"
    );
    let c = sw.counters();
    assert_eq!(c.dropped(DropReason::VxlanBadFlags), 1);
    assert_eq!(c.dropped(DropReason::TunnelBadUdp), 1);
    assert_eq!(c.dropped(DropReason::TunnelBadIp), 1);
    assert_eq!(
        c.dropped(DropReason::Policy),
        1,
        "unknown VNI hits the table-miss drop"
    );
    assert_eq!(c.total_drops(), 4, "{c:?}");
}

#[test]
fn learning_switch_floods_learns_and_then_forwards() {
    use strato_switch::learning::{Learning, LEARNED_COOKIE};
    let sw = Switch::new(Pipeline::default(), 3, cfg());
    sw.run
        .handle
        .call(|c| Learning::default().enable(c))
        .unwrap()
        .unwrap();
    sw.run.handle.sync().unwrap();
    // h1 -> h2, both unknown: flooded to 2 and 3, never back to 1.
    sw.inject(1, &udp(1, 2, 1));
    let out = sw.settle();
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), vec![0, 1, 1]);
    // h2 answers: h1 is known, so only port 1 gets it.
    sw.inject(2, &udp(2, 1, 1));
    let out = sw.settle();
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 0, 0]);
    // Now both are known: h1 -> h2 goes to port 2 only, for every packet.
    for i in 0..10 {
        sw.inject(1, &udp(1, 2, 100 + i));
    }
    let out = sw.settle();
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), vec![0, 10, 0]);
    // The learned MACs are ordinary rules (what dump-flows shows).
    let learned = sw
        .run
        .handle
        .call(|c| {
            c.pipeline()
                .rules()
                .filter(|r| r.cookie == LEARNED_COOKIE)
                .count()
        })
        .unwrap();
    assert_eq!(
        learned, 4,
        "two sources in table 0, two destinations in table 1"
    );
    assert_eq!(sw.counters().total_drops(), 0);
}

#[test]
fn ports_on_different_workers_reach_each_other() {
    use strato_switch::learning::Learning;
    let mut env = PortEnv::default();
    for i in 1..=3 {
        env.add_port(i, true, true);
    }
    let run = start(Pipeline::default(), env, vec![cfg(), cfg()]).unwrap();
    let rings: Vec<_> = (0..3)
        .map(|_| (FrameRing::new(256), FrameRing::new(256)))
        .collect();
    let ports: Vec<_> = rings
        .iter()
        .enumerate()
        .map(|(i, (rx, tx))| {
            Port::new(
                i as u32 + 1,
                format!("p{}", i + 1),
                PortKind::Memory(MemPort::rings(rx.clone(), tx.clone())),
            )
        })
        .collect();
    run.handle
        .call(move |c| {
            for (i, p) in ports.into_iter().enumerate() {
                c.add_port(i % 2, p); // ports 1 and 3 on worker 0, port 2 on worker 1
            }
            Learning::default().enable(c)
        })
        .unwrap()
        .unwrap();
    run.handle.sync().unwrap();
    let settle = || {
        run.handle.sync().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        run.handle.sync().unwrap();
        rings
            .iter()
            .map(|(_, tx)| tx.drain().len())
            .collect::<Vec<_>>()
    };
    rings[0].0.push(&udp(1, 2, 1)).unwrap(); // flooded: port 2 (other worker) and port 3
    assert_eq!(settle(), vec![0, 1, 1]);
    rings[1].0.push(&udp(2, 1, 1)).unwrap(); // worker 1 -> port 1 on worker 0
    assert_eq!(settle(), vec![1, 0, 0]);
    for i in 0..20 {
        rings[0].0.push(&udp(1, 2, 10 + i)).unwrap();
    }
    assert_eq!(settle(), vec![0, 20, 0]);
    let c = run.handle.call(|c| c.counters().0).unwrap();
    assert_eq!(c.total_drops(), 0, "{c:?}");
}
