"""Small fixtures shared by the compute end-to-end tests."""

from __future__ import annotations


def _qcow2_header(virtual_size: int = 1 << 30) -> bytes:
    """A 512-byte qcow2 v3 header: an empty disk of `virtual_size` bytes the image service accepts."""
    header = bytearray(512)
    header[0:4] = b"QFI\xfb"
    header[4:8] = (3).to_bytes(4, "big")
    header[20:24] = (16).to_bytes(4, "big")
    header[24:32] = virtual_size.to_bytes(8, "big")
    header[100:104] = (104).to_bytes(4, "big")
    return bytes(header)


QCOW2_HEADER = _qcow2_header()
