"""No request brings the cloud down, and a cloud that is killed comes back whole.

The route-wide bad-input test (Tests/RobustnessTests) covers every route in process; these
run against the real `nimbus up` process, as a hostile tenant and as a crash would meet it.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from conftest import Nimbus, unique, wait_for


def _reader_token(nimbus: Nimbus, admin: str) -> str:
    """A user holding only `reader`, on a project of its own."""
    name = unique("reader")
    project = nimbus.http("POST", "/identity/v3/projects", token=admin, json={"project": {"name": name}})
    assert project.status_code == 201, project.text
    user = nimbus.http("POST", "/identity/v3/users", token=admin, json={"user": {"name": name, "password": "pw-" + name}})
    assert user.status_code == 201, user.text
    role = nimbus.http("GET", "/identity/v3/roles?name=reader", token=admin).json()["roles"][0]["id"]
    granted = nimbus.http("PUT", f"/identity/v3/projects/{project.json()['project']['id']}/users/{user.json()['user']['id']}/roles/{role}",
                          token=admin)
    assert granted.status_code == 204, granted.text
    token, _ = nimbus.issue_token(name, "pw-" + name, project=name)
    return token


def test_a_readers_negative_limit_is_a_400_and_the_cloud_keeps_serving(nimbus: Nimbus, admin_token: str) -> None:
    reader = _reader_token(nimbus, admin_token)
    for query in ("limit=-1", "offset=-1", "limit=abc", "limit=1.5"):
        reply = nimbus.http("GET", f"/compute/v2.1/os-server-groups?{query}", token=reader)
        assert reply.status_code == 400, (query, reply.status_code, reply.text)
        assert reply.json()["badRequest"]["code"] == 400, reply.text
    # Digits past any integer are a valid limit to Nova's schema: a full page.
    assert nimbus.http("GET", "/compute/v2.1/os-server-groups?limit=99999999999999999999999", token=reader).status_code == 200
    assert nimbus.is_running()
    assert nimbus.http("GET", "/compute/v2.1/os-server-groups?limit=1", token=reader).status_code == 200
    assert nimbus.http("GET", "/networking/v2.0/networks", token=reader).status_code == 200
    nimbus.issue_token("admin", nimbus.admin_password, project="admin")


def test_a_cloud_killed_mid_work_restarts_with_nothing_stuck(tmp_path: Path) -> None:
    """What a service manager's restart after a crash must give back: builds that were under
    way finish, an upload cut off by the crash leaves its image `queued` and empty, and every
    API answers again."""
    cloud = Nimbus("sqlite", tmp_path)
    cloud.start()
    try:
        admin = cloud.admin_token()
        flavor = cloud.http("POST", "/compute/v2.1/flavors", token=admin,
                            json={"flavor": {"name": "crash", "ram": 64, "vcpus": 1, "disk": 1}}).json()["flavor"]["id"]
        image = cloud.http("POST", "/image/v2/images", token=admin,
                           json={"name": "crash", "disk_format": "raw", "container_format": "bare"}).json()["id"]
        uploaded = cloud.http("PUT", f"/image/v2/images/{image}/file", token=admin, data=b"\0" * 65536,
                              headers={"Content-Type": "application/octet-stream"})
        assert uploaded.status_code == 204, uploaded.text
        cut = cloud.http("POST", "/image/v2/images", token=admin,
                         json={"name": "cut-off", "disk_format": "raw", "container_format": "bare"}).json()["id"]

        # An upload that is half sent when the process dies.
        upload = socket.create_connection((cloud.host, cloud.port))
        upload.sendall((f"PUT /image/v2/images/{cut}/file HTTP/1.1\r\nHost: {cloud.host}\r\nX-Auth-Token: {admin}\r\n"
                        "Content-Type: application/octet-stream\r\nContent-Length: 10485760\r\n\r\n").encode() + b"\1" * 1048576)
        wait_for(lambda: cloud.http("GET", f"/image/v2/images/{cut}", token=admin).json()["status"] == "saving", 30, "the upload started")

        servers = []
        for index in range(3):
            created = cloud.http("POST", "/compute/v2.1/servers", token=admin, headers={"OpenStack-API-Version": "compute 2.37"},
                                 json={"server": {"name": f"crash-{index}", "flavorRef": flavor, "imageRef": image, "networks": "none"}})
            assert created.status_code == 202, created.text
            servers.append(created.json()["server"]["id"])

        assert cloud.process is not None
        os.killpg(cloud.process.pid, signal.SIGKILL)
        cloud.process.wait(timeout=10)
        upload.close()
    finally:
        cloud.stop()

    # What systemd's Restart=on-failure does.
    cloud.start()
    try:
        admin = cloud.admin_token()
        wait_for(lambda: cloud.http("GET", f"/image/v2/images/{cut}", token=admin).json()["status"] == "queued", 30,
              "the cut-off upload's image went back to queued")
        assert cloud.http("GET", f"/image/v2/images/{cut}", token=admin).json()["size"] is None
        for server in servers:
            wait_for(lambda: cloud.http("GET", f"/compute/v2.1/servers/{server}", token=admin).json()["server"]["status"] == "ACTIVE", 60,
                  f"server {server} became ACTIVE after the restart")
        for path in ("/compute/v2.1/servers", "/networking/v2.0/networks", "/placement/resource_providers", "/image/v2/images"):
            assert cloud.http("GET", path, token=admin).status_code == 200, path
    finally:
        cloud.stop()


def test_the_systemd_units_start_commands_nimbus_accepts() -> None:
    """contrib/systemd's units name subcommands and flags the binary really has."""
    import subprocess

    from conftest import nimbus_binary

    units = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
    for unit in sorted(units.glob("*.service")):
        lines = dict(line.split("=", 1) for line in unit.read_text().splitlines() if "=" in line and not line.startswith("#"))
        assert lines.get("Restart") == "on-failure", unit
        words = lines["ExecStart"].split()
        assert words[0].endswith("/nimbus"), unit
        subcommand = words[1]
        helptext = subprocess.run([str(nimbus_binary()), subcommand, "--help"], capture_output=True, text=True, timeout=30).stdout
        for word in words[2:]:
            if word.startswith("--"):
                assert word in helptext, f"{unit.name}: `nimbus {subcommand}` has no {word}"
