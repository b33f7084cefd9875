//! Who is calling: `X-Auth-Token` values from the config, each mapped to a [`Caller`] (a role
//! and a tenant). There is no Keystone: the token is the credential.
//!
//! Contract:
//! - An unknown or missing token is a 401 ([`ApiError::Unauthorized`]); nothing else is read.
//! - A `tenant` token acts as exactly one tenant; a `provider` token acts for every tenant (and
//!   as its own tenant, default `"admin"`, when it does not name one); a `cloud` token sees only
//!   the infrastructure (hosts, VTEPs, bound interfaces).
//! - Token comparison does not stop at the first differing byte (so response time does not
//!   reveal how much of a guess was right).

use super::config::{Role, TenantConfig};
use super::error::ApiError;

/// The default tenant of a provider token that does not name one.
pub const DEFAULT_PROVIDER_TENANT: &str = "admin";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its view.
    pub role: Role,
    /// The tenant it acts as.
    pub tenant_id: String,
}

impl Caller {
    /// A tenant caller (tests and in-process users).
    pub fn tenant(t: &str) -> Caller {
        Caller {
            role: Role::Tenant,
            tenant_id: t.to_string(),
        }
    }
    /// A provider caller acting as `t` by default.
    pub fn provider(t: &str) -> Caller {
        Caller {
            role: Role::Provider,
            tenant_id: t.to_string(),
        }
    }
    /// A cloud caller.
    pub fn cloud() -> Caller {
        Caller {
            role: Role::Cloud,
            tenant_id: String::new(),
        }
    }
    /// Provider (admin) rights: every tenant, provider and binding attributes.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Provider
    }
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<(Vec<u8>, Caller)>,
}

impl Tokens {
    /// From `[[api.token]]`.
    pub fn from_config(cfg: &TenantConfig) -> Tokens {
        Tokens {
            entries: cfg
                .tokens
                .iter()
                .map(|t| {
                    let tenant = match t.role {
                        Role::Cloud => String::new(),
                        Role::Provider => t
                            .tenant
                            .clone()
                            .unwrap_or_else(|| DEFAULT_PROVIDER_TENANT.to_string()),
                        Role::Tenant => t.tenant.clone().unwrap_or_default(),
                    };
                    (
                        t.token.as_bytes().to_vec(),
                        Caller {
                            role: t.role,
                            tenant_id: tenant,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The caller for a token header value.
    pub fn caller(&self, token: Option<&[u8]>) -> Result<Caller, ApiError> {
        let Some(token) = token else {
            return Err(ApiError::Unauthorized("no X-Auth-Token header".into()));
        };
        let mut found = None;
        for (t, c) in &self.entries {
            if ct_eq(t, token) {
                found = Some(c);
            }
        }
        found
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("the X-Auth-Token is not valid".into()))
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenSpec;

    #[test]
    fn token_lookup() {
        let cfg = TenantConfig {
            tokens: vec![
                TokenSpec {
                    token: "a".into(),
                    role: Role::Tenant,
                    tenant: Some("ta".into()),
                },
                TokenSpec {
                    token: "p".into(),
                    role: Role::Provider,
                    tenant: None,
                },
                TokenSpec {
                    token: "c".into(),
                    role: Role::Cloud,
                    tenant: None,
                },
            ],
            ..TenantConfig::default()
        };
        let t = Tokens::from_config(&cfg);
        assert_eq!(t.caller(Some(b"a")).unwrap(), Caller::tenant("ta"));
        assert_eq!(t.caller(Some(b"p")).unwrap(), Caller::provider("admin"));
        assert_eq!(t.caller(Some(b"c")).unwrap().role, Role::Cloud);
        assert_eq!(t.caller(Some(b"x")).unwrap_err().status(), 401);
        assert_eq!(t.caller(Some(b"aa")).unwrap_err().status(), 401);
        assert_eq!(t.caller(Some(b"")).unwrap_err().status(), 401);
        assert_eq!(t.caller(None).unwrap_err().status(), 401);
    }
}
