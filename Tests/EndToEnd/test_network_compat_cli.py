"""Neutron's sharing and operator routes through the unmodified `openstack` CLI: RBAC policies
between two projects with their own users, IP availability, address scopes, security group tags
and moving a network between DHCP agents."""

from __future__ import annotations

from pathlib import Path

from conftest import Nimbus, unique


def _project_user(osc, nimbus: Nimbus, path: Path, name: str) -> tuple[str, dict[str, str]]:
    """A new project with a member user of its own; its id and the env for osc(cloud=name)."""
    project = osc("project", "create", unique(name))["id"]
    user, password = unique(name), "secret-" + name
    osc("user", "create", user, "--password", password)
    osc("role", "add", "--project", project, "--user", user, "member", fmt=None)
    env = nimbus.password_cloud(path / f"{name}.yaml", user, password, project=project, name=name)
    # password_cloud names projects by name; this one is asked for by id.
    nimbus.write_clouds_yaml(path / f"{name}.yaml", {name: {"auth_type": "password", "auth": {
        "username": user, "password": password, "user_domain_name": "Default", "project_id": project}}})
    return project, env


def test_rbac_shares_a_network_with_one_project(osc, nimbus: Nimbus, tmp_path: Path):
    alice, as_alice = _project_user(osc, nimbus, tmp_path, "alice")
    bob, as_bob = _project_user(osc, nimbus, tmp_path, "bob")
    carol, as_carol = _project_user(osc, nimbus, tmp_path, "carol")

    def alice_osc(*args, **kw):
        return osc(*args, cloud="alice", env=as_alice, **kw)

    def bob_osc(*args, **kw):
        return osc(*args, cloud="bob", env=as_bob, **kw)

    net = alice_osc("network", "create", unique("net"))["id"]
    alice_osc("subnet", "create", unique("sub"), "--network", net, "--subnet-range", "10.70.0.0/24")
    assert net not in [n["ID"] for n in bob_osc("network", "list")]

    policy = alice_osc("network", "rbac", "create", "--target-project", bob, "--action", "access_as_shared",
                       "--type", "network", net)
    assert policy["target_project_id"] == bob and policy["object_id"] == net and policy["project_id"] == alice
    assert policy["id"] in [p["ID"] for p in alice_osc("network", "rbac", "list")]
    assert alice_osc("network", "rbac", "show", policy["id"])["action"] == "access_as_shared"
    assert bob_osc("network", "rbac", "list") == []

    # Bob (and only Bob) sees the network, shared for him, and plugs a port into it.
    assert net in [n["ID"] for n in bob_osc("network", "list")]
    assert bob_osc("network", "show", net)["shared"] is True
    assert net not in [n["ID"] for n in osc("network", "list", cloud="carol", env=as_carol)]
    port = bob_osc("port", "create", unique("port"), "--network", net)
    assert port["fixed_ips"][0]["ip_address"].startswith("10.70.0.")
    failed = osc("port", "create", unique("port"), "--network", net, cloud="carol", env=as_carol, expect_fail=True)
    assert "not found" in failed.stderr.lower() or "no network" in failed.stderr.lower(), failed.stderr

    # In use by Bob's port, the policy neither goes nor moves.
    failed = alice_osc("network", "rbac", "delete", policy["id"], fmt=None, expect_fail=True)
    assert "depend" in failed.stderr or "409" in failed.stderr, failed.stderr
    bob_osc("port", "delete", port["id"], fmt=None)
    alice_osc("network", "rbac", "set", "--target-project", carol, policy["id"], fmt=None)
    assert alice_osc("network", "rbac", "show", policy["id"])["target_project_id"] == carol
    assert net not in [n["ID"] for n in bob_osc("network", "list")]
    assert net in [n["ID"] for n in osc("network", "list", cloud="carol", env=as_carol)]

    alice_osc("network", "rbac", "delete", policy["id"], fmt=None)
    assert net not in [n["ID"] for n in osc("network", "list", cloud="carol", env=as_carol)]
    assert alice_osc("network", "rbac", "list") == []
    alice_osc("network", "delete", net, fmt=None)


def test_ip_availability_address_scopes_and_security_group_tags(osc):
    net = osc("network", "create", unique("net"))["id"]
    subnet = osc("subnet", "create", unique("sub"), "--network", net, "--subnet-range", "10.71.0.0/24",
                 "--allocation-pool", "start=10.71.0.10,end=10.71.0.29")["id"]
    osc("port", "create", unique("port"), "--network", net)
    listed = {a["Network ID"]: a for a in osc("ip", "availability", "list")}
    assert listed[net]["Total IPs"] == 20, listed[net]
    shown = osc("ip", "availability", "show", net)
    # The DHCP port may or may not have been made yet; the test's port always is.
    assert shown["total_ips"] == 20 and shown["used_ips"] >= 1, shown
    assert shown["subnet_ip_availability"][0]["subnet_id"] == subnet, shown

    scope = osc("address", "scope", "create", unique("scope"), "--ip-version", "4")
    assert scope["ip_version"] == 4 and scope["shared"] is False
    pool = osc("subnet", "pool", "create", unique("pool"), "--pool-prefix", "10.72.0.0/16", "--address-scope", scope["id"])
    assert pool["address_scope_id"] == scope["id"]
    clash = osc("subnet", "pool", "create", unique("pool"), "--pool-prefix", "10.72.5.0/24", "--address-scope", scope["id"],
                expect_fail=True)
    assert "unique prefixes" in clash.stderr, clash.stderr
    assert scope["id"] in [s["ID"] for s in osc("address", "scope", "list")]
    failed = osc("address", "scope", "delete", scope["id"], fmt=None, expect_fail=True)
    assert "in use" in failed.stderr, failed.stderr
    osc("subnet", "pool", "delete", pool["id"], fmt=None)
    osc("address", "scope", "delete", scope["id"], fmt=None)

    group = osc("security", "group", "create", unique("sg"))["id"]
    osc("security", "group", "set", "--tag", "web", "--tag", "prod", group, fmt=None)
    assert sorted(osc("security", "group", "show", group)["tags"]) == ["prod", "web"]
    assert group in [g["ID"] for g in osc("security", "group", "list", "--tags", "web")]
    osc("security", "group", "unset", "--tag", "prod", group, fmt=None)
    assert osc("security", "group", "show", group)["tags"] == ["web"]
    osc("security", "group", "delete", group, fmt=None)


def test_network_agent_add_and_remove_network(osc):
    net = osc("network", "create", unique("net"))["id"]
    osc("subnet", "create", unique("sub"), "--network", net, "--subnet-range", "10.73.0.0/24")
    agents = osc("network", "agent", "list", "--agent-type", "dhcp")
    assert agents, "the cloud reports a DHCP agent"
    agent = agents[0]["ID"]
    hosting = [a["ID"] for a in osc("network", "agent", "list", "--network", net)]
    if agent in hosting:
        osc("network", "agent", "remove", "network", "--dhcp", agent, net, fmt=None)
    osc("network", "agent", "add", "network", "--dhcp", agent, net, fmt=None)
    assert [a["ID"] for a in osc("network", "agent", "list", "--network", net)] == [agent]
    # A second add is Neutron's 409, which this CLI reports by exiting 0 without a word (it
    # makes its CommandError without raising it); the network stays on the one agent.
    osc("network", "agent", "add", "network", "--dhcp", agent, net, fmt=None)
    assert [a["ID"] for a in osc("network", "agent", "list", "--network", net)] == [agent]
    osc("network", "agent", "remove", "network", "--dhcp", agent, net, fmt=None)
    assert agent not in [a["ID"] for a in osc("network", "agent", "list", "--network", net)]
    osc("network", "delete", net, fmt=None)
