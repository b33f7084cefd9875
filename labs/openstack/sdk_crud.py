#!/usr/bin/env python3
"""openstacksdk against strato's Neutron v2.0 API: create, list, update and delete networks,
subnets and ports, with the checks a Neutron client relies on.

Run by tests/tests/openstacksdk.rs with OS_CLIENT_CONFIG_FILE pointing at a copy of
clouds.yaml (clouds "strato": a tenant through auth_type none, "strato-admin": a provider
token). Prints one "OK ..." line per step and exits non-zero on the first failure.
"""

import sys

import openstack
from openstack import exceptions


def check(cond, what):
    if not cond:
        print(f"FAIL {what}", flush=True)
        sys.exit(1)
    print(f"OK {what}", flush=True)


def expect(exc_type, what, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        code = getattr(e, "status_code", None)
        print(f"OK {what} -> {exc_type.__name__} {code}: {e}", flush=True)
        return e
    print(f"FAIL {what}: no {exc_type.__name__}", flush=True)
    sys.exit(1)


def main():
    conn = openstack.connect(cloud="strato")
    admin = openstack.connect(cloud="strato-admin")
    net = conn.network

    # Networks.
    n = net.create_network(name="sdk-net", description="made by openstacksdk")
    check(n.name == "sdk-net" and n.status == "ACTIVE" and n.is_admin_state_up, "create network")
    check(n.project_id == "demo", "network project_id from the token")
    check(n.id in [x.id for x in net.networks()], "list networks")
    check(net.get_network(n.id).description == "made by openstacksdk", "show network")
    check(net.find_network("sdk-net").id == n.id, "find network by name")
    n = net.update_network(n, name="sdk-net-2", is_admin_state_up=False)
    check(n.name == "sdk-net-2" and n.status == "DOWN", "update network")
    check(n.provider_segmentation_id is None, "tenant does not see the segmentation id")
    an = admin.network.get_network(n.id)
    check(an.provider_network_type == "vxlan" and an.provider_segmentation_id >= 1,
          f"provider sees vxlan VNI {an.provider_segmentation_id}")

    # Subnets.
    s4 = net.create_subnet(network_id=n.id, name="sdk-v4", ip_version=4, cidr="10.77.0.0/24",
                           dns_nameservers=["10.77.0.53"],
                           host_routes=[{"destination": "10.78.0.0/16", "nexthop": "10.77.0.254"}])
    check(s4.gateway_ip == "10.77.0.1", "create v4 subnet: default gateway")
    check(s4.allocation_pools == [{"start": "10.77.0.2", "end": "10.77.0.254"}],
          "create v4 subnet: default pool")
    s6 = net.create_subnet(network_id=n.id, name="sdk-v6", ip_version=6, cidr="2001:db8:77::/64")
    check(s6.gateway_ip == "2001:db8:77::1", "create v6 subnet")
    check(sorted(x.id for x in net.subnets(network_id=n.id)) == sorted([s4.id, s6.id]),
          "list subnets of the network")
    s4 = net.update_subnet(s4, name="sdk-v4-b", dns_nameservers=["10.77.0.54"])
    check(s4.name == "sdk-v4-b" and s4.dns_nameservers == ["10.77.0.54"], "update subnet")
    expect(exceptions.BadRequestException, "invalid CIDR is 400",
           net.create_subnet, network_id=n.id, ip_version=4, cidr="10.79.0.0/33")
    expect(exceptions.ConflictException, "overlapping pools are 409",
           net.create_subnet, network_id=n.id, ip_version=4, cidr="10.80.0.0/24",
           allocation_pools=[{"start": "10.80.0.10", "end": "10.80.0.20"},
                             {"start": "10.80.0.15", "end": "10.80.0.30"}])

    # Ports.
    p1 = net.create_port(network_id=n.id, name="sdk-p1", device_owner="compute:nova")
    ips = sorted(f["ip_address"] for f in p1.fixed_ips)
    check(ips == ["10.77.0.2", "2001:db8:77::2"], f"create port: addresses {ips}")
    check(p1.mac_address.startswith("fa:16:3e:"), f"create port: MAC {p1.mac_address}")
    p2 = net.create_port(network_id=n.id, name="sdk-p2",
                         fixed_ips=[{"subnet_id": s4.id, "ip_address": "10.77.0.50"}])
    check([f["ip_address"] for f in p2.fixed_ips] == ["10.77.0.50"], "create port with a fixed IP")
    e = expect(exceptions.ConflictException, "taken fixed IP is 409",
               net.create_port, network_id=n.id, fixed_ips=[{"ip_address": "10.77.0.50"}])
    check("IpAddressAlreadyAllocated" in str(e) or "already allocated" in str(e),
          "the 409 names the problem")
    expect(exceptions.ConflictException, "duplicate MAC is 409",
           net.create_port, network_id=n.id, mac_address=p1.mac_address)
    expect(exceptions.NotFoundException, "unknown network is 404",
           net.create_port, network_id="00000000-0000-0000-0000-000000000000")
    check(sorted(p.id for p in net.ports(network_id=n.id)) == sorted([p1.id, p2.id]),
          "list ports of the network")
    check([p.id for p in net.ports(fixed_ips="ip_address=10.77.0.50")] == [p2.id],
          "filter ports by fixed IP")
    p1 = net.update_port(p1, name="sdk-p1-b", is_admin_state_up=False)
    check(p1.name == "sdk-p1-b" and not p1.is_admin_state_up, "update port")

    # Binding (provider only): host and strato's local interface.
    expect(exceptions.ForbiddenException, "tenant may not bind a port",
           net.update_port, p2, binding_host_id="hv1")
    bp = admin.network.update_port(p2.id, binding_host_id="hv1",
                                   binding_profile={"interface": "tap-sdk", "kind": "tap"})
    check(bp.binding_host_id == "hv1" and bp.binding_vif_type == "tap" and bp.status == "ACTIVE",
          "provider binds a port to hv1/tap-sdk")

    # Pagination: the SDK follows networks_links.
    extra = [net.create_network(name=f"sdk-page-{i}") for i in range(5)]
    paged = list(net.networks(limit=2))
    check(len(paged) == 6 and len({x.id for x in paged}) == 6, "paginated list (limit=2) sees all 6")
    for x in extra:
        net.delete_network(x)

    # Another tenant's view (the provider acting) and isolation: the tenant cannot see
    # a network of another tenant.
    other = admin.network.create_network(name="other", project_id="someone-else")
    expect(exceptions.NotFoundException, "another tenant's network is 404",
           net.get_network, other.id)
    check(net.find_network("other") is None, "another tenant's network is not found by name")
    admin.network.delete_network(other)

    # Delete everything, in the order Neutron needs.
    expect(exceptions.ConflictException, "network with ports cannot be deleted",
           net.delete_network, n)
    net.delete_port(p1)
    net.delete_port(p2)
    check(list(net.ports()) == [], "ports deleted")
    net.delete_subnet(s6)
    net.delete_network(n)
    check(net.find_network(n.id) is None and list(net.subnets()) == [], "network and subnets deleted")
    print("OK all", flush=True)


if __name__ == "__main__":
    main()
