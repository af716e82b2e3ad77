"""Network segments and network segment ranges through the unmodified `openstack` CLI:
segments added to, renamed on and deleted from a network, and a project's private range
that its networks take their VXLAN ids from, while another project's networks do not."""

from __future__ import annotations

from conftest import unique


def json_of(osc):
    """osc with `-f json`, for commands whose verb comes after the third word
    (`network segment range create`), which the fixture's verb check does not see."""
    return lambda *args, **kwargs: osc(*args, fmt="json", **kwargs)


def test_segments_create_set_delete(osc):
    js = json_of(osc)
    network = osc("network", "create", unique("segmented"), "--provider-network-type", "vlan",
                  "--provider-physical-network", "physnet1", "--provider-segment", "3001")
    nid = network["id"]
    first = js("network", "segment", "list", "--network", nid)
    assert [s["Network Type"] for s in first] == ["vlan"], first

    name = unique("seg")
    segment = js("network", "segment", "create", name, "--network", nid, "--network-type", "vlan",
                 "--physical-network", "physnet1", "--segment", "3002", "--description", "second")
    assert segment["segmentation_id"] == 3002 and segment["network_id"] == nid, segment
    taken = js("network", "segment", "create", unique("dup"), "--network", nid, "--network-type", "vlan",
               "--physical-network", "physnet1", "--segment", "3002", expect_fail=True)
    assert "3002" in taken.stderr, taken.stderr

    shown = osc("network", "show", nid)
    assert [s["provider:segmentation_id"] for s in shown["segments"]] == [3001, 3002], shown

    osc("network", "segment", "set", "--name", name + "-2", "--description", "renamed", segment["id"])
    again = js("network", "segment", "show", segment["id"])
    assert again["name"] == name + "-2" and again["description"] == "renamed", again

    # The segment the network's ports bind to stays while they exist.
    port = osc("port", "create", unique("seg-port"), "--network", nid)["id"]
    bound = osc("network", "segment", "delete", first[0]["ID"], expect_fail=True)
    assert "still bound" in bound.stderr, bound.stderr
    osc("network", "segment", "delete", segment["id"])
    assert [s["ID"] for s in js("network", "segment", "list", "--network", nid)] == [first[0]["ID"]]
    assert osc("network", "show", nid)["provider:segmentation_id"] == 3001
    osc("port", "delete", port)
    osc("network", "delete", nid)


def test_segment_ranges_feed_project_networks(osc):
    js = json_of(osc)
    project = osc("project", "create", unique("ranged"))["id"]
    other = osc("project", "create", unique("unranged"))["id"]
    defaults = js("network", "segment", "range", "list", "--long")
    assert any(r["Default"] and r["Network Type"] == "vxlan" for r in defaults), defaults

    name = unique("range")
    created = js("network", "segment", "range", "create", name, "--private", "--project", project,
                 "--network-type", "vxlan", "--minimum", "990", "--maximum", "995")
    rid = created["id"]
    assert created["project_id"] == project and created["shared"] is False and created["default"] is False, created
    overlapping = js("network", "segment", "range", "create", unique("overlap"), "--share",
                     "--network-type", "vxlan", "--minimum", "995", "--maximum", "999", expect_fail=True)
    assert "overlaps" in overlapping.stderr, overlapping.stderr

    mine = osc("network", "create", unique("in-range"), "--project", project)["id"]
    theirs = osc("network", "create", unique("out-of-range"), "--project", other)["id"]
    assert osc("network", "show", mine)["provider:segmentation_id"] == 990
    assert not 990 <= osc("network", "show", theirs)["provider:segmentation_id"] <= 995

    shown = js("network", "segment", "range", "show", rid)
    assert shown["name"] == name and shown["minimum"] == 990 and shown["maximum"] == 995, shown
    assert "990" in str(shown["used"]) and project in str(shown["used"]), shown
    assert rid in [r["ID"] for r in js("network", "segment", "range", "list")]

    # Ids in use keep the range: it can neither lose them nor go; it can grow and be renamed.
    shrink = osc("network", "segment", "range", "set", "--minimum", "991", "--maximum", "995", rid, expect_fail=True)
    assert "referenced" in shrink.stderr, shrink.stderr
    held = osc("network", "segment", "range", "delete", rid, expect_fail=True)
    assert "referenced" in held.stderr, held.stderr
    osc("network", "segment", "range", "set", "--name", name + "-2", "--minimum", "990", "--maximum", "997", rid)
    grown = js("network", "segment", "range", "show", rid)
    assert grown["name"] == name + "-2" and grown["maximum"] == 997, grown

    default_id = next(r["ID"] for r in defaults if r["Default"] and r["Network Type"] == "vxlan")
    read_only = osc("network", "segment", "range", "delete", default_id, expect_fail=True)
    assert "default segment range" in read_only.stderr, read_only.stderr

    osc("network", "delete", mine, theirs)
    osc("network", "segment", "range", "delete", rid)
    assert rid not in [r["ID"] for r in js("network", "segment", "range", "list")]
    osc("project", "delete", project, other)
