"""Nova's `os-interface` attach and detach and `changePassword` through the unmodified
`openstack` CLI, against `nimbus up --fake-hosts 2` (conftest): `server add/remove port`,
`server add/remove network`, `server add fixed ip` and `server set --password`."""

from __future__ import annotations

import time

import pytest

from conftest import Nimbus, unique, wait_for
from test_image_cli import qcow2_file


@pytest.fixture(autouse=True)
def one_backend(nimbus: Nimbus):
    """The CLI layer runs once: the Swift compute tests cover both engines."""
    if nimbus.backend != "sqlite":
        pytest.skip("compute CLI tests run against the SQLite cloud only")


def wait_status(osc, server: str, status: str, timeout: float = 60) -> dict:
    """Polls `server show` until the status is reached with no task under way."""
    deadline = time.monotonic() + timeout
    while True:
        shown = osc("server", "show", server)
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return shown
        assert shown["status"] != "ERROR", shown
        assert time.monotonic() < deadline, f"{server} did not reach {status}: {shown}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def server_on_network(nimbus: Nimbus, tmp_path_factory) -> dict[str, str]:
    """A server booted on a network of its own (10.61.0.0/24), plus a second network."""
    osc = nimbus.osc
    image, flavor = unique("if-image"), unique("if-flavor")
    source = qcow2_file(tmp_path_factory.mktemp("img") / "disk.qcow2", "16M")
    osc("image", "create", "--file", str(source), "--disk-format", "qcow2", "--container-format", "bare", "--public", image)
    osc("flavor", "create", "--ram", "512", "--vcpus", "1", "--disk", "1", flavor)
    first, second = unique("if-net-a"), unique("if-net-b")
    osc("network", "create", first)
    osc("subnet", "create", "--network", first, "--subnet-range", "10.61.0.0/24", unique("if-sub-a"))
    osc("network", "create", second)
    osc("subnet", "create", "--network", second, "--subnet-range", "10.62.0.0/24", unique("if-sub-b"))
    name = unique("if-vm")
    server = osc("server", "create", "--image", image, "--flavor", flavor, "--network", first, name)
    wait_status(osc, server["id"], "ACTIVE")
    return {"server": server["id"], "first": first, "second": second, "image": image, "flavor": flavor}


def addresses(osc, server: str) -> dict[str, list[str]]:
    return osc("server", "show", server)["addresses"]


def device_of(osc, port: str) -> str:
    return osc("port", "show", port)["device_id"]


def test_add_and_remove_port_network_and_fixed_ip(nimbus: Nimbus, server_on_network):
    osc = nimbus.osc
    server, first, second = server_on_network["server"], server_on_network["first"], server_on_network["second"]
    booted = osc("port", "list", "--server", server)
    assert len(booted) == 1

    # A port of the user's own: attached, bound to the server, shown in its addresses.
    port = osc("port", "create", "--network", first, "--fixed-ip", "ip-address=10.61.0.40", unique("if-port"))
    osc("server", "add", "port", server, port["id"])
    assert device_of(osc, port["id"]) == server
    assert "10.61.0.40" in addresses(osc, server)[first]

    # A network: Nova makes the port.
    osc("server", "add", "network", server, second)
    on_second = osc("port", "list", "--server", server, "--network", second)
    assert len(on_second) == 1
    assert addresses(osc, server).get(second), addresses(osc, server)

    # A fixed address on a network.
    added = osc("server", "add", "fixed", "ip", "--fixed-ip-address", "10.61.0.77", server, first, fmt="json")
    assert added["Network ID"] == osc("network", "show", first)["id"], added
    assert added["Server ID"] == server and added["Port State"] == "ACTIVE", added
    assert "10.61.0.77" in addresses(osc, server)[first]
    assert len(osc("port", "list", "--server", server)) == 4

    events = [e["Action"] for e in osc("server", "event", "list", server)]
    assert events.count("attach_interface") == 3, events

    # A port in use cannot be attached again: Nova's 409.
    refused = osc("server", "add", "port", server, booted[0]["ID"], expect_fail=True)
    assert "409" in refused.stderr or "in use" in refused.stderr, refused.stderr

    # Remove the user's port: it stays, free. Remove the network: the port Nova made goes.
    osc("server", "remove", "port", server, port["id"])
    wait_for(lambda: device_of(osc, port["id"]) == "", 30, "the user's port freed")
    assert osc("port", "show", port["id"])["binding_host_id"] in ("", None)
    osc("server", "remove", "network", server, second)
    wait_for(lambda: not osc("port", "list", "--network", second, "--device-id", server), 30, "the port Nova made on the second network deleted")
    wait_for(lambda: second not in addresses(osc, server), 30, "the second network gone from the server's addresses")
    remaining = {p["ID"] for p in osc("port", "list", "--server", server)}
    assert booted[0]["ID"] in remaining and port["id"] not in remaining and len(remaining) == 2
    assert "10.61.0.40" not in addresses(osc, server)[first]

    wait_for(lambda: [e["Action"] for e in osc("server", "event", "list", server)].count("detach_interface") == 2, 30,
             "two detach_interface actions recorded")

    # The freed port can go to a new server at boot.
    other = osc("server", "create", "--image", server_on_network["image"], "--flavor", server_on_network["flavor"],
                "--port", port["id"], unique("if-vm2"))
    wait_status(osc, other["id"], "ACTIVE")
    assert device_of(osc, port["id"]) == other["id"]
    osc("server", "delete", "--wait", other["id"])


def test_server_set_password(nimbus: Nimbus, server_on_network):
    osc = nimbus.osc
    server = server_on_network["server"]
    osc("server", "set", "--password", "N3w-Passw0rd", server)
    wait_status(osc, server, "ACTIVE")
    assert "changePassword" in [e["Action"] for e in osc("server", "event", "list", server)]
    # A stopped server cannot have its password set: Nova's 409.
    osc("server", "stop", server)
    wait_status(osc, server, "SHUTOFF")
    refused = osc("server", "set", "--password", "again", server, expect_fail=True)
    assert "409" in refused.stderr or "Cannot 'changePassword'" in refused.stderr, refused.stderr
    osc("server", "start", server)
    wait_status(osc, server, "ACTIVE")
