//! The tenant model as one host's overlay sees it: the single copy the compiler and the
//! responders both read.
//!
//! Contract:
//! - A [`ModelView`] holds the networks, subnets and ports of the last [`Snapshot`]
//!   ([`ModelView::load`]) with every later [`Change`] applied once ([`ModelView::apply`]), in
//!   the order they were committed. It is pure: no I/O, no clock.
//! - Iteration is by id (networks, subnets, ports; the ports of a network), so whoever walks
//!   the view walks it in the same order every time.
//! - [`ModelView::apply`] returns an [`Applied`]: the change together with the value it
//!   replaced or removed (`None` when the view did not hold one). That is what
//!   [`crate::compiler::Compiler::apply`] takes, so the compiler always sees the view after the
//!   change and knows what was there before, without a copy of its own.
//! - Indexes (always in step with the objects): network by VNI; port by (network, address) and
//!   by (network, MAC); ports and subnets by network; ports by (host, interface name). When
//!   two objects claim the same key (which the tenant service never commits), the one written
//!   last holds it, and removing the other leaves it alone.
//! - Change events carry whole objects; a deletion removes by id whatever the view holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use strato_tenant::model::{Change, MacAddr, Network, Port, Snapshot, Subnet};

/// One change as the view applied it, with the value it replaced or removed (`old`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<'c> {
    /// A network was created (`old` is `None`) or updated.
    NetworkUpserted {
        /// The new value.
        new: &'c Network,
        /// What the view held before.
        old: Option<Network>,
    },
    /// A network was deleted.
    NetworkDeleted {
        /// Its last value, as the change carried it.
        gone: &'c Network,
        /// What the view held.
        old: Option<Network>,
    },
    /// A subnet was created or updated.
    SubnetUpserted {
        /// The new value.
        new: &'c Subnet,
        /// What the view held before.
        old: Option<Subnet>,
    },
    /// A subnet was deleted.
    SubnetDeleted {
        /// Its last value, as the change carried it.
        gone: &'c Subnet,
        /// What the view held.
        old: Option<Subnet>,
    },
    /// A port was created or updated.
    PortUpserted {
        /// The new value.
        new: &'c Port,
        /// What the view held before.
        old: Option<Port>,
    },
    /// A port was deleted.
    PortDeleted {
        /// Its last value, as the change carried it.
        gone: &'c Port,
        /// What the view held.
        old: Option<Port>,
    },
}

/// The model of one host's overlay (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ModelView {
    networks: BTreeMap<String, Network>,
    subnets: BTreeMap<String, Subnet>,
    ports: BTreeMap<String, Port>,
    /// VNI -> network id.
    by_vni: HashMap<u32, String>,
    /// (network id, address) -> port id.
    by_ip: HashMap<(String, IpAddr), String>,
    /// (network id, MAC) -> port id.
    by_mac: HashMap<(String, MacAddr), String>,
    /// Network id -> its ports' ids.
    net_ports: HashMap<String, BTreeSet<String>>,
    /// Network id -> its subnets' ids.
    net_subnets: HashMap<String, BTreeSet<String>>,
    /// (host, interface name) -> ids of the ports bound there.
    by_interface: HashMap<(String, String), BTreeSet<String>>,
}

/// Removes `id` from the set under `key`, dropping the set when it empties.
fn unlink<K: std::hash::Hash + Eq>(m: &mut HashMap<K, BTreeSet<String>>, key: &K, id: &str) {
    if let Some(s) = m.get_mut(key) {
        s.remove(id);
        if s.is_empty() {
            m.remove(key);
        }
    }
}

/// Removes `key` from `m` if it still names `id`.
fn unclaim<K: std::hash::Hash + Eq>(m: &mut HashMap<K, String>, key: &K, id: &str) {
    if m.get(key).is_some_and(|v| v == id) {
        m.remove(key);
    }
}

fn interface_key(p: &Port) -> Option<(String, String)> {
    p.binding
        .interface
        .as_ref()
        .map(|i| (p.binding.host_id.clone(), i.name.clone()))
}

impl ModelView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces everything with `snapshot`.
    pub fn load(&mut self, snapshot: &Snapshot) {
        *self = ModelView::default();
        for n in &snapshot.networks {
            self.upsert_network(n.clone());
        }
        for s in &snapshot.subnets {
            self.upsert_subnet(s.clone());
        }
        for p in &snapshot.ports {
            self.upsert_port(p.clone());
        }
    }

    /// Applies one committed change; returns it with what it replaced.
    pub fn apply<'c>(&mut self, change: &'c Change) -> Applied<'c> {
        match change {
            Change::NetworkUpserted(n) => Applied::NetworkUpserted {
                new: n,
                old: self.upsert_network(n.clone()),
            },
            Change::NetworkDeleted(n) => Applied::NetworkDeleted {
                gone: n,
                old: self.remove_network(&n.id),
            },
            Change::SubnetUpserted(s) => Applied::SubnetUpserted {
                new: s,
                old: self.upsert_subnet(s.clone()),
            },
            Change::SubnetDeleted(s) => Applied::SubnetDeleted {
                gone: s,
                old: self.remove_subnet(&s.id),
            },
            Change::PortUpserted(p) => Applied::PortUpserted {
                new: p,
                old: self.upsert_port(p.clone()),
            },
            Change::PortDeleted(p) => Applied::PortDeleted {
                gone: p,
                old: self.remove_port(&p.id),
            },
        }
    }

    fn upsert_network(&mut self, n: Network) -> Option<Network> {
        let old = self.remove_network(&n.id);
        self.by_vni.insert(n.vni, n.id.clone());
        self.networks.insert(n.id.clone(), n);
        old
    }

    fn remove_network(&mut self, id: &str) -> Option<Network> {
        let old = self.networks.remove(id)?;
        unclaim(&mut self.by_vni, &old.vni, id);
        Some(old)
    }

    fn upsert_subnet(&mut self, s: Subnet) -> Option<Subnet> {
        let old = self.remove_subnet(&s.id);
        self.net_subnets
            .entry(s.network_id.clone())
            .or_default()
            .insert(s.id.clone());
        self.subnets.insert(s.id.clone(), s);
        old
    }

    fn remove_subnet(&mut self, id: &str) -> Option<Subnet> {
        let old = self.subnets.remove(id)?;
        unlink(&mut self.net_subnets, &old.network_id, id);
        Some(old)
    }

    fn upsert_port(&mut self, p: Port) -> Option<Port> {
        let old = self.remove_port(&p.id);
        for f in &p.fixed_ips {
            self.by_ip
                .insert((p.network_id.clone(), f.ip_address), p.id.clone());
        }
        self.by_mac
            .insert((p.network_id.clone(), p.mac_address), p.id.clone());
        self.net_ports
            .entry(p.network_id.clone())
            .or_default()
            .insert(p.id.clone());
        if let Some(k) = interface_key(&p) {
            self.by_interface.entry(k).or_default().insert(p.id.clone());
        }
        self.ports.insert(p.id.clone(), p);
        old
    }

    fn remove_port(&mut self, id: &str) -> Option<Port> {
        let old = self.ports.remove(id)?;
        for f in &old.fixed_ips {
            unclaim(&mut self.by_ip, &(old.network_id.clone(), f.ip_address), id);
        }
        unclaim(
            &mut self.by_mac,
            &(old.network_id.clone(), old.mac_address),
            id,
        );
        unlink(&mut self.net_ports, &old.network_id, id);
        if let Some(k) = interface_key(&old) {
            unlink(&mut self.by_interface, &k, id);
        }
        Some(old)
    }

    /// A network by id.
    pub fn network(&self, id: &str) -> Option<&Network> {
        self.networks.get(id)
    }

    /// A subnet by id.
    pub fn subnet(&self, id: &str) -> Option<&Subnet> {
        self.subnets.get(id)
    }

    /// A port by id.
    pub fn port(&self, id: &str) -> Option<&Port> {
        self.ports.get(id)
    }

    /// Every network, by id.
    pub fn networks(&self) -> impl Iterator<Item = &Network> {
        self.networks.values()
    }

    /// Every subnet, by id.
    pub fn subnets(&self) -> impl Iterator<Item = &Subnet> {
        self.subnets.values()
    }

    /// Every port, by id.
    pub fn ports(&self) -> impl Iterator<Item = &Port> {
        self.ports.values()
    }

    /// The ports on network `net_id` (known or not), by id.
    pub fn ports_of<'a>(&'a self, net_id: &str) -> impl Iterator<Item = &'a Port> + 'a {
        self.net_ports
            .get(net_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.ports.get(id))
    }

    /// The subnets of network `net_id`, by id.
    pub fn subnets_of<'a>(&'a self, net_id: &str) -> impl Iterator<Item = &'a Subnet> + 'a {
        self.net_subnets
            .get(net_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.subnets.get(id))
    }

    /// The ports bound on `host` to the interface `name`, by id.
    pub fn ports_on_interface<'a>(
        &'a self,
        host: &str,
        name: &str,
    ) -> impl Iterator<Item = &'a Port> + 'a {
        self.by_interface
            .get(&(host.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|id| self.ports.get(id))
    }

    /// The network with VNI `vni`.
    pub fn network_by_vni(&self, vni: u32) -> Option<&Network> {
        self.networks.get(self.by_vni.get(&vni)?)
    }

    /// The port of network `net_id` with fixed address `ip`.
    pub fn port_by_ip(&self, net_id: &str, ip: IpAddr) -> Option<&Port> {
        self.ports.get(self.by_ip.get(&(net_id.to_string(), ip))?)
    }

    /// The port of network `net_id` with MAC `mac`.
    pub fn port_by_mac(&self, net_id: &str, mac: MacAddr) -> Option<&Port> {
        self.ports.get(self.by_mac.get(&(net_id.to_string(), mac))?)
    }

    /// Number of (networks, subnets, ports).
    pub fn len(&self) -> (usize, usize, usize) {
        (self.networks.len(), self.subnets.len(), self.ports.len())
    }

    /// True when the view holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use strato_tenant::model::{Binding, FixedIp, InterfaceKind, LocalInterface, NetworkType};

    fn network(id: &str, vni: u32) -> Network {
        Network {
            id: id.into(),
            tenant_id: String::new(),
            name: id.into(),
            description: String::new(),
            admin_state_up: true,
            shared: false,
            network_type: NetworkType::Vxlan,
            vni,
            mtu: 1450,
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    fn subnet(id: &str, net: &str) -> Subnet {
        Subnet {
            id: id.into(),
            network_id: net.into(),
            tenant_id: String::new(),
            name: String::new(),
            description: String::new(),
            cidr: "10.0.0.0/24".parse().unwrap(),
            gateway_ip: None,
            allocation_pools: vec![],
            dns_nameservers: vec![],
            host_routes: vec![],
            enable_dhcp: true,
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    /// Port `id` on `net` with MAC 02::<last> and 10.0.0.<last>, bound on `host` to `iface`.
    fn port(id: &str, net: &str, last: u8, host: &str, iface: &str) -> Port {
        Port {
            id: id.into(),
            network_id: net.into(),
            tenant_id: String::new(),
            name: id.into(),
            description: String::new(),
            mac_address: MacAddr([2, 0, 0, 0, 0, last]),
            admin_state_up: true,
            fixed_ips: vec![FixedIp {
                subnet_id: format!("sub-{net}"),
                ip_address: ip(last),
            }],
            device_id: String::new(),
            device_owner: String::new(),
            binding: Binding {
                host_id: host.into(),
                interface: Some(LocalInterface {
                    name: iface.into(),
                    kind: InterfaceKind::Tap,
                }),
            },
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            seq: 3,
            networks: vec![network("red", 100), network("blue", 200)],
            subnets: vec![subnet("sub-red", "red"), subnet("sub-blue", "blue")],
            // Not in id order: the view walks by id anyway.
            ports: vec![
                port("r2", "red", 3, "hv1", "tap-r2"),
                port("r1", "red", 2, "hv1", "tap-r1"),
                port("b1", "blue", 2, "hv2", "tap-b1"),
            ],
        }
    }

    fn ids<'a>(it: impl Iterator<Item = &'a Port>) -> Vec<&'a str> {
        it.map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn load_indexes_everything() {
        let mut v = ModelView::new();
        assert!(v.is_empty());
        v.load(&snapshot());
        assert_eq!(v.len(), (2, 2, 3));
        assert_eq!(ids(v.ports()), ["b1", "r1", "r2"]);
        assert_eq!(ids(v.ports_of("red")), ["r1", "r2"]);
        assert_eq!(ids(v.ports_of("nowhere")), Vec::<&str>::new());
        assert_eq!(
            v.subnets_of("blue")
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["sub-blue"]
        );
        assert_eq!(v.network_by_vni(200).map(|n| n.id.as_str()), Some("blue"));
        assert!(v.network_by_vni(300).is_none());
        // The same address on two networks: each network finds its own port.
        assert_eq!(
            v.port_by_ip("red", ip(2)).map(|p| p.id.as_str()),
            Some("r1")
        );
        assert_eq!(
            v.port_by_ip("blue", ip(2)).map(|p| p.id.as_str()),
            Some("b1")
        );
        assert_eq!(
            v.port_by_mac("red", MacAddr([2, 0, 0, 0, 0, 3]))
                .map(|p| p.id.as_str()),
            Some("r2")
        );
        assert!(v.port_by_mac("blue", MacAddr([2, 0, 0, 0, 0, 3])).is_none());
        assert_eq!(ids(v.ports_on_interface("hv1", "tap-r1")), ["r1"]);
        assert!(v.ports_on_interface("hv2", "tap-r1").next().is_none());
        // A second load replaces everything.
        v.load(&Snapshot::default());
        assert!(v.is_empty());
        assert!(v.port_by_ip("red", ip(2)).is_none());
        assert!(v.network_by_vni(100).is_none());
    }

    #[test]
    fn changes_apply_once_and_name_what_they_replaced() {
        let mut v = ModelView::new();
        v.load(&snapshot());
        // A new port: nothing replaced.
        let r3 = port("r3", "red", 4, "hv1", "tap-r3");
        let ch = Change::PortUpserted(r3.clone());
        assert_eq!(
            v.apply(&ch),
            Applied::PortUpserted {
                new: &r3,
                old: None
            }
        );
        assert_eq!(ids(v.ports_of("red")), ["r1", "r2", "r3"]);
        // r1 moves to blue, a new address, another interface: every index follows.
        let mut moved = port("r1", "blue", 9, "hv1", "tap-x");
        moved.mac_address = MacAddr([2, 0, 0, 0, 0, 9]);
        let ch = Change::PortUpserted(moved.clone());
        let Applied::PortUpserted { old: Some(old), .. } = v.apply(&ch) else {
            panic!("the old r1 was not returned");
        };
        assert_eq!(old.network_id, "red");
        assert_eq!(ids(v.ports_of("red")), ["r2", "r3"]);
        assert_eq!(ids(v.ports_of("blue")), ["b1", "r1"]);
        assert!(v.port_by_ip("red", ip(2)).is_none());
        assert_eq!(
            v.port_by_ip("blue", ip(9)).map(|p| p.id.as_str()),
            Some("r1")
        );
        assert!(v.port_by_mac("red", MacAddr([2, 0, 0, 0, 0, 2])).is_none());
        assert!(v.ports_on_interface("hv1", "tap-r1").next().is_none());
        assert_eq!(ids(v.ports_on_interface("hv1", "tap-x")), ["r1"]);
        // A deletion returns what the view held.
        let ch = Change::PortDeleted(r3.clone());
        assert_eq!(
            v.apply(&ch),
            Applied::PortDeleted {
                gone: &r3,
                old: Some(r3.clone())
            }
        );
        assert_eq!(v.len(), (2, 2, 3));
        // Deleting what the view never held changes nothing.
        let ch = Change::PortDeleted(port("zz", "red", 77, "hv1", "tap-zz"));
        assert!(matches!(
            v.apply(&ch),
            Applied::PortDeleted { old: None, .. }
        ));
        assert_eq!(v.len(), (2, 2, 3));
        // A network's VNI changes: the old VNI no longer finds it.
        let mut red = network("red", 100);
        red.vni = 101;
        let ch = Change::NetworkUpserted(red);
        let Applied::NetworkUpserted { old: Some(o), .. } = v.apply(&ch) else {
            panic!("the old red was not returned");
        };
        assert_eq!(o.vni, 100);
        assert!(v.network_by_vni(100).is_none());
        assert_eq!(v.network_by_vni(101).map(|n| n.id.as_str()), Some("red"));
        // Subnets.
        let ch = Change::SubnetDeleted(subnet("sub-red", "red"));
        assert!(matches!(
            v.apply(&ch),
            Applied::SubnetDeleted { old: Some(_), .. }
        ));
        assert!(v.subnets_of("red").next().is_none());
        assert!(v.subnet("sub-red").is_none());
        let ch = Change::NetworkDeleted(network("red", 101));
        assert!(matches!(
            v.apply(&ch),
            Applied::NetworkDeleted { old: Some(_), .. }
        ));
        assert!(v.network("red").is_none());
        assert!(v.network_by_vni(101).is_none());
        // Its ports stay until their own deletions arrive.
        assert_eq!(ids(v.ports_of("red")), ["r2"]);
    }

    #[test]
    fn a_shared_key_stays_with_whoever_wrote_it_last() {
        let mut v = ModelView::new();
        v.load(&snapshot());
        // r9 claims r1's address and MAC (the service never commits that; a feed might).
        let ch = Change::PortUpserted(port("r9", "red", 2, "hv1", "tap-r1"));
        v.apply(&ch);
        assert_eq!(
            v.port_by_ip("red", ip(2)).map(|p| p.id.as_str()),
            Some("r9")
        );
        assert_eq!(ids(v.ports_on_interface("hv1", "tap-r1")), ["r1", "r9"]);
        // Removing r1 leaves r9's claims alone.
        v.apply(&Change::PortDeleted(port("r1", "red", 2, "hv1", "tap-r1")));
        assert_eq!(
            v.port_by_ip("red", ip(2)).map(|p| p.id.as_str()),
            Some("r9")
        );
        assert_eq!(
            v.port_by_mac("red", MacAddr([2, 0, 0, 0, 0, 2]))
                .map(|p| p.id.as_str()),
            Some("r9")
        );
        assert_eq!(ids(v.ports_on_interface("hv1", "tap-r1")), ["r9"]);
        // Two networks with one VNI: the last written holds it; deleting the other keeps it.
        v.apply(&Change::NetworkUpserted(network("green", 100)));
        assert_eq!(v.network_by_vni(100).map(|n| n.id.as_str()), Some("green"));
        v.apply(&Change::NetworkDeleted(network("red", 100)));
        assert_eq!(v.network_by_vni(100).map(|n| n.id.as_str()), Some("green"));
    }
}
