"""Segmented write-ahead log: an OTLP request is on disk, fsynced, before it is acknowledged.

Layout: ``<dir>/<segment:016d>.wal`` files of records ``[u32 length][u32 crc32][payload]``
and a ``checkpoint`` file holding the position up to which records are stored
downstream. Appends are group-committed: one writer thread writes everything queued
and fsyncs once, then releases all the waiting appenders, so many concurrent
requests share one fsync.

A crash can leave a torn record at the tail of the newest segment; it was never
acknowledged (the ack waits for fsync), so opening the log truncates it away. A
failed write (ENOSPC, EIO) never leaves one behind while running: the group is cut
back off the segment before anything else is appended, so no later record lands after
garbage (where reading would stop, and a restart would cut acknowledged data). Until
the cut succeeds every append fails. A bad record *followed by* more data is not a
torn tail but corruption: it is left in place for an operator, never truncated.

Parse once: an appender may hand over the object its payload was decoded from (the receiver's
``ExportTraceServiceRequest``). The log keeps it next to the record, in memory and bounded
(``max_decoded_bytes`` of payload), and ``read`` returns it as ``Record.decoded`` so the worker
does not decode the same bytes again. It is a cache only: after a restart, or past the bound,
``decoded`` is None and the reader decodes ``payload`` — the bytes on disk stay the truth.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from featurecost.collector.durable import atomic_write, fsync_dir

_HEADER = struct.Struct("<II")
_SUFFIX = ".wal"
_CHECKPOINT = "checkpoint"
_IDENTITY = "identity"


class WalFullError(Exception):
    """The log is over one of its bounds (unstored bytes, age of the oldest unstored
    record, free disk): callers should back off and retry later."""


class WalClosedError(Exception):
    """The log is closed; nothing more is accepted."""


@dataclass(frozen=True, order=True, slots=True)
class Position:
    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.segment}:{self.offset}"


@dataclass(frozen=True, slots=True)
class Record:
    start: Position
    end: Position
    payload: bytes
    # what ``payload`` decodes to, when its appender handed it over and the log still holds it
    decoded: Any = None


def trace_request(record: Record) -> ExportTraceServiceRequest:
    """The record's OTLP request: the appender's decoded object while the log holds it, else
    parsed from the payload (``DecodeError`` when the bytes on disk are not one)."""
    if isinstance(record.decoded, ExportTraceServiceRequest):
        return record.decoded
    return ExportTraceServiceRequest.FromString(record.payload)


def _segment_path(directory: Path, segment: int) -> Path:
    return directory / f"{segment:016d}{_SUFFIX}"


def _identity(directory: Path) -> str:
    """This log's identity, made once with the directory: positions restart at 1:0 in
    every WAL directory, so whatever is keyed by position downstream (insert
    deduplication tokens) needs it to tell two logs — two collectors on one ClickHouse,
    or one whose directory was reset — apart."""
    path = directory / _IDENTITY
    try:
        identity = path.read_text().strip()
    except FileNotFoundError:
        identity = ""
    if identity:
        return identity
    identity = uuid.uuid4().hex
    atomic_write(path, identity)
    return identity


def _torn_tail(path: Path) -> int | None:
    """Where the torn last record of ``path`` starts, or None if it ends with a whole one.

    Only a record that runs to the end of the file is a torn write; a bad record with
    data after it is corruption of acknowledged data and is left alone (reading stops
    there and says so)."""
    valid = 0
    size = path.stat().st_size
    with path.open("rb") as f:
        while True:
            header = f.read(_HEADER.size)
            if not header:
                return None
            if len(header) < _HEADER.size:
                return valid
            length, crc = _HEADER.unpack(header)
            payload = f.read(length)
            if len(payload) < length:
                return valid
            if zlib.crc32(payload) != crc:
                return valid if valid + _HEADER.size + length >= size else None
            valid += _HEADER.size + length


class WriteAheadLog:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        max_bytes: int = 2 * 1024 * 1024 * 1024,
        max_age_seconds: float | None = None,
        min_free_disk_bytes: int = 0,
        max_decoded_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.identity = _identity(self.directory)
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self.min_free_disk_bytes = min_free_disk_bytes
        # (end position, monotonic time) of each fsynced group not yet checkpointed:
        # the head is the oldest unstored data, what the age bound is measured on.
        self._unstored: deque[tuple[Position, float]] = deque()
        self._free_disk_checked = 0.0
        self._lock = threading.Lock()
        self._pending: list[tuple[bytes, concurrent.futures.Future[Position], Any]] = []
        # record start → (decoded payload, payload size), for records not yet read and committed
        self._decoded: dict[Position, tuple[Any, int]] = {}
        self._decoded_bytes = 0
        self.max_decoded_bytes = max_decoded_bytes
        self._wakeup = threading.Condition(self._lock)
        self._appended = threading.Condition()
        self._closed = False
        self._free_disk = 0
        self._checkpoint = self._read_checkpoint()
        segments = self._segments()
        if segments:
            self._segment = segments[-1]
            path = _segment_path(self.directory, self._segment)
            torn = _torn_tail(path)
            if torn is not None:
                with path.open("r+b") as f:
                    f.truncate(torn)
                    os.fsync(f.fileno())
        else:
            self._segment = max(self._checkpoint.segment, 1)
            _segment_path(self.directory, self._segment).touch()
            fsync_dir(self.directory)
        # A raw descriptor, not a buffered file: after a failed write a buffered file would
        # keep the unwritten bytes and write them later, after the cut.
        self._fd = self._open_segment(self._segment)
        self._offset = os.lseek(self._fd, 0, os.SEEK_END)
        self._cut_pending: int | None = None  # offset a failed group must be cut back to
        self._end = Position(self._segment, self._offset)
        self._sizes = {seg: _segment_path(self.directory, seg).stat().st_size for seg in self._segments()}
        if self._end > self._checkpoint:
            # data left by the previous run: its age counts from now
            self._unstored.append((self._end, time.monotonic()))
        self._writer = threading.Thread(target=self._write_loop, name="featurecost-wal-writer", daemon=True)
        self._writer.start()

    # --- positions ---
    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    def _read_checkpoint(self) -> Position:
        path = self.directory / _CHECKPOINT
        if not path.exists():
            return Position(0, 0)
        segment, offset = path.read_text().split(":")
        return Position(int(segment), int(offset))

    @property
    def checkpoint(self) -> Position:
        return self._checkpoint

    @property
    def end(self) -> Position:
        with self._appended:
            return self._end

    def pending_bytes(self) -> int:
        """Bytes written but not yet checkpointed (what backpressure is measured on)."""
        checkpoint = self._checkpoint
        total = 0
        for segment, size in list(self._sizes.items()):
            if segment < checkpoint.segment:
                continue
            start = checkpoint.offset if segment == checkpoint.segment else 0
            total += max(size - start, 0)
        return total

    def total_bytes(self) -> int:
        """Bytes of every segment still on disk."""
        return sum(self._sizes.values())

    def oldest_unstored_age(self) -> float:
        """Seconds since the oldest record not yet stored downstream was written (0 if none)."""
        with self._appended:
            if not self._unstored:
                return 0.0
            return time.monotonic() - self._unstored[0][1]

    def _over_bounds(self, incoming: int) -> str | None:
        if self.pending_bytes() + incoming > self.max_bytes:
            return f"write-ahead log holds more than {self.max_bytes} unstored bytes"
        if self.max_age_seconds is not None and self.oldest_unstored_age() > self.max_age_seconds:
            return f"write-ahead log holds data unstored for more than {self.max_age_seconds:.0f}s"
        if self.min_free_disk_bytes:
            now = time.monotonic()
            # statvfs per request is cheap but not free; a second of staleness is fine
            if now - self._free_disk_checked > 1.0:
                self._free_disk = shutil.disk_usage(self.directory).free
                self._free_disk_checked = now
            if self._free_disk - incoming < self.min_free_disk_bytes:
                return f"less than {self.min_free_disk_bytes} bytes free on the write-ahead log's disk"
        return None

    # --- appending ---
    def append(self, payload: bytes, decoded: Any = None) -> concurrent.futures.Future[Position]:
        """Queue ``payload``; the future resolves once it is fsynced (its end position).
        ``decoded``: what ``payload`` decodes to, handed to readers instead of the bytes (see
        the module doc); it must not change afterwards."""
        future: concurrent.futures.Future[Position] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise WalClosedError("write-ahead log is closed")
            reason = self._over_bounds(len(payload))
            if reason is not None:
                raise WalFullError(reason)
            self._pending.append((payload, future, decoded))
            self._wakeup.notify()
        return future

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wakeup.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closed:
                    return
            try:
                positions = self._write_batch(batch)
            except BaseException as exc:  # the disk failed: nobody in this batch is acked
                for _, future, _ in batch:
                    future.set_exception(exc)
                continue
            for (_, future, _), position in zip(batch, positions, strict=True):
                future.set_result(position)
            with self._appended:
                self._appended.notify_all()

    def _open_segment(self, segment: int) -> int:
        return os.open(_segment_path(self.directory, segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _write_batch(self, batch: list[tuple[bytes, concurrent.futures.Future[Position], Any]]) -> list[Position]:
        if self._cut_pending is not None:
            self._cut(self._cut_pending)  # raises while the disk still fails: nobody is acked
        if self._offset >= self.segment_bytes:
            self._roll()  # a group never spans segments, so a failed one is cut from one file
        start = self._offset
        positions = []
        chunks = []
        offset = start
        for payload, _, _ in batch:
            chunks.append(_HEADER.pack(len(payload), zlib.crc32(payload)))
            chunks.append(payload)
            offset += _HEADER.size + len(payload)
            positions.append(Position(self._segment, offset))
        try:
            self._write_all(b"".join(chunks))
            os.fsync(self._fd)
        except BaseException:
            self._cut_pending = start
            with contextlib.suppress(OSError):
                self._cut(start)
            raise
        self._offset = offset
        self._sizes[self._segment] = offset
        begin = start
        with self._appended:
            for (payload, _, decoded), end in zip(batch, positions, strict=True):
                # past the bound the reader decodes from disk: memory stays bounded while storage is down
                if decoded is not None and self._decoded_bytes + len(payload) <= self.max_decoded_bytes:
                    self._decoded[Position(self._segment, begin)] = (decoded, len(payload))
                    self._decoded_bytes += len(payload)
                begin = end.offset
            self._end = positions[-1]
            self._unstored.append((positions[-1], time.monotonic()))
        return positions

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)  # a short write (disk filling up) continues, or raises
            view = view[written:]

    def _cut(self, offset: int) -> None:
        """Remove a failed group's bytes from the segment's end, durably."""
        os.ftruncate(self._fd, offset)
        os.fsync(self._fd)
        self._cut_pending = None
        self._offset = offset

    def _roll(self) -> None:
        fd = self._open_segment(self._segment + 1)
        try:
            fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            raise
        os.close(self._fd)
        self._fd = fd
        self._segment += 1
        self._offset = 0
        self._sizes[self._segment] = 0

    def wait_for_data(self, after: Position, timeout: float) -> bool:
        """Block until the log ends past ``after`` (or ``timeout``); True if it does."""
        with self._appended:
            return self._appended.wait_for(lambda: self._end > after or self._closed, timeout)

    # --- reading ---
    def read(self, start: Position, max_records: int, max_bytes: int) -> list[Record]:
        """Up to ``max_records`` durable records from ``start`` (stops at ``max_bytes``)."""
        end = self.end
        records: list[Record] = []
        size = 0
        segment, offset = start.segment, start.offset
        # the segments this log wrote or found at open: no directory listing per read
        segments = [s for s in sorted(self._sizes) if s >= segment]
        decoded = self._decoded
        for seg in segments:
            if seg > end.segment:
                break
            limit = end.offset if seg == end.segment else None
            pos = offset if seg == segment else 0
            with _segment_path(self.directory, seg).open("rb") as f:
                f.seek(pos)
                while limit is None or pos < limit:
                    header = f.read(_HEADER.size)
                    if len(header) < _HEADER.size:
                        break
                    length, crc = _HEADER.unpack(header)
                    payload = f.read(length)
                    if len(payload) < length or zlib.crc32(payload) != crc:
                        raise OSError(f"corrupt write-ahead log record at {seg}:{pos}")
                    begin = Position(seg, pos)
                    pos += _HEADER.size + length
                    cached = decoded.get(begin)
                    records.append(Record(begin, Position(seg, pos), payload, None if cached is None else cached[0]))
                    size += length
                    if len(records) >= max_records or size >= max_bytes:
                        return records
            if seg < end.segment and pos >= self._sizes.get(seg, 0):
                # a finished segment: the next record starts in the next one
                continue
        return records

    def iter_from(self, start: Position) -> Iterator[Record]:
        position = start
        while True:
            batch = self.read(position, 1000, 64 * 1024 * 1024)
            if not batch:
                return
            yield from batch
            position = batch[-1].end

    def commit(self, position: Position) -> None:
        """Everything before ``position`` is stored downstream: persist it, drop old segments."""
        atomic_write(self.directory / _CHECKPOINT, str(position))
        self._checkpoint = position
        with self._appended:
            while self._unstored and self._unstored[0][0] <= position:
                self._unstored.popleft()
            for start in [start for start in self._decoded if start < position]:
                self._decoded_bytes -= self._decoded.pop(start)[1]
        for segment in sorted(self._sizes):
            if segment < position.segment:
                _segment_path(self.directory, segment).unlink(missing_ok=True)
                self._sizes.pop(segment, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wakeup.notify()
        self._writer.join()
        with self._appended:
            self._appended.notify_all()
        os.close(self._fd)
