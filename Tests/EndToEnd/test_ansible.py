"""Ansible's openstack.cloud collection, unmodified, builds a project on Nimbus — and finds it
built on the second run, as every Ansible user's idempotent re-run expects.

The playbook (ansible/cloud.yml) uses the project, identity_user, role_assignment,
compute_flavor, image, keypair, network, subnet, router, security_group (with its rules, which
the collection creates in one bulk request), security_group_rule, server and server_info
modules. Ansible runs from its own virtualenv (.venv-ansible, Python ≥ 3.12, made by
scripts/test from Tests/EndToEnd/requirements-ansible.txt).
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import Nimbus, unique

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "ansible" / "cloud.yml"
ANSIBLE_PLAYBOOK = ROOT / ".venv-ansible" / "bin" / "ansible-playbook"
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def run_playbook(nimbus: Nimbus, variables: dict[str, str], tmp_path: Path) -> tuple[dict[str, int], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(nimbus.clouds_yaml), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_PYTHON_INTERPRETER=str(ANSIBLE_PLAYBOOK.parent / "python"), PYTHONWARNINGS="ignore")
    # As JSON: `-e key=value` would split a value at its spaces (a public key has two).
    args = [str(ANSIBLE_PLAYBOOK), str(PLAYBOOK), "-i", "localhost,", "-c", "local", "-e", json.dumps(variables)]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    recap = RECAP.search(output)
    assert recap, f"no play recap (exit {result.returncode}):\n{output[-8000:]}"
    counts = dict(zip(("ok", "changed", "unreachable", "failed"), map(int, recap.groups())))
    return counts, output


def test_playbook_twice_second_run_changes_nothing(nimbus: Nimbus, tmp_path: Path):
    if nimbus.backend != "sqlite":
        pytest.skip("one backend is enough: the APIs are the ones every other test covers on both")
    if not ANSIBLE_PLAYBOOK.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{ANSIBLE_PLAYBOOK} is missing: scripts/test installs it")
        pytest.skip(f"{ANSIBLE_PLAYBOOK} is missing (scripts/test installs it)")
    image = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    variables = {"prefix": unique("ans"), "image_file": str(image), "public_key": key.with_suffix(".pub").read_text().strip(),
                 "user_password": "Ans1ble-" + os.urandom(6).hex()}

    first, output = run_playbook(nimbus, variables, tmp_path)
    assert first["failed"] == 0 and first["unreachable"] == 0, output[-8000:]
    assert first["changed"] >= 12, f"the first run should make every resource:\n{output[-8000:]}"

    second, output = run_playbook(nimbus, variables, tmp_path)
    assert second == {"ok": first["ok"], "changed": 0, "unreachable": 0, "failed": 0}, \
        f"the second run changed something or failed:\n{output[-8000:]}"
