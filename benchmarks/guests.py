"""Real-guest benchmark (not a test): Nimbus against the same QEMU started by hand.

Starts `nimbus up` (QEMU driver, SQLite, a temporary data directory; its first start makes
DevStack's flavors and the test image) and measures, each figure paired run by run with a
floor measured in the same run, A B A B …, so that the ratio holds on a noisy machine:

  boot-1   create → ACTIVE and create → the guest's NIMBUS-GUEST console line, one m1.nano
           guest. Floor: the QEMU command line Nimbus used for a warm-up guest (read from
           /proc/PID/cmdline), replayed by hand in a scratch directory: a fresh qcow2 overlay
           on the same cached base image (`qemu-img create`), a copy of that guest's config
           drive, then QEMU itself; timed from before `qemu-img create` to the console line.
  boot-4   the same for 4 guests at once (4 concurrent POSTs; 4 hand-started QEMUs), to the
           last of the 4 console lines.
  snapshot a stopped guest whose 1 GiB root overlay was filled by `qemu-io` (1 GiB of
           written clusters), `createImage` → the image `active`: once on `nimbus up` (the
           image service in the same process takes the host's copy into its store), once
           on a `nimbus agent` of the second cloud below (the copy goes over HTTP). Floors:
           `qemu-img convert -O qcow2` of the same overlay file to a scratch file; and that
           convert followed by the two digests Glance records of every image (MD5 `checksum`,
           SHA-512 `os_hash_value`), computed at once by two `openssl dgst` processes — the
           least any snapshot that ends as a Glance image with those fields costs. The image
           must record the digests of the convert's output (the same bytes every time).
  memory   the resident memory of the `nimbus up` process (controller and the local host's
           agent in one process, so an upper bound on the agent's share) with 0 and with 4
           running guests: the growth per guest, beside one QEMU process's own RSS.
  livemig  on a second cloud, made as Tests/EndToEnd/test_qemu_moves.py makes it: `nimbus
           controller` and two `nimbus agent --driver qemu` processes, on 127.0.0.1 and
           127.0.0.2, each with its own instances directory. One m1.nano guest (128 MiB) of the test image,
           counting on its console, is live-migrated back and forth; QEMU's `total-time` and
           `downtime` (QMP `query-migrate`) come from the source agent's log, the wall time
           from the API call to the server ACTIVE on the other host. Floor: that guest's QEMU
           command line (from /proc) started by hand as a source, booted, and for every run
           again with `-incoming defer` as the destination, migrated over QMP the way
           QEMUDriver+LiveMigration.swift does it (return-path, the same bandwidth and downtime
           limits, an NBD export of the destination's fresh overlay, `blockdev-mirror` sync
           top in write-blocking mode until ready, then `migrate`), alternating the address as
           the guest alternates hosts; its wall time runs from `qemu-img create` of the
           destination's overlay to the migration's completion.

Prints a Markdown table; --json FILE writes every sample; --figures picks which of boot,
memory, snapshot and livemig run. Nothing here sends traffic anywhere but 127.0.0.1 and
127.0.0.2, and every process and directory it makes is removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

GUEST_LINE = "NIMBUS-GUEST uuid="
FIGURES = ("boot", "memory", "snapshot", "livemig")
# The guest's user data for live migration: a counter on the console, as in test_qemu_moves.py.
COUNTER = "#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"COUNTER $i\"; sleep 1; done\n"
# What QEMUDriverConfiguration gives every live migration (migrationMaxBandwidthMiBps,
# migrationDowntimeLimitMS); the floor sets the same.
MIGRATION_MAX_BANDWIDTH = 1024 << 20
MIGRATION_DOWNTIME_LIMIT_MS = 300


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def processes_under(root: Path) -> list[int]:
    """Live processes whose command line names a path under `root`: the QEMUs this run started."""
    needle = (str(root) + "/").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def has_line(directory: Path, text: str = GUEST_LINE) -> bool:
    try:
        return text in (directory / "console.log").read_text(errors="replace")
    except FileNotFoundError:
        return False


def qemu_pid(directory: Path) -> int:
    return int((directory / "qemu.pid").read_text().strip())


class Cloud:
    """`nimbus up` (or, with command="controller", `nimbus controller`) on a data directory of its own."""

    def __init__(self, binary: str, workdir: Path, command: str = "up", conf: str = ""):
        self.workdir = workdir
        self.data = workdir / "data"
        self.instances = workdir / "i"
        self.data.mkdir(parents=True)
        # No dataplane: the figures are the guests' own, and nothing is wired in this namespace.
        (self.data / "nimbus.conf").write_text(f"[compute]\ninstances_path = {self.instances}\n[network]\ndataplane = none\n" + conf)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "nimbus.log", "ab")
        self.process = subprocess.Popen([binary, command, "--data-dir", str(self.data), "--listen", f"127.0.0.1:{self.port}"],
                                        stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        wait(lambda: b"Nimbus is ready" in (workdir / "nimbus.log").read_bytes() or self.process.poll() is not None, 600,
             f"nimbus {command} to be ready", 0.5)
        if self.process.poll() is not None:
            raise SystemExit((workdir / "nimbus.log").read_text()[-3000:])
        self.password_file = self.data / "admin-password"
        password = self.password_file.read_text().strip()
        reply = requests.post(self.url + "/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}, timeout=30)
        self.session = requests.Session()
        self.session.headers.update({"X-Auth-Token": reply.headers["X-Subject-Token"], "OpenStack-API-Version": "compute 2.90"})
        project = reply.json()["token"]["project"]["id"]
        self.api("PUT", f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
        images = self.api("GET", "/image/v2/images?name=nimbus-test").json()["images"]
        self.image = images[0]["id"] if images else None

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        reply = self.session.request(method, self.url + path, timeout=60, **kwargs)
        if reply.status_code >= 400:
            raise SystemExit(f"{method} {path}: {reply.status_code} {reply.text}")
        return reply

    def create(self, name: str, user_data: str | None = None) -> str:
        server = {"name": name, "imageRef": self.image, "flavorRef": "42", "networks": "none"}
        if user_data is not None:
            server["user_data"] = base64.b64encode(user_data.encode()).decode()
        return self.api("POST", "/compute/v2.1/servers", json={"server": server}).json()["server"]["id"]

    def server(self, uuid: str) -> dict:
        return self.api("GET", f"/compute/v2.1/servers/{uuid}").json()["server"]

    def wait_status(self, uuid: str, status: str, timeout: float = 120) -> dict:
        def reached():
            s = self.server(uuid)
            if s["status"] == "ERROR":
                raise SystemExit(f"server {uuid} went to ERROR: {s.get('fault')}")
            return s if s["status"] == status and not s.get("OS-EXT-STS:task_state") else None
        return wait(reached, timeout, f"{uuid} {status}", 0.05)

    def console_has_line(self, uuid: str) -> bool:
        return has_line(self.instances / uuid)

    def delete(self, uuid: str) -> None:
        self.session.delete(self.url + f"/compute/v2.1/servers/{uuid}", timeout=60)

    def wait_gone(self, uuid: str) -> None:
        wait(lambda: self.session.get(self.url + f"/compute/v2.1/servers/{uuid}", timeout=60).status_code == 404, 120, f"{uuid} deleted", 0.1)

    def qemu_pid(self, uuid: str) -> int:
        return qemu_pid(self.instances / uuid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Floor:
    """The QEMU command Nimbus ran for a template guest (its directory), replayed by hand."""

    def __init__(self, template_dir: Path, scratch: Path):
        self.argv = Path(f"/proc/{qemu_pid(template_dir)}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
        self.template_dir = str(template_dir)
        self.scratch = scratch
        info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(template_dir / "disk")],
                                         check=True, capture_output=True, text=True).stdout)
        self.backing = info["full-backing-filename"] if "full-backing-filename" in info else info["backing-filename"]
        self.backing_format = info.get("backing-filename-format", "raw")
        self.size = info["virtual-size"]
        self.config_drive = scratch / f"disk.config.{template_dir.name}"
        shutil.copy(template_dir / "disk.config", self.config_drive)

    def start(self, name: str, incoming: bool = False) -> Path:
        """A fresh overlay and a copy of the config drive in scratch/name, then the command;
        with `incoming`, as a live migration's destination (`-incoming defer`, as Nimbus's)."""
        directory = self.scratch / name
        directory.mkdir()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", self.backing, "-F", self.backing_format,
                        str(directory / "disk"), str(self.size)], check=True)
        shutil.copy(self.config_drive, directory / "disk.config")
        argv = [a.replace(self.template_dir, str(directory)) for a in self.argv]
        if incoming:
            argv += ["-incoming", "defer"]
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)
        return directory

    @staticmethod
    def has_line(directory: Path) -> bool:
        return has_line(directory)

    @staticmethod
    def kill(directory: Path) -> None:
        try:
            os.kill(qemu_pid(directory), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        time.sleep(0.2)
        shutil.rmtree(directory, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def at_once(count: int, start):
    """start(0) … start(count − 1), each on its own thread; their results in order."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


def boot_nimbus(cloud: Cloud, count: int, tag: str) -> tuple[float, float]:
    """Seconds from the first POST to the last ACTIVE, and to the last console line."""
    start = time.monotonic()
    uuids = at_once(count, lambda i: cloud.create(f"{tag}-{i}"))
    active: dict[str, float] = {}
    line: dict[str, float] = {}
    def done():
        for u in uuids:
            if u not in active and cloud.server(u)["status"] == "ACTIVE":
                active[u] = time.monotonic() - start
            if u not in line and cloud.console_has_line(u):
                line[u] = time.monotonic() - start
        return len(active) == count and len(line) == count
    wait(done, 300, f"{count} guests to boot", 0.02)
    for u in uuids:
        cloud.delete(u)
    for u in uuids:
        cloud.wait_gone(u)
    return max(active.values()), max(line.values())


def boot_floor(floor: Floor, count: int, tag: str) -> float:
    start = time.monotonic()
    dirs = at_once(count, lambda i: floor.start(f"{tag}-{i}"))
    wait(lambda: all(Floor.has_line(d) for d in dirs), 300, f"{count} floor guests", 0.02)
    elapsed = time.monotonic() - start
    for d in dirs:
        Floor.kill(d)
    return elapsed


def measure_boot(cloud: Cloud, floor: Floor, runs: int, samples: dict) -> None:
    for count in (1, 4):
        key = f"boot-{count}"
        samples[key] = []
        boot_nimbus(cloud, count, f"warm{count}")
        Floor.kill(Path(floor.start("warm")))
        for run in range(runs):
            active, line = boot_nimbus(cloud, count, f"b{count}r{run}")
            floor_line = boot_floor(floor, count, f"b{count}r{run}")
            samples[key].append({"active": active, "line": line, "floor_line": floor_line})
            print(f"{key} run {run}: ACTIVE {active:.2f} s, line {line:.2f} s, floor {floor_line:.2f} s", file=sys.stderr)


def measure_memory(cloud: Cloud, qemu_rss: int, samples: dict) -> None:
    """nimbus up's RSS idle, then with 4 guests running."""
    time.sleep(2)
    idle = rss_kib(cloud.process.pid)
    running = [cloud.create(f"mem-{i}") for i in range(4)]
    for u in running:
        cloud.wait_status(u, "ACTIVE")
    wait(lambda: all(cloud.console_has_line(u) for u in running), 120, "the memory guests' lines")
    time.sleep(2)
    busy = rss_kib(cloud.process.pid)
    samples["memory"] = [{"idle_kib": idle, "four_guests_kib": busy, "qemu_rss_kib": qemu_rss}]
    for u in running:
        cloud.delete(u)
    for u in running:
        cloud.wait_gone(u)


def convert_and_hash(overlay: Path, out: Path) -> tuple[float, dict[str, str]]:
    """The snapshot's second floor: `qemu-img convert`, then MD5 and SHA-512 of its output at
    once. Seconds, and the digests (hex) by algorithm."""
    start = time.monotonic()
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(overlay), str(out)], check=True)
    digests = {algorithm: subprocess.Popen(["openssl", "dgst", f"-{algorithm}", "-r", str(out)], stdout=subprocess.PIPE, text=True)
               for algorithm in ("md5", "sha512")}
    hexes = {}
    for algorithm, process in digests.items():
        output, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit("openssl dgst failed")
        hexes[algorithm] = output.split()[0]
    return time.monotonic() - start, hexes


def measure_snapshot(cloud: Cloud, scratch: Path, runs: int, samples: dict, key: str = "snapshot", directory=None) -> None:
    """Snapshots of a stopped guest with a 1 GiB overlay, each between its two floors.
    `directory(uuid)`: where the guest's files are (default: in `cloud`'s own instances)."""
    samples[key] = []
    out = scratch / "convert.qcow2"
    for run in range(runs):
        uuid = cloud.create(f"snap-{run}")
        cloud.wait_status(uuid, "ACTIVE")
        cloud.api("POST", f"/compute/v2.1/servers/{uuid}/action", json={"os-stop": None})
        cloud.wait_status(uuid, "SHUTOFF")
        overlay = (directory(uuid) if directory else cloud.instances / uuid) / "disk"
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1G", str(overlay)], check=True, capture_output=True)
        # Each of the three starts with no dirty data of the one before waiting to be written
        # back (and the overlay in the page cache for all of them).
        os.sync()
        start = time.monotonic()
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(overlay), str(out)], check=True)
        floor_seconds = time.monotonic() - start
        out.unlink()
        os.sync()
        start = time.monotonic()
        reply = cloud.api("POST", f"/compute/v2.1/servers/{uuid}/action", json={"createImage": {"name": f"snap-{run}"}})
        image = reply.json().get("image_id") or reply.headers["Location"].rsplit("/", 1)[-1]
        wait(lambda: cloud.api("GET", f"/image/v2/images/{image}").json()["status"] == "active", 300, "the snapshot", 0.02)
        nimbus_seconds = time.monotonic() - start
        os.sync()
        hashed_seconds, digests = convert_and_hash(overlay, out)
        out.unlink()
        # qemu-img convert's output is the same bytes every time: the image must record its digests.
        recorded = cloud.api("GET", f"/image/v2/images/{image}").json()
        if (recorded["checksum"], recorded["os_hash_value"]) != (digests["md5"], digests["sha512"]):
            raise SystemExit(f"snapshot {image} records checksum {recorded['checksum']}, os_hash_value {recorded['os_hash_value']}; "
                             f"the convert's output has {digests}")
        samples[key].append({"nimbus": nimbus_seconds, "floor": floor_seconds, "floor_hashed": hashed_seconds})
        print(f"{key} run {run}: {nimbus_seconds:.2f} s, qemu-img convert {floor_seconds:.2f} s, "
              f"convert + MD5 ‖ SHA-512 {hashed_seconds:.2f} s", file=sys.stderr)
        cloud.api("DELETE", f"/image/v2/images/{image}")
        cloud.delete(uuid)
        cloud.wait_gone(uuid)


class QMP:
    """A QEMU monitor connection (unix socket, one command at a time; events are skipped)."""

    def __init__(self, path: Path, timeout: float = 60):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.settimeout(timeout)
        self.socket.connect(str(path))
        self.reader = self.socket.makefile("rb")
        json.loads(self.reader.readline())  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, command: str, **arguments):
        message: dict = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.socket.sendall(json.dumps(message).encode() + b"\n")
        while True:
            line = self.reader.readline()
            if not line:
                raise SystemExit(f"QMP {command}: the monitor closed")
            reply = json.loads(line)
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise SystemExit(f"QMP {command}: {reply['error']}")

    def close(self) -> None:
        self.reader.close()
        self.socket.close()


class Agent:
    """One `nimbus agent --driver qemu` process, as test_qemu_moves.py starts them."""

    def __init__(self, binary: str, controller: Cloud, name: str, address: str, workdir: Path):
        self.name, self.address = name, address
        self.instances = workdir / name[-1]
        self.log = workdir / f"agent-{name}.log"
        self.process = subprocess.Popen(
            [binary, "agent", "--controller", controller.url, "--host", name, "--password-file", str(controller.password_file),
             "--heartbeat", "1", "--driver", "qemu", "--instances-path", str(self.instances), "--host-ip", address, "--dataplane", "none"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


MIGRATION_FIGURES = re.compile(r"disks copied in ([-+.\deE]+) seconds, memory in ([-+.\deE]+) seconds, "
                               r"downtime ([-+.\deE]+) seconds, (\d+) MiB of RAM sent")


def migrate_nimbus(controller: Cloud, agents: dict[str, Agent], uuid: str) -> dict:
    """One live migration through the API, to whichever host the scheduler picks (the other one)."""
    source = agents[controller.server(uuid)["OS-EXT-SRV-ATTR:host"]]
    log = open(source.log, "rb")
    log.seek(0, os.SEEK_END)
    start = time.monotonic()
    controller.api("POST", f"/compute/v2.1/servers/{uuid}/action", json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    # Until the source has logged QEMU's figures, only its log is watched: polling the API
    # (and this process's HTTP client) would take CPU from the migration that the floor's,
    # watched over QMP alone, does not lose.
    logged = b""

    def figures_logged():
        nonlocal logged
        logged += log.read()
        return any(f"live migration of {uuid}:" in line for line in logged.decode(errors="replace").splitlines(keepends=True)
                   if line.endswith("\n"))
    wait(figures_logged, 300, f"the source's figures of the live migration of {uuid}", 0.01)
    log.close()

    def arrived():
        s = controller.server(uuid)
        if s["status"] == "ERROR":
            raise SystemExit(f"server {uuid} went to ERROR: {s.get('fault')}")
        return s["status"] == "ACTIVE" and not s.get("OS-EXT-STS:task_state") and s["OS-EXT-SRV-ATTR:host"] != source.name
    wait(arrived, 300, f"the live migration of {uuid}", 0.02)
    wall = time.monotonic() - start
    line = next(l for l in logged.decode(errors="replace").splitlines() if f"live migration of {uuid}:" in l)
    figures = MIGRATION_FIGURES.search(line)
    if figures is None:
        raise SystemExit(f"cannot read the migration figures in: {line}")
    disk, total, downtime, ram = figures.groups()
    return {"wall": wall, "disk_copy": float(disk), "total": float(total), "downtime": float(downtime), "ram_mib": int(ram),
            "from": source.name}


def migrate_floor(floor: Floor, source: Path, name: str, address: str) -> tuple[Path, dict]:
    """The guest in `source` live-migrated by hand to a new QEMU on `address`, as Nimbus does it.
    Returns the destination's directory (the guest's new home) and the figures."""
    capabilities = [{"capability": "return-path", "state": True}]
    start = time.monotonic()
    destination = floor.start(name, incoming=True)
    incoming = QMP(destination / "qmp.sock")
    outgoing = QMP(source / "qmp.sock")
    try:
        incoming.execute("migrate-set-capabilities", capabilities=capabilities)
        node = next(d["inserted"]["node-name"] for d in incoming.execute("query-block") if d["device"] == "root")
        nbd_port = free_port(address)
        incoming.execute("nbd-server-start", addr={"type": "inet", "data": {"host": address, "port": str(nbd_port)}})
        incoming.execute("block-export-add", **{"type": "nbd", "id": "root", "node-name": node, "name": "root", "writable": True})
        stream = f"tcp:{address}:{free_port(address)}"
        incoming.execute("migrate-incoming", uri=stream)

        job = "floor-migrate-root"
        outgoing.execute("migrate-set-capabilities", capabilities=capabilities)
        outgoing.execute("migrate-set-parameters", **{"max-bandwidth": MIGRATION_MAX_BANDWIDTH, "downtime-limit": MIGRATION_DOWNTIME_LIMIT_MS})
        outgoing.execute("blockdev-add", **{"driver": "nbd", "node-name": job, "export": "root",
                                            "server": {"type": "inet", "host": address, "port": str(nbd_port)}})
        outgoing.execute("blockdev-mirror", **{"job-id": job, "device": "root", "target": job, "sync": "top", "copy-mode": "write-blocking"})
        copy_start = time.monotonic()
        wait(lambda: any(j["device"] == job and j.get("ready") for j in outgoing.execute("query-block-jobs")), 300, "the floor's mirror", 0.02)
        disk_copy = time.monotonic() - copy_start
        outgoing.execute("migrate", uri=stream)

        def completed():
            info = outgoing.execute("query-migrate")
            if info.get("status") in ("failed", "cancelled"):
                raise SystemExit(f"the floor's migration {info.get('status')}: {info.get('error-desc', '')}")
            return info if info.get("status") == "completed" else None
        info = wait(completed, 300, "the floor's migration", 0.01)
        wall = time.monotonic() - start
        outgoing.execute("block-job-cancel", device=job)
        wait(lambda: not any(j["device"] == job for j in outgoing.execute("query-block-jobs")), 30, "the floor's mirror to end", 0.02)
        outgoing.execute("blockdev-del", **{"node-name": job})
        wait(lambda: incoming.execute("query-status")["status"] == "running", 30, "the floor's destination to run", 0.02)
        incoming.execute("nbd-server-stop")
    finally:
        incoming.close()
        outgoing.close()
    Floor.kill(source)
    return destination, {"wall": wall, "disk_copy": disk_copy, "total": info["total-time"] / 1000, "downtime": info["downtime"] / 1000,
                         "ram_mib": info["ram"]["transferred"] >> 20, "query_migrate": info}


def guest_dir(agents: dict[str, Agent], uuid: str, running: bool = True) -> Path:
    """The guest's directory on whichever agent has it (with a QEMU running, unless `running` is false)."""
    return next(a.instances / uuid for a in agents.values() if (a.instances / uuid / ("qemu.pid" if running else "disk")).exists())


def counting(directory: Path) -> int:
    """The highest COUNTER the guest has printed."""
    try:
        return max(map(int, re.findall(r"COUNTER (\d+)", (directory / "console.log").read_text(errors="replace"))), default=0)
    except FileNotFoundError:
        return 0


def measure_two_hosts(binary: str, up: Cloud, workdir: Path, figures: set[str], args, samples: dict) -> None:
    """A controller and two agents: snapshots uploaded by an agent over HTTP, and one guest
    live-migrated back and forth, each beside its floors."""
    controller = Cloud(binary, workdir, command="controller", conf="[DEFAULT]\nreport_interval = 1\n")
    agents: dict[str, Agent] = {}
    try:
        for name, address in (("qemu-a", "127.0.0.1"), ("qemu-b", "127.0.0.2")):
            agents[name] = Agent(binary, controller, name, address, workdir)

        def both_up():
            services = controller.api("GET", "/compute/v2.1/os-services?binary=nova-compute").json()["services"]
            return {s["host"]: s["state"] for s in services} == {"qemu-a": "up", "qemu-b": "up"}
        wait(both_up, 300, "both agents to register", 0.5)
        # The test image and m1.nano as `nimbus up` made them: the image's data, and the
        # properties it was given (what the up cloud shows beyond a fresh image's fields).
        source_image = up.api("GET", f"/image/v2/images/{up.image}").json()
        made = controller.api("POST", "/image/v2/images", json={"name": "nimbus-test", "disk_format": "qcow2",
                                                                 "container_format": "bare", "visibility": "public"}).json()
        properties = {k: v for k, v in source_image.items() if k not in made and isinstance(v, str) and k not in ("stores", "direct_url")}
        controller.api("PATCH", f"/image/v2/images/{made['id']}", data=json.dumps([{"op": "add", "path": f"/{k}", "value": v} for k, v in properties.items()]),
                       headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        data = up.session.get(up.url + f"/image/v2/images/{up.image}/file", timeout=300)
        controller.api("PUT", f"/image/v2/images/{made['id']}/file", data=data.content, headers={"Content-Type": "application/octet-stream"})
        controller.image = made["id"]
        flavor = up.api("GET", "/compute/v2.1/flavors/42").json()["flavor"]
        controller.api("POST", "/compute/v2.1/flavors", json={"flavor": {k: flavor[k] for k in ("id", "name", "ram", "disk", "vcpus")}})

        if "snapshot" in figures:
            scratch = workdir / "sfloor"
            scratch.mkdir()
            measure_snapshot(controller, scratch, args.snapshot_runs, samples, "snapshot-agent",
                             lambda uuid: guest_dir(agents, uuid, running=False))
        if "livemig" in figures:
            measure_live_migration(controller, agents, workdir, args.migration_runs, samples)
    finally:
        for agent in agents.values():
            agent.stop()
        controller.stop()


def measure_live_migration(controller: Cloud, agents: dict[str, Agent], workdir: Path, runs: int, samples: dict) -> None:
    """One guest moved back and forth between the two agents, each move beside a floor's."""
    uuid = controller.create("mover", user_data=COUNTER)
    controller.wait_status(uuid, "ACTIVE")
    wait(lambda: counting(guest_dir(agents, uuid)) >= 3, 180, "the guest's counter")
    scratch = workdir / "mfloor"
    scratch.mkdir()
    floor = Floor(guest_dir(agents, uuid), scratch)
    print(f"live migration floor command: {' '.join(floor.argv)}", file=sys.stderr)
    floor_guest = floor.start("m0")
    wait(lambda: counting(floor_guest) >= 3, 180, "the floor guest's counter")
    # The floor moves between the two addresses as the guest moves between the hosts.
    addresses = ["127.0.0.2", "127.0.0.1"]

    samples["livemig"] = []
    for run in range(runs + 1):  # run 0 warms up: the destination host's base image cache
        nimbus = migrate_nimbus(controller, agents, uuid)
        moved_to = guest_dir(agents, uuid)
        seen = counting(moved_to)
        wait(lambda: counting(moved_to) > seen, 30, "the migrated guest to count on")
        floor_guest, hand = migrate_floor(floor, floor_guest, f"m{run + 1}", addresses[run % 2])
        seen = counting(floor_guest)
        wait(lambda: counting(floor_guest) > seen, 30, "the floor guest to count on")
        print(f"livemig run {run}{' (warm-up)' if run == 0 else ''}: Nimbus total {nimbus['total']:.3f} s, downtime "
              f"{nimbus['downtime'] * 1000:.0f} ms, wall {nimbus['wall']:.2f} s; floor total {hand['total']:.3f} s, downtime "
              f"{hand['downtime'] * 1000:.0f} ms, wall {hand['wall']:.2f} s", file=sys.stderr)
        if run > 0:
            samples["livemig"].append({"nimbus": nimbus, "floor": hand})
    Floor.kill(floor_guest)
    controller.delete(uuid)
    controller.wait_gone(uuid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nimbus", default=os.environ.get("NIMBUS_BIN", ".build/release/nimbus"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--snapshot-runs", type=int, default=3)
    parser.add_argument("--migration-runs", type=int, default=10)
    parser.add_argument("--figures", default=",".join(FIGURES), help=f"comma-separated, of {', '.join(FIGURES)}")
    parser.add_argument("--json")
    args = parser.parse_args()
    figures = set(args.figures.split(","))
    if not figures <= set(FIGURES):
        parser.error(f"--figures: unknown {', '.join(sorted(figures - set(FIGURES)))}")

    # Stopped by a signal, the run still removes what it made (the `finally` below); a
    # background job starts with SIGINT ignored, so SIGTERM is the one that reaches it.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda number, _: sys.exit(128 + number))
    workdir = Path(tempfile.mkdtemp(prefix="nb-", dir="/tmp"))
    # The machine's load average (1, 5, 15 min) at the start and the end: the figures' context.
    samples: dict[str, list] = {"load": [("start", os.getloadavg())]}
    cloud = None
    try:
        cloud = Cloud(args.nimbus, workdir / "up")
        scratch = workdir / "floor"
        scratch.mkdir()
        if figures & {"boot", "memory"}:
            # Warm-up: the base image reaches the host's cache, and the floor's template is taken.
            template = cloud.create("template")
            cloud.wait_status(template, "ACTIVE")
            wait(lambda: cloud.console_has_line(template), 120, "the template's console line")
            floor = Floor(cloud.instances / template, scratch)
            qemu_rss = rss_kib(cloud.qemu_pid(template))
            cloud.delete(template)
            cloud.wait_gone(template)
            print(f"floor command: {' '.join(floor.argv)}", file=sys.stderr)
            if "boot" in figures:
                measure_boot(cloud, floor, args.runs, samples)
            if "memory" in figures:
                measure_memory(cloud, qemu_rss, samples)
        if "snapshot" in figures:
            measure_snapshot(cloud, scratch, args.snapshot_runs, samples)
        if figures & {"snapshot", "livemig"}:
            measure_two_hosts(args.nimbus, cloud, workdir / "moves", figures, args, samples)
        samples["load"].append(("end", os.getloadavg()))
    finally:
        if cloud is not None:
            cloud.stop()
        for pid in processes_under(workdir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        Path(args.json).write_text(json.dumps(samples, indent=2))
    print_table(samples)


def print_table(samples: dict[str, list]) -> None:
    print("| Figure | Nimbus (median) | Floor (median) | Nimbus − floor (median of pairs) | Nimbus / floor (median of pairs) |")
    print("|---|---:|---:|---:|---:|")

    def row(label: str, pairs: list[tuple[float, float]], unit: str = "s", scale: float = 1, digits: int = 2, difference: bool = True) -> None:
        nimbus = median([a for a, _ in pairs]) * scale
        base = median([b for _, b in pairs]) * scale
        diff = f"{median([a - b for a, b in pairs]) * scale:+.{digits}f} {unit}" if difference else ""
        ratio = median([a / b for a, b in pairs]) if all(b > 0 for _, b in pairs) else float("nan")
        print(f"| {label} | {nimbus:.{digits}f} {unit} | {base:.{digits}f} {unit} | {diff} | {ratio:.2f} |")

    for count in (1, 4):
        runs = samples.get(f"boot-{count}", [])
        if not runs:
            continue
        guests = f"{count} guest{'s at once' if count > 1 else ''}"
        row(f"create → ACTIVE, {guests}", [(r["active"], r["floor_line"]) for r in runs], difference=False)
        row(f"create → console line, {guests}", [(r["line"], r["floor_line"]) for r in runs])
    for key, who in (("snapshot", "`nimbus up`"), ("snapshot-agent", "`nimbus agent` over HTTP")):
        snaps = samples.get(key, [])
        if snaps:
            row(f"snapshot of a 1 GiB overlay, {who} (createImage → active) vs `qemu-img convert`", [(r["nimbus"], r["floor"]) for r in snaps])
            row(f"the same vs `qemu-img convert` + MD5 ‖ SHA-512 of its output", [(r["nimbus"], r["floor_hashed"]) for r in snaps])
    moves = samples.get("livemig", [])
    if moves:
        pairs = lambda key: [(r["nimbus"][key], r["floor"][key]) for r in moves]
        row("live migration (128 MiB): QEMU `total-time`", pairs("total"), "ms", 1000, 0)
        row("live migration: QEMU `downtime`", pairs("downtime"), "ms", 1000, 0)
        row("live migration: disk mirror until ready", pairs("disk_copy"), "ms", 1000, 1)
        row("live migration: wall (Nimbus: API call → ACTIVE on the other host)", pairs("wall"))
        print(f"| live migration: RAM sent | {median([r['nimbus']['ram_mib'] for r in moves]):.0f} MiB | "
              f"{median([r['floor']['ram_mib'] for r in moves]):.0f} MiB | | |")
    spreads = []
    for key in ("snapshot", "snapshot-agent"):
        if samples.get(key):
            spreads.append(f"{key}: Nimbus {min(r['nimbus'] for r in samples[key]):.2f}–{max(r['nimbus'] for r in samples[key]):.2f} s, "
                           f"convert {min(r['floor'] for r in samples[key]):.2f}–{max(r['floor'] for r in samples[key]):.2f} s, "
                           f"convert + digests {min(r['floor_hashed'] for r in samples[key]):.2f}–{max(r['floor_hashed'] for r in samples[key]):.2f} s")
    for key, label in (("total", "total-time"), ("downtime", "downtime")):
        if moves:
            spreads.append(f"live migration {label}: Nimbus {min(r['nimbus'][key] for r in moves) * 1000:.0f}–"
                           f"{max(r['nimbus'][key] for r in moves) * 1000:.0f} ms, floor {min(r['floor'][key] for r in moves) * 1000:.0f}–"
                           f"{max(r['floor'][key] for r in moves) * 1000:.0f} ms")
    memory = samples.get("memory")
    if memory:
        m = memory[0]
        per_guest = (m["four_guests_kib"] - m["idle_kib"]) / 4
        print(f"| `nimbus up` RSS per running guest (0 → 4 guests) | {per_guest:.0f} KiB | QEMU's own RSS: {m['qemu_rss_kib'] / 1024:.0f} MiB | | |")
    print()
    if spreads:
        print("Spread (min–max over the runs): " + "; ".join(spreads) + ".")
        print()
    print("Load average (1, 5, 15 min): " + "; ".join(f"{when} {' '.join(f'{v:.1f}' for v in load)}" for when, load in samples["load"]))


if __name__ == "__main__":
    main()
