"""`nimbus up` as the README's first command leaves it: a cloud whose host runs real QEMU
guests (TCG here), with DevStack's flavors and the test image, driven by the unmodified
`openstack` CLI. One cloud for the module; each test cleans up its servers, and the module
checks that no QEMU process, overlay, socket or log is left behind."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import tempfile
import urllib.parse
from pathlib import Path

import pytest
import requests

from conftest import Nimbus, wait_for

FIRST_START_TIMEOUT = 600.0  # the first start downloads the test image's Debian packages
LINE_TIMEOUT = 120.0


def qemu_pids(uuid: str) -> list[int]:
    """Running QEMU processes of one guest (their command line names the uuid)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"qemu-system-x86_64") and f"guest={uuid}".encode() in b" ".join(cmdline) \
                and stat.rsplit(")", 1)[1].split()[0] != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def qemu_cloud(tmp_path_factory: pytest.TempPathFactory):
    cloud = Nimbus("sqlite", tmp_path_factory.mktemp("qemu"))
    cloud.fake_hosts = None
    # Guests' sockets need a short path (a unix socket path holds 107 bytes).
    instances = Path(tempfile.mkdtemp(prefix="nimbus-e2e-", dir="/tmp"))
    cloud.instances = instances
    cloud.extra_conf = f"[compute]\ninstances_path = {instances}\n"
    cloud.ready_timeout = FIRST_START_TIMEOUT
    cloud.start()
    # Ready means serving; the first start's flavors and image come just before the ready line.
    wait_for(lambda: "Nimbus is ready" in cloud.output(), FIRST_START_TIMEOUT, "the first start to finish")
    try:
        yield cloud
    finally:
        leftovers = [p.name for p in instances.iterdir() if p.name != "_base"] if instances.is_dir() else []
        cloud.stop()
        # Whatever a failed test left running is stopped, so it cannot disturb the next run.
        for guest in leftovers:
            for pid in qemu_pids(guest):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(instances, ignore_errors=True)
        assert leftovers == [], f"guest directories left behind: {leftovers}"


class Server:
    """A server made through the CLI, and what the tests look at."""

    def __init__(self, cloud: Nimbus, name: str, *create_args: str) -> None:
        self.cloud = cloud
        self.name = name
        created = cloud.osc("server", "create", "--flavor", "m1.nano", "--wait", *create_args, name)
        assert created["status"] == "ACTIVE", created
        self.id = created["id"]

    @property
    def directory(self) -> Path:
        return self.cloud.instances / self.id

    def show(self) -> dict:
        return self.cloud.osc("server", "show", self.id)

    def status(self) -> str:
        return self.show()["status"]

    def console(self) -> str:
        return self.cloud.osc("console", "log", "show", self.id, fmt=None)

    def wait_console(self, pattern: str, timeout: float = LINE_TIMEOUT, after: int = 0) -> re.Match:
        """The first match of `pattern` in the console log past offset `after`."""
        return wait_for(lambda: re.compile(pattern).search(self.console(), after), timeout, f"{pattern!r} on {self.name}'s console")

    def act(self, *action: str, status: str) -> None:
        self.cloud.osc("server", *action, self.id)
        wait_for(lambda: self.status() == status, 120, f"{self.name} to become {status}")

    def delete(self) -> None:
        # The server leaves the API at once and its host destroys the guest after (see
        # ComputeService.deleteServer), so `--wait` returns before the host may have finished.
        self.cloud.osc("server", "delete", "--wait", self.id)
        wait_for(lambda: qemu_pids(self.id) == [], 60, "the guest's QEMU process to be gone")
        wait_for(lambda: not self.directory.exists(), 60, f"{self.directory} to be gone (overlay, sockets, console log)")


def test_the_first_command_gives_a_cloud_that_boots_the_test_image(qemu_cloud: Nimbus) -> None:
    flavors = {f["Name"]: f for f in qemu_cloud.osc("flavor", "list")}
    assert {"m1.nano", "m1.micro", "m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= set(flavors)
    assert flavors["m1.nano"]["ID"] == "42"
    hypervisors = qemu_cloud.osc("hypervisor", "list")
    assert [h["Hypervisor Type"] for h in hypervisors] == ["QEMU"]

    server = Server(qemu_cloud, "demo", "--image", "nimbus-test")
    assert qemu_pids(server.id), "a QEMU process runs the guest"
    line = server.wait_console(r"NIMBUS-GUEST uuid=(\S+) hostname=(\S+) ip=")
    assert line.group(1) == server.id and line.group(2) == "demo", line.group(0)
    assert "config drive found" in server.console()
    server.delete()


def test_lifecycle_actions_on_a_real_guest(qemu_cloud: Nimbus, tmp_path: Path) -> None:
    counter = tmp_path / "counter.sh"
    counter.write_text("#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"COUNTER $i\"; sleep 1; done\n")
    server = Server(qemu_cloud, "life", "--image", "nimbus-test", "--user-data", str(counter))
    server.wait_console(r"COUNTER 2\b")

    # Stop: the guest sees ACPI and its process exits; start boots it again.
    server.act("stop", status="SHUTOFF")
    assert qemu_pids(server.id) == []
    boots = server.console().count("init started")
    server.act("start", status="ACTIVE")
    wait_for(lambda: server.console().count("init started") > boots, LINE_TIMEOUT, "the guest to boot again")

    # Suspend: the process is gone and the guest continues where it was.
    wait_for(lambda: server.console().count("COUNTER") > 3, LINE_TIMEOUT, "the counter to run after the start")
    server.act("suspend", status="SUSPENDED")
    assert qemu_pids(server.id) == []
    before = max(int(n) for n in re.findall(r"COUNTER (\d+)", server.console()))
    boots = server.console().count("init started")
    server.act("resume", status="ACTIVE")
    wait_for(lambda: max(int(n) for n in re.findall(r"COUNTER (\d+)", server.console())) > before, LINE_TIMEOUT, "the counter to go on")
    assert server.console().count("init started") == boots, "resume continued the guest, it did not boot it again"

    # Pause and unpause.
    server.act("pause", status="PAUSED")
    server.act("unpause", status="ACTIVE")

    # Soft and hard reboot.
    boots = server.console().count("init started")
    server.act("reboot", status="ACTIVE")
    wait_for(lambda: server.console().count("init started") > boots, LINE_TIMEOUT, "the guest to reboot")
    boots = server.console().count("init started")
    server.act("reboot", "--hard", status="ACTIVE")
    wait_for(lambda: server.console().count("init started") > boots, LINE_TIMEOUT, "the guest to reboot hard")

    # A snapshot into the image service boots a new server to its line.
    qemu_cloud.osc("server", "image", "create", "--name", "life-snap", "--wait", server.id)
    copy = Server(qemu_cloud, "from-snap", "--image", "life-snap")
    line = copy.wait_console(r"NIMBUS-GUEST uuid=(\S+) hostname=(\S+) ip=")
    assert line.group(1) == copy.id and line.group(2) == "from-snap", line.group(0)
    copy.delete()
    qemu_cloud.osc("image", "delete", "life-snap", fmt=None)

    # Rescue boots the rescue image with the server's disk beside it; unrescue boots its own.
    server.act("rescue", status="RESCUE")
    server.act("unrescue", status="ACTIVE")

    # Shelve: snapshot, guest and overlay gone; unshelve boots it from that snapshot.
    server.act("shelve", status="SHELVED_OFFLOADED")
    assert qemu_pids(server.id) == [] and not server.directory.exists()
    server.act("unshelve", status="ACTIVE")
    wait_for(lambda: qemu_pids(server.id), 60, "the unshelved guest to run")
    server.wait_console(r"NIMBUS-GUEST uuid=")

    # Rebuild: a new overlay from the image, the same server.
    server.act("rebuild", "--image", "nimbus-test", status="ACTIVE")
    wait_for(lambda: server.console().count("init started") >= 1 and qemu_pids(server.id), LINE_TIMEOUT, "the rebuilt guest to boot")
    server.delete()

    # A one-host cloud resizes in place (allow_resize_to_same_host): the guest stops, boots
    # again with the bigger flavor's RAM and reports it on its console line.
    grown = Server(qemu_cloud, "grown", "--image", "nimbus-test")
    line = r"NIMBUS-GUEST uuid=\S+ hostname=\S+ ip=\S+ mem=(\d+)"
    before = int(grown.wait_console(line).group(1))
    qemu_cloud.osc("server", "resize", "--flavor", "m1.micro", grown.id)
    wait_for(lambda: grown.status() == "VERIFY_RESIZE", 120, "the resize")
    qemu_cloud.osc("server", "resize", "confirm", grown.id, fmt=None)
    wait_for(lambda: grown.status() == "ACTIVE", 120, "the confirm")
    after = wait_for(lambda: [int(m) for m in re.findall(line, grown.console()) if int(m) > before], LINE_TIMEOUT, "more memory")
    assert after[-1] - before >= 50, (before, after)  # m1.micro has 192 MiB, m1.nano 128
    grown.delete()


def test_guests_outlive_a_killed_cloud_and_are_found_again(qemu_cloud: Nimbus) -> None:
    server = Server(qemu_cloud, "survivor", "--image", "nimbus-test")
    server.wait_console(r"NIMBUS-GUEST uuid=")
    pids = qemu_pids(server.id)
    assert pids

    assert qemu_cloud.process is not None
    os.killpg(qemu_cloud.process.pid, signal.SIGKILL)
    qemu_cloud.process.wait(timeout=10)
    assert qemu_pids(server.id) == pids, "the guest kept running while its host's agent was dead"

    qemu_cloud.start()
    wait_for(lambda: qemu_cloud.output().count("Nimbus is ready") >= 1, FIRST_START_TIMEOUT, "the restart")
    assert server.status() == "ACTIVE"
    assert qemu_pids(server.id) == pids, "the restarted agent re-attached instead of starting another"
    server.act("stop", status="SHUTOFF")
    server.delete()


class WebSocketRefused(Exception):
    """The server answered the websocket handshake with something other than 101."""


class WebSocket:
    """A websocket client, RFC 6455 by hand (binary frames only): what noVNC's page does."""

    def __init__(self, url: str, timeout: float = 15.0) -> None:
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if len(lines[0].split()) > 1 else 0
        if status != 101:
            self.sock.close()
            raise WebSocketRefused(lines[0])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert headers.get("sec-websocket-accept") == expected, headers
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        self.data = b""

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the websocket closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        head = bytes([0x80 | opcode])
        if size < 126:
            head += bytes([0x80 | size])
        elif size < 1 << 16:
            head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, payload: bytes) -> None:
        self._frame(0x2, payload)

    def recv(self, n: int) -> bytes:
        """Exactly n bytes of the binary stream the server sends."""
        while len(self.data) < n:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(self._read(2), "big")
            elif size == 127:
                size = int.from_bytes(self._read(8), "big")
            payload = self._read(size)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError(f"the server closed the websocket: {payload!r}")
            if opcode == 0x9:
                self._frame(0xA, payload)
            elif opcode in (0x0, 0x2):
                self.data += payload
        out, self.data = self.data[:n], self.data[n:]
        return out

    def close(self) -> None:
        try:
            self._frame(0x8, (1000).to_bytes(2, "big"))
        finally:
            self.sock.close()


def test_novnc_console_url_opens_the_guests_vnc_server(qemu_cloud: Nimbus) -> None:
    server = Server(qemu_cloud, "vnc", "--image", "nimbus-test")
    console = qemu_cloud.osc("console", "url", "show", "--novnc", server.id)
    assert console["protocol"] == "vnc" and console["type"] == "novnc", console
    url = urllib.parse.urlsplit(console["url"])
    # Nova's shape, on the listener: the noVNC page, the token in its websocket path.
    assert f"{url.scheme}://{url.netloc}" == qemu_cloud.base_url and url.path == "/novnc/vnc_lite.html", console["url"]
    path = urllib.parse.parse_qs(url.query)["path"][0]
    assert path.startswith("?token="), path
    token = path[len("?token="):]

    # The page (Debian's noVNC) needs no token.
    page = requests.get(console["url"], timeout=30)
    assert page.status_code == 200 and "noVNC" in page.text and "RFB" in page.text

    # An admin sees what the token opens while it is valid.
    shown = qemu_cloud.http("GET", f"/compute/v2.1/os-console-auth-tokens/{token}", token=qemu_cloud.admin_token(),
                            headers={"OpenStack-API-Version": "compute 2.31"})
    assert shown.status_code == 200, shown.text
    assert shown.json()["console"]["instance_uuid"] == server.id

    # What the page's script does: a websocket to /<path>, then RFB through it to QEMU's VNC server.
    websocket = f"ws://{url.netloc}/{path}"
    ws = WebSocket(websocket)
    version = ws.recv(12)
    assert re.fullmatch(rb"RFB 003\.00[378]\n", version), version
    ws.send(version)
    count = ws.recv(1)[0]
    security = ws.recv(count)
    assert count >= 1 and 1 in security, f"QEMU offers security type None: {list(security)}"
    ws.close()

    # The token opened one connection; it is spent, and a made-up one opens nothing.
    with pytest.raises(WebSocketRefused):
        WebSocket(websocket)
    with pytest.raises(WebSocketRefused):
        WebSocket(f"ws://{url.netloc}/?token=not-a-token")
    gone = qemu_cloud.http("GET", f"/compute/v2.1/os-console-auth-tokens/{token}", token=qemu_cloud.admin_token(),
                           headers={"OpenStack-API-Version": "compute 2.31"})
    assert gone.status_code == 404, gone.text
    server.delete()
