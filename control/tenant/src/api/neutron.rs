//! The Neutron v2.0 resources: `/v2.0/networks`, `/v2.0/subnets`, `/v2.0/ports` (create,
//! list, show, update, delete), their JSON views per caller, and request parsing.
//!
//! Contract:
//! - Bodies are `{"network": {...}}` in and out, lists `{"networks": [...]}` (plus
//!   `networks_links` when `limit` is given); create answers 201, show/list/update 200, delete
//!   204 with no body; every error is a NeutronError (see [`crate::error`]).
//! - Views ([`NetworkView`], [`SubnetView`], [`PortView`]; their attribute names are the
//!   `*_ATTRS` lists here): `tenant_id` and `project_id` are both present; provider attributes
//!   (`provider:network_type`, `provider:segmentation_id`, `provider:physical_network`) and
//!   binding attributes (`binding:host_id`, `binding:profile`, `binding:vif_type`,
//!   `binding:vif_details`) are shown to, and settable by, provider tokens only.
//! - strato's binding: `binding:profile` is `{"interface": "<ifname>", "kind": "tap"|"veth"}`
//!   (kind defaults to tap; `{}` or null removes the interface); `binding:vif_type` shows the
//!   kind of a bound port and `unbound` otherwise.

use super::body::{envelope, obj, obj_str, parse_ip, Attrs};
use super::query::ListQuery;
use super::view::{to_map, Envelope};
pub use super::view::{NetworkView, PortView, SubnetView};
use super::{blocking, collection_url, created, json_ok, no_content, App, RawBody, P};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::ipam::GatewaySpec;
use crate::model::{HostRoute, InterfaceKind, IpRange, LocalInterface, MacAddr, Port};
use crate::service::{
    FixedIpRequest, NetworkCreate, NetworkUpdate, PortCreate, PortUpdate, SubnetCreate,
    SubnetUpdate,
};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// Network attributes every caller sees.
pub const NETWORK_ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "tenant_id",
    "project_id",
    "admin_state_up",
    "shared",
    "status",
    "subnets",
    "mtu",
    "router:external",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];
/// Network attributes only providers see.
pub const NETWORK_PROVIDER_ATTRS: &[&str] = &[
    "provider:network_type",
    "provider:segmentation_id",
    "provider:physical_network",
];
/// Subnet attributes.
pub const SUBNET_ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "network_id",
    "tenant_id",
    "project_id",
    "ip_version",
    "cidr",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "subnetpool_id",
    "service_types",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];
/// Port attributes every caller sees.
pub const PORT_ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "network_id",
    "tenant_id",
    "project_id",
    "mac_address",
    "admin_state_up",
    "status",
    "fixed_ips",
    "device_id",
    "device_owner",
    "allowed_address_pairs",
    "security_groups",
    "binding:vnic_type",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];
/// Port attributes only providers see.
pub const PORT_PROVIDER_ATTRS: &[&str] = &[
    "binding:host_id",
    "binding:profile",
    "binding:vif_type",
    "binding:vif_details",
];

/// The attribute names of a view.
pub fn attrs(base: &[&'static str], provider: &[&'static str], c: &Caller) -> Vec<&'static str> {
    let mut v = base.to_vec();
    if c.is_admin() {
        v.extend_from_slice(provider);
    }
    v
}

/// Path ids may carry Neutron's `.json` suffix.
pub fn strip_json(id: &str) -> &str {
    id.strip_suffix(".json").unwrap_or(id)
}

// ----- request parsing -----

const NETWORK_READ_ONLY: &[&str] = &[
    "id",
    "status",
    "subnets",
    "mtu",
    "router:external",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

/// `{"network": {...}}` for POST.
pub fn parse_network_create(body: &[u8]) -> Result<NetworkCreate, ApiError> {
    let mut a = envelope(body, "network", "networks")?;
    let r = NetworkCreate {
        tenant_id: a.tenant()?,
        name: a.string("name")?,
        description: a.string("description")?,
        admin_state_up: a.boolean("admin_state_up")?,
        shared: a.boolean("shared")?,
        network_type: a.string("provider:network_type")?,
        segmentation_id: a.u32("provider:segmentation_id")?,
        physical_network: a.nullable_string("provider:physical_network")?.flatten(),
    };
    a.finish(NETWORK_READ_ONLY, true)?;
    Ok(r)
}

/// `{"network": {...}}` for PUT.
pub fn parse_network_update(body: &[u8]) -> Result<NetworkUpdate, ApiError> {
    let mut a = envelope(body, "network", "networks")?;
    for k in NETWORK_PROVIDER_ATTRS {
        if a.has(k) {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for operation: updating provider attribute {k} is not supported."
            )));
        }
    }
    let r = NetworkUpdate {
        name: a.string("name")?,
        description: a.string("description")?,
        admin_state_up: a.boolean("admin_state_up")?,
        shared: a.boolean("shared")?,
    };
    let mut ro = NETWORK_READ_ONLY.to_vec();
    ro.extend_from_slice(&["tenant_id", "project_id"]);
    a.finish(&ro, false)?;
    Ok(r)
}

fn parse_pools(v: Vec<Value>) -> Result<Vec<IpRange>, ApiError> {
    let k = "allocation_pools";
    v.iter()
        .map(|p| {
            let o = obj(k, p, &["start", "end"])?;
            let start = obj_str(k, o, "start")?;
            let end = obj_str(k, o, "end")?;
            match (start, end) {
                (Some(s), Some(e)) => Ok(IpRange {
                    start: parse_ip(k, &s)?,
                    end: parse_ip(k, &e)?,
                }),
                _ => Err(ApiError::BadRequest(
                    "Invalid input for allocation_pools. Reason: each pool needs start and end."
                        .into(),
                )),
            }
        })
        .collect()
}

fn parse_routes(v: Vec<Value>) -> Result<Vec<HostRoute>, ApiError> {
    let k = "host_routes";
    v.iter()
        .map(|r| {
            let o = obj(k, r, &["destination", "nexthop"])?;
            let (Some(d), Some(n)) = (obj_str(k, o, "destination")?, obj_str(k, o, "nexthop")?)
            else {
                return Err(ApiError::BadRequest(
                    "Invalid input for host_routes. Reason: each route needs destination and nexthop."
                        .into(),
                ));
            };
            Ok(HostRoute {
                destination: d.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "Invalid input for host_routes. Reason: '{d}' is not a valid IP subnet."
                    ))
                })?,
                nexthop: parse_ip(k, &n)?,
            })
        })
        .collect()
}

fn parse_dns(v: Vec<Value>) -> Result<Vec<std::net::IpAddr>, ApiError> {
    v.iter()
        .map(|d| match d {
            Value::String(s) => parse_ip("dns_nameservers", s),
            other => Err(ApiError::BadRequest(format!(
                "Invalid input for dns_nameservers. Reason: '{other}' is not a valid nameserver."
            ))),
        })
        .collect()
}

fn parse_gateway(a: &mut Attrs) -> Result<Option<GatewaySpec>, ApiError> {
    Ok(match a.nullable_ip("gateway_ip")? {
        None => None,
        Some(None) => Some(GatewaySpec::Disabled),
        Some(Some(ip)) => Some(GatewaySpec::Given(ip)),
    })
}

const SUBNET_READ_ONLY: &[&str] = &[
    "id",
    "service_types",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

fn ipv6_modes(a: &mut Attrs) -> Result<(), ApiError> {
    for k in ["ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id"] {
        if let Some(Some(v)) = a.nullable_string(k)? {
            return Err(ApiError::InvalidInput(format!(
                "{k} '{v}' is not supported (only null)"
            )));
        }
    }
    Ok(())
}

/// `{"subnet": {...}}` for POST.
pub fn parse_subnet_create(body: &[u8]) -> Result<SubnetCreate, ApiError> {
    let mut a = envelope(body, "subnet", "subnets")?;
    let tenant_id = a.tenant()?;
    let network_id = a.string("network_id")?.ok_or_else(|| {
        ApiError::BadRequest(
            "Failed to parse request. Required attribute 'network_id' not specified".into(),
        )
    })?;
    let cidr_s = a.string("cidr")?.ok_or_else(|| {
        ApiError::BadRequest(
            "Failed to parse request. Required attribute 'cidr' not specified".into(),
        )
    })?;
    let cidr = cidr_s
        .parse()
        .map_err(|_| ApiError::InvalidInput(format!("'{cidr_s}' is not a valid IP subnet")))?;
    let ip_version = a.u32("ip_version")?.map(|v| u8::try_from(v).unwrap_or(0));
    let r = SubnetCreate {
        tenant_id,
        network_id,
        name: a.string("name")?,
        description: a.string("description")?,
        cidr,
        ip_version,
        gateway: parse_gateway(&mut a)?.unwrap_or(GatewaySpec::Default),
        allocation_pools: a.list("allocation_pools")?.map(parse_pools).transpose()?,
        dns_nameservers: a.list("dns_nameservers")?.map(parse_dns).transpose()?,
        host_routes: a.list("host_routes")?.map(parse_routes).transpose()?,
        enable_dhcp: a.boolean("enable_dhcp")?,
    };
    ipv6_modes(&mut a)?;
    a.finish(SUBNET_READ_ONLY, true)?;
    Ok(r)
}

/// `{"subnet": {...}}` for PUT.
pub fn parse_subnet_update(body: &[u8]) -> Result<SubnetUpdate, ApiError> {
    let mut a = envelope(body, "subnet", "subnets")?;
    let r = SubnetUpdate {
        name: a.string("name")?,
        description: a.string("description")?,
        gateway: parse_gateway(&mut a)?,
        allocation_pools: a.list("allocation_pools")?.map(parse_pools).transpose()?,
        dns_nameservers: a.list("dns_nameservers")?.map(parse_dns).transpose()?,
        host_routes: a.list("host_routes")?.map(parse_routes).transpose()?,
        enable_dhcp: a.boolean("enable_dhcp")?,
    };
    let mut ro = SUBNET_READ_ONLY.to_vec();
    ro.extend_from_slice(&[
        "cidr",
        "ip_version",
        "network_id",
        "tenant_id",
        "project_id",
        "ipv6_ra_mode",
        "ipv6_address_mode",
        "subnetpool_id",
    ]);
    a.finish(&ro, false)?;
    Ok(r)
}

fn parse_fixed_ips(v: Vec<Value>) -> Result<Vec<FixedIpRequest>, ApiError> {
    let k = "fixed_ips";
    v.iter()
        .map(|f| {
            let o = obj(k, f, &["subnet_id", "ip_address"])?;
            Ok(FixedIpRequest {
                subnet_id: obj_str(k, o, "subnet_id")?,
                ip_address: obj_str(k, o, "ip_address")?
                    .map(|s| parse_ip(k, &s))
                    .transpose()?,
            })
        })
        .collect()
}

fn parse_profile(v: Value) -> Result<Option<LocalInterface>, ApiError> {
    let k = "binding:profile";
    match v {
        Value::Null => Ok(None),
        Value::Object(ref o) if o.is_empty() => Ok(None),
        ref v => {
            let o = obj(k, v, &["interface", "kind"])?;
            let name = obj_str(k, o, "interface")?.ok_or_else(|| {
                ApiError::BadRequest(
                    "Invalid input for binding:profile. Reason: 'interface' is required.".into(),
                )
            })?;
            let kind = match obj_str(k, o, "kind")?.as_deref() {
                None | Some("tap") => InterfaceKind::Tap,
                Some("veth") => InterfaceKind::Veth,
                Some(x) => {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid input for binding:profile. Reason: kind '{x}' is not tap or veth."
                    )))
                }
            };
            Ok(Some(LocalInterface { name, kind }))
        }
    }
}

fn vnic_type(a: &mut Attrs) -> Result<(), ApiError> {
    match a.string("binding:vnic_type")?.as_deref() {
        None | Some("normal") => Ok(()),
        Some(v) => Err(ApiError::InvalidInput(format!(
            "binding:vnic_type '{v}' is not supported (normal)"
        ))),
    }
}

const PORT_READ_ONLY: &[&str] = &[
    "id",
    "status",
    "allowed_address_pairs",
    "security_groups",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "binding:vif_type",
    "binding:vif_details",
];

/// `{"port": {...}}` for POST.
pub fn parse_port_create(body: &[u8]) -> Result<PortCreate, ApiError> {
    let mut a = envelope(body, "port", "ports")?;
    let tenant_id = a.tenant()?;
    let network_id = a.string("network_id")?.ok_or_else(|| {
        ApiError::BadRequest(
            "Failed to parse request. Required attribute 'network_id' not specified".into(),
        )
    })?;
    let mac_address = match a.string("mac_address")? {
        None => None,
        Some(s) => Some(s.parse::<MacAddr>().map_err(|e| {
            ApiError::BadRequest(format!("Invalid input for mac_address. Reason: {e}."))
        })?),
    };
    vnic_type(&mut a)?;
    let r = PortCreate {
        tenant_id,
        network_id,
        name: a.string("name")?,
        description: a.string("description")?,
        admin_state_up: a.boolean("admin_state_up")?,
        mac_address,
        fixed_ips: a.list("fixed_ips")?.map(parse_fixed_ips).transpose()?,
        device_id: a.string("device_id")?,
        device_owner: a.string("device_owner")?,
        host_id: a.string("binding:host_id")?,
        interface: a.take("binding:profile").map(parse_profile).transpose()?,
    };
    a.finish(PORT_READ_ONLY, true)?;
    Ok(r)
}

/// `{"port": {...}}` for PUT.
pub fn parse_port_update(body: &[u8]) -> Result<PortUpdate, ApiError> {
    let mut a = envelope(body, "port", "ports")?;
    vnic_type(&mut a)?;
    let r = PortUpdate {
        name: a.string("name")?,
        description: a.string("description")?,
        admin_state_up: a.boolean("admin_state_up")?,
        fixed_ips: match a.take("fixed_ips") {
            None => None,
            Some(Value::Array(v)) => Some(parse_fixed_ips(v)?),
            Some(Value::Null) => Some(Vec::new()),
            Some(v) => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid input for fixed_ips. Reason: '{v}' is not a list."
                )))
            }
        },
        device_id: a.string("device_id")?,
        device_owner: a.string("device_owner")?,
        host_id: a.string("binding:host_id")?,
        interface: a.take("binding:profile").map(parse_profile).transpose()?,
    };
    let mut ro = PORT_READ_ONLY.to_vec();
    ro.extend_from_slice(&["network_id", "tenant_id", "project_id", "mac_address"]);
    a.finish(&ro, false)?;
    Ok(r)
}

// ----- handlers -----

/// `{"<key>": view}`, projected to the `fields=` of the query `q`.
fn show(q: Option<String>, key: &'static str, view: &impl Serialize) -> Result<Response, ApiError> {
    let q = ListQuery::parse(q.as_deref())?;
    Ok(json_ok(&Envelope::new(key, q.project(to_map(view)?))))
}

/// GET /v2.0/networks
pub async fn list_networks(
    State(app): State<Arc<App>>,
    c: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(q.as_deref())?;
    let items = app
        .service
        .list_networks(&c)?
        .iter()
        .map(|n| to_map(&NetworkView::new(n, &c)))
        .collect::<Result<_, _>>()?;
    let a = attrs(NETWORK_ATTRS, NETWORK_PROVIDER_ATTRS, &c);
    let page = q.list("networks", items, &a, &collection_url(&headers, "networks"))?;
    Ok(json_ok(&page))
}

/// POST /v2.0/networks
pub async fn create_network(
    State(app): State<Arc<App>>,
    c: Caller,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let req = parse_network_create(&body)?;
    let svc = app.service.clone();
    let c2 = c.clone();
    let n = blocking(move || svc.create_network(&c2, req)).await?;
    Ok(created(&Envelope::new("network", NetworkView::new(&n, &c))))
}

/// GET /v2.0/networks/{id}
pub async fn show_network(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let n = app.service.get_network(&c, strip_json(&id))?;
    show(q, "network", &NetworkView::new(&n, &c))
}

/// PUT /v2.0/networks/{id}
pub async fn update_network(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let req = parse_network_update(&body)?;
    let (svc, c2) = (app.service.clone(), c.clone());
    let id = strip_json(&id).to_string();
    let n = blocking(move || svc.update_network(&c2, &id, req)).await?;
    Ok(json_ok(&Envelope::new("network", NetworkView::new(&n, &c))))
}

/// DELETE /v2.0/networks/{id}
pub async fn delete_network(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
) -> Result<Response, ApiError> {
    let svc = app.service.clone();
    let id = strip_json(&id).to_string();
    blocking(move || svc.delete_network(&c, &id)).await?;
    Ok(no_content())
}

/// GET /v2.0/subnets
pub async fn list_subnets(
    State(app): State<Arc<App>>,
    c: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(q.as_deref())?;
    let items = app
        .service
        .list_subnets(&c)?
        .iter()
        .map(|s| to_map(&SubnetView::new(s)))
        .collect::<Result<_, _>>()?;
    let page = q.list(
        "subnets",
        items,
        SUBNET_ATTRS,
        &collection_url(&headers, "subnets"),
    )?;
    Ok(json_ok(&page))
}

/// POST /v2.0/subnets
pub async fn create_subnet(
    State(app): State<Arc<App>>,
    c: Caller,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let req = parse_subnet_create(&body)?;
    let svc = app.service.clone();
    let s = blocking(move || svc.create_subnet(&c, req)).await?;
    Ok(created(&Envelope::new("subnet", SubnetView::new(&s))))
}

/// GET /v2.0/subnets/{id}
pub async fn show_subnet(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let s = app.service.get_subnet(&c, strip_json(&id))?;
    show(q, "subnet", &SubnetView::new(&s))
}

/// PUT /v2.0/subnets/{id}
pub async fn update_subnet(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let req = parse_subnet_update(&body)?;
    let svc = app.service.clone();
    let id = strip_json(&id).to_string();
    let s = blocking(move || svc.update_subnet(&c, &id, req)).await?;
    Ok(json_ok(&Envelope::new("subnet", SubnetView::new(&s))))
}

/// DELETE /v2.0/subnets/{id}
pub async fn delete_subnet(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
) -> Result<Response, ApiError> {
    let svc = app.service.clone();
    let id = strip_json(&id).to_string();
    blocking(move || svc.delete_subnet(&c, &id)).await?;
    Ok(no_content())
}

/// GET /v2.0/ports
pub async fn list_ports(
    State(app): State<Arc<App>>,
    c: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(q.as_deref())?;
    // Off the async threads (a list of thousands of ports takes a while), and the exact-string
    // filters applied to the ports before any JSON is built; `q.list` applies every filter
    // again, so the result is the same as filtering the JSON alone.
    let (svc, c2, filters) = (app.service.clone(), c.clone(), q.filters.clone());
    let items = blocking(move || {
        let ports = svc.list_ports_where(&c2, |p| port_prefilter(p, &filters))?;
        ports
            .iter()
            .map(|p| to_map(&PortView::new(p, &c2)))
            .collect()
    })
    .await?;
    let a = attrs(PORT_ATTRS, PORT_PROVIDER_ATTRS, &c);
    let page = q.list("ports", items, &a, &collection_url(&headers, "ports"))?;
    Ok(json_ok(&page))
}

/// False when a port cannot pass one of the filters on a plain string attribute (where the
/// JSON filter is exact string equality); true otherwise (other filters are left to
/// [`ListQuery::list`]).
fn port_prefilter(p: &Port, filters: &[(String, Vec<String>)]) -> bool {
    filters.iter().all(|(k, vals)| {
        let v: std::borrow::Cow<'_, str> = match k.as_str() {
            "id" => p.id.as_str().into(),
            "network_id" => p.network_id.as_str().into(),
            "name" => p.name.as_str().into(),
            "device_id" => p.device_id.as_str().into(),
            "device_owner" => p.device_owner.as_str().into(),
            "tenant_id" | "project_id" => p.tenant_id.as_str().into(),
            "mac_address" => p.mac_address.to_string().into(),
            _ => return true,
        };
        vals.iter().any(|w| *w == v)
    })
}

/// POST /v2.0/ports
pub async fn create_port(
    State(app): State<Arc<App>>,
    c: Caller,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let req = parse_port_create(&body)?;
    let (svc, c2) = (app.service.clone(), c.clone());
    let p = blocking(move || svc.create_port(&c2, req)).await?;
    Ok(created(&Envelope::new("port", PortView::new(&p, &c))))
}

/// GET /v2.0/ports/{id}
pub async fn show_port(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = app.service.get_port(&c, strip_json(&id))?;
    show(q, "port", &PortView::new(&p, &c))
}

/// PUT /v2.0/ports/{id}
pub async fn update_port(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let req = parse_port_update(&body)?;
    let (svc, c2) = (app.service.clone(), c.clone());
    let id = strip_json(&id).to_string();
    let p = blocking(move || svc.update_port(&c2, &id, req)).await?;
    Ok(json_ok(&Envelope::new("port", PortView::new(&p, &c))))
}

/// DELETE /v2.0/ports/{id}
pub async fn delete_port(
    State(app): State<Arc<App>>,
    c: Caller,
    P(id): P<String>,
) -> Result<Response, ApiError> {
    let svc = app.service.clone();
    let id = strip_json(&id).to_string();
    blocking(move || svc.delete_port(&c, &id)).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use crate::service::NetworkInfo;
    use serde_json::{json, Map};

    fn sample_port() -> Port {
        Port {
            id: "p".into(),
            network_id: "n".into(),
            tenant_id: "t".into(),
            name: String::new(),
            description: String::new(),
            mac_address: MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]),
            admin_state_up: true,
            fixed_ips: vec![],
            device_id: String::new(),
            device_owner: String::new(),
            binding: Binding {
                host_id: "h".into(),
                interface: Some(LocalInterface {
                    name: "tap0".into(),
                    kind: InterfaceKind::Veth,
                }),
            },
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    #[test]
    fn views_have_exactly_their_attributes() {
        let keys = |m: Map<String, Value>| {
            let mut k: Vec<String> = m.keys().cloned().collect();
            k.sort();
            k
        };
        let sorted = |v: Vec<&str>| {
            let mut v: Vec<String> = v.into_iter().map(String::from).collect();
            v.sort();
            v
        };
        let p = sample_port();
        for c in [Caller::tenant("t"), Caller::provider("admin")] {
            assert_eq!(
                keys(to_map(&PortView::new(&p, &c)).unwrap()),
                sorted(attrs(PORT_ATTRS, PORT_PROVIDER_ATTRS, &c))
            );
        }
        let admin = to_map(&PortView::new(&p, &Caller::provider("admin"))).unwrap();
        assert_eq!(
            admin["binding:profile"],
            json!({"interface": "tap0", "kind": "veth"})
        );
        assert_eq!(admin["binding:vif_type"], "veth");
        assert_eq!(admin["status"], "ACTIVE");
        let n = NetworkInfo {
            network: Network {
                id: "n".into(),
                tenant_id: "t".into(),
                name: String::new(),
                description: String::new(),
                admin_state_up: false,
                shared: false,
                network_type: NetworkType::Vxlan,
                vni: 7,
                mtu: 1450,
                created_at: String::new(),
                updated_at: String::new(),
                revision_number: 0,
            },
            subnets: vec![],
        };
        for c in [Caller::tenant("t"), Caller::provider("admin")] {
            assert_eq!(
                keys(to_map(&NetworkView::new(&n, &c)).unwrap()),
                sorted(attrs(NETWORK_ATTRS, NETWORK_PROVIDER_ATTRS, &c))
            );
        }
        assert_eq!(
            to_map(&NetworkView::new(&n, &Caller::tenant("t"))).unwrap()["status"],
            "DOWN"
        );
        let s = Subnet {
            id: "s".into(),
            network_id: "n".into(),
            tenant_id: "t".into(),
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
        };
        let sv = to_map(&SubnetView::new(&s)).unwrap();
        assert_eq!(sv["gateway_ip"], Value::Null);
        assert_eq!(keys(sv), sorted(SUBNET_ATTRS.to_vec()));
    }

    #[test]
    fn parse_requests() {
        let r = parse_port_create(
            br#"{"port": {"network_id": "n", "fixed_ips": [{"subnet_id": "s"}, {"ip_address": "10.0.0.5"}],
                 "binding:host_id": "h", "binding:profile": {"interface": "tap0"}, "binding:vnic_type": "normal"}}"#,
        )
        .unwrap();
        assert_eq!(r.fixed_ips.as_ref().unwrap().len(), 2);
        assert_eq!(
            r.interface,
            Some(Some(LocalInterface {
                name: "tap0".into(),
                kind: InterfaceKind::Tap
            }))
        );
        let e = parse_port_create(br#"{"port": {"network_id": "n", "mac_address": "zz"}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("mac_address"));
        let e = parse_port_create(
            br#"{"port": {"network_id": "n", "binding:profile": {"interface": "t", "x": 1}}}"#,
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        let e = parse_port_update(br#"{"port": {"network_id": "n"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Cannot update read-only attribute network_id"
        );
        let r = parse_subnet_create(
            br#"{"subnet": {"network_id": "n", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": null}}"#,
        )
        .unwrap();
        assert_eq!(r.gateway, GatewaySpec::Disabled);
        let e = parse_subnet_create(br#"{"subnet": {"network_id": "n", "cidr": "10.0.0.0/33"}}"#)
            .unwrap_err();
        assert_eq!(e.neutron_type(), "InvalidInput");
        let e = parse_subnet_create(br#"{"subnet": {"network_id": "n"}}"#).unwrap_err();
        assert!(e.to_string().contains("cidr"));
        let e =
            parse_network_update(br#"{"network": {"provider:segmentation_id": 5}}"#).unwrap_err();
        assert_eq!(e.status(), 400);
        let r = parse_network_create(br#"{"network": {"name": "x", "project_id": "p"}}"#).unwrap();
        assert_eq!(r.tenant_id.as_deref(), Some("p"));
    }
}
