//! The response bodies of the tenant API as serde views: one `#[derive(Serialize)]` type per
//! JSON object the API answers with, built from the model by borrowing it.
//!
//! Contract:
//! - A view's fields are its resource's attributes in Neutron's order (for networks, subnets
//!   and ports the `*_ATTRS` lists of [`super::neutron`]); names that are not Rust identifiers
//!   (`router:external`, `binding:host_id`, ...) are `#[serde(rename)]`s. The attributes only
//!   provider tokens see are one `Option` flattened into the view, so a tenant's view does not
//!   have their keys at all (not even as null).
//! - `tenant_id` and `project_id` are both the owner. Addresses, CIDRs and MACs are their
//!   `Display` text ([`AsText`]); attributes strato does not implement have Neutron's constant
//!   values (`[]`, `{}`, null, `"normal"`, `false`).
//! - Bodies leave through [`super::respond`], which serializes them into a `serde_json::Value`
//!   first: its objects keep their keys sorted, so every body lists its keys alphabetically, as
//!   the API always has. `?fields=`, filters and sorting work on that value ([`to_map`],
//!   [`super::query`]).
//! - Serializing a view cannot fail (no maps with non-string keys, no custom errors).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::model::{FixedIp, HostRoute, IpRange, MacAddr, Port, Subnet};
use crate::service::{BoundInterface, HostInfo, NetworkInfo};
use ipnet::IpNet;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::net::IpAddr;

/// A value shown as its `Display` text (a JSON string).
#[derive(Debug, Clone, Copy)]
pub struct AsText<'a, T: ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> Serialize for AsText<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// A list of values, each shown as its `Display` text.
#[derive(Debug, Clone, Copy)]
pub struct TextList<'a, T>(pub &'a [T]);

impl<T: fmt::Display> Serialize for TextList<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(AsText))
    }
}

/// `[]`: a list attribute strato does not implement (tags, security groups, ...).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyList;

impl Serialize for EmptyList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_seq(Some(0))?.end()
    }
}

/// `{}`: an object attribute with nothing in it (`binding:vif_details`, an empty profile).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// `{"<key>": value}`: one resource (`{"network": {...}}`) or a whole collection
/// (`{"hosts": [...]}`). The response side of [`super::body::envelope`].
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<T> {
    key: &'static str,
    value: T,
}

impl<T> Envelope<T> {
    /// `value` under `key`.
    pub fn new(key: &'static str, value: T) -> Envelope<T> {
        Envelope { key, value }
    }
}

impl<T: Serialize> Serialize for Envelope<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.key, &self.value)?;
        m.end()
    }
}

/// A link: `{"href", "rel"}` (`self`, `next`, `previous`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// The URL.
    pub href: String,
    /// What it is to the page it is on.
    pub rel: &'static str,
}

/// One page of a list: `{"<collection>": [...]}`, plus `"<collection>_links": [Link...]` when
/// the request was paginated (`limit`). Items are resource views as JSON objects (filtered,
/// sorted and projected by [`super::query::ListQuery::list`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// "networks", "subnets", "ports".
    pub collection: &'static str,
    /// The page's items.
    pub items: Vec<Map<String, Value>>,
    /// Next/previous links (`Some`, maybe empty, when paginated).
    pub links: Option<Vec<Link>>,
}

impl Serialize for Page {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1 + usize::from(self.links.is_some())))?;
        m.serialize_entry(self.collection, &self.items)?;
        if let Some(links) = &self.links {
            m.serialize_entry(&format!("{}_links", self.collection), links)?;
        }
        m.end()
    }
}

/// A view as a JSON object (for `?fields=`, filters and sorting).
pub fn to_map(view: &impl Serialize) -> Result<Map<String, Value>, ApiError> {
    match serde_json::to_value(view) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::Internal(format!(
            "a resource view is not a JSON object: {other}"
        ))),
        Err(e) => Err(ApiError::Internal(format!("encoding a resource view: {e}"))),
    }
}

// ----- the API's own resources -----

/// `GET /`: one API version, `{"id", "status", "links"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionView {
    id: &'static str,
    status: &'static str,
    links: Vec<Link>,
}

impl VersionView {
    /// v2.0, the current (and only) version, at `href`.
    pub fn v2(href: String) -> VersionView {
        VersionView {
            id: "v2.0",
            status: "CURRENT",
            links: vec![Link { href, rel: "self" }],
        }
    }
}

/// `GET /v2.0/`: one resource collection, `{"name", "collection", "links"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceView {
    name: &'static str,
    collection: &'static str,
    links: Vec<Link>,
}

impl ResourceView {
    /// The resource `name` (e.g. "network") served at `<base>/v2.0/<collection>`.
    pub fn new(base: &str, name: &'static str, collection: &'static str) -> ResourceView {
        ResourceView {
            name,
            collection,
            links: vec![Link {
                href: format!("{base}/v2.0/{collection}"),
                rel: "self",
            }],
        }
    }
}

/// An API extension: `{"alias", "name", "description", "updated", "links"}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ExtensionView<'a> {
    alias: &'a str,
    name: &'a str,
    description: &'a str,
    updated: &'static str,
    links: EmptyList,
}

impl<'a> ExtensionView<'a> {
    /// One of [`super::EXTENSIONS`]: (alias, name, description).
    pub fn new(e: &'a (&'a str, &'a str, &'a str)) -> ExtensionView<'a> {
        ExtensionView {
            alias: e.0,
            name: e.1,
            description: e.2,
            updated: "2026-11-21T00:00:00-00:00",
            links: EmptyList,
        }
    }
}

/// A host of the cloud view: `{"name", "vtep_ip", "uplinks", "interfaces"}`.
#[derive(Debug, Clone, Serialize)]
pub struct HostView<'a> {
    name: &'a str,
    vtep_ip: Option<AsText<'a, IpAddr>>,
    uplinks: &'a [String],
    interfaces: Vec<BoundInterfaceView<'a>>,
}

impl<'a> HostView<'a> {
    /// The view of `h`.
    pub fn new(h: &'a HostInfo) -> HostView<'a> {
        HostView {
            name: &h.name,
            vtep_ip: h.vtep_ip.as_ref().map(AsText),
            uplinks: &h.uplinks,
            interfaces: h.interfaces.iter().map(BoundInterfaceView::new).collect(),
        }
    }
}

/// An interface bound on a host: `{"interface", "kind", "port_id", "network_id",
/// "segmentation_id", "mac_address", "status"}`.
#[derive(Debug, Clone, Serialize)]
pub struct BoundInterfaceView<'a> {
    interface: &'a str,
    kind: &'static str,
    port_id: &'a str,
    network_id: &'a str,
    segmentation_id: u32,
    mac_address: AsText<'a, MacAddr>,
    status: &'static str,
}

impl<'a> BoundInterfaceView<'a> {
    /// The view of `b`.
    pub fn new(b: &'a BoundInterface) -> BoundInterfaceView<'a> {
        BoundInterfaceView {
            interface: &b.interface.name,
            kind: b.interface.kind.as_str(),
            port_id: &b.port_id,
            network_id: &b.network_id,
            segmentation_id: b.vni,
            mac_address: AsText(&b.mac_address),
            status: b.status,
        }
    }
}

// ----- Neutron resources -----

/// A Neutron network as a caller sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    tenant_id: &'a str,
    project_id: &'a str,
    admin_state_up: bool,
    shared: bool,
    status: &'static str,
    subnets: &'a [String],
    mtu: u32,
    #[serde(rename = "router:external")]
    router_external: bool,
    tags: EmptyList,
    created_at: &'a str,
    updated_at: &'a str,
    revision_number: u64,
    #[serde(flatten)]
    provider: Option<NetworkProviderView>,
}

/// The provider attributes of a network (provider tokens only).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NetworkProviderView {
    #[serde(rename = "provider:network_type")]
    network_type: &'static str,
    #[serde(rename = "provider:segmentation_id")]
    segmentation_id: u32,
    /// Always null: VXLAN networks have no physical network.
    #[serde(rename = "provider:physical_network")]
    physical_network: Option<&'static str>,
}

impl<'a> NetworkView<'a> {
    /// `n` as `c` sees it.
    pub fn new(n: &'a NetworkInfo, c: &Caller) -> NetworkView<'a> {
        let net = &n.network;
        NetworkView {
            id: &net.id,
            name: &net.name,
            description: &net.description,
            tenant_id: &net.tenant_id,
            project_id: &net.tenant_id,
            admin_state_up: net.admin_state_up,
            shared: net.shared,
            status: net.status(),
            subnets: &n.subnets,
            mtu: net.mtu,
            router_external: false,
            tags: EmptyList,
            created_at: &net.created_at,
            updated_at: &net.updated_at,
            revision_number: net.revision_number,
            provider: c.is_admin().then(|| NetworkProviderView {
                network_type: net.network_type.as_str(),
                segmentation_id: net.vni,
                physical_network: None,
            }),
        }
    }
}

/// A Neutron subnet (every caller sees the same attributes).
#[derive(Debug, Clone, Serialize)]
pub struct SubnetView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    network_id: &'a str,
    tenant_id: &'a str,
    project_id: &'a str,
    ip_version: u8,
    cidr: AsText<'a, IpNet>,
    gateway_ip: Option<AsText<'a, IpAddr>>,
    allocation_pools: Vec<PoolView<'a>>,
    dns_nameservers: TextList<'a, IpAddr>,
    host_routes: Vec<HostRouteView<'a>>,
    enable_dhcp: bool,
    ipv6_ra_mode: Option<&'static str>,
    ipv6_address_mode: Option<&'static str>,
    subnetpool_id: Option<&'static str>,
    service_types: EmptyList,
    tags: EmptyList,
    created_at: &'a str,
    updated_at: &'a str,
    revision_number: u64,
}

/// An allocation pool: `{"start", "end"}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PoolView<'a> {
    start: AsText<'a, IpAddr>,
    end: AsText<'a, IpAddr>,
}

/// A host route: `{"destination", "nexthop"}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HostRouteView<'a> {
    destination: AsText<'a, IpNet>,
    nexthop: AsText<'a, IpAddr>,
}

impl<'a> PoolView<'a> {
    fn new(p: &'a IpRange) -> PoolView<'a> {
        PoolView {
            start: AsText(&p.start),
            end: AsText(&p.end),
        }
    }
}

impl<'a> HostRouteView<'a> {
    fn new(r: &'a HostRoute) -> HostRouteView<'a> {
        HostRouteView {
            destination: AsText(&r.destination),
            nexthop: AsText(&r.nexthop),
        }
    }
}

impl<'a> SubnetView<'a> {
    /// The view of `s`.
    pub fn new(s: &'a Subnet) -> SubnetView<'a> {
        SubnetView {
            id: &s.id,
            name: &s.name,
            description: &s.description,
            network_id: &s.network_id,
            tenant_id: &s.tenant_id,
            project_id: &s.tenant_id,
            ip_version: s.ip_version(),
            cidr: AsText(&s.cidr),
            gateway_ip: s.gateway_ip.as_ref().map(AsText),
            allocation_pools: s.allocation_pools.iter().map(PoolView::new).collect(),
            dns_nameservers: TextList(&s.dns_nameservers),
            host_routes: s.host_routes.iter().map(HostRouteView::new).collect(),
            enable_dhcp: s.enable_dhcp,
            ipv6_ra_mode: None,
            ipv6_address_mode: None,
            subnetpool_id: None,
            service_types: EmptyList,
            tags: EmptyList,
            created_at: &s.created_at,
            updated_at: &s.updated_at,
            revision_number: s.revision_number,
        }
    }
}

/// A Neutron port as a caller sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PortView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    network_id: &'a str,
    tenant_id: &'a str,
    project_id: &'a str,
    mac_address: AsText<'a, MacAddr>,
    admin_state_up: bool,
    status: &'static str,
    fixed_ips: Vec<FixedIpView<'a>>,
    device_id: &'a str,
    device_owner: &'a str,
    allowed_address_pairs: EmptyList,
    security_groups: EmptyList,
    #[serde(rename = "binding:vnic_type")]
    vnic_type: &'static str,
    tags: EmptyList,
    created_at: &'a str,
    updated_at: &'a str,
    revision_number: u64,
    #[serde(flatten)]
    binding: Option<PortBindingView<'a>>,
}

/// A fixed IP: `{"subnet_id", "ip_address"}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FixedIpView<'a> {
    subnet_id: &'a str,
    ip_address: AsText<'a, IpAddr>,
}

/// The binding attributes of a port (provider tokens only).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PortBindingView<'a> {
    #[serde(rename = "binding:host_id")]
    host_id: &'a str,
    #[serde(rename = "binding:profile")]
    profile: ProfileView<'a>,
    /// The interface kind of a port bound on a host, else `unbound`.
    #[serde(rename = "binding:vif_type")]
    vif_type: &'static str,
    #[serde(rename = "binding:vif_details")]
    vif_details: EmptyObject,
}

/// `binding:profile`: strato's local interface, or `{}` without one.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum ProfileView<'a> {
    /// `{"interface", "kind"}`.
    Interface {
        /// Its name on the host.
        interface: &'a str,
        /// `tap` or `veth`.
        kind: &'static str,
    },
    /// `{}`.
    None(EmptyObject),
}

impl<'a> FixedIpView<'a> {
    fn new(f: &'a FixedIp) -> FixedIpView<'a> {
        FixedIpView {
            subnet_id: &f.subnet_id,
            ip_address: AsText(&f.ip_address),
        }
    }
}

impl<'a> PortView<'a> {
    /// `p` as `c` sees it.
    pub fn new(p: &'a Port, c: &Caller) -> PortView<'a> {
        let b = &p.binding;
        PortView {
            id: &p.id,
            name: &p.name,
            description: &p.description,
            network_id: &p.network_id,
            tenant_id: &p.tenant_id,
            project_id: &p.tenant_id,
            mac_address: AsText(&p.mac_address),
            admin_state_up: p.admin_state_up,
            status: p.status(),
            fixed_ips: p.fixed_ips.iter().map(FixedIpView::new).collect(),
            device_id: &p.device_id,
            device_owner: &p.device_owner,
            allowed_address_pairs: EmptyList,
            security_groups: EmptyList,
            vnic_type: "normal",
            tags: EmptyList,
            created_at: &p.created_at,
            updated_at: &p.updated_at,
            revision_number: p.revision_number,
            binding: c.is_admin().then(|| PortBindingView {
                host_id: &b.host_id,
                profile: match &b.interface {
                    Some(i) => ProfileView::Interface {
                        interface: &i.name,
                        kind: i.kind.as_str(),
                    },
                    None => ProfileView::None(EmptyObject),
                },
                vif_type: match &b.interface {
                    Some(i) if !b.host_id.is_empty() => i.kind.as_str(),
                    _ => "unbound",
                },
                vif_details: EmptyObject,
            }),
        }
    }
}

/// A Net Objects switch (a network of the path's tenant): `{"id", "name", "description",
/// "tenant_id", "admin_state_up", "status", "subnets"}`, plus `"vni"` for provider tokens.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    tenant_id: &'a str,
    admin_state_up: bool,
    status: &'static str,
    subnets: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    vni: Option<u32>,
}

impl<'a> SwitchView<'a> {
    /// `n` as a switch, as `c` sees it.
    pub fn new(n: &'a NetworkInfo, c: &Caller) -> SwitchView<'a> {
        let net = &n.network;
        SwitchView {
            id: &net.id,
            name: &net.name,
            description: &net.description,
            tenant_id: &net.tenant_id,
            admin_state_up: net.admin_state_up,
            status: net.status(),
            subnets: &n.subnets,
            vni: c.is_admin().then_some(net.vni),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    // The bodies below are what the API sent before it had views (its `json!` builders, run
    // on these same values): every view must give them byte for byte.

    /// (what, body): the bodies the API sent for the values below before it had views.
    const BEFORE: &[(&str, &str)] = &[
        (
            "network tenant",
            r#"{"admin_state_up":true,"created_at":"2026-11-21T00:00:00Z","description":"d","id":"n-1","mtu":1450,"name":"net \"a\"","project_id":"tenant-a","revision_number":3,"router:external":false,"shared":true,"status":"ACTIVE","subnets":["s-1","s-2"],"tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:01Z"}"#,
        ),
        (
            "switch tenant",
            r#"{"admin_state_up":true,"description":"d","id":"n-1","name":"net \"a\"","status":"ACTIVE","subnets":["s-1","s-2"],"tenant_id":"tenant-a"}"#,
        ),
        (
            "port tenant",
            r#"{"admin_state_up":true,"allowed_address_pairs":[],"binding:vnic_type":"normal","created_at":"2026-11-21T00:00:00Z","description":"the VM's","device_id":"vm1","device_owner":"compute:nova","fixed_ips":[{"ip_address":"10.0.0.5","subnet_id":"s-1"},{"ip_address":"2001:db8::5","subnet_id":"s-2"}],"id":"p-1","mac_address":"fa:16:3e:00:0a:ff","name":"vm1-eth0","network_id":"n-1","project_id":"tenant-a","revision_number":2,"security_groups":[],"status":"ACTIVE","tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:03Z"}"#,
        ),
        (
            "port tenant",
            r#"{"admin_state_up":false,"allowed_address_pairs":[],"binding:vnic_type":"normal","created_at":"2026-11-21T00:00:00Z","description":"the VM's","device_id":"vm1","device_owner":"compute:nova","fixed_ips":[{"ip_address":"10.0.0.5","subnet_id":"s-1"},{"ip_address":"2001:db8::5","subnet_id":"s-2"}],"id":"p-1","mac_address":"fa:16:3e:00:0a:ff","name":"vm1-eth0","network_id":"n-1","project_id":"tenant-a","revision_number":2,"security_groups":[],"status":"DOWN","tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:03Z"}"#,
        ),
        (
            "port tenant",
            r#"{"admin_state_up":true,"allowed_address_pairs":[],"binding:vnic_type":"normal","created_at":"2026-11-21T00:00:00Z","description":"the VM's","device_id":"vm1","device_owner":"compute:nova","fixed_ips":[{"ip_address":"10.0.0.5","subnet_id":"s-1"},{"ip_address":"2001:db8::5","subnet_id":"s-2"}],"id":"p-1","mac_address":"fa:16:3e:00:0a:ff","name":"vm1-eth0","network_id":"n-1","project_id":"tenant-a","revision_number":2,"security_groups":[],"status":"DOWN","tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:03Z"}"#,
        ),
        (
            "port tenant",
            r#"{"admin_state_up":true,"allowed_address_pairs":[],"binding:vnic_type":"normal","created_at":"2026-11-21T00:00:00Z","description":"the VM's","device_id":"vm1","device_owner":"compute:nova","fixed_ips":[],"id":"p-1","mac_address":"fa:16:3e:00:0a:ff","name":"vm1-eth0","network_id":"n-1","project_id":"tenant-a","revision_number":2,"security_groups":[],"status":"ACTIVE","tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:03Z"}"#,
        ),
        (
            "network provider",
            r#"{"admin_state_up":true,"created_at":"2026-11-21T00:00:00Z","description":"d","id":"n-1","mtu":1450,"name":"net \"a\"","project_id":"tenant-a","provider:network_type":"vxlan","provider:physical_network":null,"provider:segmentation_id":4242,"revision_number":3,"router:external":false,"shared":true,"status":"ACTIVE","subnets":["s-1","s-2"],"tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:01Z"}"#,
        ),
        (
            "switch provider",
            r#"{"admin_state_up":true,"description":"d","id":"n-1","name":"net \"a\"","status":"ACTIVE","subnets":["s-1","s-2"],"tenant_id":"tenant-a","vni":4242}"#,
        ),
        (
            "port provider",
            r#"{"admin_state_up":true,"allowed_address_pairs":[],"binding:host_id":"hv1","binding:profile":{"interface":"tap0","kind":"veth"},"binding:vif_details":{},"binding:vif_type":"veth","binding:vnic_type":"normal","created_at":"2026-11-21T00:00:00Z","description":"the VM's","device_id":"vm1","device_owner":"compute:nova","fixed_ips":[{"ip_address":"10.0.0.5","subnet_id":"s-1"},{"ip_address":"2001:db8::5","subnet_id":"s-2"}],"id":"p-1","mac_address":"fa:16:3e:00:0a:ff","name":"vm1-eth0","network_id":"n-1","project_id":"tenant-a","revision_number":2,"security_groups":[],"status":"ACTIVE","tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:03Z"}"#,
        ),
        (
            "port provider",
            r#"{"admin_state_up":false,"allowed_address_pairs":[],"binding:host_id":"hv2","binding:profile":{},"binding:vif_details":{},"binding:vif_type":"unbound","binding:vnic_type":"normal","created_at":"2026-11-21T00:00:00Z","description":"the VM's","device_id":"vm1","device_owner":"compute:nova","fixed_ips":[{"ip_address":"10.0.0.5","subnet_id":"s-1"},{"ip_address":"2001:db8::5","subnet_id":"s-2"}],"id":"p-1","mac_address":"fa:16:3e:00:0a:ff","name":"vm1-eth0","network_id":"n-1","project_id":"tenant-a","revision_number":2,"security_groups":[],"status":"DOWN","tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:03Z"}"#,
        ),
        (
            "port provider",
            r#"{"admin_state_up":true,"allowed_address_pairs":[],"binding:host_id":"","binding:profile":{"interface":"tap1","kind":"tap"},"binding:vif_details":{},"binding:vif_type":"unbound","binding:vnic_type":"normal","created_at":"2026-11-21T00:00:00Z","description":"the VM's","device_id":"vm1","device_owner":"compute:nova","fixed_ips":[{"ip_address":"10.0.0.5","subnet_id":"s-1"},{"ip_address":"2001:db8::5","subnet_id":"s-2"}],"id":"p-1","mac_address":"fa:16:3e:00:0a:ff","name":"vm1-eth0","network_id":"n-1","project_id":"tenant-a","revision_number":2,"security_groups":[],"status":"DOWN","tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:03Z"}"#,
        ),
        (
            "port provider",
            r#"{"admin_state_up":true,"allowed_address_pairs":[],"binding:host_id":"hv1","binding:profile":{"interface":"tap2","kind":"tap"},"binding:vif_details":{},"binding:vif_type":"tap","binding:vnic_type":"normal","created_at":"2026-11-21T00:00:00Z","description":"the VM's","device_id":"vm1","device_owner":"compute:nova","fixed_ips":[],"id":"p-1","mac_address":"fa:16:3e:00:0a:ff","name":"vm1-eth0","network_id":"n-1","project_id":"tenant-a","revision_number":2,"security_groups":[],"status":"ACTIVE","tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:03Z"}"#,
        ),
        (
            "subnet4",
            r#"{"allocation_pools":[{"end":"10.0.0.100","start":"10.0.0.10"},{"end":"10.0.0.210","start":"10.0.0.200"}],"cidr":"10.0.0.0/24","created_at":"2026-11-21T00:00:00Z","description":"","dns_nameservers":["192.0.2.53","2001:db8::53"],"enable_dhcp":true,"gateway_ip":"10.0.0.1","host_routes":[{"destination":"10.1.0.0/16","nexthop":"10.0.0.254"}],"id":"s-1","ip_version":4,"ipv6_address_mode":null,"ipv6_ra_mode":null,"name":"s4","network_id":"n-1","project_id":"tenant-a","revision_number":1,"service_types":[],"subnetpool_id":null,"tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:02Z"}"#,
        ),
        (
            "subnet6",
            r#"{"allocation_pools":[],"cidr":"2001:db8::/64","created_at":"2026-11-21T00:00:00Z","description":"","dns_nameservers":[],"enable_dhcp":false,"gateway_ip":null,"host_routes":[],"id":"s-2","ip_version":6,"ipv6_address_mode":null,"ipv6_ra_mode":null,"name":"s4","network_id":"n-1","project_id":"tenant-a","revision_number":1,"service_types":[],"subnetpool_id":null,"tags":[],"tenant_id":"tenant-a","updated_at":"2026-11-21T00:00:02Z"}"#,
        ),
        (
            "host",
            r#"{"interfaces":[{"interface":"tap0","kind":"veth","mac_address":"fa:16:3e:00:0a:ff","network_id":"n-1","port_id":"p-1","segmentation_id":4242,"status":"ACTIVE"}],"name":"hv1","uplinks":["eth1"],"vtep_ip":"192.0.2.1"}"#,
        ),
        (
            "host",
            r#"{"interfaces":[],"name":"hv9","uplinks":[],"vtep_ip":null}"#,
        ),
        (
            "extension",
            r#"{"alias":"project-id","description":"Extension that indicates that project_id is enabled.","links":[],"name":"project_id field enabled","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"provider","description":"Expose mapping of virtual networks to physical networks (vxlan).","links":[],"name":"Provider Network","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"binding","description":"Expose port bindings of a virtual port (host and strato's local interface in binding:profile).","links":[],"name":"Port Binding","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"pagination","description":"Extension that indicates that pagination is enabled.","links":[],"name":"Pagination support","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"sorting","description":"Extension that indicates that sorting is enabled.","links":[],"name":"Sorting support","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"filter-validation","description":"Unknown filter parameters are rejected with 400.","links":[],"name":"Filter parameters validation","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"sort-key-validation","description":"Unknown sort keys are rejected with 400.","links":[],"name":"Sort keys validation","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"standard-attr-timestamp","description":"Adds created_at and updated_at fields to all Neutron resources.","links":[],"name":"Resource timestamps","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"standard-attr-description","description":"Extension to add descriptions to standard attributes.","links":[],"name":"standard-attr-description","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"standard-attr-revisions","description":"Adds revision_number to resources.","links":[],"name":"Resource revision numbers","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"net-mtu","description":"Provides MTU attribute for a network resource.","links":[],"name":"Network MTU","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
        (
            "extension",
            r#"{"alias":"strato-hosts","description":"The cloud view: hosts, VTEP addresses and bound interfaces at /v2.0/strato/hosts.","links":[],"name":"strato hosts","updated":"2026-11-21T00:00:00-00:00"}"#,
        ),
    ];
    fn info() -> NetworkInfo {
        NetworkInfo {
            network: Network {
                id: "n-1".into(),
                tenant_id: "tenant-a".into(),
                name: "net \"a\"".into(),
                description: "d".into(),
                admin_state_up: true,
                shared: true,
                network_type: NetworkType::Vxlan,
                vni: 4242,
                mtu: 1450,
                created_at: "2026-11-21T00:00:00Z".into(),
                updated_at: "2026-11-21T00:00:01Z".into(),
                revision_number: 3,
            },
            subnets: vec!["s-1".into(), "s-2".into()],
        }
    }

    fn subnet4() -> Subnet {
        Subnet {
            id: "s-1".into(),
            network_id: "n-1".into(),
            tenant_id: "tenant-a".into(),
            name: "s4".into(),
            description: String::new(),
            cidr: "10.0.0.0/24".parse().unwrap(),
            gateway_ip: Some("10.0.0.1".parse().unwrap()),
            allocation_pools: vec![
                IpRange {
                    start: "10.0.0.10".parse().unwrap(),
                    end: "10.0.0.100".parse().unwrap(),
                },
                IpRange {
                    start: "10.0.0.200".parse().unwrap(),
                    end: "10.0.0.210".parse().unwrap(),
                },
            ],
            dns_nameservers: vec![
                "192.0.2.53".parse().unwrap(),
                "2001:db8::53".parse().unwrap(),
            ],
            host_routes: vec![HostRoute {
                destination: "10.1.0.0/16".parse().unwrap(),
                nexthop: "10.0.0.254".parse().unwrap(),
            }],
            enable_dhcp: true,
            created_at: "2026-11-21T00:00:00Z".into(),
            updated_at: "2026-11-21T00:00:02Z".into(),
            revision_number: 1,
        }
    }

    fn subnet6() -> Subnet {
        Subnet {
            id: "s-2".into(),
            cidr: "2001:db8::/64".parse().unwrap(),
            gateway_ip: None,
            allocation_pools: vec![],
            dns_nameservers: vec![],
            host_routes: vec![],
            enable_dhcp: false,
            ..subnet4()
        }
    }

    fn port(host: &str, iface: Option<(&str, InterfaceKind)>, up: bool) -> Port {
        Port {
            id: "p-1".into(),
            network_id: "n-1".into(),
            tenant_id: "tenant-a".into(),
            name: "vm1-eth0".into(),
            description: "the VM's".into(),
            mac_address: MacAddr([0xfa, 0x16, 0x3e, 0, 0x0a, 0xff]),
            admin_state_up: up,
            fixed_ips: vec![
                FixedIp {
                    subnet_id: "s-1".into(),
                    ip_address: "10.0.0.5".parse().unwrap(),
                },
                FixedIp {
                    subnet_id: "s-2".into(),
                    ip_address: "2001:db8::5".parse().unwrap(),
                },
            ],
            device_id: "vm1".into(),
            device_owner: "compute:nova".into(),
            binding: Binding {
                host_id: host.into(),
                interface: iface.map(|(name, kind)| LocalInterface {
                    name: name.into(),
                    kind,
                }),
            },
            created_at: "2026-11-21T00:00:00Z".into(),
            updated_at: "2026-11-21T00:00:03Z".into(),
            revision_number: 2,
        }
    }

    fn ports() -> [Port; 4] {
        [
            port("hv1", Some(("tap0", InterfaceKind::Veth)), true),
            port("hv2", None, false),
            port("", Some(("tap1", InterfaceKind::Tap)), true),
            Port {
                fixed_ips: vec![],
                ..port("hv1", Some(("tap2", InterfaceKind::Tap)), true)
            },
        ]
    }

    fn hosts() -> [HostInfo; 2] {
        [
            HostInfo {
                name: "hv1".into(),
                vtep_ip: Some("192.0.2.1".parse().unwrap()),
                uplinks: vec!["eth1".into()],
                interfaces: vec![BoundInterface {
                    interface: LocalInterface {
                        name: "tap0".into(),
                        kind: InterfaceKind::Veth,
                    },
                    port_id: "p-1".into(),
                    network_id: "n-1".into(),
                    vni: 4242,
                    mac_address: MacAddr([0xfa, 0x16, 0x3e, 0, 0x0a, 0xff]),
                    status: "ACTIVE",
                }],
            },
            HostInfo {
                name: "hv9".into(),
                vtep_ip: None,
                uplinks: vec![],
                interfaces: vec![],
            },
        ]
    }

    fn body(v: &impl Serialize) -> String {
        serde_json::to_value(v).unwrap().to_string()
    }

    #[test]
    fn views_give_the_bodies_the_api_always_sent() {
        let mut now = Vec::new();
        for (who, c) in [
            ("tenant", Caller::tenant("tenant-a")),
            ("provider", Caller::provider("admin")),
        ] {
            now.push((
                format!("network {who}"),
                body(&NetworkView::new(&info(), &c)),
            ));
            now.push((format!("switch {who}"), body(&SwitchView::new(&info(), &c))));
            for p in ports() {
                now.push((format!("port {who}"), body(&PortView::new(&p, &c))));
            }
        }
        now.push(("subnet4".into(), body(&SubnetView::new(&subnet4()))));
        now.push(("subnet6".into(), body(&SubnetView::new(&subnet6()))));
        for h in hosts() {
            now.push(("host".into(), body(&HostView::new(&h))));
        }
        for e in crate::api::EXTENSIONS {
            now.push(("extension".into(), body(&ExtensionView::new(e))));
        }
        assert_eq!(now.len(), BEFORE.len());
        for ((what, got), (was_what, was)) in now.iter().zip(BEFORE) {
            assert_eq!(what, was_what);
            assert_eq!(got, was, "{what}");
        }
    }

    #[test]
    fn envelopes_pages_and_constants() {
        assert_eq!(body(&Envelope::new("tags", EmptyList)), r#"{"tags":[]}"#);
        assert_eq!(body(&Envelope::new("d", EmptyObject)), r#"{"d":{}}"#);
        let item = to_map(&Envelope::new("id", "x")).unwrap();
        let page = |links| Page {
            collection: "things",
            items: vec![item.clone()],
            links,
        };
        assert_eq!(body(&page(None)), r#"{"things":[{"id":"x"}]}"#);
        assert_eq!(
            body(&page(Some(vec![]))),
            r#"{"things":[{"id":"x"}],"things_links":[]}"#
        );
        assert_eq!(
            body(&page(Some(vec![Link {
                href: "http://h/v2.0/things?limit=1&marker=x".into(),
                rel: "next",
            }]))),
            r#"{"things":[{"id":"x"}],"things_links":[{"href":"http://h/v2.0/things?limit=1&marker=x","rel":"next"}]}"#
        );
        assert_eq!(
            body(&Envelope::new(
                "versions",
                [VersionView::v2("http://h/v2.0/".into())]
            )),
            r#"{"versions":[{"id":"v2.0","links":[{"href":"http://h/v2.0/","rel":"self"}],"status":"CURRENT"}]}"#
        );
        assert_eq!(
            body(&ResourceView::new("http://h", "port", "ports")),
            r#"{"collection":"ports","links":[{"href":"http://h/v2.0/ports","rel":"self"}],"name":"port"}"#
        );
        let ips: [IpAddr; 2] = ["192.0.2.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(body(&TextList(&ips)), r#"["192.0.2.1","::1"]"#);
        assert_eq!(body(&TextList::<IpAddr>(&[])), "[]");
        // A view that is not an object cannot be projected: a 500, not a panic.
        assert_eq!(to_map(&EmptyList).unwrap_err().status(), 500);
    }
}
