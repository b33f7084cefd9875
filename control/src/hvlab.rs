//! Multi-host tenant labs: hypervisor hosts as network namespaces, each running a strato daemon
//! with a `[tenant]` section, joined by an underlay, with VMs attached by tap or veth.
