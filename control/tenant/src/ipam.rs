//! IPAM and the other allocations: subnet CIDRs, gateways and allocation pools (validated and
//! defaulted the way Neutron does), and [`Pool`], the allocator used for IPs, MACs and VNIs.
//!
//! Contract:
//! - [`plan_subnet`] turns what a client asked for into a consistent subnet: the CIDR has no
//!   host bits; the gateway (default: the first usable address; `null`: none) is inside the
//!   CIDR and is not the network (or IPv4 broadcast) address; the pools (default: the usable
//!   range minus the gateway) are valid ranges inside the usable range, sorted, disjoint and
//!   without the gateway. Each violation is the Neutron error for it.
//! - [`Pool`] never hands out a value twice: [`Pool::find_free`] only reads (the caller commits
//!   to the store first), [`Pool::insert`] records it. Allocation walks forward from a cursor
//!   and wraps, so a released value is reused only after the rest of the range.
//! - Nothing here panics on any input (addresses are `u128`, arithmetic is checked).

use super::error::ApiError;
use super::model::IpRange;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest IPv4 prefix accepted for a subnet (leaves 2 usable addresses).
pub const MAX_V4_PREFIX: u8 = 30;
/// Longest IPv6 prefix accepted for a subnet.
pub const MAX_V6_PREFIX: u8 = 126;

/// An address as a number (IPv4 in the low 32 bits).
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address `v` of the same family as `like`.
pub fn from_u128(like: &IpNet, v: u128) -> IpAddr {
    match like {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

fn same_family(net: &IpNet, ip: &IpAddr) -> bool {
    matches!(
        (net, ip),
        (IpNet::V4(_), IpAddr::V4(_)) | (IpNet::V6(_), IpAddr::V6(_))
    )
}

/// Parses a subnet CIDR: an address with a prefix, no host bits set, prefix not longer than
/// [`MAX_V4_PREFIX`] / [`MAX_V6_PREFIX`].
pub fn parse_cidr(s: &str) -> Result<IpNet, ApiError> {
    let net: IpNet = s
        .parse()
        .map_err(|_| ApiError::InvalidInput(format!("'{s}' is not a valid IP subnet")))?;
    if net.trunc() != net {
        return Err(ApiError::InvalidInput(format!(
            "'{s}' isn't a recommended CIDR, '{}' is recommended",
            net.trunc()
        )));
    }
    let max = match net {
        IpNet::V4(_) => MAX_V4_PREFIX,
        IpNet::V6(_) => MAX_V6_PREFIX,
    };
    if net.prefix_len() > max {
        return Err(ApiError::InvalidInput(format!(
            "'{s}' has a prefix longer than /{max}, which leaves no addresses to allocate"
        )));
    }
    Ok(net)
}

/// The addresses of `cidr` that can be a gateway or be allocated: IPv4 without the network
/// and broadcast addresses, IPv6 without the subnet-router anycast (network) address.
pub fn usable_range(cidr: &IpNet) -> (u128, u128) {
    let lo = to_u128(cidr.network());
    let hi = to_u128(cidr.broadcast());
    match cidr {
        IpNet::V4(_) => (lo.saturating_add(1), hi.saturating_sub(1)),
        IpNet::V6(_) => (lo.saturating_add(1), hi),
    }
}

/// What the client said about the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewaySpec {
    /// Attribute absent: the first usable address.
    Default,
    /// `"gateway_ip": null`: no gateway.
    Disabled,
    /// This address.
    Given(IpAddr),
}

/// Checks a gateway address against the CIDR.
pub fn check_gateway(cidr: &IpNet, gw: IpAddr) -> Result<(), ApiError> {
    if !same_family(cidr, &gw) {
        return Err(ApiError::InvalidInput(format!(
            "Gateway IP version inconsistent with allocation pool IP version ({gw} for {cidr})"
        )));
    }
    let (lo, hi) = usable_range(cidr);
    let g = to_u128(gw);
    if !cidr.contains(&gw) || g < lo || g > hi {
        return Err(ApiError::InvalidInput(format!(
            "Gateway is not valid on subnet: {gw} is not a usable address of {cidr}"
        )));
    }
    Ok(())
}

/// Validates (or, when `pools` is `None`, computes) the allocation pools of `cidr` with
/// gateway `gw`. Returns them sorted.
pub fn check_pools(
    cidr: &IpNet,
    gw: Option<IpAddr>,
    pools: Option<&[IpRange]>,
) -> Result<Vec<IpRange>, ApiError> {
    let (lo, hi) = usable_range(cidr);
    let Some(pools) = pools else {
        // The usable range minus the gateway.
        let mut out = Vec::new();
        let mut push = |a: u128, b: u128| {
            if a <= b {
                out.push(IpRange {
                    start: from_u128(cidr, a),
                    end: from_u128(cidr, b),
                })
            }
        };
        match gw.map(to_u128) {
            Some(g) if g >= lo && g <= hi => {
                if g > lo {
                    push(lo, g - 1);
                }
                if g < hi {
                    push(g + 1, hi);
                }
            }
            _ => push(lo, hi),
        }
        return Ok(out);
    };
    let mut ranges: Vec<(u128, u128, IpRange)> = Vec::with_capacity(pools.len());
    for p in pools {
        if !same_family(cidr, &p.start) || !same_family(cidr, &p.end) {
            return Err(ApiError::InvalidAllocationPool(p.to_string()));
        }
        let (s, e) = (to_u128(p.start), to_u128(p.end));
        if s > e {
            return Err(ApiError::InvalidAllocationPool(p.to_string()));
        }
        if s < lo || e > hi {
            return Err(ApiError::OutOfBoundsAllocationPool {
                pool: p.to_string(),
                cidr: cidr.to_string(),
            });
        }
        ranges.push((s, e, *p));
    }
    ranges.sort_by_key(|r| (r.0, r.1));
    for w in ranges.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(ApiError::OverlappingAllocationPools {
                a: w[0].2.to_string(),
                b: w[1].2.to_string(),
                cidr: cidr.to_string(),
            });
        }
    }
    if let Some(g) = gw {
        let gv = to_u128(g);
        if let Some(r) = ranges.iter().find(|r| r.0 <= gv && gv <= r.1) {
            return Err(ApiError::GatewayConflictWithAllocationPools {
                ip: g.to_string(),
                pool: r.2.to_string(),
            });
        }
    }
    Ok(ranges.into_iter().map(|r| r.2).collect())
}

/// A whole subnet plan: the gateway and the pools.
pub fn plan_subnet(
    cidr: &IpNet,
    gateway: GatewaySpec,
    pools: Option<&[IpRange]>,
) -> Result<(Option<IpAddr>, Vec<IpRange>), ApiError> {
    let gw = match gateway {
        GatewaySpec::Default => Some(from_u128(cidr, usable_range(cidr).0)),
        GatewaySpec::Disabled => None,
        GatewaySpec::Given(g) => {
            check_gateway(cidr, g)?;
            Some(g)
        }
    };
    let pools = check_pools(cidr, gw, pools)?;
    Ok((gw, pools))
}

/// Whether two prefixes share an address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Checks a Linux interface name (what `dev_valid_name` accepts).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace() || c == 0)
}

/// An allocator over inclusive ranges of numbers (IP addresses, MACs, VNIs).
#[derive(Debug, Clone, Default)]
pub struct Pool {
    ranges: Vec<(u128, u128)>,
    used: BTreeSet<u128>,
    cursor: u128,
}

impl Pool {
    /// A pool allocating from `ranges` (sorted, disjoint), nothing used.
    pub fn new(ranges: Vec<(u128, u128)>) -> Pool {
        Pool {
            ranges,
            used: BTreeSet::new(),
            cursor: 0,
        }
    }

    /// The ranges of an IPAM allocation pool list.
    pub fn ranges_of(pools: &[IpRange]) -> Vec<(u128, u128)> {
        pools
            .iter()
            .map(|p| (to_u128(p.start), to_u128(p.end)))
            .collect()
    }

    /// Replaces the ranges (used values stay used).
    pub fn set_ranges(&mut self, ranges: Vec<(u128, u128)>) {
        self.ranges = ranges;
    }

    /// Whether `v` is used.
    pub fn is_used(&self, v: u128) -> bool {
        self.used.contains(&v)
    }

    /// Number of used values (also those outside the ranges).
    pub fn used_count(&self) -> usize {
        self.used.len()
    }

    /// Whether `v` is inside the ranges.
    pub fn in_ranges(&self, v: u128) -> bool {
        self.ranges.iter().any(|&(s, e)| s <= v && v <= e)
    }

    /// The next free value from the cursor on (wrapping), skipping `exclude` (values picked
    /// earlier in the same request); `None` when the ranges are full. Changes nothing.
    pub fn find_free(&self, exclude: &[u128]) -> Option<u128> {
        let c = self.cursor;
        for &(s, e) in &self.ranges {
            if e < c {
                continue;
            }
            if let Some(v) = self.first_free(s.max(c), e, exclude) {
                return Some(v);
            }
        }
        for &(s, e) in &self.ranges {
            if s >= c {
                break;
            }
            if let Some(v) = self.first_free(s, e.min(c.saturating_sub(1)), exclude) {
                return Some(v);
            }
        }
        None
    }

    fn first_free(&self, from: u128, to: u128, exclude: &[u128]) -> Option<u128> {
        let mut a = from;
        loop {
            if a > to {
                return None;
            }
            for &u in self.used.range(a..=to) {
                if u != a {
                    break;
                }
                a = a.checked_add(1)?;
            }
            if a > to {
                return None;
            }
            if exclude.contains(&a) {
                a = a.checked_add(1)?;
                continue;
            }
            return Some(a);
        }
    }

    /// Records `v` as used; `allocated` (it came from [`Pool::find_free`]) moves the cursor
    /// past it. Returns false if it was already used.
    pub fn insert(&mut self, v: u128, allocated: bool) -> bool {
        if allocated {
            self.cursor = v.saturating_add(1);
        }
        self.used.insert(v)
    }

    /// Frees `v`.
    pub fn remove(&mut self, v: u128) {
        self.used.remove(&v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn range(a: &str, b: &str) -> IpRange {
        IpRange {
            start: ip(a),
            end: ip(b),
        }
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr("10.0.0.0/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(parse_cidr("2001:db8::/64").unwrap().prefix_len(), 64);
        for bad in [
            "10.0.0.1/24",
            "10.0.0.0",
            "10.0.0.0/33",
            "x",
            "10.0.0.0/31",
            "2001:db8::/127",
            "",
        ] {
            let e = parse_cidr(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
            assert_eq!(e.neutron_type(), "InvalidInput");
        }
    }

    #[test]
    fn v4_defaults() {
        let c = parse_cidr("10.0.0.0/24").unwrap();
        let (gw, pools) = plan_subnet(&c, GatewaySpec::Default, None).unwrap();
        assert_eq!(gw, Some(ip("10.0.0.1")));
        assert_eq!(pools, vec![range("10.0.0.2", "10.0.0.254")]);
        // No gateway: the whole usable range.
        let (gw, pools) = plan_subnet(&c, GatewaySpec::Disabled, None).unwrap();
        assert_eq!(gw, None);
        assert_eq!(pools, vec![range("10.0.0.1", "10.0.0.254")]);
        // A gateway in the middle splits the pool.
        let (_, pools) = plan_subnet(&c, GatewaySpec::Given(ip("10.0.0.100")), None).unwrap();
        assert_eq!(
            pools,
            vec![
                range("10.0.0.1", "10.0.0.99"),
                range("10.0.0.101", "10.0.0.254")
            ]
        );
        // Last usable address as gateway.
        let (_, pools) = plan_subnet(&c, GatewaySpec::Given(ip("10.0.0.254")), None).unwrap();
        assert_eq!(pools, vec![range("10.0.0.1", "10.0.0.253")]);
    }

    #[test]
    fn v6_defaults() {
        let c = parse_cidr("2001:db8::/64").unwrap();
        let (gw, pools) = plan_subnet(&c, GatewaySpec::Default, None).unwrap();
        assert_eq!(gw, Some(ip("2001:db8::1")));
        assert_eq!(
            pools,
            vec![range("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]
        );
        // The top of the IPv6 space does not overflow.
        let c = parse_cidr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124").unwrap();
        let (gw, pools) = plan_subnet(&c, GatewaySpec::Disabled, None).unwrap();
        assert_eq!(gw, None);
        assert_eq!(pools[0].end, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        let mut p = Pool::new(Pool::ranges_of(&pools));
        let mut n = 0;
        while let Some(v) = p.find_free(&[]) {
            assert!(p.insert(v, true));
            n += 1;
        }
        assert_eq!(n, 15);
    }

    #[test]
    fn gateway_checks() {
        let c = parse_cidr("10.0.0.0/24").unwrap();
        for bad in ["10.0.1.1", "10.0.0.0", "10.0.0.255", "2001:db8::1"] {
            let e = plan_subnet(&c, GatewaySpec::Given(ip(bad)), None).unwrap_err();
            assert_eq!(e.neutron_type(), "InvalidInput", "{bad}");
        }
        let c6 = parse_cidr("2001:db8::/64").unwrap();
        assert!(plan_subnet(&c6, GatewaySpec::Given(ip("2001:db8::")), None).is_err());
        assert!(plan_subnet(
            &c6,
            GatewaySpec::Given(ip("2001:db8::ffff:ffff:ffff:ffff")),
            None
        )
        .is_ok());
    }

    #[test]
    fn pool_checks() {
        let c = parse_cidr("10.0.0.0/24").unwrap();
        let gw = GatewaySpec::Default;
        let t = |pools: &[IpRange]| plan_subnet(&c, gw, Some(pools)).map(|x| x.1);
        // Sorted on the way in.
        assert_eq!(
            t(&[
                range("10.0.0.50", "10.0.0.60"),
                range("10.0.0.10", "10.0.0.20")
            ])
            .unwrap(),
            vec![
                range("10.0.0.10", "10.0.0.20"),
                range("10.0.0.50", "10.0.0.60")
            ]
        );
        let e = t(&[
            range("10.0.0.10", "10.0.0.20"),
            range("10.0.0.20", "10.0.0.30"),
        ])
        .unwrap_err();
        assert_eq!(e.neutron_type(), "OverlappingAllocationPools");
        assert_eq!(e.status(), 409);
        let e = t(&[range("10.0.0.20", "10.0.0.10")]).unwrap_err();
        assert_eq!(e.neutron_type(), "InvalidAllocationPool");
        let e = t(&[range("10.0.0.10", "10.0.1.10")]).unwrap_err();
        assert_eq!(e.neutron_type(), "OutOfBoundsAllocationPool");
        let e = t(&[range("10.0.0.0", "10.0.0.10")]).unwrap_err();
        assert_eq!(e.neutron_type(), "OutOfBoundsAllocationPool");
        let e = t(&[range("10.0.0.200", "10.0.0.255")]).unwrap_err();
        assert_eq!(e.neutron_type(), "OutOfBoundsAllocationPool");
        let e = t(&[range("2001:db8::1", "2001:db8::5")]).unwrap_err();
        assert_eq!(e.neutron_type(), "InvalidAllocationPool");
        let e = t(&[range("10.0.0.1", "10.0.0.5")]).unwrap_err();
        assert_eq!(e.neutron_type(), "GatewayConflictWithAllocationPools");
        assert_eq!(e.status(), 409);
    }

    #[test]
    fn pool_allocates_in_order_wraps_and_exhausts() {
        let c = parse_cidr("10.0.0.0/29").unwrap();
        let (_, pools) = plan_subnet(&c, GatewaySpec::Default, None).unwrap();
        // 10.0.0.2 .. 10.0.0.6
        let mut p = Pool::new(Pool::ranges_of(&pools));
        // An explicit allocation in the middle is skipped.
        p.insert(to_u128(ip("10.0.0.3")), false);
        let mut got = Vec::new();
        while let Some(v) = p.find_free(&[]) {
            assert!(p.insert(v, true));
            got.push(from_u128(&c, v));
        }
        assert_eq!(
            got,
            vec![
                ip("10.0.0.2"),
                ip("10.0.0.4"),
                ip("10.0.0.5"),
                ip("10.0.0.6")
            ]
        );
        // Release one: it comes back (after wrapping), and only it.
        p.remove(to_u128(ip("10.0.0.4")));
        assert_eq!(p.find_free(&[]), Some(to_u128(ip("10.0.0.4"))));
        assert_eq!(p.find_free(&[to_u128(ip("10.0.0.4"))]), None);
        p.insert(to_u128(ip("10.0.0.4")), true);
        assert_eq!(p.find_free(&[]), None);
        // Double insert reports it.
        assert!(!p.insert(to_u128(ip("10.0.0.4")), false));
    }

    #[test]
    fn freed_values_are_reused_only_after_the_rest() {
        let mut p = Pool::new(vec![(10, 19)]);
        for _ in 0..3 {
            let v = p.find_free(&[]).unwrap();
            p.insert(v, true);
        }
        p.remove(10);
        assert_eq!(p.find_free(&[]), Some(13));
        assert_eq!(p.find_free(&[13, 14]), Some(15));
    }

    #[test]
    fn ifnames() {
        assert!(valid_ifname("tap0"));
        assert!(valid_ifname("veth-abcdefghij"));
        for bad in ["", ".", "..", "a/b", "a b", "a:b", "0123456789abcdef"] {
            assert!(!valid_ifname(bad), "{bad}");
        }
    }
}
