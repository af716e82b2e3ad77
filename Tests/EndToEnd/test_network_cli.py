"""The networking service (Neutron v2.0) through the unmodified `openstack` CLI: networks with
provider segments, subnets, subnet pools, ports, quotas and availability zones. The conftest's
nimbus.conf gives VLANs 100-199 on physnet1."""

from __future__ import annotations

from conftest import Nimbus, unique


def test_networks_segments_and_visibility(osc, nimbus: Nimbus):
    name = unique("net")
    created = osc("network", "create", name, "--description", "first")
    assert created["name"] == name and created["status"] == "ACTIVE" and created["mtu"] == 1450
    assert created["provider:network_type"] == "vxlan" and created["router:external"] is False
    net = created["id"]
    assert net in [n["ID"] for n in osc("network", "list")]
    assert osc("network", "show", name)["description"] == "first"

    osc("network", "set", net, "--name", name + "-renamed", "--description", "second", "--tag", "blue", fmt=None)
    shown = osc("network", "show", net)
    assert shown["name"] == name + "-renamed" and shown["description"] == "second" and shown["tags"] == ["blue"]
    assert shown["revision_number"] >= 1

    vlan = osc("network", "create", unique("vlan"), "--provider-network-type", "vlan",
               "--provider-physical-network", "physnet1", "--provider-segment", "101", "--share", "--external")
    assert vlan["provider:segmentation_id"] == 101 and vlan["provider:physical_network"] == "physnet1"
    assert vlan["shared"] is True and vlan["router:external"] is True and vlan["mtu"] == 1500
    again = osc("network", "create", unique("vlan"), "--provider-network-type", "vlan",
                "--provider-physical-network", "physnet1", "--provider-segment", "101", expect_fail=True)
    assert "is in use" in again.stderr, again.stderr

    segments = [s for s in osc("network", "segment", "list", "--network", vlan["id"])]
    assert [s["Segment"] for s in segments] == [101], segments
    assert vlan["id"] in [n["ID"] for n in osc("network", "list", "--external")]

    osc("network", "delete", net, fmt=None)
    assert net not in [n["ID"] for n in osc("network", "list")]
    osc("network", "delete", vlan["id"], fmt=None)


def test_subnets_pools_and_ports(osc):
    net = osc("network", "create", unique("net"))["id"]
    subnet = osc("subnet", "create", unique("sub"), "--network", net, "--subnet-range", "10.20.0.0/24",
                 "--allocation-pool", "start=10.20.0.10,end=10.20.0.100", "--gateway", "10.20.0.1",
                 "--dns-nameserver", "8.8.8.8", "--host-route", "destination=10.30.0.0/16,gateway=10.20.0.254")
    assert subnet["cidr"] == "10.20.0.0/24" and subnet["gateway_ip"] == "10.20.0.1"
    assert subnet["allocation_pools"] == [{"start": "10.20.0.10", "end": "10.20.0.100"}]
    assert subnet["dns_nameservers"] == ["8.8.8.8"]
    assert subnet["host_routes"] == [{"destination": "10.30.0.0/16", "nexthop": "10.20.0.254"}]
    overlap = osc("subnet", "create", unique("sub"), "--network", net, "--subnet-range", "10.20.0.0/25", expect_fail=True)
    assert "overlaps" in overlap.stderr, overlap.stderr

    pool = osc("subnet", "pool", "create", unique("pool"), "--pool-prefix", "172.16.0.0/16", "--default-prefix-length", "26")
    assert pool["prefixes"] == ["172.16.0.0/16"] and pool["default_prefixlen"] == 26
    carved = osc("subnet", "create", unique("sub"), "--network", net, "--subnet-pool", pool["id"])
    assert carved["cidr"] == "172.16.0.0/26" and carved["subnetpool_id"] == pool["id"]

    port = osc("port", "create", unique("port"), "--network", net,
               "--fixed-ip", f"subnet={subnet['id']},ip-address=10.20.0.50")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.20.0.50"}]
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    auto = osc("port", "create", unique("port"), "--network", net)
    assert auto["fixed_ips"][0]["ip_address"] == "10.20.0.10"
    taken = osc("port", "create", unique("port"), "--network", net,
                "--fixed-ip", f"subnet={subnet['id']},ip-address=10.20.0.50", expect_fail=True)
    assert "in use" in taken.stderr, taken.stderr
    assert {p["ID"] for p in osc("port", "list", "--network", net)} == {port["id"], auto["id"]}
    assert [p["ID"] for p in osc("port", "list", "--fixed-ip", "ip-address=10.20.0.50")] == [port["id"]]

    in_use = osc("subnet", "delete", subnet["id"], expect_fail=True)
    assert in_use.returncode != 0
    osc("port", "delete", port["id"], auto["id"], fmt=None)
    osc("subnet", "delete", subnet["id"], carved["id"], fmt=None)
    osc("subnet", "pool", "delete", pool["id"], fmt=None)
    osc("network", "delete", net, fmt=None)


def test_extensions_quotas_and_zones(osc):
    aliases = {e["Alias"] for e in osc("extension", "list", "--network")}
    assert {"provider", "external-net", "quotas", "availability_zone", "standard-attr-tag", "binding",
            "router", "ext-gw-mode", "extraroute", "auto-allocated-topology", "security-group"} <= aliases

    project = osc("project", "create", unique("netquota"))["id"]
    osc("quota", "set", "--networks", "7", "--ports", "70", "--routers", "3", "--floating-ips", "4", project, fmt=None)
    shown = osc("quota", "show", project)
    values = {row["Resource"]: row["Limit"] for row in shown} if isinstance(shown, list) else shown
    assert values["networks"] == 7 and values["ports"] == 70, shown
    assert values["routers"] == 3 and 4 in (values.get("floating-ips"), values.get("floating_ips")), shown
    assert values["subnets"] == 100, shown

    zones = osc("availability", "zone", "list", "--network")
    assert {(z["Zone Name"], z["Zone Status"]) for z in zones} == {("nova", "available")}, zones
