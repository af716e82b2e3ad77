"""`nimbus up` as an operator meets it: clear one-line failures, restarts that keep
data and tokens, and token key rotation across a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port, nimbus_binary

START_TIMEOUT = 60


def run_until_exit(*args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([str(nimbus_binary()), *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_failure(result: subprocess.CompletedProcess, reason: str) -> None:
    assert result.returncode != 0, result
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert lines and lines[-1].startswith("nimbus: "), result.stderr
    assert reason in lines[-1], result.stderr


def test_port_in_use_is_a_one_line_failure(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_until_exit("up", "--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{port}")
    assert_one_line_failure(result, "address already in use")


def test_data_dir_that_is_a_file_is_a_one_line_failure(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = run_until_exit("up", "--data-dir", str(not_a_dir), "--listen", f"127.0.0.1:{free_port()}")
    assert_one_line_failure(result, "is not a directory")
    result = run_until_exit("up", "--data-dir", str(not_a_dir / "below"), "--listen", f"127.0.0.1:{free_port()}")
    assert_one_line_failure(result, "cannot create data dir")


@pytest.mark.parametrize("url, reason", [
    ("mysql://user:pw@127.0.0.1/db", "unsupported database URL"),
    ("postgres://nimbus:secret@127.0.0.1:1/nimbus", "cannot connect to PostgreSQL"),
    ("postgres://", "bad PostgreSQL URL"),
])
def test_bad_database_url_is_a_one_line_failure(tmp_path: Path, url: str, reason: str) -> None:
    bridge_before = public_bridge_exists()
    result = run_until_exit("up", "--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{free_port()}", "--database", url)
    assert_one_line_failure(result, reason)
    assert "secret" not in result.stderr, "passwords are not echoed"
    # As root, nimbus up makes DevStack's br-ex in its namespace (here the host's own): only
    # once the database is open, so a refused start leaves the host as it was.
    if not bridge_before:
        assert not public_bridge_exists(), "a start refused for its database made br-ex"


def public_bridge_exists() -> bool:
    return subprocess.run(["ip", "link", "show", "br-ex"], capture_output=True).returncode == 0


def test_bad_listen_address_and_config_are_one_line_failures(tmp_path: Path) -> None:
    assert_one_line_failure(run_until_exit("up", "--data-dir", str(tmp_path / "a"), "--listen", "nowhere"), "bad listen address")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "nimbus.conf").write_text("[token\nexpiration = 5\n")
    assert_one_line_failure(run_until_exit("up", "--data-dir", str(tmp_path / "b"), "--listen", f"127.0.0.1:{free_port()}"),
                            "malformed section header")


class Server:
    """A `nimbus up` process on a data dir that outlives it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/identity/v3"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        # No compute host: these tests are about start-up, identity and restarts.
        self.proc = subprocess.Popen([str(nimbus_binary()), "up", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}",
                                      "--driver", "none"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + START_TIMEOUT
        assert self.proc.stdout is not None
        output = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Nimbus is ready" in line:
                return self
        self.proc.kill()
        self.proc.wait()
        raise AssertionError("nimbus did not become ready:\n" + "".join(output))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            rest = self.proc.stdout.read() if self.proc.stdout else ""
            assert self.proc.returncode == 0, f"nimbus exited {self.proc.returncode} on SIGTERM:\n{rest}"

    def password(self) -> str:
        return (self.data_dir / "admin-password").read_text().strip()

    def token(self) -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": self.password()}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        reply = requests.post(f"{self.url}/auth/tokens", json=body, timeout=30)
        assert reply.status_code == 201, reply.text
        return reply.headers["X-Subject-Token"]

    def get(self, path: str, token: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers={"X-Auth-Token": token}, timeout=30)


def test_restart_keeps_data_and_tokens_and_rotation_keeps_tokens_valid(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        token = server.token()
        created = requests.post(f"{server.url}/projects", json={"project": {"name": "kept"}},
                                headers={"X-Auth-Token": token}, timeout=30)
        assert created.status_code == 201, created.text
        assert (tmp_path / "data" / "clouds.yaml").is_file() and (tmp_path / "data" / "openrc").is_file()
    finally:
        server.stop()

    rotated = run_until_exit("manage", "token", "rotate", "--data-dir", str(tmp_path / "data"))
    assert rotated.returncode == 0, rotated.stderr

    server.start()
    try:
        listed = server.get("/projects?name=kept", token)
        assert listed.status_code == 200, listed.text
        assert [p["name"] for p in listed.json()["projects"]] == ["kept"]
        fresh = server.token()
        assert server.get("/auth/catalog", fresh).status_code == 200
    finally:
        server.stop()
