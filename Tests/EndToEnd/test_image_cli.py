"""The image service (Glance v2) through the unmodified `openstack` and `glance` CLIs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Nimbus, unique

QEMU_IMG = shutil.which("qemu-img")


def qcow2_file(path: Path, size: str = "64M") -> Path:
    if QEMU_IMG is None:
        pytest.skip("qemu-img is not installed (scripts/test installs qemu-utils)")
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def project_user(osc, nimbus: Nimbus, tmp_path: Path, role: str = "member") -> tuple[dict, dict, dict[str, str]]:
    """A new project, a user with `role` on it, and the osc env that acts as that user."""
    project = osc("project", "create", unique("imgproj"))
    password = "Pw-" + unique("x")
    user = osc("user", "create", unique("imguser"), "--password", password)
    osc("role", "add", "--user", user["id"], "--project", project["id"], role)
    env = nimbus.password_cloud(tmp_path / f"{user['name']}.yaml", user["name"], password, project=project["name"])
    return project, user, env


def test_create_list_show_save_delete(osc, nimbus: Nimbus, tmp_path: Path):
    source = qcow2_file(tmp_path / "disk.qcow2")
    name = unique("cirros")
    created = osc("image", "create", "--file", str(source), "--disk-format", "qcow2", "--container-format", "bare",
                  "--public", "--property", "os_distro=cirros", "--tag", "tiny", name)
    assert created["status"] == "active", created
    assert created["disk_format"] == "qcow2" and created["visibility"] == "public"
    data = source.read_bytes()
    assert created["checksum"] == hashlib.md5(data).hexdigest()
    assert created["size"] == len(data)

    shown = osc("image", "show", name)
    assert shown["id"] == created["id"]
    assert shown["virtual_size"] == 64 * 1024 * 1024
    raw = nimbus.http("GET", f"/image/v2/images/{created['id']}", token=nimbus.admin_token()).json()
    assert raw["os_hash_algo"] == "sha512" and raw["os_hash_value"] == hashlib.sha512(data).hexdigest()

    listed = osc("image", "list")
    assert name in [i["Name"] for i in listed]
    assert name in [i["Name"] for i in osc("image", "list", "--public")]
    assert name not in [i["Name"] for i in osc("image", "list", "--private")]
    long = [i for i in osc("image", "list", "--long") if i["Name"] == name]
    assert long and long[0]["Disk Format"] == "qcow2" and long[0]["Checksum"] == created["checksum"]
    by_property = osc("image", "list", "--property", "os_distro=cirros")
    assert [i["Name"] for i in by_property] == [name]

    saved = tmp_path / "saved.qcow2"
    osc("image", "save", "--file", str(saved), name)
    assert saved.read_bytes() == data

    osc("image", "delete", name)
    assert name not in [i["Name"] for i in osc("image", "list")]


def test_set_unset_protect_and_deactivate(osc, nimbus: Nimbus, tmp_path: Path):
    raw = tmp_path / "data.raw"
    raw.write_bytes(os.urandom(1 << 20))
    name = unique("img")
    osc("image", "create", "--file", str(raw), "--disk-format", "raw", "--container-format", "bare", name)

    osc("image", "set", "--property", "hw_disk_bus=scsi", "--tag", "blue", "--protected", name)
    shown = osc("image", "show", name)
    assert shown["properties"]["hw_disk_bus"] == "scsi", shown
    assert "blue" in shown["tags"] and shown["protected"] is True

    failed = osc("image", "delete", name, expect_fail=True)
    assert failed.returncode != 0
    assert osc("image", "show", name)["id"] == shown["id"], "a protected image survives delete"

    osc("image", "unset", "--property", "hw_disk_bus", "--tag", "blue", name)
    osc("image", "set", "--unprotected", name)
    shown = osc("image", "show", name)
    assert "hw_disk_bus" not in shown.get("properties", {}) and "blue" not in shown["tags"]
    assert shown["protected"] is False

    osc("image", "set", "--deactivate", name)
    assert osc("image", "show", name)["status"] == "deactivated"
    osc("image", "set", "--activate", name)
    assert osc("image", "show", name)["status"] == "active"
    osc("image", "delete", name)


def test_share_with_a_project_which_accepts(osc, nimbus: Nimbus, tmp_path: Path):
    owner_project, _, owner_env = project_user(osc, nimbus, tmp_path)
    member_project, _, member_env = project_user(osc, nimbus, tmp_path)
    raw = tmp_path / "shared.raw"
    raw.write_bytes(b"\0" * 4096)
    name = unique("shared")
    image = osc("image", "create", "--file", str(raw), "--disk-format", "raw", "--container-format", "bare",
                "--shared", name, cloud="test", env=owner_env)
    assert image["owner"] == owner_project["id"]

    osc("image", "add", "project", image["id"], member_project["id"], cloud="test", env=owner_env, fmt="json")
    members = osc("image", "member", "list", image["id"], cloud="test", env=owner_env)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(member_project["id"], "pending")]
    assert image["id"] not in [i["ID"] for i in osc("image", "list", cloud="test", env=member_env)]

    osc("image", "set", "--accept", image["id"], cloud="test", env=member_env)
    assert image["id"] in [i["ID"] for i in osc("image", "list", "--shared", cloud="test", env=member_env)]
    saved = tmp_path / "got.raw"
    osc("image", "save", "--file", str(saved), image["id"], cloud="test", env=member_env)
    assert saved.read_bytes() == raw.read_bytes()

    # The member may not change or delete what it was given.
    failed = osc("image", "set", "--property", "x=y", image["id"], cloud="test", env=member_env, expect_fail=True)
    assert failed.returncode != 0
    osc("image", "delete", image["id"], cloud="test", env=owner_env)


def test_reader_cannot_upload_and_private_images_stay_private(osc, nimbus: Nimbus, tmp_path: Path):
    _, _, reader_env = project_user(osc, nimbus, tmp_path, role="reader")
    _, _, other_env = project_user(osc, nimbus, tmp_path)
    failed = osc("image", "create", "--disk-format", "raw", "--container-format", "bare", unique("nope"),
                 cloud="test", env=reader_env, expect_fail=True)
    assert "403" in failed.stderr or "Forbidden" in failed.stderr, failed.stderr

    name = unique("private")
    osc("image", "create", "--disk-format", "raw", "--container-format", "bare", "--private", name)
    failed = osc("image", "show", name, cloud="test", env=other_env, expect_fail=True)
    assert failed.returncode != 0
    osc("image", "delete", name)


def glance(nimbus: Nimbus, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_URL=nimbus.auth_url, OS_USERNAME="admin", OS_PASSWORD=nimbus.admin_password, OS_PROJECT_NAME="admin",
               OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default", OS_IDENTITY_API_VERSION="3",
               OS_REGION_NAME="RegionOne", PYTHONWARNINGS="ignore")
    binary = Path(os.environ.get("NIMBUS_OPENSTACK_CLI") or "").parent / "glance"
    if not binary.exists():
        import sys
        binary = Path(sys.executable).parent / "glance"
    result = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"glance {' '.join(args)}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def test_glance_cli_create_list_download(nimbus: Nimbus, tmp_path: Path):
    raw = tmp_path / "g.raw"
    raw.write_bytes(os.urandom(256 * 1024))
    name = unique("glance")
    created = glance(nimbus, "image-create", "--name", name, "--disk-format", "raw", "--container-format", "bare",
                     "--file", str(raw))
    assert name in created.stdout and "active" in created.stdout, created.stdout
    listed = glance(nimbus, "image-list")
    assert name in listed.stdout
    image_id = next(line.split("|")[1].strip() for line in listed.stdout.splitlines() if name in line)
    out = tmp_path / "g.out"
    glance(nimbus, "image-download", "--file", str(out), image_id)
    assert out.read_bytes() == raw.read_bytes()
    glance(nimbus, "image-delete", image_id)


def wait_for_import(osc, name: str) -> dict:
    """Polls `image show` until no import holds the image, as a user would."""
    deadline = time.monotonic() + 60
    while True:
        image = osc("image", "show", name)
        properties = image.get("properties") or {}
        if image["status"] != "importing" and "os_glance_import_task" not in properties:
            return image
        assert time.monotonic() < deadline, f"import of {name} did not finish: {image}"
        time.sleep(0.2)


def test_import_glance_direct_then_copy_to_another_store(osc, nimbus: Nimbus, tmp_path: Path):
    assert "glance-direct" in osc("image", "import", "info", fmt="json")["import-methods"]
    assert [s["ID"] for s in osc("image", "stores", "list")] == ["local", "backup"]

    # `image create --import` stages the file and imports it with glance-direct.
    source = qcow2_file(tmp_path / "imported.qcow2", "32M")
    data = source.read_bytes()
    name = unique("imported")
    osc("image", "create", "--import", "--file", str(source), "--disk-format", "qcow2", "--container-format", "bare", name)
    image = wait_for_import(osc, name)
    assert image["status"] == "active", image
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    # OSC shows fields it does not know among the properties.
    assert image["properties"]["stores"] == "local"

    # The same in two steps, with the separate stage and import commands.
    staged_name = unique("staged")
    # (The CLI cannot leave an image queued: without --file it uploads its stdin.)
    nimbus.http("POST", "/image/v2/images", token=nimbus.admin_token(),
                json={"name": staged_name, "disk_format": "qcow2", "container_format": "bare"}).raise_for_status()
    osc("image", "stage", "--file", str(source), staged_name)
    assert osc("image", "show", staged_name)["status"] == "uploading"
    osc("image", "import", "--method", "glance-direct", staged_name)
    assert wait_for_import(osc, staged_name)["status"] == "active"

    # Each import is a task; the tasks API is the admin's (osc runs as admin).
    staged_id = osc("image", "show", staged_name)["id"]
    tasks = osc("image", "task", "list")
    assert tasks and all(t["Type"] == "api_image_import" for t in tasks), tasks
    shown = [osc("image", "task", "show", t["ID"]) for t in tasks]
    assert any(t["status"] == "success" and staged_id in str(t["input"]) for t in shown), shown

    # copy-image (admin) puts a second copy in the other store; downloads still match.
    osc("image", "import", name, "--method", "copy-image", "--store", "backup")  # --store takes several values
    copied = wait_for_import(osc, name)
    assert copied["properties"]["stores"] == "backup,local", copied
    out = tmp_path / "out.qcow2"
    osc("image", "save", "--file", str(out), name)
    assert out.read_bytes() == data
    osc("image", "delete", name, staged_name)


def test_in_operator_returns_exactly_the_named_images(osc, nimbus: Nimbus, tmp_path: Path):
    """Glance's `in:` list filter on `id` and `name` (what `openstack server list` uses to name
    each server's image) returns exactly the images named, as the SDK sends it."""
    names = [unique("in-op") for _ in range(3)]
    made = [osc("image", "create", "--disk-format", "raw", "--container-format", "bare", name) for name in names]
    token = nimbus.admin_token()

    def listed(**query: str) -> list[str]:
        r = nimbus.http("GET", "/image/v2/images", token=token, params=query)
        assert r.status_code == 200, r.text
        return sorted(i["id"] for i in r.json()["images"])

    assert listed(id=f"in:{made[0]['id']},{made[2]['id']}") == sorted([made[0]["id"], made[2]["id"]])
    assert listed(name=f"in:{names[1]},{names[2]}") == sorted([made[1]["id"], made[2]["id"]])
    assert listed(name=f'in:"{names[0]}",nosuch') == [made[0]["id"]]
    assert listed(id="in:00000000-0000-0000-0000-000000000000") == []
    assert nimbus.http("GET", "/image/v2/images", token=token, params={"created_at": "gt:bogus"}).status_code == 400
    osc("image", "delete", *[m["id"] for m in made])
