"""Fixtures for the Nimbus end-to-end tests.

The tests drive a real `nimbus up` process through the unmodified `openstack`
CLI (python-openstackclient, pinned in requirements.txt) and through raw HTTP.
Nothing is built here: scripts/test runs `swift build` first. The binary is
.build/debug/nimbus, or whatever NIMBUS_BIN names.

Every test runs once per database backend: SQLite always, PostgreSQL when
NIMBUS_TEST_POSTGRES_URL is set (each run gets a database of its own, created
here and dropped afterwards). One server is started per backend (per xdist
worker, see below) and shared by all tests, so tests name what they create
uniquely (see `unique`).

scripts/test runs the suite on two pytest-xdist workers (`-n 2 --dist
loadscope`): most of its time is spent in `openstack` CLI calls (well over a
thousand), one after another, so two workers on two cores take about half the
time. Each call runs the unmodified client's own entry point
(`openstackclient.shell.main`) inside the worker rather than as a process of
its own: the same code on the same arguments, without the second of Python
start-up and plugin loading a process costs (see `run_openstack_in_process`).
Calls that must run elsewhere (in a server's network namespace, or with
NIMBUS_OPENSTACK_CLI naming another client) still start `openstack`. The unit
of work is a test module on one backend (`xdist_scope`), handed to whichever
worker is free, so a worker may run units of both backends and then has a
server of each (started once: see `clouds`). Without `-n` the suite runs
serially.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
OPENSTACK = os.environ.get("NIMBUS_OPENSTACK_CLI") or str(VENV_BIN / "openstack")
POSTGRES_URL = os.environ.get("NIMBUS_TEST_POSTGRES_URL", "").strip()

READY_TIMEOUT = 60.0
OSC_TIMEOUT = 60.0
HTTP_TIMEOUT = 30.0

BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"nimbus binary: {nimbus_binary()}",
        f"openstack CLI: {OPENSTACK}",
        "backends: " + ", ".join(BACKENDS)
        + ("" if POSTGRES_URL else " (set NIMBUS_TEST_POSTGRES_URL to add postgres)"),
    ]


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """The first truthy value `predicate()` returns, polled until `timeout`; fails naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} within {timeout:.0f}s (last: {last!r})")


def nimbus_binary() -> Path:
    override = os.environ.get("NIMBUS_BIN")
    if override:
        return Path(override).resolve()
    return REPO_ROOT / ".build" / "debug" / "nimbus"


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on the same server) uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _OscTimeout(BaseException):
    """Raised by the call's timer; a BaseException so that the client's own `except Exception`
    (e.g. around an image download) cannot take it for a failure of its own."""


def _forget_client_handles() -> None:
    """Drops the service clients osc-lib keeps for the rest of a process.

    python-openstackclient hangs each service's client on its ClientManager class as an
    osc_lib `ClientCache` descriptor, which keeps the first client it makes in the descriptor
    itself: one per process, whoever the next call authenticates as. A process runs one
    command, so the cache is harmless there; run in-process, the second call would act with
    the first call's credentials (a user would list another project's images).
    """
    from osc_lib.clientmanager import ClientCache
    from openstackclient.common.clientmanager import ClientManager

    for cls in ClientManager.__mro__:
        for attribute in vars(cls).values():
            if isinstance(attribute, ClientCache):
                attribute._handle = None


def run_openstack_in_process(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`openstack ARGV` run by python-openstackclient's own entry point in this process, as a
    process would see it: `env` as the whole environment, /dev/null as stdin, stdout and stderr
    captured, `openstack` as the program name, warnings ignored (PYTHONWARNINGS=ignore for a
    process). The exit status is what `main` returns, or what argparse's SystemExit carries.

    Nothing outlives the call: the environment, sys.argv/stdin and the root logger's handlers
    (the shell adds a console handler each run) are put back. Raises subprocess.TimeoutExpired
    after `timeout` seconds, as subprocess.run would (only on the main thread, where the test
    runs; elsewhere there is no timer).
    """
    with warnings.catch_warnings():  # the client's modules warn of their own deprecations
        warnings.simplefilter("ignore")
        from openstackclient import shell  # imported once, on the first call

    saved_env, saved_argv, saved_stdin = dict(os.environ), sys.argv, sys.stdin
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stdout, stderr = io.StringIO(), io.StringIO()
    timed = threading.current_thread() is threading.main_thread()

    def expire(signum: int, frame: Any) -> None:
        raise _OscTimeout()

    previous_alarm = signal.signal(signal.SIGALRM, expire) if timed else None
    try:
        os.environ.clear()
        os.environ.update(env)
        sys.argv, sys.stdin = ["openstack"], open(os.devnull)  # as stdin=DEVNULL: `image create` reads it
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if timed:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                status = shell.main(list(argv))
            except SystemExit as exit:
                status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
                if isinstance(exit.code, str):
                    print(exit.code, file=sys.stderr)
            except _OscTimeout:
                raise subprocess.TimeoutExpired(["openstack", *argv], timeout, stdout.getvalue(), stderr.getvalue()) from None
            finally:
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        if timed:
            signal.signal(signal.SIGALRM, previous_alarm)
        _forget_client_handles()
        for handler in root.handlers[:]:
            if handler not in saved_handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(saved_level)
        os.environ.clear()
        os.environ.update(saved_env)
        if sys.stdin is not saved_stdin:
            sys.stdin.close()
        sys.argv, sys.stdin = saved_argv, saved_stdin
    return subprocess.CompletedProcess(["openstack", *argv], status or 0, stdout.getvalue(), stderr.getvalue())


# ---------------------------------------------------------------------------
# Errors that carry everything needed to understand a failure
# ---------------------------------------------------------------------------


class OscError(AssertionError):
    pass


class NimbusStartError(RuntimeError):
    pass


# ---------------------------------------------------------------------------
# PostgreSQL: one fresh database per run
# ---------------------------------------------------------------------------


def _psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True):
        return str(candidate)
    raise NimbusStartError("psql is needed to create the PostgreSQL test database")


def _psql(url: str, sql: str) -> None:
    """Runs one statement against the database of `url` (as its user)."""
    parts = urllib.parse.urlsplit(url)
    env = dict(os.environ)
    env.update(
        PGHOST=parts.hostname or "127.0.0.1",
        PGPORT=str(parts.port or 5432),
        PGUSER=urllib.parse.unquote(parts.username or "postgres"),
        PGDATABASE=urllib.parse.unquote(parts.path.lstrip("/") or "postgres"),
        PGCONNECT_TIMEOUT="10",
    )
    if parts.password is not None:
        env["PGPASSWORD"] = urllib.parse.unquote(parts.password)
    result = subprocess.run(
        [_psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise NimbusStartError(
            f"psql failed ({sql}): {result.stdout}{result.stderr}".strip()
        )


def _with_database(url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


# ---------------------------------------------------------------------------
# The running cloud
# ---------------------------------------------------------------------------


class Nimbus:
    """One `nimbus up` process and the ways the tests talk to it."""

    def __init__(self, backend: str, workdir: Path):
        self.backend = backend
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.base_url = f"http://{self.host}:{self.port}"
        self.identity_url = f"{self.base_url}/identity"
        self.auth_url = f"{self.identity_url}/v3"
        self.admin_password = "Adm1n-" + secrets.token_urlsafe(12)
        self.log_path = workdir / "nimbus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.database_url: str | None = None
        self._pg_dbname: str | None = None
        self._log_file = None
        self._admin_token: str | None = None
        self.crash_reported = False
        # `--fake-hosts N`; None runs `nimbus up`'s own host with its default (QEMU) driver.
        self.fake_hosts: int | None = 2
        # `up`, or `controller` for a control plane whose hosts are `nimbus agent` processes.
        self.command = "up"
        self.ready_timeout = READY_TIMEOUT
        # More nimbus.conf, appended to what start() writes.
        self.extra_conf = ""
        # More arguments of the command.
        self.extra_args: list[str] = []
        # `[network] dataplane` of nimbus.conf: none, so that tests running the server in this
        # (root) namespace never wire bridges and taps here; None leaves nimbus up's default
        # (auto: linux for its QEMU host when root), for tests that run it in a namespace.
        self.dataplane: str | None = "none"
        # The network namespace the server (and every `openstack` command) runs in; None: this one.
        self.netns: str | None = None

    def place_in(self, netns: str, address: str) -> None:
        """Runs the server in network namespace `netns`, listening on `address` there; the
        CLI runs in that namespace too (the tests' traffic then never leaves it)."""
        self.netns, self.host = netns, address
        self.base_url = f"http://{self.host}:{self.port}"
        self.identity_url = f"{self.base_url}/identity"
        self.auth_url = f"{self.identity_url}/v3"

    def upload_test_image(self, name: str = "nimbus-test") -> None:
        """Builds the test image (`nimbus manage image build-test`, its Debian packages cached
        across runs) and uploads it as a public image `name`, as `nimbus up`'s first start does."""
        image = self.workdir / "nimbus-test.qcow2"
        subprocess.run([str(nimbus_binary()), "manage", "image", "build-test", "--output", str(image)], check=True,
                       capture_output=True, timeout=900)
        self.osc("image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--public", "--file", str(image),
                 "--property", "hw_disk_bus=virtio", "--property", "os_distro=nimbus-test", name)

    def in_netns(self, command: list[str]) -> list[str]:
        """`command`, run in the server's network namespace when it has one. `nsenter --net`
        rather than `ip netns exec`, whose private mount namespace would hide the namespaces a
        server makes (`ip netns add`) from everyone else."""
        return (["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []) + command

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        binary = nimbus_binary()
        if not binary.exists():
            raise NimbusStartError(
                f"{binary} does not exist: run `swift build` first "
                "(scripts/test does) or set NIMBUS_BIN"
            )
        args = [
            str(binary), self.command,
            "--data-dir", str(self.data_dir),
            "--listen", f"{self.host}:{self.port}",
            "--admin-password", self.admin_password,
        ]
        if self.fake_hosts is not None:
            # Compute hosts with the fake driver: fake-1 and fake-2.
            args += ["--fake-hosts", str(self.fake_hosts)]
        args += self.extra_args
        if self.backend == "postgres":
            self._pg_dbname = "nimbus_e2e_" + secrets.token_hex(6)
            _psql(POSTGRES_URL, f'CREATE DATABASE "{self._pg_dbname}"')
            self.database_url = _with_database(POSTGRES_URL, self._pg_dbname)
            args += ["--database", self.database_url]
        # SQLite is the default: no --database, so the default is what runs.
        # Two image stores, so the import API's copy-image has somewhere to copy to.
        # bcrypt at its lowest cost, as in the Swift tests' TestCloud: every
        # `openstack` command logs in with a password, and at the default cost (12)
        # each login is a quarter of a second of server CPU, which the two xdist
        # workers' CLI processes would wait for on two cores. test_startup.py and
        # test_separate_processes.py still log in at the default cost.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "nimbus.conf").write_text("[glance_store]\nenabled_backends = local:file, backup:file\n"
                                                   "[DEFAULT]\nreport_interval = 1\n"
                                                   "[identity]\npassword_hash_rounds = 4\n"
                                                   "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:199\n"
                                                   + (f"[network]\ndataplane = {self.dataplane}\n" if self.dataplane else "") + self.extra_conf)

        self._log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.in_netns(args),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        self._wait_ready(" ".join(shlex.quote(a) for a in args))

    def _wait_ready(self, command: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NimbusStartError(
                    f"`{command}` exited with status {self.process.returncode} "
                    f"before it was ready. Output:\n{self.output()}"
                )
            if "Nimbus is ready" in self.output():
                return
            if self.netns:  # not reachable from here: only its ready line tells
                time.sleep(0.2)
                continue
            try:
                r = requests.get(f"{self.auth_url}", timeout=2)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise NimbusStartError(
            f"`{command}` was not ready within {self.ready_timeout:.0f}s. "
            f"Output:\n{self.output()}"
        )

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s. Returns the exit status."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return proc.returncode

    def drop_database(self) -> None:
        if self._pg_dbname:
            try:
                _psql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{self._pg_dbname}" WITH (FORCE)')
            finally:
                self._pg_dbname = None

    # -- the openstack CLI -------------------------------------------------

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    def osc(
        self,
        *args: str,
        cloud: str | None = "nimbus",
        env: dict[str, str] | None = None,
        expect_fail: bool = False,
        fmt: str | None = "auto",
    ) -> Any:
        """Runs `openstack [--os-cloud CLOUD] [-f json] ARGS`.

        fmt="auto" adds `-f json` to commands that print a table (create,
        list, show, issue) and returns the parsed JSON; other commands return
        their stdout. With expect_fail=True the command must fail, and the
        CompletedProcess is returned (stdout/stderr/returncode).
        """
        __tracebackhide__ = True
        args = tuple(str(a) for a in args)
        cmd = [OPENSTACK]
        if cloud is not None:
            cmd += ["--os-cloud", cloud]
        if fmt == "auto":
            fmt = "json" if _prints_table(args) else None
        if fmt is not None and "-f" not in args and "--format" not in args:
            cmd += list(args) + ["-f", fmt]
        else:
            cmd += list(args)

        run_env = {
            k: v for k, v in os.environ.items()
            if not k.startswith("OS_")  # a developer's own cloud must not leak in
        }
        run_env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        run_env["PYTHONWARNINGS"] = "ignore"
        if env:
            run_env.update(env)
        printable = " ".join(shlex.quote(c) for c in cmd[1:])
        try:
            if self.netns or "NIMBUS_OPENSTACK_CLI" in os.environ:
                result = subprocess.run(
                    self.in_netns(cmd), env=run_env, capture_output=True, text=True,
                    timeout=OSC_TIMEOUT, stdin=subprocess.DEVNULL,
                )
            else:
                result = run_openstack_in_process(cmd[1:], run_env, OSC_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise OscError(
                f"openstack {printable} timed out after {OSC_TIMEOUT:.0f}s\n"
                f"stdout: {e.stdout}\nstderr: {e.stderr}"
            ) from None

        if expect_fail:
            if result.returncode == 0:
                raise OscError(
                    f"openstack {printable} succeeded but was expected to fail\n"
                    f"stdout: {result.stdout}\nstderr: {result.stderr}"
                )
            return result
        if result.returncode != 0:
            raise OscError(
                f"openstack {printable} failed with exit {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        if fmt == "json":
            try:
                return json.loads(result.stdout)
            except json.JSONDecodeError:
                raise OscError(
                    f"openstack {printable} printed no JSON\n"
                    f"stdout: {result.stdout}\nstderr: {result.stderr}"
                ) from None
        return result.stdout

    def write_clouds_yaml(self, path: Path, clouds: dict[str, dict[str, Any]]) -> Path:
        """Writes a clouds.yaml holding `clouds`, each {auth: {...}, ...}.

        auth_url, region and interface default to this server's.
        """
        doc: dict[str, Any] = {"clouds": {}}
        for name, cfg in clouds.items():
            cfg = json.loads(json.dumps(cfg))
            cfg.setdefault("auth", {}).setdefault("auth_url", self.auth_url)
            cfg.setdefault("region_name", "RegionOne")
            cfg.setdefault("interface", "public")
            cfg.setdefault("identity_api_version", 3)
            doc["clouds"][name] = cfg
        path.write_text(yaml.safe_dump(doc, sort_keys=True))
        return path

    def password_cloud(
        self,
        path: Path,
        username: str,
        password: str,
        *,
        project: str | None = None,
        domain: str = "Default",
        name: str = "test",
    ) -> dict[str, str]:
        """A clouds.yaml for a password user; returns the env for osc()."""
        auth: dict[str, Any] = {
            "username": username,
            "password": password,
            "user_domain_name": domain,
        }
        if project is not None:
            auth["project_name"] = project
            auth["project_domain_name"] = domain
        self.write_clouds_yaml(path, {name: {"auth": auth, "auth_type": "password"}})
        return {"OS_CLIENT_CONFIG_FILE": str(path)}

    # -- raw HTTP ----------------------------------------------------------

    def http(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """A request to this server. `path` starts with "/", e.g. /identity/v3/users."""
        hdrs = {"Accept": "application/json"}
        if token is not None:
            hdrs["X-Auth-Token"] = token
        if headers:
            hdrs.update(headers)
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return requests.request(method, self.base_url + path, headers=hdrs, **kwargs)

    def issue_token(
        self,
        username: str,
        password: str,
        *,
        domain: str = "Default",
        project: str | None = None,
        project_domain: str = "Default",
        scope: dict[str, Any] | None = None,
        expect: int = 201,
    ) -> tuple[str, dict[str, Any]]:
        """POST /identity/v3/auth/tokens by password; returns (token id, body)."""
        __tracebackhide__ = True
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": username,
                        "domain": {"name": domain},
                        "password": password,
                    }
                },
            }
        }
        if scope is not None:
            auth["scope"] = scope
        elif project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"name": project_domain}}}
        r = self.http("POST", "/identity/v3/auth/tokens", json={"auth": auth})
        assert r.status_code == expect, (
            f"POST /identity/v3/auth/tokens as {username}: {r.status_code} {r.text}"
        )
        return r.headers.get("X-Subject-Token", ""), (r.json() if r.content else {})

    def admin_token(self) -> str:
        """A project-scoped token for admin on project admin (cached)."""
        if self._admin_token is not None:
            r = self.http(
                "HEAD", "/identity/v3/auth/tokens",
                token=self._admin_token,
                headers={"X-Subject-Token": self._admin_token},
            )
            if r.status_code == 200:
                return self._admin_token
        self._admin_token, _ = self.issue_token(
            "admin", self.admin_password, project="admin"
        )
        return self._admin_token


def _prints_table(args: tuple[str, ...]) -> bool:
    """Whether the command takes -f (ShowOne/Lister): judged by its verb."""
    words = []
    for a in args:
        if a.startswith("-"):
            break
        words.append(a)
    return any(w in ("create", "list", "show", "issue") for w in words[:3])


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


def xdist_scope(nodeid: str) -> str:
    """The unit `--dist loadscope` hands to one worker: a test module's tests on one backend.

    "Tests/EndToEnd/test_image_cli.py::test_x[sqlite]" → "sqlite Tests/EndToEnd/test_image_cli.py";
    a test without a backend (test_startup.py, test_separate_processes.py start
    their own processes) is a unit of its own. xdist's default scope is the
    module with both backends; splitting it by backend gives units small enough
    for two workers to finish close together, while each module's tests still
    run in file order on one server (module-scoped fixtures are set up once).
    The backend is read from the node id because the scheduler, in the
    controller process, sees only node ids (`--dist loadgroup` with
    `xdist_group` markers would say the same, but pytest-xdist 3.8.0 drops those
    groups under pytest 9.2, pytest-xdist issue #1386).
    """
    path, _, name = nodeid.partition("::")
    if name.endswith("]") and "[" in name:
        ids = name[name.index("[") + 1 : -1].split("-")
        for backend in BACKENDS:
            if backend in ids:
                return f"{backend} {path}"
    return nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BackendModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return BackendModuleScheduling(config, log)


def _crash_report(cloud: Nimbus, status: int | None) -> str:
    return (
        f"nimbus ({cloud.backend}) died during the tests with status {status}. "
        f"Output (last 4000 chars):\n{cloud.output()[-4000:]}"
    )


@pytest.fixture(scope="session")
def clouds() -> Any:
    """The running `nimbus up` of each backend this session (worker) used, by backend.

    `nimbus` is parametrized by backend, and pytest tears a parametrized
    session fixture down whenever the next test has the other parameter: a
    worker that runs a SQLite group, then a PostgreSQL group, then SQLite again
    would restart the servers each time. Servers live here instead, started on
    first use and stopped when the session ends.
    """
    started: dict[str, Nimbus] = {}
    yield started
    crashes = []
    for cloud in started.values():
        crashed = not cloud.is_running() and not cloud.crash_reported
        status = cloud.stop()
        if crashed:
            crashes.append(_crash_report(cloud, status))
        cloud.drop_database()
        shutil.rmtree(cloud.workdir, ignore_errors=True)
    if crashes:
        pytest.fail("\n\n".join(crashes))


@pytest.fixture(scope="session", params=BACKENDS)
def nimbus(request: pytest.FixtureRequest, clouds: dict[str, Nimbus]) -> Any:
    """A running `nimbus up` for one backend, shared by the whole session."""
    backend = request.param
    cloud = clouds.get(backend)
    if cloud is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"nimbus-e2e-{backend}-"))
        cloud = Nimbus(backend, workdir)
        try:
            cloud.start()
        except Exception:
            cloud.stop()
            cloud.drop_database()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        clouds[backend] = cloud
    elif not cloud.is_running():
        # Died after the last test that used it (while the other backend's ran).
        cloud.crash_reported = True
        pytest.fail(_crash_report(cloud, cloud.process.returncode if cloud.process else None))
    yield cloud
    # Torn down when this worker's next test uses the other backend, or at the
    # end: a server that died shows up at the test that was running then.
    if not cloud.is_running() and not cloud.crash_reported:
        cloud.crash_reported = True
        pytest.fail(_crash_report(cloud, cloud.stop()))


@pytest.fixture
def osc(nimbus: Nimbus) -> Any:
    """osc(*args, cloud='nimbus', env=None, expect_fail=False, fmt='auto')."""
    return nimbus.osc


@pytest.fixture
def http(nimbus: Nimbus) -> Any:
    """http(method, path, token=None, headers=None, **requests_kwargs)."""
    return nimbus.http


@pytest.fixture
def admin_token(nimbus: Nimbus) -> str:
    return nimbus.admin_token()


@pytest.fixture
def ids(nimbus: Nimbus) -> dict[str, str]:
    """Ids of the bootstrapped resources, read over HTTP."""
    token = nimbus.admin_token()

    def one(path: str, key: str, name: str) -> str:
        r = nimbus.http("GET", f"/identity/v3/{path}", token=token, params={"name": name})
        assert r.status_code == 200, r.text
        found = [x for x in r.json()[key] if x["name"] == name]
        assert len(found) == 1, f"{path}?name={name}: {r.text}"
        return found[0]["id"]

    return {
        "admin_user": one("users", "users", "admin"),
        "admin_project": one("projects", "projects", "admin"),
        "admin_role": one("roles", "roles", "admin"),
        "member_role": one("roles", "roles", "member"),
        "reader_role": one("roles", "roles", "reader"),
        "default_domain": "default",
    }
