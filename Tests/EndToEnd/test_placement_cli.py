"""The placement service through the unmodified `openstack` CLI with osc-placement."""

from __future__ import annotations

import uuid

from conftest import Nimbus, unique


def test_provider_inventory_traits_candidates_usage(osc, nimbus: Nimbus):
    name = unique("cn")
    created = osc("resource", "provider", "create", name)
    assert created["name"] == name and created["generation"] == 0
    assert created["root_provider_uuid"] == created["uuid"] and created["parent_provider_uuid"] is None
    rp = created["uuid"]

    child = osc("resource", "provider", "create", unique("numa"), "--parent-provider", rp)
    assert child["parent_provider_uuid"] == rp and child["root_provider_uuid"] == rp

    listed = osc("resource", "provider", "list")
    assert rp in [p["uuid"] for p in listed]
    assert [p["uuid"] for p in osc("resource", "provider", "list", "--name", name)] == [rp]
    assert {p["uuid"] for p in osc("resource", "provider", "list", "--in-tree", child["uuid"])} == {rp, child["uuid"]}
    assert osc("resource", "provider", "show", rp)["name"] == name

    renamed = unique("cn-renamed")
    shown = osc("resource", "provider", "set", rp, "--name", renamed, fmt="json")
    assert shown["name"] == renamed and shown["uuid"] == rp

    inventory = osc("resource", "provider", "inventory", "set", rp,
                    "--resource", "VCPU=8", "--resource", "VCPU:allocation_ratio=16",
                    "--resource", "MEMORY_MB=8192", "--resource", "MEMORY_MB:reserved=512", fmt="json")
    by_class = {row["resource_class"]: row for row in inventory}
    assert by_class["VCPU"]["total"] == 8 and by_class["VCPU"]["allocation_ratio"] == 16.0
    assert by_class["MEMORY_MB"]["reserved"] == 512 and by_class["MEMORY_MB"]["max_unit"] == 2147483647
    rows = {row["resource_class"]: row for row in osc("resource", "provider", "inventory", "list", rp, fmt="json")}
    assert set(rows) == {"VCPU", "MEMORY_MB"}
    assert rows["VCPU"]["used"] == 0 and rows["MEMORY_MB"]["used"] == 0
    # Real placement prints the ratio as a float.
    assert "16.0" in osc("resource", "provider", "inventory", "list", rp, fmt="value")

    custom_class = "CUSTOM_" + unique("GOLD").upper().replace("-", "_")
    osc("resource", "class", "create", custom_class, fmt=None)
    classes = [c["name"] for c in osc("resource", "class", "list")]
    assert classes[:3] == ["VCPU", "MEMORY_MB", "DISK_GB"] and custom_class in classes

    custom_trait = "CUSTOM_" + unique("FAST").upper().replace("-", "_")
    osc("trait", "create", custom_trait, fmt=None)
    traits = [t["name"] for t in osc("trait", "list")]
    assert custom_trait in traits and "COMPUTE_NODE" in traits and "HW_CPU_X86_AVX2" in traits
    assert [t["name"] for t in osc("trait", "list", "--name", f"in:{custom_trait}")] == [custom_trait]
    set_traits = osc("resource", "provider", "trait", "set", rp, "--trait", custom_trait, "--trait", "COMPUTE_NODE", fmt="json")
    assert sorted(t["name"] for t in set_traits) == sorted([custom_trait, "COMPUTE_NODE"])
    assert sorted(t["name"] for t in osc("resource", "provider", "trait", "list", rp, fmt="json")) == sorted([custom_trait, "COMPUTE_NODE"])
    assert custom_trait in [t["name"] for t in osc("trait", "list", "--associated")]

    candidates = osc("allocation", "candidate", "list", "--resource", "VCPU=1", "--required", custom_trait)
    assert [c["resource provider"] for c in candidates] == [rp]
    assert candidates[0]["allocation"] == "VCPU=1"
    assert "VCPU=0/128" in candidates[0]["inventory used/capacity"]
    assert custom_trait in candidates[0]["traits"]
    limited = osc("allocation", "candidate", "list", "--resource", "VCPU=1", "--limit", "1")
    assert len(limited) == 1

    consumer = str(uuid.uuid4())
    project = str(uuid.uuid4())
    allocated = osc("resource", "provider", "allocation", "set", consumer, "--allocation", f"rp={rp},VCPU=2,MEMORY_MB=1024",
                    "--project-id", project, "--user-id", str(uuid.uuid4()), fmt="json")
    assert allocated[0]["resource_provider"] == rp and allocated[0]["resources"] == {"VCPU": 2, "MEMORY_MB": 1024}
    usage = {row["resource_class"]: row["usage"] for row in osc("resource", "provider", "usage", "show", rp, fmt="json")}
    assert usage == {"VCPU": 2, "MEMORY_MB": 1024}
    project_usage = {row["resource_class"]: row["usage"] for row in osc("resource", "usage", "show", project)}
    assert project_usage == {"VCPU": 2, "MEMORY_MB": 1024}
    rows = {row["resource_class"]: row for row in osc("resource", "provider", "inventory", "list", rp, fmt="json")}
    assert rows["VCPU"]["used"] == 2

    # A parent, or a provider with allocations, cannot go; the message is placement's.
    refused = osc("resource", "provider", "delete", rp, expect_fail=True)
    assert "It has child resource providers" in refused.stderr
    osc("resource", "provider", "delete", child["uuid"])
    refused = osc("resource", "provider", "delete", rp, expect_fail=True)
    assert "Resource provider has allocations" in refused.stderr
    osc("resource", "provider", "allocation", "delete", consumer)
    osc("resource", "provider", "delete", rp)
    assert rp not in [p["uuid"] for p in osc("resource", "provider", "list")]


def test_generation_conflict_and_duplicate_name(osc):
    name = unique("dup")
    osc("resource", "provider", "create", name)
    failed = osc("resource", "provider", "create", name, expect_fail=True)
    assert "Conflicting resource provider name" in failed.stderr + failed.stdout
