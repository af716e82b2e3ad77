"""Neutron's router extensions and security group default statefulness through the unmodified
`openstack` CLI: a router's further external gateways (`router add/remove gateway`, and
`router create/set --external-gateway`, which go through the multihoming routes once
`external-gateway-multihoming` is advertised), NDP proxies on a router whose gateway has IPv6
in the inside's address scope, and per-project and system-wide default statefulness."""

from __future__ import annotations

from conftest import unique


def test_router_gateways_through_the_multihoming_routes(osc):
    first = osc("network", "create", unique("public"), "--external")["id"]
    osc("subnet", "create", unique("public-sub"), "--network", first, "--subnet-range", "172.28.0.0/24", "--no-dhcp")
    second = osc("network", "create", unique("public2"), "--external")["id"]
    osc("subnet", "create", unique("public2-sub"), "--network", second, "--subnet-range", "172.28.1.0/24", "--no-dhcp")

    router = osc("router", "create", unique("router"), "--external-gateway", first, "--disable-snat")
    rid = router["id"]
    shown = osc("router", "show", rid)
    assert shown["external_gateway_info"]["network_id"] == first, shown
    assert shown["external_gateway_info"]["enable_snat"] is False, shown
    assert [g["network_id"] for g in shown["external_gateways"]] == [first], shown

    osc("router", "add", "gateway", rid, second)
    added = osc("router", "show", rid)
    assert [g["network_id"] for g in added["external_gateways"]] == [first, second], added
    owners = [osc("port", "show", p["ID"])["device_owner"] for p in osc("port", "list", "--router", rid)]
    assert owners == ["network:router_gateway"] * 2, owners

    # `router set --external-gateway` replaces the list: the second network's port becomes the first.
    osc("router", "set", rid, "--external-gateway", second)
    shown = osc("router", "show", rid)
    assert [g["network_id"] for g in shown["external_gateways"]] == [second], shown
    assert shown["external_gateway_info"]["network_id"] == second, shown

    osc("router", "add", "gateway", rid, first, "--fixed-ip", "ip-address=172.28.0.50")
    osc("router", "remove", "gateway", rid, second)
    removed = osc("router", "show", rid)
    assert [g["network_id"] for g in removed["external_gateways"]] == [first], removed
    assert removed["external_gateway_info"]["external_fixed_ips"][0]["ip_address"] == "172.28.0.50", removed
    missing = osc("router", "remove", "gateway", rid, second, expect_fail=True)
    assert missing.returncode != 0

    # Unsetting a route sends an empty removal first, which must leave the gateway alone.
    osc("router", "set", rid, "--route", "destination=192.168.60.0/24,gateway=172.28.0.1")
    osc("router", "unset", rid, "--route", "destination=192.168.60.0/24,gateway=172.28.0.1")
    assert osc("router", "show", rid)["external_gateway_info"]["network_id"] == first
    osc("router", "unset", "--external-gateway", rid)
    shown = osc("router", "show", rid)
    assert not shown["external_gateway_info"] and shown["external_gateways"] == [], shown
    assert osc("port", "list", "--router", rid) == []
    osc("router", "delete", rid)
    osc("network", "delete", first, second)


def test_ndp_proxies(osc):
    scope = osc("address", "scope", "create", unique("v6"), "--ip-version", "6", "--share")["id"]
    pool = osc("subnet", "pool", "create", unique("v6-pool"), "--pool-prefix", "2001:db8:70::/48", "--default-prefix-length", "64",
               "--address-scope", scope, "--share")["id"]
    external = osc("network", "create", unique("public6"), "--external")["id"]
    osc("subnet", "create", unique("public6-v4"), "--network", external, "--subnet-range", "172.28.2.0/24", "--no-dhcp")
    osc("subnet", "create", unique("public6-v6"), "--network", external, "--ip-version", "6", "--subnet-pool", pool, "--no-dhcp")
    inside = osc("network", "create", unique("inside6"))["id"]
    inside_subnet = osc("subnet", "create", unique("inside6-sub"), "--network", inside, "--ip-version", "6", "--subnet-pool", pool,
                        "--ipv6-ra-mode", "slaac", "--ipv6-address-mode", "slaac")["id"]

    rid = osc("router", "create", unique("router"), "--external-gateway", external)["id"]
    assert osc("router", "show", rid)["enable_ndp_proxy"] is False
    osc("router", "set", rid, "--enable-ndp-proxy")
    assert osc("router", "show", rid)["enable_ndp_proxy"] is True
    osc("router", "add", "subnet", rid, inside_subnet)
    port = osc("port", "create", unique("vm6"), "--network", inside)
    address = port["fixed_ips"][0]["ip_address"]

    wrong = osc("router", "ndp", "proxy", "create", rid, "--port", port["id"], "--ip-address", "2001:db8:ffff::1", expect_fail=True)
    assert "not belong to the port" in wrong.stderr, wrong.stderr
    name = unique("proxy")
    proxy = osc("router", "ndp", "proxy", "create", rid, "--port", port["id"], "--name", name, "--description", "web", fmt="json")
    assert proxy["ip_address"] == address and proxy["router_id"] == rid and proxy["port_id"] == port["id"], proxy
    assert [p["ID"] for p in osc("router", "ndp", "proxy", "list", "--router", rid, fmt="json")] == [proxy["id"]]
    osc("router", "ndp", "proxy", "set", proxy["id"], "--description", "web2")
    shown = osc("router", "ndp", "proxy", "show", name, fmt="json")
    assert shown["description"] == "web2" and shown["ip_address"] == address, shown

    in_use = osc("router", "unset", "--external-gateway", rid, expect_fail=True)
    assert "ndp proxies" in in_use.stderr, in_use.stderr
    needed = osc("router", "remove", "subnet", rid, inside_subnet, expect_fail=True)
    assert "ndp proxies" in needed.stderr, needed.stderr

    osc("router", "ndp", "proxy", "delete", proxy["id"])
    assert osc("router", "ndp", "proxy", "list", "--router", rid, fmt="json") == []
    osc("router", "remove", "subnet", rid, inside_subnet)
    osc("router", "unset", "--external-gateway", rid)
    assert osc("router", "show", rid)["enable_ndp_proxy"] is False
    osc("router", "delete", rid)
    osc("port", "delete", port["id"])
    osc("network", "delete", inside, external)
    osc("subnet", "pool", "delete", pool)
    osc("address", "scope", "delete", scope)


def test_security_group_default_statefulness(osc):
    # A project of its own, so the stateless default reaches no other test's groups.
    project = osc("project", "create", unique("stateless"))["id"]
    setting = osc("security", "group", "default", "statefulness", "create", "--stateless", "--project", project, fmt="json")
    assert setting["project_id"] == project and setting["stateful"] is False, setting
    again = osc("security", "group", "default", "statefulness", "create", "--stateful", "--project", project, expect_fail=True)
    assert again.returncode != 0
    listed = osc("security", "group", "default", "statefulness", "list", "--project", project, fmt="json")
    assert [s["ID"] for s in listed] == [setting["id"]], listed

    group = osc("security", "group", "create", unique("sg"), "--project", project)
    assert group["stateful"] is False, group
    explicit = osc("security", "group", "create", unique("sg"), "--project", project, "--stateful")
    assert explicit["stateful"] is True, explicit

    osc("security", "group", "default", "statefulness", "set", setting["id"], "--stateful")
    assert osc("security", "group", "default", "statefulness", "show", setting["id"], fmt="json")["stateful"] is True
    assert osc("security", "group", "create", unique("sg"), "--project", project)["stateful"] is True

    # The system-wide setting: project_id null. Stateful, as the default is, so that other
    # tests on this server see no change while it exists.
    system = osc("security", "group", "default", "statefulness", "create", "--stateful", fmt="json")
    assert system["project_id"] is None and system["stateful"] is True, system
    osc("security", "group", "default", "statefulness", "delete", system["id"], setting["id"])
    gone = osc("security", "group", "default", "statefulness", "show", setting["id"], expect_fail=True)
    assert gone.returncode != 0
    for g in osc("security", "group", "list", "--project", project):
        osc("security", "group", "delete", g["ID"])
    osc("project", "delete", project)
