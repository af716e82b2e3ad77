"""Real networks between real guests: one `nimbus controller` and two `nimbus agent --driver
qemu --dataplane linux` processes, each host a network namespace of its own, joined with the
controller by one link (management and VXLAN underlay alike) inside a "fabric" namespace. Two
servers of the test image on one tenant VXLAN network, one per host: each gets its own port's
address by DHCP from the network's one dnsmasq (one of them across the VXLAN), and A pings B
across the hosts. An agent restarted after a network was deleted behind its back removes that
network's bridge, tap, VXLAN interface, DHCP namespace and dnsmasq and nothing else; `nimbus
manage trace` names each link broken by hand (a tap down, a dnsmasq killed, a floating IP's NAT
rule deleted) and the agent's resync mends it. Deleting everything leaves nothing of the
dataplane on either host.

Every address lives inside namespaces this module makes; nothing is sent from, or changed in,
the root namespace."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Nimbus, nimbus_binary, wait_for
from test_qemu_moves import processes_under

LINE_TIMEOUT = 180.0
SUFFIX = secrets.token_hex(3)
FABRIC, CONTROLLER, EXTERNAL = f"nbe-fab-{SUFFIX}", f"nbe-ctl-{SUFFIX}", f"nbe-ext-{SUFFIX}"
# The controller's `[DEFAULT] agent_down_time` here: an agent silent this long is shown down
# (and its DHCP servers and routers move).
AGENT_DOWN_TIME = 10
HOSTS = {"dp-a": (f"nbe-h1-{SUFFIX}", "10.250.0.11"), "dp-b": (f"nbe-h2-{SUFFIX}", "10.250.0.12")}
CONTROLLER_IP = "10.250.0.1"
ADDRESSES = {"dp-a": "10.77.0.21", "dp-b": "10.77.0.22"}
SPOOFER_ADDRESS, SPOOFED_ADDRESS = "10.77.0.23", "10.77.0.99"
# The "outside": a namespace on the public flat network (physical network `public`, which each
# host maps to its `pub0`), holding the public subnet's gateway address and a web server that
# answers each request with the address it came from.
OUTSIDE_ADDRESS, OUTSIDE_PORT = "172.24.4.1", 8080
ROUTED_ADDRESS = "10.77.0.24"


def sh(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=60).stdout


def join_fabric(namespace: str, address: str, index: int) -> None:
    """A veth from `namespace` (eth0, holding `address`) to the fabric's bridge."""
    sh("ip", "netns", "add", namespace)
    sh("ip", "-n", namespace, "link", "set", "lo", "up")
    sh("ip", "-n", FABRIC, "link", "add", f"fab{index}", "type", "veth", "peer", "name", "eth0", "netns", namespace)
    sh("ip", "-n", FABRIC, "link", "set", f"fab{index}", "master", "fab", "up")
    sh("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
    sh("ip", "-n", namespace, "link", "set", "eth0", "up")


def dataplane_left(namespace: str) -> list[str]:
    """Interfaces of the dataplane's kinds still in a host's namespace."""
    links = json.loads(sh("ip", "-n", namespace, "-json", "link", "show"))
    return [link["ifname"] for link in links if re.match(r"^(brq|tap|vxlan-|ns-|qr-|qg-)", link["ifname"])]


def pings(namespace: str, address: str) -> bool:
    """Whether one ping from `namespace` to `address` is answered within a second."""
    return subprocess.run(["ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "1", address], capture_output=True).returncode == 0


def ssh(namespace: str, key: Path, address: str, command: str) -> subprocess.CompletedProcess:
    """`command` run in the guest at `address` over SSH from `namespace`, logged in as the test
    image's user with `key`."""
    return subprocess.run(["ip", "netns", "exec", namespace, "ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                           f"nimbus@{address}", command], capture_output=True, text=True, timeout=60)


def remove_dataplane_namespaces(state_directories: list[Path]) -> None:
    """Deletes the `qdhcp-` and `qrouter-` namespaces that one of these agents' state
    directories names (a DHCP server's or router's directory of the same id)."""
    for line in sh("ip", "netns", "list").split("\n"):
        name = line.split(" ")[0]
        for prefix, kind in (("qdhcp-", "dhcp"), ("qrouter-", "routers")):
            if name.startswith(prefix) and any((state / kind / name[len(prefix):]).exists() for state in state_directories):
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


def dataplane_report(scratch: Path) -> str:
    """What each host has wired, and its DHCP servers' logs: printed when a check fails."""
    lines = []
    for name, (namespace, _) in HOSTS.items():
        lines.append(f"--- {name} ({namespace})")
        for router in sorted((scratch / name).glob("dataplane/routers/*")):
            lines.append(f"router {router.name}:")
            for command in (["ip", "-n", f"qrouter-{router.name}", "-br", "addr"], ["ip", "-n", f"qrouter-{router.name}", "route"],
                            ["ip", "netns", "exec", f"qrouter-{router.name}", "nft", "list", "ruleset"]):
                lines.append(subprocess.run(command, capture_output=True, text=True).stdout)
        for command in (["ip", "-n", namespace, "-br", "link"], ["bridge", "-n", namespace, "fdb", "show"],
                        ["ip", "-n", namespace, "-br", "addr"], ["ip", "netns", "exec", namespace, "nft", "list", "ruleset"]):
            lines.append(subprocess.run(command, capture_output=True, text=True).stdout)
        for log in sorted((scratch / name).glob("dataplane/dhcp/*/log")):
            lines.append(f"{log}:\n{log.read_text(errors='replace')[-3000:]}")
        for hosts in sorted((scratch / name).glob("dataplane/dhcp/*/host")):
            lines.append(f"{hosts}:\n{hosts.read_text(errors='replace')}")
    return "\n".join(lines)


def guest_line(cloud: Nimbus, server: str, pattern: str, timeout: float = LINE_TIMEOUT) -> re.Match:
    found: list[re.Match] = []

    def seen() -> bool:
        log = cloud.osc("console", "log", "show", server, fmt=None)
        match = re.search(pattern, log)
        if match:
            found.append(match)
        return match is not None

    wait_for(seen, timeout, f"{pattern!r} on the console of {server}")
    return found[0]


def broken_links(walked: subprocess.CompletedProcess) -> list[str]:
    return [line.strip() for line in walked.stdout.splitlines() if line.strip().startswith("BROKEN")]


def assert_all_ok(walked: subprocess.CompletedProcess) -> None:
    assert walked.returncode == 0 and not broken_links(walked), walked.stdout + walked.stderr


def trace(fabric: "Fabric", host: str, server: str) -> subprocess.CompletedProcess:
    """`nimbus manage trace server` run on `host` (in its namespace), as an operator would."""
    cloud = fabric.cloud
    env = {**os.environ, "OS_AUTH_URL": cloud.auth_url, "OS_USERNAME": "admin", "OS_PASSWORD": cloud.admin_password,
           "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}
    return subprocess.run(["nsenter", f"--net=/run/netns/{HOSTS[host][0]}", str(nimbus_binary()), "manage", "trace", "server", server,
                           "--host", host, "--state-dir", str(fabric.scratch / host / "dataplane")],
                          env=env, capture_output=True, text=True, timeout=120)


class Fabric:
    """The running cloud, its hosts' scratch directory, and its agents (which a test may kill
    and start again)."""

    def __init__(self, cloud: Nimbus, scratch: Path, agents: dict[str, subprocess.Popen], start_agent) -> None:
        self.cloud, self.scratch, self.agents, self.start_agent = cloud, scratch, agents, start_agent

    def kill_agent(self, name: str) -> None:
        process = self.agents[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def serving(self, kind: str, resource: str) -> str:
        """The host whose agent runs the DHCP server (`kind` "dhcp") or router ("routers") of
        `resource`: the one whose state directory has it."""
        hosts = [host for host in HOSTS if (self.scratch / host / "dataplane" / kind / resource).is_dir()]
        assert len(hosts) == 1, f"{kind} {resource} on {hosts}"
        return hosts[0]

    @contextlib.contextmanager
    def agent_paused(self, name: str):
        """The host's agent stopped (SIGSTOP; the nsenter'd agent is the process itself) while
        the body breaks a link by hand and looks at it, so its resync cannot mend the link
        first. The pause must stay well under agent_down_time: a host shown down loses its
        DHCP servers and routers to the other."""
        process = self.agents[name]
        os.kill(process.pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            yield
        finally:
            os.kill(process.pid, signal.SIGCONT)
        paused = time.monotonic() - started
        assert paused < AGENT_DOWN_TIME - 3, f"{name}'s agent was paused {paused:.1f}s: long enough to be taken for dead"


def console(cloud: Nimbus, server: str) -> str:
    return cloud.osc("console", "log", "show", server, fmt=None)


def ping_results(cloud: Nimbus, server: str) -> list[tuple[int, str]]:
    """The `PING-B <n> ok|fail` lines the pinging guest has printed so far."""
    return [(int(n), result) for n, result in re.findall(r"PING-B (\d+) (ok|fail)", console(cloud, server))]


def pings_after(cloud: Nimbus, server: str, count: int, timeout: float = 60.0) -> list[str]:
    """The results of the next `count` pings the guest makes from now on."""
    start = max([n for n, _ in ping_results(cloud, server)], default=0)
    found: list[str] = []

    def enough() -> bool:
        found[:] = [result for n, result in ping_results(cloud, server) if n > start]
        return len(found) >= count

    wait_for(enough, timeout, f"{count} more pings from {server}")
    return found[:count]


@pytest.fixture(scope="module", params=["sqlite"])
def fabric(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, bridges, taps")
    for tool in ("dnsmasq", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/test installs it)")
    scratch = Path(tempfile.mkdtemp(prefix="ndp-", dir="/tmp"))
    cloud = Nimbus(request.param, tmp_path_factory.mktemp("dataplane"))
    agents: dict[str, subprocess.Popen] = {}
    namespaces = [FABRIC, CONTROLLER, EXTERNAL] + [ns for ns, _ in HOSTS.values()]
    outside_server: subprocess.Popen | None = None
    try:
        sh("ip", "netns", "add", FABRIC)
        sh("ip", "-n", FABRIC, "link", "add", "fab", "type", "bridge")
        sh("ip", "-n", FABRIC, "link", "set", "fab", "up")
        join_fabric(CONTROLLER, CONTROLLER_IP, 0)
        for index, (namespace, address) in enumerate(HOSTS.values(), start=1):
            join_fabric(namespace, address, index)
        sh("ip", "netns", "add", EXTERNAL)
        sh("ip", "-n", EXTERNAL, "link", "set", "lo", "up")
        sh("ip", "-n", EXTERNAL, "link", "add", "ext", "type", "bridge")
        sh("ip", "-n", EXTERNAL, "addr", "add", f"{OUTSIDE_ADDRESS}/24", "dev", "ext")
        sh("ip", "-n", EXTERNAL, "link", "set", "ext", "up")
        for index, (namespace, _) in enumerate(HOSTS.values(), start=1):
            sh("ip", "-n", EXTERNAL, "link", "add", f"pub{index}", "type", "veth", "peer", "name", "pub0", "netns", namespace)
            sh("ip", "-n", EXTERNAL, "link", "set", f"pub{index}", "master", "ext", "up")
        outside_server = subprocess.Popen(
            ["ip", "netns", "exec", EXTERNAL, "python3", "-c",
             "import http.server\n"
             "class H(http.server.BaseHTTPRequestHandler):\n"
             "    def do_GET(self):\n"
             "        body = self.client_address[0].encode()\n"
             "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n"
             "    def log_message(self, *args): pass\n"
             f"http.server.HTTPServer(('{OUTSIDE_ADDRESS}', {OUTSIDE_PORT}), H).serve_forever()\n"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        cloud.command, cloud.fake_hosts = "controller", None
        # No config drive: guests find their metadata at 169.254.169.254, through the proxy in
        # their network's DHCP namespace.
        cloud.extra_conf = f"[compute]\nforce_config_drive = false\n[DEFAULT]\nagent_down_time = {AGENT_DOWN_TIME}\n"
        cloud.place_in(CONTROLLER, CONTROLLER_IP)
        cloud.start()
        password_file = cloud.workdir / "admin-password"
        password_file.write_text(cloud.admin_password)
        # The agents sign metadata requests with the controller's secret (made at its first start).
        secret = (cloud.data_dir / "metadata-proxy-shared-secret").read_text().strip()
        agent_conf = cloud.workdir / "agent.conf"
        agent_conf.write_text(f"[neutron]\nmetadata_proxy_shared_secret = {secret}\n"
                              "[linux_bridge]\nphysical_interface_mappings = public:pub0\n")
        def start_agent(name: str) -> None:
            namespace, address = HOSTS[name]
            log = open(cloud.workdir / f"agent-{name}.log", "ab")
            agents[name] = subprocess.Popen(
                # nsenter, not `ip netns exec`: the latter gives the agent a mount namespace of
                # its own, where the qdhcp- namespaces it makes would not be seen by anyone else.
                ["nsenter", f"--net=/run/netns/{namespace}", str(nimbus_binary()), "agent", "--controller", cloud.base_url, "--host", name,
                 "--password-file", str(password_file), "--heartbeat", "1", "--driver", "qemu",
                 "--instances-path", str(scratch / name / "instances"), "--host-ip", address, "--dataplane", "linux",
                 "--config-file", str(agent_conf)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

        for name in HOSTS:
            start_agent(name)
        wait_for(lambda: {s["Host"]: s["State"] for s in cloud.osc("compute", "service", "list", "--service", "nova-compute")}
                 == {"dp-a": "up", "dp-b": "up"}, 120, "both agents to register")

        cloud.upload_test_image()
        cloud.osc("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", "small")
        yield Fabric(cloud, scratch, agents, start_agent)
    finally:
        if outside_server is not None:
            os.killpg(outside_server.pid, signal.SIGKILL)
            outside_server.wait(timeout=10)
        for process in agents.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        cloud.stop()
        for pid in processes_under(scratch):
            os.kill(pid, signal.SIGKILL)
        # The hosts' DHCP and router namespaces: theirs when the host's state directory names
        # them (their dnsmasq were killed above, with every process naming the scratch directory).
        remove_dataplane_namespaces([scratch / host / "dataplane" for host in HOSTS])
        for namespace in namespaces:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def topology(fabric):
    """A tenant VXLAN network with one server per host: A (on dp-a) pings B (on dp-b) twice a
    second for as long as it runs, printing each result; B is in a group whose one ingress
    rule admits ICMP, A in the project's default group."""
    cloud, scratch = fabric.cloud, fabric.scratch
    network = cloud.osc("network", "create", "private-" + SUFFIX)
    assert network["provider:network_type"] == "vxlan", network
    subnet = cloud.osc("subnet", "create", "--network", network["id"], "--subnet-range", "10.77.0.0/24", "private-subnet-" + SUFFIX)
    pingable = cloud.osc("security group", "create", "pingable-" + SUFFIX)
    icmp = cloud.osc("security group rule", "create", "--ingress", "--protocol", "icmp", pingable["id"])
    ports = {host: cloud.osc("port", "create", "--network", network["id"], "--fixed-ip", f"subnet={subnet['id']},ip-address={address}",
                             *(["--security-group", pingable["id"]] if host == "dp-b" else []), f"port-{host}")
             for host, address in ADDRESSES.items()}
    pinger = scratch / "ping-b.sh"
    pinger.write_text("#!/bin/sh\ni=0\nwhile true; do\n  i=$((i+1))\n"
                      f"  if ping -c 1 -W 1 {ADDRESSES['dp-b']} >/dev/null 2>&1; then echo \"PING-B $i ok\"; else echo \"PING-B $i fail\"; fi\n"
                      "  sleep 0.5\ndone\n")
    servers = {}
    for host in ("dp-b", "dp-a"):
        args = ["server", "create", "--flavor", "small", "--image", "nimbus-test", "--port", ports[host]["id"],
                "--availability-zone", f"nova:{host}", "--wait"]
        if host == "dp-a":
            args += ["--user-data", str(pinger)]
        servers[host] = cloud.osc(*args, f"server-{host}")
        assert servers[host]["status"] == "ACTIVE", servers[host]
        assert servers[host]["OS-EXT-SRV-ATTR:host"] == host, servers[host]
    return {"network": network, "subnet": subnet, "ports": ports, "servers": servers, "pingable": pingable, "icmp": icmp}


def test_each_guest_gets_its_own_address_by_dhcp_and_its_own_metadata(fabric, topology):
    cloud, servers = fabric.cloud, topology["servers"]
    # Each console shows exactly its own port's address, leased over DHCP (one of them from the
    # DHCP server on the other host, across the VXLAN), and its own uuid and name, which only
    # the metadata service told it (it has no config drive): the proxy found each guest by its
    # address, never the other's.
    for host, address in ADDRESSES.items():
        guest_line(cloud, servers[host]["id"], r"NIMBUS-GUEST: metadata from metadata-service")
        line = guest_line(cloud, servers[host]["id"], r"NIMBUS-GUEST uuid=(\S+) hostname=(\S+) ip=(\S+)")
        assert line.group(1) == servers[host]["id"], line.group(0)
        assert line.group(2) == f"server-{host}", line.group(0)
        assert line.group(3) == address, (line.group(0) + "\n" + console(cloud, servers[host]["id"]) + "\n" + dataplane_report(fabric.scratch))
    # The ports are ACTIVE, bound to their hosts; one DHCP port serves the network.
    for host in ADDRESSES:
        shown = cloud.osc("port", "show", topology["ports"][host]["id"])
        assert shown["status"] == "ACTIVE", shown
        assert shown["binding_host_id"] == host, shown
    dhcp_ports = cloud.osc("port", "list", "--network", topology["network"]["id"], "--device-owner", "network:dhcp")
    assert len(dhcp_ports) == 1, dhcp_ports


def test_a_pings_b_across_the_hosts_and_b_s_icmp_rule_decides(fabric, topology):
    cloud, a = fabric.cloud, topology["servers"]["dp-a"]["id"]
    try:
        wait_for(lambda: any(result == "ok" for _, result in ping_results(cloud, a)), 90, "A's first ping to reach B")
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{console(cloud, a)}\n{dataplane_report(fabric.scratch)}") from None
    # Without B's ICMP rule the pings stop getting through (after the hosts pick the change up)...
    cloud.osc("security group rule", "delete", topology["icmp"]["id"])
    wait_for(lambda: pings_after(cloud, a, 4) == ["fail"] * 4, 60, "pings to B to be dropped without the ICMP rule")
    # ...and with it back they get through again.
    topology["icmp"] = cloud.osc("security group rule", "create", "--ingress", "--protocol", "icmp", topology["pingable"]["id"])
    wait_for(lambda: pings_after(cloud, a, 4) == ["ok"] * 4, 60, "pings to B to pass again with the ICMP rule")


def test_a_guest_cannot_send_from_an_address_that_is_not_its_own(fabric, topology):
    cloud = fabric.cloud
    # C pings B from its own address, then from one it adds to its NIC by hand: only the first
    # gets an answer, the spoofed one is dropped on C's own host.
    spoofer = fabric.scratch / "spoof.sh"
    spoofer.write_text("#!/bin/sh\nsleep 1\n"
                       f"for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 {ADDRESSES['dp-b']} >/dev/null 2>&1 && break; sleep 1; done\n"
                       f"ping -c 2 -W 1 {ADDRESSES['dp-b']} >/dev/null 2>&1 && echo OWN-ADDRESS-REACHED || echo OWN-ADDRESS-BLOCKED\n"
                       f"ip addr add {SPOOFED_ADDRESS}/24 dev eth0\n"
                       f"ping -c 3 -W 1 -I {SPOOFED_ADDRESS} {ADDRESSES['dp-b']} >/dev/null 2>&1 && echo SPOOF-REACHED || echo SPOOF-BLOCKED\n")
    port = cloud.osc("port", "create", "--network", topology["network"]["id"],
                     "--fixed-ip", f"subnet={topology['subnet']['id']},ip-address={SPOOFER_ADDRESS}", "port-spoofer")
    server = cloud.osc("server", "create", "--flavor", "small", "--image", "nimbus-test", "--port", port["id"],
                       "--availability-zone", "nova:dp-a", "--user-data", str(spoofer), "--wait", "server-spoofer")
    try:
        guest_line(cloud, server["id"], r"OWN-ADDRESS-REACHED")
        guest_line(cloud, server["id"], r"SPOOF-(REACHED|BLOCKED)")
        assert "SPOOF-BLOCKED" in console(cloud, server["id"])
    finally:
        cloud.osc("server", "delete", "--wait", server["id"])
        cloud.osc("port", "delete", port["id"])


def test_an_agent_restart_keeps_traffic_and_wiring_removes_leftovers_and_a_dead_agent_is_shown_down(fabric, topology):
    cloud, scratch, a = fabric.cloud, fabric.scratch, topology["servers"]["dp-a"]["id"]
    # The host without the network's DHCP server: killing that one's agent long enough to be
    # shown down would move the DHCP server, and on this one machine both hosts' qdhcp-
    # namespaces would have the same name.
    host = "dp-b" if fabric.serving("dhcp", topology["network"]["id"]) == "dp-a" else "dp-a"
    namespace = HOSTS[host][0]
    before = sorted(dataplane_left(namespace))

    # A network with something on this host that will be deleted while its agent is dead: a
    # port bound here by an admin (as Nova binds one) and the network's DHCP server, which the
    # scheduler gives this host as it serves none yet. Its agent wires both.
    doomed = cloud.osc("network", "create", "doomed-" + SUFFIX)
    cloud.osc("subnet", "create", "--network", doomed["id"], "--subnet-range", "10.78.0.0/24", "doomed-subnet-" + SUFFIX)
    doomed_port = cloud.osc("port", "create", "--network", doomed["id"], "--host", host, "--device-owner", "compute:nova",
                            "doomed-port-" + SUFFIX)
    doomed_dhcp = scratch / host / "dataplane" / "dhcp" / doomed["id"]
    doomed_devices = {"brq" + doomed["id"][:11], "tap" + doomed_port["id"][:11], f"vxlan-{doomed['provider:segmentation_id']}"}

    def doomed_wired() -> bool:
        return (doomed_devices <= set(dataplane_left(namespace)) and f"qdhcp-{doomed['id']}" in sh("ip", "netns", "list")
                and processes_under(doomed_dhcp) != [])

    wait_for(doomed_wired, 60, f"{host} to wire the doomed network (port and DHCP server)")
    doomed_dhcp_port = cloud.osc("port", "list", "--network", doomed["id"], "--device-owner", "network:dhcp")[0]
    dhcp_tap = "tap" + doomed_dhcp_port["ID"][:11]

    token = cloud.osc("token", "issue")["id"]
    fabric.kill_agent(host)
    killed = time.monotonic()
    # Deleted before the agent counts as down (or the DHCP server would move to the other host):
    # straight to the API, as the CLI takes seconds a call.
    for path in (f"/networking/v2.0/ports/{doomed_port['id']}", f"/networking/v2.0/networks/{doomed['id']}"):
        deleted = subprocess.run(["ip", "netns", "exec", CONTROLLER, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
                                  "-H", f"X-Auth-Token: {token}", cloud.base_url + path], capture_output=True, text=True, timeout=30)
        assert deleted.stdout == "204", (path, deleted.stdout, deleted.stderr)
    assert time.monotonic() - killed < AGENT_DOWN_TIME - 3, "the doomed network outlived its host's agent_down_time"
    # Nothing removed them: the host's kernel still has the network's bridge, tap, VXLAN
    # interface, DHCP namespace with its veth, and dnsmasq.
    assert doomed_wired() and dhcp_tap in dataplane_left(namespace)

    wait_for(lambda: any(agent["Host"] == host and agent["Agent Type"] == "Linux bridge agent" and not agent["Alive"]
                         for agent in cloud.osc("network", "agent", "list")), 60, f"{host}'s Linux bridge agent to be shown down")
    # With the agent dead, A still reaches B: the wiring is the kernel's, not the agent's.
    assert pings_after(cloud, a, 4) == ["ok"] * 4
    # The operator's walk finds every link of the host's server in place; then one broken by
    # hand (its tap down), which it names.
    server, tap = f"server-{host}", "tap" + topology["ports"][host]["id"][:11]
    walked = trace(fabric, host, server)
    assert_all_ok(walked)
    assert f"OK      tap {tap}" in walked.stdout, walked.stdout
    sh("ip", "-n", namespace, "link", "set", tap, "down")
    walked = trace(fabric, host, server)
    broken = broken_links(walked)
    assert walked.returncode == 1 and broken and all(line.startswith(f"BROKEN  tap {tap}") for line in broken), walked.stdout + walked.stderr
    sh("ip", "-n", namespace, "link", "set", tap, "up")
    assert pings_after(cloud, a, 2, timeout=30)[-1] == "ok"
    fabric.start_agent(host)
    wait_for(lambda: any(agent["Host"] == host and agent["Agent Type"] == "Linux bridge agent" and agent["Alive"]
                         for agent in cloud.osc("network", "agent", "list")), 60, f"{host}'s Linux bridge agent to be alive again")
    results = pings_after(cloud, a, 6)
    assert results == ["ok"] * 6, results
    # The restarted agent removed the deleted network's leftovers and changed nothing else.
    assert sorted(dataplane_left(namespace)) == before, "the restarted agent changed the wiring"
    assert f"qdhcp-{doomed['id']}" not in sh("ip", "netns", "list")
    assert processes_under(doomed_dhcp) == [] and not doomed_dhcp.exists()
    assert_all_ok(trace(fabric, host, server))
    agents = cloud.osc("network", "agent", "list")
    for name in ADDRESSES:
        assert any(agent["Host"] == name and agent["Agent Type"] == "Linux bridge agent" and agent["Alive"] for agent in agents), agents


def test_trace_names_a_killed_dnsmasq_and_the_agent_starts_it_again(fabric, topology):
    cloud, network = fabric.cloud, topology["network"]["id"]
    host = fabric.serving("dhcp", network)
    directory = fabric.scratch / host / "dataplane" / "dhcp" / network
    server = f"server-{host}"
    assert_all_ok(trace(fabric, host, server))
    killed = int((directory / "pid").read_text())
    with fabric.agent_paused(host):
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: processes_under(directory) == [], 5, "the killed dnsmasq to be gone")
        walked = trace(fabric, host, server)
    broken = broken_links(walked)
    assert walked.returncode == 1 and broken == [f"BROKEN  dnsmasq {directory}: not running"], walked.stdout + walked.stderr
    # The agent's next resync starts it again, and the walk is all OK.
    wait_for(lambda: trace(fabric, host, server).returncode == 0, 30, "the trace to be all OK again")
    assert_all_ok(trace(fabric, host, server))
    assert processes_under(directory) not in ([], [killed])


def test_live_migration_keeps_the_guests_address_and_its_traffic(fabric, topology):
    cloud, a = fabric.cloud, topology["servers"]["dp-a"]["id"]
    port = topology["ports"]["dp-a"]["id"]
    assert pings_after(cloud, a, 3) == ["ok"] * 3
    # The destination wires A's port before the guest arrives; QEMU's announcement moves its
    # MAC in the bridges; the port's binding follows once the migration is done.
    cloud.osc("server", "migrate", "--live-migration", "--wait", a, fmt=None)
    moved = cloud.osc("server", "show", a)
    assert (moved["status"], moved["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "dp-b"), moved
    # The guest goes on pinging from the new host (its console there starts with the
    # migration): at most a couple of its pings were lost, and then none.
    results = pings_after(cloud, a, 12, timeout=90)
    assert results.count("fail") <= 2 and results[-6:] == ["ok"] * 6, results
    assert "live-migration" in [e["Action"] for e in cloud.osc("server", "event", "list", a)]
    wait_for(lambda: cloud.osc("port", "show", port)["binding_host_id"] == "dp-b", 60, "A's port to be bound to dp-b")
    tap = "tap" + port[:11]
    wait_for(lambda: tap not in dataplane_left(HOSTS["dp-a"][0]), 30, "A's tap to leave dp-a")
    assert tap in dataplane_left(HOSTS["dp-b"][0])


def test_a_router_gives_snat_out_and_a_floating_ip_in_and_metadata_through_it(fabric, topology):
    cloud, scratch = fabric.cloud, fabric.scratch
    public = cloud.osc("network", "create", "--external", "--provider-network-type", "flat", "--provider-physical-network", "public",
                       "public-" + SUFFIX)
    cloud.osc("subnet", "create", "--network", public["id"], "--subnet-range", "172.24.4.0/24", "--gateway", OUTSIDE_ADDRESS,
              "--no-dhcp", "--allocation-pool", "start=172.24.4.10,end=172.24.4.100", "public-subnet-" + SUFFIX)
    router = cloud.osc("router", "create", "router-" + SUFFIX)
    cloud.osc("router", "set", "--external-gateway", public["id"], router["id"])
    cloud.osc("router", "add", "subnet", router["id"], topology["subnet"]["id"])
    gateway_address = cloud.osc("router", "show", router["id"])["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    topology.update(public=public, router=router)

    reachable = cloud.osc("security group", "create", "reachable-" + SUFFIX)
    for protocol, port in (("icmp", None), ("tcp", "22")):
        cloud.osc("security group rule", "create", "--ingress", "--protocol", protocol, *(["--dst-port", port] if port else []), reachable["id"])
    key = scratch / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cloud.osc("keypair", "create", "--public-key", str(key) + ".pub", "key-" + SUFFIX)
    asker = scratch / "ask-outside.sh"
    asker.write_text("#!/bin/sh\nwhile true; do\n"
                     f"  echo \"SEEN-AS $(timeout 3 wget -q -O - http://{OUTSIDE_ADDRESS}:{OUTSIDE_PORT}/ 2>/dev/null || echo nothing)\"\n"
                     "  sleep 1\ndone\n")
    port = cloud.osc("port", "create", "--network", topology["network"]["id"], "--security-group", reachable["id"],
                     "--fixed-ip", f"subnet={topology['subnet']['id']},ip-address={ROUTED_ADDRESS}", "port-routed")
    server = cloud.osc("server", "create", "--flavor", "small", "--image", "nimbus-test", "--port", port["id"], "--key-name", "key-" + SUFFIX,
                       "--user-data", str(asker), "--wait", "server-routed")
    topology.update(routed_server=server, routed_port=port, reachable=reachable)
    try:
        # Its subnet has a router, so the guest's metadata came through the router's proxy.
        guest_line(cloud, server["id"], r"NIMBUS-GUEST: metadata from metadata-service")
        line = guest_line(cloud, server["id"], r"NIMBUS-GUEST uuid=(\S+) hostname=(\S+) ip=(\S+)")
        assert (line.group(1), line.group(2), line.group(3)) == (server["id"], "server-routed", ROUTED_ADDRESS), line.group(0)
        # Out through the router: the outside sees the router's gateway address.
        guest_line(cloud, server["id"], rf"SEEN-AS {re.escape(gateway_address)}\b")

        floating = cloud.osc("floating ip", "create", public["id"])
        topology["floating"] = floating
        address = floating["floating_ip_address"]
        cloud.osc("floating ip", "set", "--port", port["id"], floating["id"])
        # In through the floating IP: ping, then an SSH login with the server's key that runs a
        # command in the guest.
        wait_for(lambda: pings(EXTERNAL, address), 60, f"the outside to ping {address}")
        login = ssh(EXTERNAL, key, address, "echo logged-in-to-$(hostname)")
        assert "logged-in-to-server-routed" in login.stdout, login.stdout + login.stderr
        # And its own traffic now leaves from its floating IP.
        guest_line(cloud, server["id"], rf"SEEN-AS {re.escape(address)}\b")

        # The operator's walk on the router's host: all OK; then, with the floating IP's DNAT
        # deleted by hand from the router's namespace, it names the NAT link and nothing else.
        host = fabric.serving("routers", router["id"])
        namespace = f"qrouter-{router['id']}"
        assert_all_ok(trace(fabric, host, "server-routed"))
        with fabric.agent_paused(host):
            listing = sh("ip", "netns", "exec", namespace, "nft", "-a", "list", "chain", "ip", "nimbus-nat", "prerouting")
            handle = re.search(rf"ip daddr {re.escape(address)} dnat to {re.escape(ROUTED_ADDRESS)} # handle (\d+)", listing)
            assert handle, listing
            sh("ip", "netns", "exec", namespace, "nft", "delete", "rule", "ip", "nimbus-nat", "prerouting", "handle", handle.group(1))
            walked = trace(fabric, host, "server-routed")
        broken = broken_links(walked)
        assert walked.returncode == 1 and len(broken) == 1, walked.stdout + walked.stderr
        assert broken[0].startswith(f"BROKEN  floating ip nat table ip nimbus-nat in {namespace}: missing: ip daddr {address} dnat to {ROUTED_ADDRESS}"), broken
        # The agent's next resync loads the table again: the walk is all OK and the floating IP answers.
        wait_for(lambda: trace(fabric, host, "server-routed").returncode == 0, 30, "the trace to be all OK again")
        assert_all_ok(trace(fabric, host, "server-routed"))
        wait_for(lambda: pings(EXTERNAL, address), 30, f"the outside to ping {address} again")
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{console(cloud, server['id'])}\n{dataplane_report(scratch)}") from None


def test_deleting_everything_leaves_nothing_of_the_dataplane(fabric, topology):
    cloud, scratch = fabric.cloud, fabric.scratch
    if "floating" in topology:
        cloud.osc("floating ip", "delete", topology["floating"]["id"])
    if "routed_server" in topology:
        cloud.osc("server", "delete", "--wait", topology["routed_server"]["id"])
        cloud.osc("port", "delete", topology["routed_port"]["id"])
        cloud.osc("security group", "delete", topology["reachable"]["id"])
    if "router" in topology:
        cloud.osc("router", "remove", "subnet", topology["router"]["id"], topology["subnet"]["id"])
        cloud.osc("router", "delete", topology["router"]["id"])
        cloud.osc("network", "delete", topology["public"]["id"])
    for server in topology["servers"].values():
        cloud.osc("server", "delete", "--wait", server["id"])
    for port in topology["ports"].values():
        cloud.osc("port", "delete", port["id"])
    cloud.osc("network", "delete", topology["network"]["id"])
    cloud.osc("security group", "delete", topology["pingable"]["id"])
    for name, (namespace, _) in HOSTS.items():
        wait_for(lambda: dataplane_left(namespace) == [], 30, f"{name}'s dataplane to be removed: {dataplane_left(namespace)}")
        rules = subprocess.run(["ip", "netns", "exec", namespace, "nft", "list", "ruleset"], capture_output=True, text=True).stdout
        assert "nimbus" not in rules, rules
    wait_for(lambda: f"qdhcp-{topology['network']['id']}" not in sh("ip", "netns", "list"), 30, "the DHCP namespace to go")
    if "router" in topology:
        wait_for(lambda: f"qrouter-{topology['router']['id']}" not in sh("ip", "netns", "list"), 30, "the router's namespace to go")

    def described(pid: int) -> str:
        try:
            return f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:300]
        except OSError:
            return f"{pid}: gone"

    # The guests' QEMUs and the DHCP servers' dnsmasq name their directories (the agents only their parents).
    def left() -> list[int]:
        return [pid for host in HOSTS for part in ("instances", "dataplane") for pid in processes_under(scratch / host / part)]

    wait_for(lambda: left() == [], 30, "no guest or dnsmasq process left: " + "; ".join(described(p) for p in left()))
