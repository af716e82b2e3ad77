"""Glance's metadata definitions (metadefs) through the unmodified `openstack image metadef` CLI."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Nimbus, unique


def metadef(osc, *args: str, **kwargs):
    """`openstack image metadef ARGS`, parsed as JSON when the command prints a table.

    conftest's osc judges that from the first three words, which here are always
    `image metadef <noun>`, so the verb is looked for further along.
    """
    words = []
    for a in args:
        if a.startswith("-"):
            break
        words.append(a)
    table = any(w in ("create", "list", "show") for w in words[:4])
    return osc("image", "metadef", *args, fmt="json" if table else None, **kwargs)


def test_seeded_namespaces_and_resource_types(osc):
    names = [n["namespace"] for n in metadef(osc, "namespace", "list")]
    for expected in ("OS::Compute::Quota", "OS::Compute::Libvirt", "OS::Compute::Hypervisor", "OS::Compute::Watchdog",
                     "OS::Compute::RandomNumberGenerator", "OS::Compute::InstanceData", "OS::Compute::VirtCPUTopology",
                     "OS::Compute::GuestShutdownBehavior", "OS::Compute::LibvirtImage"):
        assert expected in names, names
    flavor_only = [n["namespace"] for n in metadef(osc, "namespace", "list", "--resource-types", "OS::Nova::Aggregate")]
    assert "OS::Compute::AggregateDiskFilter" in flavor_only and "OS::Compute::Hypervisor" not in flavor_only

    shown = metadef(osc, "namespace", "show", "OS::Compute::Watchdog")
    assert shown["namespace"] == "OS::Compute::Watchdog"
    assert shown["protected"] is True or shown["protected"] == "True", shown
    properties = [p["name"] for p in metadef(osc, "property", "list", "OS::Compute::Watchdog")]
    assert properties == ["watchdog_action"], properties

    types = [t["Name"] for t in metadef(osc, "resource", "type", "list")]
    assert {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"} <= set(types), types
    associations = metadef(osc, "resource", "type", "association", "list", "OS::Compute::VirtCPUTopology")
    assert {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"} <= {a["Name"] for a in associations}, associations

    # A protected namespace cannot be deleted.
    refused = metadef(osc, "namespace", "delete", "OS::Compute::Watchdog", expect_fail=True)
    assert "protected" in refused.stderr or "403" in refused.stderr or "Failed" in refused.stderr, refused.stderr
    assert "OS::Compute::Watchdog" in [n["namespace"] for n in metadef(osc, "namespace", "list")]


def test_namespace_property_object_lifecycle(osc, nimbus: Nimbus):
    name = unique("Nimbus::CLI")
    created = metadef(osc, "namespace", "create", name, "--display-name", "CLI test", "--description", "made by the CLI",
                  "--public", "--protected")
    assert created["namespace"] == name and created["visibility"] == "public"
    assert name in [n["namespace"] for n in metadef(osc, "namespace", "list")]

    metadef(osc, "namespace", "set", name, "--description", "changed", "--private", "--unprotected")
    shown = metadef(osc, "namespace", "show", name)
    assert shown["description"] == "changed" and shown["visibility"] == "private", shown
    raw = nimbus.http("GET", f"/image/v2/metadefs/namespaces/{name}", token=nimbus.admin_token()).json()
    assert raw["protected"] is False, raw

    prop = metadef(osc, "property", "create", name, "--name", "hw_speed", "--title", "Speed", "--type", "integer",
               "--schema", json.dumps({"minimum": 1, "maximum": 10, "description": "how fast"}))
    assert prop["name"] == "hw_speed", prop
    listed = metadef(osc, "property", "list", name)
    assert [p["name"] for p in listed] == ["hw_speed"], listed
    metadef(osc, "property", "set", name, "hw_speed", "--title", "Velocity")
    shown_prop = metadef(osc, "property", "show", name, "hw_speed")
    assert shown_prop["title"] == "Velocity" and shown_prop["maximum"] == 10, shown_prop
    metadef(osc, "property", "delete", name, "hw_speed")
    assert metadef(osc, "property", "list", name) == []
    metadef(osc, "property", "show", name, "hw_speed", expect_fail=True)

    obj = metadef(osc, "object", "create", "--namespace", name, "Disk")
    assert obj["name"] == "Disk", obj
    assert [o["name"] for o in metadef(osc, "object", "list", name)] == ["Disk"]
    assert metadef(osc, "object", "show", name, "Disk")["name"] == "Disk"

    metadef(osc, "resource", "type", "association", "create", name, "OS::Nova::Flavor")
    assert [a["Name"] for a in metadef(osc, "resource", "type", "association", "list", name)] == ["OS::Nova::Flavor"]
    filtered = [n["namespace"] for n in metadef(osc, "namespace", "list", "--resource-types", "OS::Nova::Flavor")]
    assert name in filtered
    metadef(osc, "resource", "type", "association", "delete", name, "OS::Nova::Flavor")
    assert metadef(osc, "resource", "type", "association", "list", name) == []

    metadef(osc, "namespace", "delete", name)
    assert name not in [n["namespace"] for n in metadef(osc, "namespace", "list")]
    metadef(osc, "namespace", "show", name, expect_fail=True)


def test_members_read_but_do_not_write(osc, nimbus: Nimbus, tmp_path: Path):
    project = osc("project", "create", unique("mdproj"))
    password = "Pw-" + unique("x")
    user = osc("user", "create", unique("mduser"), "--password", password)
    osc("role", "add", "--user", user["id"], "--project", project["id"], "member")
    env = nimbus.password_cloud(tmp_path / "member.yaml", user["name"], password, project=project["name"])
    hidden = unique("Nimbus::Hidden")
    metadef(osc, "namespace", "create", hidden, "--private")

    seen = [n["namespace"] for n in metadef(osc, "namespace", "list", cloud="test", env=env)]
    assert "OS::Compute::Quota" in seen and hidden not in seen
    refused = metadef(osc, "namespace", "create", unique("Nimbus::Member"), cloud="test", env=env, expect_fail=True)
    assert "403" in refused.stderr or "Forbidden" in refused.stderr or "not authorized" in refused.stderr, refused.stderr
    metadef(osc, "namespace", "delete", hidden)
