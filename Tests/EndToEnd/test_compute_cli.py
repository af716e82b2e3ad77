"""Compute (Nova v2.1), placement and the scheduler through the unmodified `openstack` CLI,
against `nimbus up --fake-hosts 2` (conftest): hosts fake-1 and fake-2 with the fake driver."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import Nimbus, unique
from test_image_cli import qcow2_file

@pytest.fixture(autouse=True)
def one_backend(nimbus: Nimbus):
    """The CLI layer runs once: the Swift compute tests cover both engines, and
    test_separate_processes.py drives compute on PostgreSQL end to end."""
    if nimbus.backend != "sqlite":
        pytest.skip("compute CLI tests run against the SQLite cloud only")


PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbdLLNv4eRqIjYgG1Uvvr0fMBE/gwUTJSEsTS+qlt3f e2e@nimbus"


def wait_status(osc, server: str, status: str, timeout: float = 60) -> dict:
    """Polls `server show` until the status is reached with no task under way."""
    deadline = time.monotonic() + timeout
    while True:
        shown = osc("server", "show", server)
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return shown
        assert shown["status"] != "ERROR" or status == "ERROR", shown
        assert time.monotonic() < deadline, f"{server} did not reach {status}: {shown}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def bootables(nimbus: Nimbus, tmp_path_factory) -> tuple[str, str, str]:
    """A public image and two flavors, created once per cloud."""
    osc = nimbus.osc
    image = unique("cirros")
    source = qcow2_file(tmp_path_factory.mktemp("img") / "disk.qcow2", "16M")
    osc("image", "create", "--file", str(source), "--disk-format", "qcow2", "--container-format", "bare", "--public", image)
    small, large = unique("m1.small"), unique("m1.large")
    osc("flavor", "create", "--ram", "512", "--vcpus", "1", "--disk", "1", small)
    osc("flavor", "create", "--ram", "1024", "--vcpus", "2", "--disk", "1", large)
    return image, small, large


def test_flavors_and_keypairs(osc, tmp_path: Path):
    name = unique("m1.tiny")
    created = osc("flavor", "create", "--ram", "256", "--vcpus", "1", "--disk", "0", "--property", "hw:cpu_policy=shared", name)
    assert created["name"] == name and created["ram"] == 256
    osc("flavor", "set", "--property", "quota:disk_read_bytes_sec=10240", name)
    shown = osc("flavor", "show", name)
    assert shown["properties"] == {"hw:cpu_policy": "shared", "quota:disk_read_bytes_sec": "10240"}
    assert name in [f["Name"] for f in osc("flavor", "list")]
    osc("flavor", "delete", name)
    assert name not in [f["Name"] for f in osc("flavor", "list")]

    key_file = tmp_path / "id.pub"
    key_file.write_text(PUBLIC_KEY + "\n")
    key = unique("key")
    imported = osc("keypair", "create", "--public-key", str(key_file), key)
    assert imported["name"] == key and imported["fingerprint"].count(":") == 15
    assert key in [k["Name"] for k in osc("keypair", "list")]
    osc("keypair", "delete", key)
    assert key not in [k["Name"] for k in osc("keypair", "list")]


def test_server_lifecycle_through_every_action(osc, bootables):
    image, small, large = bootables
    name = unique("vm")
    created = osc("server", "create", "--flavor", small, "--image", image, "--nic", "none", "--property", "role=web", name)
    assert created["adminPass"]
    server = wait_status(osc, name, "ACTIVE")
    assert server["properties"] == {"role": "web"}
    assert name in [s["Name"] for s in osc("server", "list")]

    for action, status in [(("stop",), "SHUTOFF"), (("start",), "ACTIVE"), (("reboot",), "ACTIVE"), (("reboot", "--hard"), "ACTIVE"),
                           (("pause",), "PAUSED"), (("unpause",), "ACTIVE"), (("suspend",), "SUSPENDED"), (("resume",), "ACTIVE"),
                           (("rescue",), "RESCUE"), (("unrescue",), "ACTIVE")]:
        osc("server", *action, name)
        wait_status(osc, name, status)

    osc("server", "lock", "--reason", "change freeze", name)
    assert osc("server", "show", name)["locked_reason"] == "change freeze"
    osc("server", "unlock", name)

    osc("server", "resize", "--flavor", large, name)
    wait_status(osc, name, "VERIFY_RESIZE")
    osc("server", "resize", "revert", name)
    assert wait_status(osc, name, "ACTIVE")["flavor"]["original_name"] == small
    osc("server", "resize", "--flavor", large, name)
    wait_status(osc, name, "VERIFY_RESIZE")
    osc("server", "resize", "confirm", name)
    assert wait_status(osc, name, "ACTIVE")["flavor"]["original_name"] == large

    host = osc("server", "show", name)["OS-EXT-SRV-ATTR:host"]
    osc("server", "migrate", name)
    wait_status(osc, name, "VERIFY_RESIZE")
    osc("server", "resize", "confirm", name)
    moved = wait_status(osc, name, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    assert moved != host
    osc("server", "migrate", "--live-migration", name)
    assert wait_status(osc, name, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == host
    migrations = osc("server", "migration", "list", "--server", name)
    assert [(m["Type"], m["Status"]) for m in migrations][:2] == [("live-migration", "completed"), ("migration", "confirmed")], migrations

    snapshot = unique("snap")
    osc("server", "image", "create", "--name", snapshot, name)
    wait_status(osc, name, "ACTIVE")
    deadline = time.monotonic() + 30
    while osc("image", "show", snapshot)["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.3)

    osc("server", "shelve", name)
    wait_status(osc, name, "SHELVED_OFFLOADED")
    osc("server", "unshelve", name)
    wait_status(osc, name, "ACTIVE")
    osc("server", "rebuild", "--image", snapshot, name)
    wait_status(osc, name, "ACTIVE")

    console = osc("console", "log", "show", "--lines", "2", name, fmt=None)
    assert len(console.strip().splitlines()) == 2, console

    events = {e["Action"] for e in osc("server", "event", "list", name)}
    assert {"create", "stop", "start", "reboot", "pause", "resize", "confirmResize", "revertResize", "migrate", "live-migration",
            "shelve", "unshelve", "rescue", "rebuild", "createImage", "lock", "unlock"} <= events, events
    create_event = next(e for e in osc("server", "event", "list", name) if e["Action"] == "create")
    detail = osc("server", "event", "show", name, create_event["Request ID"])
    assert detail["action"] == "create" and detail["events"], detail

    osc("server", "delete", name)
    deadline = time.monotonic() + 30
    while name in [s["Name"] for s in osc("server", "list")]:
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_placement_scheduling_and_operator_commands(osc, bootables):
    image, small, _ = bootables
    # A chosen host (the seed's `--availability-zone nova:compute1`).
    pinned = unique("pinned")
    osc("server", "create", "--flavor", small, "--image", image, "--nic", "none", "--availability-zone", "nova:fake-2", pinned)
    assert wait_status(osc, pinned, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "fake-2"

    group = unique("spread")
    created = osc("server", "group", "create", "--policy", "anti-affinity", group)
    assert created["policy"] == "anti-affinity"
    members = [unique("member") for _ in range(2)]
    for member in members:
        osc("server", "create", "--flavor", small, "--image", image, "--nic", "none", "--hint", f"group={created['id']}", member)
    hosts = {wait_status(osc, member, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for member in members}
    assert hosts == {"fake-1", "fake-2"}

    assert "nova" in [z["Zone Name"] for z in osc("availability", "zone", "list")]
    assert {"fake-1", "fake-2"} <= {h["Host Name"] for h in osc("host", "list")}
    hypervisors = osc("hypervisor", "list")
    assert {"fake-1", "fake-2"} == {h["Hypervisor Hostname"] for h in hypervisors}
    assert osc("hypervisor", "show", "fake-1")["hypervisor_type"] == "fake"
    services = osc("compute", "service", "list")
    assert {(s["Binary"], s["Host"], s["State"]) for s in services if s["Binary"] == "nova-compute"} == {
        ("nova-compute", "fake-1", "up"), ("nova-compute", "fake-2", "up")}

    # Evacuate: refused while the host is up, done once it is forced down.
    evacuee = pinned
    refused = osc("server", "evacuate", evacuee, expect_fail=True)
    assert "still in use" in refused.stderr, refused.stderr
    osc("compute", "service", "set", "--down", "fake-2", "nova-compute")
    osc("server", "evacuate", evacuee)
    assert wait_status(osc, evacuee, "SHUTOFF")["OS-EXT-SRV-ATTR:host"] == "fake-1"
    osc("compute", "service", "set", "--up", "fake-2", "nova-compute")
    assert "evacuate" in {e["Action"] for e in osc("server", "event", "list", evacuee)}

    # A disabled host gets nothing new.
    osc("compute", "service", "set", "--disable", "--disable-reason", "maintenance", "fake-1", "nova-compute")
    disabled = [s for s in osc("compute", "service", "list", "--long") if s["Host"] == "fake-1" and s["Binary"] == "nova-compute"]
    assert disabled[0]["Status"] == "disabled" and disabled[0]["Disabled Reason"] == "maintenance"
    later = unique("later")
    osc("server", "create", "--flavor", small, "--image", image, "--nic", "none", later)
    assert wait_status(osc, later, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "fake-2"
    osc("compute", "service", "set", "--enable", "fake-1", "nova-compute")

    aggregate = unique("agg")
    osc("aggregate", "create", aggregate)
    # The zone is set before the host joins: Nova refuses to move a zone under running servers.
    osc("aggregate", "set", "--zone", "zone-a", aggregate)
    osc("aggregate", "add", "host", aggregate, "fake-1")
    shown = osc("aggregate", "show", aggregate)
    assert shown["availability_zone"] == "zone-a" and shown["hosts"] == ["fake-1"]
    in_zone = unique("zoned")
    osc("server", "create", "--flavor", small, "--image", image, "--nic", "none", "--availability-zone", "zone-a", in_zone)
    assert wait_status(osc, in_zone, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "fake-1"

    providers = {p["name"] for p in osc("resource", "provider", "list")}
    assert {"fake-1", "fake-2"} <= providers
    candidates = osc("allocation", "candidate", "list", "--resource", "VCPU=1")
    assert len(candidates) >= 1

    osc("server", "delete", pinned, later, in_zone, *members)
    osc("aggregate", "remove", "host", aggregate, "fake-1")
    osc("aggregate", "delete", aggregate)


def test_quotas_and_limits(osc, bootables):
    project = osc("project", "create", unique("quota"))
    osc("quota", "set", "--instances", "3", "--cores", "6", project["id"])
    shown = osc("quota", "show", project["id"])
    values = {row["Resource"]: row["Limit"] for row in shown} if isinstance(shown, list) else shown
    assert values["instances"] == 3 and values["cores"] == 6, shown
    # The SDK names Nova's absolute limits (maxTotalInstances → instances, …).
    limits = {row["Name"]: row["Value"] for row in osc("limits", "show", "--absolute")}
    assert limits["instances"] == 10 and isinstance(limits["instances_used"], int), limits
    assert limits["total_cores_used"] >= 0 and limits["server_groups"] == 10, limits
    # os-simple-tenant-usage, the seed's `nova usage-list`.
    usage = osc("usage", "show", "--start", "2020-01-01")
    assert "Servers" in usage and "CPU Hours" in usage, usage
    assert isinstance(osc("usage", "list", "--start", "2020-01-01"), list)


def test_servers_on_networks(osc, bootables):
    """Nova and Neutron together: `--nic net-id=…,v4-fixed-ip=…`, `--network` and `--port`
    become ports bound to the server's host, `server show` lists their addresses, and
    deleting the server deletes the ports Nova made and frees the one it was given."""
    image, small, _ = bootables
    net = unique("net")
    network = osc("network", "create", net)
    osc("subnet", "create", "--network", net, "--subnet-range", "10.20.0.0/24", unique("subnet"))

    fixed = unique("vm-fixed")
    osc("server", "create", "--flavor", small, "--image", image, "--nic", f"net-id={network['id']},v4-fixed-ip=10.20.0.50", "--wait", fixed)
    shown = osc("server", "show", fixed)
    assert shown["status"] == "ACTIVE" and "10.20.0.50" in str(shown["addresses"]), shown
    ports = osc("port", "list", "--server", fixed, "--long")
    assert len(ports) == 1 and "10.20.0.50" in str(ports[0]["Fixed IP Addresses"]), ports
    port = osc("port", "show", ports[0]["ID"])
    assert port["device_owner"].startswith("compute:") and port["binding_host_id"] == shown["OS-EXT-SRV-ATTR:host"], port

    by_name = unique("vm-net")
    osc("server", "create", "--flavor", small, "--image", image, "--network", net, "--wait", by_name)
    assert "10.20.0." in str(osc("server", "show", by_name)["addresses"])

    given = osc("port", "create", "--network", net, "--fixed-ip", "ip-address=10.20.0.77", unique("port"))
    on_port = unique("vm-port")
    osc("server", "create", "--flavor", small, "--image", image, "--port", given["id"], "--wait", on_port)
    assert "10.20.0.77" in str(osc("server", "show", on_port)["addresses"])

    # A second server on a port in use is refused before it is created.
    refused = osc("server", "create", "--flavor", small, "--image", image, "--port", given["id"], unique("vm-again"), expect_fail=True)
    assert "in use" in refused.stderr, refused.stderr

    made = ports[0]["ID"]
    osc("server", "delete", "--wait", fixed, by_name, on_port)
    assert made not in [p["ID"] for p in osc("port", "list", "--network", net)]
    kept = osc("port", "show", given["id"])
    assert kept["device_id"] == "" and kept["fixed_ips"][0]["ip_address"] == "10.20.0.77", kept
    osc("port", "delete", given["id"])
    osc("network", "delete", net)


def test_server_list_filters_image_names_and_port_groups(osc, nimbus, bootables, tmp_path: Path):
    """`server list` names each server's image (the client asks Glance for `id=in:…`), and its
    `--ip`, `--key-name` and `--name` filters return only the matching servers; `port list
    --security-group` returns only that group's ports."""
    image, small, _ = bootables
    net = unique("net")
    network = osc("network", "create", net)
    osc("subnet", "create", "--network", net, "--subnet-range", "10.22.0.0/24", unique("subnet"))
    key_file = tmp_path / "id.pub"
    key_file.write_text(PUBLIC_KEY + "\n")
    key = unique("key")
    osc("keypair", "create", "--public-key", str(key_file), key)
    web = osc("security", "group", "create", unique("web"))

    keyed, plain = unique("vm-keyed"), unique("vm-plain")
    osc("server", "create", "--flavor", small, "--image", image, "--nic", f"net-id={network['id']},v4-fixed-ip=10.22.0.30",
        "--key-name", key, "--security-group", web["name"], "--wait", keyed)
    osc("server", "create", "--flavor", small, "--image", image, "--nic", f"net-id={network['id']},v4-fixed-ip=10.22.0.31", "--wait", plain)

    listed = {s["Name"]: s for s in osc("server", "list")}
    assert listed[keyed]["Image"] == image and listed[plain]["Image"] == image, listed
    assert [s["Name"] for s in osc("server", "list", "--ip", "10.22.0.30")] == [keyed]
    assert [s["Name"] for s in osc("server", "list", "--key-name", key)] == [keyed]
    assert [s["Name"] for s in osc("server", "list", "--name", plain)] == [plain]
    assert osc("server", "list", "--ip", "10.99.0.1") == []
    keyed_id = osc("server", "show", keyed)["id"]
    by_uuid = nimbus.http("GET", "/compute/v2.1/servers", token=nimbus.admin_token(), params={"uuid": keyed_id})
    assert [s["id"] for s in by_uuid.json()["servers"]] == [keyed_id], by_uuid.text

    ports = osc("port", "list", "--security-group", web["id"])
    assert [p["ID"] for p in ports] == [p["ID"] for p in osc("port", "list", "--server", keyed)], ports

    osc("server", "delete", "--wait", keyed, plain)
    osc("keypair", "delete", key)
    osc("security", "group", "delete", web["id"])
    osc("network", "delete", net)


def test_server_floating_ip_and_security_groups(osc, bootables):
    """`server add floating ip`: the floating IP reaches the server's port through a router and
    `server show` lists it; removing it, or deleting the server, gives it back. Security groups
    given at create, added and removed go on the server's port."""
    image, small, _ = bootables
    external = osc("network", "create", unique("public"), "--external")["id"]
    osc("subnet", "create", unique("public-sub"), "--network", external, "--subnet-range", "172.33.0.0/24", "--no-dhcp")
    net = unique("net")
    osc("network", "create", net)
    subnet = osc("subnet", "create", "--network", net, "--subnet-range", "10.21.0.0/24", unique("subnet"))["id"]
    router = osc("router", "create", unique("router"), "--external-gateway", external)["id"]
    osc("router", "add", "subnet", router, subnet)

    name = unique("vm-fip")
    web = osc("security", "group", "create", unique("web"))
    osc("server", "create", "--flavor", small, "--image", image, "--network", net, "--security-group", web["name"], "--wait", name)
    port = osc("port", "list", "--server", name)[0]["ID"]
    assert osc("port", "show", port)["security_group_ids"] == [web["id"]]
    osc("server", "add", "security", "group", name, "default")
    assert len(osc("port", "show", port)["security_group_ids"]) == 2
    osc("server", "remove", "security", "group", name, web["name"])
    assert web["id"] not in osc("port", "show", port)["security_group_ids"]
    assert [g["name"] for g in osc("server", "show", name)["security_groups"]] == ["default"]

    address = osc("floating", "ip", "create", external)["floating_ip_address"]
    osc("server", "add", "floating", "ip", name, address)
    shown = osc("server", "show", name)
    assert address in str(shown["addresses"]) and "10.21.0." in str(shown["addresses"]), shown
    assert osc("floating", "ip", "show", address)["status"] == "ACTIVE"
    osc("server", "remove", "floating", "ip", name, address)
    assert address not in str(osc("server", "show", name)["addresses"])

    osc("server", "add", "floating", "ip", name, address)
    osc("server", "delete", "--wait", name)
    assert osc("floating", "ip", "show", address)["port_id"] is None
    osc("floating", "ip", "delete", address)
    osc("router", "remove", "subnet", router, subnet)
    osc("router", "delete", router)
    osc("network", "delete", net, external)
    osc("security", "group", "delete", web["id"])
