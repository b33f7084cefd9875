//! The tenant model: networks (a VXLAN segment each), subnets (IPv4/IPv6 with IPAM pools) and
//! ports (a MAC, fixed IPs, a binding to a host and a local tap or veth interface), and the
//! change feed the compiler consumes.
//!
//! Contract:
//! - These are plain values: the service validates and allocates, the store persists them as
//!   they are (serde JSON), the compiler reads them. Ids are UUID strings; timestamps are UTC
//!   `YYYY-MM-DDTHH:MM:SSZ` strings as Neutron prints them.
//! - Status is derived, never stored: a network is `ACTIVE` when `admin_state_up`, else `DOWN`;
//!   a port is `ACTIVE` when `admin_state_up` and bound (a host and a local interface), else
//!   `DOWN` (`BUILD` is never reported: flows are applied asynchronously after the commit).
//! - [`Change`]s are sent after the change is committed, in commit order, each with a sequence
//!   number one higher than the last ([`ChangeEvent::seq`]); a [`Snapshot`] carries the sequence
//!   number of the last change it includes, so snapshot + later events is the exact state.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// The segment type of a network (only VXLAN for now; VLAN comes with provider VLANs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkType {
    /// A VXLAN segment; `vni` is its VNI.
    Vxlan,
}

impl NetworkType {
    /// The `provider:network_type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkType::Vxlan => "vxlan",
        }
    }
}

/// A tenant network (an L2 segment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// UUID.
    pub id: String,
    /// Owning tenant (project).
    pub tenant_id: String,
    /// Name (may be empty, need not be unique).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Visible to (and usable for ports by) every tenant; set by providers only.
    pub shared: bool,
    /// Segment type.
    pub network_type: NetworkType,
    /// The VXLAN network identifier (`provider:segmentation_id`), unique.
    pub vni: u32,
    /// MTU offered to instances (1450 for VXLAN over a 1500-byte underlay).
    pub mtu: u32,
    /// Creation time.
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
    /// Number of updates.
    pub revision_number: u64,
}

impl Network {
    /// `ACTIVE` or `DOWN`.
    pub fn status(&self) -> &'static str {
        if self.admin_state_up {
            "ACTIVE"
        } else {
            "DOWN"
        }
    }
}

/// An inclusive address range of an allocation pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address (inclusive).
    pub end: IpAddr,
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A static route handed to instances (DHCP option 121 / RA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    /// Destination prefix.
    pub destination: IpNet,
    /// Next hop.
    pub nexthop: IpAddr,
}

/// A subnet of a network, with its IPAM parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// UUID.
    pub id: String,
    /// The network it belongs to.
    pub network_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The prefix (host bits zero).
    pub cidr: IpNet,
    /// Default gateway, or none.
    pub gateway_ip: Option<IpAddr>,
    /// Where IPAM allocates from (sorted, disjoint, inside the CIDR, without the gateway).
    pub allocation_pools: Vec<IpRange>,
    /// DNS servers for instances.
    pub dns_nameservers: Vec<IpAddr>,
    /// Static routes for instances (at most 20).
    pub host_routes: Vec<HostRoute>,
    /// Whether strato answers DHCP on it.
    pub enable_dhcp: bool,
    /// Creation time.
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
    /// Number of updates.
    pub revision_number: u64,
}

impl Subnet {
    /// 4 or 6.
    pub fn ip_version(&self) -> u8 {
        match self.cidr {
            IpNet::V4(_) => 4,
            IpNet::V6(_) => 6,
        }
    }
}

pub use strato_flowtable::mac::{BadMac, MacAddr};

/// One fixed IP of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    /// The subnet it comes from.
    pub subnet_id: String,
    /// The address.
    pub ip_address: IpAddr,
}

/// The kind of local interface a port is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceKind {
    /// A tap device (a VM's NIC).
    Tap,
    /// A veth end (a container's interface; strato attaches with AF_XDP).
    Veth,
}

impl InterfaceKind {
    /// "tap" or "veth".
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceKind::Tap => "tap",
            InterfaceKind::Veth => "veth",
        }
    }
}

/// The local interface of a bound port (`binding:profile` `{"interface", "kind"}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocalInterface {
    /// Kernel interface name on the host (at most 15 bytes).
    pub name: String,
    /// tap or veth.
    pub kind: InterfaceKind,
}

/// Where a port is bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// `binding:host_id` (empty: unbound).
    pub host_id: String,
    /// The local interface on that host.
    pub interface: Option<LocalInterface>,
}

impl Binding {
    /// A host and an interface.
    pub fn is_bound(&self) -> bool {
        !self.host_id.is_empty() && self.interface.is_some()
    }
}

/// A port: a virtual NIC on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// UUID.
    pub id: String,
    /// The network.
    pub network_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Unique MAC.
    pub mac_address: MacAddr,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Addresses, each unique in its subnet.
    pub fixed_ips: Vec<FixedIp>,
    /// The instance using it (free text).
    pub device_id: String,
    /// Who uses it, e.g. `compute:nova`, `network:router_interface`.
    pub device_owner: String,
    /// Host and local interface.
    pub binding: Binding,
    /// Creation time.
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
    /// Number of updates.
    pub revision_number: u64,
}

impl Port {
    /// `ACTIVE` (admin up and bound) or `DOWN`.
    pub fn status(&self) -> &'static str {
        if self.admin_state_up && self.binding.is_bound() {
            "ACTIVE"
        } else {
            "DOWN"
        }
    }
}

/// One committed change, as the compiler sees it (JSON: `{"type": "port_upserted", "value": {...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Change {
    /// A network was created or updated (the new value).
    NetworkUpserted(Network),
    /// A network was deleted (its last value); its subnets were deleted just before it.
    NetworkDeleted(Network),
    /// A subnet was created or updated.
    SubnetUpserted(Subnet),
    /// A subnet was deleted (its last value).
    SubnetDeleted(Subnet),
    /// A port was created or updated (MAC, addresses, binding, state).
    PortUpserted(Port),
    /// A port was deleted (its last value: the compiler removes its flows by it).
    PortDeleted(Port),
}

/// A change with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// 1 for the first change after the service opened, then +1 per change.
    pub seq: u64,
    /// What changed.
    pub change: Change,
}

/// The whole model at one point of the change sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The sequence number of the last change included (0: none since open).
    pub seq: u64,
    /// Every network, by id.
    pub networks: Vec<Network>,
    /// Every subnet, by id.
    pub subnets: Vec<Subnet>,
    /// Every port, by id.
    pub ports: Vec<Port>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parse_print() {
        let m: MacAddr = "FA:16:3e:00:0a:ff".parse().unwrap();
        assert_eq!(m.to_string(), "fa:16:3e:00:0a:ff");
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert!(!m.is_multicast());
        assert!("01:00:5e:00:00:01"
            .parse::<MacAddr>()
            .unwrap()
            .is_multicast());
        for bad in [
            "",
            "fa:16:3e",
            "fa:16:3e:00:00:00:00",
            "fa-16-3e-00-00-00",
            "zz:16:3e:00:00:00",
            "fa:16:3e:0:00:00",
            "+f:16:3e:00:00:00",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}

/// One host's VXLAN tunnel endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vtep {
    /// Host name (a port's `binding:host_id`).
    pub name: String,
    /// Its VTEP address.
    pub vtep_ip: IpAddr,
}
