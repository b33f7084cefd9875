//! Errors of the tenant service and API, each with its HTTP status and the Neutron exception
//! name that becomes `NeutronError.type` (messages follow Neutron's wording, so clients that
//! match on them keep working).
//!
//! Contract: every failed request is one [`ApiError`]; [`ApiError::status`] and
//! [`ApiError::neutron_type`] never panic; a store failure is `Internal` (500) and the model is
//! left as it was before the request.

/// The body of every error answer: `{"NeutronError": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorBody {
    /// The error.
    #[serde(rename = "NeutronError")]
    pub neutron_error: NeutronError,
}

/// `NeutronError`: `{"type", "message", "detail"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NeutronError {
    /// Neutron's exception class name ([`ApiError::neutron_type`]).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The error's text.
    pub message: String,
    /// Always empty.
    pub detail: &'static str,
}

/// A failed tenant operation.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Authentication required (missing or unknown X-Auth-Token) (401)
    #[error("Authentication required: {0}")]
    Unauthorized(String),
    /// The token's role may not do this (403 PolicyNotAuthorized)
    #[error("{0}")]
    Forbidden(String),
    /// A resource the caller cannot see (404)
    #[error("{kind} {id} could not be found.")]
    NotFound {
        /// "Network", "Subnet", "Port", "Switch", "Host", "Extension".
        kind: &'static str,
        /// What was asked for.
        id: String,
    },
    /// No such URL (404)
    #[error("The resource could not be found.")]
    NoRoute,
    /// Wrong method for an existing URL (405)
    #[error("The method {0} is not allowed for this resource.")]
    MethodNotAllowed(String),
    /// Body not valid JSON, or not the expected shape (400)
    #[error("Malformed request body: {0}")]
    MalformedBody(String),
    /// Attributes the resource does not have (400)
    #[error("Unrecognized attribute(s) '{0}'")]
    UnknownAttributes(String),
    /// A bad request that is not about one attribute's value (400 HTTPBadRequest)
    #[error("{0}")]
    BadRequest(String),
    /// An attribute with a bad value (400 InvalidInput)
    #[error("Invalid input for operation: {0}.")]
    InvalidInput(String),
    /// More host routes than allowed (400)
    #[error("Unable to complete operation for {subnet}. The number of host routes exceeds the limit {limit}.")]
    HostRoutesExhausted {
        /// Subnet id (or "new subnet").
        subnet: String,
        /// The limit.
        limit: usize,
    },
    /// More DNS servers than allowed (400)
    #[error("Unable to complete operation for {subnet}. The number of DNS nameservers exceeds the limit {limit}.")]
    DnsNameServersExhausted {
        /// Subnet id (or "new subnet").
        subnet: String,
        /// The limit.
        limit: usize,
    },
    /// An allocation pool that is not a valid range (400)
    #[error("The allocation pool {0} is not valid.")]
    InvalidAllocationPool(String),
    /// An allocation pool outside the CIDR (400)
    #[error("The allocation pool {pool} spans beyond the subnet cidr {cidr}.")]
    OutOfBoundsAllocationPool {
        /// The pool.
        pool: String,
        /// The subnet's CIDR.
        cidr: String,
    },
    /// Two allocation pools overlap (409)
    #[error("Found overlapping allocation pools: {a} {b} for subnet {cidr}.")]
    OverlappingAllocationPools {
        /// One pool.
        a: String,
        /// The other.
        b: String,
        /// The subnet's CIDR.
        cidr: String,
    },
    /// The gateway lies inside an allocation pool (409)
    #[error("Gateway ip {ip} conflicts with allocation pool {pool}.")]
    GatewayConflictWithAllocationPools {
        /// The gateway.
        ip: String,
        /// The pool.
        pool: String,
    },
    /// A fixed IP outside the given subnet (400)
    #[error("IP address {0} is not a valid IP for the specified subnet.")]
    InvalidIpForSubnet(String),
    /// A fixed IP in none of the network's subnets (400)
    #[error("IP address {0} is not a valid IP for any of the subnets on the specified network.")]
    InvalidIpForNetwork(String),
    /// A fixed IP that is taken (409)
    #[error("IP address {ip} already allocated in subnet {subnet}")]
    IpAddressAlreadyAllocated {
        /// The address.
        ip: String,
        /// The subnet.
        subnet: String,
    },
    /// No free address left (409)
    #[error("No more IP addresses available on network {0}.")]
    IpAddressGenerationFailure(String),
    /// A MAC that is taken (409)
    #[error("Unable to complete operation for network {net}. The mac address {mac} is in use.")]
    MacAddressInUse {
        /// The network.
        net: String,
        /// The MAC.
        mac: String,
    },
    /// No free MAC under the prefix (503)
    #[error("Unable to generate unique mac on network {0}.")]
    MacAddressGenerationFailure(String),
    /// No free VNI in the range (503)
    #[error("Unable to create the network. No tenant network is available for allocation.")]
    NoNetworkAvailable,
    /// A requested VNI that is taken (409)
    #[error("Unable to create the network. The tunnel ID {0} is in use.")]
    TunnelIdInUse(u32),
    /// Ports still on the network (409)
    #[error("Unable to complete operation on network {0}. There are one or more ports still in use on the network.")]
    NetworkInUse(String),
    /// Unsharing a network other tenants have ports on (409)
    #[error(
        "Unable to reconfigure sharing settings for network {0}. Multiple tenants are using it."
    )]
    InvalidSharedSetting(String),
    /// Ports still hold addresses of the subnet (409)
    #[error("Unable to complete operation on subnet {0}: One or more ports have an IP allocation from this subnet.")]
    SubnetInUse(String),
    /// The local interface is bound to another port on that host (409)
    #[error("Interface {iface} on host {host} is already bound to port {port}.")]
    InterfaceInUse {
        /// Host.
        host: String,
        /// Interface.
        iface: String,
        /// The port that has it.
        port: String,
    },
    /// The body is too large (413)
    #[error("Request body larger than {0} bytes.")]
    BodyTooLarge(usize),
    /// The store failed; nothing was changed (500)
    #[error("Request failed: internal server error while processing your request ({0}).")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            Unauthorized(_) => 401,
            Forbidden(_) => 403,
            NotFound { .. } | NoRoute => 404,
            MethodNotAllowed(_) => 405,
            MalformedBody(_)
            | UnknownAttributes(_)
            | BadRequest(_)
            | InvalidInput(_)
            | HostRoutesExhausted { .. }
            | DnsNameServersExhausted { .. }
            | InvalidAllocationPool(_)
            | OutOfBoundsAllocationPool { .. }
            | InvalidIpForSubnet(_)
            | InvalidIpForNetwork(_) => 400,
            OverlappingAllocationPools { .. }
            | GatewayConflictWithAllocationPools { .. }
            | IpAddressAlreadyAllocated { .. }
            | IpAddressGenerationFailure(_)
            | MacAddressInUse { .. }
            | TunnelIdInUse(_)
            | NetworkInUse(_)
            | InvalidSharedSetting(_)
            | SubnetInUse(_)
            | InterfaceInUse { .. } => 409,
            BodyTooLarge(_) => 413,
            MacAddressGenerationFailure(_) | NoNetworkAvailable => 503,
            Internal(_) => 500,
        }
    }

    /// `NeutronError.type`: Neutron's exception class name for this error.
    pub fn neutron_type(&self) -> &'static str {
        use ApiError::*;
        match self {
            Unauthorized(_) => "HTTPUnauthorized",
            Forbidden(_) => "PolicyNotAuthorized",
            NotFound { kind, .. } => match *kind {
                "Network" => "NetworkNotFound",
                "Subnet" => "SubnetNotFound",
                "Port" => "PortNotFound",
                "Switch" => "SwitchNotFound",
                "Host" => "HostNotFound",
                "Extension" => "ExtensionNotFound",
                _ => "HTTPNotFound",
            },
            NoRoute => "HTTPNotFound",
            MethodNotAllowed(_) => "HTTPMethodNotAllowed",
            MalformedBody(_) => "MalformedRequestBody",
            UnknownAttributes(_) | BadRequest(_) => "HTTPBadRequest",
            InvalidInput(_) => "InvalidInput",
            HostRoutesExhausted { .. } => "HostRoutesExhausted",
            DnsNameServersExhausted { .. } => "DNSNameServersExhausted",
            InvalidAllocationPool(_) => "InvalidAllocationPool",
            OutOfBoundsAllocationPool { .. } => "OutOfBoundsAllocationPool",
            OverlappingAllocationPools { .. } => "OverlappingAllocationPools",
            GatewayConflictWithAllocationPools { .. } => "GatewayConflictWithAllocationPools",
            InvalidIpForSubnet(_) => "InvalidIpForSubnet",
            InvalidIpForNetwork(_) => "InvalidIpForNetwork",
            IpAddressAlreadyAllocated { .. } => "IpAddressAlreadyAllocated",
            IpAddressGenerationFailure(_) => "IpAddressGenerationFailure",
            MacAddressInUse { .. } => "MacAddressInUse",
            MacAddressGenerationFailure(_) => "MacAddressGenerationFailure",
            NoNetworkAvailable => "NoNetworkAvailable",
            TunnelIdInUse(_) => "TunnelIdInUse",
            NetworkInUse(_) => "NetworkInUse",
            InvalidSharedSetting(_) => "InvalidSharedSetting",
            SubnetInUse(_) => "SubnetInUse",
            InterfaceInUse { .. } => "InterfaceInUse",
            BodyTooLarge(_) => "HTTPRequestEntityTooLarge",
            Internal(_) => "HTTPInternalServerError",
        }
    }

    /// The `{"NeutronError": {"type", "message", "detail"}}` body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            neutron_error: NeutronError {
                kind: self.neutron_type(),
                message: self.to_string(),
                detail: "",
            },
        }
    }

    /// A `NotFound` for `kind`.
    pub fn not_found(kind: &'static str, id: &str) -> ApiError {
        ApiError::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// A 403 for `what` (Neutron's policy wording).
    pub fn policy(what: &str) -> ApiError {
        ApiError::Forbidden(format!("({what}) is disallowed by policy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape_and_codes() {
        let e = ApiError::not_found("Network", "abc");
        assert_eq!(e.status(), 404);
        let b = serde_json::to_value(e.body()).unwrap();
        assert_eq!(b["NeutronError"]["type"], "NetworkNotFound");
        assert_eq!(
            b["NeutronError"]["message"],
            "Network abc could not be found."
        );
        assert_eq!(b["NeutronError"]["detail"], "");
        // The body as the API sends it (keys sorted, as it always was).
        assert_eq!(
            b.to_string(),
            r#"{"NeutronError":{"detail":"","message":"Network abc could not be found.","type":"NetworkNotFound"}}"#
        );
        assert_eq!(ApiError::NoNetworkAvailable.status(), 503);
        assert_eq!(
            ApiError::IpAddressGenerationFailure("n".into()).status(),
            409
        );
        assert_eq!(
            ApiError::policy("rule:create_network:shared").to_string(),
            "(rule:create_network:shared) is disallowed by policy"
        );
    }
}
