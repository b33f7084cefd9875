//! The tenant REST API over real HTTP (an in-process `ApiServer` on a free loopback port, a
//! `ureq` client): Neutron v2.0 CRUD, bad input (status + NeutronError type + nothing partially
//! applied), pagination/sort/fields/filters, views and token isolation on every endpoint, the
//! Net Objects API, the cloud view, restart from the database, and concurrent allocation.

use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use strato_tenant::config::{HostSpec, Role, TokenSpec};
use strato_tenant::{ApiServer, TenantConfig, TenantService};

static N: AtomicU32 = AtomicU32::new(0);

const A: &str = "tok-a";
const B: &str = "tok-b";
const ADMIN: &str = "tok-admin";
const CLOUD: &str = "tok-cloud";

fn config() -> TenantConfig {
    let tok = |t: &str, role, tenant: Option<&str>| TokenSpec {
        token: t.into(),
        role,
        tenant: tenant.map(str::to_string),
    };
    TenantConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tokens: vec![
            tok(A, Role::Tenant, Some("tenant-a")),
            tok(B, Role::Tenant, Some("tenant-b")),
            tok(ADMIN, Role::Provider, None),
            tok(CLOUD, Role::Cloud, None),
        ],
        hosts: vec![
            HostSpec {
                name: "hv1".into(),
                vtep_ip: "192.0.2.1".parse().unwrap(),
                uplinks: vec!["eth1".into()],
            },
            HostSpec {
                name: "hv2".into(),
                vtep_ip: "192.0.2.2".parse().unwrap(),
                uplinks: vec![],
            },
        ],
        local_host: Some("hv1".into()),
        ..TenantConfig::default()
    }
}

struct Env {
    server: Option<ApiServer>,
    svc: Arc<TenantService>,
    base: String,
    agent: ureq::Agent,
    dir: PathBuf,
    cfg: TenantConfig,
    keep_dir: bool,
}

impl Env {
    fn new() -> Env {
        let dir = std::env::temp_dir().join(format!(
            "strato-tenant-api-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Env::at(dir, config())
    }

    fn at(dir: PathBuf, cfg: TenantConfig) -> Env {
        let svc = Arc::new(TenantService::open(&cfg, &dir.join("tenant.sqlite")).unwrap());
        let server = ApiServer::start(&cfg, svc.clone()).unwrap();
        let base = format!("http://{}", server.local_addr());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Env {
            server: Some(server),
            svc,
            base,
            agent,
            dir,
            cfg,
            keep_dir: false,
        }
    }

    /// Stops the server and the service, and opens both again on the same database.
    fn restart(mut self) -> Env {
        let (dir, cfg) = (self.dir.clone(), self.cfg.clone());
        self.keep_dir = true;
        drop(self);
        Env::at(dir, cfg)
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            b = b.header("X-Auth-Token", t);
        }
        let resp = match body {
            Some(s) => self.agent.run(
                b.header("Content-Type", "application/json")
                    .body(s.to_string())
                    .unwrap(),
            ),
            None => self.agent.run(b.body(()).unwrap()),
        };
        let mut resp = resp.unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (status, text)
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = self.raw(method, path, Some(token), body.as_deref());
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
        };
        (status, v)
    }

    fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>, want: u16) -> Value {
        let (s, v) = self.call(method, path, token, body);
        assert_eq!(s, want, "{method} {path}: {v}");
        v
    }

    fn network(&self, token: &str, body: Value) -> Value {
        self.ok(
            "POST",
            "/v2.0/networks",
            token,
            Some(json!({ "network": body })),
            201,
        )["network"]
            .clone()
    }
    fn subnet(&self, token: &str, body: Value) -> Value {
        self.ok(
            "POST",
            "/v2.0/subnets",
            token,
            Some(json!({ "subnet": body })),
            201,
        )["subnet"]
            .clone()
    }
    fn port(&self, token: &str, body: Value) -> Value {
        self.ok(
            "POST",
            "/v2.0/ports",
            token,
            Some(json!({ "port": body })),
            201,
        )["port"]
            .clone()
    }

    /// Expects an error: status, NeutronError type; returns the message.
    fn err(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        status: u16,
        ty: &str,
    ) -> String {
        let (s, v) = self.call(method, path, token, body);
        assert_eq!(s, status, "{method} {path}: {v}");
        let e = &v["NeutronError"];
        assert_eq!(e["type"], ty, "{method} {path}: {v}");
        assert_eq!(e["detail"], "", "{v}");
        e["message"].as_str().unwrap().to_string()
    }

    fn counts(&self) -> (u64, u64, u64, u64) {
        self.svc.store_counts().unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.take();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn versions_auth_extensions_and_routes() {
    let e = Env::new();
    let (st, text) = e.raw("GET", "/", None, None);
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["versions"][0]["id"], "v2.0");
    assert_eq!(v["versions"][0]["status"], "CURRENT");
    assert_eq!(
        v["versions"][0]["links"][0]["href"],
        format!("{}/v2.0/", e.base)
    );
    // No token, a wrong token: 401 NeutronError, on every resource.
    for path in [
        "/v2.0/networks",
        "/v2.0/subnets",
        "/v2.0/ports",
        "/v2.0/extensions",
        "/v2.0/strato/hosts",
        "/tenants/tenant-a/switches.json",
    ] {
        let (st, text) = e.raw("GET", path, None, None);
        assert_eq!(st, 401, "{path}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["NeutronError"]["type"], "HTTPUnauthorized");
        e.err("GET", path, "nope", None, 401, "HTTPUnauthorized");
    }
    e.err(
        "POST",
        "/v2.0/networks",
        "nope",
        Some(json!({"network": {}})),
        401,
        "HTTPUnauthorized",
    );
    assert_eq!(e.counts(), (0, 0, 0, 0));
    let v = e.ok("GET", "/v2.0/extensions", A, None, 200);
    let aliases: Vec<&str> = v["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| s(&x["alias"]))
        .collect();
    for want in [
        "pagination",
        "sorting",
        "provider",
        "binding",
        "project-id",
        "filter-validation",
    ] {
        assert!(aliases.contains(&want), "{want}");
    }
    assert_eq!(
        e.ok("GET", "/v2.0/extensions/pagination", A, None, 200)["extension"]["alias"],
        "pagination"
    );
    e.err(
        "GET",
        "/v2.0/extensions/nope",
        A,
        None,
        404,
        "ExtensionNotFound",
    );
    e.err("GET", "/v2.0/nothing", A, None, 404, "HTTPNotFound");
    e.err(
        "PATCH",
        "/v2.0/networks",
        A,
        None,
        405,
        "HTTPMethodNotAllowed",
    );
    e.err(
        "PUT",
        "/v2.0/networks",
        A,
        Some(json!({})),
        405,
        "HTTPMethodNotAllowed",
    );
    let v = e.ok("GET", "/v2.0", A, None, 200);
    assert_eq!(v["resources"].as_array().unwrap().len(), 3);
}

#[test]
fn network_crud_and_views() {
    let e = Env::new();
    let n = e.network(A, json!({"name": "net1", "description": "d"}));
    let id = s(&n["id"]).to_string();
    assert!(uuid_like(&id), "{id}");
    assert_eq!(n["tenant_id"], "tenant-a");
    assert_eq!(n["project_id"], "tenant-a");
    assert_eq!(n["status"], "ACTIVE");
    assert_eq!(n["admin_state_up"], true);
    assert_eq!(n["shared"], false);
    assert_eq!(n["mtu"], 1450);
    assert_eq!(n["subnets"], json!([]));
    assert!(timestamp_like(s(&n["created_at"])));
    assert!(
        n.get("provider:segmentation_id").is_none(),
        "tenants do not see provider attributes"
    );
    let p = e.ok("GET", &format!("/v2.0/networks/{id}"), ADMIN, None, 200)["network"].clone();
    assert_eq!(p["provider:network_type"], "vxlan");
    assert!(p["provider:segmentation_id"].as_u64().unwrap() >= 1);
    assert_eq!(p["provider:physical_network"], Value::Null);
    // .json suffix and fields= on show.
    let v = e.ok(
        "GET",
        &format!("/v2.0/networks/{id}.json?fields=name&fields=status"),
        A,
        None,
        200,
    );
    assert_eq!(v["network"], json!({"name": "net1", "status": "ACTIVE"}));
    let v = e.ok("GET", "/v2.0/networks.json", A, None, 200);
    assert_eq!(v["networks"].as_array().unwrap().len(), 1);
    let u = e.ok(
        "PUT",
        &format!("/v2.0/networks/{id}"),
        A,
        Some(json!({"network": {"name": "renamed", "admin_state_up": false}})),
        200,
    )["network"]
        .clone();
    assert_eq!(u["name"], "renamed");
    assert_eq!(u["status"], "DOWN");
    assert_eq!(u["revision_number"], 1);
    assert_eq!(
        e.ok("DELETE", &format!("/v2.0/networks/{id}"), A, None, 204),
        Value::Null
    );
    let m = e.err(
        "GET",
        &format!("/v2.0/networks/{id}"),
        A,
        None,
        404,
        "NetworkNotFound",
    );
    assert_eq!(m, format!("Network {id} could not be found."));
    e.err(
        "DELETE",
        &format!("/v2.0/networks/{id}"),
        A,
        None,
        404,
        "NetworkNotFound",
    );
    assert_eq!(e.counts(), (0, 0, 0, 0));
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.bytes().filter(|c| *c == b'-').count() == 4
}
fn timestamp_like(s: &str) -> bool {
    s.len() == 20 && s.ends_with('Z') && &s[10..11] == "T"
}

#[test]
fn subnets_ports_and_ipam_v4_v6() {
    let e = Env::new();
    let n = e.network(A, json!({"name": "n"}));
    let nid = s(&n["id"]).to_string();
    let s4 = e.subnet(A, json!({"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4,
        "dns_nameservers": ["10.0.0.53"], "host_routes": [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"}]}));
    assert_eq!(s4["gateway_ip"], "10.0.0.1");
    assert_eq!(
        s4["allocation_pools"],
        json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
    );
    assert_eq!(s4["enable_dhcp"], true);
    assert_eq!(s4["tenant_id"], "tenant-a");
    let s6 = e.subnet(
        A,
        json!({"network_id": nid, "cidr": "2001:db8::/64", "ip_version": 6, "gateway_ip": null}),
    );
    assert_eq!(s6["gateway_ip"], Value::Null);
    assert_eq!(
        s6["allocation_pools"],
        json!([{"start": "2001:db8::1", "end": "2001:db8::ffff:ffff:ffff:ffff"}])
    );
    let n = e.ok("GET", &format!("/v2.0/networks/{nid}"), A, None, 200)["network"].clone();
    assert_eq!(n["subnets"], json!([s4["id"], s6["id"]]));
    // A port gets one address from each family and a MAC under the prefix.
    let p = e.port(
        A,
        json!({"network_id": nid, "name": "p1", "device_owner": "compute:nova"}),
    );
    assert_eq!(
        p["fixed_ips"],
        json!([
        {"subnet_id": s4["id"], "ip_address": "10.0.0.2"},
        {"subnet_id": s6["id"], "ip_address": "2001:db8::1"}])
    );
    assert!(s(&p["mac_address"]).starts_with("fa:16:3e:"));
    assert_eq!(p["status"], "DOWN");
    assert_eq!(p["admin_state_up"], true);
    assert!(p.get("binding:host_id").is_none());
    // Explicit address in a subnet; by address only.
    let q = e.port(A, json!({"network_id": nid, "fixed_ips": [{"subnet_id": s4["id"], "ip_address": "10.0.0.100"}]}));
    assert_eq!(
        q["fixed_ips"],
        json!([{"subnet_id": s4["id"], "ip_address": "10.0.0.100"}])
    );
    let r = e.port(
        A,
        json!({"network_id": nid, "fixed_ips": [{"ip_address": "2001:db8::99"}]}),
    );
    assert_eq!(r["fixed_ips"][0]["subnet_id"], s6["id"]);
    // Update a port's addresses: release 10.0.0.100, take 10.0.0.101.
    let qid = s(&q["id"]).to_string();
    let q2 = e.ok(
        "PUT",
        &format!("/v2.0/ports/{qid}"),
        A,
        Some(json!({"port": {"fixed_ips": [{"ip_address": "10.0.0.101"}], "name": "q"}})),
        200,
    )["port"]
        .clone();
    assert_eq!(q2["fixed_ips"][0]["ip_address"], "10.0.0.101");
    let again = e.port(
        A,
        json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.100"}]}),
    );
    assert_eq!(again["fixed_ips"][0]["ip_address"], "10.0.0.100");
    // Delete releases the address.
    let pid = s(&p["id"]).to_string();
    e.ok("DELETE", &format!("/v2.0/ports/{pid}"), A, None, 204);
    e.err(
        "GET",
        &format!("/v2.0/ports/{pid}"),
        A,
        None,
        404,
        "PortNotFound",
    );
    let back = e.port(
        A,
        json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.2"}]}),
    );
    assert_eq!(back["fixed_ips"][0]["ip_address"], "10.0.0.2");
    // Subnet and network in use; then cleaned up.
    let sid = s(&s4["id"]).to_string();
    e.err(
        "DELETE",
        &format!("/v2.0/subnets/{sid}"),
        A,
        None,
        409,
        "SubnetInUse",
    );
    e.err(
        "DELETE",
        &format!("/v2.0/networks/{nid}"),
        A,
        None,
        409,
        "NetworkInUse",
    );
    let ports = e.ok("GET", "/v2.0/ports", A, None, 200)["ports"]
        .as_array()
        .unwrap()
        .clone();
    for p in &ports {
        e.ok(
            "DELETE",
            &format!("/v2.0/ports/{}", s(&p["id"])),
            A,
            None,
            204,
        );
    }
    // Subnet update: gateway and pools, validated together.
    let up = e.ok("PUT", &format!("/v2.0/subnets/{sid}"), A, Some(json!({"subnet": {
        "gateway_ip": "10.0.0.254", "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.20"}], "enable_dhcp": false}})), 200)["subnet"].clone();
    assert_eq!(up["gateway_ip"], "10.0.0.254");
    assert_eq!(up["enable_dhcp"], false);
    e.err(
        "PUT",
        &format!("/v2.0/subnets/{sid}"),
        A,
        Some(json!({"subnet": {"gateway_ip": "10.0.0.15"}})),
        409,
        "GatewayConflictWithAllocationPools",
    );
    e.err(
        "PUT",
        &format!("/v2.0/subnets/{sid}"),
        A,
        Some(json!({"subnet": {"cidr": "10.1.0.0/24"}})),
        400,
        "HTTPBadRequest",
    );
    // Deleting the network deletes its subnets.
    e.ok("DELETE", &format!("/v2.0/networks/{nid}"), A, None, 204);
    e.err(
        "GET",
        &format!("/v2.0/subnets/{sid}"),
        A,
        None,
        404,
        "SubnetNotFound",
    );
    assert_eq!(e.counts(), (0, 0, 0, 0));
}

#[test]
fn exhaustion_is_409() {
    let e = Env::new();
    let nid = s(&e.network(A, json!({}))["id"]).to_string();
    e.subnet(
        A,
        json!({"network_id": nid, "cidr": "10.0.0.0/29", "ip_version": 4}),
    );
    for _ in 0..5 {
        e.port(A, json!({"network_id": nid}));
    }
    let before = e.counts();
    e.err(
        "POST",
        "/v2.0/ports",
        A,
        Some(json!({"port": {"network_id": nid}})),
        409,
        "IpAddressGenerationFailure",
    );
    assert_eq!(e.counts(), before);
}

/// Every bad input: a 4xx NeutronError naming the problem, and the store unchanged.
#[test]
fn bad_input_changes_nothing() {
    let e = Env::new();
    let nid = s(&e.network(A, json!({"name": "n"}))["id"]).to_string();
    let sub = e.subnet(
        A,
        json!({"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4}),
    );
    let sid = s(&sub["id"]).to_string();
    let p = e.port(A, json!({"network_id": nid}));
    let mac = s(&p["mac_address"]).to_string();
    let taken = s(&p["fixed_ips"][0]["ip_address"]).to_string();
    let before = e.counts();
    let snap = e.svc.snapshot();

    let post = |path: &str, body: Value, st: u16, ty: &str| {
        let m = e.err("POST", path, A, Some(body), st, ty);
        assert_eq!(e.counts(), before, "{path} {ty}: store changed");
        m
    };
    let subnet = |extra: Value| {
        let mut b = json!({"network_id": nid, "ip_version": 4});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        json!({ "subnet": b })
    };
    // Invalid CIDR (several ways).
    let m = post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/33"})),
        400,
        "InvalidInput",
    );
    assert!(m.contains("10.1.0.0/33"), "{m}");
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "banana"})),
        400,
        "InvalidInput",
    );
    let m = post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.1/24"})),
        400,
        "InvalidInput",
    );
    assert!(m.contains("10.1.0.0/24"), "{m}");
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "ip_version": 6})),
        400,
        "InvalidInput",
    );
    // Overlapping the existing subnet.
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.0.0.128/25"})),
        400,
        "InvalidInput",
    );
    // Gateway outside the CIDR.
    let m = post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "gateway_ip": "10.2.0.1"})),
        400,
        "InvalidInput",
    );
    assert!(m.contains("Gateway"), "{m}");
    // Overlapping pools; pool outside; pool with the gateway.
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "allocation_pools": [
        {"start": "10.1.0.10", "end": "10.1.0.20"}, {"start": "10.1.0.15", "end": "10.1.0.30"}]})),
        409,
        "OverlappingAllocationPools",
    );
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "allocation_pools": [
        {"start": "10.1.0.10", "end": "10.1.1.20"}]})),
        400,
        "OutOfBoundsAllocationPool",
    );
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "allocation_pools": [
        {"start": "10.1.0.1", "end": "10.1.0.20"}]})),
        409,
        "GatewayConflictWithAllocationPools",
    );
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "allocation_pools": [
        {"start": "10.1.0.30", "end": "10.1.0.20"}]})),
        400,
        "InvalidAllocationPool",
    );
    // Too many host routes / DNS servers.
    let routes: Vec<Value> = (0..21)
        .map(|i| json!({"destination": format!("10.{}.0.0/16", 100 + i), "nexthop": "10.1.0.254"}))
        .collect();
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "host_routes": routes})),
        400,
        "HostRoutesExhausted",
    );
    let dns: Vec<Value> = (1..=6).map(|i| json!(format!("10.1.0.{i}"))).collect();
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "dns_nameservers": dns})),
        400,
        "DNSNameServersExhausted",
    );
    // Unknown network (subnet and port).
    post(
        "/v2.0/subnets",
        json!({"subnet": {"network_id": "no-such", "cidr": "10.1.0.0/24", "ip_version": 4}}),
        404,
        "NetworkNotFound",
    );
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": "no-such"}}),
        404,
        "NetworkNotFound",
    );
    // Fixed IP outside the subnet; in no subnet of the network; taken; the gateway.
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"subnet_id": sid, "ip_address": "10.9.9.9"}]}}),
        400,
        "InvalidIpForSubnet",
    );
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.9.9.9"}]}}),
        400,
        "InvalidIpForNetwork",
    );
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"subnet_id": sid, "ip_address": "10.0.0.255"}]}}),
        400,
        "InvalidIpForSubnet",
    );
    let m = post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"ip_address": taken}]}}),
        409,
        "IpAddressAlreadyAllocated",
    );
    assert!(m.contains(&taken), "{m}");
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.1"}]}}),
        409,
        "IpAddressAlreadyAllocated",
    );
    // Two addresses, the second taken: the first is not kept either.
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.77"}, {"ip_address": taken}]}}),
        409,
        "IpAddressAlreadyAllocated",
    );
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"subnet_id": "nope"}]}}),
        400,
        "InvalidInput",
    );
    // Duplicate MAC; invalid and multicast MACs.
    let m = post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "mac_address": mac}}),
        409,
        "MacAddressInUse",
    );
    assert!(m.contains(&mac), "{m}");
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "mac_address": "fa:16:3e:zz:00:00"}}),
        400,
        "HTTPBadRequest",
    );
    post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "mac_address": "01:00:5e:00:00:01"}}),
        400,
        "InvalidInput",
    );
    // Malformed JSON, wrong envelope, bulk, unknown fields, wrong types, read-only attributes.
    for (path, body) in [
        ("/v2.0/networks", "{\"network\": {"),
        ("/v2.0/subnets", "not json"),
        ("/v2.0/ports", "{\"port\": {\"network_id\": }"),
    ] {
        let (st, text) = e.raw("POST", path, Some(A), Some(body));
        assert_eq!(st, 400, "{path}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["NeutronError"]["type"], "MalformedRequestBody");
        assert!(s(&v["NeutronError"]["message"]).starts_with("Malformed request body"));
    }
    post("/v2.0/networks", json!({"net": {}}), 400, "HTTPBadRequest");
    post(
        "/v2.0/networks",
        json!({"networks": [{}, {}]}),
        400,
        "HTTPBadRequest",
    );
    let m = post(
        "/v2.0/networks",
        json!({"network": {"name": "x", "foo": 1}}),
        400,
        "HTTPBadRequest",
    );
    assert_eq!(m, "Unrecognized attribute(s) 'foo'");
    let m = post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "bar": true}}),
        400,
        "HTTPBadRequest",
    );
    assert_eq!(m, "Unrecognized attribute(s) 'bar'");
    post(
        "/v2.0/subnets",
        subnet(json!({"cidr": "10.1.0.0/24", "colour": "red"})),
        400,
        "HTTPBadRequest",
    );
    let m = post(
        "/v2.0/networks",
        json!({"network": {"admin_state_up": "perhaps"}}),
        400,
        "HTTPBadRequest",
    );
    assert!(m.contains("admin_state_up"), "{m}");
    post(
        "/v2.0/networks",
        json!({"network": {"name": 5}}),
        400,
        "HTTPBadRequest",
    );
    post(
        "/v2.0/networks",
        json!({"network": {"status": "ACTIVE"}}),
        400,
        "HTTPBadRequest",
    );
    post(
        "/v2.0/networks",
        json!({"network": {"name": "x".repeat(256)}}),
        400,
        "HTTPBadRequest",
    );
    // Updates with bad input leave the resource as it was.
    let pid = s(&p["id"]).to_string();
    e.err(
        "PUT",
        &format!("/v2.0/ports/{pid}"),
        A,
        Some(json!({"port": {"mac_address": "fa:16:3e:00:00:99"}})),
        400,
        "HTTPBadRequest",
    );
    e.err(
        "PUT",
        &format!("/v2.0/ports/{pid}"),
        A,
        Some(json!({"port": {"name": "x", "fixed_ips": [{"ip_address": "10.9.9.9"}]}})),
        400,
        "InvalidIpForNetwork",
    );
    e.err(
        "PUT",
        &format!("/v2.0/networks/{nid}"),
        A,
        Some(json!({"network": {"name": "x", "nope": 1}})),
        400,
        "HTTPBadRequest",
    );
    e.err("PUT", &format!("/v2.0/subnets/{sid}"), A, Some(json!({"subnet": {"name": "x", "allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.9"}]}})), 409, "GatewayConflictWithAllocationPools");
    e.err(
        "PUT",
        &format!("/v2.0/networks/{nid}"),
        A,
        Some(json!({"network": "x"})),
        400,
        "HTTPBadRequest",
    );
    assert_eq!(e.counts(), before);
    assert_eq!(
        e.svc.snapshot(),
        snap,
        "the model changed after failed requests"
    );
    // 10.0.0.77 was not kept by the failed two-address request.
    let q = e.port(
        A,
        json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.77"}]}),
    );
    assert_eq!(q["fixed_ips"][0]["ip_address"], "10.0.0.77");
    // Oversized body: 413 NeutronError, decided from Content-Length before the body is read.
    // (A raw client that sends only the headers: a client still writing a large body when the
    // server answers and closes would race with the close and see a broken pipe.)
    use std::io::{Read, Write};
    let addr = e.base.trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        c,
        "POST /v2.0/networks HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {A}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"network\": {{\"name\": \"",
        2 << 20
    )
    .unwrap();
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&resp).contains("NeutronError") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => resp.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("NeutronError"), "{text}");
}

#[test]
fn pagination_sorting_fields_filters() {
    let e = Env::new();
    let mut ids = Vec::new();
    for (i, name) in ["e", "c", "a", "d", "b"].iter().enumerate() {
        let n = e.network(A, json!({"name": name, "admin_state_up": i % 2 == 0}));
        ids.push(s(&n["id"]).to_string());
    }
    e.network(B, json!({"name": "other-tenant"}));
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    // Default order: by id. Walk pages by following next links.
    let mut seen = Vec::new();
    let mut url = "/v2.0/networks?limit=2".to_string();
    let mut pages = 0;
    loop {
        let v = e.ok("GET", &url, A, None, 200);
        pages += 1;
        for n in v["networks"].as_array().unwrap() {
            seen.push(s(&n["id"]).to_string());
        }
        let links = v["networks_links"].as_array().unwrap();
        if pages > 1 {
            assert!(links.iter().any(|l| l["rel"] == "previous"), "{v}");
        }
        match links.iter().find(|l| l["rel"] == "next") {
            Some(l) => url = s(&l["href"]).strip_prefix(&e.base).unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, sorted_ids);
    // Previous link goes back.
    let v = e.ok(
        "GET",
        &format!("/v2.0/networks?limit=2&marker={}", sorted_ids[2]),
        A,
        None,
        200,
    );
    let prev = v["networks_links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "previous")
        .unwrap()
        .clone();
    let v = e.ok(
        "GET",
        s(&prev["href"]).strip_prefix(&e.base).unwrap(),
        A,
        None,
        200,
    );
    let got: Vec<&str> = v["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| s(&n["id"]))
        .collect();
    assert_eq!(got, [sorted_ids[1].as_str(), sorted_ids[2].as_str()]);
    // Sort by name, both directions; fields.
    let names = |q: &str| -> Vec<String> {
        e.ok("GET", &format!("/v2.0/networks?{q}"), A, None, 200)["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| s(&n["name"]).to_string())
            .collect()
    };
    assert_eq!(
        names("sort_key=name&sort_dir=asc"),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        names("sort_key=name&sort_dir=desc"),
        ["e", "d", "c", "b", "a"]
    );
    assert_eq!(names("sort_key=name&sort_dir=desc&limit=2"), ["e", "d"]);
    assert_eq!(
        names("sort_key=admin_state_up&sort_dir=desc&sort_key=name&sort_dir=asc"),
        ["a", "b", "e", "c", "d"]
    );
    let v = e.ok("GET", "/v2.0/networks?fields=id&fields=name", A, None, 200);
    for n in v["networks"].as_array().unwrap() {
        let keys: HashSet<&str> = n.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, HashSet::from(["id", "name"]));
    }
    // Filters: one value, OR of values, AND of keys, booleans.
    assert_eq!(names("name=c"), ["c"]);
    let mut or = names("name=c&name=a");
    or.sort();
    assert_eq!(or, ["a", "c"]);
    assert_eq!(names("name=c&admin_state_up=false"), ["c"]);
    assert_eq!(names("name=c&admin_state_up=True"), Vec::<String>::new());
    assert_eq!(
        names("tenant_id=tenant-b"),
        Vec::<String>::new(),
        "another tenant's networks stay invisible"
    );
    // Unknown filter or sort key: 400 (filter-validation); provider attributes unknown to tenants.
    e.err(
        "GET",
        "/v2.0/networks?colour=red",
        A,
        None,
        400,
        "HTTPBadRequest",
    );
    e.err(
        "GET",
        "/v2.0/networks?provider:segmentation_id=5",
        A,
        None,
        400,
        "HTTPBadRequest",
    );
    e.err(
        "GET",
        "/v2.0/networks?sort_key=colour",
        A,
        None,
        400,
        "HTTPBadRequest",
    );
    e.err(
        "GET",
        "/v2.0/networks?limit=two",
        A,
        None,
        400,
        "HTTPBadRequest",
    );
    e.err(
        "GET",
        "/v2.0/networks?limit=1&marker=nope",
        A,
        None,
        400,
        "HTTPBadRequest",
    );
    // Provider filters on segmentation id.
    let vni = e.ok(
        "GET",
        &format!("/v2.0/networks/{}", ids[0]),
        ADMIN,
        None,
        200,
    )["network"]["provider:segmentation_id"]
        .clone();
    let v = e.ok(
        "GET",
        &format!("/v2.0/networks?provider:segmentation_id={vni}"),
        ADMIN,
        None,
        200,
    );
    assert_eq!(v["networks"].as_array().unwrap().len(), 1);
    // Ports: filter by fixed IP, network, device_id.
    let nid = &ids[0];
    e.subnet(
        A,
        json!({"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4}),
    );
    let p = e.port(A, json!({"network_id": nid, "device_id": "vm-1"}));
    e.port(A, json!({"network_id": nid, "device_id": "vm-2"}));
    let v = e.ok(
        "GET",
        &format!(
            "/v2.0/ports?fixed_ips=ip_address%3D{}",
            s(&p["fixed_ips"][0]["ip_address"])
        ),
        A,
        None,
        200,
    );
    assert_eq!(v["ports"].as_array().unwrap().len(), 1);
    assert_eq!(v["ports"][0]["id"], p["id"]);
    let v = e.ok(
        "GET",
        &format!("/v2.0/ports?network_id={nid}&device_id=vm-2"),
        A,
        None,
        200,
    );
    assert_eq!(v["ports"].as_array().unwrap().len(), 1);
    // Each plain string attribute (filtered before the JSON is built), alone, with OR over
    // repeated values, and a MAC in upper case (no match: the filter is exact).
    let mac = s(&p["mac_address"]);
    for (q, n) in [
        (format!("id={}", s(&p["id"])), 1),
        (format!("mac_address={mac}"), 1),
        (format!("mac_address={}", mac.to_uppercase()), 0),
        ("device_id=vm-1&device_id=vm-2".to_string(), 2),
        ("device_id=vm-3".to_string(), 0),
        ("tenant_id=tenant-a&name=".to_string(), 2),
        (
            format!("project_id=tenant-a&device_owner=&network_id={nid}"),
            2,
        ),
    ] {
        let v = e.ok("GET", &format!("/v2.0/ports?{q}"), A, None, 200);
        assert_eq!(v["ports"].as_array().unwrap().len(), n, "{q}");
    }
    let v = e.ok(
        "GET",
        "/v2.0/subnets?cidr=10.0.0.0/24&ip_version=4",
        A,
        None,
        200,
    );
    assert_eq!(v["subnets"].as_array().unwrap().len(), 1);
}

/// Token isolation on every endpoint: tenant B never reads or changes tenant A's resources.
#[test]
fn tenant_isolation_every_endpoint() {
    let e = Env::new();
    let n = e.network(A, json!({"name": "a-net"}));
    let nid = s(&n["id"]).to_string();
    let sub = e.subnet(
        A,
        json!({"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4}),
    );
    let sid = s(&sub["id"]).to_string();
    let p = e.port(A, json!({"network_id": nid}));
    let pid = s(&p["id"]).to_string();
    let before = e.counts();
    let snap = e.svc.snapshot();

    // Lists show nothing of A's.
    for c in ["networks", "subnets", "ports"] {
        let v = e.ok("GET", &format!("/v2.0/{c}"), B, None, 200);
        assert_eq!(v[c], json!([]), "{c}");
        let v = e.ok(
            "GET",
            &format!("/v2.0/{c}?tenant_id=tenant-a"),
            B,
            None,
            200,
        );
        assert_eq!(v[c], json!([]), "{c} filtered by tenant");
    }
    // Show, update, delete: 404 as for a resource that does not exist.
    for (c, id, ty, body) in [
        (
            "networks",
            &nid,
            "NetworkNotFound",
            json!({"network": {"name": "x"}}),
        ),
        (
            "subnets",
            &sid,
            "SubnetNotFound",
            json!({"subnet": {"name": "x"}}),
        ),
        (
            "ports",
            &pid,
            "PortNotFound",
            json!({"port": {"name": "x"}}),
        ),
    ] {
        e.err("GET", &format!("/v2.0/{c}/{id}"), B, None, 404, ty);
        e.err("PUT", &format!("/v2.0/{c}/{id}"), B, Some(body), 404, ty);
        e.err("DELETE", &format!("/v2.0/{c}/{id}"), B, None, 404, ty);
    }
    // Creating in A's network: the network is invisible.
    e.err(
        "POST",
        "/v2.0/subnets",
        B,
        Some(json!({"subnet": {"network_id": nid, "cidr": "10.1.0.0/24", "ip_version": 4}})),
        404,
        "NetworkNotFound",
    );
    e.err(
        "POST",
        "/v2.0/ports",
        B,
        Some(json!({"port": {"network_id": nid}})),
        404,
        "NetworkNotFound",
    );
    // Creating for tenant A with B's token: 403.
    e.err(
        "POST",
        "/v2.0/networks",
        B,
        Some(json!({"network": {"tenant_id": "tenant-a"}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/networks",
        B,
        Some(json!({"network": {"project_id": "tenant-a"}})),
        403,
        "PolicyNotAuthorized",
    );
    // Net Objects: another tenant's path is 403; A's switch under B's path is 404.
    e.err(
        "GET",
        "/tenants/tenant-a/switches.json",
        B,
        None,
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/tenants/tenant-a/switches.json",
        B,
        Some(json!({"switch": {"name": "x"}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "GET",
        &format!("/tenants/tenant-a/switches/{nid}.json"),
        B,
        None,
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        &format!("/tenants/tenant-a/switches/{nid}.json"),
        B,
        Some(json!({"switch": {"name": "x"}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "DELETE",
        &format!("/tenants/tenant-a/switches/{nid}.json"),
        B,
        None,
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "GET",
        &format!("/tenants/tenant-b/switches/{nid}.json"),
        B,
        None,
        404,
        "SwitchNotFound",
    );
    e.err(
        "POST",
        &format!("/tenants/tenant-b/switches/{nid}.json"),
        B,
        Some(json!({"switch": {"name": "x"}})),
        404,
        "SwitchNotFound",
    );
    e.err(
        "DELETE",
        &format!("/tenants/tenant-b/switches/{nid}.json"),
        B,
        None,
        404,
        "SwitchNotFound",
    );
    assert_eq!(
        e.ok("GET", "/tenants/tenant-b/switches.json", B, None, 200)["switches"],
        json!([])
    );
    // The cloud view is not for tenants; the cloud token sees no tenant resources.
    e.err(
        "GET",
        "/v2.0/strato/hosts",
        B,
        None,
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "GET",
        "/v2.0/strato/hosts/hv1",
        B,
        None,
        403,
        "PolicyNotAuthorized",
    );
    for c in ["networks", "subnets", "ports"] {
        e.err(
            "GET",
            &format!("/v2.0/{c}"),
            CLOUD,
            None,
            403,
            "PolicyNotAuthorized",
        );
    }
    e.err(
        "GET",
        &format!("/v2.0/networks/{nid}"),
        CLOUD,
        None,
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/networks",
        CLOUD,
        Some(json!({"network": {}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "GET",
        "/tenants/tenant-a/switches.json",
        CLOUD,
        None,
        403,
        "PolicyNotAuthorized",
    );
    assert_eq!(e.counts(), before);
    assert_eq!(e.svc.snapshot(), snap);
    // A still sees all of it; the provider sees everything with provider attributes.
    assert_eq!(
        e.ok("GET", &format!("/v2.0/ports/{pid}"), A, None, 200)["port"]["id"],
        pid.as_str()
    );
    let v = e.ok("GET", "/v2.0/ports", ADMIN, None, 200);
    assert_eq!(v["ports"].as_array().unwrap().len(), 1);
    assert!(v["ports"][0].get("binding:host_id").is_some());
}

/// What tenants may not set (403), shared networks, and provider-only attributes.
#[test]
fn policy_and_shared_networks() {
    let e = Env::new();
    e.err(
        "POST",
        "/v2.0/networks",
        A,
        Some(json!({"network": {"shared": true}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/networks",
        A,
        Some(json!({"network": {"provider:network_type": "vxlan"}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/networks",
        A,
        Some(json!({"network": {"provider:segmentation_id": 77}})),
        403,
        "PolicyNotAuthorized",
    );
    let nid = s(&e.network(A, json!({}))["id"]).to_string();
    e.err(
        "PUT",
        &format!("/v2.0/networks/{nid}"),
        A,
        Some(json!({"network": {"shared": true}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/ports",
        A,
        Some(json!({"port": {"network_id": nid, "binding:host_id": "hv1"}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/ports",
        A,
        Some(json!({"port": {"network_id": nid, "binding:profile": {"interface": "tap0"}}})),
        403,
        "PolicyNotAuthorized",
    );
    // A provider network for tenant A, shared, with a chosen VNI.
    let sh = e.network(
        ADMIN,
        json!({"name": "shared", "tenant_id": "tenant-a", "shared": true,
        "provider:network_type": "vxlan", "provider:segmentation_id": 4242}),
    );
    assert_eq!(sh["provider:segmentation_id"], 4242);
    let shid = s(&sh["id"]).to_string();
    let shsub = e.subnet(
        ADMIN,
        json!({"network_id": shid, "cidr": "10.50.0.0/24", "ip_version": 4}),
    );
    assert_eq!(shsub["tenant_id"], "tenant-a");
    e.err(
        "POST",
        "/v2.0/networks",
        ADMIN,
        Some(json!({"network": {"provider:segmentation_id": 4242}})),
        409,
        "TunnelIdInUse",
    );
    e.err(
        "POST",
        "/v2.0/networks",
        ADMIN,
        Some(json!({"network": {"provider:network_type": "gre"}})),
        400,
        "InvalidInput",
    );
    // B sees it (and its subnet), cannot change it, can put its own port on it.
    let v = e.ok("GET", "/v2.0/networks", B, None, 200);
    assert_eq!(v["networks"].as_array().unwrap().len(), 1);
    assert!(v["networks"][0].get("provider:segmentation_id").is_none());
    e.ok(
        "GET",
        &format!("/v2.0/subnets/{}", s(&shsub["id"])),
        B,
        None,
        200,
    );
    e.err(
        "PUT",
        &format!("/v2.0/networks/{shid}"),
        B,
        Some(json!({"network": {"name": "x"}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "DELETE",
        &format!("/v2.0/networks/{shid}"),
        B,
        None,
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "PUT",
        &format!("/v2.0/subnets/{}", s(&shsub["id"])),
        B,
        Some(json!({"subnet": {"name": "x"}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/subnets",
        B,
        Some(json!({"subnet": {"network_id": shid, "cidr": "10.51.0.0/24", "ip_version": 4}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/ports",
        B,
        Some(json!({"port": {"network_id": shid, "fixed_ips": [{"ip_address": "10.50.0.9"}]}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/v2.0/ports",
        B,
        Some(json!({"port": {"network_id": shid, "mac_address": "fa:16:3e:12:34:56"}})),
        403,
        "PolicyNotAuthorized",
    );
    let bp = e.port(B, json!({"network_id": shid}));
    assert_eq!(bp["tenant_id"], "tenant-b");
    // A (the network's owner) does not see B's port; the network is in use.
    e.err(
        "GET",
        &format!("/v2.0/ports/{}", s(&bp["id"])),
        A,
        None,
        404,
        "PortNotFound",
    );
    assert_eq!(e.ok("GET", "/v2.0/ports", A, None, 200)["ports"], json!([]));
    e.err(
        "DELETE",
        &format!("/v2.0/networks/{shid}"),
        A,
        None,
        409,
        "NetworkInUse",
    );
    // It cannot stop being shared while B uses it.
    e.err(
        "PUT",
        &format!("/v2.0/networks/{shid}"),
        ADMIN,
        Some(json!({"network": {"shared": false}})),
        409,
        "InvalidSharedSetting",
    );
    // Updating provider attributes is refused.
    e.err(
        "PUT",
        &format!("/v2.0/networks/{shid}"),
        ADMIN,
        Some(json!({"network": {"provider:segmentation_id": 5}})),
        400,
        "HTTPBadRequest",
    );
}

#[test]
fn bindings_and_cloud_view() {
    let e = Env::new();
    let nid = s(&e.network(A, json!({}))["id"]).to_string();
    e.subnet(
        A,
        json!({"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4}),
    );
    let p = e.port(
        ADMIN,
        json!({"network_id": nid, "tenant_id": "tenant-a",
        "binding:host_id": "hv1", "binding:profile": {"interface": "tap-vm1", "kind": "tap"}}),
    );
    assert_eq!(p["status"], "ACTIVE");
    assert_eq!(p["binding:vif_type"], "tap");
    assert_eq!(
        p["binding:profile"],
        json!({"interface": "tap-vm1", "kind": "tap"})
    );
    // The tenant sees its port, without binding details.
    let tp = e.ok("GET", &format!("/v2.0/ports/{}", s(&p["id"])), A, None, 200)["port"].clone();
    assert_eq!(tp["status"], "ACTIVE");
    assert!(tp.get("binding:profile").is_none());
    e.err(
        "POST",
        "/v2.0/ports",
        ADMIN,
        Some(json!({"port": {"network_id": nid,
        "binding:host_id": "hv1", "binding:profile": {"interface": "tap-vm1"}}})),
        409,
        "InterfaceInUse",
    );
    e.err(
        "POST",
        "/v2.0/ports",
        ADMIN,
        Some(json!({"port": {"network_id": nid,
        "binding:host_id": "hv9", "binding:profile": {"interface": "tap-vm2"}}})),
        400,
        "InvalidInput",
    );
    e.err(
        "POST",
        "/v2.0/ports",
        ADMIN,
        Some(json!({"port": {"network_id": nid,
        "binding:host_id": "hv1", "binding:profile": {"interface": "bad/name"}}})),
        400,
        "InvalidInput",
    );
    e.err(
        "POST",
        "/v2.0/ports",
        ADMIN,
        Some(json!({"port": {"network_id": nid,
        "binding:host_id": "hv1", "binding:profile": {"interface": "veth1", "kind": "macvtap"}}})),
        400,
        "HTTPBadRequest",
    );
    let q = e.port(ADMIN, json!({"network_id": nid, "binding:host_id": "hv2", "binding:profile": {"interface": "veth-c1", "kind": "veth"}}));
    assert_eq!(q["binding:vif_type"], "veth");
    // Cloud view: hosts, VTEPs, bound interfaces.
    let v = e.ok("GET", "/v2.0/strato/hosts", CLOUD, None, 200);
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0]["name"], "hv1");
    assert_eq!(hosts[0]["vtep_ip"], "192.0.2.1");
    assert_eq!(hosts[0]["uplinks"], json!(["eth1"]));
    assert_eq!(hosts[0]["interfaces"][0]["interface"], "tap-vm1");
    assert_eq!(hosts[0]["interfaces"][0]["port_id"], p["id"]);
    assert_eq!(hosts[1]["interfaces"][0]["kind"], "veth");
    let h = e.ok("GET", "/v2.0/strato/hosts/hv2", ADMIN, None, 200);
    assert_eq!(h["host"]["vtep_ip"], "192.0.2.2");
    e.err(
        "GET",
        "/v2.0/strato/hosts/nope",
        CLOUD,
        None,
        404,
        "HostNotFound",
    );
    // Unbind: the interface is free again, the port goes DOWN.
    let pid = s(&p["id"]).to_string();
    let u = e.ok(
        "PUT",
        &format!("/v2.0/ports/{pid}"),
        ADMIN,
        Some(json!({"port": {"binding:host_id": ""}})),
        200,
    )["port"]
        .clone();
    assert_eq!(u["status"], "DOWN");
    assert_eq!(u["binding:vif_type"], "unbound");
    e.port(ADMIN, json!({"network_id": nid, "binding:host_id": "hv1", "binding:profile": {"interface": "tap-vm1"}}));
    // admin_state_up false: DOWN even when bound.
    let u = e.ok(
        "PUT",
        &format!("/v2.0/ports/{}", s(&q["id"])),
        ADMIN,
        Some(json!({"port": {"admin_state_up": false}})),
        200,
    )["port"]
        .clone();
    assert_eq!(u["status"], "DOWN");
}

#[test]
fn net_objects_switches() {
    let e = Env::new();
    let sw = e.ok(
        "POST",
        "/tenants/tenant-a/switches.json",
        A,
        Some(json!({"switch": {"name": "sw1", "description": "first"}})),
        201,
    )["switch"]
        .clone();
    let id = s(&sw["id"]).to_string();
    assert_eq!(sw["name"], "sw1");
    assert_eq!(sw["tenant_id"], "tenant-a");
    assert_eq!(sw["status"], "ACTIVE");
    assert!(sw.get("vni").is_none());
    // It is a network.
    let n = e.ok("GET", &format!("/v2.0/networks/{id}"), A, None, 200)["network"].clone();
    assert_eq!(n["name"], "sw1");
    let v = e.ok("GET", "/tenants/tenant-a/switches.json", A, None, 200);
    assert_eq!(v["switches"].as_array().unwrap().len(), 1);
    let got = e.ok(
        "GET",
        &format!("/tenants/tenant-a/switches/{id}.json"),
        A,
        None,
        200,
    )["switch"]
        .clone();
    assert_eq!(got, sw);
    let up = e.ok(
        "POST",
        &format!("/tenants/tenant-a/switches/{id}.json"),
        A,
        Some(json!({"switch": {"name": "sw1b", "admin_state_up": false}})),
        200,
    )["switch"]
        .clone();
    assert_eq!(up["name"], "sw1b");
    assert_eq!(up["status"], "DOWN");
    e.err(
        "POST",
        &format!("/tenants/tenant-a/switches/{id}.json"),
        A,
        Some(json!({"switch": {"vni": 5}})),
        400,
        "HTTPBadRequest",
    );
    e.err(
        "POST",
        "/tenants/tenant-a/switches.json",
        A,
        Some(json!({"switch": {"vni": 5}})),
        403,
        "PolicyNotAuthorized",
    );
    e.err(
        "POST",
        "/tenants/tenant-a/switches.json",
        A,
        Some(json!({"switch": {"colour": "red"}})),
        400,
        "HTTPBadRequest",
    );
    let (st, text) = e.raw(
        "POST",
        "/tenants/tenant-a/switches.json",
        Some(A),
        Some("{\"switch\": "),
    );
    assert_eq!(st, 400);
    assert!(text.contains("MalformedRequestBody"), "{text}");
    e.err(
        "GET",
        &format!("/tenants/tenant-a/switches/{id}"),
        A,
        None,
        404,
        "HTTPNotFound",
    );
    // A provider works in any tenant and sees the VNI.
    let p = e.ok(
        "POST",
        "/tenants/tenant-c/switches.json",
        ADMIN,
        Some(json!({"switch": {"name": "c1", "vni": 777}})),
        201,
    )["switch"]
        .clone();
    assert_eq!(p["vni"], 777);
    assert_eq!(p["tenant_id"], "tenant-c");
    assert_eq!(
        e.ok("GET", "/tenants/tenant-a/switches.json", ADMIN, None, 200)["switches"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    e.ok(
        "DELETE",
        &format!("/tenants/tenant-a/switches/{id}.json"),
        A,
        None,
        204,
    );
    e.err(
        "GET",
        &format!("/tenants/tenant-a/switches/{id}.json"),
        A,
        None,
        404,
        "SwitchNotFound",
    );
    e.err(
        "GET",
        &format!("/v2.0/networks/{id}"),
        A,
        None,
        404,
        "NetworkNotFound",
    );
}

/// A restart (new service and server on the same database) restores everything, and new
/// allocations continue without duplicates.
#[test]
fn restart_restores_everything() {
    let e = Env::new();
    let nid = s(&e.network(A, json!({"name": "persist"}))["id"]).to_string();
    e.subnet(A, json!({"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4, "host_routes": [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.1"}]}));
    e.subnet(
        A,
        json!({"network_id": nid, "cidr": "2001:db8::/64", "ip_version": 6}),
    );
    let mut ips = HashSet::new();
    let mut macs = HashSet::new();
    for i in 0..10 {
        let p = e.port(A, json!({"network_id": nid, "name": format!("p{i}")}));
        ips.insert(s(&p["fixed_ips"][0]["ip_address"]).to_string());
        macs.insert(s(&p["mac_address"]).to_string());
    }
    e.port(ADMIN, json!({"network_id": nid, "binding:host_id": "hv1", "binding:profile": {"interface": "tap0"}}));
    e.network(B, json!({"name": "b"}));
    let ports_before = e.ok("GET", "/v2.0/ports", ADMIN, None, 200);
    let nets_before = e.ok("GET", "/v2.0/networks", ADMIN, None, 200);
    let subs_before = e.ok("GET", "/v2.0/subnets", ADMIN, None, 200);
    let snap = e.svc.snapshot();

    let e = e.restart();
    let after = e.svc.snapshot();
    assert_eq!(
        (after.networks, after.subnets, after.ports),
        (snap.networks, snap.subnets, snap.ports)
    );
    assert_eq!(e.ok("GET", "/v2.0/ports", ADMIN, None, 200), ports_before);
    assert_eq!(e.ok("GET", "/v2.0/networks", ADMIN, None, 200), nets_before);
    assert_eq!(e.ok("GET", "/v2.0/subnets", ADMIN, None, 200), subs_before);
    // New allocations do not collide with restored ones.
    for _ in 0..5 {
        let p = e.port(A, json!({"network_id": nid}));
        assert!(ips.insert(s(&p["fixed_ips"][0]["ip_address"]).to_string()));
        assert!(macs.insert(s(&p["mac_address"]).to_string()));
    }
    e.err("POST", "/v2.0/ports", ADMIN, Some(json!({"port": {"network_id": nid, "binding:host_id": "hv1", "binding:profile": {"interface": "tap0"}}})), 409, "InterfaceInUse");
    let vnis: HashSet<u64> = e.ok("GET", "/v2.0/networks", ADMIN, None, 200)["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["provider:segmentation_id"].as_u64().unwrap())
        .collect();
    let n3 = e.network(ADMIN, json!({}));
    assert!(!vnis.contains(&n3["provider:segmentation_id"].as_u64().unwrap()));
}

/// Many clients at once over HTTP: no IP, MAC or VNI is handed out twice; exhaustion is a
/// clean 409 for exactly the requests that did not fit.
#[test]
fn concurrent_clients_never_share_allocations() {
    let e = Arc::new(Env::new());
    let nid = s(&e.network(A, json!({}))["id"]).to_string();
    e.subnet(
        A,
        json!({"network_id": nid, "cidr": "10.0.0.0/26", "ip_version": 4}),
    ); // 61 addresses
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (e, nid) = (e.clone(), nid.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for _ in 0..10 {
                    out.push(e.call(
                        "POST",
                        "/v2.0/ports",
                        A,
                        Some(json!({"port": {"network_id": nid}})),
                    ));
                    out.push(e.call(
                        "POST",
                        "/v2.0/networks",
                        ADMIN,
                        Some(json!({"network": {}})),
                    ));
                }
                out
            })
        })
        .collect();
    let (mut ips, mut macs, mut vnis) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut full = 0;
    for t in threads {
        for (st, v) in t.join().unwrap() {
            match st {
                201 if v.get("port").is_some() => {
                    assert!(
                        ips.insert(v["port"]["fixed_ips"][0]["ip_address"].clone()),
                        "{v}"
                    );
                    assert!(macs.insert(v["port"]["mac_address"].clone()), "{v}");
                }
                201 => assert!(
                    vnis.insert(v["network"]["provider:segmentation_id"].clone()),
                    "{v}"
                ),
                409 => {
                    assert_eq!(v["NeutronError"]["type"], "IpAddressGenerationFailure");
                    full += 1;
                }
                other => panic!("{other}: {v}"),
            }
        }
    }
    assert_eq!(ips.len(), 61);
    assert_eq!(macs.len(), 61);
    assert_eq!(full, 80 - 61);
    assert_eq!(vnis.len(), 80);
    assert_eq!(e.counts(), (81, 1, 61, 61));
}

#[test]
fn change_feed_follows_the_api() {
    let e = Env::new();
    let sub = e.svc.subscribe();
    assert_eq!(sub.snapshot.seq, 0);
    let nid = s(&e.network(A, json!({}))["id"]).to_string();
    e.subnet(
        A,
        json!({"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4}),
    );
    let p = e.port(A, json!({"network_id": nid}));
    e.ok(
        "PUT",
        &format!("/v2.0/ports/{}", s(&p["id"])),
        A,
        Some(json!({"port": {"admin_state_up": false}})),
        200,
    );
    e.err(
        "POST",
        "/v2.0/ports",
        A,
        Some(json!({"port": {"network_id": "nope"}})),
        404,
        "NetworkNotFound",
    );
    use strato_tenant::Change;
    let evs: Vec<_> = sub.events.try_iter().collect();
    assert_eq!(evs.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(matches!(&evs[0].change, Change::NetworkUpserted(n) if n.id == nid));
    assert!(matches!(&evs[1].change, Change::SubnetUpserted(_)));
    assert!(matches!(&evs[2].change, Change::PortUpserted(x) if x.admin_state_up));
    assert!(matches!(&evs[3].change, Change::PortUpserted(x) if !x.admin_state_up));
}

/// Measurement, not a test: port creates/s over HTTP from 8 client threads (each its own
/// connection), create latency p50/p99, then GET requests/s. Run with
/// `cargo test --release -p strato-control --test tenant_api -- --ignored --nocapture measure_api`
/// (STRATO_API_PORTS: total ports, default 20000; STRATO_API_SYNC=full for synchronous=FULL).
#[test]
#[ignore]
fn measure_api() {
    use std::time::{Duration, Instant};
    let total: usize = std::env::var("STRATO_API_PORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let threads = 8;
    let dir = std::env::temp_dir().join(format!("strato-tenant-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config();
    if std::env::var("STRATO_API_SYNC").as_deref() == Ok("full") {
        cfg.sync = strato_tenant::config::SyncMode::Full;
    }
    let e = Arc::new(Env::at(dir, cfg.clone()));
    let nid = s(&e.network(A, json!({}))["id"]).to_string();
    e.subnet(
        A,
        json!({"network_id": nid, "cidr": "10.0.0.0/16", "ip_version": 4}),
    );
    let per = total / threads;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (e, nid) = (e.clone(), nid.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(per);
                for _ in 0..per {
                    let t = Instant::now();
                    let (st, _) = e.call(
                        "POST",
                        "/v2.0/ports",
                        A,
                        Some(json!({"port": {"network_id": nid}})),
                    );
                    lat.push(t.elapsed());
                    assert_eq!(st, 201);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let n = lat.len();
    assert_eq!(e.counts().2 as usize, n);
    println!(
        "port creates: {n} in {secs:.2} s = {:.0}/s with {threads} client threads (sync={:?}); latency p50 {:?} p99 {:?} max {:?}",
        n as f64 / secs,
        cfg.sync,
        pct(0.50),
        pct(0.99),
        lat[n - 1]
    );
    // Reads: show one port, 8 threads.
    let pid = e.ok("GET", "/v2.0/ports?limit=1", A, None, 200)["ports"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reads = 4000;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (e, pid) = (e.clone(), pid.clone());
            std::thread::spawn(move || {
                for _ in 0..reads / threads {
                    let (st, _) = e.call("GET", &format!("/v2.0/ports/{pid}"), A, None);
                    assert_eq!(st, 200);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "GET /v2.0/ports/{{id}}: {reads} in {secs:.2} s = {:.0} requests/s",
        reads as f64 / secs
    );
}
