"""The spans already stored: what keeps a re-sent span from being counted twice.

ClickHouse's insert deduplication drops a *batch* inserted twice, and the raw
``calls`` table collapses duplicate span identities at merge time — but the rollup
materialized views see every row of every insert. A span an SDK re-sends after a lost
ack (or after a collector restart) lands in a different WAL record and a different
batch, so the pipeline must drop it before the insert. This is that memory.

Keys are ``trace_id + span_id``. They live in two generations of ``window`` keys each
(so at least the last ``window`` stored spans are remembered, at most twice that), each
generation an append-only file of CRC-checked records, one per stored batch, fsynced
before the WAL checkpoint moves past the batch. A torn record at the tail (a crash
mid-append) is dropped on open; its batch is then replayed from the WAL with the same
plan and the same insert deduplication token, so ClickHouse drops the replay.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

from featurecost.collector.durable import fsync_dir

_HEADER = struct.Struct("<II")
_CURRENT = "seen-spans.current"
_PREVIOUS = "seen-spans.previous"


def _load(path: Path) -> tuple[set[str], int]:
    """Keys in ``path`` and the byte length of its whole records."""
    keys: set[str] = set()
    valid = 0
    if not path.exists():
        return keys, 0
    data = path.read_bytes()
    while valid + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, valid)
        payload = data[valid + _HEADER.size : valid + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        if payload:
            keys.update(payload.decode().split("\n"))
        valid += _HEADER.size + length
    return keys, valid


class SeenSpans:
    def __init__(self, directory: Path, window: int = 500_000) -> None:
        self.directory = directory
        self.window = window
        directory.mkdir(parents=True, exist_ok=True)
        self._previous, _ = _load(directory / _PREVIOUS)
        current_path = directory / _CURRENT
        self._current, valid = _load(current_path)
        if current_path.exists() and valid < current_path.stat().st_size:
            with current_path.open("r+b") as f:
                f.truncate(valid)
                os.fsync(f.fileno())
        self._file = current_path.open("ab")

    def __contains__(self, key: str) -> bool:
        return key in self._current or key in self._previous

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def add(self, keys: Iterable[str]) -> None:
        """Remember ``keys`` durably (fsynced before returning)."""
        batch = [k for k in keys if k not in self]
        if not batch:
            return
        payload = "\n".join(batch).encode()
        self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)))
        self._file.write(payload)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._current.update(batch)
        if len(self._current) >= self.window:
            self._rotate()

    def _rotate(self) -> None:
        self._file.close()
        os.replace(self.directory / _CURRENT, self.directory / _PREVIOUS)
        self._previous, self._current = self._current, set()
        self._file = (self.directory / _CURRENT).open("ab")
        fsync_dir(self.directory)

    def close(self) -> None:
        self._file.close()
