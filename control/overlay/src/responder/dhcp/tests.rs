//! Tests of the DHCPv4 server: requests built with smoltcp's DHCP repr inside etherparse-built
//! Ethernet/IPv4/UDP (so the frame layers come from a second implementation), a real busybox
//! udhcpc DISCOVER captured in the responder lab, malformed inputs, and random frames.

use super::super::TestRng;
use super::*;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice, VlanId};
use smoltcp::wire::{DhcpFlags, EthernetAddress};
use std::collections::BTreeMap;

const SERVER_MAC: Mac = [0x02, 0, 0, 0, 0, 0xfe];
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 99);

fn config() -> DhcpConfig {
    DhcpConfig {
        server_ip: SERVER_IP,
        server_mac: SERVER_MAC,
        subnet: Ipv4Addr::new(10, 0, 0, 0),
        prefix_len: 24,
        router: Some(Ipv4Addr::new(10, 0, 0, 1)),
        dns_servers: vec![Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(192, 0, 2, 53)],
        host_routes: vec![HostRoute {
            destination: Ipv4Addr::new(192, 168, 100, 0),
            prefix_len: 24,
            nexthop: Ipv4Addr::new(10, 0, 0, 254),
        }],
        lease_time: 86400,
        mtu: Some(1450),
        domain: Some("openstacklocal".into()),
    }
}

fn server() -> DhcpServer {
    DhcpServer::new(config()).unwrap()
}

fn lookup(mac: Mac) -> Option<Ipv4Addr> {
    (mac == CLIENT_MAC).then_some(CLIENT_IP)
}

/// A client message: what the test varies.
#[derive(Clone)]
struct Msg {
    kind: DhcpMessageType,
    xid: u32,
    chaddr: Mac,
    ciaddr: Ipv4Addr,
    giaddr: Ipv4Addr,
    broadcast: bool,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    extra: Vec<(u8, Vec<u8>)>,
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    eth_src: Mac,
    vlan: Option<u16>,
}

fn msg(kind: DhcpMessageType) -> Msg {
    Msg {
        kind,
        xid: 0x1234_5678,
        chaddr: CLIENT_MAC,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        requested: None,
        server_id: None,
        extra: Vec::new(),
        ip_src: Ipv4Addr::UNSPECIFIED,
        ip_dst: Ipv4Addr::BROADCAST,
        eth_src: CLIENT_MAC,
        vlan: None,
    }
}

/// The DHCP payload of `m` (smoltcp's emitter).
fn dhcp_payload(m: &Msg) -> Vec<u8> {
    let extra: Vec<DhcpOption<'_>> = m
        .extra
        .iter()
        .map(|(k, d)| DhcpOption { kind: *k, data: d })
        .collect();
    let repr = DhcpRepr {
        message_type: m.kind,
        transaction_id: m.xid,
        secs: 3,
        client_hardware_address: EthernetAddress(m.chaddr),
        client_ip: m.ciaddr,
        your_ip: Ipv4Addr::UNSPECIFIED,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: m.giaddr,
        broadcast: m.broadcast,
        requested_ip: m.requested,
        client_identifier: None,
        server_identifier: m.server_id,
        parameter_request_list: Some(&[1, 3, 6, 15, 26, 28, 121]),
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &extra,
    };
    let mut b = vec![0; repr.buffer_len().max(300)];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut b[..]))
        .unwrap();
    b
}

/// `dhcp` in Ethernet/IPv4/UDP built by etherparse (with its checksums).
fn wrap(m: &Msg, dhcp: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(m.eth_src, BROADCAST_MAC);
    let mut out = Vec::new();
    match m.vlan {
        Some(v) => eth
            .single_vlan(VlanId::try_new(v).unwrap())
            .ipv4(m.ip_src.octets(), m.ip_dst.octets(), 64)
            .udp(68, 67)
            .write(&mut out, dhcp)
            .unwrap(),
        None => eth
            .ipv4(m.ip_src.octets(), m.ip_dst.octets(), 64)
            .udp(68, 67)
            .write(&mut out, dhcp)
            .unwrap(),
    }
    out
}

fn frame(m: &Msg) -> Vec<u8> {
    wrap(m, &dhcp_payload(m))
}

/// A reply taken apart (checksums checked with etherparse).
#[derive(Debug)]
struct Reply {
    eth_dst: Mac,
    eth_src: Mac,
    vlan: Option<u16>,
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    udp_src: u16,
    udp_dst: u16,
    ip_total: usize,
    dhcp: Vec<u8>,
}

impl Reply {
    fn parse(f: &[u8]) -> Reply {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
            panic!("{p:?}")
        };
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("{p:?}")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        let Some(TransportSlice::Udp(udp)) = &p.transport else {
            panic!("{p:?}")
        };
        let uh = udp.to_header();
        assert_eq!(
            uh.checksum,
            uh.calc_checksum_ipv4(&h, udp.payload()).unwrap(),
            "UDP checksum"
        );
        Reply {
            eth_dst: eth.destination(),
            eth_src: eth.source(),
            vlan: p.vlan_ids().first().map(|v| v.value()),
            ip_src: h.source.into(),
            ip_dst: h.destination.into(),
            udp_src: uh.source_port,
            udp_dst: uh.destination_port,
            ip_total: usize::from(h.total_len),
            dhcp: udp.payload().to_vec(),
        }
    }

    fn packet(&self) -> DhcpPacket<&[u8]> {
        DhcpPacket::new_checked(&self.dhcp[..]).unwrap()
    }

    /// The options, code -> data.
    fn options(&self) -> BTreeMap<u8, Vec<u8>> {
        self.packet()
            .options()
            .map(|o| (o.kind, o.data.to_vec()))
            .collect()
    }

    fn message_type(&self) -> u8 {
        self.options()[&53][0]
    }
}

fn outcome(m: &Msg) -> DhcpOutcome {
    server().respond(&frame(m), lookup)
}

fn reply_of(m: &Msg) -> Reply {
    let o = outcome(m);
    Reply::parse(o.frame().unwrap_or_else(|| panic!("no reply: {o:?}")))
}

#[test]
fn discover_gets_an_offer_with_every_option() {
    let o = outcome(&msg(DhcpMessageType::Discover));
    let DhcpOutcome::Offer { client, ip, .. } = &o else {
        panic!("{o:?}")
    };
    assert_eq!((*client, *ip), (CLIENT_MAC, CLIENT_IP));
    let r = Reply::parse(o.frame().unwrap());
    // No broadcast flag, no ciaddr, no giaddr: unicast to yiaddr at chaddr.
    assert_eq!(
        (r.eth_dst, r.eth_src, r.ip_src, r.ip_dst, r.udp_src, r.udp_dst),
        (CLIENT_MAC, SERVER_MAC, SERVER_IP, CLIENT_IP, 67, 68)
    );
    assert!(r.dhcp.len() >= 300, "BOOTP minimum");
    assert!(
        r.ip_total <= 576,
        "fits the minimum datagram: {}",
        r.ip_total
    );
    let p = r.packet();
    assert_eq!(p.opcode(), DhcpOpCode::Reply);
    assert_eq!(p.transaction_id(), 0x1234_5678);
    assert_eq!(p.your_ip(), CLIENT_IP);
    assert_eq!(p.client_ip(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.client_hardware_address().0, CLIENT_MAC);
    assert_eq!(p.secs(), 0);
    let o = r.options();
    let want: BTreeMap<u8, Vec<u8>> = [
        (53, vec![2]),
        (54, vec![10, 0, 0, 2]),
        (3, vec![10, 0, 0, 1]),
        (1, vec![255, 255, 255, 0]),
        (51, 86400u32.to_be_bytes().to_vec()),
        (6, vec![10, 0, 0, 53, 192, 0, 2, 53]),
        (58, 43200u32.to_be_bytes().to_vec()),
        (59, 75600u32.to_be_bytes().to_vec()),
        (28, vec![10, 0, 0, 255]),
        (15, b"openstacklocal".to_vec()),
        (26, 1450u16.to_be_bytes().to_vec()),
        // Default route via the gateway first, then the host route (RFC 3442 encoding).
        (121, vec![0, 10, 0, 0, 1, 24, 192, 168, 100, 10, 0, 0, 254]),
    ]
    .into_iter()
    .collect();
    assert_eq!(o, want);
}

#[test]
fn broadcast_flag_makes_the_reply_broadcast() {
    let mut m = msg(DhcpMessageType::Discover);
    m.broadcast = true;
    let r = reply_of(&m);
    assert_eq!((r.eth_dst, r.ip_dst), (BROADCAST_MAC, Ipv4Addr::BROADCAST));
    assert!(r.packet().flags().contains(DhcpFlags::BROADCAST));
}

#[test]
fn selecting_request_is_acked_or_naked_or_left_to_the_other_server() {
    let mut m = msg(DhcpMessageType::Request);
    m.server_id = Some(SERVER_IP);
    m.requested = Some(CLIENT_IP);
    let o = outcome(&m);
    assert!(
        matches!(o, DhcpOutcome::Ack { ip, client, .. } if ip == CLIENT_IP && client == CLIENT_MAC),
        "{o:?}"
    );
    let r = Reply::parse(o.frame().unwrap());
    assert_eq!(r.message_type(), 5);
    assert_eq!(r.packet().your_ip(), CLIENT_IP);
    assert_eq!((r.eth_dst, r.ip_dst), (CLIENT_MAC, CLIENT_IP));
    assert!(r.options().contains_key(&51));

    m.requested = Some(OTHER_IP);
    let o = outcome(&m);
    assert!(
        matches!(
            o,
            DhcpOutcome::Nak {
                reason: NakReason::WrongAddress,
                ..
            }
        ),
        "{o:?}"
    );
    let r = Reply::parse(o.frame().unwrap());
    assert_eq!(r.message_type(), 6);
    // NAKs go to everyone (giaddr 0), carry no address, no configuration, and a message.
    assert_eq!((r.eth_dst, r.ip_dst), (BROADCAST_MAC, Ipv4Addr::BROADCAST));
    assert_eq!(r.packet().your_ip(), Ipv4Addr::UNSPECIFIED);
    let opts = r.options();
    assert_eq!(opts.keys().copied().collect::<Vec<_>>(), vec![53, 54, 56]);

    m.server_id = Some(Ipv4Addr::new(10, 0, 0, 3));
    m.requested = Some(CLIENT_IP);
    assert_eq!(outcome(&m), DhcpOutcome::Ignored(IgnoreReason::NotForUs));

    m.server_id = Some(SERVER_IP);
    m.requested = None;
    assert_eq!(outcome(&m), DhcpOutcome::Ignored(IgnoreReason::Incomplete));
}

#[test]
fn init_reboot_request_is_verified() {
    let mut m = msg(DhcpMessageType::Request);
    m.requested = Some(CLIENT_IP);
    assert!(matches!(outcome(&m), DhcpOutcome::Ack { .. }));
    m.requested = Some(Ipv4Addr::new(172, 16, 0, 5));
    assert!(matches!(outcome(&m), DhcpOutcome::Nak { .. }));
}

#[test]
fn renewing_request_is_answered_by_unicast_to_ciaddr() {
    let mut m = msg(DhcpMessageType::Request);
    m.ciaddr = CLIENT_IP;
    m.ip_src = CLIENT_IP;
    m.ip_dst = SERVER_IP;
    let r = reply_of(&m);
    assert_eq!(r.message_type(), 5);
    assert_eq!(
        (r.eth_dst, r.ip_dst, r.udp_dst),
        (CLIENT_MAC, CLIENT_IP, 68)
    );
    let p = r.packet();
    assert_eq!((p.client_ip(), p.your_ip()), (CLIENT_IP, CLIENT_IP));
    // Rebinding: broadcast, ciaddr set: still unicast to ciaddr (RFC 2131 4.1).
    m.ip_dst = Ipv4Addr::BROADCAST;
    m.broadcast = true;
    let r = reply_of(&m);
    assert_eq!(r.ip_dst, CLIENT_IP);
    // Renewing an address that is not the client's.
    m.ciaddr = OTHER_IP;
    m.ip_src = OTHER_IP;
    let r = reply_of(&m);
    assert_eq!(r.message_type(), 6);
    assert_eq!(r.ip_dst, Ipv4Addr::BROADCAST);
    // Neither requested address nor ciaddr.
    let e = msg(DhcpMessageType::Request);
    assert_eq!(outcome(&e), DhcpOutcome::Ignored(IgnoreReason::Incomplete));
}

#[test]
fn release_and_decline_send_nothing_but_are_reported() {
    let mut m = msg(DhcpMessageType::Release);
    m.ciaddr = CLIENT_IP;
    m.server_id = Some(SERVER_IP);
    m.ip_src = CLIENT_IP;
    m.ip_dst = SERVER_IP;
    assert_eq!(
        outcome(&m),
        DhcpOutcome::Released {
            client: CLIENT_MAC,
            ip: CLIENT_IP
        }
    );
    assert!(server().handle(&frame(&m), lookup).is_none());
    m.server_id = Some(Ipv4Addr::new(10, 0, 0, 3));
    assert_eq!(outcome(&m), DhcpOutcome::Ignored(IgnoreReason::NotForUs));
    m.server_id = Some(SERVER_IP);
    m.ciaddr = Ipv4Addr::UNSPECIFIED;
    assert_eq!(outcome(&m), DhcpOutcome::Ignored(IgnoreReason::Incomplete));

    let mut d = msg(DhcpMessageType::Decline);
    d.requested = Some(CLIENT_IP);
    d.server_id = Some(SERVER_IP);
    let o = outcome(&d);
    assert_eq!(
        o,
        DhcpOutcome::Declined {
            client: CLIENT_MAC,
            ip: Some(CLIENT_IP)
        }
    );
    assert_eq!(o.name(), "decline");
    assert!(o.into_reply().is_none());
}

#[test]
fn inform_gets_configuration_without_address_or_lease() {
    let mut m = msg(DhcpMessageType::Inform);
    m.ciaddr = CLIENT_IP;
    m.ip_src = CLIENT_IP;
    let o = outcome(&m);
    assert!(matches!(o, DhcpOutcome::InformAck { client, .. } if client == CLIENT_MAC));
    let r = Reply::parse(o.frame().unwrap());
    assert_eq!(r.message_type(), 5);
    assert_eq!((r.eth_dst, r.ip_dst), (CLIENT_MAC, CLIENT_IP));
    let p = r.packet();
    assert_eq!(
        (p.your_ip(), p.client_ip()),
        (Ipv4Addr::UNSPECIFIED, CLIENT_IP)
    );
    let opts = r.options();
    for lease in [51, 58, 59] {
        assert!(
            !opts.contains_key(&lease),
            "INFORM reply has option {lease}"
        );
    }
    for cfg in [1, 3, 6, 15, 26, 28, 121] {
        assert!(opts.contains_key(&cfg), "INFORM reply lacks option {cfg}");
    }
    m.ciaddr = Ipv4Addr::UNSPECIFIED;
    assert_eq!(outcome(&m), DhcpOutcome::Ignored(IgnoreReason::Incomplete));
}

#[test]
fn relayed_requests_are_answered_to_the_relay() {
    let relay_mac = [0x02, 0, 0, 0, 0, 0x77];
    let mut m = msg(DhcpMessageType::Discover);
    m.giaddr = Ipv4Addr::new(10, 0, 0, 1);
    m.eth_src = relay_mac;
    m.ip_src = Ipv4Addr::new(10, 0, 0, 1);
    m.ip_dst = SERVER_IP;
    let r = reply_of(&m);
    assert_eq!(
        (r.eth_dst, r.ip_dst, r.udp_dst),
        (relay_mac, Ipv4Addr::new(10, 0, 0, 1), 67)
    );
    assert_eq!(r.packet().relay_agent_ip(), Ipv4Addr::new(10, 0, 0, 1));
    assert!(!r.packet().flags().contains(DhcpFlags::BROADCAST));
    // A NAK through a relay asks it to broadcast.
    let mut n = m.clone();
    n.kind = DhcpMessageType::Request;
    n.requested = Some(OTHER_IP);
    let r = reply_of(&n);
    assert_eq!(r.message_type(), 6);
    assert_eq!(r.ip_dst, Ipv4Addr::new(10, 0, 0, 1));
    assert!(r.packet().flags().contains(DhcpFlags::BROADCAST));
    // A relay outside the subnet.
    m.giaddr = Ipv4Addr::new(172, 16, 0, 1);
    assert_eq!(outcome(&m), DhcpOutcome::Ignored(IgnoreReason::WrongRelay));
}

#[test]
fn unknown_clients_get_no_answer() {
    let mut m = msg(DhcpMessageType::Discover);
    m.chaddr = [0x02, 0, 0, 0, 0, 0x42];
    assert_eq!(
        outcome(&m),
        DhcpOutcome::Ignored(IgnoreReason::UnknownClient)
    );
    // A port whose fixed IP is in another subnet.
    let o = server().respond(&frame(&msg(DhcpMessageType::Discover)), |_| {
        Some(Ipv4Addr::new(172, 16, 0, 5))
    });
    assert_eq!(o, DhcpOutcome::Ignored(IgnoreReason::UnknownClient));
}

#[test]
fn vlan_tag_is_kept() {
    let mut m = msg(DhcpMessageType::Discover);
    m.vlan = Some(1234);
    let r = reply_of(&m);
    assert_eq!(r.vlan, Some(1234));
    assert_eq!(r.ip_dst, CLIENT_IP);
}

#[test]
fn client_identifier_is_echoed() {
    let mut m = msg(DhcpMessageType::Discover);
    m.extra.push((61, b"\x00my-client-id".to_vec()));
    assert_eq!(reply_of(&m).options()[&61], b"\x00my-client-id".to_vec());
    // An Ethernet-type identifier (which smoltcp parses itself) too.
    let mut e = msg(DhcpMessageType::Discover);
    let mut id = vec![1];
    id.extend_from_slice(&CLIENT_MAC);
    e.extra.push((61, id.clone()));
    assert_eq!(reply_of(&e).options()[&61], id);
    // The documented smoltcp limit: 7 bytes with a type other than Ethernet.
    let mut k = msg(DhcpMessageType::Discover);
    k.extra.push((61, b"\x00abcdef".to_vec()));
    assert_eq!(outcome(&k), DhcpOutcome::Ignored(IgnoreReason::Malformed));
    // One too long for the minimum message is left out rather than overflow it.
    let mut l = msg(DhcpMessageType::Discover);
    l.extra.push((61, vec![0x41; 255]));
    let r = reply_of(&l);
    assert!(!r.options().contains_key(&61));
    assert!(r.ip_total <= 576);
    // ... unless the client accepts bigger messages (option 57).
    l.extra.push((57, 1500u16.to_be_bytes().to_vec()));
    let r = reply_of(&l);
    assert_eq!(r.options()[&61].len(), 255);
}

#[test]
fn options_follow_the_configuration() {
    // No host routes: no option 121. No router: no option 3. Infinite lease: no T1/T2. More
    // DNS servers than smoltcp's field holds: all of them, in order.
    let dns: Vec<Ipv4Addr> = (1..=5).map(|i| Ipv4Addr::new(10, 0, 0, 50 + i)).collect();
    let s = DhcpServer::new(DhcpConfig {
        router: None,
        host_routes: vec![],
        lease_time: u32::MAX,
        dns_servers: dns.clone(),
        mtu: None,
        domain: None,
        ..config()
    })
    .unwrap();
    let r = Reply::parse(
        &s.handle(&frame(&msg(DhcpMessageType::Discover)), lookup)
            .unwrap(),
    );
    let o = r.options();
    assert_eq!(
        o.keys().copied().collect::<Vec<_>>(),
        vec![1, 6, 28, 51, 53, 54]
    );
    assert_eq!(o[&51], u32::MAX.to_be_bytes().to_vec());
    assert_eq!(
        o[&6],
        dns.iter().flat_map(|a| a.octets()).collect::<Vec<u8>>()
    );
    // Host routes with their own default: no extra default; a /0 route, a /32 and a /17.
    let s = DhcpServer::new(DhcpConfig {
        host_routes: vec![
            HostRoute {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                nexthop: Ipv4Addr::new(10, 0, 0, 254),
            },
            HostRoute {
                destination: Ipv4Addr::new(169, 254, 169, 254),
                prefix_len: 32,
                nexthop: Ipv4Addr::new(10, 0, 0, 2),
            },
            HostRoute {
                destination: Ipv4Addr::new(172, 16, 128, 0),
                prefix_len: 17,
                nexthop: Ipv4Addr::UNSPECIFIED,
            },
        ],
        ..config()
    })
    .unwrap();
    let r = Reply::parse(
        &s.handle(&frame(&msg(DhcpMessageType::Discover)), lookup)
            .unwrap(),
    );
    assert_eq!(
        r.options()[&121],
        vec![
            0, 10, 0, 0, 254, //
            32, 169, 254, 169, 254, 10, 0, 0, 2, //
            17, 172, 16, 128, 0, 0, 0, 0,
        ]
    );
}

#[test]
fn bad_configurations_are_refused() {
    let bad = |c: DhcpConfig| DhcpServer::new(c).unwrap_err();
    assert_eq!(
        bad(DhcpConfig {
            prefix_len: 31,
            ..config()
        }),
        DhcpConfigError::PrefixLen(31)
    );
    assert!(matches!(
        bad(DhcpConfig {
            subnet: Ipv4Addr::new(10, 0, 0, 1),
            ..config()
        }),
        DhcpConfigError::SubnetHostBits(..)
    ));
    for ip in [[10, 0, 1, 2], [10, 0, 0, 0], [10, 0, 0, 255]] {
        assert!(matches!(
            bad(DhcpConfig {
                server_ip: Ipv4Addr::from(ip),
                ..config()
            }),
            DhcpConfigError::ServerNotInSubnet(_)
        ));
    }
    assert!(matches!(
        bad(DhcpConfig {
            server_mac: BROADCAST_MAC,
            ..config()
        }),
        DhcpConfigError::ServerMac(_)
    ));
    assert_eq!(
        bad(DhcpConfig {
            lease_time: 0,
            ..config()
        }),
        DhcpConfigError::LeaseTime
    );
    assert_eq!(
        bad(DhcpConfig {
            mtu: Some(60),
            ..config()
        }),
        DhcpConfigError::Mtu(60)
    );
    for d in ["", "a..b", "-a.b", "a b", &"x".repeat(64), "ünï.cøde"] {
        assert!(
            matches!(
                bad(DhcpConfig {
                    domain: Some(d.to_string()),
                    ..config()
                }),
                DhcpConfigError::Domain(_)
            ),
            "{d:?}"
        );
    }
    let route = |d: [u8; 4], l| HostRoute {
        destination: Ipv4Addr::from(d),
        prefix_len: l,
        nexthop: Ipv4Addr::new(10, 0, 0, 1),
    };
    for r in [route([10, 1, 0, 0], 33), route([10, 1, 0, 1], 24)] {
        let e = bad(DhcpConfig {
            host_routes: vec![r],
            ..config()
        });
        assert!(matches!(e, DhcpConfigError::HostRoute { .. }), "{e}");
    }
    // 40 routes: 360 bytes of option 121, more than an option holds.
    let many: Vec<HostRoute> = (0..40).map(|i| route([10, 100, i, 0], 24)).collect();
    assert!(matches!(
        bad(DhcpConfig {
            host_routes: many,
            ..config()
        }),
        DhcpConfigError::OptionTooLong { option: 121, .. }
    ));
    // 29 routes and the default (5 + 29 * 8 = 237 bytes) fit an option but not the minimum
    // message (28 would just fit: 547 of 548 bytes).
    let some: Vec<HostRoute> = (0..29).map(|i| route([10, 100, i, 0], 24)).collect();
    let e = bad(DhcpConfig {
        host_routes: some.clone(),
        ..config()
    });
    assert!(
        matches!(e, DhcpConfigError::TooManyOptions { max: 548, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("548"), "{e}");
    let fits = DhcpServer::new(DhcpConfig {
        host_routes: some[..28].to_vec(),
        ..config()
    })
    .unwrap();
    let mut m = msg(DhcpMessageType::Request);
    m.requested = Some(CLIENT_IP);
    let r = Reply::parse(&fits.handle(&frame(&m), lookup).unwrap());
    assert_eq!(r.options()[&121].len(), 5 + 28 * 8);
    assert_eq!(r.ip_total, 28 + 547);
}

#[test]
fn real_udhcpc_discover_is_answered() {
    // busybox 1.35 udhcpc's first DISCOVER (run with -B: broadcast flag set; client id
    // option 61 = type 1 + MAC), captured by the responder lab (AF_PACKET).
    let f = include_bytes!("testdata/udhcpc_discover.bin");
    let (_, payload) = parse_l2(f).unwrap();
    let ip = Ipv4Packet::new_checked(payload).unwrap();
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    let p = DhcpPacket::new_checked(udp.payload()).unwrap();
    let mac = p.client_hardware_address().0;
    let xid = p.transaction_id();
    assert!(p.flags().contains(DhcpFlags::BROADCAST));
    let o = server().respond(f, |m| (m == mac).then_some(CLIENT_IP));
    let DhcpOutcome::Offer { client, ip, frame } = o else {
        panic!("{o:?}")
    };
    assert_eq!((client, ip), (mac, CLIENT_IP));
    let r = Reply::parse(&frame);
    assert_eq!(r.packet().transaction_id(), xid);
    assert_eq!(r.packet().your_ip(), CLIENT_IP);
    assert_eq!((r.eth_dst, r.ip_dst), (BROADCAST_MAC, Ipv4Addr::BROADCAST));
    let mut id = vec![1];
    id.extend_from_slice(&mac);
    assert_eq!(r.options()[&61], id);
    // Any other client MAC gets nothing.
    assert_eq!(
        server().respond(f, lookup),
        DhcpOutcome::Ignored(IgnoreReason::UnknownClient)
    );
}

#[test]
fn malformed_requests_are_ignored() {
    let base = frame(&msg(DhcpMessageType::Discover));
    let s = server();
    let check = |f: &[u8], want: IgnoreReason| {
        assert_eq!(s.respond(f, lookup), DhcpOutcome::Ignored(want));
    };
    // Offsets: Ethernet 14, IPv4 20, UDP 8, then BOOTP.
    const B: usize = 42;
    // Wrong htype, wrong hlen.
    let mut f = base.clone();
    f[B + 1] = 6;
    check(&refix(&f), IgnoreReason::BadHardware);
    let mut f = base.clone();
    f[B + 2] = 8;
    check(&refix(&f), IgnoreReason::BadHardware);
    // BOOTREPLY.
    let mut f = base.clone();
    f[B] = 2;
    check(&refix(&f), IgnoreReason::NotRequest);
    // Bad magic cookie.
    let mut f = base.clone();
    f[B + 236] = 0;
    check(&refix(&f), IgnoreReason::Malformed);
    // Bad option layout: the message type option says length 9 (runs past the others and is
    // not a valid type), or the options are cut before any message type.
    let mut f = base.clone();
    f[B + 241] = 9;
    check(&refix(&f), IgnoreReason::Malformed);
    let mut f = base.clone();
    f[B + 240] = 255;
    check(&refix(&f), IgnoreReason::Malformed);
    // A message type a client never sends (OFFER) and an unknown one.
    for t in [2, 42] {
        let mut f = base.clone();
        f[B + 242] = t;
        check(&refix(&f), IgnoreReason::Malformed);
    }
    // Bad UDP checksum; a zero UDP checksum is "none" and fine.
    let mut f = base.clone();
    f[B - 2] ^= 0xff;
    check(&f, IgnoreReason::Malformed);
    let mut f = base.clone();
    f[B - 2..B].copy_from_slice(&[0, 0]);
    assert!(matches!(s.respond(&f, lookup), DhcpOutcome::Offer { .. }));
    // Bad IPv4 header checksum.
    let mut f = base.clone();
    f[24] ^= 0xff;
    check(&f, IgnoreReason::Malformed);
    // Not to port 67, not UDP, not IPv4.
    let mut f = base.clone();
    f[36..38].copy_from_slice(&68u16.to_be_bytes());
    check(&refix(&f), IgnoreReason::NotDhcp);
    let mut f = base.clone();
    f[23] = 6;
    check(&refix(&f), IgnoreReason::NotDhcp);
    let mut f = base.clone();
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    check(&f, IgnoreReason::NotDhcp);
    // To another host.
    let mut m = msg(DhcpMessageType::Discover);
    m.ip_dst = Ipv4Addr::new(10, 0, 0, 3);
    check(&frame(&m), IgnoreReason::NotForUs);
    // Shorter than a BOOTP header (the UDP length says so too).
    let mut m = msg(DhcpMessageType::Discover);
    m.kind = DhcpMessageType::Discover;
    check(&wrap(&m, &dhcp_payload(&m)[..200]), IgnoreReason::Malformed);
    // Every truncation of the frame.
    for n in 0..base.len() {
        let o = s.respond(&base[..n], lookup);
        assert!(o.frame().is_none(), "{n} bytes answered");
    }
}

/// Recomputes the IPv4 and UDP checksums and lengths of a frame built by [`frame`] after its
/// bytes were changed (so the test reaches the layer it aims at).
fn refix(f: &[u8]) -> Vec<u8> {
    let h = etherparse::Ipv4Header::from_slice(&f[14..]).unwrap().0;
    let payload = &f[34..];
    let src: [u8; 4] = h.source;
    let dst: [u8; 4] = h.destination;
    let ports = (
        u16::from_be_bytes([payload[0], payload[1]]),
        u16::from_be_bytes([payload[2], payload[3]]),
    );
    let mut out = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, BROADCAST_MAC)
        .ipv4(src, dst, 64)
        .udp(ports.0, ports.1)
        .write(&mut out, &payload[8..])
        .unwrap();
    // Keep a changed protocol byte (the builder writes UDP).
    if f[23] != 17 {
        out[23] = f[23];
        let mut h2 = etherparse::Ipv4Header::from_slice(&out[14..34]).unwrap().0;
        h2.header_checksum = h2.calc_header_checksum();
        out[14..34].copy_from_slice(&h2.to_bytes());
    }
    out
}

#[test]
fn outcome_names_are_distinct() {
    let all = [
        DhcpOutcome::Offer {
            frame: vec![],
            client: CLIENT_MAC,
            ip: CLIENT_IP,
        },
        DhcpOutcome::Ack {
            frame: vec![],
            client: CLIENT_MAC,
            ip: CLIENT_IP,
        },
        DhcpOutcome::InformAck {
            frame: vec![],
            client: CLIENT_MAC,
        },
        DhcpOutcome::Nak {
            frame: vec![],
            client: CLIENT_MAC,
            reason: NakReason::WrongAddress,
        },
        DhcpOutcome::Released {
            client: CLIENT_MAC,
            ip: CLIENT_IP,
        },
        DhcpOutcome::Declined {
            client: CLIENT_MAC,
            ip: None,
        },
        DhcpOutcome::Ignored(IgnoreReason::NotDhcp),
        DhcpOutcome::Ignored(IgnoreReason::Malformed),
        DhcpOutcome::Ignored(IgnoreReason::BadHardware),
        DhcpOutcome::Ignored(IgnoreReason::NotRequest),
        DhcpOutcome::Ignored(IgnoreReason::NotForUs),
        DhcpOutcome::Ignored(IgnoreReason::UnknownClient),
        DhcpOutcome::Ignored(IgnoreReason::WrongRelay),
        DhcpOutcome::Ignored(IgnoreReason::Incomplete),
    ];
    let names: std::collections::BTreeSet<_> = all.iter().map(|o| o.name()).collect();
    assert_eq!(names.len(), all.len());
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let seeds: Vec<Msg> = {
        let mut r = msg(DhcpMessageType::Request);
        r.server_id = Some(SERVER_IP);
        r.requested = Some(CLIENT_IP);
        r.extra.push((61, b"\x00id".to_vec()));
        let mut i = msg(DhcpMessageType::Inform);
        i.ciaddr = CLIENT_IP;
        i.vlan = Some(7);
        let mut g = msg(DhcpMessageType::Discover);
        g.giaddr = Ipv4Addr::new(10, 0, 0, 1);
        g.ip_dst = SERVER_IP;
        vec![msg(DhcpMessageType::Discover), r, i, g]
    };
    let s = server();
    let mut rng = TestRng(0xd4c9_5eed_0000_0003);
    let mut answered = 0;
    for k in 0..100_000 {
        let m = &seeds[k % seeds.len()];
        // Half mutate the whole frame (mostly stopped by a checksum); half mutate the DHCP
        // message and wrap it with good checksums, so the mutations reach the DHCP parser.
        let f = if k % 2 == 0 {
            rng.mutate(&frame(m))
        } else {
            let d = rng.mutate(&dhcp_payload(m));
            if d.len() > 1400 {
                continue;
            }
            wrap(m, &d)
        };
        // Answer every client, so mutations reach the reply path too.
        if let Some(r) = s.handle(&f, |_| Some(CLIENT_IP)) {
            let r = Reply::parse(&r);
            assert!(r.ip_total <= 1500);
            answered += 1;
        }
    }
    assert!(
        answered > 100,
        "some mutations still are valid requests: {answered}"
    );
}
