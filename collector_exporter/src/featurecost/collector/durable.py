"""Crash-safe small files: the WAL checkpoint and identity, the pipeline's batch plan, the seen-span set.

A crash may stop the process between any two system calls; what was written must read
back as the old content or the new, never a mix, and must survive a power cut once
the call returns (the file and the directory entry fsynced).
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make renames and new entries in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a temporary file, fsynced, renamed over it, the directory fsynced."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
