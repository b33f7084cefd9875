//! The tenant API's configuration: the `[api]` section of the daemon's config file (the daemon
//! embeds [`TenantConfig`] as it is; every key has a default, so an empty section works).
//!
//! Contract:
//! - Unknown keys are errors (`deny_unknown_fields`), as in the rest of the daemon's config.
//! - [`TenantConfig::validate`] checks everything that serde cannot (VNI range inside 24 bits,
//!   a unicast MAC prefix, tokens unique and complete, host names unique, `local_host` known)
//!   and is called by [`TenantService::open`](super::TenantService::open) and
//!   [`ApiServer::start`](super::ApiServer::start), so a bad section never starts anything.
//!
//! ```toml
//! [api]
//! listen = "127.0.0.1:9696"          # default
//! vni_range = [1000, 1999]           # default [1, 16777215]
//! mac_prefix = "fa:16:3e"            # default (Neutron's base_mac); 1 to 5 octets, unicast
//! db_path = "/var/lib/strato/tenant.sqlite"   # default: <state_dir>/tenant.sqlite
//! sync = "normal"                    # SQLite synchronous: normal (default) | full
//! threads = 2                        # HTTP worker threads
//! local_host = "hv1"                 # which [[api.host]] this process is (for the compiler)
//!
//! [[api.token]]
//! token = "notused"                  # what openstacksdk sends with auth_type none
//! role = "tenant"                    # tenant | provider | cloud
//! tenant = "demo"
//!
//! [[api.token]]
//! token = "s3cret-admin"
//! role = "provider"
//!
//! [[api.host]]
//! name = "hv1"
//! vtep_ip = "192.0.2.1"
//! uplinks = ["eth1"]
//! ```

use serde::Deserialize;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Largest VXLAN network identifier (24 bits).
pub const VNI_MAX: u32 = 0x00FF_FFFF;

/// A configuration error (the daemon reports it with the file name; nothing starts).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// api.vni_range [{0}, {1}] is not inside [1, 16777215] with min <= max
    #[error("api.vni_range [{0}, {1}] is not inside [1, 16777215] with min <= max")]
    VniRange(u32, u32),
    /// api.mac_prefix {0:?}: {1}
    #[error("api.mac_prefix {0:?}: {1}")]
    MacPrefix(String, &'static str),
    /// api.token: {0}
    #[error("api.token: {0}")]
    Token(String),
    /// api.host: {0}
    #[error("api.host: {0}")]
    Host(String),
    /// api.threads must be between 1 and 64
    #[error("api.threads must be between 1 and 64")]
    Threads,
}

/// The `[api]` section: the tenant REST API, its store and its allocation ranges.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Where the HTTP API listens (default `127.0.0.1:9696`, Neutron's port).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Inclusive range tenant networks get their VNI from (default `[1, 16777215]`). A provider
    /// may ask for any VNI in 1..=16777215 (`provider:segmentation_id`), also outside it.
    #[serde(default = "default_vni_range")]
    pub vni_range: (u32, u32),
    /// Leading octets of generated MAC addresses, e.g. `"fa:16:3e"` (default, as Neutron).
    #[serde(default = "default_mac_prefix")]
    pub mac_prefix: String,
    /// The SQLite database (default: `tenant.sqlite` in the daemon's state directory).
    #[serde(default)]
    pub db_path: Option<PathBuf>,
    /// SQLite `synchronous` mode for the WAL (default `normal`: a committed change survives a
    /// crash of the process; `full` also survives a power loss, at one fsync per API write).
    #[serde(default)]
    pub sync: SyncMode,
    /// HTTP worker threads (default 2).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// This process's host name among `[[api.host]]` (the compiler binds ports whose
    /// `binding:host_id` is this name to local interfaces).
    #[serde(default)]
    pub local_host: Option<String>,
    /// `[[api.token]]`: accepted `X-Auth-Token` values and what each may do.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenSpec>,
    /// `[[api.host]]`: the hypervisor hosts and their VTEP addresses (the cloud view).
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
}

/// SQLite `synchronous` setting (WAL mode is always on).
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// `synchronous=NORMAL`: committed before the API answers; durable across process crashes.
    #[default]
    Normal,
    /// `synchronous=FULL`: also durable across power loss (an fsync per write).
    Full,
}

/// What a token may see and do.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Its own tenant's networks, subnets and ports (and shared networks, read-only).
    Tenant,
    /// Every tenant's resources, provider attributes (`provider:*`, `binding:*`), hosts.
    Provider,
    /// The infrastructure: hosts, VTEPs and the interfaces bound on each host (read-only).
    Cloud,
}

/// One `[[api.token]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// The `X-Auth-Token` value.
    pub token: String,
    /// Its view.
    pub role: Role,
    /// The tenant (project) it acts as: required for `tenant`; for `provider` the default
    /// owner of what it creates without `tenant_id` (default `"admin"`).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// One `[[api.host]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Host name, as used in a port's `binding:host_id`.
    pub name: String,
    /// Its VXLAN tunnel endpoint address.
    pub vtep_ip: IpAddr,
    /// Its physical uplink interfaces (informational, shown in the cloud view).
    #[serde(default)]
    pub uplinks: Vec<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9696))
}
fn default_vni_range() -> (u32, u32) {
    (1, VNI_MAX)
}
fn default_mac_prefix() -> String {
    "fa:16:3e".into()
}
fn default_threads() -> usize {
    2
}

impl Default for TenantConfig {
    fn default() -> Self {
        TenantConfig {
            listen: default_listen(),
            vni_range: default_vni_range(),
            mac_prefix: default_mac_prefix(),
            db_path: None,
            sync: SyncMode::default(),
            threads: default_threads(),
            local_host: None,
            tokens: Vec::new(),
            hosts: Vec::new(),
        }
    }
}

impl TenantConfig {
    /// Checks what serde cannot; see the module docs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (lo, hi) = self.vni_range;
        if lo == 0 || hi > VNI_MAX || lo > hi {
            return Err(ConfigError::VniRange(lo, hi));
        }
        self.mac_prefix_octets()?;
        if self.threads == 0 || self.threads > 64 {
            return Err(ConfigError::Threads);
        }
        let mut seen = HashSet::new();
        for t in &self.tokens {
            if t.token.is_empty() {
                return Err(ConfigError::Token("empty token".into()));
            }
            if !seen.insert(t.token.as_str()) {
                return Err(ConfigError::Token(format!(
                    "token {:?} is listed twice",
                    t.token
                )));
            }
            match (&t.role, &t.tenant) {
                (Role::Tenant, None) => {
                    return Err(ConfigError::Token(format!(
                        "token {:?} has role tenant but no tenant",
                        t.token
                    )))
                }
                (_, Some(x)) if x.is_empty() || x.len() > 255 => {
                    return Err(ConfigError::Token(format!(
                        "token {:?}: tenant must be 1 to 255 characters",
                        t.token
                    )))
                }
                _ => {}
            }
        }
        let mut names = HashSet::new();
        for h in &self.hosts {
            if h.name.is_empty() || h.name.len() > 255 {
                return Err(ConfigError::Host("name must be 1 to 255 characters".into()));
            }
            if !names.insert(h.name.as_str()) {
                return Err(ConfigError::Host(format!("{:?} is listed twice", h.name)));
            }
        }
        if let Some(l) = &self.local_host {
            if !self.hosts.is_empty() && !names.contains(l.as_str()) {
                return Err(ConfigError::Host(format!(
                    "local_host {l:?} is not one of the [[api.host]] names"
                )));
            }
        }
        Ok(())
    }

    /// The MAC prefix as octets (1 to 5 of them; the first one unicast).
    pub fn mac_prefix_octets(&self) -> Result<Vec<u8>, ConfigError> {
        let err = |why| ConfigError::MacPrefix(self.mac_prefix.clone(), why);
        let mut out = Vec::new();
        for part in self.mac_prefix.split(':') {
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(err("expected 1 to 5 hex octets separated by ':'"));
            }
            out.push(
                u8::from_str_radix(part, 16)
                    .map_err(|_| err("expected 1 to 5 hex octets separated by ':'"))?,
            );
        }
        if out.is_empty() || out.len() > 5 {
            return Err(err("expected 1 to 5 hex octets separated by ':'"));
        }
        if out[0] & 1 != 0 {
            return Err(err("the first octet must be unicast (lowest bit 0)"));
        }
        Ok(out)
    }

    /// Where the database lives: `db_path`, else `tenant.sqlite` in `state_dir`.
    pub fn db_path_in(&self, state_dir: &Path) -> PathBuf {
        self.db_path
            .clone()
            .unwrap_or_else(|| state_dir.join("tenant.sqlite"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<TenantConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn defaults_and_full_section() {
        let c = parse("").unwrap();
        assert_eq!(c, TenantConfig::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:9696");
        c.validate().unwrap();
        let c = parse(
            r#"
listen = "127.0.0.1:0"
vni_range = [1000, 1999]
mac_prefix = "02:00"
sync = "full"
local_host = "hv1"
[[token]]
token = "a"
role = "tenant"
tenant = "ta"
[[token]]
token = "p"
role = "provider"
[[host]]
name = "hv1"
vtep_ip = "192.0.2.1"
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.vni_range, (1000, 1999));
        assert_eq!(c.mac_prefix_octets().unwrap(), vec![2, 0]);
        assert_eq!(c.sync, SyncMode::Full);
        assert_eq!(c.tokens[1].role, Role::Provider);
        assert_eq!(
            c.db_path_in(Path::new("/s")),
            PathBuf::from("/s/tenant.sqlite")
        );
    }

    #[test]
    fn bad_sections_are_errors() {
        assert!(parse("nope = 1").is_err());
        assert!(parse("[[token]]\ntoken = \"a\"\nrole = \"root\"").is_err());
        let bad = |s: &str| parse(s).unwrap().validate().unwrap_err();
        assert_eq!(bad("vni_range = [0, 5]"), ConfigError::VniRange(0, 5));
        assert_eq!(
            bad("vni_range = [5, 16777216]"),
            ConfigError::VniRange(5, 16777216)
        );
        assert_eq!(bad("vni_range = [6, 5]"), ConfigError::VniRange(6, 5));
        assert!(matches!(
            bad("mac_prefix = \"01:00\""),
            ConfigError::MacPrefix(..)
        ));
        assert!(matches!(
            bad("mac_prefix = \"fa:16:3e:00:00:00\""),
            ConfigError::MacPrefix(..)
        ));
        assert!(matches!(
            bad("mac_prefix = \"zz\""),
            ConfigError::MacPrefix(..)
        ));
        assert!(matches!(
            bad("[[token]]\ntoken = \"a\"\nrole = \"tenant\""),
            ConfigError::Token(..)
        ));
        assert!(matches!(
            bad("[[token]]\ntoken = \"a\"\nrole = \"cloud\"\n[[token]]\ntoken = \"a\"\nrole = \"cloud\""),
            ConfigError::Token(..)
        ));
        assert!(matches!(
            bad("local_host = \"x\"\n[[host]]\nname = \"h\"\nvtep_ip = \"192.0.2.1\""),
            ConfigError::Host(..)
        ));
        assert_eq!(bad("threads = 0"), ConfigError::Threads);
    }
}
