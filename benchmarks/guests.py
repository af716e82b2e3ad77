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
           written clusters), `createImage` → the image `active`. Floor: `qemu-img convert -O
           qcow2` of the same overlay file to a scratch file.
  memory   the resident memory of the `nimbus up` process (controller and the local host's
           agent in one process, so an upper bound on the agent's share) with 0 and with 4
           running guests: the growth per guest, beside one QEMU process's own RSS.
  livemig  (when the host's driver can live-migrate) see benchmarks/guests_migration.py.

Prints a Markdown table; --json FILE writes every sample. Nothing here sends traffic
anywhere but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

GUEST_LINE = "NIMBUS-GUEST uuid="


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
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


class Cloud:
    def __init__(self, binary: str, workdir: Path):
        self.workdir = workdir
        self.data = workdir / "data"
        self.instances = workdir / "i"
        self.data.mkdir(parents=True)
        (self.data / "nimbus.conf").write_text(f"[compute]\ninstances_path = {self.instances}\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "nimbus.log", "ab")
        self.process = subprocess.Popen([binary, "up", "--data-dir", str(self.data), "--listen", f"127.0.0.1:{self.port}"],
                                        stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        wait(lambda: b"Nimbus is ready" in (workdir / "nimbus.log").read_bytes() or self.process.poll() is not None, 600,
             "nimbus up to be ready", 0.5)
        if self.process.poll() is not None:
            raise SystemExit((workdir / "nimbus.log").read_text()[-3000:])
        password = (self.data / "admin-password").read_text().strip()
        reply = requests.post(self.url + "/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}, timeout=30)
        self.session = requests.Session()
        self.session.headers.update({"X-Auth-Token": reply.headers["X-Subject-Token"], "OpenStack-API-Version": "compute 2.90"})
        project = reply.json()["token"]["project"]["id"]
        self.api("PUT", f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
        images = self.api("GET", "/image/v2/images?name=nimbus-test").json()["images"]
        self.image = images[0]["id"]

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        reply = self.session.request(method, self.url + path, timeout=60, **kwargs)
        if reply.status_code >= 400:
            raise SystemExit(f"{method} {path}: {reply.status_code} {reply.text}")
        return reply

    def create(self, name: str) -> str:
        return self.api("POST", "/compute/v2.1/servers", json={"server": {
            "name": name, "imageRef": self.image, "flavorRef": "42", "networks": "none"}}).json()["server"]["id"]

    def server(self, uuid: str) -> dict:
        return self.api("GET", f"/compute/v2.1/servers/{uuid}").json()["server"]

    def wait_status(self, uuid: str, status: str, timeout: float = 120) -> None:
        def reached():
            s = self.server(uuid)
            if s["status"] == "ERROR":
                raise SystemExit(f"server {uuid} went to ERROR: {s.get('fault')}")
            return s["status"] == status
        wait(reached, timeout, f"{uuid} {status}", 0.05)

    def console_has_line(self, uuid: str) -> bool:
        try:
            return GUEST_LINE in (self.instances / uuid / "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return False

    def delete(self, uuid: str) -> None:
        self.session.delete(self.url + f"/compute/v2.1/servers/{uuid}", timeout=60)

    def wait_gone(self, uuid: str) -> None:
        wait(lambda: self.session.get(self.url + f"/compute/v2.1/servers/{uuid}", timeout=60).status_code == 404, 120, f"{uuid} deleted", 0.1)

    def qemu_pid(self, uuid: str) -> int:
        return int((self.instances / uuid / "qemu.pid").read_text().strip())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Floor:
    """The QEMU command Nimbus ran for a template guest, replayed by hand."""

    def __init__(self, cloud: Cloud, template: str, scratch: Path):
        directory = cloud.instances / template
        pid = cloud.qemu_pid(template)
        self.argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
        self.template_dir = str(directory)
        self.config_drive = directory / "disk.config"
        self.scratch = scratch
        info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(directory / "disk")],
                                         check=True, capture_output=True, text=True).stdout)
        self.backing = info["full-backing-filename"] if "full-backing-filename" in info else info["backing-filename"]
        self.backing_format = info.get("backing-filename-format", "raw")
        self.size = info["virtual-size"]
        shutil.copy(self.config_drive, scratch / "disk.config.template")

    def start(self, name: str) -> Path:
        directory = self.scratch / name
        directory.mkdir()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", self.backing, "-F", self.backing_format,
                        str(directory / "disk"), str(self.size)], check=True)
        shutil.copy(self.scratch / "disk.config.template", directory / "disk.config")
        argv = [a.replace(self.template_dir, str(directory)) for a in self.argv]
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)
        return directory

    @staticmethod
    def has_line(directory: Path) -> bool:
        try:
            return GUEST_LINE in (directory / "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return False

    @staticmethod
    def kill(directory: Path) -> None:
        try:
            os.kill(int((directory / "qemu.pid").read_text().strip()), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        time.sleep(0.2)
        shutil.rmtree(directory, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def boot_nimbus(cloud: Cloud, count: int, tag: str) -> tuple[float, float]:
    """Seconds from the first POST to the last ACTIVE, and to the last console line."""
    start = time.monotonic()
    uuids: list[str] = []
    threads = [threading.Thread(target=lambda i=i: uuids.append(cloud.create(f"{tag}-{i}"))) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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
    dirs: list[Path] = []
    threads = [threading.Thread(target=lambda i=i: dirs.append(floor.start(f"{tag}-{i}"))) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait(lambda: all(Floor.has_line(d) for d in dirs), 300, f"{count} floor guests", 0.02)
    elapsed = time.monotonic() - start
    for d in dirs:
        Floor.kill(d)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nimbus", default=os.environ.get("NIMBUS_BIN", ".build/release/nimbus"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--snapshot-runs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="nb-", dir="/tmp"))
    samples: dict[str, list] = {}
    cloud = Cloud(args.nimbus, workdir)
    try:
        # Warm-up: the base image reaches the host's cache, and the floor's template is taken.
        template = cloud.create("template")
        cloud.wait_status(template, "ACTIVE")
        wait(lambda: cloud.console_has_line(template), 120, "the template's console line")
        scratch = workdir / "floor"
        scratch.mkdir()
        floor = Floor(cloud, template, scratch)
        qemu_rss = rss_kib(cloud.qemu_pid(template))
        cloud.delete(template)
        cloud.wait_gone(template)
        print(f"floor command: {' '.join(floor.argv)}", file=sys.stderr)

        for count in (1, 4):
            key = f"boot-{count}"
            samples[key] = []
            boot_nimbus(cloud, count, f"warm{count}")
            Floor.kill(Path(floor.start("warm")))
            for run in range(args.runs):
                active, line = boot_nimbus(cloud, count, f"b{count}r{run}")
                floor_line = boot_floor(floor, count, f"b{count}r{run}")
                samples[key].append({"active": active, "line": line, "floor_line": floor_line})
                print(f"{key} run {run}: ACTIVE {active:.2f} s, line {line:.2f} s, floor {floor_line:.2f} s", file=sys.stderr)

        # Memory: nimbus up's RSS idle, then with 4 guests running.
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

        # Snapshot of a stopped guest with a 1 GiB overlay.
        samples["snapshot"] = []
        for run in range(args.snapshot_runs):
            uuid = cloud.create(f"snap-{run}")
            cloud.wait_status(uuid, "ACTIVE")
            cloud.api("POST", f"/compute/v2.1/servers/{uuid}/action", json={"os-stop": None})
            cloud.wait_status(uuid, "SHUTOFF")
            overlay = cloud.instances / uuid / "disk"
            subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1G", str(overlay)], check=True, capture_output=True)
            start = time.monotonic()
            reply = cloud.api("POST", f"/compute/v2.1/servers/{uuid}/action", json={"createImage": {"name": f"snap-{run}"}})
            image = reply.json().get("image_id") or reply.headers["Location"].rsplit("/", 1)[-1]
            wait(lambda: cloud.api("GET", f"/image/v2/images/{image}").json()["status"] == "active", 300, "the snapshot", 0.05)
            nimbus_seconds = time.monotonic() - start
            out = scratch / "convert.qcow2"
            start = time.monotonic()
            subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(overlay), str(out)], check=True)
            floor_seconds = time.monotonic() - start
            out.unlink()
            samples["snapshot"].append({"nimbus": nimbus_seconds, "floor": floor_seconds})
            print(f"snapshot run {run}: {nimbus_seconds:.2f} s, qemu-img convert {floor_seconds:.2f} s", file=sys.stderr)
            cloud.api("DELETE", f"/image/v2/images/{image}")
            cloud.delete(uuid)
            cloud.wait_gone(uuid)
    finally:
        cloud.stop()
        subprocess.run(["pkill", "-9", "-f", str(workdir)], check=False)
        shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        Path(args.json).write_text(json.dumps(samples, indent=2))
    print_table(samples)


def print_table(samples: dict[str, list]) -> None:
    print("| Figure | Nimbus (median) | Floor (median) | Nimbus − floor | Nimbus / floor (median of pairs) |")
    print("|---|---:|---:|---:|---:|")
    for count in (1, 4):
        runs = samples.get(f"boot-{count}", [])
        if not runs:
            continue
        for label, key in (("create → ACTIVE", "active"), ("create → console line", "line")):
            nimbus = median([r[key] for r in runs])
            base = median([r["floor_line"] for r in runs])
            diff = median([r[key] - r["floor_line"] for r in runs])
            ratio = median([r[key] / r["floor_line"] for r in runs])
            print(f"| {label}, {count} guest{'s' if count > 1 else ''} at once | {nimbus:.2f} s | {base:.2f} s | {diff:+.2f} s | {ratio:.2f} |")
    snaps = samples.get("snapshot", [])
    if snaps:
        nimbus = median([r["nimbus"] for r in snaps])
        base = median([r["floor"] for r in snaps])
        ratio = median([r["nimbus"] / r["floor"] for r in snaps])
        print(f"| snapshot of a 1 GiB overlay (createImage → active) vs `qemu-img convert` | {nimbus:.2f} s | {base:.2f} s | {nimbus - base:+.2f} s | {ratio:.2f} |")
    memory = samples.get("memory")
    if memory:
        m = memory[0]
        per_guest = (m["four_guests_kib"] - m["idle_kib"]) / 4 / 1024
        print(f"| `nimbus up` RSS per running guest (0 → 4 guests) | {per_guest:.1f} MiB | QEMU's own RSS: {m['qemu_rss_kib'] / 1024:.0f} MiB | | |")


if __name__ == "__main__":
    main()
