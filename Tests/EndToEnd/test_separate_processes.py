"""`nimbus controller` on PostgreSQL and `nimbus agent` processes on one machine: agents work
over HTTP with their own credentials, a killed agent's service goes down within the heartbeat
timeout, and a controller killed in the middle of concurrent boots leaves, once restarted,
every server ACTIVE or ERROR with placement agreeing with what the ACTIVE servers use."""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import POSTGRES_URL, _psql, _with_database, free_port, nimbus_binary
from compute_cli_support import QCOW2_HEADER

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (NIMBUS_TEST_POSTGRES_URL; scripts/test starts one)")


class Cluster:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.data_dir = workdir / "controller"
        self.data_dir.mkdir(parents=True)
        # Fast heartbeats so "down" shows within seconds.
        (self.data_dir / "nimbus.conf").write_text("[DEFAULT]\nreport_interval = 1\nservice_down_time = 3\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dbname = "nimbus_split_" + secrets.token_hex(6)
        _psql(POSTGRES_URL, f'CREATE DATABASE "{self.dbname}"')
        self.database = _with_database(POSTGRES_URL, self.dbname)
        self.controller: subprocess.Popen | None = None
        self.agents: dict[str, subprocess.Popen] = {}
        self.token = ""

    def start_controller(self) -> None:
        log = open(self.workdir / "controller.log", "ab")
        self.controller = subprocess.Popen(
            [str(nimbus_binary()), "controller", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}",
             "--database", self.database], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/identity/v3", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert self.controller.poll() is None, (self.workdir / "controller.log").read_text()
            assert time.monotonic() < deadline, "controller did not start"
            time.sleep(0.2)
        password = (self.data_dir / "admin-password").read_text().strip()
        reply = requests.post(self.url + "/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}, timeout=30)
        self.token = reply.headers["X-Subject-Token"]
        self.project = reply.json()["token"]["project"]["id"]

    def start_agent(self, host: str) -> None:
        log = open(self.workdir / f"agent-{host}.log", "ab")
        self.agents[host] = subprocess.Popen(
            [str(nimbus_binary()), "agent", "--controller", self.url, "--host", host, "--password-file", str(self.data_dir / "admin-password"),
             "--heartbeat", "1"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": "compute 2.100, placement 1.29"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def services(self) -> dict[str, str]:
        services = self.api("GET", "/compute/v2.1/os-services?binary=nova-compute").json()["services"]
        return {s["host"]: s["state"] for s in services}

    def stop(self) -> None:
        for process in [self.controller, *self.agents.values()]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        _psql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


@pytest.fixture
def cluster():
    workdir = Path(tempfile.mkdtemp(prefix="nimbus-split-"))
    cluster = Cluster(workdir)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_controller_and_agents_as_separate_processes(cluster: Cluster):
    cluster.start_controller()
    cluster.start_agent("node-a")
    cluster.start_agent("node-b")
    wait_until(lambda: cluster.services() == {"node-a": "up", "node-b": "up"}, 30, "both agents to register")

    image = cluster.api("POST", "/image/v2/images", json={"name": "img", "disk_format": "qcow2", "container_format": "bare",
                                                           "visibility": "public"}).json()["id"]
    uploaded = requests.put(cluster.url + f"/image/v2/images/{image}/file", data=QCOW2_HEADER, timeout=30,
                            headers={"X-Auth-Token": cluster.token, "Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 204, uploaded.text
    flavor = cluster.api("POST", "/compute/v2.1/flavors", json={"flavor": {"name": "small", "ram": 256, "vcpus": 1, "disk": 1}}).json()["flavor"]["id"]
    cluster.api("PUT", f"/compute/v2.1/os-quota-sets/{cluster.project}", json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})

    def boot(name: str) -> str | None:
        try:
            reply = cluster.api("POST", "/compute/v2.1/servers", json={"server": {
                "name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}})
        except requests.ConnectionError:
            return None
        return reply.json()["server"]["id"] if reply.status_code == 202 else None

    def status(server: str) -> dict:
        return cluster.api("GET", f"/compute/v2.1/servers/{server}").json()["server"]

    # Boots land on both hosts.
    first = [boot(f"spread-{i}") for i in range(4)]
    hosts = {wait_until(lambda s=s: status(s)["status"] == "ACTIVE" and status(s), 30, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for s in first}
    assert hosts == {"node-a", "node-b"}

    # kill -9 of an agent: its service is down within the heartbeat timeout (3 s here).
    cluster.agents["node-b"].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: cluster.services().get("node-b") == "down", 10, "node-b to be down")
    assert time.monotonic() - killed < 3 + 3, "down within service_down_time plus a heartbeat or two"

    # kill -9 of the controller in the middle of 20 concurrent boots, then a restart.
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(boot, f"burst-{i}") for i in range(20)]
        # Kill once a few boots were answered, while the rest are in flight or being scheduled.
        wait_until(lambda: sum(f.done() for f in futures) >= 3, 30, "the first boots to be answered")
        cluster.controller.send_signal(signal.SIGKILL)
        cluster.controller.wait()
        burst = [f.result() for f in futures]
    cluster.start_controller()
    # A boot whose answer the kill cut off may still have been accepted: judge every server there is.
    assert any(burst), "some boots were accepted before the kill"

    def settled():
        shown = cluster.api("GET", "/compute/v2.1/servers/detail").json()["servers"]
        return shown if all(s["status"] in ("ACTIVE", "ERROR") and not s["OS-EXT-STS:task_state"] for s in shown) else None

    final = wait_until(settled, 60, "every server to be ACTIVE or ERROR")
    assert {s for s in burst if s} <= {s["id"] for s in final}
    for server in final:
        if server["status"] == "ERROR":
            assert server["fault"]["message"], server
    active = [s for s in final if s["status"] == "ACTIVE"]
    assert len(active) >= 4
    usages = cluster.api("GET", f"/placement/usages?project_id={cluster.project}").json()["usages"]
    assert usages.get("VCPU", 0) == sum(s["flavor"]["vcpus"] for s in active), (usages, len(active))
    assert usages.get("MEMORY_MB", 0) == sum(s["flavor"]["ram"] for s in active), (usages, len(active))
