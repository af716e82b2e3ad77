"""What Tempest's compute tests caught, through the unmodified `openstack` CLI where it has a
path: a snapshot's `--property` values win over what Nova sets (image_type…), a second snapshot
while the first is uploading is refused (409), and a security group rule keeps its remote
prefix as given. Its own `nimbus up --fake-hosts 1`, whose fake host takes a few seconds to
upload a snapshot, so that one can be caught under way."""

from __future__ import annotations

import shutil

import pytest

from conftest import Nimbus, unique, wait_for
from compute_cli_support import QCOW2_HEADER

SNAPSHOT_SECONDS = 3


# Parametrized by its one backend so that conftest's xdist_scope keeps the module's tests on one
# worker with one cloud.
@pytest.fixture(scope="module", params=["sqlite"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    nimbus = Nimbus(request.param, tmp_path_factory.mktemp("gaps"))
    nimbus.extra_conf = f"[fake_hosts]\nsnapshot_seconds = {SNAPSHOT_SECONDS}\n"
    try:
        nimbus.start()
        yield nimbus
    finally:
        nimbus.stop()
        nimbus.drop_database()
        shutil.rmtree(nimbus.workdir, ignore_errors=True)


def active(cloud: Nimbus, name: str) -> bool:
    server = cloud.osc("server", "show", name)
    return server["status"] == "ACTIVE" and not server.get("OS-EXT-STS:task_state")


def test_snapshot_properties_win_and_a_second_snapshot_waits(cloud: Nimbus, tmp_path):
    image, flavor, name = unique("img"), unique("flavor"), unique("vm")
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(QCOW2_HEADER)
    cloud.osc("image", "create", "--file", str(disk), "--disk-format", "qcow2", "--container-format", "bare", "--public", image)
    cloud.osc("flavor", "create", "--ram", "256", "--vcpus", "1", "--disk", "1", flavor)
    cloud.osc("server", "create", "--flavor", flavor, "--image", image, "--nic", "none", name)
    wait_for(lambda: active(cloud, name), 60, f"{name} to be ACTIVE")

    snapshot = unique("snap")
    cloud.osc("server", "image", "create", "--name", snapshot, "--property", "image_type=test", "--property", "purpose=e2e", name)
    refused = cloud.osc("server", "image", "create", "--name", unique("snap2"), name, expect_fail=True)
    assert "409" in refused.stderr or "task_state" in refused.stderr, refused.stderr
    wait_for(lambda: active(cloud, name), 60, f"{name} to be ACTIVE after its snapshot")
    wait_for(lambda: cloud.osc("image", "show", snapshot)["status"] == "active", 30, f"{snapshot} to be active")
    properties = cloud.osc("image", "show", snapshot)["properties"]
    assert properties["image_type"] == "test" and properties["purpose"] == "e2e", properties


def test_a_rules_remote_prefix_is_kept_as_given(cloud: Nimbus):
    group = cloud.osc("security", "group", "create", unique("sg"))["id"]
    rule = cloud.osc("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "--remote-ip", "10.2.3.4/24", group,
                     fmt="json")  # conftest sees only the first three words for the verb
    assert rule["remote_ip_prefix"] == "10.2.3.4/24", rule
    same_network = cloud.osc("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "--remote-ip", "10.2.3.99/24",
                             group, fmt="json", expect_fail=True)
    assert "already exists" in same_network.stderr, same_network.stderr
