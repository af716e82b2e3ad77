"""Routers and floating IPs through the unmodified `openstack` CLI: an external gateway with
SNAT on and off, interfaces on subnets, static routes, floating IPs associated with a port
through the router, and what each keeps in use."""

from __future__ import annotations

from conftest import unique


def routing_networks(osc, external_cidr: str, private_cidr: str) -> tuple[str, str, str]:
    """An external network and a project network, each with one subnet: (external, network, subnet)."""
    external = osc("network", "create", unique("public"), "--external")["id"]
    osc("subnet", "create", unique("public-sub"), "--network", external, "--subnet-range", external_cidr, "--no-dhcp")
    network = osc("network", "create", unique("private"))["id"]
    subnet = osc("subnet", "create", unique("private-sub"), "--network", network, "--subnet-range", private_cidr)["id"]
    return external, network, subnet


def test_router_gateway_interfaces_and_routes(osc):
    external, network, subnet = routing_networks(osc, "172.30.0.0/24", "10.60.0.0/24")
    router = osc("router", "create", unique("router"))
    rid = router["id"]
    assert router["status"] == "ACTIVE" and not router["external_gateway_info"], router
    assert rid in [r["ID"] for r in osc("router", "list")]

    osc("router", "set", rid, "--external-gateway", external)
    gateway = osc("router", "show", rid)["external_gateway_info"]
    assert gateway["network_id"] == external and gateway["enable_snat"] is True, gateway
    assert gateway["external_fixed_ips"][0]["ip_address"].startswith("172.30.0."), gateway
    osc("router", "set", rid, "--external-gateway", external, "--disable-snat")
    assert osc("router", "show", rid)["external_gateway_info"]["enable_snat"] is False
    osc("router", "set", rid, "--external-gateway", external, "--enable-snat")
    assert osc("router", "show", rid)["external_gateway_info"]["enable_snat"] is True

    osc("router", "add", "subnet", rid, subnet)
    shown = osc("router", "show", rid)
    assert {"subnet_id": subnet, "ip_address": "10.60.0.1"} in [
        {k: i[k] for k in ("subnet_id", "ip_address")} for i in shown["interfaces_info"]], shown
    owners = {p["ID"]: osc("port", "show", p["ID"])["device_owner"] for p in osc("port", "list", "--router", rid)}
    assert sorted(owners.values()) == ["network:router_gateway", "network:router_interface"], owners
    again = osc("router", "add", "subnet", rid, subnet, expect_fail=True)
    assert "already has a port" in again.stderr, again.stderr

    osc("router", "set", rid, "--route", "destination=192.168.50.0/24,gateway=10.60.0.20")
    osc("router", "add", "route", rid, "--route", "destination=192.168.51.0/24,gateway=10.60.0.21")
    routes = osc("router", "show", rid)["routes"]
    assert {"destination": "192.168.50.0/24", "nexthop": "10.60.0.20"} in routes and len(routes) == 2, routes
    unreachable = osc("router", "set", rid, "--route", "destination=192.168.52.0/24,gateway=10.99.0.1", expect_fail=True)
    assert "not connected" in unreachable.stderr, unreachable.stderr
    needed = osc("router", "remove", "subnet", rid, subnet, expect_fail=True)
    assert "required by one or more routes" in needed.stderr, needed.stderr
    osc("router", "remove", "route", rid, "--route", "destination=192.168.51.0/24,gateway=10.60.0.21")
    osc("router", "unset", rid, "--route", "destination=192.168.50.0/24,gateway=10.60.0.20")
    assert osc("router", "show", rid)["routes"] == []

    in_use = osc("network", "delete", network, expect_fail=True)
    assert in_use.returncode != 0
    still = osc("router", "delete", rid, expect_fail=True)
    assert "still has ports" in still.stderr, still.stderr
    osc("router", "remove", "subnet", rid, subnet)
    osc("router", "unset", "--external-gateway", rid)
    assert not osc("router", "show", rid)["external_gateway_info"]
    assert osc("port", "list", "--router", rid) == []
    osc("router", "delete", rid)
    osc("network", "delete", network, external)


def test_floating_ips(osc):
    external, network, subnet = routing_networks(osc, "172.31.0.0/24", "10.61.0.0/24")
    port = osc("port", "create", unique("vm-port"), "--network", network)
    fixed = port["fixed_ips"][0]["ip_address"]

    floating = osc("floating", "ip", "create", external)
    assert floating["status"] == "DOWN" and floating["port_id"] is None, floating
    address = floating["floating_ip_address"]
    assert address.startswith("172.31.0."), floating
    unreachable = osc("floating", "ip", "set", "--port", port["id"], address, expect_fail=True)
    assert "is not reachable" in unreachable.stderr, unreachable.stderr

    router = osc("router", "create", unique("router"), "--external-gateway", external)["id"]
    osc("router", "add", "subnet", router, subnet)
    osc("floating", "ip", "set", "--port", port["id"], address)
    shown = osc("floating", "ip", "show", floating["id"])
    assert shown["port_id"] == port["id"] and shown["fixed_ip_address"] == fixed, shown
    assert shown["router_id"] == router and shown["status"] == "ACTIVE", shown
    assert [f["ID"] for f in osc("floating", "ip", "list", "--port", port["id"])] == [floating["id"]]
    assert floating["id"] in [f["ID"] for f in osc("floating", "ip", "list", "--router", router)]

    needed = osc("router", "remove", "subnet", router, subnet, expect_fail=True)
    assert "required by one or more floating IPs" in needed.stderr, needed.stderr
    gateway = osc("router", "unset", "--external-gateway", router, expect_fail=True)
    assert "required by one or more floating IPs" in gateway.stderr, gateway.stderr

    osc("floating", "ip", "unset", "--port", floating["id"])
    unset = osc("floating", "ip", "show", floating["id"])
    assert unset["port_id"] is None and unset["status"] == "DOWN", unset
    osc("floating", "ip", "delete", floating["id"])
    assert floating["id"] not in [f["ID"] for f in osc("floating", "ip", "list")]

    osc("port", "delete", port["id"])
    osc("router", "remove", "subnet", router, subnet)
    osc("router", "delete", router)
    osc("network", "delete", network, external)


def test_auto_allocated_topology(osc):
    """Get-me-a-network for a project of its own, so the admin project's `auto` boots elsewhere
    in the suite keep their networks."""
    project = osc("project", "create", unique("gman"))["id"]
    external = osc("network", "create", unique("public"), "--external", "--default")["id"]
    osc("subnet", "create", unique("public-sub"), "--network", external, "--subnet-range", "172.32.0.0/24", "--no-dhcp")
    missing = osc("network", "auto", "allocated", "topology", "create", "--project", project, "--check-resources",
                  fmt="json", expect_fail=True)
    assert "No default subnetpools" in missing.stderr, missing.stderr
    pool = osc("subnet", "pool", "create", unique("default-pool"), "--pool-prefix", "10.210.0.0/16",
               "--default-prefix-length", "24", "--default", "--share")["id"]
    osc("network", "auto", "allocated", "topology", "create", "--project", project, "--check-resources", fmt="json")
    topology = osc("network", "auto", "allocated", "topology", "create", "--project", project, fmt="json")
    network = osc("network", "show", topology["id"])
    assert network["project_id"] == project and len(network["subnets"]) == 1, network
    routers = [r for r in osc("router", "list", "--project", project)]
    assert len(routers) == 1, routers
    gateway = osc("router", "show", routers[0]["ID"])["external_gateway_info"]
    assert gateway["network_id"] == external, gateway
    again = osc("network", "auto", "allocated", "topology", "create", "--project", project, fmt="json")
    assert again["id"] == topology["id"]

    osc("network", "auto", "allocated", "topology", "delete", "--project", project, fmt=None)
    assert osc("router", "list", "--project", project) == []
    osc("network", "set", external, "--no-default")
    osc("subnet", "pool", "delete", pool)
    osc("network", "delete", external)
    osc("project", "delete", project)
