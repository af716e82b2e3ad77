"""Glance's metadata definitions (metadefs) through the unmodified `openstack image metadef` CLI."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Nimbus, unique


def test_seeded_namespaces_and_resource_types(osc):
    names = [n["namespace"] for n in osc("image", "metadef", "namespace", "list")]
    for expected in ("OS::Compute::Quota", "OS::Compute::Libvirt", "OS::Compute::Hypervisor", "OS::Compute::Watchdog",
                     "OS::Compute::RandomNumberGenerator", "OS::Compute::InstanceData", "OS::Compute::VirtCPUTopology",
                     "OS::Compute::GuestShutdownBehavior", "OS::Compute::LibvirtImage"):
        assert expected in names, names
    flavor_only = [n["namespace"] for n in osc("image", "metadef", "namespace", "list", "--resource-types", "OS::Nova::Aggregate")]
    assert "OS::Compute::AggregateDiskFilter" in flavor_only and "OS::Compute::Hypervisor" not in flavor_only

    shown = osc("image", "metadef", "namespace", "show", "OS::Compute::Watchdog")
    assert shown["namespace"] == "OS::Compute::Watchdog"
    assert shown["protected"] is True or shown["protected"] == "True", shown
    properties = [p["name"] for p in osc("image", "metadef", "property", "list", "OS::Compute::Watchdog")]
    assert properties == ["watchdog_action"], properties

    types = [t["Name"] for t in osc("image", "metadef", "resource", "type", "list")]
    assert {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"} <= set(types), types
    associations = osc("image", "metadef", "resource", "type", "association", "list", "OS::Compute::VirtCPUTopology")
    assert {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"} <= {a["Name"] for a in associations}, associations

    # A protected namespace cannot be deleted.
    refused = osc("image", "metadef", "namespace", "delete", "OS::Compute::Watchdog", expect_fail=True)
    assert "protected" in refused.stderr or "403" in refused.stderr or "Failed" in refused.stderr, refused.stderr
    assert "OS::Compute::Watchdog" in [n["namespace"] for n in osc("image", "metadef", "namespace", "list")]


def test_namespace_property_object_lifecycle(osc, nimbus: Nimbus):
    name = unique("Nimbus::CLI")
    created = osc("image", "metadef", "namespace", "create", name, "--display-name", "CLI test", "--description", "made by the CLI",
                  "--public", "--protected")
    assert created["namespace"] == name and created["visibility"] == "public"
    assert name in [n["namespace"] for n in osc("image", "metadef", "namespace", "list")]

    osc("image", "metadef", "namespace", "set", name, "--description", "changed", "--private", "--unprotected")
    shown = osc("image", "metadef", "namespace", "show", name)
    assert shown["description"] == "changed" and shown["visibility"] == "private", shown
    raw = nimbus.http("GET", f"/image/v2/metadefs/namespaces/{name}", token=nimbus.admin_token()).json()
    assert raw["protected"] is False, raw

    prop = osc("image", "metadef", "property", "create", name, "--name", "hw_speed", "--title", "Speed", "--type", "integer",
               "--schema", json.dumps({"minimum": 1, "maximum": 10, "description": "how fast"}))
    assert prop["name"] == "hw_speed", prop
    listed = osc("image", "metadef", "property", "list", name)
    assert [p["name"] for p in listed] == ["hw_speed"], listed
    osc("image", "metadef", "property", "set", name, "hw_speed", "--title", "Velocity")
    shown_prop = osc("image", "metadef", "property", "show", name, "hw_speed")
    assert shown_prop["title"] == "Velocity" and shown_prop["maximum"] == 10, shown_prop
    osc("image", "metadef", "property", "delete", name, "hw_speed")
    assert osc("image", "metadef", "property", "list", name) == []
    osc("image", "metadef", "property", "show", name, "hw_speed", expect_fail=True)

    obj = osc("image", "metadef", "object", "create", "--namespace", name, "Disk")
    assert obj["name"] == "Disk", obj
    assert [o["name"] for o in osc("image", "metadef", "object", "list", name)] == ["Disk"]
    assert osc("image", "metadef", "object", "show", name, "Disk")["name"] == "Disk"

    osc("image", "metadef", "resource", "type", "association", "create", name, "OS::Nova::Flavor")
    assert [a["Name"] for a in osc("image", "metadef", "resource", "type", "association", "list", name)] == ["OS::Nova::Flavor"]
    filtered = [n["namespace"] for n in osc("image", "metadef", "namespace", "list", "--resource-types", "OS::Nova::Flavor")]
    assert name in filtered
    osc("image", "metadef", "resource", "type", "association", "delete", name, "OS::Nova::Flavor")
    assert osc("image", "metadef", "resource", "type", "association", "list", name) == []

    osc("image", "metadef", "namespace", "delete", name)
    assert name not in [n["namespace"] for n in osc("image", "metadef", "namespace", "list")]
    osc("image", "metadef", "namespace", "show", name, expect_fail=True)


def test_members_read_but_do_not_write(osc, nimbus: Nimbus, tmp_path: Path):
    project = osc("project", "create", unique("mdproj"))
    password = "Pw-" + unique("x")
    user = osc("user", "create", unique("mduser"), "--password", password)
    osc("role", "add", "--user", user["id"], "--project", project["id"], "member")
    env = nimbus.password_cloud(tmp_path / "member.yaml", user["name"], password, project=project["name"])
    hidden = unique("Nimbus::Hidden")
    osc("image", "metadef", "namespace", "create", hidden, "--private")

    seen = [n["namespace"] for n in osc("image", "metadef", "namespace", "list", env=env)]
    assert "OS::Compute::Quota" in seen and hidden not in seen
    refused = osc("image", "metadef", "namespace", "create", unique("Nimbus::Member"), env=env, expect_fail=True)
    assert "403" in refused.stderr or "Forbidden" in refused.stderr or "not authorized" in refused.stderr, refused.stderr
    osc("image", "metadef", "namespace", "delete", hidden)
