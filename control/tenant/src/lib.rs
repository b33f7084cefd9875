//! Tenants: the network model (networks, subnets with IPAM, ports with bindings), its SQLite
//! store, and the REST APIs that change it (Neutron v2.0, Stratosphere Net Objects, the cloud
//! view).
//!
//! Contract:
//! - [`TenantService`] owns the model and the store. Every write is validated, allocated
//!   (VNI, MAC, IPs) and committed to SQLite in one transaction before it is applied in memory,
//!   answered, or announced; a failed write changes nothing. Writers are serialized, so no IP,
//!   MAC or VNI is handed out twice (and the schema's unique constraints say so again).
//! - A restart ([`TenantService::open`] on the same database) restores every network, subnet,
//!   port and allocation.
//! - [`ApiServer`] serves the service over HTTP (axum, tokio, its own threads); tokens from
//!   the config are the only credentials ([`auth`]).
//!
//! Seams for the daemon and the compiler:
//! - Config: [`TenantConfig`] is the daemon's `[api]` section (serde, `deny_unknown_fields`,
//!   every key defaulted; see [`config`] for the keys). The daemon opens the service with
//!   `TenantService::open(&cfg, &cfg.db_path_in(&state_dir))`, wraps it in an `Arc`, and
//!   starts `ApiServer::start(&cfg, service.clone())`; dropping the server stops it.
//! - The compiler calls [`TenantService::subscribe`] once: it gets a [`Snapshot`] of the whole
//!   model and a crossbeam `Receiver<ChangeEvent>` of every later committed change
//!   ([`Change`]: network/subnet/port upserted or deleted, with the full value), in commit
//!   order with consecutive `seq` numbers. Flows are applied asynchronously from that feed: the
//!   API answers once the change is in SQLite and on the channel.
//! - Ports are bound by `binding:host_id` (a `[[api.host]]` name; `local_host` says which one
//!   this process is) and `binding:profile` `{"interface": "<ifname>", "kind": "tap"|"veth"}`;
//!   a network's VNI is `Network::vni`; the VTEPs are [`TenantService::hosts`].
//!
//! Modules: [`config`], [`model`], [`ipam`], [`store`], [`service`], [`auth`], [`error`],
//! [`api`] (with [`api::neutron`], [`api::netobjects`], [`api::query`], [`api::body`],
//! [`api::view`], [`api::feed`]).

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod ipam;
pub mod model;
pub mod service;
pub mod store;

pub use api::ApiServer;
pub use auth::Caller;
pub use config::{Role, TenantConfig};
pub use error::ApiError;
pub use model::{Change, ChangeEvent, Network, Port, Snapshot, Subnet};
pub use service::{Subscription, TenantService};
