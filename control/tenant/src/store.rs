//! The persistent store: the tenant model and every allocation (VNIs, MACs, IPs) in one
//! embedded SQLite database (rusqlite, bundled SQLite, WAL mode).
//!
//! Contract:
//! - [`Store::apply`] writes a list of [`Op`]s in one transaction: all of them or none. The
//!   service calls it before it changes its in-memory model and before the API answers.
//! - The schema enforces the allocations a second time: `networks.vni`, `ports.mac` and
//!   `(ip_allocations.subnet_id, ip)` are unique, a (host, interface) binding is unique, and
//!   foreign keys tie subnets and ports to their network and addresses to their port. A write
//!   that would break one fails and changes nothing.
//! - [`Store::load`] returns everything in creation order (rows are upserted in place, so an
//!   update keeps its row). Each resource is a JSON document of its model type beside the
//!   indexed columns; `PRAGMA user_version` is the schema version (1), and a database with
//!   another version is refused rather than misread.
//! - A background thread checkpoints the WAL every 250 ms with its own connection (PASSIVE:
//!   it never blocks a writer), so API writes do not pay for checkpoints; it stops with the
//!   store.

use super::config::SyncMode;
use super::model::{Network, Port, Subnet};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// Schema version written to `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored document does not parse
    #[error("stored {what} {id} does not parse: {err}")]
    Corrupt {
        /// networks | subnets | ports.
        what: &'static str,
        /// Row id.
        id: String,
        /// The JSON error.
        err: String,
    },
    /// The database has another schema version than this strato's
    #[error("the database has schema version {0}, this strato knows version {SCHEMA_VERSION}")]
    Version(i64),
    /// Could not create the state directory (or start the checkpoint thread)
    #[error("could not create {path}: {err}")]
    Dir {
        /// The directory.
        path: String,
        /// The error.
        err: std::io::Error,
    },
}

/// One write.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Insert or update a network.
    PutNetwork(&'a Network),
    /// Delete a network (its subnets and ports must be gone).
    DeleteNetwork(&'a str),
    /// Insert or update a subnet.
    PutSubnet(&'a Subnet),
    /// Delete a subnet (no addresses may remain).
    DeleteSubnet(&'a str),
    /// Insert or update a port and replace its address allocations.
    PutPort(&'a Port),
    /// Delete a port and its address allocations.
    DeletePort(&'a str),
}

/// Everything in the database.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Networks in creation order.
    pub networks: Vec<Network>,
    /// Subnets in creation order.
    pub subnets: Vec<Subnet>,
    /// Ports in creation order.
    pub ports: Vec<Port>,
}

/// The SQLite store (one connection; the service serializes writers).
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    _checkpointer: Option<Checkpointer>,
}

/// How often the background thread checkpoints the WAL into the database.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// WAL pages after which a commit checkpoints by itself (a safety net: normally the
/// background thread keeps the WAL far below this, off the request path).
pub const AUTOCHECKPOINT_PAGES: u32 = 20_000;

/// A thread with its own connection that runs `PRAGMA wal_checkpoint(PASSIVE)` every
/// [`CHECKPOINT_EVERY`], so the checkpoint's fsyncs are not paid by an API write. Stopped
/// (and joined) on drop.
#[derive(Debug)]
struct Checkpointer {
    stop: Option<crossbeam::channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (tx, rx) = crossbeam::channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("strato-db-ckpt".into())
            .spawn(move || loop {
                match rx.recv_timeout(CHECKPOINT_EVERY) {
                    Err(crossbeam::channel::RecvTimeoutError::Timeout) => {
                        if let Err(e) =
                            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        {
                            tracing::warn!("tenant store checkpoint failed: {e}");
                        }
                    }
                    _ => return,
                }
            })
            .map_err(|e| StoreError::Dir {
                path: "checkpoint thread".into(),
                err: e,
            })?;
        Ok(Checkpointer {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    vni INTEGER NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subnets (
    id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL REFERENCES networks(id),
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ports (
    id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL REFERENCES networks(id),
    mac TEXT NOT NULL UNIQUE,
    bind_host TEXT,
    bind_iface TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ports_binding ON ports(bind_host, bind_iface)
    WHERE bind_iface IS NOT NULL;
CREATE TABLE IF NOT EXISTS ip_allocations (
    subnet_id TEXT NOT NULL REFERENCES subnets(id),
    ip TEXT NOT NULL,
    port_id TEXT NOT NULL REFERENCES ports(id),
    PRIMARY KEY (subnet_id, ip)
);
CREATE INDEX IF NOT EXISTS ip_allocations_port ON ip_allocations(port_id);
";

impl Store {
    /// Opens (creating if needed, with its directory) the database at `path`.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|err| StoreError::Dir {
                    path: dir.display().to_string(),
                    err,
                })?;
            }
        }
        let mut store = Self::init(Connection::open(path)?, sync)?;
        store._checkpointer = Some(Checkpointer::start(path)?);
        Ok(store)
    }

    /// A private in-memory database (tests, benchmarks).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?, SyncMode::Normal)
    }

    fn init(conn: Connection, sync: SyncMode) -> Result<Store, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // journal_mode returns a row; in-memory databases answer "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch(match sync {
            SyncMode::Normal => "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            SyncMode::Full => "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        })?;
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}"))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != 0 && version != SCHEMA_VERSION {
            return Err(StoreError::Version(version));
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))?;
        Ok(Store {
            conn,
            _checkpointer: None,
        })
    }

    /// Reads everything back.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        fn all<T: serde::de::DeserializeOwned>(
            conn: &Connection,
            table: &'static str,
        ) -> Result<Vec<T>, StoreError> {
            let mut stmt = conn.prepare(&format!("SELECT id, body FROM {table} ORDER BY rowid"))?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, body) = row?;
                out.push(
                    serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                        what: table,
                        id,
                        err: e.to_string(),
                    })?,
                );
            }
            Ok(out)
        }
        Ok(Loaded {
            networks: all(&self.conn, "networks")?,
            subnets: all(&self.conn, "subnets")?,
            ports: all(&self.conn, "ports")?,
        })
    }

    /// Applies `ops` in one transaction (all or nothing).
    pub fn apply(&mut self, ops: &[Op<'_>]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for op in ops {
            match *op {
                Op::PutNetwork(n) => {
                    tx.prepare_cached(
                        "INSERT INTO networks (id, tenant_id, vni, body) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(id) DO UPDATE SET tenant_id=excluded.tenant_id,
                         vni=excluded.vni, body=excluded.body",
                    )?
                    .execute(params![n.id, n.tenant_id, n.vni, json(n)])?;
                }
                Op::DeleteNetwork(id) => {
                    tx.prepare_cached("DELETE FROM networks WHERE id = ?1")?
                        .execute(params![id])?;
                }
                Op::PutSubnet(s) => {
                    tx.prepare_cached(
                        "INSERT INTO subnets (id, network_id, body) VALUES (?1, ?2, ?3)
                         ON CONFLICT(id) DO UPDATE SET network_id=excluded.network_id,
                         body=excluded.body",
                    )?
                    .execute(params![s.id, s.network_id, json(s)])?;
                }
                Op::DeleteSubnet(id) => {
                    tx.prepare_cached("DELETE FROM subnets WHERE id = ?1")?
                        .execute(params![id])?;
                }
                Op::PutPort(p) => {
                    let (host, iface) = match &p.binding.interface {
                        Some(i) => (Some(p.binding.host_id.as_str()), Some(i.name.as_str())),
                        None => (None, None),
                    };
                    tx.prepare_cached(
                        "INSERT INTO ports (id, network_id, mac, bind_host, bind_iface, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT(id) DO UPDATE SET network_id=excluded.network_id,
                         mac=excluded.mac, bind_host=excluded.bind_host,
                         bind_iface=excluded.bind_iface, body=excluded.body",
                    )?
                    .execute(params![
                        p.id,
                        p.network_id,
                        p.mac_address.to_string(),
                        host,
                        iface,
                        json(p)
                    ])?;
                    tx.prepare_cached("DELETE FROM ip_allocations WHERE port_id = ?1")?
                        .execute(params![p.id])?;
                    let mut ins = tx.prepare_cached(
                        "INSERT INTO ip_allocations (subnet_id, ip, port_id) VALUES (?1, ?2, ?3)",
                    )?;
                    for f in &p.fixed_ips {
                        ins.execute(params![f.subnet_id, f.ip_address.to_string(), p.id])?;
                    }
                }
                Op::DeletePort(id) => {
                    tx.prepare_cached("DELETE FROM ip_allocations WHERE port_id = ?1")?
                        .execute(params![id])?;
                    tx.prepare_cached("DELETE FROM ports WHERE id = ?1")?
                        .execute(params![id])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The port holding `ip` in `subnet_id`, as the database sees it (tests and checks).
    pub fn ip_owner(&self, subnet_id: &str, ip: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT port_id FROM ip_allocations WHERE subnet_id = ?1 AND ip = ?2",
                params![subnet_id, ip],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Row counts of (networks, subnets, ports, ip_allocations) (tests and checks).
    pub fn counts(&self) -> Result<(u64, u64, u64, u64), StoreError> {
        let n = |t: &str| -> Result<u64, StoreError> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| {
                    r.get::<_, i64>(0)
                })?
                .max(0) as u64)
        };
        Ok((
            n("networks")?,
            n("subnets")?,
            n("ports")?,
            n("ip_allocations")?,
        ))
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // The model types are plain data (strings, numbers, addresses): serializing cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn net(id: &str, vni: u32) -> Network {
        Network {
            id: id.into(),
            tenant_id: "t".into(),
            name: "n".into(),
            description: String::new(),
            admin_state_up: true,
            shared: false,
            network_type: NetworkType::Vxlan,
            vni,
            mtu: 1450,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            revision_number: 0,
        }
    }
    fn subnet(id: &str, net: &str) -> Subnet {
        Subnet {
            id: id.into(),
            network_id: net.into(),
            tenant_id: "t".into(),
            name: String::new(),
            description: String::new(),
            cidr: "10.0.0.0/24".parse().unwrap(),
            gateway_ip: Some("10.0.0.1".parse().unwrap()),
            allocation_pools: vec![IpRange {
                start: "10.0.0.2".parse().unwrap(),
                end: "10.0.0.254".parse().unwrap(),
            }],
            dns_nameservers: vec![],
            host_routes: vec![],
            enable_dhcp: true,
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }
    fn port(id: &str, net: &str, mac: u64, ip: &str) -> Port {
        Port {
            id: id.into(),
            network_id: net.into(),
            tenant_id: "t".into(),
            name: String::new(),
            description: String::new(),
            mac_address: MacAddr::from_u64(mac),
            admin_state_up: true,
            fixed_ips: vec![FixedIp {
                subnet_id: "s1".into(),
                ip_address: ip.parse().unwrap(),
            }],
            device_id: String::new(),
            device_owner: String::new(),
            binding: Binding::default(),
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    #[test]
    fn round_trip_and_reopen() {
        let dir = std::env::temp_dir().join(format!("strato-store-{}", std::process::id()));
        let path = dir.join("t.sqlite");
        let _ = std::fs::remove_file(&path);
        {
            let mut s = Store::open(&path, SyncMode::Normal).unwrap();
            let (n, sn, p) = (
                net("n1", 5),
                subnet("s1", "n1"),
                port("p1", "n1", 1, "10.0.0.2"),
            );
            s.apply(&[Op::PutNetwork(&n), Op::PutSubnet(&sn), Op::PutPort(&p)])
                .unwrap();
            let mut n2 = n.clone();
            n2.name = "renamed".into();
            s.apply(&[Op::PutNetwork(&net("n0", 6)), Op::PutNetwork(&n2)])
                .unwrap();
        }
        let s = Store::open(&path, SyncMode::Full).unwrap();
        let l = s.load().unwrap();
        // Update kept n1's row, so creation order is n1, n0.
        assert_eq!(
            l.networks.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["n1", "n0"]
        );
        assert_eq!(l.networks[0].name, "renamed");
        assert_eq!(l.subnets, vec![subnet("s1", "n1")]);
        assert_eq!(l.ports, vec![port("p1", "n1", 1, "10.0.0.2")]);
        assert_eq!(s.ip_owner("s1", "10.0.0.2").unwrap().as_deref(), Some("p1"));
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn constraints_reject_whole_transaction() {
        let mut s = Store::open_in_memory().unwrap();
        let (n, sn) = (net("n1", 5), subnet("s1", "n1"));
        s.apply(&[
            Op::PutNetwork(&n),
            Op::PutSubnet(&sn),
            Op::PutPort(&port("p1", "n1", 1, "10.0.0.2")),
        ])
        .unwrap();
        let before = s.counts().unwrap();
        // Duplicate VNI, with a valid op before it: nothing applied.
        assert!(s
            .apply(&[
                Op::PutPort(&port("p2", "n1", 2, "10.0.0.3")),
                Op::PutNetwork(&net("n2", 5))
            ])
            .is_err());
        // Duplicate MAC.
        assert!(s
            .apply(&[Op::PutPort(&port("p2", "n1", 1, "10.0.0.3"))])
            .is_err());
        // Duplicate IP.
        assert!(s
            .apply(&[Op::PutPort(&port("p2", "n1", 2, "10.0.0.2"))])
            .is_err());
        // A port on a missing network; deleting a network with ports.
        assert!(s
            .apply(&[Op::PutPort(&port("p2", "nx", 2, "10.0.0.3"))])
            .is_err());
        assert!(s.apply(&[Op::DeleteNetwork("n1")]).is_err());
        // Same binding twice.
        let mut a = port("p2", "n1", 2, "10.0.0.3");
        a.binding = Binding {
            host_id: "h".into(),
            interface: Some(LocalInterface {
                name: "tap0".into(),
                kind: InterfaceKind::Tap,
            }),
        };
        let mut b = port("p3", "n1", 3, "10.0.0.4");
        b.binding = a.binding.clone();
        assert!(s.apply(&[Op::PutPort(&a), Op::PutPort(&b)]).is_err());
        assert_eq!(s.counts().unwrap(), before);
        // Deleting in order works.
        s.apply(&[
            Op::DeletePort("p1"),
            Op::DeleteSubnet("s1"),
            Op::DeleteNetwork("n1"),
        ])
        .unwrap();
        assert_eq!(s.counts().unwrap(), (0, 0, 0, 0));
    }
}
