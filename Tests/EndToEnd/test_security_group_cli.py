"""Security groups, their rules and the networking agents through the unmodified `openstack` CLI."""

from __future__ import annotations

import time

from conftest import Nimbus, unique


def rule(osc, *args, **kwargs):
    """`openstack security group rule ...` as JSON: conftest only sees the verb within the first three words."""
    return osc("security", "group", "rule", *args, fmt="json", **kwargs)


def test_security_group_lifecycle(osc, nimbus: Nimbus):
    name = unique("sg")
    created = osc("security", "group", "create", name, "--description", "web tier")
    assert created["name"] == name and created["description"] == "web tier"
    group = created["id"]
    rules = created["rules"] if isinstance(created["rules"], list) else str(created["rules"])
    assert "egress" in str(rules) and "ingress" not in str(rules)

    listed = osc("security", "group", "list")
    names = {g["Name"] for g in listed}
    assert name in names and "default" in names
    assert osc("security", "group", "show", name)["id"] == group

    renamed = unique("sg-renamed")
    osc("security", "group", "set", group, "--name", renamed, "--description", "still web")
    shown = osc("security", "group", "show", group)
    assert shown["name"] == renamed and shown["description"] == "still web"

    peer = osc("security", "group", "create", unique("sg-peer"))["id"]
    icmp = rule(osc, "create", "--protocol", "icmp", group)
    assert icmp["protocol"] == "icmp" and icmp["direction"] == "ingress" and icmp["ether_type"] == "IPv4"
    ssh = rule(osc, "create", "--protocol", "tcp", "--dst-port", "22:22", "--remote-ip", "10.0.0.0/8", group)
    assert ssh["port_range_min"] == 22 and ssh["port_range_max"] == 22 and ssh["remote_ip_prefix"] == "10.0.0.0/8"
    from_peer = rule(osc, "create", "--protocol", "tcp", "--dst-port", "5432", "--remote-group", peer, group)
    assert from_peer["remote_group_id"] == peer

    duplicate = rule(osc, "create", "--protocol", "tcp", "--dst-port", "22:22", "--remote-ip", "10.0.0.0/8", group,
                    expect_fail=True)
    assert "already exists" in duplicate.stderr

    rule_ids = {r["ID"] for r in rule(osc, "list", group)}
    assert {icmp["id"], ssh["id"], from_peer["id"]} <= rule_ids and len(rule_ids) == 5
    assert ssh["id"] in {r["ID"] for r in rule(osc, "list", "--protocol", "tcp")}
    assert rule(osc, "show", ssh["id"])["security_group_id"] == group

    osc("security", "group", "rule", "delete", ssh["id"])
    assert ssh["id"] not in {r["ID"] for r in rule(osc, "list", group)}
    osc("security", "group", "delete", group, peer)
    assert not {group, peer} & {g["ID"] for g in osc("security", "group", "list")}
    missing = osc("security", "group", "show", group, expect_fail=True)
    assert "No SecurityGroup found" in missing.stderr or "could not be found" in missing.stderr.lower() or "does not exist" in missing.stderr


def test_network_agents(osc, nimbus: Nimbus):
    # The controller reports its DHCP, L3 and metadata agents; each fake compute host its Linux bridge agent.
    deadline = time.monotonic() + 30
    while True:
        agents = osc("network", "agent", "list")
        types = {a["Agent Type"] for a in agents}
        if {"DHCP agent", "L3 agent", "Metadata agent", "Linux bridge agent"} <= types or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {"DHCP agent", "L3 agent", "Metadata agent", "Linux bridge agent"} <= types, agents
    assert {"fake-1", "fake-2"} <= {a["Host"] for a in agents if a["Agent Type"] == "Linux bridge agent"}
    # The table shows liveness and state as the CLI draws them for people.
    table = osc("network", "agent", "list", "-c", "Alive", "-c", "State", fmt="table")
    assert ":-)" in table and "UP" in table and "XXX" not in table and "DOWN" not in table

    bridge = next(a for a in agents if a["Agent Type"] == "Linux bridge agent")
    shown = osc("network", "agent", "show", bridge["ID"])
    assert shown["binary"] == "neutron-linuxbridge-agent" and shown["host"] == bridge["Host"]
    osc("network", "agent", "set", "--disable", "--description", "draining", bridge["ID"])
    shown = osc("network", "agent", "show", bridge["ID"])
    assert shown["description"] == "draining" and shown["admin_state_up"] is False
    assert "DOWN" in osc("network", "agent", "show", bridge["ID"], "-c", "admin_state_up", fmt="table")
    osc("network", "agent", "set", "--enable", bridge["ID"])
    assert osc("network", "agent", "show", bridge["ID"])["admin_state_up"] is True
