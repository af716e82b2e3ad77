"""Nova's less common calls through the unmodified `openstack` CLI: crash dumps, steering a live
migration under way (force complete, abort), a server's topology, x509 keypairs and image
precache on an aggregate. Its own `nimbus up --fake-hosts 2`, whose fake hosts take a minute
to send a guest in a live migration, so that one can be caught running."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Nimbus, unique, wait_for
from compute_cli_support import QCOW2_HEADER

MIGRATION_SECONDS = 60


# Parametrized by its one backend so that conftest's xdist_scope keeps the module's tests on one
# worker with one cloud.
@pytest.fixture(scope="module", params=["sqlite"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    nimbus = Nimbus(request.param, tmp_path_factory.mktemp("compat"))
    nimbus.extra_conf = f"[fake_hosts]\nlive_migration_seconds = {MIGRATION_SECONDS}\n"
    try:
        nimbus.start()
        yield nimbus
    finally:
        nimbus.stop()
        nimbus.drop_database()
        shutil.rmtree(nimbus.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def bootables(cloud: Nimbus, tmp_path_factory) -> tuple[str, str]:
    image, flavor = unique("img"), unique("flavor")
    disk = tmp_path_factory.mktemp("img") / "disk.qcow2"
    disk.write_bytes(QCOW2_HEADER)
    cloud.osc("image", "create", "--file", str(disk), "--disk-format", "qcow2", "--container-format", "bare", "--public", image)
    cloud.osc("flavor", "create", "--ram", "256", "--vcpus", "1", "--disk", "1", flavor)
    return image, flavor


def active_server(cloud: Nimbus, bootables, *extra: str) -> str:
    image, flavor = bootables
    name = unique("vm")
    cloud.osc("server", "create", "--flavor", flavor, "--image", image, "--nic", "none", *extra, name)
    wait_for(lambda: (lambda s: s["status"] == "ACTIVE" and not s.get("OS-EXT-STS:task_state"))(cloud.osc("server", "show", name)),
             60, f"{name} to be ACTIVE")
    return name


def test_server_dump_create(cloud: Nimbus, bootables):
    name = active_server(cloud, bootables)
    # The SDK under OSC asks for the microversion the action needs (2.17) by itself.
    cloud.osc("server", "dump", "create", name, fmt=None)
    wait_for(lambda: "trigger_crash_dump" in [a["Action"] for a in cloud.osc("server", "event", "list", name)], 30,
             "the crash dump's instance action")
    cloud.osc("server", "stop", name)
    wait_for(lambda: cloud.osc("server", "show", name)["status"] == "SHUTOFF", 30, f"{name} to stop")
    stopped = cloud.osc("--os-compute-api-version", "2.17", "server", "dump", "create", name, expect_fail=True, fmt=None)
    assert "409" in stopped.stderr or "Conflict" in stopped.stderr or "vm_state" in stopped.stderr, stopped.stderr


def test_server_show_topology(cloud: Nimbus, bootables):
    name = active_server(cloud, bootables)
    shown = cloud.osc("--os-compute-api-version", "2.78", "server", "show", "--topology", name, fmt="json")
    assert shown["topology"] == {"nodes": [], "pagesize_kb": None}, shown


def migrations_of(cloud: Nimbus, name: str) -> list[dict]:
    return cloud.osc("--os-compute-api-version", "2.24", "server", "migration", "list", "--server", name, fmt="json")


def migration_of(cloud: Nimbus, name: str) -> dict:
    """The server's live migration once its source is sending (status `running`)."""
    def running():
        return next((m for m in migrations_of(cloud, name) if m["Status"] == "running" and m["Type"] == "live-migration"), None)
    return wait_for(running, 30, f"a running live migration of {name}")


def host_of(cloud: Nimbus, name: str) -> str:
    return cloud.osc("server", "show", name)["OS-EXT-SRV-ATTR:host"]


def test_server_migration_force_complete_and_abort(cloud: Nimbus, bootables):
    name = active_server(cloud, bootables)
    source = host_of(cloud, name)
    target = "fake-2" if source == "fake-1" else "fake-1"

    # Forced: done long before the fake host's minute is over, the server on the target.
    started = time.monotonic()
    cloud.osc("--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", target, name)
    migration = migration_of(cloud, name)
    cloud.osc("--os-compute-api-version", "2.22", "server", "migration", "force", "complete", name, str(migration["Id"]))
    wait_for(lambda: (lambda s: s["OS-EXT-SRV-ATTR:host"] == target and not s.get("OS-EXT-STS:task_state"))(cloud.osc("server", "show", name)),
             30, f"{name} on {target}")
    assert time.monotonic() - started < MIGRATION_SECONDS
    finished = migrations_of(cloud, name)
    assert [m["Status"] for m in finished if m["Id"] == migration["Id"]] == ["completed"], finished

    # Aborted: the server stays ACTIVE where it was, the migration is cancelled.
    cloud.osc("--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", source, name)
    migration = migration_of(cloud, name)
    cloud.osc("--os-compute-api-version", "2.24", "server", "migration", "abort", name, str(migration["Id"]))
    wait_for(lambda: [m["Status"] for m in migrations_of(cloud, name) if m["Id"] == migration["Id"]]
             == ["cancelled"], 30, "the migration to be cancelled")
    server = cloud.osc("server", "show", name)
    assert server["status"] == "ACTIVE" and server["OS-EXT-SRV-ATTR:host"] == target, server
    # Nothing is under way any more: Nova's 409.
    again = cloud.osc("--os-compute-api-version", "2.24", "server", "migration", "abort", name, str(migration["Id"]), expect_fail=True)
    assert "409" in again.stderr or "task_state" in again.stderr, again.stderr


def openssl(*args: str, input: str | None = None) -> str:
    return subprocess.run(["openssl", *args], input=input, capture_output=True, text=True, check=True).stdout


def test_keypair_x509(cloud: Nimbus, tmp_path: Path):
    # `openstack keypair create --type x509` cannot make one with the pinned clients: OSC hands
    # the SDK `key_type`, which it does not send, so Nova (and Nimbus) read the key as SSH. The
    # keypairs are made through the API, as Horizon and Tempest do, and read with the CLI.
    token = cloud.admin_token()
    headers = {"OpenStack-API-Version": "compute 2.2"}
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", "/CN=e2e")
    expected = openssl("x509", "-in", str(cert), "-noout", "-fingerprint", "-sha1").strip().split("=", 1)[1].lower()
    name = unique("x509")
    imported = cloud.http("POST", "/compute/v2.1/os-keypairs", token=token, headers=headers,
                          json={"keypair": {"name": name, "type": "x509", "public_key": cert.read_text()}})
    assert imported.status_code == 201, imported.text
    shown = cloud.osc("--os-compute-api-version", "2.2", "keypair", "show", name, fmt="json")
    assert shown["type"] == "x509" and shown["fingerprint"] == expected, shown
    listed = cloud.osc("--os-compute-api-version", "2.2", "keypair", "list", fmt="json")
    assert {"Name": name, "Fingerprint": expected, "Type": "x509"}.items() <= next(k for k in listed if k["Name"] == name).items()
    cloud.osc("keypair", "delete", name)

    # Nova generates an x509 keypair when no key is given: a certificate of the returned key.
    made = cloud.http("POST", "/compute/v2.1/os-keypairs", token=token, headers=headers,
                      json={"keypair": {"name": unique("made"), "type": "x509"}})
    assert made.status_code == 201, made.text
    pair = made.json()["keypair"]
    subject = openssl("x509", "-noout", "-subject", input=pair["public_key"])
    assert re.search(r"CN ?= ?\w+", subject), subject
    assert openssl("x509", "-noout", "-modulus", input=pair["public_key"]) == openssl("rsa", "-noout", "-modulus", input=pair["private_key"])
    listed = cloud.osc("--os-compute-api-version", "2.2", "keypair", "list", fmt="json")
    assert next(k for k in listed if k["Name"] == pair["name"])["Type"] == "x509"


def test_aggregate_cache_image(cloud: Nimbus, bootables):
    image, _ = bootables
    aggregate = unique("agg")
    cloud.osc("aggregate", "create", aggregate)
    cloud.osc("aggregate", "add", "host", aggregate, "fake-1")
    # The SDK under OSC asks for 2.81 by itself.
    cloud.osc("aggregate", "cache", "image", aggregate, image)
    missing = cloud.osc("--os-compute-api-version", "2.81", "aggregate", "cache", "image", aggregate, "no-such-image", expect_fail=True)
    assert missing.returncode != 0
    # The host answered: a fake host keeps no image cache, which the conductor logs as Nova's `unsupported`.
    wait_for(lambda: "unsupported" in cloud.output(), 30, "the host's precache answer")
