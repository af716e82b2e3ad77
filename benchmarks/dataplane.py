"""Dataplane benchmark (not a test): `nimbus agent --dataplane linux` against the same wiring
made by hand, each figure paired run by run with its floor, A B A B ….

Every figure gets its own `nimbus controller` (SQLite, a temporary data directory) and its own
hosts, made as Tests/EndToEnd/test_dataplane.py makes them: each host a network namespace with
its own `nimbus agent`, all joined to the controller's namespace by a bridge in a "fabric"
namespace (management and VXLAN underlay alike), and, where a router needs one, an external
namespace on the public flat network. The agents reach the controller through a recording proxy
in this script, which timestamps each host's state fetches (with the ports they carried) and
reports: that splits a figure into the agent's polling wait and its own work.

  wire        port bound → host fully wired, 1 and 200 ports on one host (`--driver fake`). The
              ports are made by one bulk `POST /v2.0/ports` with `binding:host_id` and a
              `compute:nova` owner, in a security group with three rules (one a remote group);
              the network's DHCP server already runs on the host. From just before the POST to
              when this script, polling the kernel and the agent's files, first sees every
              port's tap up on its network's bridge, its four nftables chains loaded and its MAC
              in the dnsmasq hosts file. Floor: the same taps made by hand on a bridge of the
              same name (one `ip -batch`), the ruleset Nimbus loaded for the same ports loaded
              with one `nft -f`, and the hosts lines written to a hand-started dnsmasq's hosts
              file with a SIGHUP.
  dhcp        guest DHCP lease time: one m1.nano-sized guest of the test image on a port of a
              DHCP network (`--driver qemu`), from its QEMU process's start to the console's
              `eth0 has a DHCP lease` line (and from the config-drive line before it, DHCP
              alone). Floor: the QEMU command Nimbus ran (from /proc), replayed on a tap of the
              same name on a hand-made bridge in a namespace of its own, with a hand-started
              dnsmasq serving the port's MAC the same address, router and MTU.
  throughput  iperf3 (TCP, one stream) from the external namespace to a namespace plugged as a
              port: through the floating IP's DNAT in the router's namespace on one host, the
              tenant network's bridge, VXLAN to the other host, its bridge and the port's
              security groups (ingress TCP 5201 allowed). Both directions (`-R`). The port's
              "guest" is a network namespace: its veth takes the tap's name on the host before
              the port is bound there, so the agent puts it on the bridge as it would a tap.
              Floor: the same path by hand (hosts, fabric, VXLAN, a router namespace that
              routes, the external namespace) with no nftables at all: no security groups, no
              NAT (the client addresses the guest's own address).
  restart     agent restart with 1,000 ports on one host to fully reconciled: SIGTERM, a new
              `nimbus agent`, until the proxy sees its first report (sent after its first
              sync applied the host's state); every tap keeps its ifindex, dnsmasq its pid and
              the nftables ruleset its text (asserted: nothing changed). Floor: reading what a
              reconcile must compare, by hand: `ip -d -json link show`, `nft -j list ruleset`
              and the DHCP hosts file. Then one more port is bound beside the 1,000 (no floor):
              what wiring costs on a host of that size.

Run as root: `python3 benchmarks/dataplane.py [--only wire,dhcp,throughput,restart]`; `--json
FILE` writes every sample. Setup: `apt-get install -y iperf3 dnsmasq qemu-system-x86` (iperf3
only for throughput). Nothing is sent from, or changed in, the root namespace (this process
moves itself into its controller's namespace first), and every namespace, process and
directory it makes is removed at the end, also on failure, SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guests import Floor, free_port, median, processes_under, qemu_pid, wait  # noqa: E402

FIGURES = ("wire", "dhcp", "throughput", "restart")
SUFFIX = secrets.token_hex(2)
FABRIC, CONTROLLER, EXTERNAL = f"nbd-fab-{SUFFIX}", f"nbd-ctl-{SUFFIX}", f"nbd-ext-{SUFFIX}"
CONTROLLER_IP = "10.252.0.1"
CLONE_NEWNET = 0x40000000
LEASE_LINE = "NIMBUS-GUEST: eth0 has a DHCP lease"
CONFIG_DRIVE_LINE = re.compile(r"NIMBUS-GUEST: (config drive found|no config drive)")
# `[network] resync_interval`'s default: how often an agent fetches its host's state.
RESYNC_INTERVAL = 2
# The network MTU of a VXLAN tenant network (1500 less VXLAN's 50 bytes), as ML2 gives it.
VXLAN_MTU = 1450

libc = ctypes.CDLL(None, use_errno=True)


def enter_namespace(path: str) -> None:
    """Moves this process (its only thread: called before any other starts) into a network namespace."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


def sh(*args: str, input: str | None = None, timeout: float = 120) -> str:
    result = subprocess.run(list(args), input=input, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:8])}{' …' if len(args) > 8 else ''}: {result.stderr.strip()}")
    return result.stdout


def inside(namespace: str, *command: str) -> list[str]:
    """`command` run in a named network namespace (nsenter, not `ip netns exec`, which would
    give it a mount namespace of its own)."""
    return ["nsenter", f"--net=/run/netns/{namespace}", *command]


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def process_start(pid: int) -> float:
    """When `pid` started, on the CLOCK_BOOTTIME clock (the kernel counts in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


class Lab:
    """The namespaces of a run: the fabric (a bridge), the controller's namespace on it, and
    each figure's hosts. Everything made is listed, to be removed in `cleanup`."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.namespaces: list[str] = []
        self.fabric_index = 0
        self.processes: list[subprocess.Popen] = []
        self.netns(FABRIC)
        sh("ip", "-n", FABRIC, "link", "add", "fab", "type", "bridge")
        sh("ip", "-n", FABRIC, "link", "set", "fab", "up")
        self.join_fabric(CONTROLLER, CONTROLLER_IP)

    def netns(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def join_fabric(self, namespace: str, address: str, fabric: str = FABRIC, bridge: str = "fab") -> None:
        """A new namespace with eth0 (holding `address`/24) on the fabric's bridge."""
        self.netns(namespace)
        self.fabric_index += 1
        veth = f"fab{self.fabric_index}"
        sh("ip", "-n", fabric, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        sh("ip", "-n", fabric, "link", "set", veth, "master", bridge, "up")
        sh("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", namespace, "link", "set", "eth0", "up")

    def start(self, argv: list[str], log: Path) -> subprocess.Popen:
        process = subprocess.Popen(argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(process)
        return process

    def remove(self, namespaces: list[str], state_dirs: list[Path]) -> None:
        """Removes `namespaces` and the DHCP and router namespaces the agents of `state_dirs` made."""
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(10)
        for pid in processes_under(self.workdir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for line in sh("ip", "netns", "list").splitlines():
            name = line.split(" ")[0]
            for prefix, kind in (("qdhcp-", "dhcp"), ("qrouter-", "routers")):
                if name.startswith(prefix) and any((d / kind / name[len(prefix):]).exists() for d in state_dirs):
                    subprocess.run(["ip", "netns", "del", name], capture_output=True)
        for namespace in reversed(namespaces):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
            if namespace in self.namespaces:
                self.namespaces.remove(namespace)


class Recorder(ThreadingHTTPServer):
    """An HTTP proxy in front of the controller that records, per host, when each state fetch
    arrived (and the ports it returned) and when each report arrived."""

    daemon_threads = True

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int]):
        super().__init__(listen, RecorderHandler)
        self.upstream = upstream
        self.lock = threading.Lock()
        self.events: list[dict] = []
        self.local = threading.local()

    def record(self, event: dict) -> None:
        with self.lock:
            self.events.append(event)

    def handle_error(self, request, client_address) -> None:
        # An agent killed mid-request (the restart figure) resets its connection: not a failure.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)

    def since(self, t: float, kind: str, host: str) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["kind"] == kind and e["host"] == host and e["arrived"] >= t]


STATE_PATH = re.compile(r"^/network-agent/v1/hosts/([^/]+)/(state|report)$")


class RecorderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def forward(self) -> None:
        arrived = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        connection = getattr(self.server.local, "connection", None)
        if connection is None:
            connection = self.server.local.connection = http.client.HTTPConnection(*self.server.upstream, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "keep-alive", "content-length")}
        try:
            connection.request(self.command, self.path, body=body if body else None, headers=headers)
            reply = connection.getresponse()
            data = reply.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self.server.local.connection = None
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response_only(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection", "keep-alive"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        match = STATE_PATH.match(self.path.split("?", 1)[0])
        if match and reply.status < 300:
            event = {"kind": match.group(2), "host": match.group(1), "arrived": arrived, "answered": time.monotonic()}
            if match.group(2) == "state":
                event["ports"] = {p["id"] for p in json.loads(data).get("ports", [])}
            self.server.record(event)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = forward

    def log_message(self, *args) -> None:
        pass


class Cloud:
    """`nimbus controller` in the controller's namespace, with a recording proxy in front of it
    for the agents, and `nimbus agent`s in host namespaces of their own."""

    def __init__(self, binary: str, lab: Lab, name: str, extra_conf: str = ""):
        self.binary, self.lab, self.name = binary, lab, name
        self.workdir = lab.workdir / name
        self.data = self.workdir / "data"
        self.data.mkdir(parents=True)
        self.password = "Adm1n-" + secrets.token_urlsafe(12)
        self.password_file = self.workdir / "admin-password"
        self.password_file.write_text(self.password)
        (self.data / "nimbus.conf").write_text("[DEFAULT]\nreport_interval = 1\nagent_down_time = 10\n"
                                              "[identity]\npassword_hash_rounds = 4\n" + extra_conf)
        self.port = free_port(CONTROLLER_IP)
        self.url = f"http://{CONTROLLER_IP}:{self.port}"
        log = self.workdir / "controller.log"
        self.process = lab.start([binary, "controller", "--data-dir", str(self.data), "--listen", f"{CONTROLLER_IP}:{self.port}",
                                  "--admin-password", self.password], log)
        wait(lambda: b"Nimbus is ready" in log.read_bytes() or self.process.poll() is not None, 300, "the controller to be ready", 0.2)
        if self.process.poll() is not None:
            raise SystemExit(log.read_text()[-3000:])
        self.recorder = Recorder((CONTROLLER_IP, 0), (CONTROLLER_IP, self.port))
        threading.Thread(target=self.recorder.serve_forever, daemon=True).start()
        self.agent_url = f"http://{CONTROLLER_IP}:{self.recorder.server_address[1]}"
        reply = requests.post(self.url + "/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": self.password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}, timeout=30)
        self.session = requests.Session()
        self.session.headers.update({"X-Auth-Token": reply.headers["X-Subject-Token"], "OpenStack-API-Version": "compute 2.90"})
        self.project = reply.json()["token"]["project"]["id"]
        self.api("PUT", f"/networking/v2.0/quotas/{self.project}", json={"quota": {"port": -1}})
        secret = (self.data / "metadata-proxy-shared-secret").read_text().strip()
        self.agent_conf = self.workdir / "agent.conf"
        self.agent_conf.write_text(f"[neutron]\nmetadata_proxy_shared_secret = {secret}\n"
                                   "[linux_bridge]\nphysical_interface_mappings = public:pub0\n")
        self.hosts: dict[str, tuple[str, str, str]] = {}  # name → (namespace, address, driver)
        self.agents: dict[str, subprocess.Popen] = {}

    def api(self, method: str, path: str, **kwargs) -> dict:
        reply = self.session.request(method, self.url + path, timeout=300, **kwargs)
        if reply.status_code >= 400:
            raise SystemExit(f"{method} {path}: {reply.status_code} {reply.text[:2000]}")
        return reply.json() if reply.content else {}

    def add_host(self, name: str, driver: str = "fake") -> str:
        namespace = f"nbd-{name}-{SUFFIX}"
        address = f"10.252.0.{10 + len(self.lab.namespaces)}"
        self.lab.join_fabric(namespace, address)
        self.hosts[name] = (namespace, address, driver)
        self.start_agent(name)
        return namespace

    def state_dir(self, host: str) -> Path:
        return self.workdir / host / "dataplane"

    def start_agent(self, name: str) -> subprocess.Popen:
        namespace, address, driver = self.hosts[name]
        self.agents[name] = self.lab.start(inside(namespace, self.binary, "agent", "--controller", self.agent_url, "--host", name,
                                                  "--password-file", str(self.password_file), "--heartbeat", "1", "--driver", driver,
                                                  "--instances-path", str(self.workdir / name / "instances"), "--host-ip", address,
                                                  "--dataplane", "linux", "--config-file", str(self.agent_conf)),
                                           self.workdir / f"agent-{name}.log")
        return self.agents[name]

    def stop_agent(self, name: str) -> None:
        process = self.agents[name]
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def wait_agents(self) -> None:
        def alive():
            agents = self.api("GET", "/networking/v2.0/agents?agent_type=Linux%20bridge%20agent")["agents"]
            return {a["host"] for a in agents if a["alive"]} >= set(self.hosts)
        wait(alive, 120, "the hosts' Linux bridge agents to report", 0.2)

    def close(self) -> None:
        self.recorder.shutdown()
        self.recorder.server_close()
        self.lab.remove([ns for ns, _, _ in self.hosts.values()], [self.state_dir(h) for h in self.hosts])

    # Neutron resources

    def network(self, name: str, cidr: str, dhcp: bool = True, **extra) -> tuple[dict, dict]:
        network = self.api("POST", "/networking/v2.0/networks", json={"network": {"name": name, **extra}})["network"]
        subnet = self.api("POST", "/networking/v2.0/subnets", json={"subnet": {
            "name": name, "network_id": network["id"], "ip_version": 4, "cidr": cidr, "enable_dhcp": dhcp}})["subnet"]
        return network, subnet

    def security_group(self, name: str, rules: list[dict]) -> dict:
        group = self.api("POST", "/networking/v2.0/security-groups", json={"security_group": {"name": name}})["security_group"]
        for rule in rules:
            self.api("POST", "/networking/v2.0/security-group-rules", json={"security_group_rule": {
                "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
                **{k: (group["id"] if v == "self" else v) for k, v in rule.items()}}})
        return group

    def bound_ports(self, network: str, host: str, group: str, count: int) -> list[dict]:
        """`count` ports bound to `host` as a guest's are, in bulk POSTs of at most 250."""
        made = []
        while len(made) < count:
            batch = min(250, count - len(made))
            made += self.api("POST", "/networking/v2.0/ports", json={"ports": [
                {"network_id": network, "binding:host_id": host, "device_owner": "compute:nova", "security_groups": [group]}
                for _ in range(batch)]})["ports"]
        return made

    def delete_ports(self, ports: list[dict]) -> None:
        for port in ports:
            self.session.delete(self.url + f"/networking/v2.0/ports/{port['id']}", timeout=60)


# Observing a host


def bridge_ports(namespace: str, bridge: str) -> dict[str, dict]:
    """The interfaces on `bridge`, by name."""
    text = subprocess.run(["ip", "-n", namespace, "-json", "link", "show", "master", bridge], capture_output=True, text=True).stdout
    return {link["ifname"]: link for link in json.loads(text or "[]")}


def nft_chains(namespace: str) -> set[str]:
    """The chains of Nimbus's two `nimbus-sg` tables, as `family chain`."""
    text = subprocess.run(inside(namespace, "nft", "-j", "list", "chains"), capture_output=True, text=True).stdout
    return {f"{o['chain']['family']} {o['chain']['name']}" for o in json.loads(text or '{"nftables": []}')["nftables"]
            if "chain" in o and o["chain"]["table"] == "nimbus-sg"}


def port_chains(tap: str) -> set[str]:
    return {f"bridge from-{tap}", f"bridge to-{tap}", f"inet egress-{tap}", f"inet ingress-{tap}"}


def tap(port: dict) -> str:
    return "tap" + port["id"][:11]


def bridge(network: dict) -> str:
    return "brq" + network["id"][:11]


def wired(namespace: str, network: dict, hosts_file: Path, ports: list[dict]) -> bool:
    """Every port's tap is up on the bridge, its four chains are loaded and its MAC is in the hosts file."""
    on_bridge = bridge_ports(namespace, bridge(network))
    if not all(tap(p) in on_bridge and "UP" in on_bridge[tap(p)]["flags"] for p in ports):
        return False
    try:
        hosts = hosts_file.read_text().lower()
    except FileNotFoundError:
        return False
    if not all(p["mac_address"].lower() in hosts for p in ports):
        return False
    chains = nft_chains(namespace)
    return all(port_chains(tap(p)) <= chains for p in ports)


def gone(namespace: str, network: dict, ports: list[dict]) -> bool:
    on_bridge = bridge_ports(namespace, bridge(network))
    return not any(tap(p) in on_bridge for p in ports)


def dnsmasq_running(state_dir: Path, network: dict) -> bool:
    try:
        pid = int((state_dir / "dhcp" / network["id"] / "pid").read_text().strip())
        return str(state_dir) in Path(f"/proc/{pid}/cmdline").read_text()
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False


# Figure: wiring


class HandDHCP:
    """A dnsmasq started by hand in namespace `namespace`, on a veth whose other end is on
    `bridge_name` in `host`, serving fixed leases from a hosts file."""

    def __init__(self, lab: Lab, host: str, namespace: str, bridge_name: str, address: str, cidr_mask: str, directory: Path,
                 options: list[str] = ()):
        lab.netns(namespace)
        directory.mkdir(parents=True, exist_ok=True)
        self.hosts = directory / "hosts"
        self.hosts.write_text("")
        sh("ip", "-n", host, "link", "add", "dhcpveth", "type", "veth", "peer", "name", "ns0", "netns", namespace)
        sh("ip", "-n", host, "link", "set", "dhcpveth", "master", bridge_name, "mtu", str(VXLAN_MTU), "up")
        sh("ip", "-n", namespace, "addr", "add", address, "dev", "ns0")
        sh("ip", "-n", namespace, "link", "set", "ns0", "mtu", str(VXLAN_MTU), "up")
        network = address.split("/")[0].rsplit(".", 1)[0] + ".0"
        pid_file = directory / "pid"
        sh(*inside(namespace, "dnsmasq", "--no-hosts", "--no-resolv", "--port=0", "--interface=ns0", "--bind-interfaces", "--except-interface=lo",
                   f"--dhcp-range={network},static,{cidr_mask},infinite", f"--dhcp-hostsfile={self.hosts}", f"--pid-file={pid_file}",
                   f"--dhcp-leasefile={directory / 'leases'}", "--user=root", "--dhcp-authoritative", *options))
        self.pid = int(wait(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the hand dnsmasq"))

    def add(self, lines: list[str]) -> None:
        with open(self.hosts, "a") as f:
            f.write("".join(line + "\n" for line in lines))
        os.kill(self.pid, signal.SIGHUP)


def measure_wire(binary: str, lab: Lab, runs: int, samples: dict) -> None:
    cloud = Cloud(binary, lab, "wire")
    floor_ns = f"nbd-fw-{SUFFIX}"
    try:
        namespace = cloud.add_host("wire")
        cloud.wait_agents()
        network, _ = cloud.network("wire", "10.60.0.0/16")
        group = cloud.security_group("wire", [{"protocol": "icmp"}, {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
                                              {"remote_group_id": "self"}])
        state = cloud.state_dir("wire")
        wait(lambda: dnsmasq_running(state, network), 60, "the network's dnsmasq on the host")
        hosts_file = state / "dhcp" / network["id"] / "host"

        # The floor's host: a bridge named as Nimbus's, and a dnsmasq on it.
        lab.netns(floor_ns)
        sh("ip", "-n", floor_ns, "link", "add", bridge(network), "type", "bridge", "stp_state", "0", "forward_delay", "0")
        sh("ip", "-n", floor_ns, "link", "set", bridge(network), "mtu", str(VXLAN_MTU), "up")
        hand_dhcp = HandDHCP(lab, floor_ns, f"nbd-fwd-{SUFFIX}", bridge(network), "10.60.0.2/16", "255.255.0.0", lab.workdir / "wire-floor")

        for count in (1, 200):
            key = f"wire-{count}"
            samples[key] = []
            for run in range(runs + 1):  # run 0 warms up
                # The agent syncs every resync_interval (2 s): a start at a random point of
                # that cycle, not always just after the sync that removed the last run's ports.
                time.sleep(random.uniform(0, RESYNC_INTERVAL))
                start = time.monotonic()
                ports = cloud.bound_ports(network["id"], "wire", group["id"], count)
                posted = time.monotonic()
                wait(lambda: wired(namespace, network, hosts_file, ports), 120, f"{count} ports to be wired", 0.005)
                done = time.monotonic()
                ids = {p["id"] for p in ports}
                fetch = next(e for e in cloud.recorder.since(start, "state", "wire") if ids <= e["ports"])
                # The agent reports once the whole apply is done (DHCP and leftovers after the taps).
                report = wait(lambda: cloud.recorder.since(fetch["arrived"], "report", "wire"), 60, "the agent's report")[0]
                # What Nimbus loaded for these ports, to be loaded by hand.
                ruleset = sh(*inside(namespace, "nft", "list", "table", "bridge", "nimbus-sg")) + \
                    sh(*inside(namespace, "nft", "list", "table", "inet", "nimbus-sg"))
                cloud.delete_ports(ports)
                wait(lambda: gone(namespace, network, ports), 120, "the ports' taps to go", 0.1)

                batch = "".join(f"tuntap add dev {tap(p)} mode tap\nlink set {tap(p)} master {bridge(network)} mtu {VXLAN_MTU} up\n"
                                for p in ports)
                hosts_lines = [f"{p['mac_address']},host-{p['fixed_ips'][0]['ip_address'].replace('.', '-')},{p['fixed_ips'][0]['ip_address']}"
                               for p in ports]
                floor_start = time.monotonic()
                sh("ip", "-n", floor_ns, "-batch", "-", input=batch)
                sh(*inside(floor_ns, "nft", "-f", "-"), input=ruleset)
                hand_dhcp.add(hosts_lines)
                floor = time.monotonic() - floor_start
                # Undone for the next run (not timed).
                sh(*inside(floor_ns, "nft", "delete", "table", "bridge", "nimbus-sg"))
                sh(*inside(floor_ns, "nft", "delete", "table", "inet", "nimbus-sg"))
                sh("ip", "-n", floor_ns, "-batch", "-", input="".join(f"link del {tap(p)}\n" for p in ports))
                hand_dhcp.hosts.write_text("")

                sample = {"wired": done - start, "post": posted - start, "poll_wait": fetch["arrived"] - start,
                          "sync": report["arrived"] - fetch["arrived"], "state_answer": fetch["answered"] - fetch["arrived"], "floor": floor}
                print(f"{key} run {run}{' (warm-up)' if run == 0 else ''}: wired {sample['wired'] * 1000:.0f} ms "
                      f"(POST {sample['post'] * 1000:.0f}, until the agent's fetch {sample['poll_wait'] * 1000:.0f}, its sync "
                      f"{sample['sync'] * 1000:.0f}), floor {floor * 1000:.1f} ms", file=sys.stderr)
                if run > 0:
                    samples[key].append(sample)
    finally:
        cloud.close()
        lab.remove([floor_ns, f"nbd-fwd-{SUFFIX}"], [])


# Figure: guest DHCP lease


def watch_console(path: Path, timeout: float = 180) -> dict[str, float]:
    """Polls a console log every 5 ms; when (CLOCK_BOOTTIME) the config-drive line and the lease line were first seen."""
    seen: dict[str, float] = {}

    def lease():
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return False
        now = boottime()
        if "config" not in seen and CONFIG_DRIVE_LINE.search(text):
            seen["config"] = now
        if LEASE_LINE in text:
            seen["lease"] = now
            seen.setdefault("config", now)
            return True
        return False
    wait(lease, timeout, f"{LEASE_LINE!r} in {path}", 0.005)
    return seen


def measure_dhcp(binary: str, lab: Lab, runs: int, samples: dict) -> None:
    cloud = Cloud(binary, lab, "dhcp")
    floor_host, floor_dhcp = f"nbd-fq-{SUFFIX}", f"nbd-fqd-{SUFFIX}"
    try:
        cloud.add_host("dhcp", driver="qemu")
        cloud.wait_agents()
        image_file = cloud.workdir / "nimbus-test.qcow2"
        sh(binary, "manage", "image", "build-test", "--output", str(image_file), timeout=1800)
        image = cloud.api("POST", "/image/v2/images", json={"name": "nimbus-test", "disk_format": "qcow2", "container_format": "bare",
                                                             "visibility": "public", "hw_disk_bus": "virtio", "os_distro": "nimbus-test"})
        with open(image_file, "rb") as data:
            cloud.session.put(cloud.url + f"/image/v2/images/{image['id']}/file", data=data,
                              headers={"Content-Type": "application/octet-stream"}, timeout=600).raise_for_status()
        cloud.api("POST", "/compute/v2.1/flavors", json={"flavor": {"id": "42", "name": "m1.nano", "ram": 128, "disk": 1, "vcpus": 1}})
        network, subnet = cloud.network("dhcp", "10.80.0.0/24")
        state = cloud.state_dir("dhcp")
        wait(lambda: dnsmasq_running(state, network), 60, "the network's dnsmasq on the host")
        port = cloud.api("POST", "/networking/v2.0/ports", json={"port": {"network_id": network["id"],
                                                                          "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": "10.80.0.10"}]}})["port"]
        instances = cloud.workdir / "dhcp" / "instances"

        def boot(name: str) -> tuple[str, Path]:
            server = cloud.api("POST", "/compute/v2.1/servers", json={"server": {"name": name, "imageRef": image["id"], "flavorRef": "42",
                                                                                 "networks": [{"port": port["id"]}]}})["server"]["id"]
            directory = instances / server
            wait(lambda: (directory / "qemu.pid").exists() and (directory / "qemu.pid").read_text().strip(), 180, f"{name}'s QEMU", 0.005)
            return server, directory

        def delete(server: str) -> None:
            cloud.session.delete(cloud.url + f"/compute/v2.1/servers/{server}", timeout=60)
            wait(lambda: cloud.session.get(cloud.url + f"/compute/v2.1/servers/{server}", timeout=60).status_code == 404, 120,
                 f"{server} deleted", 0.1)

        # A warm-up guest (the base image reaches the host's cache) whose command line the floor replays.
        template, template_dir = boot("template")
        watch_console(template_dir / "console.log")
        scratch = lab.workdir / "dhcp-floor"
        scratch.mkdir()
        floor = Floor(template_dir, scratch)
        tap_name = re.search(r"ifname=(tap[0-9a-f-]+)", " ".join(floor.argv)).group(1)
        print(f"dhcp floor command: {' '.join(floor.argv)}", file=sys.stderr)
        delete(template)
        # The floor's host: the tap QEMU opens by name, on a bridge, with dnsmasq on a veth beside it.
        lab.netns(floor_host)
        sh("ip", "-n", floor_host, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        sh("ip", "-n", floor_host, "link", "set", "br0", "mtu", str(network["mtu"]), "up")
        sh("ip", "-n", floor_host, "tuntap", "add", "dev", tap_name, "mode", "tap")
        sh("ip", "-n", floor_host, "link", "set", tap_name, "master", "br0", "mtu", str(network["mtu"]), "up")
        hand = HandDHCP(lab, floor_host, floor_dhcp, "br0", "10.80.0.2/24", "255.255.255.0", scratch / "dnsmasq",
                        [f"--dhcp-option=3,{subnet['gateway_ip']}", f"--dhcp-option=26,{network['mtu']}"])
        hand.add([f"{port['mac_address']},host-10-80-0-10,10.80.0.10"])
        floor.argv = inside(floor_host, *floor.argv)

        samples["dhcp"] = []
        for run in range(runs):
            server, directory = boot(f"dhcp-{run}")
            started = process_start(qemu_pid(directory))
            seen = watch_console(directory / "console.log")
            delete(server)
            hand_dir = floor.start(f"f{run}")
            hand_started = process_start(qemu_pid(hand_dir))
            hand_seen = watch_console(hand_dir / "console.log")
            Floor.kill(hand_dir)
            sample = {"lease": seen["lease"] - started, "dhcp": seen["lease"] - seen["config"],
                      "floor_lease": hand_seen["lease"] - hand_started, "floor_dhcp": hand_seen["lease"] - hand_seen["config"]}
            print(f"dhcp run {run}: QEMU start → lease {sample['lease']:.2f} s (DHCP {sample['dhcp']:.2f} s), floor "
                  f"{sample['floor_lease']:.2f} s (DHCP {sample['floor_dhcp']:.2f} s)", file=sys.stderr)
            samples["dhcp"].append(sample)
    finally:
        cloud.close()
        lab.remove([floor_host, floor_dhcp], [])


# Figure: throughput


def iperf(client_ns: str, address: str, seconds: int, reverse: bool) -> float:
    """Bits per second iperf3 received, one TCP stream from `client_ns` (or to it, `reverse`)."""
    result = json.loads(sh(*inside(client_ns, "iperf3", "-c", address, "-t", str(seconds), "-J", *(["-R"] if reverse else [])),
                           timeout=seconds + 60))
    return result["end"]["sum_received"]["bits_per_second"]


def pings(namespace: str, address: str) -> bool:
    return subprocess.run(inside(namespace, "ping", "-c", "1", "-W", "1", address), capture_output=True).returncode == 0


def measure_throughput(binary: str, lab: Lab, runs: int, seconds: int, samples: dict) -> None:
    cloud = Cloud(binary, lab, "tput")
    guest, floor_names = f"nbd-guest-{SUFFIX}", [f"nbd-f{n}-{SUFFIX}" for n in ("fab", "ha", "hb", "r", "g", "x")]
    made = [EXTERNAL, guest]
    try:
        hosts = {name: cloud.add_host(name) for name in ("tput-a", "tput-b")}
        # The outside: the public flat network's namespace, holding its gateway address.
        lab.netns(EXTERNAL)
        sh("ip", "-n", EXTERNAL, "link", "add", "ext", "type", "bridge")
        sh("ip", "-n", EXTERNAL, "addr", "add", "172.24.4.1/24", "dev", "ext")
        sh("ip", "-n", EXTERNAL, "link", "set", "ext", "up")
        for index, namespace in enumerate(hosts.values(), start=1):
            sh("ip", "-n", EXTERNAL, "link", "add", f"pub{index}", "type", "veth", "peer", "name", "pub0", "netns", namespace)
            sh("ip", "-n", EXTERNAL, "link", "set", f"pub{index}", "master", "ext", "up")
            sh("ip", "-n", namespace, "link", "set", "pub0", "up")
        cloud.wait_agents()
        public = cloud.api("POST", "/networking/v2.0/networks", json={"network": {
            "name": "public", "router:external": True, "provider:network_type": "flat", "provider:physical_network": "public"}})["network"]
        cloud.api("POST", "/networking/v2.0/subnets", json={"subnet": {
            "network_id": public["id"], "ip_version": 4, "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1", "enable_dhcp": False,
            "allocation_pools": [{"start": "172.24.4.10", "end": "172.24.4.100"}]}})
        network, subnet = cloud.network("tenant", "10.70.0.0/24", dhcp=False)
        router = cloud.api("POST", "/networking/v2.0/routers", json={"router": {
            "name": "router", "external_gateway_info": {"network_id": public["id"]}}})["router"]
        cloud.api("PUT", f"/networking/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})

        def router_host():
            ports = cloud.api("GET", f"/networking/v2.0/ports?device_id={router['id']}&device_owner=network:router_interface")["ports"]
            return ports and ports[0]["binding:host_id"]
        on = wait(router_host, 60, "the router to be scheduled", 0.2)
        guest_host = next(h for h in hosts if h != on)
        group = cloud.security_group("iperf", [{"protocol": "icmp"}, {"protocol": "tcp", "port_range_min": 5201, "port_range_max": 5201}])
        port = cloud.api("POST", "/networking/v2.0/ports", json={"port": {"network_id": network["id"], "security_groups": [group["id"]],
                                                                          "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": "10.70.0.5"}]}})["port"]
        # The "guest": a namespace whose veth takes the port's tap name on its host before the
        # port is bound there.
        lab.netns(guest)
        sh("ip", "-n", hosts[guest_host], "link", "add", tap(port), "type", "veth", "peer", "name", "eth0", "netns", guest)
        sh("ip", "-n", guest, "link", "set", "eth0", "address", port["mac_address"], "mtu", str(network["mtu"]), "up")
        sh("ip", "-n", guest, "addr", "add", "10.70.0.5/24", "dev", "eth0")
        sh("ip", "-n", guest, "route", "add", "default", "via", subnet["gateway_ip"])
        cloud.api("PUT", f"/networking/v2.0/ports/{port['id']}", json={"port": {"binding:host_id": guest_host, "device_owner": "compute:nova"}})
        floating = cloud.api("POST", "/networking/v2.0/floatingips", json={"floatingip": {
            "floating_network_id": public["id"], "port_id": port["id"]}})["floatingip"]["floating_ip_address"]
        wait(lambda: pings(EXTERNAL, floating), 90, f"the outside to ping {floating}", 0.2)
        lab.start(inside(guest, "iperf3", "-s"), lab.workdir / "iperf-guest.log")

        # The floor: the same path by hand, without nftables.
        fab, fha, fhb, fr, fg, fx = floor_names
        lab.netns(fab)
        sh("ip", "-n", fab, "link", "add", "fab", "type", "bridge")
        sh("ip", "-n", fab, "link", "set", "fab", "up")
        underlay = {fha: "10.253.0.11", fhb: "10.253.0.12"}
        for namespace, address in underlay.items():
            lab.join_fabric(namespace, address, fabric=fab)
        for namespace, address in underlay.items():
            peer = next(a for n, a in underlay.items() if n != namespace)
            sh("ip", "-n", namespace, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
            sh("ip", "-n", namespace, "link", "add", "vxlan-1", "type", "vxlan", "id", "1", "local", address, "dstport", "4789")
            sh("ip", "-n", namespace, "link", "set", "vxlan-1", "master", "br0", "mtu", str(network["mtu"]), "up")
            sh("ip", "-n", namespace, "link", "set", "br0", "mtu", str(network["mtu"]), "up")
            sh("bridge", "-n", namespace, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan-1", "dst", peer)
        for namespace in (fr, fg, fx):
            lab.netns(namespace)
        # fha holds the router (as Nimbus's router host), fhb the guest.
        sh("ip", "-n", fhb, "link", "add", "tapg", "type", "veth", "peer", "name", "eth0", "netns", fg)
        sh("ip", "-n", fhb, "link", "set", "tapg", "master", "br0", "mtu", str(network["mtu"]), "up")
        sh("ip", "-n", fg, "link", "set", "eth0", "address", port["mac_address"], "mtu", str(network["mtu"]), "up")
        sh("ip", "-n", fg, "addr", "add", "10.70.0.5/24", "dev", "eth0")
        sh("ip", "-n", fg, "route", "add", "default", "via", "10.70.0.1")
        sh("ip", "-n", fha, "link", "add", "tapr", "type", "veth", "peer", "name", "qr", "netns", fr)
        sh("ip", "-n", fha, "link", "set", "tapr", "master", "br0", "mtu", str(network["mtu"]), "up")
        sh("ip", "-n", fr, "link", "set", "qr", "mtu", str(network["mtu"]), "up")
        sh("ip", "-n", fr, "addr", "add", "10.70.0.1/24", "dev", "qr")
        sh("ip", "-n", fha, "link", "add", "brx", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        sh("ip", "-n", fha, "link", "set", "brx", "up")
        sh("ip", "-n", fha, "link", "add", "tapx", "type", "veth", "peer", "name", "qg", "netns", fr)
        sh("ip", "-n", fha, "link", "set", "tapx", "master", "brx", "up")
        sh("ip", "-n", fr, "addr", "add", "172.24.4.2/24", "dev", "qg")
        sh("ip", "-n", fr, "link", "set", "qg", "up")
        sh(*inside(fr, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        sh("ip", "-n", fx, "link", "add", "ext", "type", "bridge")
        sh("ip", "-n", fx, "addr", "add", "172.24.4.1/24", "dev", "ext")
        sh("ip", "-n", fx, "link", "set", "ext", "up")
        sh("ip", "-n", fx, "link", "add", "pub1", "type", "veth", "peer", "name", "pub0", "netns", fha)
        sh("ip", "-n", fx, "link", "set", "pub1", "master", "ext", "up")
        sh("ip", "-n", fha, "link", "set", "pub0", "master", "brx", "up")
        sh("ip", "-n", fx, "route", "add", "10.70.0.0/24", "via", "172.24.4.2")
        wait(lambda: pings(fx, "10.70.0.5"), 30, "the floor's outside to ping its guest", 0.2)
        lab.start(inside(fg, "iperf3", "-s"), lab.workdir / "iperf-floor.log")
        time.sleep(0.5)

        for reverse in (False, True):
            key = "throughput-" + ("out" if reverse else "in")
            samples[key] = []
            iperf(EXTERNAL, floating, 1, reverse), iperf(fx, "10.70.0.5", 1, reverse)  # warm-up
            for run in range(runs):
                nimbus = iperf(EXTERNAL, floating, seconds, reverse)
                floor = iperf(fx, "10.70.0.5", seconds, reverse)
                samples[key].append({"nimbus": nimbus, "floor": floor})
                print(f"{key} run {run}: Nimbus {nimbus / 1e9:.2f} Gbit/s, by hand {floor / 1e9:.2f} Gbit/s", file=sys.stderr)
        samples["throughput-path"] = {"router_host": on, "guest_host": guest_host, "mtu": network["mtu"]}
    finally:
        cloud.close()
        lab.remove(made + floor_names, [])


# Figure: restart


def host_snapshot(namespace: str, network: dict, state: Path) -> dict:
    """What must not change across a restart: each tap's ifindex, dnsmasq's pid, the ruleset."""
    on_bridge = bridge_ports(namespace, bridge(network))
    ruleset = sh(*inside(namespace, "nft", "list", "ruleset"))
    return {"taps": {name: link["ifindex"] for name, link in on_bridge.items()},
            "dnsmasq": (state / "dhcp" / network["id"] / "pid").read_text().strip(),
            "ruleset": ruleset, "hosts": (state / "dhcp" / network["id"] / "host").read_text()}


def measure_restart(binary: str, lab: Lab, runs: int, count: int, samples: dict) -> None:
    cloud = Cloud(binary, lab, "restart")
    try:
        namespace = cloud.add_host("restart")
        cloud.wait_agents()
        network, _ = cloud.network("restart", "10.64.0.0/20")
        group = cloud.security_group("restart", [{"protocol": "icmp"}, {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
                                                 {"remote_group_id": "self"}])
        state = cloud.state_dir("restart")
        wait(lambda: dnsmasq_running(state, network), 60, "the network's dnsmasq on the host")
        start = time.monotonic()
        ports = cloud.bound_ports(network["id"], "restart", group["id"], count)
        posted = time.monotonic() - start
        wait(lambda: wired(namespace, network, state / "dhcp" / network["id"] / "host", ports), 600, f"{count} ports to be wired", 0.2)
        cold = time.monotonic() - start
        print(f"restart: {count} ports made in {posted:.1f} s and wired {cold:.1f} s after the first POST", file=sys.stderr)
        samples["restart-cold"] = [{"post": posted, "wired": cold}]
        time.sleep(3)  # a sync or two with nothing to do

        samples["restart"] = []
        for run in range(runs):
            before = host_snapshot(namespace, network, state)
            cloud.stop_agent("restart")
            started = time.monotonic()
            cloud.start_agent("restart")
            report = wait(lambda: cloud.recorder.since(started, "report", "restart"), 120, "the restarted agent's first report", 0.005)[0]
            fetch = cloud.recorder.since(started, "state", "restart")[0]
            after = host_snapshot(namespace, network, state)
            changed = [what for what in before if before[what] != after[what]]
            if changed:
                raise SystemExit(f"the restart changed {', '.join(changed)} on the host")
            floor_start = time.monotonic()
            sh("ip", "-n", namespace, "-d", "-json", "link", "show")
            sh(*inside(namespace, "nft", "-j", "list", "ruleset"))
            (state / "dhcp" / network["id"] / "host").read_text()
            floor = time.monotonic() - floor_start
            sample = {"reconciled": report["arrived"] - started, "first_fetch": fetch["arrived"] - started,
                      "sync": report["arrived"] - fetch["arrived"], "state_answer": fetch["answered"] - fetch["arrived"], "floor": floor}
            print(f"restart run {run}: reconciled {sample['reconciled']:.2f} s after the start (state fetched at "
                  f"{sample['first_fetch']:.2f} s, sync {sample['sync']:.2f} s); reading the host by hand {floor:.2f} s", file=sys.stderr)
            samples["restart"].append(sample)
            time.sleep(2)

        # One more port on the host that has `count`: what wiring costs at that size.
        samples["restart-one-more"] = []
        for run in range(runs):
            time.sleep(random.uniform(0, RESYNC_INTERVAL))
            start = time.monotonic()
            extra = cloud.bound_ports(network["id"], "restart", group["id"], 1)
            wait(lambda: wired(namespace, network, state / "dhcp" / network["id"] / "host", extra), 120, "one more port to be wired", 0.005)
            done = time.monotonic()
            fetch = next(e for e in cloud.recorder.since(start, "state", "restart") if extra[0]["id"] in e["ports"])
            report = wait(lambda: cloud.recorder.since(fetch["arrived"], "report", "restart"), 60, "the agent's report")[0]
            sample = {"wired": done - start, "poll_wait": fetch["arrived"] - start, "sync": report["arrived"] - fetch["arrived"],
                      "state_answer": fetch["answered"] - fetch["arrived"]}
            print(f"one more port beside {count}, run {run}: wired {sample['wired']:.2f} s (until the agent's fetch "
                  f"{sample['poll_wait']:.2f} s, its sync {sample['sync']:.2f} s)", file=sys.stderr)
            samples["restart-one-more"].append(sample)
            cloud.delete_ports(extra)
            wait(lambda: gone(namespace, network, extra), 120, "the port's tap to go", 0.1)
    finally:
        cloud.close()


def print_table(samples: dict) -> None:
    print("| Figure | Nimbus (median) | Floor (median) | Nimbus / floor (median of pairs) | Aim |")
    print("|---|---:|---:|---:|---|")

    def ratio(pairs):
        return median([a / b for a, b in pairs])

    def times(value: float) -> str:
        return f"{value:.0f}" if value >= 10 else f"{value:.2f}"

    for count in (1, 200):
        runs = samples.get(f"wire-{count}")
        if not runs:
            continue
        per = median([r["wired"] for r in runs]) / count * 1000
        print(f"| port bound → wired, {count} port{'s' if count > 1 else ''} (per port) | {per:.1f} ms | "
              f"{median([r['floor'] for r in runs]) / count * 1000:.2f} ms | {times(ratio([(r['wired'], r['floor']) for r in runs]))} | "
              f"< 50 ms per port: {'met' if per < 50 else 'missed'} |")
        print(f"| … of which the agent's sync, fetch → report (per port) | {median([r['sync'] for r in runs]) / count * 1000:.1f} ms | | "
              f"{times(ratio([(r['sync'], r['floor']) for r in runs]))} | |")
        print(f"| … of which bulk POST, until the agent's fetch | {median([r['post'] for r in runs]) * 1000:.0f} ms, "
              f"{median([r['poll_wait'] for r in runs]) * 1000:.0f} ms | | | |")
    runs = samples.get("dhcp")
    if runs:
        print(f"| guest: QEMU start → DHCP lease line | {median([r['lease'] for r in runs]):.2f} s | {median([r['floor_lease'] for r in runs]):.2f} s | "
              f"{ratio([(r['lease'], r['floor_lease']) for r in runs]):.2f} | |")
        print(f"| guest: config-drive line → lease line (DHCP alone) | {median([r['dhcp'] for r in runs]):.2f} s | "
              f"{median([r['floor_dhcp'] for r in runs]):.2f} s | {ratio([(r['dhcp'], r['floor_dhcp']) for r in runs]):.2f} | |")
    for key, label in (("throughput-in", "outside → guest"), ("throughput-out", "guest → outside")):
        runs = samples.get(key)
        if runs:
            r = ratio([(x["nimbus"], x["floor"]) for x in runs])
            print(f"| throughput {label} (iperf3, 1 TCP stream) | {median([x['nimbus'] for x in runs]) / 1e9:.2f} Gbit/s | "
                  f"{median([x['floor'] for x in runs]) / 1e9:.2f} Gbit/s | {r:.2f} | ≥ 0.8×: {'met' if r >= 0.8 else 'missed'} |")
    runs = samples.get("restart")
    if runs:
        total = median([r["reconciled"] for r in runs])
        print(f"| agent restart, 1,000 ports → reconciled (first report) | {total:.2f} s | {median([r['floor'] for r in runs]):.2f} s | "
              f"{times(ratio([(r['reconciled'], r['floor']) for r in runs]))} | < 10 s: {'met' if total < 10 else 'missed'} |")
        print(f"| … of which start → first state fetch, its sync (the controller's answer) | {median([r['first_fetch'] for r in runs]):.2f} s, "
              f"{median([r['sync'] for r in runs]):.2f} s ({median([r.get('state_answer', float('nan')) for r in runs]):.2f} s) | | | |")
    runs = samples.get("restart-one-more")
    if runs:
        print(f"| one port bound beside 1,000 → wired (its sync) | {median([r['wired'] for r in runs]):.2f} s "
              f"({median([r['sync'] for r in runs]):.2f} s) | | | |")
    print()
    print("Load average (1, 5, 15 min): " + "; ".join(f"{when} {' '.join(f'{v:.1f}' for v in load)}" for when, load in samples["load"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nimbus", default=os.environ.get("NIMBUS_BIN", ".build/release/nimbus"))
    parser.add_argument("--only", default=",".join(FIGURES), help=f"comma-separated, of {', '.join(FIGURES)}")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dhcp-runs", type=int, default=3)
    parser.add_argument("--throughput-runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="iperf3's run length")
    parser.add_argument("--restart-runs", type=int, default=3)
    parser.add_argument("--restart-ports", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()
    figures = set(args.only.split(","))
    if not figures <= set(FIGURES):
        parser.error(f"--only: unknown {', '.join(sorted(figures - set(FIGURES)))}")
    if os.geteuid() != 0:
        parser.error("run as root: network namespaces, bridges, taps")
    binary = str(Path(args.nimbus).resolve())
    needed = ["dnsmasq", "nsenter", "nft"] + (["iperf3"] if "throughput" in figures else []) + \
        (["qemu-system-x86_64"] if "dhcp" in figures else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        parser.error(f"missing {', '.join(missing)} (apt-get install -y iperf3 dnsmasq qemu-system-x86 nftables)")

    # Stopped by a signal, the run still removes what it made (the `finally` below).
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda number, _: sys.exit(128 + number))
    workdir = Path(tempfile.mkdtemp(prefix="nbd-", dir="/tmp"))
    samples: dict = {"load": [("start", os.getloadavg())]}
    root = os.open("/proc/self/ns/net", os.O_RDONLY)
    lab = None
    try:
        lab = Lab(workdir)
        # From here on everything this process and its children do is in the controller's
        # namespace, or a namespace named for it.
        enter_namespace(f"/run/netns/{CONTROLLER}")
        if "wire" in figures:
            measure_wire(binary, lab, args.runs, samples)
        if "restart" in figures:
            measure_restart(binary, lab, args.restart_runs, args.restart_ports, samples)
        if "throughput" in figures:
            measure_throughput(binary, lab, args.throughput_runs, args.seconds, samples)
        if "dhcp" in figures:
            measure_dhcp(binary, lab, args.dhcp_runs, samples)
        samples["load"].append(("end", os.getloadavg()))
    finally:
        if lab is not None:
            lab.remove(list(lab.namespaces), [])
        if libc.setns(root, CLONE_NEWNET) != 0:
            print("could not return to the first network namespace", file=sys.stderr)
        os.close(root)
        shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        Path(args.json).write_text(json.dumps(samples, indent=2, default=sorted))
    print_table(samples)


if __name__ == "__main__":
    main()
