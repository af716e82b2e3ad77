"""QoS policies and rules, trunks and floating IP port forwardings through the unmodified
`openstack` CLI: what the CLI sends, Nimbus stores and checks as Neutron does."""

from __future__ import annotations

from conftest import unique
from test_router_cli import routing_networks


def json_of(osc):
    """osc with `-f json`, for commands whose verb comes after the third word
    (`network qos policy create`), which the fixture's verb check does not see."""
    return lambda *args, **kwargs: osc(*args, fmt="json", **kwargs)


def test_qos_policies_rules_and_ports(osc):
    js = json_of(osc)
    name = unique("gold")
    policy = js("network", "qos", "policy", "create", name, "--description", "ten megabits")
    pid = policy["id"]
    assert policy["shared"] is False and policy["rules"] == [], policy
    assert name in [p["Name"] for p in js("network", "qos", "policy", "list")]

    limit = js("network", "qos", "rule", "create", "--type", "bandwidth-limit", "--max-kbps", "10000",
                "--max-burst-kbits", "1000", "--egress", pid)
    assert limit["max_kbps"] == 10000 and limit["direction"] == "egress", limit
    js("network", "qos", "rule", "create", "--type", "dscp-marking", "--dscp-mark", "26", pid)
    twice = js("network", "qos", "rule", "create", "--type", "bandwidth-limit", "--max-kbps", "5", "--egress", pid, expect_fail=True)
    assert twice.returncode != 0, twice
    bad = js("network", "qos", "rule", "create", "--type", "dscp-marking", "--dscp-mark", "13", pid, expect_fail=True)
    assert bad.returncode != 0, bad
    rules = js("network", "qos", "rule", "list", pid)
    assert sorted(r["Type"] for r in rules) == ["bandwidth_limit", "dscp_marking"], rules
    osc("network", "qos", "rule", "set", "--max-kbps", "20000", pid, limit["id"])
    assert js("network", "qos", "rule", "show", pid, limit["id"])["max_kbps"] == 20000

    # No driver enforces QoS here, and the rule type list says so; --all-rules lists the API's types.
    assert js("network", "qos", "rule", "type", "list") == []
    every = {t["Type"] for t in js("network", "qos", "rule", "type", "list", "--all-rules")}
    assert {"bandwidth_limit", "dscp_marking", "minimum_bandwidth"} <= every, every

    osc("network", "qos", "policy", "set", "--name", name + "-2", "--share", pid)
    shown = js("network", "qos", "policy", "show", pid)
    assert shown["name"] == name + "-2" and shown["shared"] is True, shown

    _, network, _ = routing_networks(osc, "172.33.0.0/24", "10.63.0.0/24")
    port = osc("port", "create", unique("qos-port"), "--network", network)["id"]
    osc("port", "set", "--qos-policy", pid, port)
    assert osc("port", "show", port)["qos_policy_id"] == pid
    in_use = osc("network", "qos", "policy", "delete", pid, expect_fail=True)
    assert in_use.returncode != 0, in_use
    osc("port", "unset", "--qos-policy", port)
    assert osc("port", "show", port)["qos_policy_id"] is None
    osc("network", "set", "--qos-policy", pid, network)
    assert osc("network", "show", network)["qos_policy_id"] == pid
    osc("network", "set", "--no-qos-policy", network)
    osc("network", "qos", "rule", "delete", pid, limit["id"])
    osc("network", "qos", "policy", "delete", pid)
    assert pid not in [p["ID"] for p in js("network", "qos", "policy", "list")]
    osc("port", "delete", port)


def test_trunks(osc):
    _, network, _ = routing_networks(osc, "172.34.0.0/24", "10.64.0.0/24")
    parent, child, other = (osc("port", "create", unique(n), "--network", network)["id"] for n in ("parent", "child", "other"))
    name = unique("trunk")
    trunk = osc("network", "trunk", "create", name, "--parent-port", parent,
                "--subport", f"port={child},segmentation-type=vlan,segmentation-id=100")
    assert trunk["status"] == "DOWN", trunk
    assert name in [t["Name"] for t in osc("network", "trunk", "list")]
    osc("network", "trunk", "set", name, "--subport", f"port={other},segmentation-type=vlan,segmentation-id=101")
    subports = osc("network", "trunk", "show", name)["sub_ports"]
    assert sorted(s["segmentation_id"] for s in subports) == [100, 101], subports
    assert osc("port", "show", parent)["trunk_details"]["trunk_id"] == trunk["id"]
    clash = osc("network", "trunk", "set", name, "--subport", f"port={parent},segmentation-type=vlan,segmentation-id=102", expect_fail=True)
    assert clash.returncode != 0, clash
    busy = osc("port", "delete", child, expect_fail=True)
    assert "subport" in busy.stderr, busy.stderr
    osc("network", "trunk", "unset", name, "--subport", other)
    assert [s["port_id"] for s in osc("network", "trunk", "show", name)["sub_ports"]] == [child]
    osc("network", "trunk", "delete", name)
    osc("port", "delete", parent, child, other)


def test_floating_ip_port_forwardings(osc):
    js = json_of(osc)
    external, network, subnet = routing_networks(osc, "172.35.0.0/24", "10.65.0.0/24")
    router = osc("router", "create", unique("router"), "--external-gateway", external)["id"]
    osc("router", "add", "subnet", router, subnet)
    port = osc("port", "create", unique("server"), "--network", network)
    fixed = port["fixed_ips"][0]["ip_address"]
    floating = osc("floating", "ip", "create", external)["id"]

    forwarding = js("floating", "ip", "port", "forwarding", "create", "--internal-ip-address", fixed, "--port", port["id"],
                     "--internal-protocol-port", "22", "--external-protocol-port", "2222", "--protocol", "tcp", floating)
    assert forwarding["external_port"] == 2222 and forwarding["internal_port"] == 22, forwarding
    twice = js("floating", "ip", "port", "forwarding", "create", "--internal-ip-address", fixed, "--port", port["id"],
                "--internal-protocol-port", "23", "--external-protocol-port", "2222", "--protocol", "tcp", floating, expect_fail=True)
    assert "duplicate" in twice.stderr, twice.stderr
    listed = js("floating", "ip", "port", "forwarding", "list", floating)
    assert [f["ID"] for f in listed] == [forwarding["id"]], listed
    whole = osc("floating", "ip", "set", "--port", port["id"], floating, expect_fail=True)
    assert whole.returncode != 0, whole
    osc("floating", "ip", "port", "forwarding", "delete", floating, forwarding["id"])
    assert js("floating", "ip", "port", "forwarding", "list", floating) == []

    osc("floating", "ip", "delete", floating)
    osc("port", "delete", port["id"])
    osc("router", "remove", "subnet", router, subnet)
    osc("router", "delete", router)


def test_metering_conntrack_helpers_local_ips_and_flavors(osc):
    js = json_of(osc)
    label = js("network", "meter", "create", unique("meter"), "--description", "web traffic")
    rule = js("network", "meter", "rule", "create", "--remote-ip-prefix", "10.66.0.0/24", "--ingress", label["id"])
    assert rule["metering_label_id"] == label["id"] and rule["is_excluded"] is False, rule
    osc("network", "meter", "rule", "delete", rule["id"])
    osc("network", "meter", "delete", label["id"])

    router = osc("router", "create", unique("router"))["id"]
    helper = js("network", "l3", "conntrack", "helper", "create", "--helper", "ftp", "--protocol", "tcp", "--port", "21", router)
    assert helper["port"] == 21, helper
    assert [h["ID"] for h in js("network", "l3", "conntrack", "helper", "list", router)] == [helper["id"]]
    osc("network", "l3", "conntrack", "helper", "delete", router, helper["id"])
    osc("router", "delete", router)

    _, network, _ = routing_networks(osc, "172.36.0.0/24", "10.66.0.0/24")
    local = osc("local", "ip", "create", "--network", network, "--local-ip-address", "10.66.0.53")
    assert local["local_ip_address"] == "10.66.0.53", local
    osc("local", "ip", "delete", local["id"])

    flavor = js("network", "flavor", "create", unique("flavor"), "--service-type", "L3_ROUTER_NAT")
    profile = js("network", "flavor", "profile", "create", "--metainfo", '{"tier": 1}')
    osc("network", "flavor", "add", "profile", flavor["id"], profile["id"])
    assert js("network", "flavor", "show", flavor["id"])["service_profile_ids"] == [profile["id"]]
    osc("network", "flavor", "remove", "profile", flavor["id"], profile["id"])
    osc("network", "flavor", "profile", "delete", profile["id"])
    osc("network", "flavor", "delete", flavor["id"])
