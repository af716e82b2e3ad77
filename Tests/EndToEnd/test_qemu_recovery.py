"""What happens outside the controller, on real QEMU guests (TCG): one `nimbus controller` and
one `nimbus agent --driver qemu` process. A killed agent leaves its guest running and its
restart re-attaches; a guest whose QEMU is killed, or that powers itself off, is shown SHUTOFF
within the power-state sync interval with the sync's stop action; a server deleted while its
agent is down leaves no QEMU once the agent is back.

The tests share one guest (a boot costs seconds under TCG); `guest` boots one when there is
none, so each test also runs alone, or on a pytest-xdist worker of its own."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Nimbus, nimbus_binary, wait_for
from test_qemu_cloud import qemu_pids

SYNC_INTERVAL = 2
BOOT_TIMEOUT = 180.0
HOST = "recovery-1"


class SplitCloud(Nimbus):
    """`nimbus controller` (SQLite) and one `nimbus agent --driver qemu` beside it."""

    def __init__(self, backend: str, workdir: Path) -> None:
        assert backend == "sqlite", "the controller runs on its data directory's SQLite"
        super().__init__(backend, workdir)
        # QEMU's sockets live under the instances path: at most 57 bytes (GuestPaths).
        self.instances = Path(tempfile.mkdtemp(prefix="nimbus-rec-", dir="/tmp"))
        self.agent: subprocess.Popen[bytes] | None = None
        self.agent_log = workdir / "agent.log"
        self.password_file = workdir / "admin-password"
        self.agent_conf = workdir / "agent.conf"
        # The server the tests share (None: boot one).
        self.guest_id: str | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "nimbus.conf").write_text("[DEFAULT]\nreport_interval = 1\n[identity]\npassword_hash_rounds = 4\n")
        self._log_file = open(self.log_path, "ab")
        args = [str(nimbus_binary()), "controller", "--data-dir", str(self.data_dir), "--listen", f"{self.host}:{self.port}",
                "--admin-password", self.admin_password]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
                                        cwd=self.workdir, start_new_session=True)
        self._wait_ready(" ".join(args))
        self.password_file.write_text(self.admin_password)
        self.agent_conf.write_text(f"[compute]\nsync_power_state_interval = {SYNC_INTERVAL}\nshutdown_timeout = 10\n")

    def start_agent(self) -> None:
        log = open(self.agent_log, "ab")
        self.agent = subprocess.Popen(
            [str(nimbus_binary()), "agent", "--controller", self.base_url, "--host", HOST, "--password-file", str(self.password_file),
             "--heartbeat", "1", "--driver", "qemu", "--instances-path", str(self.instances), "--config-file", str(self.agent_conf), "--dataplane", "none"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.service_state() == "up", 60, f"the agent to register (log: {self.agent_log})")

    def kill_agent(self) -> None:
        assert self.agent is not None
        self.agent.send_signal(signal.SIGKILL)
        self.agent.wait(timeout=10)
        self.agent = None

    def service_state(self) -> str | None:
        assert self.agent is None or self.agent.poll() is None, self.agent_log.read_text()
        reply = self.http("GET", "/compute/v2.1/os-services?binary=nova-compute&host=" + HOST, token=self.admin_token())
        services = reply.json().get("services", [])
        return services[0]["state"] if services else None

    def server(self, server_id: str) -> dict:
        reply = self.http("GET", f"/compute/v2.1/servers/{server_id}", token=self.admin_token(),
                          headers={"OpenStack-API-Version": "compute 2.100"})
        assert reply.status_code == 200, reply.text
        return reply.json()["server"]

    def settled(self, server_id: str, status: str) -> dict | None:
        shown = self.server(server_id)
        return shown if shown["status"] == status and not shown["OS-EXT-STS:task_state"] else None

    def console(self, server_id: str) -> str:
        return self.osc("console", "log", "show", server_id, fmt=None)

    def stop_all(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.kill()
            self.agent.wait()
        self.stop()
        for guest in self.instances.iterdir() if self.instances.is_dir() else []:
            for pid in qemu_pids(guest.name):
                subprocess.run(["kill", "-9", str(pid)], check=False)
        shutil.rmtree(self.instances, ignore_errors=True)


# Parametrized by its one backend so that the tests' ids carry it: conftest's xdist_scope then
# hands the module's tests to one worker together, and they share one cloud and one guest.
@pytest.fixture(scope="module", params=["sqlite"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    cloud = SplitCloud(request.param, tmp_path_factory.mktemp("recovery"))
    try:
        cloud.start()
        cloud.start_agent()
        cloud.upload_test_image()
        cloud.osc("flavor", "create", "--id", "42", "--ram", "128", "--disk", "1", "--vcpus", "1", "m1.nano")
        yield cloud
    finally:
        cloud.stop_all()


@pytest.fixture
def guest(cloud: SplitCloud) -> str:
    """The shared server, ACTIVE with its guest booted and its agent running."""
    if cloud.agent is None:
        cloud.start_agent()
    if cloud.guest_id is None:
        created = cloud.osc("server", "create", "--flavor", "m1.nano", "--image", "nimbus-test", "--wait", "survivor")
        cloud.guest_id = created["id"]
    wait_for(lambda: cloud.settled(cloud.guest_id, "ACTIVE"), BOOT_TIMEOUT, "the shared server to be ACTIVE")
    wait_for(lambda: "NIMBUS-GUEST uuid=" in cloud.console(cloud.guest_id), BOOT_TIMEOUT, "the guest's console line")
    return cloud.guest_id


def boots(cloud: SplitCloud, server_id: str) -> int:
    return cloud.console(server_id).count("NIMBUS-GUEST uuid=")


def test_a_killed_agent_leaves_its_guest_running_and_its_restart_reattaches(cloud: SplitCloud, guest: str) -> None:
    pids = qemu_pids(guest)
    assert len(pids) == 1

    cloud.kill_agent()
    assert qemu_pids(guest) == pids, "the guest runs on without its agent"
    cloud.start_agent()
    # A few sync rounds of the restarted agent: it found the guest running, nothing changes.
    time.sleep(2 * SYNC_INTERVAL + 1)
    assert cloud.settled(guest, "ACTIVE"), cloud.server(guest)
    assert qemu_pids(guest) == pids, "re-attached, not started again"
    # The restarted agent drives the guest over its monitor.
    cloud.osc("server", "pause", guest)
    wait_for(lambda: cloud.settled(guest, "PAUSED"), 60, "PAUSED")
    cloud.osc("server", "unpause", guest)
    wait_for(lambda: cloud.settled(guest, "ACTIVE"), 60, "ACTIVE again")
    assert qemu_pids(guest) == pids


def test_a_killed_qemu_makes_its_server_shutoff_with_an_event_and_start_brings_it_back(cloud: SplitCloud, guest: str) -> None:
    before = boots(cloud, guest)
    [pid] = qemu_pids(guest)
    subprocess.run(["kill", "-9", str(pid)], check=True)
    killed = time.monotonic()
    wait_for(lambda: cloud.settled(guest, "SHUTOFF"), SYNC_INTERVAL + 20, "SHUTOFF after the kill")
    assert time.monotonic() - killed < SYNC_INTERVAL + 5, "within the sync interval (and the stop it causes)"
    shown = cloud.server(guest)
    assert shown["OS-EXT-STS:power_state"] == 4 and shown["OS-EXT-STS:vm_state"] == "stopped", shown

    events = cloud.osc("server", "event", "list", guest)
    stops = [e for e in events if e["Action"] == "stop"]
    assert len(stops) == 1, events
    detail = cloud.http("GET", f"/compute/v2.1/servers/{guest}/os-instance-actions/{stops[0]['Request ID']}", token=cloud.admin_token(),
                        headers={"OpenStack-API-Version": "compute 2.100"}).json()["instanceAction"]
    assert detail["user_id"] is None and detail["project_id"] is None, detail
    assert [(e["event"], e["result"], e["host"]) for e in detail["events"]] == [("compute_stop_instance", "Success", HOST)], detail

    cloud.osc("server", "start", guest)
    wait_for(lambda: cloud.settled(guest, "ACTIVE"), 120, "ACTIVE after start")
    assert len(qemu_pids(guest)) == 1
    wait_for(lambda: boots(cloud, guest) > before, BOOT_TIMEOUT, "a new boot line on the console")


def test_a_guest_that_powers_itself_off_is_shown_shutoff(cloud: SplitCloud, guest: str) -> None:
    # The serial console runs a root shell (docs/test-image.md): power off from inside the guest.
    console = cloud.instances / guest / "console.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(console))
        s.sendall(b"\npoweroff -f\n")
        # Read what the guest answers while it goes down: an attached reader that does not
        # read would stall the guest's UART.
        s.settimeout(0.5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if not s.recv(4096):
                    break
            except socket.timeout:
                pass
    wait_for(lambda: qemu_pids(guest) == [], 30, "QEMU to exit after the guest's power-off")
    gone = time.monotonic()
    wait_for(lambda: cloud.settled(guest, "SHUTOFF"), SYNC_INTERVAL + 20, "SHUTOFF after the guest powered off")
    assert time.monotonic() - gone < SYNC_INTERVAL + 5
    stops = [e for e in cloud.osc("server", "event", "list", guest) if e["Action"] == "stop"]
    assert stops, "the sync's stop is recorded"

    cloud.osc("server", "start", guest)
    wait_for(lambda: cloud.settled(guest, "ACTIVE"), 120, "ACTIVE after start")


def test_a_server_deleted_while_its_agent_is_down_leaves_no_qemu(cloud: SplitCloud, guest: str) -> None:
    pids = qemu_pids(guest)
    assert pids
    cloud.kill_agent()
    cloud.osc("server", "delete", guest)
    cloud.guest_id = None
    assert qemu_pids(guest) == pids, "nobody destroys the guest while its agent is down"

    cloud.start_agent()
    wait_for(lambda: qemu_pids(guest) == [], 60, "the restarted agent to destroy the deleted server's guest")
    wait_for(lambda: not (cloud.instances / guest).exists(), 30, "its directory to go")
    listed = cloud.osc("server", "list", "--all-projects")
    assert guest not in [s["ID"] for s in listed]
