#!/usr/bin/env python3
"""Regenerates the disk-format seed inputs from tiny images made by `qemu-img create`
(and `xorriso` for ISO 9660, when installed):

  Corpus/disk-format/<name>          the first bytes of each image (its header), or for
                                     footer formats a short file ending in the footer
  Corpus/disk-format-sparse/<name>   the whole image as the sparse target's records
                                     (offset u32 LE | length u16 LE | bytes), one per run
                                     of non-zero bytes, plus a record for the last byte so
                                     that the image keeps its length (modulo 4 MiB)

Usage: Tests/Fuzz/make-disk-seeds.py   (writes into Tests/Fuzz/Corpus next to it)
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "Corpus")
SPARSE_LIMIT = 4 << 20

# name, qemu-img create arguments (after -f), bytes kept for the plain seed
IMAGES = [
    ("qcow2-v3", ["qcow2", "img", "64M"], 1024),
    ("qcow2-v2", ["qcow2", "-o", "compat=0.10", "img", "16M"], 1024),
    ("qcow2-backing-file", ["qcow2", "-b", "base.qcow2", "-F", "qcow2", "img"], 1024),
    ("qcow2-data-file", ["qcow2", "-o", "data_file=img.data", "img", "1M"], 1024),
    ("vmdk-monolithic-sparse", ["vmdk", "img", "64M"], 1024),
    ("vmdk-stream-optimized", ["vmdk", "-o", "subformat=streamOptimized", "img", "64M"], 1024),
    ("vmdk-monolithic-flat", ["vmdk", "-o", "subformat=monolithicFlat", "img", "1M"], 1024),
    ("vhd-dynamic", ["vpc", "img", "64M"], 4096),
    ("vhd-fixed", ["vpc", "-o", "subformat=fixed", "img", "1M"], None),
    ("vhdx", ["vhdx", "img", "64M"], 1024),
    ("vdi", ["vdi", "img", "64M"], 1024),
    ("qed", ["qed", "img", "64M"], 512),
    ("ploop", ["parallels", "img", "64M"], 1024),
]


def nonzero_runs(data, gap=16, max_len=65535):
    """(start, end) of the runs of non-zero bytes, joining runs less than `gap` apart."""
    runs, i, n = [], 0, len(data)
    while i < n:
        if data[i] == 0:
            i += 1
            continue
        start, last = i, i
        while i < n and i - last <= gap and i - start < max_len:
            if data[i] != 0:
                last = i
            i += 1
        runs.append((start, last + 1))
    return runs


def sparse_records(data):
    out = bytearray()
    for start, end in nonzero_runs(data):
        out += struct.pack("<IH", start % SPARSE_LIMIT, end - start) + data[start:end]
    if data:
        out += struct.pack("<IH", (len(data) - 1) % SPARSE_LIMIT, 1) + data[-1:]
    return bytes(out)


def plain_seed(data, keep):
    if keep is None:
        # A fixed VHD's only header is the footer in its last 512 bytes.
        return bytes(512) + data[-512:]
    return data[:keep]


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    if not shutil.which("qemu-img"):
        sys.exit("make-disk-seeds: qemu-img is not installed (apt-get install qemu-utils)")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "16M"], check=True, cwd=d)
        for name, args, keep in IMAGES:
            for leftover in ("img", "img.data", "img-flat.vmdk"):
                if os.path.exists(f"{d}/{leftover}"):
                    os.remove(f"{d}/{leftover}")
            # Relative names (run in the temporary directory) keep the seeds free of its path.
            subprocess.run(["qemu-img", "create", "-q", "-f"] + args, check=True, cwd=d)
            with open(f"{d}/img", "rb") as f:
                data = f.read()
            write("disk-format", name, plain_seed(data, keep))
            write("disk-format-sparse", name, sparse_records(data))
        if shutil.which("xorriso"):
            os.makedirs(f"{d}/iso")
            with open(f"{d}/iso/hello.txt", "w") as f:
                f.write("hello\n")
            subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", f"{d}/img.iso", f"{d}/iso"],
                           check=True, stderr=subprocess.DEVNULL)
            with open(f"{d}/img.iso", "rb") as f:
                write("disk-format-sparse", "iso9660", sparse_records(f.read()))
    # A text-only VMDK descriptor whose extent is another file, and plain raw bytes.
    write("disk-format", "vmdk-descriptor-text",
          b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
          b'createType="monolithicFlat"\n\nRW 2048 FLAT "disk-flat.vmdk" 0\n')
    write("disk-format", "raw", bytes(range(256)) * 4)


if __name__ == "__main__":
    main()
