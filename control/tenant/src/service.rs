//! [`TenantService`]: the tenant model, its allocations and its store, usable without HTTP (the
//! API, the compiler and tests call it directly).
//!
//! Contract:
//! - Every write is checked completely (policy, then values, then allocations) against the
//!   current model, then written to SQLite in one transaction, and only then applied to the
//!   in-memory model and sent to subscribers. A write that fails anywhere changes nothing.
//! - Writers are serialized (one mutex around the store); allocation and insert happen under
//!   it, so two concurrent calls never get the same IP, MAC or VNI (and the schema's unique
//!   constraints would refuse it anyway). Readers take a read lock and never wait for SQLite.
//! - Visibility: a provider sees everything; a tenant sees its own networks, subnets and ports,
//!   plus shared networks and their subnets (read-only, and it may put its own ports on them);
//!   a cloud caller sees only hosts. What a caller cannot see is "not found" (404); what it
//!   can see but not change, or an attribute it may not set, is "policy" (403).
//! - [`TenantService::subscribe`] returns the full model and a channel of every later
//!   [`ChangeEvent`], atomically (no change is missed or seen twice).

use super::auth::Caller;
use super::config::{ConfigError, HostSpec, Role, TenantConfig, VNI_MAX};
use super::error::ApiError;
use super::ipam::{self, GatewaySpec, Pool};
use super::model::*;
use super::store::{Op, Store, StoreError};
use crossbeam::channel::{unbounded, Receiver, Sender};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Most host routes per subnet.
pub const MAX_HOST_ROUTES: usize = 20;
/// Most DNS servers per subnet (Neutron's default `max_dns_nameservers`).
pub const MAX_DNS_NAMESERVERS: usize = 5;
/// Longest name, description, device id or owner, tenant id.
pub const MAX_STR: usize = 255;
/// MTU of a VXLAN network over a 1500-byte underlay.
pub const VXLAN_MTU: u32 = 1450;

/// Why the service could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The `[api]` section is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The store could not be opened or read.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The stored model contradicts itself (e.g. two ports with one address).
    #[error("the stored tenant model is inconsistent: {0}")]
    Inconsistent(String),
}

/// Create a network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkCreate {
    /// Owner (default: the caller's tenant); another tenant needs a provider.
    pub tenant_id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Default true.
    pub admin_state_up: Option<bool>,
    /// Default false; true needs a provider.
    pub shared: Option<bool>,
    /// `provider:network_type` (only "vxlan"); provider only.
    pub network_type: Option<String>,
    /// `provider:segmentation_id` (a VNI, any in 1..=16777215); provider only.
    pub segmentation_id: Option<u32>,
    /// `provider:physical_network` (must be null for vxlan); provider only.
    pub physical_network: Option<String>,
}

/// Update a network (absent: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkUpdate {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Administrative state.
    pub admin_state_up: Option<bool>,
    /// Shared (provider only).
    pub shared: Option<bool>,
}

/// Create a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetCreate {
    /// Owner (default: the network's owner).
    pub tenant_id: Option<String>,
    /// The network.
    pub network_id: String,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// The prefix.
    pub cidr: IpNet,
    /// 4 or 6; must match the CIDR when given.
    pub ip_version: Option<u8>,
    /// Gateway: default, none or an address.
    pub gateway: GatewaySpec,
    /// Pools (default: the CIDR minus the gateway).
    pub allocation_pools: Option<Vec<IpRange>>,
    /// DNS servers.
    pub dns_nameservers: Option<Vec<IpAddr>>,
    /// Static routes (at most 20).
    pub host_routes: Option<Vec<HostRoute>>,
    /// Default true.
    pub enable_dhcp: Option<bool>,
}

/// Update a subnet (absent: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetUpdate {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// New gateway (`Disabled`: none).
    pub gateway: Option<GatewaySpec>,
    /// New pools (addresses already allocated outside them stay allocated).
    pub allocation_pools: Option<Vec<IpRange>>,
    /// DNS servers.
    pub dns_nameservers: Option<Vec<IpAddr>>,
    /// Static routes.
    pub host_routes: Option<Vec<HostRoute>>,
    /// DHCP.
    pub enable_dhcp: Option<bool>,
}

/// One requested fixed IP: a subnet to allocate from, an address, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedIpRequest {
    /// The subnet.
    pub subnet_id: Option<String>,
    /// The address.
    pub ip_address: Option<IpAddr>,
}

/// Create a port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortCreate {
    /// Owner (default: the caller's tenant).
    pub tenant_id: Option<String>,
    /// The network.
    pub network_id: String,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Default true.
    pub admin_state_up: Option<bool>,
    /// A MAC (default: generated under the configured prefix).
    pub mac_address: Option<MacAddr>,
    /// Addresses (default: one from the first IPv4 and one from the first IPv6 subnet that
    /// has a free address; none if the network has no subnet).
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    /// Device id.
    pub device_id: Option<String>,
    /// Device owner.
    pub device_owner: Option<String>,
    /// `binding:host_id` (provider only).
    pub host_id: Option<String>,
    /// `binding:profile` interface (`Some(None)`: none) (provider only).
    pub interface: Option<Option<LocalInterface>>,
}

/// Update a port (absent: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortUpdate {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Administrative state.
    pub admin_state_up: Option<bool>,
    /// The new address list: entries naming an address the port has keep it; an entry with
    /// only a subnet keeps the port's address in that subnet if it has one, else allocates;
    /// addresses not listed are released.
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    /// Device id.
    pub device_id: Option<String>,
    /// Device owner.
    pub device_owner: Option<String>,
    /// `binding:host_id` ("" unbinds) (provider only).
    pub host_id: Option<String>,
    /// `binding:profile` interface (provider only).
    pub interface: Option<Option<LocalInterface>>,
}

/// A network with the ids of its subnets (what the API shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// The network.
    pub network: Network,
    /// Its subnets, in creation order.
    pub subnets: Vec<String>,
}

/// An interface bound on a host (the cloud view's "physical ports").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundInterface {
    /// The interface.
    pub interface: LocalInterface,
    /// The port.
    pub port_id: String,
    /// Its network.
    pub network_id: String,
    /// The network's VNI.
    pub vni: u32,
    /// The port's MAC.
    pub mac_address: MacAddr,
    /// The port's status.
    pub status: &'static str,
}

/// A host of the cloud view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Name.
    pub name: String,
    /// VTEP address (None: a host only seen in bindings, not configured).
    pub vtep_ip: Option<IpAddr>,
    /// Configured uplinks.
    pub uplinks: Vec<String>,
    /// Interfaces bound there.
    pub interfaces: Vec<BoundInterface>,
}

/// What [`TenantService::subscribe`] returns.
#[derive(Debug)]
pub struct Subscription {
    /// The model as of `snapshot.seq`.
    pub snapshot: Snapshot,
    /// Every change after it, in order.
    pub events: Receiver<ChangeEvent>,
}

struct NetEntry {
    net: Network,
    subnets: Vec<String>,
}

struct SubEntry {
    subnet: Subnet,
    ipam: Pool,
}

#[derive(Default)]
struct State {
    networks: BTreeMap<String, NetEntry>,
    subnets: BTreeMap<String, SubEntry>,
    ports: BTreeMap<String, Port>,
    vnis: Pool,
    macs: Pool,
    bindings: HashMap<(String, String), String>,
    seq: u64,
}

struct Writer {
    store: Store,
    subscribers: Vec<Sender<ChangeEvent>>,
}

/// The tenant service; see the module docs. Share it with `Arc`.
pub struct TenantService {
    vni_range: (u32, u32),
    mac_prefix: Vec<u8>,
    hosts: Vec<HostSpec>,
    local_host: Option<String>,
    state: RwLock<State>,
    writer: Mutex<Writer>,
}

impl std::fmt::Debug for TenantService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantService")
            .field("vni_range", &self.vni_range)
            .field("hosts", &self.hosts.len())
            .finish_non_exhaustive()
    }
}

fn now() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_default()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn internal(e: StoreError) -> ApiError {
    tracing::error!("tenant store write failed: {e}");
    ApiError::Internal(e.to_string())
}

fn check_len(attr: &str, v: &Option<String>) -> Result<(), ApiError> {
    if let Some(s) = v {
        if s.chars().count() > MAX_STR {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for {attr}. Reason: '{}...' exceeds maximum length of {MAX_STR}.",
                s.chars().take(16).collect::<String>()
            )));
        }
    }
    Ok(())
}

fn family_of(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        4
    } else {
        6
    }
}

fn net_family(n: &IpNet) -> u8 {
    match n {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

impl TenantService {
    /// Opens the service on the database at `db_path` (created if missing) and loads it.
    pub fn open(cfg: &TenantConfig, db_path: &Path) -> Result<TenantService, OpenError> {
        cfg.validate()?;
        let store = Store::open(db_path, cfg.sync)?;
        Self::with_store(cfg, store)
    }

    /// A service over a private in-memory database (tests, benchmarks).
    pub fn in_memory(cfg: &TenantConfig) -> Result<TenantService, OpenError> {
        cfg.validate()?;
        Self::with_store(cfg, Store::open_in_memory()?)
    }

    fn with_store(cfg: &TenantConfig, store: Store) -> Result<TenantService, OpenError> {
        let mac_prefix = cfg.mac_prefix_octets()?;
        let loaded = store.load()?;
        let bits = 8 * (6 - mac_prefix.len() as u32);
        let base = mac_prefix
            .iter()
            .fold(0u128, |a, b| (a << 8) | u128::from(*b))
            << bits;
        let mut st = State {
            vnis: Pool::new(vec![(
                u128::from(cfg.vni_range.0),
                u128::from(cfg.vni_range.1),
            )]),
            macs: Pool::new(vec![(base, base | ((1u128 << bits) - 1))]),
            ..State::default()
        };
        let bad = |s: String| OpenError::Inconsistent(s);
        for n in loaded.networks {
            if !st.vnis.insert(u128::from(n.vni), false) {
                return Err(bad(format!("VNI {} used twice", n.vni)));
            }
            st.networks.insert(
                n.id.clone(),
                NetEntry {
                    net: n,
                    subnets: Vec::new(),
                },
            );
        }
        for s in loaded.subnets {
            let Some(ne) = st.networks.get_mut(&s.network_id) else {
                return Err(bad(format!("subnet {} has no network", s.id)));
            };
            ne.subnets.push(s.id.clone());
            let ipam = Pool::new(Pool::ranges_of(&s.allocation_pools));
            st.subnets
                .insert(s.id.clone(), SubEntry { subnet: s, ipam });
        }
        for p in loaded.ports {
            if !st.networks.contains_key(&p.network_id) {
                return Err(bad(format!("port {} has no network", p.id)));
            }
            if !st.macs.insert(u128::from(p.mac_address.to_u64()), false) {
                return Err(bad(format!("MAC {} used twice", p.mac_address)));
            }
            for f in &p.fixed_ips {
                let Some(se) = st.subnets.get_mut(&f.subnet_id) else {
                    return Err(bad(format!("port {} uses a missing subnet", p.id)));
                };
                if !se.ipam.insert(ipam::to_u128(f.ip_address), false) {
                    return Err(bad(format!("address {} used twice", f.ip_address)));
                }
            }
            if let Some(i) = &p.binding.interface {
                st.bindings
                    .insert((p.binding.host_id.clone(), i.name.clone()), p.id.clone());
            }
            st.ports.insert(p.id.clone(), p);
        }
        Ok(TenantService {
            vni_range: cfg.vni_range,
            mac_prefix,
            hosts: cfg.hosts.clone(),
            local_host: cfg.local_host.clone(),
            state: RwLock::new(st),
            writer: Mutex::new(Writer {
                store,
                subscribers: Vec::new(),
            }),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits `ops`, then applies `apply` to the model and sends `changes`.
    fn commit(
        &self,
        w: &mut Writer,
        ops: &[Op<'_>],
        apply: impl FnOnce(&mut State),
        changes: Vec<Change>,
    ) -> Result<(), ApiError> {
        w.store.apply(ops).map_err(internal)?;
        let mut st = self.write_state();
        apply(&mut st);
        for change in changes {
            st.seq += 1;
            let ev = ChangeEvent {
                seq: st.seq,
                change,
            };
            w.subscribers.retain(|s| s.send(ev.clone()).is_ok());
        }
        Ok(())
    }

    /// This host's name (`local_host`), for the compiler.
    pub fn local_host(&self) -> Option<&str> {
        self.local_host.as_deref()
    }

    /// The configured hosts (`[[api.host]]`: names and VTEP addresses), for the compiler.
    pub fn configured_hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// The configured VNI range.
    pub fn vni_range(&self) -> (u32, u32) {
        self.vni_range
    }

    /// The whole model now.
    pub fn snapshot(&self) -> Snapshot {
        let st = self.read();
        Snapshot {
            seq: st.seq,
            networks: st.networks.values().map(|e| e.net.clone()).collect(),
            subnets: st.subnets.values().map(|e| e.subnet.clone()).collect(),
            ports: st.ports.values().cloned().collect(),
        }
    }

    /// The model now and every later change (see the module docs).
    pub fn subscribe(&self) -> Subscription {
        let mut w = self.writer();
        let snapshot = self.snapshot();
        let (tx, rx) = unbounded();
        w.subscribers.push(tx);
        Subscription {
            snapshot,
            events: rx,
        }
    }

    /// Row counts in the store: (networks, subnets, ports, address allocations).
    pub fn store_counts(&self) -> Result<(u64, u64, u64, u64), ApiError> {
        self.writer().store.counts().map_err(internal)
    }

    fn api_caller(c: &Caller) -> Result<(), ApiError> {
        if c.role == Role::Cloud {
            return Err(ApiError::policy(
                "rule:cloud tokens see hosts only (/v2.0/strato/hosts)",
            ));
        }
        Ok(())
    }

    fn sees_network(c: &Caller, n: &Network) -> bool {
        c.is_admin() || n.tenant_id == c.tenant_id || n.shared
    }

    fn owns(c: &Caller, tenant_id: &str) -> bool {
        c.is_admin() || tenant_id == c.tenant_id
    }

    fn owner_for(c: &Caller, asked: &Option<String>, what: &str) -> Result<String, ApiError> {
        match asked {
            Some(t) if t != &c.tenant_id && !c.is_admin() => Err(ApiError::policy(&format!(
                "rule:create_{what} for another tenant"
            ))),
            Some(t) if t.is_empty() || t.chars().count() > MAX_STR => Err(ApiError::BadRequest(
                format!("Invalid input for tenant_id. Reason: '{t}' is not a valid tenant id."),
            )),
            Some(t) => Ok(t.clone()),
            None => Ok(c.tenant_id.clone()),
        }
    }

    // ----- networks -----

    /// Networks the caller can see.
    pub fn list_networks(&self, c: &Caller) -> Result<Vec<NetworkInfo>, ApiError> {
        Self::api_caller(c)?;
        let st = self.read();
        Ok(st
            .networks
            .values()
            .filter(|e| Self::sees_network(c, &e.net))
            .map(|e| NetworkInfo {
                network: e.net.clone(),
                subnets: e.subnets.clone(),
            })
            .collect())
    }

    /// One network.
    pub fn get_network(&self, c: &Caller, id: &str) -> Result<NetworkInfo, ApiError> {
        Self::api_caller(c)?;
        let st = self.read();
        match st.networks.get(id) {
            Some(e) if Self::sees_network(c, &e.net) => Ok(NetworkInfo {
                network: e.net.clone(),
                subnets: e.subnets.clone(),
            }),
            _ => Err(ApiError::not_found("Network", id)),
        }
    }

    /// Creates a network, allocating its VNI.
    pub fn create_network(&self, c: &Caller, req: NetworkCreate) -> Result<NetworkInfo, ApiError> {
        Self::api_caller(c)?;
        let tenant_id = Self::owner_for(c, &req.tenant_id, "network")?;
        if req.shared == Some(true) && !c.is_admin() {
            return Err(ApiError::policy("rule:create_network:shared"));
        }
        if !c.is_admin()
            && (req.network_type.is_some()
                || req.segmentation_id.is_some()
                || req.physical_network.is_some())
        {
            return Err(ApiError::policy(
                "rule:create_network:provider:network_type",
            ));
        }
        check_len("name", &req.name)?;
        check_len("description", &req.description)?;
        match req.network_type.as_deref() {
            None | Some("vxlan") => {}
            Some(t) => {
                return Err(ApiError::InvalidInput(format!(
                    "provider:network_type '{t}' is not supported (vxlan)"
                )))
            }
        }
        if req.physical_network.is_some() {
            return Err(ApiError::InvalidInput(
                "provider:physical_network is not allowed for a vxlan network".into(),
            ));
        }
        let mut w = self.writer();
        let vni = {
            let st = self.read();
            match req.segmentation_id {
                Some(v) if v == 0 || v > VNI_MAX => {
                    return Err(ApiError::InvalidInput(format!(
                        "provider:segmentation_id {v} is out of range (1 through {VNI_MAX})"
                    )))
                }
                Some(v) if st.vnis.is_used(u128::from(v)) => {
                    return Err(ApiError::TunnelIdInUse(v))
                }
                Some(v) => v,
                None => match st.vnis.find_free(&[]) {
                    Some(v) => v as u32,
                    None => return Err(ApiError::NoNetworkAvailable),
                },
            }
        };
        let t = now();
        let net = Network {
            id: new_id(),
            tenant_id,
            name: req.name.unwrap_or_default(),
            description: req.description.unwrap_or_default(),
            admin_state_up: req.admin_state_up.unwrap_or(true),
            shared: req.shared.unwrap_or(false),
            network_type: NetworkType::Vxlan,
            vni,
            mtu: VXLAN_MTU,
            created_at: t.clone(),
            updated_at: t,
            revision_number: 0,
        };
        let allocated = req.segmentation_id.is_none();
        self.commit(
            &mut w,
            &[Op::PutNetwork(&net)],
            |st| {
                st.vnis.insert(u128::from(vni), allocated);
                st.networks.insert(
                    net.id.clone(),
                    NetEntry {
                        net: net.clone(),
                        subnets: Vec::new(),
                    },
                );
            },
            vec![Change::NetworkUpserted(net.clone())],
        )?;
        Ok(NetworkInfo {
            network: net,
            subnets: Vec::new(),
        })
    }

    /// Updates a network.
    pub fn update_network(
        &self,
        c: &Caller,
        id: &str,
        req: NetworkUpdate,
    ) -> Result<NetworkInfo, ApiError> {
        Self::api_caller(c)?;
        check_len("name", &req.name)?;
        check_len("description", &req.description)?;
        let mut w = self.writer();
        let (net, subnets) = {
            let st = self.read();
            let e = match st.networks.get(id) {
                Some(e) if Self::sees_network(c, &e.net) => e,
                _ => return Err(ApiError::not_found("Network", id)),
            };
            if !Self::owns(c, &e.net.tenant_id) {
                return Err(ApiError::policy("rule:update_network"));
            }
            if req.shared.is_some() && !c.is_admin() {
                return Err(ApiError::policy("rule:update_network:shared"));
            }
            if req.shared == Some(false)
                && e.net.shared
                && st
                    .ports
                    .values()
                    .any(|p| p.network_id == id && p.tenant_id != e.net.tenant_id)
            {
                return Err(ApiError::InvalidSharedSetting(id.to_string()));
            }
            let mut n = e.net.clone();
            if let Some(v) = req.name {
                n.name = v;
            }
            if let Some(v) = req.description {
                n.description = v;
            }
            if let Some(v) = req.admin_state_up {
                n.admin_state_up = v;
            }
            if let Some(v) = req.shared {
                n.shared = v;
            }
            n.updated_at = now();
            n.revision_number += 1;
            (n, e.subnets.clone())
        };
        self.commit(
            &mut w,
            &[Op::PutNetwork(&net)],
            |st| {
                if let Some(e) = st.networks.get_mut(&net.id) {
                    e.net = net.clone();
                }
            },
            vec![Change::NetworkUpserted(net.clone())],
        )?;
        Ok(NetworkInfo {
            network: net,
            subnets,
        })
    }

    /// Deletes a network and its subnets (409 if it still has ports).
    pub fn delete_network(&self, c: &Caller, id: &str) -> Result<(), ApiError> {
        Self::api_caller(c)?;
        let mut w = self.writer();
        let (net, subnets) = {
            let st = self.read();
            let e = match st.networks.get(id) {
                Some(e) if Self::sees_network(c, &e.net) => e,
                _ => return Err(ApiError::not_found("Network", id)),
            };
            if !Self::owns(c, &e.net.tenant_id) {
                return Err(ApiError::policy("rule:delete_network"));
            }
            if st.ports.values().any(|p| p.network_id == id) {
                return Err(ApiError::NetworkInUse(id.to_string()));
            }
            let subnets: Vec<Subnet> = e
                .subnets
                .iter()
                .filter_map(|s| st.subnets.get(s).map(|x| x.subnet.clone()))
                .collect();
            (e.net.clone(), subnets)
        };
        let mut ops: Vec<Op<'_>> = subnets.iter().map(|s| Op::DeleteSubnet(&s.id)).collect();
        ops.push(Op::DeleteNetwork(&net.id));
        let mut changes: Vec<Change> = subnets.iter().cloned().map(Change::SubnetDeleted).collect();
        changes.push(Change::NetworkDeleted(net.clone()));
        self.commit(
            &mut w,
            &ops,
            |st| {
                for s in &subnets {
                    st.subnets.remove(&s.id);
                }
                st.networks.remove(&net.id);
                st.vnis.remove(u128::from(net.vni));
            },
            changes,
        )
    }

    // ----- subnets -----

    fn sees_subnet(st: &State, c: &Caller, s: &Subnet) -> bool {
        c.is_admin()
            || s.tenant_id == c.tenant_id
            || st.networks.get(&s.network_id).is_some_and(|n| n.net.shared)
    }

    /// Subnets the caller can see.
    pub fn list_subnets(&self, c: &Caller) -> Result<Vec<Subnet>, ApiError> {
        Self::api_caller(c)?;
        let st = self.read();
        Ok(st
            .subnets
            .values()
            .filter(|e| Self::sees_subnet(&st, c, &e.subnet))
            .map(|e| e.subnet.clone())
            .collect())
    }

    /// One subnet.
    pub fn get_subnet(&self, c: &Caller, id: &str) -> Result<Subnet, ApiError> {
        Self::api_caller(c)?;
        let st = self.read();
        match st.subnets.get(id) {
            Some(e) if Self::sees_subnet(&st, c, &e.subnet) => Ok(e.subnet.clone()),
            _ => Err(ApiError::not_found("Subnet", id)),
        }
    }

    fn check_dns_routes(
        subnet: &str,
        family: u8,
        dns: &Option<Vec<IpAddr>>,
        routes: &Option<Vec<HostRoute>>,
    ) -> Result<(), ApiError> {
        if let Some(d) = dns {
            if d.len() > MAX_DNS_NAMESERVERS {
                return Err(ApiError::DnsNameServersExhausted {
                    subnet: subnet.to_string(),
                    limit: MAX_DNS_NAMESERVERS,
                });
            }
            for (i, a) in d.iter().enumerate() {
                if d[..i].contains(a) {
                    return Err(ApiError::InvalidInput(format!(
                        "Duplicate nameserver '{a}'"
                    )));
                }
            }
        }
        if let Some(r) = routes {
            if r.len() > MAX_HOST_ROUTES {
                return Err(ApiError::HostRoutesExhausted {
                    subnet: subnet.to_string(),
                    limit: MAX_HOST_ROUTES,
                });
            }
            for (i, h) in r.iter().enumerate() {
                if net_family(&h.destination) != family || family_of(&h.nexthop) != family {
                    return Err(ApiError::InvalidInput(format!(
                        "Host route {}->{} does not match the subnet's IP version {family}",
                        h.destination, h.nexthop
                    )));
                }
                if h.destination.trunc() != h.destination {
                    return Err(ApiError::InvalidInput(format!(
                        "Host route destination '{}' has host bits set",
                        h.destination
                    )));
                }
                if r[..i].contains(h) {
                    return Err(ApiError::InvalidInput(format!(
                        "Duplicate hostroute '{}->{}'",
                        h.destination, h.nexthop
                    )));
                }
            }
        }
        Ok(())
    }

    /// Creates a subnet (validated and defaulted by [`ipam::plan_subnet`]).
    pub fn create_subnet(&self, c: &Caller, req: SubnetCreate) -> Result<Subnet, ApiError> {
        Self::api_caller(c)?;
        check_len("name", &req.name)?;
        check_len("description", &req.description)?;
        let cidr = ipam::parse_cidr(&req.cidr.to_string())?;
        let family = net_family(&cidr);
        match req.ip_version {
            None => {}
            Some(v) if v == family => {}
            Some(4) | Some(6) => {
                return Err(ApiError::InvalidInput(format!(
                    "Cidr {cidr} does not match ip_version {}",
                    req.ip_version.unwrap_or(0)
                )))
            }
            Some(v) => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid input for ip_version. Reason: {v} is not in [4, 6]."
                )))
            }
        }
        Self::check_dns_routes("new subnet", family, &req.dns_nameservers, &req.host_routes)?;
        let (gateway_ip, pools) =
            ipam::plan_subnet(&cidr, req.gateway, req.allocation_pools.as_deref())?;
        let mut w = self.writer();
        let subnet = {
            let st = self.read();
            let ne = match st.networks.get(&req.network_id) {
                Some(e) if Self::sees_network(c, &e.net) => e,
                _ => return Err(ApiError::not_found("Network", &req.network_id)),
            };
            if !Self::owns(c, &ne.net.tenant_id) {
                return Err(ApiError::policy(
                    "rule:create_subnet on a network of another tenant",
                ));
            }
            let tenant_id = match &req.tenant_id {
                None => ne.net.tenant_id.clone(),
                Some(_) => Self::owner_for(c, &req.tenant_id, "subnet")?,
            };
            for sid in &ne.subnets {
                if let Some(o) = st.subnets.get(sid) {
                    if ipam::overlaps(&o.subnet.cidr, &cidr) {
                        return Err(ApiError::InvalidInput(format!(
                            "Requested subnet with cidr: {cidr} for network: {} overlaps with another subnet",
                            req.network_id
                        )));
                    }
                }
            }
            let t = now();
            Subnet {
                id: new_id(),
                network_id: req.network_id.clone(),
                tenant_id,
                name: req.name.unwrap_or_default(),
                description: req.description.unwrap_or_default(),
                cidr,
                gateway_ip,
                allocation_pools: pools,
                dns_nameservers: req.dns_nameservers.unwrap_or_default(),
                host_routes: req.host_routes.unwrap_or_default(),
                enable_dhcp: req.enable_dhcp.unwrap_or(true),
                created_at: t.clone(),
                updated_at: t,
                revision_number: 0,
            }
        };
        self.commit(
            &mut w,
            &[Op::PutSubnet(&subnet)],
            |st| {
                if let Some(n) = st.networks.get_mut(&subnet.network_id) {
                    n.subnets.push(subnet.id.clone());
                }
                st.subnets.insert(
                    subnet.id.clone(),
                    SubEntry {
                        subnet: subnet.clone(),
                        ipam: Pool::new(Pool::ranges_of(&subnet.allocation_pools)),
                    },
                );
            },
            vec![Change::SubnetUpserted(subnet.clone())],
        )?;
        Ok(subnet)
    }

    /// Updates a subnet.
    pub fn update_subnet(
        &self,
        c: &Caller,
        id: &str,
        req: SubnetUpdate,
    ) -> Result<Subnet, ApiError> {
        Self::api_caller(c)?;
        check_len("name", &req.name)?;
        check_len("description", &req.description)?;
        let mut w = self.writer();
        let subnet = {
            let st = self.read();
            let e = match st.subnets.get(id) {
                Some(e) if Self::sees_subnet(&st, c, &e.subnet) => e,
                _ => return Err(ApiError::not_found("Subnet", id)),
            };
            if !Self::owns(c, &e.subnet.tenant_id) {
                return Err(ApiError::policy("rule:update_subnet"));
            }
            let mut s = e.subnet.clone();
            let family = s.ip_version();
            Self::check_dns_routes(id, family, &req.dns_nameservers, &req.host_routes)?;
            if let Some(g) = req.gateway {
                s.gateway_ip = match g {
                    GatewaySpec::Disabled => None,
                    GatewaySpec::Default => {
                        Some(ipam::from_u128(&s.cidr, ipam::usable_range(&s.cidr).0))
                    }
                    GatewaySpec::Given(ip) => {
                        ipam::check_gateway(&s.cidr, ip)?;
                        Some(ip)
                    }
                };
                if let Some(gw) = s.gateway_ip {
                    if Some(gw) != e.subnet.gateway_ip && e.ipam.is_used(ipam::to_u128(gw)) {
                        return Err(ApiError::IpAddressAlreadyAllocated {
                            ip: gw.to_string(),
                            subnet: id.to_string(),
                        });
                    }
                }
            }
            let pools = req
                .allocation_pools
                .clone()
                .unwrap_or_else(|| s.allocation_pools.clone());
            s.allocation_pools = ipam::check_pools(&s.cidr, s.gateway_ip, Some(&pools))?;
            if let Some(v) = req.name {
                s.name = v;
            }
            if let Some(v) = req.description {
                s.description = v;
            }
            if let Some(v) = req.dns_nameservers {
                s.dns_nameservers = v;
            }
            if let Some(v) = req.host_routes {
                s.host_routes = v;
            }
            if let Some(v) = req.enable_dhcp {
                s.enable_dhcp = v;
            }
            s.updated_at = now();
            s.revision_number += 1;
            s
        };
        self.commit(
            &mut w,
            &[Op::PutSubnet(&subnet)],
            |st| {
                if let Some(e) = st.subnets.get_mut(&subnet.id) {
                    e.ipam.set_ranges(Pool::ranges_of(&subnet.allocation_pools));
                    e.subnet = subnet.clone();
                }
            },
            vec![Change::SubnetUpserted(subnet.clone())],
        )?;
        Ok(subnet)
    }

    /// Deletes a subnet (409 if a port still has an address from it).
    pub fn delete_subnet(&self, c: &Caller, id: &str) -> Result<(), ApiError> {
        Self::api_caller(c)?;
        let mut w = self.writer();
        let subnet = {
            let st = self.read();
            let e = match st.subnets.get(id) {
                Some(e) if Self::sees_subnet(&st, c, &e.subnet) => e,
                _ => return Err(ApiError::not_found("Subnet", id)),
            };
            if !Self::owns(c, &e.subnet.tenant_id) {
                return Err(ApiError::policy("rule:delete_subnet"));
            }
            if e.ipam.used_count() > 0 {
                return Err(ApiError::SubnetInUse(id.to_string()));
            }
            e.subnet.clone()
        };
        self.commit(
            &mut w,
            &[Op::DeleteSubnet(&subnet.id)],
            |st| {
                st.subnets.remove(&subnet.id);
                if let Some(n) = st.networks.get_mut(&subnet.network_id) {
                    n.subnets.retain(|s| s != &subnet.id);
                }
            },
            vec![Change::SubnetDeleted(subnet.clone())],
        )
    }

    // ----- ports -----

    fn sees_port(c: &Caller, p: &Port) -> bool {
        c.is_admin() || p.tenant_id == c.tenant_id
    }

    /// Ports the caller can see (its own; a provider: all).
    pub fn list_ports(&self, c: &Caller) -> Result<Vec<Port>, ApiError> {
        self.list_ports_where(c, |_| true)
    }

    /// The ports the caller sees that `keep` accepts (tested before anything is copied).
    pub fn list_ports_where(
        &self,
        c: &Caller,
        keep: impl Fn(&Port) -> bool,
    ) -> Result<Vec<Port>, ApiError> {
        Self::api_caller(c)?;
        let st = self.read();
        Ok(st
            .ports
            .values()
            .filter(|p| Self::sees_port(c, p) && keep(p))
            .cloned()
            .collect())
    }

    /// One port.
    pub fn get_port(&self, c: &Caller, id: &str) -> Result<Port, ApiError> {
        Self::api_caller(c)?;
        let st = self.read();
        match st.ports.get(id) {
            Some(p) if Self::sees_port(c, p) => Ok(p.clone()),
            _ => Err(ApiError::not_found("Port", id)),
        }
    }

    /// Resolves the requested addresses of a port on network `net` (`current`: the port's
    /// addresses before an update). Only reads.
    fn plan_fixed_ips(
        st: &State,
        ne: &NetEntry,
        req: Option<&[FixedIpRequest]>,
        current: &[FixedIp],
        device_owner: &str,
    ) -> Result<Vec<FixedIp>, ApiError> {
        let net_id = &ne.net.id;
        let Some(req) = req else {
            // Default: one address from the first IPv4 and the first IPv6 subnet with room.
            let mut out = Vec::new();
            for fam in [4u8, 6] {
                let subs: Vec<&SubEntry> = ne
                    .subnets
                    .iter()
                    .filter_map(|s| st.subnets.get(s))
                    .filter(|e| e.subnet.ip_version() == fam)
                    .collect();
                if subs.is_empty() {
                    continue;
                }
                let pick = subs.iter().find_map(|e| {
                    e.ipam.find_free(&[]).map(|v| FixedIp {
                        subnet_id: e.subnet.id.clone(),
                        ip_address: ipam::from_u128(&e.subnet.cidr, v),
                    })
                });
                match pick {
                    Some(f) => out.push(f),
                    None => return Err(ApiError::IpAddressGenerationFailure(net_id.clone())),
                }
            }
            return Ok(out);
        };
        let router = device_owner.starts_with("network:router");
        let invalid_subnet = |sid: &str| {
            ApiError::InvalidInput(format!(
                "Failed to create port on network {net_id}, because fixed_ips included invalid subnet {sid}"
            ))
        };
        let mut out: Vec<Option<FixedIp>> = vec![None; req.len()];
        // Pass 1: explicit addresses.
        for (i, r) in req.iter().enumerate() {
            let Some(ip) = r.ip_address else { continue };
            let se = match &r.subnet_id {
                Some(sid) => {
                    let e = st
                        .subnets
                        .get(sid)
                        .filter(|e| &e.subnet.network_id == net_id)
                        .ok_or_else(|| invalid_subnet(sid))?;
                    if !e.subnet.cidr.contains(&ip) || family_of(&ip) != e.subnet.ip_version() {
                        return Err(ApiError::InvalidIpForSubnet(ip.to_string()));
                    }
                    e
                }
                None => ne
                    .subnets
                    .iter()
                    .filter_map(|s| st.subnets.get(s))
                    .find(|e| e.subnet.cidr.contains(&ip))
                    .ok_or_else(|| ApiError::InvalidIpForNetwork(ip.to_string()))?,
            };
            let v = ipam::to_u128(ip);
            let (lo, hi) = ipam::usable_range(&se.subnet.cidr);
            if v < lo || v > hi {
                return Err(ApiError::InvalidIpForSubnet(ip.to_string()));
            }
            let taken_elsewhere = se.ipam.is_used(v)
                && !current
                    .iter()
                    .any(|f| f.subnet_id == se.subnet.id && f.ip_address == ip);
            let is_gateway = se.subnet.gateway_ip == Some(ip) && !router;
            let dup = out
                .iter()
                .flatten()
                .any(|f| f.subnet_id == se.subnet.id && f.ip_address == ip);
            if dup {
                return Err(ApiError::InvalidInput(format!(
                    "Duplicate IP address '{ip}' in fixed_ips"
                )));
            }
            if taken_elsewhere || is_gateway {
                return Err(ApiError::IpAddressAlreadyAllocated {
                    ip: ip.to_string(),
                    subnet: se.subnet.id.clone(),
                });
            }
            out[i] = Some(FixedIp {
                subnet_id: se.subnet.id.clone(),
                ip_address: ip,
            });
        }
        // Pass 2: a subnet only: keep the port's address there, else allocate.
        for (i, r) in req.iter().enumerate() {
            if r.ip_address.is_some() {
                continue;
            }
            let Some(sid) = &r.subnet_id else {
                return Err(ApiError::InvalidInput(
                    "each fixed_ips entry needs a subnet_id or an ip_address".into(),
                ));
            };
            let se = st
                .subnets
                .get(sid)
                .filter(|e| &e.subnet.network_id == net_id)
                .ok_or_else(|| invalid_subnet(sid))?;
            let claimed: Vec<u128> = out
                .iter()
                .flatten()
                .filter(|f| &f.subnet_id == sid)
                .map(|f| ipam::to_u128(f.ip_address))
                .collect();
            let keep = current
                .iter()
                .find(|f| &f.subnet_id == sid && !claimed.contains(&ipam::to_u128(f.ip_address)));
            let ip = match keep {
                Some(f) => f.ip_address,
                None => match se.ipam.find_free(&claimed) {
                    Some(v) => ipam::from_u128(&se.subnet.cidr, v),
                    None => return Err(ApiError::IpAddressGenerationFailure(net_id.clone())),
                },
            };
            out[i] = Some(FixedIp {
                subnet_id: sid.clone(),
                ip_address: ip,
            });
        }
        Ok(out.into_iter().flatten().collect())
    }

    fn check_binding(&self, st: &State, port_id: &str, b: &Binding) -> Result<(), ApiError> {
        if !b.host_id.is_empty() {
            if b.host_id.chars().count() > MAX_STR {
                return Err(ApiError::InvalidInput("binding:host_id is too long".into()));
            }
            if !self.hosts.is_empty() && !self.hosts.iter().any(|h| h.name == b.host_id) {
                return Err(ApiError::InvalidInput(format!(
                    "binding:host_id '{}' is not a configured host",
                    b.host_id
                )));
            }
        }
        if let Some(i) = &b.interface {
            if b.host_id.is_empty() {
                return Err(ApiError::InvalidInput(
                    "binding:profile names an interface but binding:host_id is empty".into(),
                ));
            }
            if !ipam::valid_ifname(&i.name) {
                return Err(ApiError::InvalidInput(format!(
                    "binding:profile interface '{}' is not a valid interface name",
                    i.name
                )));
            }
            if let Some(other) = st.bindings.get(&(b.host_id.clone(), i.name.clone())) {
                if other != port_id {
                    return Err(ApiError::InterfaceInUse {
                        host: b.host_id.clone(),
                        iface: i.name.clone(),
                        port: other.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn record_port(st: &mut State, p: &Port, mac_allocated: bool) {
        st.macs
            .insert(u128::from(p.mac_address.to_u64()), mac_allocated);
        for f in &p.fixed_ips {
            if let Some(e) = st.subnets.get_mut(&f.subnet_id) {
                let v = ipam::to_u128(f.ip_address);
                let from_pool = e.ipam.in_ranges(v) && !e.ipam.is_used(v);
                e.ipam.insert(v, from_pool);
            }
        }
        if let Some(i) = &p.binding.interface {
            st.bindings
                .insert((p.binding.host_id.clone(), i.name.clone()), p.id.clone());
        }
        st.ports.insert(p.id.clone(), p.clone());
    }

    fn forget_port(st: &mut State, p: &Port, keep_mac: bool) {
        if !keep_mac {
            st.macs.remove(u128::from(p.mac_address.to_u64()));
        }
        for f in &p.fixed_ips {
            if let Some(e) = st.subnets.get_mut(&f.subnet_id) {
                e.ipam.remove(ipam::to_u128(f.ip_address));
            }
        }
        if let Some(i) = &p.binding.interface {
            st.bindings
                .remove(&(p.binding.host_id.clone(), i.name.clone()));
        }
        st.ports.remove(&p.id);
    }

    /// Creates a port: MAC, addresses and binding checked and allocated, then committed.
    pub fn create_port(&self, c: &Caller, req: PortCreate) -> Result<Port, ApiError> {
        Self::api_caller(c)?;
        let tenant_id = Self::owner_for(c, &req.tenant_id, "port")?;
        if (req.host_id.is_some() || req.interface.is_some()) && !c.is_admin() {
            return Err(ApiError::policy("rule:create_port:binding:host_id"));
        }
        check_len("name", &req.name)?;
        check_len("description", &req.description)?;
        check_len("device_id", &req.device_id)?;
        check_len("device_owner", &req.device_owner)?;
        if let Some(m) = req.mac_address {
            if m.is_multicast() || m.to_u64() == 0 {
                return Err(ApiError::InvalidInput(format!(
                    "'{m}' is not a valid unicast MAC address"
                )));
            }
        }
        let mut w = self.writer();
        let (port, mac_allocated) = {
            let st = self.read();
            let ne = match st.networks.get(&req.network_id) {
                Some(e) if Self::sees_network(c, &e.net) => e,
                _ => return Err(ApiError::not_found("Network", &req.network_id)),
            };
            let net_owner = Self::owns(c, &ne.net.tenant_id);
            if !net_owner && req.mac_address.is_some() {
                return Err(ApiError::policy("rule:create_port:mac_address"));
            }
            if !net_owner
                && req
                    .fixed_ips
                    .as_ref()
                    .is_some_and(|f| f.iter().any(|r| r.ip_address.is_some()))
            {
                return Err(ApiError::policy("rule:create_port:fixed_ips:ip_address"));
            }
            let (mac, allocated) = match req.mac_address {
                Some(m) => {
                    if st.macs.is_used(u128::from(m.to_u64())) {
                        return Err(ApiError::MacAddressInUse {
                            net: req.network_id.clone(),
                            mac: m.to_string(),
                        });
                    }
                    (m, false)
                }
                None => match st.macs.find_free(&[]) {
                    Some(v) => (MacAddr::from_u64(v as u64), true),
                    None => {
                        return Err(ApiError::MacAddressGenerationFailure(
                            req.network_id.clone(),
                        ))
                    }
                },
            };
            let device_owner = req.device_owner.clone().unwrap_or_default();
            let fixed_ips =
                Self::plan_fixed_ips(&st, ne, req.fixed_ips.as_deref(), &[], &device_owner)?;
            let id = new_id();
            let binding = Binding {
                host_id: req.host_id.clone().unwrap_or_default(),
                interface: req.interface.clone().flatten(),
            };
            self.check_binding(&st, &id, &binding)?;
            let t = now();
            (
                Port {
                    id,
                    network_id: req.network_id.clone(),
                    tenant_id,
                    name: req.name.unwrap_or_default(),
                    description: req.description.unwrap_or_default(),
                    mac_address: mac,
                    admin_state_up: req.admin_state_up.unwrap_or(true),
                    fixed_ips,
                    device_id: req.device_id.unwrap_or_default(),
                    device_owner,
                    binding,
                    created_at: t.clone(),
                    updated_at: t,
                    revision_number: 0,
                },
                allocated,
            )
        };
        self.commit(
            &mut w,
            &[Op::PutPort(&port)],
            |st| Self::record_port(st, &port, mac_allocated),
            vec![Change::PortUpserted(port.clone())],
        )?;
        Ok(port)
    }

    /// Updates a port (addresses re-planned atomically: new ones allocated, dropped released).
    pub fn update_port(&self, c: &Caller, id: &str, req: PortUpdate) -> Result<Port, ApiError> {
        Self::api_caller(c)?;
        if (req.host_id.is_some() || req.interface.is_some()) && !c.is_admin() {
            return Err(ApiError::policy("rule:update_port:binding:host_id"));
        }
        check_len("name", &req.name)?;
        check_len("description", &req.description)?;
        check_len("device_id", &req.device_id)?;
        check_len("device_owner", &req.device_owner)?;
        let mut w = self.writer();
        let (old, port) = {
            let st = self.read();
            let old = match st.ports.get(id) {
                Some(p) if Self::sees_port(c, p) => p.clone(),
                _ => return Err(ApiError::not_found("Port", id)),
            };
            let Some(ne) = st.networks.get(&old.network_id) else {
                return Err(ApiError::Internal(format!("port {id} has no network")));
            };
            let mut p = old.clone();
            if let Some(v) = req.name {
                p.name = v;
            }
            if let Some(v) = req.description {
                p.description = v;
            }
            if let Some(v) = req.admin_state_up {
                p.admin_state_up = v;
            }
            if let Some(v) = req.device_id {
                p.device_id = v;
            }
            if let Some(v) = req.device_owner {
                p.device_owner = v;
            }
            if let Some(fips) = &req.fixed_ips {
                let net_owner = Self::owns(c, &ne.net.tenant_id);
                if !net_owner
                    && fips.iter().any(|r| {
                        r.ip_address
                            .is_some_and(|ip| !old.fixed_ips.iter().any(|f| f.ip_address == ip))
                    })
                {
                    return Err(ApiError::policy("rule:update_port:fixed_ips:ip_address"));
                }
                p.fixed_ips =
                    Self::plan_fixed_ips(&st, ne, Some(fips), &old.fixed_ips, &p.device_owner)?;
            }
            if let Some(h) = req.host_id {
                p.binding.host_id = h;
                if p.binding.host_id.is_empty() {
                    p.binding.interface = None;
                }
            }
            if let Some(i) = req.interface {
                p.binding.interface = i;
            }
            self.check_binding(&st, id, &p.binding)?;
            p.updated_at = now();
            p.revision_number += 1;
            (old, p)
        };
        self.commit(
            &mut w,
            &[Op::PutPort(&port)],
            |st| {
                Self::forget_port(st, &old, true);
                Self::record_port(st, &port, false);
            },
            vec![Change::PortUpserted(port.clone())],
        )?;
        Ok(port)
    }

    /// Deletes a port, releasing its MAC, addresses and binding.
    pub fn delete_port(&self, c: &Caller, id: &str) -> Result<(), ApiError> {
        Self::api_caller(c)?;
        let mut w = self.writer();
        let port = {
            let st = self.read();
            match st.ports.get(id) {
                Some(p) if Self::sees_port(c, p) => p.clone(),
                _ => return Err(ApiError::not_found("Port", id)),
            }
        };
        self.commit(
            &mut w,
            &[Op::DeletePort(&port.id)],
            |st| Self::forget_port(st, &port, false),
            vec![Change::PortDeleted(port.clone())],
        )
    }

    // ----- cloud view -----
    /// The configured hosts as VTEPs (what the model feed sends with every snapshot).
    pub fn vteps(&self) -> Vec<Vtep> {
        self.configured_hosts()
            .iter()
            .map(|h| Vtep {
                name: h.name.clone(),
                vtep_ip: h.vtep_ip,
            })
            .collect()
    }

    /// Hosts with their VTEPs and bound interfaces (cloud and provider callers).
    pub fn hosts(&self, c: &Caller) -> Result<Vec<HostInfo>, ApiError> {
        if c.role == Role::Tenant {
            return Err(ApiError::policy("rule:get_host (cloud or provider tokens)"));
        }
        let st = self.read();
        let mut out: Vec<HostInfo> = self
            .hosts
            .iter()
            .map(|h| HostInfo {
                name: h.name.clone(),
                vtep_ip: Some(h.vtep_ip),
                uplinks: h.uplinks.clone(),
                interfaces: Vec::new(),
            })
            .collect();
        for p in st.ports.values() {
            let Some(i) = &p.binding.interface else {
                continue;
            };
            let vni = st.networks.get(&p.network_id).map_or(0, |n| n.net.vni);
            let b = BoundInterface {
                interface: i.clone(),
                port_id: p.id.clone(),
                network_id: p.network_id.clone(),
                vni,
                mac_address: p.mac_address,
                status: p.status(),
            };
            match out.iter_mut().find(|h| h.name == p.binding.host_id) {
                Some(h) => h.interfaces.push(b),
                None => out.push(HostInfo {
                    name: p.binding.host_id.clone(),
                    vtep_ip: None,
                    uplinks: Vec::new(),
                    interfaces: vec![b],
                }),
            }
        }
        Ok(out)
    }

    /// The MAC prefix octets (for tests and tools).
    pub fn mac_prefix(&self) -> &[u8] {
        &self.mac_prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn svc(cfg: TenantConfig) -> TenantService {
        TenantService::in_memory(&cfg).unwrap()
    }
    fn net(s: &TenantService, c: &Caller) -> String {
        s.create_network(c, NetworkCreate::default())
            .unwrap()
            .network
            .id
    }
    fn subnet(s: &TenantService, c: &Caller, net: &str, cidr: &str) -> Subnet {
        s.create_subnet(
            c,
            SubnetCreate {
                tenant_id: None,
                network_id: net.into(),
                name: None,
                description: None,
                cidr: cidr.parse().unwrap(),
                ip_version: None,
                gateway: GatewaySpec::Default,
                allocation_pools: None,
                dns_nameservers: None,
                host_routes: None,
                enable_dhcp: None,
            },
        )
        .unwrap()
    }
    fn port(s: &TenantService, c: &Caller, net: &str) -> Result<Port, ApiError> {
        s.create_port(
            c,
            PortCreate {
                network_id: net.into(),
                ..PortCreate::default()
            },
        )
    }

    #[test]
    fn default_addresses_v4_and_v6_and_release() {
        let s = svc(TenantConfig::default());
        let a = Caller::tenant("a");
        let n = net(&s, &a);
        let s4 = subnet(&s, &a, &n, "10.1.0.0/24");
        let s6 = subnet(&s, &a, &n, "2001:db8:1::/64");
        let p = port(&s, &a, &n).unwrap();
        assert_eq!(p.fixed_ips.len(), 2);
        assert_eq!(p.fixed_ips[0].subnet_id, s4.id);
        assert_eq!(p.fixed_ips[0].ip_address.to_string(), "10.1.0.2");
        assert_eq!(p.fixed_ips[1].subnet_id, s6.id);
        assert_eq!(p.fixed_ips[1].ip_address.to_string(), "2001:db8:1::2");
        assert_eq!(&p.mac_address.0[..3], &[0xfa, 0x16, 0x3e]);
        let q = port(&s, &a, &n).unwrap();
        assert_eq!(q.fixed_ips[0].ip_address.to_string(), "10.1.0.3");
        // Delete releases: the subnet can go once both ports are gone.
        assert_eq!(
            s.delete_subnet(&a, &s4.id).unwrap_err().neutron_type(),
            "SubnetInUse"
        );
        s.delete_port(&a, &p.id).unwrap();
        s.delete_port(&a, &q.id).unwrap();
        s.delete_subnet(&a, &s4.id).unwrap();
        assert_eq!(s.store_counts().unwrap(), (1, 1, 0, 0));
    }

    #[test]
    fn exhaustion_and_reuse() {
        let s = svc(TenantConfig::default());
        let a = Caller::tenant("a");
        let n = net(&s, &a);
        subnet(&s, &a, &n, "10.2.0.0/29"); // .2 .. .6
        let ports: Vec<Port> = (0..5).map(|_| port(&s, &a, &n).unwrap()).collect();
        let e = port(&s, &a, &n).unwrap_err();
        assert_eq!(e.status(), 409);
        assert_eq!(e.neutron_type(), "IpAddressGenerationFailure");
        s.delete_port(&a, &ports[2].id).unwrap();
        let p = port(&s, &a, &n).unwrap();
        assert_eq!(p.fixed_ips[0].ip_address, ports[2].fixed_ips[0].ip_address);
    }

    #[test]
    fn vni_range_and_exhaustion() {
        let s = svc(TenantConfig {
            vni_range: (100, 102),
            ..TenantConfig::default()
        });
        let a = Caller::tenant("a");
        let p = Caller::provider("admin");
        let vnis: Vec<u32> = (0..3)
            .map(|_| {
                s.create_network(&a, NetworkCreate::default())
                    .unwrap()
                    .network
                    .vni
            })
            .collect();
        assert_eq!(vnis, [100, 101, 102]);
        let e = s.create_network(&a, NetworkCreate::default()).unwrap_err();
        assert_eq!((e.status(), e.neutron_type()), (503, "NoNetworkAvailable"));
        // A provider may ask for a VNI outside the range, not a used one.
        let n = s
            .create_network(
                &p,
                NetworkCreate {
                    segmentation_id: Some(5000),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(n.network.vni, 5000);
        let e = s
            .create_network(
                &p,
                NetworkCreate {
                    segmentation_id: Some(101),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!((e.status(), e.neutron_type()), (409, "TunnelIdInUse"));
        let e = s
            .create_network(
                &p,
                NetworkCreate {
                    segmentation_id: Some(1 << 24),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.status(), 400);
        // Deleting frees the VNI.
        let id = s.list_networks(&a).unwrap()[0].network.id.clone();
        let vni = s.get_network(&a, &id).unwrap().network.vni;
        s.delete_network(&a, &id).unwrap();
        assert_eq!(
            s.create_network(&a, NetworkCreate::default())
                .unwrap()
                .network
                .vni,
            vni
        );
    }

    #[test]
    fn mac_prefix_exhaustion() {
        let s = svc(TenantConfig {
            mac_prefix: "02:00:00:00:00".into(),
            ..TenantConfig::default()
        });
        let a = Caller::tenant("a");
        let n = net(&s, &a);
        let mut macs = HashSet::new();
        for _ in 0..256 {
            let p = port(&s, &a, &n).unwrap();
            assert_eq!(&p.mac_address.0[..5], &[2, 0, 0, 0, 0]);
            assert!(macs.insert(p.mac_address));
        }
        let e = port(&s, &a, &n).unwrap_err();
        assert_eq!(
            (e.status(), e.neutron_type()),
            (503, "MacAddressGenerationFailure")
        );
    }

    #[test]
    fn concurrent_allocations_are_unique() {
        let s = Arc::new(svc(TenantConfig::default()));
        let a = Caller::tenant("a");
        let n = net(&s, &a);
        subnet(&s, &a, &n, "10.3.0.0/27"); // 29 addresses
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (s, a, n) = (s.clone(), a.clone(), n.clone());
                std::thread::spawn(move || {
                    let mut ports = Vec::new();
                    let mut vnis = Vec::new();
                    for _ in 0..10 {
                        ports.push(port(&s, &a, &n));
                        vnis.push(
                            s.create_network(&a, NetworkCreate::default())
                                .unwrap()
                                .network
                                .vni,
                        );
                    }
                    (ports, vnis)
                })
            })
            .collect();
        let mut ips = HashSet::new();
        let mut macs = HashSet::new();
        let mut vnis = HashSet::new();
        let mut failures = 0;
        for t in threads {
            let (ports, vs) = t.join().unwrap();
            for v in vs {
                assert!(vnis.insert(v), "VNI {v} twice");
            }
            for r in ports {
                match r {
                    Ok(p) => {
                        assert!(macs.insert(p.mac_address), "MAC {} twice", p.mac_address);
                        for f in p.fixed_ips {
                            assert!(ips.insert(f.ip_address), "{} twice", f.ip_address);
                        }
                    }
                    Err(e) => {
                        assert_eq!(e.neutron_type(), "IpAddressGenerationFailure");
                        failures += 1;
                    }
                }
            }
        }
        assert_eq!(ips.len(), 29);
        assert_eq!(macs.len(), 29);
        assert_eq!(failures, 80 - 29);
        assert_eq!(vnis.len(), 80);
        assert_eq!(s.store_counts().unwrap(), (81, 1, 29, 29));
    }

    #[test]
    fn update_fixed_ips_keeps_adds_and_releases() {
        let s = svc(TenantConfig::default());
        let a = Caller::tenant("a");
        let n = net(&s, &a);
        let sn = subnet(&s, &a, &n, "10.4.0.0/24");
        let p = port(&s, &a, &n).unwrap();
        let ip = |x: &str| Some(x.parse::<IpAddr>().unwrap());
        let keep = FixedIpRequest {
            subnet_id: None,
            ip_address: Some(p.fixed_ips[0].ip_address),
        };
        let add = FixedIpRequest {
            subnet_id: Some(sn.id.clone()),
            ip_address: ip("10.4.0.50"),
        };
        let u = s
            .update_port(
                &a,
                &p.id,
                PortUpdate {
                    fixed_ips: Some(vec![keep, add]),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(u.fixed_ips.len(), 2);
        assert_eq!(u.revision_number, 1);
        // Drop the first: it becomes free for someone else.
        let only = FixedIpRequest {
            subnet_id: None,
            ip_address: ip("10.4.0.50"),
        };
        s.update_port(
            &a,
            &p.id,
            PortUpdate {
                fixed_ips: Some(vec![only]),
                ..Default::default()
            },
        )
        .unwrap();
        let q = s
            .create_port(
                &a,
                PortCreate {
                    network_id: n.clone(),
                    fixed_ips: Some(vec![FixedIpRequest {
                        subnet_id: None,
                        ip_address: ip("10.4.0.2"),
                    }]),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(q.fixed_ips[0].ip_address.to_string(), "10.4.0.2");
        // A failed update changes nothing.
        let bad = FixedIpRequest {
            subnet_id: None,
            ip_address: ip("10.4.0.2"),
        };
        let e = s
            .update_port(
                &a,
                &p.id,
                PortUpdate {
                    fixed_ips: Some(vec![bad]),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.neutron_type(), "IpAddressAlreadyAllocated");
        assert_eq!(
            s.get_port(&a, &p.id).unwrap().fixed_ips[0]
                .ip_address
                .to_string(),
            "10.4.0.50"
        );
    }

    #[test]
    fn subscription_snapshot_then_ordered_events() {
        let s = svc(TenantConfig::default());
        let a = Caller::tenant("a");
        let n0 = net(&s, &a);
        let sub = s.subscribe();
        assert_eq!(sub.snapshot.seq, 1);
        assert_eq!(sub.snapshot.networks.len(), 1);
        assert_eq!(sub.snapshot.networks[0].id, n0);
        let sn = subnet(&s, &a, &n0, "10.5.0.0/24");
        let p = port(&s, &a, &n0).unwrap();
        s.delete_port(&a, &p.id).unwrap();
        s.delete_network(&a, &n0).unwrap();
        let evs: Vec<ChangeEvent> = sub.events.try_iter().collect();
        assert_eq!(
            evs.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3, 4, 5, 6]
        );
        assert!(matches!(&evs[0].change, Change::SubnetUpserted(x) if x.id == sn.id));
        assert!(matches!(&evs[1].change, Change::PortUpserted(x) if x.id == p.id));
        assert!(matches!(&evs[2].change, Change::PortDeleted(x) if x.id == p.id));
        assert!(matches!(&evs[3].change, Change::SubnetDeleted(x) if x.id == sn.id));
        assert!(matches!(&evs[4].change, Change::NetworkDeleted(x) if x.id == n0));
        // Failed writes send nothing.
        assert!(s.delete_network(&a, &n0).is_err());
        assert!(sub.events.try_recv().is_err());
    }
}
