"""A 2 GiB image through the CLI: the server streams it, so its memory stays flat."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from conftest import Nimbus, unique

SIZE = 2 * 1024 ** 3
# Allowed growth of the server's peak resident memory over the whole upload and download.
# Buffering the image even once would take 2 GiB; streaming needs a few MiB of chunks.
MAX_GROWTH = 128 * 1024 ** 2


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_two_gib_round_trip_with_flat_server_memory(osc, nimbus: Nimbus, tmp_path: Path):
    if nimbus.backend != "sqlite":
        pytest.skip("one backend is enough: the data path does not touch the database")
    source = tmp_path / "big.raw"
    # Non-zero content at both ends and the middle, sparse elsewhere: real bytes to compare.
    with source.open("wb") as f:
        f.truncate(SIZE)
        for offset in (0, SIZE // 2, SIZE - 4096):
            f.seek(offset)
            f.write(bytes(range(256)) * 16)
    assert nimbus.process is not None
    pid = nimbus.process.pid
    before = memory(pid)["VmRSS"]

    name = unique("big")
    created = osc("image", "create", "--file", str(source), "--disk-format", "raw", "--container-format", "bare", name)
    assert created["status"] == "active" and created["size"] == SIZE, created
    after_upload = memory(pid)["VmHWM"]

    saved = tmp_path / "saved.raw"
    osc("image", "save", "--file", str(saved), name)
    peak = memory(pid)["VmHWM"]
    assert saved.stat().st_size == SIZE
    assert sha256_of(saved) == sha256_of(source)
    osc("image", "delete", name)

    growth = peak - before
    print(f"server RSS before {before / 2**20:.0f} MiB, peak after upload {after_upload / 2**20:.0f} MiB, "
          f"peak after download {peak / 2**20:.0f} MiB")
    assert growth < MAX_GROWTH, (
        f"server peak RSS grew by {growth / 2**20:.0f} MiB (before {before / 2**20:.0f} MiB, "
        f"after upload {after_upload / 2**20:.0f} MiB, after download {peak / 2**20:.0f} MiB)")
