//! DHCPv4 server for one subnet (RFC 2131, options RFC 2132, classless static routes RFC 3442,
//! client identifier echo RFC 6842), the native DHCP of a tenant subnet with `enable_dhcp`:
//! every client MAC has one fixed address (its port's fixed IP), so there is no pool and no
//! lease state; the controller's model is the lease database.
//!
//! Contract:
//! - [`DhcpServer::new`] checks a [`DhcpConfig`] once (typed [`DhcpConfigError`]), including
//!   that a full reply fits in the minimum DHCP message every client accepts (576-byte IP
//!   datagram), so no reply is ever cut or needs option overloading.
//! - [`DhcpServer::respond`] takes an Ethernet frame (optionally with one 802.1Q tag, kept in
//!   the reply) and a lookup MAC -> fixed IP, and returns a typed [`DhcpOutcome`] for every case:
//!   - DISCOVER -> OFFER of the client's fixed IP;
//!   - REQUEST -> ACK when it asks for the fixed IP (SELECTING with our server identifier,
//!     INIT-REBOOT, RENEWING/REBINDING by `ciaddr`), NAK when it asks for another address,
//!     silence when it names another server (the client chose that one);
//!   - INFORM -> ACK without `yiaddr` and without lease times;
//!   - RELEASE / DECLINE -> nothing to send, reported with the address so the caller can count
//!     and log them;
//!   - unknown client MAC (or a fixed IP outside the subnet) -> silence;
//!   - anything malformed or not for this server -> silence with the reason.
//! - Where a reply goes follows RFC 2131 4.1: to the relay (`giaddr`, port 67) when relayed;
//!   else NAKs are broadcast; else to `ciaddr` when set; else broadcast when the client set the
//!   broadcast flag; else unicast to `yiaddr` at `chaddr`. The Ethernet destination matches
//!   (the relay's MAC is the request's Ethernet source).
//! - Offers and ACKs carry: server identifier, lease time with T1 = lease/2 and T2 = 7/8 lease
//!   (not for INFORM; no T1/T2 for an infinite lease), subnet mask, broadcast address, router,
//!   DNS servers, domain name, interface MTU, and classless static routes (option 121) from the
//!   host routes plus a default route via the router, since RFC 3442 clients ignore option 3
//!   when option 121 is present (what Neutron's DHCP agent does too).
//! - The client MAC is `chaddr`; the caller hands in only frames that passed port security
//!   (source MAC = the port's MAC), so a client cannot ask for another port's address.
//! - Wire formats are smoltcp's (Ethernet/VLAN headers from etherparse); checksums (IPv4, UDP)
//!   are verified on input and filled on output. Never panics on any input.
//! - Known limit (smoltcp 0.14's parser): a client identifier (option 61) of exactly 7 bytes
//!   whose type byte is not 1 (Ethernet) makes the whole message unparsable, so such a client
//!   gets no answer (counted as malformed). Common clients send type 1 + MAC (7 bytes) or a
//!   longer DUID-based identifier, which are fine.

use std::net::Ipv4Addr;

use etherparse::EtherType;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpHardware, DhcpMessageType, DhcpOpCode, DhcpOption, DhcpPacket, DhcpRepr, IpAddress,
    IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr, DHCP_CLIENT_PORT,
    DHCP_MAX_DNS_SERVER_COUNT, DHCP_SERVER_PORT, UDP_HEADER_LEN,
};

use super::{build_frame, is_unicast_mac, parse_l2, L2Error, Mac, BROADCAST_MAC};

/// The smallest IP datagram every DHCP client accepts (RFC 2131 2: 312 option bytes).
const MIN_DHCP_DATAGRAM: usize = 576;
/// IPv4 (no options) and UDP headers.
const IP_UDP_LEN: usize = 20 + UDP_HEADER_LEN;
/// The shortest BOOTP message (RFC 951); shorter replies are zero-padded, as ISC dhcpd does.
const BOOTP_MIN_LEN: usize = 300;

const OPT_BROADCAST_ADDRESS: u8 = 28;
const OPT_DOMAIN_NAME: u8 = 15;
const OPT_DOMAIN_NAME_SERVER: u8 = 6;
const OPT_INTERFACE_MTU: u8 = 26;
const OPT_RENEWAL_TIME: u8 = 58;
const OPT_REBINDING_TIME: u8 = 59;
const OPT_MESSAGE: u8 = 56;
const OPT_CLIENT_ID: u8 = 61;
const OPT_CLASSLESS_STATIC_ROUTE: u8 = 121;

/// A static route handed to clients (Neutron `host_routes`), sent as option 121.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRoute {
    /// Destination network address (no host bits set).
    pub destination: Ipv4Addr,
    /// Destination prefix length (0..=32).
    pub prefix_len: u8,
    /// Next hop (0.0.0.0: on link).
    pub nexthop: Ipv4Addr,
}

/// One subnet's DHCP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    /// The server's address (the subnet's DHCP port), also the server identifier.
    pub server_ip: Ipv4Addr,
    /// The server's MAC (Ethernet source of replies).
    pub server_mac: Mac,
    /// The subnet's network address.
    pub subnet: Ipv4Addr,
    /// The subnet's prefix length (1..=30).
    pub prefix_len: u8,
    /// The default gateway (option 3), if the subnet has one.
    pub router: Option<Ipv4Addr>,
    /// DNS servers (option 6), in order.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Static routes (option 121).
    pub host_routes: Vec<HostRoute>,
    /// Lease time in seconds (`u32::MAX`: infinite).
    pub lease_time: u32,
    /// Interface MTU (option 26), if set.
    pub mtu: Option<u16>,
    /// Domain name (option 15), if set.
    pub domain: Option<String>,
}

/// A [`DhcpConfig`] that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhcpConfigError {
    /// subnet prefix length {0} is not in 1..=30
    #[error("subnet prefix length {0} is not in 1..=30")]
    PrefixLen(u8),
    /// subnet {0}/{1} has host bits set
    #[error("subnet {0}/{1} has host bits set")]
    SubnetHostBits(Ipv4Addr, u8),
    /// server address {0} is not a host address of the subnet
    #[error("server address {0} is not a host address of the subnet")]
    ServerNotInSubnet(Ipv4Addr),
    /// server MAC {0:02x?} is not a unicast address
    #[error("server MAC {0:02x?} is not a unicast address")]
    ServerMac(Mac),
    /// host route {destination}/{prefix_len}: {reason}
    #[error("host route {destination}/{prefix_len}: {reason}")]
    HostRoute {
        /// The route's destination.
        destination: Ipv4Addr,
        /// The route's prefix length.
        prefix_len: u8,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// the lease time must be at least 1 second
    #[error("the lease time must be at least 1 second")]
    LeaseTime,
    /// MTU {0} is below the IPv4 minimum of 68
    #[error("MTU {0} is below the IPv4 minimum of 68")]
    Mtu(u16),
    /// domain name {0:?} is not a valid DNS name (labels of 1..=63 letters, digits and '-', 253 bytes at most)
    #[error("domain name {0:?} is not a valid DNS name (labels of 1..=63 letters, digits and '-', 253 bytes at most)")]
    Domain(String),
    /// option {option} would carry {len} bytes; an option holds at most 255
    #[error("option {option} would carry {len} bytes; an option holds at most 255")]
    OptionTooLong {
        /// The option code.
        option: u8,
        /// Its data length.
        len: usize,
    },
    /// a full reply needs {need} bytes but a DHCP message every client accepts holds {max}; use fewer DNS servers or host routes
    #[error("a full reply needs {need} bytes but a DHCP message every client accepts holds {max}; use fewer DNS servers or host routes")]
    TooManyOptions {
        /// The DHCP message size the configuration needs.
        need: usize,
        /// The largest size every client accepts.
        max: usize,
    },
}

/// Why a NAK was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NakReason {
    /// The client asked for (or renews) an address that is not its fixed address.
    WrongAddress,
}

/// Why a frame got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Not IPv4/UDP to port 67 (or more than one VLAN tag).
    NotDhcp,
    /// A truncated frame, bad IPv4 or UDP header or checksum, an IP fragment, a bad magic
    /// cookie, or options without a valid message type.
    Malformed,
    /// `htype` is not Ethernet (1) or `hlen` is not 6.
    BadHardware,
    /// A BOOTREPLY (op 2): clients do not send those.
    NotRequest,
    /// Addressed to another host, or naming another server identifier.
    NotForUs,
    /// The lookup does not know the client's MAC, or its fixed IP is not in this subnet.
    UnknownClient,
    /// Relayed (`giaddr` set) from outside this subnet.
    WrongRelay,
    /// A REQUEST with neither requested address nor `ciaddr`, or an INFORM or RELEASE without
    /// `ciaddr`.
    Incomplete,
}

/// What [`DhcpServer::respond`] did with a frame (one variant per counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOutcome {
    /// DISCOVER answered with an OFFER of `ip`.
    Offer {
        /// The reply frame.
        frame: Vec<u8>,
        /// The client MAC.
        client: Mac,
        /// The offered address.
        ip: Ipv4Addr,
    },
    /// REQUEST answered with an ACK of `ip`.
    Ack {
        /// The reply frame.
        frame: Vec<u8>,
        /// The client MAC.
        client: Mac,
        /// The acknowledged address.
        ip: Ipv4Addr,
    },
    /// INFORM answered with an ACK (configuration only, no address).
    InformAck {
        /// The reply frame.
        frame: Vec<u8>,
        /// The client MAC.
        client: Mac,
    },
    /// REQUEST refused with a NAK.
    Nak {
        /// The reply frame.
        frame: Vec<u8>,
        /// The client MAC.
        client: Mac,
        /// Why.
        reason: NakReason,
    },
    /// RELEASE: nothing to send (the address stays the port's).
    Released {
        /// The client MAC.
        client: Mac,
        /// The released address (`ciaddr`).
        ip: Ipv4Addr,
    },
    /// DECLINE: the client found its address in use; nothing to send.
    Declined {
        /// The client MAC.
        client: Mac,
        /// The declined address (requested-address option), if given.
        ip: Option<Ipv4Addr>,
    },
    /// No reply, and why.
    Ignored(IgnoreReason),
}

impl DhcpOutcome {
    /// A stable name for counters (`offer`, `ack`, `nak`, `ignored_malformed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            DhcpOutcome::Offer { .. } => "offer",
            DhcpOutcome::Ack { .. } => "ack",
            DhcpOutcome::InformAck { .. } => "inform_ack",
            DhcpOutcome::Nak { .. } => "nak",
            DhcpOutcome::Released { .. } => "release",
            DhcpOutcome::Declined { .. } => "decline",
            DhcpOutcome::Ignored(r) => match r {
                IgnoreReason::NotDhcp => "ignored_not_dhcp",
                IgnoreReason::Malformed => "ignored_malformed",
                IgnoreReason::BadHardware => "ignored_bad_hardware",
                IgnoreReason::NotRequest => "ignored_not_request",
                IgnoreReason::NotForUs => "ignored_not_for_us",
                IgnoreReason::UnknownClient => "ignored_unknown_client",
                IgnoreReason::WrongRelay => "ignored_wrong_relay",
                IgnoreReason::Incomplete => "ignored_incomplete",
            },
        }
    }

    /// The frame to send, if any.
    pub fn frame(&self) -> Option<&[u8]> {
        match self {
            DhcpOutcome::Offer { frame, .. }
            | DhcpOutcome::Ack { frame, .. }
            | DhcpOutcome::InformAck { frame, .. }
            | DhcpOutcome::Nak { frame, .. } => Some(frame),
            _ => None,
        }
    }

    /// The frame to send, if any.
    pub fn into_reply(self) -> Option<Vec<u8>> {
        match self {
            DhcpOutcome::Offer { frame, .. }
            | DhcpOutcome::Ack { frame, .. }
            | DhcpOutcome::InformAck { frame, .. }
            | DhcpOutcome::Nak { frame, .. } => Some(frame),
            _ => None,
        }
    }
}

/// A DHCPv4 server for one subnet (see the module contract).
#[derive(Debug, Clone)]
pub struct DhcpServer {
    cfg: DhcpConfig,
    mask: u32,
    net: u32,
    broadcast: Ipv4Addr,
    /// Option 121 payload (empty: not sent).
    routes: Vec<u8>,
    /// Option 6 payload when it does not fit smoltcp's (at most 3) DNS server field.
    dns_raw: Vec<u8>,
}

/// The fields of a request that shape the reply.
struct Request<'a> {
    vlan: Option<etherparse::SingleVlanHeader>,
    eth_src: Mac,
    xid: u32,
    chaddr: Mac,
    ciaddr: Ipv4Addr,
    giaddr: Ipv4Addr,
    broadcast: bool,
    client_id: Option<&'a [u8]>,
    max_size: Option<u16>,
}

/// What kind of reply to build.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Offer,
    Ack,
    InformAck,
    Nak,
}

fn prefix_mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl DhcpServer {
    /// Checks `cfg` (see [`DhcpConfigError`]) and precomputes the options.
    pub fn new(cfg: DhcpConfig) -> Result<DhcpServer, DhcpConfigError> {
        if !(1..=30).contains(&cfg.prefix_len) {
            return Err(DhcpConfigError::PrefixLen(cfg.prefix_len));
        }
        let mask = prefix_mask(cfg.prefix_len);
        let net = u32::from(cfg.subnet);
        if net & !mask != 0 {
            return Err(DhcpConfigError::SubnetHostBits(cfg.subnet, cfg.prefix_len));
        }
        let broadcast = Ipv4Addr::from(net | !mask);
        let s = u32::from(cfg.server_ip);
        if s & mask != net || s == net || cfg.server_ip == broadcast {
            return Err(DhcpConfigError::ServerNotInSubnet(cfg.server_ip));
        }
        if !is_unicast_mac(&cfg.server_mac) {
            return Err(DhcpConfigError::ServerMac(cfg.server_mac));
        }
        if cfg.lease_time == 0 {
            return Err(DhcpConfigError::LeaseTime);
        }
        if let Some(m) = cfg.mtu {
            if m < 68 {
                return Err(DhcpConfigError::Mtu(m));
            }
        }
        if let Some(d) = &cfg.domain {
            if !valid_domain(d) {
                return Err(DhcpConfigError::Domain(d.clone()));
            }
        }
        // RFC 3442 encoding: prefix length, the significant octets of the destination, the
        // router. A default route via the gateway goes first unless the routes have one.
        let mut routes = Vec::new();
        for r in &cfg.host_routes {
            let bad = |reason| DhcpConfigError::HostRoute {
                destination: r.destination,
                prefix_len: r.prefix_len,
                reason,
            };
            if r.prefix_len > 32 {
                return Err(bad("prefix length above 32"));
            }
            if u32::from(r.destination) & !prefix_mask(r.prefix_len) != 0 {
                return Err(bad("destination has host bits set"));
            }
        }
        if !cfg.host_routes.is_empty() {
            let has_default = cfg.host_routes.iter().any(|r| r.prefix_len == 0);
            let default = cfg.router.filter(|_| !has_default).map(|gw| HostRoute {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                nexthop: gw,
            });
            for r in default.iter().chain(&cfg.host_routes) {
                routes.push(r.prefix_len);
                let n = usize::from(r.prefix_len).div_ceil(8);
                routes.extend_from_slice(&r.destination.octets()[..n]);
                routes.extend_from_slice(&r.nexthop.octets());
            }
        }
        let dns_raw = if cfg.dns_servers.len() > DHCP_MAX_DNS_SERVER_COUNT {
            cfg.dns_servers.iter().flat_map(|a| a.octets()).collect()
        } else {
            Vec::new()
        };
        let server = DhcpServer {
            mask,
            net,
            broadcast,
            routes,
            dns_raw,
            cfg,
        };
        // Each option's data is at most 255 bytes, and the largest reply (an ACK with
        // everything, no client identifier echo) must fit the minimum message every client
        // accepts.
        for (option, len) in [
            (OPT_CLASSLESS_STATIC_ROUTE, server.routes.len()),
            (OPT_DOMAIN_NAME_SERVER, server.dns_raw.len()),
        ] {
            if len > 255 {
                return Err(DhcpConfigError::OptionTooLong { option, len });
            }
        }
        let max = MIN_DHCP_DATAGRAM - IP_UDP_LEN;
        let need = server.dhcp_len(Kind::Ack, None, None);
        if need > max {
            return Err(DhcpConfigError::TooManyOptions { need, max });
        }
        Ok(server)
    }

    /// The configuration served.
    pub fn config(&self) -> &DhcpConfig {
        &self.cfg
    }

    fn in_subnet(&self, a: Ipv4Addr) -> bool {
        let v = u32::from(a);
        v & self.mask == self.net && v != self.net && a != self.broadcast
    }

    /// The reply to `frame` (see the module contract), or `None`.
    pub fn handle(
        &self,
        frame: &[u8],
        lookup: impl Fn(Mac) -> Option<Ipv4Addr>,
    ) -> Option<Vec<u8>> {
        self.respond(frame, lookup).into_reply()
    }

    /// What to do with `frame`: a reply, a RELEASE/DECLINE to count, or why it was ignored.
    pub fn respond(&self, frame: &[u8], lookup: impl Fn(Mac) -> Option<Ipv4Addr>) -> DhcpOutcome {
        use IgnoreReason as R;
        let ignore = DhcpOutcome::Ignored;
        let caps = ChecksumCapabilities::default();
        let (l2, payload) = match parse_l2(frame) {
            Ok(x) => x,
            Err(L2Error::Truncated) => return ignore(R::Malformed),
            Err(L2Error::MultipleTags) => return ignore(R::NotDhcp),
        };
        if l2.ether_type != EtherType::IPV4 {
            return ignore(R::NotDhcp);
        }
        let Ok(ip) = Ipv4Packet::new_checked(payload) else {
            return ignore(R::Malformed);
        };
        let Ok(ip_repr) = Ipv4Repr::parse(&ip, &caps) else {
            return ignore(R::Malformed);
        };
        if ip_repr.next_header != IpProtocol::Udp {
            return ignore(R::NotDhcp);
        }
        let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
            return ignore(R::Malformed);
        };
        if udp.dst_port() != DHCP_SERVER_PORT {
            return ignore(R::NotDhcp);
        }
        let (src, dst) = (
            IpAddress::Ipv4(ip_repr.src_addr),
            IpAddress::Ipv4(ip_repr.dst_addr),
        );
        if UdpRepr::parse(&udp, &src, &dst, &caps).is_err() {
            return ignore(R::Malformed);
        }
        let to = ip_repr.dst_addr;
        if !to.is_broadcast() && to != self.cfg.server_ip && to != self.broadcast {
            return ignore(R::NotForUs);
        }
        let Ok(pkt) = DhcpPacket::new_checked(udp.payload()) else {
            return ignore(R::Malformed);
        };
        if pkt.opcode() != DhcpOpCode::Request {
            return ignore(R::NotRequest);
        }
        if pkt.hardware_type() != ArpHardware::Ethernet || pkt.hardware_len() != 6 {
            return ignore(R::BadHardware);
        }
        let Ok(repr) = DhcpRepr::parse(&pkt) else {
            return ignore(R::Malformed);
        };
        let giaddr = repr.relay_agent_ip;
        if !giaddr.is_unspecified() && !self.in_subnet(giaddr) {
            return ignore(R::WrongRelay);
        }
        let chaddr: Mac = repr.client_hardware_address.0;
        let req = Request {
            vlan: l2.vlan,
            eth_src: l2.src,
            xid: repr.transaction_id,
            chaddr,
            ciaddr: repr.client_ip,
            giaddr,
            broadcast: repr.broadcast,
            client_id: pkt
                .options()
                .find(|o| o.kind == OPT_CLIENT_ID)
                .map(|o| o.data),
            max_size: repr.max_size,
        };
        let ours = |sid: Option<Ipv4Addr>| sid.is_none_or(|s| s == self.cfg.server_ip);
        let Some(fixed) = lookup(chaddr).filter(|a| self.in_subnet(*a)) else {
            return ignore(R::UnknownClient);
        };
        let reply = |kind, yiaddr| self.build(&req, kind, yiaddr);
        match repr.message_type {
            DhcpMessageType::Discover => match reply(Kind::Offer, fixed) {
                Some(frame) => DhcpOutcome::Offer {
                    frame,
                    client: chaddr,
                    ip: fixed,
                },
                None => ignore(R::Malformed),
            },
            DhcpMessageType::Request => {
                // RFC 2131 4.3.2: the client's state shows in which fields are set.
                let wanted = match (repr.server_identifier, repr.requested_ip) {
                    // SELECTING: the client chose a server.
                    (Some(sid), _) if sid != self.cfg.server_ip => return ignore(R::NotForUs),
                    (Some(_), Some(r)) => r,
                    (Some(_), None) => return ignore(R::Incomplete),
                    // INIT-REBOOT: verifying a remembered address.
                    (None, Some(r)) => r,
                    // RENEWING / REBINDING.
                    (None, None) if !repr.client_ip.is_unspecified() => repr.client_ip,
                    (None, None) => return ignore(R::Incomplete),
                };
                if wanted == fixed {
                    match reply(Kind::Ack, fixed) {
                        Some(frame) => DhcpOutcome::Ack {
                            frame,
                            client: chaddr,
                            ip: fixed,
                        },
                        None => ignore(R::Malformed),
                    }
                } else {
                    match reply(Kind::Nak, Ipv4Addr::UNSPECIFIED) {
                        Some(frame) => DhcpOutcome::Nak {
                            frame,
                            client: chaddr,
                            reason: NakReason::WrongAddress,
                        },
                        None => ignore(R::Malformed),
                    }
                }
            }
            DhcpMessageType::Inform => {
                if repr.client_ip.is_unspecified() {
                    return ignore(R::Incomplete);
                }
                match reply(Kind::InformAck, Ipv4Addr::UNSPECIFIED) {
                    Some(frame) => DhcpOutcome::InformAck {
                        frame,
                        client: chaddr,
                    },
                    None => ignore(R::Malformed),
                }
            }
            DhcpMessageType::Release => {
                if !ours(repr.server_identifier) {
                    return ignore(R::NotForUs);
                }
                if repr.client_ip.is_unspecified() {
                    return ignore(R::Incomplete);
                }
                DhcpOutcome::Released {
                    client: chaddr,
                    ip: repr.client_ip,
                }
            }
            DhcpMessageType::Decline => {
                if !ours(repr.server_identifier) {
                    return ignore(R::NotForUs);
                }
                DhcpOutcome::Declined {
                    client: chaddr,
                    ip: repr.requested_ip,
                }
            }
            // smoltcp only parses message types that match op BOOTREQUEST.
            _ => ignore(R::Malformed),
        }
    }

    /// The DHCP message length of a reply of `kind` (before padding to the BOOTP minimum).
    fn dhcp_len(&self, kind: Kind, client_id: Option<&[u8]>, msg: Option<&str>) -> usize {
        self.with_repr(
            kind,
            0,
            [0; 6],
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            false,
            client_id,
            msg,
            |r| Some(r.buffer_len()),
        )
        .unwrap_or(usize::MAX)
    }

    /// Builds the reply repr of `kind` and passes it to `f` (options borrow local buffers).
    #[allow(clippy::too_many_arguments)]
    fn with_repr<T>(
        &self,
        kind: Kind,
        xid: u32,
        chaddr: Mac,
        ciaddr: Ipv4Addr,
        yiaddr: Ipv4Addr,
        giaddr: Ipv4Addr,
        broadcast: bool,
        client_id: Option<&[u8]>,
        msg: Option<&str>,
        f: impl FnOnce(&DhcpRepr<'_>) -> Option<T>,
    ) -> Option<T> {
        let cfg = &self.cfg;
        let full = matches!(kind, Kind::Offer | Kind::Ack | Kind::InformAck);
        let leased = matches!(kind, Kind::Offer | Kind::Ack);
        let infinite = cfg.lease_time == u32::MAX;
        let t1 = (cfg.lease_time / 2).to_be_bytes();
        let t2 = ((u64::from(cfg.lease_time) * 7 / 8) as u32).to_be_bytes();
        let bcast = self.broadcast.octets();
        let mtu = cfg.mtu.map(u16::to_be_bytes);
        let mut opts: Vec<DhcpOption<'_>> = Vec::new();
        if leased && !infinite {
            opts.push(DhcpOption {
                kind: OPT_RENEWAL_TIME,
                data: &t1,
            });
            opts.push(DhcpOption {
                kind: OPT_REBINDING_TIME,
                data: &t2,
            });
        }
        if full {
            opts.push(DhcpOption {
                kind: OPT_BROADCAST_ADDRESS,
                data: &bcast,
            });
            if let Some(d) = &cfg.domain {
                opts.push(DhcpOption {
                    kind: OPT_DOMAIN_NAME,
                    data: d.as_bytes(),
                });
            }
            if let Some(m) = &mtu {
                opts.push(DhcpOption {
                    kind: OPT_INTERFACE_MTU,
                    data: m,
                });
            }
            if !self.routes.is_empty() {
                opts.push(DhcpOption {
                    kind: OPT_CLASSLESS_STATIC_ROUTE,
                    data: &self.routes,
                });
            }
            if !self.dns_raw.is_empty() {
                opts.push(DhcpOption {
                    kind: OPT_DOMAIN_NAME_SERVER,
                    data: &self.dns_raw,
                });
            }
        }
        if let Some(m) = msg {
            opts.push(DhcpOption {
                kind: OPT_MESSAGE,
                data: m.as_bytes(),
            });
        }
        if let Some(id) = client_id {
            opts.push(DhcpOption {
                kind: OPT_CLIENT_ID,
                data: id,
            });
        }
        let dns = (full && !cfg.dns_servers.is_empty() && self.dns_raw.is_empty())
            .then(|| cfg.dns_servers.iter().copied().collect());
        let repr = DhcpRepr {
            message_type: match kind {
                Kind::Offer => DhcpMessageType::Offer,
                Kind::Ack | Kind::InformAck => DhcpMessageType::Ack,
                Kind::Nak => DhcpMessageType::Nak,
            },
            transaction_id: xid,
            secs: 0,
            client_hardware_address: smoltcp::wire::EthernetAddress(chaddr),
            client_ip: ciaddr,
            your_ip: yiaddr,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: cfg.router.filter(|_| full),
            subnet_mask: full.then(|| Ipv4Addr::from(self.mask)),
            relay_agent_ip: giaddr,
            broadcast,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(cfg.server_ip),
            parameter_request_list: None,
            dns_servers: dns,
            max_size: None,
            lease_duration: leased.then_some(cfg.lease_time),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &opts,
        };
        f(&repr)
    }

    /// The reply frame of `kind` to `req` (RFC 2131 4.1 addressing), or `None` if it cannot be
    /// emitted (never for a checked configuration).
    fn build(&self, req: &Request<'_>, kind: Kind, yiaddr: Ipv4Addr) -> Option<Vec<u8>> {
        let relayed = !req.giaddr.is_unspecified();
        let nak = kind == Kind::Nak;
        // Where it goes: (IP, UDP port, MAC).
        let (ip_dst, port, mac_dst) = if relayed {
            (req.giaddr, DHCP_SERVER_PORT, req.eth_src)
        } else if nak {
            (Ipv4Addr::BROADCAST, DHCP_CLIENT_PORT, BROADCAST_MAC)
        } else if !req.ciaddr.is_unspecified() {
            (req.ciaddr, DHCP_CLIENT_PORT, req.chaddr)
        } else if req.broadcast {
            (Ipv4Addr::BROADCAST, DHCP_CLIENT_PORT, BROADCAST_MAC)
        } else {
            (yiaddr, DHCP_CLIENT_PORT, req.chaddr)
        };
        // NAKs through a relay ask it to broadcast (RFC 2131 4.3.2).
        let broadcast = req.broadcast || (nak && relayed);
        // The ciaddr of an ACK is the request's; OFFER and NAK carry none (RFC 2131 table 3).
        let ciaddr = match kind {
            Kind::Ack | Kind::InformAck => req.ciaddr,
            Kind::Offer | Kind::Nak => Ipv4Addr::UNSPECIFIED,
        };
        let msg = nak.then_some("requested address is not this client's address");
        // Echo the client identifier (RFC 6842) when it fits what the client accepts.
        let limit =
            usize::from(req.max_size.unwrap_or(0)).clamp(MIN_DHCP_DATAGRAM, 1500) - IP_UDP_LEN;
        let client_id = req
            .client_id
            .filter(|id| self.dhcp_len(kind, Some(id), msg) <= limit);
        let cfg = &self.cfg;
        self.with_repr(
            kind,
            req.xid,
            req.chaddr,
            ciaddr,
            yiaddr,
            req.giaddr,
            broadcast,
            client_id,
            msg,
            |repr| {
                let dhcp_len = repr.buffer_len().max(BOOTP_MIN_LEN);
                let mut dhcp = vec![0u8; dhcp_len];
                repr.emit(&mut DhcpPacket::new_unchecked(&mut dhcp[..]))
                    .ok()?;
                let udp_repr = UdpRepr {
                    src_port: DHCP_SERVER_PORT,
                    dst_port: port,
                };
                let ip_repr = Ipv4Repr {
                    src_addr: cfg.server_ip,
                    dst_addr: ip_dst,
                    next_header: IpProtocol::Udp,
                    payload_len: UDP_HEADER_LEN + dhcp_len,
                    hop_limit: 64,
                };
                let caps = ChecksumCapabilities::default();
                Some(build_frame(
                    mac_dst,
                    cfg.server_mac,
                    req.vlan.as_ref(),
                    EtherType::IPV4,
                    ip_repr.buffer_len() + ip_repr.payload_len,
                    |p| {
                        let mut ip = Ipv4Packet::new_unchecked(p);
                        ip_repr.emit(&mut ip, &caps);
                        udp_repr.emit(
                            &mut UdpPacket::new_unchecked(ip.payload_mut()),
                            &IpAddress::Ipv4(cfg.server_ip),
                            &IpAddress::Ipv4(ip_dst),
                            dhcp_len,
                            |b| b.copy_from_slice(&dhcp),
                            &caps,
                        );
                    },
                ))
            },
        )
    }
}

#[cfg(test)]
mod tests;
