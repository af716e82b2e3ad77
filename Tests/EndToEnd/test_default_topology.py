"""Out of the box (issue #14): `nimbus up` as the README's first command starts it, with only
`--public-namespace` added, makes DevStack's networks, and a server booted on `private` gets
its address by DHCP and its hostname from the metadata service, and with a floating IP from
`public` answers ping and SSH from the public side.

The whole cloud runs in a network namespace this module makes (its host's bridges, taps and
nftables rules with it), and `--public-namespace` puts `br-ex` and the public gateway address in
another one: nothing is sent from, or changed in, the root namespace."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess

import pytest

from conftest import Nimbus, wait_for
from test_dataplane import guest_line, pings, remove_dataplane_namespaces, ssh
from test_qemu_moves import processes_under

SUFFIX = secrets.token_hex(3)
HOST, PUBLIC = f"nbo-host-{SUFFIX}", f"nbo-pub-{SUFFIX}"


@pytest.fixture(scope="module", params=["sqlite"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, bridges, taps")
    for tool in ("dnsmasq", "qemu-system-x86_64", "ssh"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/test installs it)")
    cloud = Nimbus(request.param, tmp_path_factory.mktemp("default-topology"))
    cloud.fake_hosts = None  # nimbus up's own QEMU host
    cloud.dataplane = None  # nimbus up's default: linux, as root
    cloud.extra_args = ["--public-namespace", PUBLIC]
    cloud.place_in(HOST, "127.0.0.1")
    try:
        subprocess.run(["ip", "netns", "add", HOST], check=True)
        subprocess.run(["ip", "-n", HOST, "link", "set", "lo", "up"], check=True)
        cloud.start()
        yield cloud
    finally:
        cloud.stop()
        # Its guests' QEMUs and DHCP servers' dnsmasq name the data directory.
        for pid in processes_under(cloud.data_dir):
            os.kill(pid, signal.SIGKILL)
        remove_dataplane_namespaces([cloud.data_dir / "dataplane"])
        for name in (HOST, PUBLIC):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_devstacks_networks_are_made(cloud):
    networks = {network["Name"]: network for network in cloud.osc("network", "list", "--long")}
    assert {"public", "private"} <= set(networks), networks
    public = cloud.osc("network", "show", "public")
    assert (public["router:external"], public["provider:network_type"], public["provider:physical_network"]) == (True, "flat", "public"), public
    assert cloud.osc("subnet", "show", "public-subnet")["cidr"] == "172.24.4.0/24"
    assert cloud.osc("subnet", "show", "private-subnet")["cidr"] == "10.0.0.0/26"
    router = cloud.osc("router", "show", "router1")
    assert router["external_gateway_info"]["network_id"] == public["id"], router
    # br-ex holds the public gateway in the public namespace, and the router answers on public.
    addresses = subprocess.run(["ip", "-n", PUBLIC, "-br", "addr", "show", "br-ex"], capture_output=True, text=True).stdout
    assert "172.24.4.1/24" in addresses, addresses
    gateway = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    wait_for(lambda: pings(PUBLIC, gateway), 60, f"the public side to ping router1's gateway {gateway}")


def test_a_server_on_private_gets_dhcp_metadata_and_answers_on_its_floating_ip(cloud, tmp_path):
    # What a new user does: open ping and SSH in the default group, make a key, boot, attach a
    # floating IP.
    for protocol, port in (("icmp", None), ("tcp", "22")):
        cloud.osc("security group rule", "create", "--ingress", "--protocol", protocol, *(["--dst-port", port] if port else []), "default")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cloud.osc("keypair", "create", "--public-key", str(key) + ".pub", "oob-key")
    server = cloud.osc("server", "create", "--flavor", "m1.nano", "--image", "nimbus-test", "--network", "private",
                       "--key-name", "oob-key", "--wait", "oob-demo")
    assert server["status"] == "ACTIVE", server
    port = cloud.osc("port", "list", "--server", server["id"])[0]
    address = port["Fixed IP Addresses"][0]["ip_address"]
    # Its address by DHCP, and who it is from the metadata service (no config drive out of the box).
    guest_line(cloud, server["id"], r"NIMBUS-GUEST: eth0 has a DHCP lease")
    guest_line(cloud, server["id"], r"NIMBUS-GUEST: metadata from metadata-service")
    line = guest_line(cloud, server["id"], r"NIMBUS-GUEST uuid=(\S+) hostname=(\S+) ip=(\S+)")
    assert (line.group(1), line.group(2), line.group(3)) == (server["id"], "oob-demo", address), line.group(0)

    floating = cloud.osc("floating ip", "create", "public")["floating_ip_address"]
    cloud.osc("server", "add", "floating ip", server["id"], floating, fmt=None)
    wait_for(lambda: pings(PUBLIC, floating), 60, f"the public side to ping {floating}")
    login = ssh(PUBLIC, key, floating, "echo logged-in-to-$(hostname)")
    assert "logged-in-to-oob-demo" in login.stdout, login.stdout + login.stderr
    cloud.osc("server", "delete", "--wait", server["id"], fmt=None)
