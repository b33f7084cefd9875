//! The OpenFlow 1.3 channel over raw sockets: negotiation failure, errors on bad input and
//! connection survival. (Its checks against the real `ovs-ofctl` are end-to-end tests:
//! tests/tests/ofctl_channel.rs.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use strato_datapath::worker::WorkerConfig;
use strato_flowtable::pipeline::{Pipeline, PortEnv};
use strato_openflow::v13::{Body, ErrorMsg, Message};
use strato_switch::controller::start;
use strato_switch::ofchannel::listen;

fn read_msg(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h).ok()?;
    let len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let mut b = h.to_vec();
    b.resize(len.max(8), 0);
    s.read_exact(&mut b[8..]).ok()?;
    Some(b)
}

#[test]
fn raw_negotiation_errors_and_bad_lengths() {
    let running = start(
        Pipeline::default(),
        PortEnv::default(),
        vec![WorkerConfig::default()],
    )
    .unwrap();
    let ch = listen("ptcp:0:127.0.0.1", running.handle.clone()).unwrap();
    let addr = ch.local_addr();
    let connect = || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };

    // A 1.1-only peer (no version in common) is refused with HELLO_FAILED and closed.
    let mut s = connect();
    let hello = read_msg(&mut s).unwrap();
    assert_eq!((hello[0], hello[1]), (4, 0));
    s.write_all(&[2, 0, 0, 8, 0, 0, 0, 1]).unwrap();
    let e = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert!(
        matches!(
            e.body,
            Body::Error(ErrorMsg::Standard {
                type_: 0,
                code: 0,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(read_msg(&mut s).is_none());

    // A 1.3 peer: unknown type -> BAD_REQUEST/BAD_TYPE; the connection keeps working.
    let mut s = connect();
    read_msg(&mut s).unwrap();
    s.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).unwrap();
    s.write_all(&[4, 30, 0, 8, 0, 0, 0, 2]).unwrap();
    let e = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert_eq!(e.xid, 2);
    assert!(
        matches!(
            e.body,
            Body::Error(ErrorMsg::Standard {
                type_: 1,
                code: 1,
                ..
            })
        ),
        "{e:?}"
    );
    s.write_all(&[4, 2, 0, 12, 0, 0, 0, 3, 9, 8, 7, 6]).unwrap();
    let r = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert_eq!(r, Message::new(3, Body::EchoReply(vec![9, 8, 7, 6])));
    // A features request with a body is a bad length, answered, and the connection survives.
    s.write_all(&[4, 5, 0, 12, 0, 0, 0, 4, 0, 0, 0, 0]).unwrap();
    let e = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert!(
        matches!(
            e.body,
            Body::Error(ErrorMsg::Standard {
                type_: 1,
                code: 6,
                ..
            })
        ),
        "{e:?}"
    );
    s.write_all(&[4, 20, 0, 8, 0, 0, 0, 5]).unwrap();
    let r = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert_eq!(r, Message::new(5, Body::BarrierReply));
    // A length below the header size is answered with BAD_LEN, then closes only this
    // connection.
    s.write_all(&[4, 2, 0, 4, 0, 0, 0, 6]).unwrap();
    let e = Message::parse(&read_msg(&mut s).unwrap()).unwrap();
    assert!(
        matches!(
            e.body,
            Body::Error(ErrorMsg::Standard {
                type_: 1,
                code: 6,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(read_msg(&mut s).is_none());
    let mut s2 = connect();
    read_msg(&mut s2).unwrap();
    s2.write_all(&[4, 0, 0, 8, 0, 0, 0, 1, 4, 2, 0, 8, 0, 0, 0, 7])
        .unwrap();
    let r = Message::parse(&read_msg(&mut s2).unwrap()).unwrap();
    assert_eq!(r, Message::new(7, Body::EchoReply(vec![])));

    // Garbage with honest lengths never kills the channel: every message gets an answer or is
    // ignored, and an echo afterwards still works.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..500u32 {
        let len = 8 + (rnd() % 120) as usize;
        let mut m: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        m[0] = 4;
        m[1] = (rnd() % 32) as u8;
        if m[1] == 0 || m[1] == 20 {
            m[1] = 14; // not HELLO or BARRIER (a barrier would wait for the workers)
        }
        m[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        m[4..8].copy_from_slice(&i.to_be_bytes());
        s2.write_all(&m).unwrap();
    }
    s2.write_all(&[4, 2, 0, 8, 0xff, 0xff, 0xff, 0xff]).unwrap();
    loop {
        let r = Message::parse(&read_msg(&mut s2).unwrap()).unwrap();
        if r.xid == u32::MAX {
            assert_eq!(r.body, Body::EchoReply(vec![]));
            break;
        }
    }

    // Dropping the channel stops it: the connection closes and the port is free.
    drop(ch);
    assert!(read_msg(&mut s2).is_none());
    assert!(TcpStream::connect(addr).is_err());
    running.stop();
}
