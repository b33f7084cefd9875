//! The OpenFlow channel as an external controller sees it: strato connects out (`tcp:`), the
//! test plays the controller over a real socket. Packet-in from real traffic on memory ports,
//! packet-out, roles and generation ids, keepalive to a dead peer with reconnect, a barrier
//! that orders rule changes before traffic, fail mode standalone handing over to the
//! controller. (OpenFlow 1.0 and punix with the real `ovs-ofctl` are end-to-end tests:
//! tests/tests/ofctl_channel.rs.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_datapath::port::{FrameRing, MemPort, Port, PortKind};
use strato_datapath::worker::WorkerConfig;
use strato_flowtable::pipeline::{Pipeline, PortEnv};
use strato_openflow::v13::{
    Action, Body, ErrorMsg, FlowMod, HelloElem, Instruction, Match, Message, Oxm, OxmField,
    PacketOut,
};
use strato_switch::controller::{start, Running};
use strato_switch::learning::BASE_COOKIE;
use strato_switch::ofchannel::FailMode;
use strato_switch::ofchannel::{self, ControllerOpenFlow, OfConfig};

const WAIT: Duration = Duration::from_secs(10);

fn udp(src: u8, dst: u8) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, src], [2, 0, 0, 0, 0, dst])
        .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
        .udp(1000, 9);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 18]).unwrap();
    v
}

struct Switch {
    run: Running,
    rx: Vec<Arc<FrameRing>>,
    tx: Vec<Arc<FrameRing>>,
}

impl Switch {
    fn new(n: u32, cfg: OfConfig) -> Switch {
        let mut env = PortEnv::default();
        for i in 1..=n {
            env.add_port(i, true, true);
        }
        let run = start(Pipeline::default(), env, vec![WorkerConfig::default()]).unwrap();
        ofchannel::configure(&run.handle, cfg).unwrap();
        let (mut rx, mut tx, mut ports) = (Vec::new(), Vec::new(), Vec::new());
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
            .unwrap();
        run.handle.sync().unwrap();
        Switch { run, rx, tx }
    }

    fn inject(&self, port: u32, f: &[u8]) {
        self.rx[port as usize - 1].push(f).unwrap();
    }

    /// Waits for `n` frames out of `port`.
    fn collect(&self, port: u32, n: usize) -> Vec<Vec<u8>> {
        let t = Instant::now();
        let mut v = Vec::new();
        while v.len() < n && t.elapsed() < WAIT {
            v.extend(self.tx[port as usize - 1].drain());
            std::thread::sleep(Duration::from_millis(1));
        }
        v
    }
}

/// The test's side of a controller connection.
struct Peer {
    s: TcpStream,
    /// Messages read while waiting for a reply (async ones), returned by later reads.
    pending: std::collections::VecDeque<Message>,
}

impl Peer {
    fn accept(l: &TcpListener) -> Peer {
        l.set_nonblocking(false).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut p = Peer {
            s,
            pending: Default::default(),
        };
        let hello = p.read().expect("switch hello");
        assert_eq!(hello.body.clone(), hello.body);
        assert!(matches!(hello.body, Body::Hello(_)), "{hello:?}");
        p.send(Message::new(
            1,
            Body::Hello(vec![HelloElem::VersionBitmap(vec![1 << 4])]),
        ));
        p
    }

    fn send(&mut self, m: Message) {
        self.s.write_all(&m.emit()).unwrap();
    }

    fn read(&mut self) -> Option<Message> {
        if let Some(m) = self.pending.pop_front() {
            return Some(m);
        }
        self.read_wire()
    }

    fn read_wire(&mut self) -> Option<Message> {
        let mut h = [0u8; 8];
        self.s.read_exact(&mut h).ok()?;
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut b = h.to_vec();
        b.resize(len, 0);
        self.s.read_exact(&mut b[8..]).ok()?;
        Some(Message::parse(&b).unwrap())
    }

    /// Reads until a message with `xid` (skipping async messages), returns it.
    fn reply(&mut self, xid: u32) -> Message {
        loop {
            let m = self.read_wire().expect("reply");
            if m.xid == xid {
                return m;
            }
            if let Body::Error(e) = &m.body {
                panic!("unexpected error for xid {}: {e:?}", m.xid);
            }
            self.pending.push_back(m);
        }
    }

    fn barrier(&mut self, xid: u32) {
        self.send(Message::new(xid, Body::BarrierRequest));
        let r = self.reply(xid);
        assert_eq!(r.body, Body::BarrierReply, "{r:?}");
    }
}

fn flow(priority: u16, fields: Vec<Oxm>, actions: Vec<Action>, cookie: u64) -> Body {
    Body::FlowMod(FlowMod {
        cookie,
        cookie_mask: 0,
        table_id: 0,
        command: 0,
        idle_timeout: 0,
        hard_timeout: 0,
        priority,
        buffer_id: 0xffff_ffff,
        out_port: 0xffff_ffff,
        out_group: 0xffff_ffff,
        flags: 0,
        match_: Match { fields },
        instructions: vec![Instruction::ApplyActions(actions)],
    })
}

fn output(port: u32) -> Action {
    Action::Output {
        port,
        max_len: 0xffff,
    }
}

fn std_error(m: &Message) -> (u16, u16) {
    match &m.body {
        Body::Error(ErrorMsg::Standard { type_, code, .. }) => (*type_, *code),
        b => panic!("expected an error, got {b:?}"),
    }
}

#[test]
fn controller_packet_in_packet_out_roles_and_barrier() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp:{}", l.local_addr().unwrap());
    let sw = Switch::new(3, OfConfig::default());
    ofchannel::set_controllers(&sw.run.handle, &[target]).unwrap();
    let mut c = Peer::accept(&l);

    c.send(Message::new(2, Body::FeaturesRequest));
    match c.reply(2).body {
        Body::FeaturesReply(f) => assert_eq!((f.n_buffers, f.datapath_id), (0, 1)),
        b => panic!("{b:?}"),
    }
    // Table-miss to the controller, as Ryu's apps install it.
    c.send(Message::new(
        3,
        flow(0, vec![], vec![output(0xffff_fffd)], 0x77),
    ));
    c.barrier(4);
    let f = udp(1, 2);
    sw.inject(1, &f);
    let pin = loop {
        let m = c.read().expect("packet_in");
        if let Body::PacketIn(p) = m.body {
            break p;
        }
    };
    assert_eq!(pin.buffer_id, 0xffff_ffff);
    assert_eq!(pin.data, f);
    assert_eq!(pin.total_len as usize, f.len());
    assert_eq!(pin.cookie, 0x77);
    assert_eq!(
        pin.match_.fields,
        vec![Oxm::basic(OxmField::InPort, 1)],
        "packet_in carries OXM in_port"
    );

    // Packet-out to port 3, and to FLOOD (everything but the in_port 1).
    c.send(Message::new(
        5,
        Body::PacketOut(PacketOut {
            buffer_id: 0xffff_ffff,
            in_port: 1,
            actions: vec![output(3)],
            data: f.clone(),
        }),
    ));
    c.barrier(6);
    assert_eq!(sw.collect(3, 1), vec![f.clone()]);
    c.send(Message::new(
        7,
        Body::PacketOut(PacketOut {
            buffer_id: 0xffff_ffff,
            in_port: 1,
            actions: vec![output(0xffff_fffb)],
            data: f.clone(),
        }),
    ));
    c.barrier(8);
    assert_eq!(sw.collect(2, 1).len(), 1);
    assert_eq!(sw.collect(3, 1).len(), 1);
    assert!(sw.tx[0].is_empty(), "flood skips the in_port");
    // A buffered packet-out is refused: strato has no buffers.
    c.send(Message::new(
        9,
        Body::PacketOut(PacketOut {
            buffer_id: 5,
            in_port: 1,
            actions: vec![output(3)],
            data: vec![],
        }),
    ));
    assert_eq!(std_error(&c.reply(9)), (1, 8));

    // Barrier ordering: a rule change then a barrier; every packet after it takes the rule.
    c.send(Message::new(
        10,
        flow(
            100,
            vec![Oxm::basic(OxmField::InPort, 1)],
            vec![output(2)],
            0x88,
        ),
    ));
    c.barrier(11);
    for _ in 0..50 {
        sw.inject(1, &f);
    }
    assert_eq!(sw.collect(2, 50).len(), 50);
    c.send(Message::new(
        12,
        flow(
            100,
            vec![Oxm::basic(OxmField::InPort, 1)],
            vec![output(3)],
            0x88,
        ),
    ));
    c.barrier(13);
    for _ in 0..50 {
        sw.inject(1, &f);
    }
    assert_eq!(sw.collect(3, 50).len(), 50);
    assert!(
        sw.tx[1].is_empty(),
        "no packet after the barrier used the old rule"
    );

    // Packet-in from a later table carries that table, its rule's cookie and the metadata the
    // pipeline wrote on the way.
    let Body::FlowMod(mut fm) = flow(300, vec![Oxm::basic(OxmField::InPort, 2)], vec![], 0x99)
    else {
        unreachable!()
    };
    fm.instructions = vec![
        Instruction::WriteMetadata {
            metadata: 0x42,
            mask: u64::MAX,
        },
        Instruction::GotoTable(1),
    ];
    c.send(Message::new(14, Body::FlowMod(fm)));
    let Body::FlowMod(mut fm) = flow(1, vec![], vec![output(0xffff_fffd)], 0x98) else {
        unreachable!()
    };
    fm.table_id = 1;
    c.send(Message::new(15, Body::FlowMod(fm)));
    c.barrier(16);
    sw.inject(2, &udp(2, 1));
    let pin = loop {
        if let Body::PacketIn(p) = c.read().expect("packet_in").body {
            break p;
        }
    };
    assert_eq!((pin.table_id, pin.cookie), (1, 0x98));
    assert_eq!(
        pin.match_.fields,
        vec![
            Oxm::basic(OxmField::InPort, 2),
            Oxm::basic(OxmField::Metadata, 0x42)
        ]
    );

    // Roles: SLAVE cannot change state; a stale generation is refused; MASTER can again.
    c.send(Message::new(
        20,
        Body::RoleRequest {
            role: 3,
            generation_id: 10,
        },
    ));
    assert_eq!(
        c.reply(20).body,
        Body::RoleReply {
            role: 3,
            generation_id: 10
        }
    );
    c.send(Message::new(21, flow(5, vec![], vec![], 0)));
    assert_eq!(std_error(&c.reply(21)), (1, 10), "IS_SLAVE");
    c.send(Message::new(
        22,
        Body::RoleRequest {
            role: 2,
            generation_id: 9,
        },
    ));
    assert_eq!(std_error(&c.reply(22)), (11, 0), "STALE");
    c.send(Message::new(
        23,
        Body::RoleRequest {
            role: 2,
            generation_id: 11,
        },
    ));
    assert_eq!(
        c.reply(23).body,
        Body::RoleReply {
            role: 2,
            generation_id: 11
        }
    );
    c.send(Message::new(24, flow(5, vec![], vec![], 0)));
    c.barrier(25);
    sw.run.stop();
}

#[test]
fn second_master_demotes_the_first_and_dead_peers_reconnect() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let sw = Switch::new(
        2,
        OfConfig {
            probe_interval: Duration::from_millis(300),
            ..OfConfig::default()
        },
    );
    ofchannel::set_controllers(
        &sw.run.handle,
        &[
            format!("tcp:{}", l1.local_addr().unwrap()),
            format!("tcp:{}", l2.local_addr().unwrap()),
        ],
    )
    .unwrap();
    let mut a = Peer::accept(&l1);
    let mut b = Peer::accept(&l2);
    let role = |p: &mut Peer, xid: u32, role: u32, gen: u64| {
        p.send(Message::new(
            xid,
            Body::RoleRequest {
                role,
                generation_id: gen,
            },
        ));
        p.reply(xid)
    };
    assert!(matches!(
        role(&mut a, 1, 2, 1).body,
        Body::RoleReply { role: 2, .. }
    ));
    assert!(matches!(
        role(&mut b, 1, 3, 1).body,
        Body::RoleReply { role: 3, .. }
    ));
    // b takes over: a is demoted to SLAVE (NOCHANGE reports the current role).
    assert!(matches!(
        role(&mut b, 2, 2, 2).body,
        Body::RoleReply { role: 2, .. }
    ));
    assert!(matches!(
        role(&mut a, 2, 0, 0).body,
        Body::RoleReply { role: 3, .. }
    ));

    // a stops answering: after the probe interval it gets an ECHO_REQUEST, after another it is
    // closed, and strato reconnects (backoff starts at 1 s).
    let t = Instant::now();
    let mut saw_echo = false;
    while let Some(m) = a.read() {
        if matches!(m.body, Body::EchoRequest(_)) {
            saw_echo = true;
        }
        assert!(t.elapsed() < WAIT, "dead peer never closed");
    }
    assert!(saw_echo, "keepalive probe sent before closing");
    let _a2 = Peer::accept(&l1);
    assert!(t.elapsed() < WAIT);
    // b kept answering its probes and is still connected.
    let h = sw.run.handle.clone();
    let conns = h.call(|c| c.openflow().connections()).unwrap();
    assert_eq!(conns.len(), 2, "{conns:?}");
    sw.run.stop();
}

#[test]
fn standalone_learns_until_a_controller_connects() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp:{}", l.local_addr().unwrap());
    let sw = Switch::new(
        2,
        OfConfig {
            fail_mode: FailMode::Standalone,
            ..OfConfig::default()
        },
    );
    let learning_rules = |sw: &Switch| {
        sw.run
            .handle
            .call(|c| {
                c.pipeline()
                    .rules()
                    .filter(|r| r.cookie == BASE_COOKIE)
                    .count()
            })
            .unwrap()
    };
    let t = Instant::now();
    while learning_rules(&sw) == 0 {
        assert!(t.elapsed() < WAIT, "standalone never started learning");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Standalone forwards by itself.
    sw.inject(1, &udp(1, 2));
    assert_eq!(sw.collect(2, 1).len(), 1);
    ofchannel::set_controllers(&sw.run.handle, &[target]).unwrap();
    let _c = Peer::accept(&l);
    let t = Instant::now();
    while learning_rules(&sw) != 0 {
        assert!(
            t.elapsed() < WAIT,
            "learning rules stayed with a controller up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    sw.run.stop();
}

#[test]
fn port_status_and_flow_removed_reach_the_controller() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp:{}", l.local_addr().unwrap());
    let sw = Switch::new(2, OfConfig::default());
    ofchannel::set_controllers(&sw.run.handle, &[target]).unwrap();
    let mut c = Peer::accept(&l);
    c.barrier(1);

    // A port added while connected: PORT_STATUS ADD with its number and name.
    let (r, t) = (FrameRing::new(64), FrameRing::new(64));
    sw.run
        .handle
        .call(move |ctl| {
            ctl.add_port(
                0,
                Port::new(7, "p7".to_string(), PortKind::Memory(MemPort::rings(r, t))),
            )
        })
        .unwrap();
    let (reason, desc) = loop {
        match c.read().expect("port_status").body {
            Body::PortStatus { reason, desc } => break (reason, desc),
            _ => continue,
        }
    };
    assert_eq!((reason, desc.port_no), (0, 7));
    assert_eq!(&desc.name[..3], b"p7\0");
    // ... and removed: PORT_STATUS DELETE.
    assert!(sw.run.handle.call(|ctl| ctl.del_port(7)).unwrap());
    let (reason, desc) = loop {
        match c.read().expect("port_status").body {
            Body::PortStatus { reason, desc } => break (reason, desc),
            _ => continue,
        }
    };
    assert_eq!((reason, desc.port_no), (1, 7));

    // FLOW_REMOVED: a flow with SEND_FLOW_REM deleted by a flow_mod (reason DELETE), one with a
    // 1 s hard timeout (reason HARD_TIMEOUT); one without the flag is removed silently.
    let with_flag = |priority: u16, hard: u16, cookie: u64| {
        let Body::FlowMod(mut fm) = flow(
            priority,
            vec![Oxm::basic(OxmField::InPort, 1)],
            vec![output(2)],
            cookie,
        ) else {
            unreachable!()
        };
        fm.flags = 1;
        fm.hard_timeout = hard;
        Body::FlowMod(fm)
    };
    c.send(Message::new(2, with_flag(10, 0, 0xa)));
    c.send(Message::new(3, with_flag(20, 1, 0xb)));
    c.send(Message::new(4, flow(30, vec![], vec![], 0xc)));
    c.barrier(5);
    let mut del = match flow(10, vec![Oxm::basic(OxmField::InPort, 1)], vec![], 0xa) {
        Body::FlowMod(fm) => fm,
        _ => unreachable!(),
    };
    del.command = 4; // DELETE_STRICT
    c.send(Message::new(6, Body::FlowMod(del)));
    let mut del_c = match flow(30, vec![], vec![], 0xc) {
        Body::FlowMod(fm) => fm,
        _ => unreachable!(),
    };
    del_c.command = 4;
    c.send(Message::new(7, Body::FlowMod(del_c)));
    c.barrier(8);
    let mut seen = Vec::new();
    let t = Instant::now();
    while seen.len() < 2 {
        assert!(t.elapsed() < WAIT, "flow_removed missing: {seen:?}");
        if let Body::FlowRemoved(r) = c.read().expect("flow_removed").body {
            seen.push((r.cookie, r.reason, r.priority));
        }
    }
    assert_eq!(seen, vec![(0xa, 2, 10), (0xb, 1, 20)]);
    sw.run.stop();
}
