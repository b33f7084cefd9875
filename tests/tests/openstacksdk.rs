//! openstacksdk (from PyPI) against strato's Neutron API with no Keystone: an in-process
//! `ApiServer` on a free loopback port, `labs/openstack/sdk_crud.py` run with the bootstrap's
//! venv (`/var/cache/strato/openstack-venv`), clouds from `labs/openstack/clouds.yaml`; and the
//! `openstack` CLI from the same venv. Skips, saying why, when the venv is missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use strato_tenant::config::{HostSpec, Role, TokenSpec};
use strato_tenant::{ApiServer, TenantConfig, TenantService};
use support::TempDir;

/// The venv's program (`python`, `openstack`).
fn venv(program: &str) -> Result<PathBuf, String> {
    support::venv("openstack-venv", program)
}

/// The API server; stopped before its directory goes (field order).
struct Server {
    _server: ApiServer,
    svc: Arc<TenantService>,
    clouds: PathBuf,
    _dir: TempDir,
}

fn start(name: &str) -> Server {
    let dir = TempDir::new(&format!("sdk-{name}-{}", std::process::id()));
    let cfg = TenantConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tokens: vec![
            TokenSpec {
                token: "notused".into(),
                role: Role::Tenant,
                tenant: Some("demo".into()),
            },
            TokenSpec {
                token: "strato-admin-token".into(),
                role: Role::Provider,
                tenant: None,
            },
        ],
        hosts: vec![HostSpec {
            name: "hv1".into(),
            vtep_ip: "192.0.2.1".parse().unwrap(),
            uplinks: vec![],
        }],
        ..TenantConfig::default()
    };
    let svc = Arc::new(TenantService::open(&cfg, &dir.join("tenant.sqlite")).unwrap());
    let server = ApiServer::start(&cfg, svc.clone()).unwrap();
    let labs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs/openstack");
    let clouds = std::fs::read_to_string(labs.join("clouds.yaml"))
        .unwrap()
        .replace("127.0.0.1:9696", &server.local_addr().to_string());
    let path = dir.join("clouds.yaml");
    std::fs::write(&path, clouds).unwrap();
    Server {
        _server: server,
        svc,
        clouds: path,
        _dir: dir,
    }
}

fn run(cmd: &mut Command, clouds: &Path) -> (bool, String) {
    let out = cmd
        .env("OS_CLIENT_CONFIG_FILE", clouds)
        .env_remove("OS_CLOUD")
        .env("HOME", clouds.parent().unwrap())
        .output()
        .expect("run the venv's python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn openstacksdk_creates_lists_updates_deletes() {
    let py = support::need!("openstacksdk_creates_lists_updates_deletes", venv("python"));
    let s = start("crud");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs/openstack/sdk_crud.py");
    let (ok, out) = run(Command::new(&py).arg(&script), &s.clouds);
    println!("{out}");
    assert!(ok, "sdk_crud.py failed:\n{out}");
    assert!(out.lines().any(|l| l == "OK all"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // The script deleted what it made; the store agrees.
    let snap = s.svc.snapshot();
    assert!(snap.networks.is_empty() && snap.subnets.is_empty() && snap.ports.is_empty());
    assert_eq!(s.svc.store_counts().unwrap(), (0, 0, 0, 0));
    assert!(
        snap.seq > 20,
        "the script's changes went through the change feed"
    );
}

#[test]
fn openstack_cli_network_commands() {
    let cli = support::need!("openstack_cli_network_commands", venv("openstack"));
    let s = start("cli");
    let os = |args: &[&str]| {
        let (ok, out) = run(
            Command::new(&cli).args(["--os-cloud", "strato"]).args(args),
            &s.clouds,
        );
        assert!(ok, "openstack {args:?} failed:\n{out}");
        out
    };
    let out = os(&["network", "create", "cli-net", "-f", "json"]);
    let net: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(net["name"], "cli-net");
    os(&[
        "subnet",
        "create",
        "cli-sub",
        "--network",
        "cli-net",
        "--subnet-range",
        "10.88.0.0/24",
    ]);
    let out = os(&[
        "port",
        "create",
        "cli-port",
        "--network",
        "cli-net",
        "-f",
        "json",
    ]);
    let port: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(out.contains("10.88.0.2"), "{out}");
    let out = os(&["network", "list", "-f", "json"]);
    assert!(out.contains("cli-net"), "{out}");
    os(&[
        "port",
        "set",
        "--name",
        "cli-port-2",
        port["id"].as_str().unwrap(),
    ]);
    let out = os(&["port", "show", "cli-port-2", "-f", "json"]);
    assert!(out.contains("cli-port-2"), "{out}");
    os(&["port", "delete", "cli-port-2"]);
    os(&["subnet", "delete", "cli-sub"]);
    os(&["network", "delete", "cli-net"]);
    assert_eq!(s.svc.store_counts().unwrap(), (0, 0, 0, 0));
}
