//! `strato bench api`: the tenant API and agent under load (creates/s, latency, first packet).
