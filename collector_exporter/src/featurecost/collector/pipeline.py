"""The worker that moves calls from the write-ahead log into storage.

WAL → normalize → price → de-duplicate → reconcile → insert → remember → checkpoint.

Exactly-once into storage, from at-least-once parts:

1. **The batch plan is durable before the insert.** A batch is a WAL range
   ``[start, end)``; its bounds (``batch.plan``) are fsynced before inserting, so a
   crash mid-batch replays exactly the same range, with the same insert
   deduplication token ``wal:<start>-<end>`` — ClickHouse drops the replayed insert
   (and so do the rollup materialized views it feeds).
2. **Span ids are de-duplicated across batches** (``SeenSpans``): a span an SDK
   re-sends lands in another WAL record and another batch; it is dropped before the
   insert, so no rollup ever sees it twice.
3. **One provider call, one bill** (``reconcile.py``): spans of one trace reporting the
   same provider response id are one call; the others are stored superseded, and an
   earlier counted one is withdrawn, in the same insert (same token).
4. **The checkpoint advances only after the insert and the seen-span record are
   durable**, so nothing acknowledged is lost.

Failures: a storage outage (network, 5xx) is retried forever with backoff — the WAL
spools meanwhile and backpressure protects the disk. A batch ClickHouse rejects as
malformed ``max_attempts`` times in a row is moved to ``dead-letter/`` and skipped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from featurecost.collector.normalize import normalize_request
from featurecost.collector.pricing import Pricer
from featurecost.collector.reconcile import Reconciler
from featurecost.collector.records import CallRecord
from featurecost.collector.restatement import RESTATEMENT_COLUMNS
from featurecost.collector.seen_spans import SeenSpans
from featurecost.collector.storage import Storage
from featurecost.collector.wal import Position, Record, WriteAheadLog

log = logging.getLogger(__name__)

_PLAN = "batch.plan"
# ClickHouse error codes that mean "try again later", not "this data is bad".
_TRANSIENT_CODES = frozenset(
    {
        "159",  # TIMEOUT_EXCEEDED
        "164",  # READONLY
        "202",  # TOO_MANY_SIMULTANEOUS_QUERIES
        "203",  # NO_FREE_CONNECTION
        "209",  # SOCKET_TIMEOUT
        "210",  # NETWORK_ERROR
        "236",  # ABORTED
        "241",  # MEMORY_LIMIT_EXCEEDED
        "242",  # TABLE_IS_READ_ONLY
        "252",  # TOO_MANY_PARTS
        "285",  # TOO_FEW_LIVE_REPLICAS
        "319",  # UNKNOWN_STATUS_OF_INSERT
        "394",  # QUERY_WAS_CANCELLED
        "999",  # KEEPER_EXCEPTION
    }
)


@dataclass(slots=True)
class PipelineStats:
    batches: int = 0
    calls_stored: int = 0
    calls_priced: int = 0
    calls_unpriced: int = 0
    duplicate_calls: int = 0
    superseded_calls: int = 0  # spans of a provider call another span of it is billed on
    expired_calls: int = 0
    insert_failures: int = 0
    dead_letters: int = 0
    last_insert_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class BatchPlan:
    start: Position
    end: Position

    @property
    def token(self) -> str:
        return f"wal:{self.start}-{self.end}"


@dataclass(slots=True)
class Batch:
    plan: BatchPlan
    records: list[Record]
    calls: list[CallRecord]


def _parse_position(text: str) -> Position:
    segment, offset = text.split(":")
    return Position(int(segment), int(offset))


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, OperationalError | OSError):
        return True
    if isinstance(exc, DatabaseError):
        message = str(exc)
        return any(f"Code: {code}." in message or f"code: {code}" in message for code in _TRANSIENT_CODES)
    return False


def span_key(call: CallRecord) -> str:
    return call.trace_id + call.span_id


class Pipeline:
    def __init__(
        self,
        wal: WriteAheadLog,
        storage: Storage,
        pricer: Pricer | None = None,
        *,
        batch_rows: int = 50_000,
        max_batch_bytes: int = 64 * 1024 * 1024,
        flush_interval: float = 1.0,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 30.0,
        max_attempts: int = 10,
        retention: timedelta | None = None,
        seen_window: int = 500_000,
        observe_insert: Callable[[float], None] | None = None,
        on_stored: Callable[[list[Record], list[CallRecord]], None] | None = None,
        prepare_storage: bool = False,
    ) -> None:
        self.wal = wal
        self.storage = storage
        self.pricer = pricer or Pricer()
        self.batch_rows = batch_rows
        self.max_batch_bytes = max_batch_bytes
        self.flush_interval = flush_interval
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.max_attempts = max_attempts
        self.retention = retention
        self.observe_insert = observe_insert
        self.on_stored = on_stored
        self.prepare_storage = prepare_storage
        self.storage_ready = not prepare_storage
        self.stats = PipelineStats()
        self.seen = SeenSpans(wal.directory / "seen", window=seen_window)
        self.reconciler = Reconciler(storage, wal.directory / "seen-responses", window=seen_window)
        self._plan_path = wal.directory / _PLAN
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="featurecost-pipeline", daemon=True)
        self._position = wal.checkpoint
        self.last_error: str = ""

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> bool:
        """Drain what the log holds into storage, then stop; False if it could not drain in time."""
        self._stop.set()
        self._thread.join(timeout)
        drained = not self._thread.is_alive()
        if drained:
            self.seen.close()
            self.reconciler.close()
        return drained

    # --- the loop ---
    def _prepare_storage(self) -> bool:
        """Apply migrations, retrying while storage is unreachable; False if stopped first."""
        delay = self.retry_seconds
        while True:
            try:
                applied = self.storage.migrate()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("storage not ready (%s); retrying in %.0fs, ingest keeps spooling", exc, delay)
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, self.max_retry_seconds)
                continue
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
            self.last_error = ""
            self.storage_ready = True
            return True

    def _run(self) -> None:
        if self.prepare_storage and not self._prepare_storage():
            return
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                if not self._deliver(batch):
                    return  # stopping while storage is down: the batch stays in the log
        except Exception:
            log.exception("pipeline worker failed; acknowledged data stays in the WAL for the next start")
            raise

    def _next_batch(self) -> Batch | None:
        """The next batch: the persisted plan if a previous run left one at our position,
        else as many records as fit ``batch_rows``/``max_batch_bytes``, waiting at most
        ``flush_interval`` for more. None when stopping with nothing left."""
        plan = self._load_plan()
        if plan is not None and self._next_record_starts_at(plan.start):
            replay = self._read_until(plan.start, plan.end)
            return Batch(plan, replay, self._calls(replay))
        records: list[Record] = []
        calls: list[CallRecord] = []
        size = 0
        position = self._position
        deadline: float | None = None
        while len(calls) < self.batch_rows and size < self.max_batch_bytes:
            got = self.wal.read(position, 1000, self.max_batch_bytes - size)
            if got:
                for record in got:
                    records.append(record)
                    calls.extend(self._calls([record]))
                    size += len(record.payload)
                    position = record.end
                    if len(calls) >= self.batch_rows or size >= self.max_batch_bytes:
                        break
                if deadline is None:
                    deadline = time.monotonic() + self.flush_interval
                continue
            if self._stop.is_set():
                break
            remaining = 0.5 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                break
            self.wal.wait_for_data(position, timeout=remaining)
        if not records:
            return None
        plan = BatchPlan(records[0].start, records[-1].end)
        self._save_plan(plan)
        return Batch(plan, records, calls)

    def _next_record_starts_at(self, position: Position) -> bool:
        # The checkpoint can sit before the first record (a fresh log starts at 0:0,
        # its first record at 1:0), so compare with the record, not the checkpoint.
        if position < self._position:
            return False
        first = self.wal.read(self._position, 1, 1)
        return bool(first) and first[0].start == position

    def _calls(self, records: list[Record]) -> list[CallRecord]:
        calls: list[CallRecord] = []
        for record in records:
            try:
                request = ExportTraceServiceRequest.FromString(record.payload)
            except DecodeError:
                # The receiver validated every payload before acking: this is disk corruption.
                self._dead_letter([record], "undecodable WAL record")
                continue
            calls.extend(normalize_request(request))
        return calls

    def _read_until(self, start: Position, end: Position) -> list[Record]:
        records = []
        for record in self.wal.iter_from(start):
            if record.start >= end:
                break
            records.append(record)
        return records

    # --- delivery ---
    def _fresh(self, calls: list[CallRecord]) -> list[CallRecord]:
        """Drop spans stored before, repeated in this batch, or older than retention."""
        horizon = datetime.now(UTC) - self.retention if self.retention is not None else None
        fresh: list[CallRecord] = []
        keys: set[str] = set()
        for call in calls:
            key = span_key(call)
            if key in keys or key in self.seen:
                self.stats.duplicate_calls += 1
                continue
            if horizon is not None and call.start_time < horizon:
                self.stats.expired_calls += 1
                continue
            keys.add(key)
            fresh.append(call)
        return fresh

    def _deliver(self, batch: Batch) -> bool:
        calls = [self.pricer.price(call) for call in self._fresh(batch.calls)]
        attempts = 0
        delay = self.retry_seconds
        while True:
            started = time.perf_counter()
            try:
                # inside the retry: it reads storage, and must see what a failed attempt left
                reconciled = self.reconciler.reconcile(calls)
                self.storage.insert_calls(reconciled.rows, batch.plan.token)
                self.storage.insert_rows(
                    "cost_restatements", reconciled.restatements, RESTATEMENT_COLUMNS, f"{batch.plan.token}:superseded"
                )
            except Exception as exc:
                attempts += 1
                self.stats.insert_failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if not _is_transient(exc) and attempts >= self.max_attempts:
                    self._dead_letter(batch.records, f"storage rejected the batch {attempts} times: {exc}")
                    self._advance(batch.plan.end)
                    return True
                log.warning("inserting %d calls failed (batch %s): %s", len(calls), batch.plan.token, exc)
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, self.max_retry_seconds)
                continue
            break
        elapsed = time.perf_counter() - started
        self.stats.last_insert_seconds = elapsed
        if self.observe_insert is not None and calls:
            self.observe_insert(elapsed)
        self.last_error = ""
        self.seen.add(span_key(call) for call in calls)
        self.reconciler.remember(calls)
        if self.on_stored is not None:
            self.on_stored(batch.records, calls)
        self._advance(batch.plan.end)
        self.stats.batches += 1
        self.stats.calls_stored += len(calls)
        self.stats.superseded_calls += reconciled.superseded
        unpriced = sum(1 for c in calls if c.cost_usd is None)
        self.stats.calls_unpriced += unpriced
        self.stats.calls_priced += len(calls) - unpriced
        return True

    def _advance(self, position: Position) -> None:
        self.wal.commit(position)
        self._position = position

    # --- plan and dead letters ---
    def _load_plan(self) -> BatchPlan | None:
        try:
            start, end = self._plan_path.read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return BatchPlan(_parse_position(start), _parse_position(end))

    def _save_plan(self, plan: BatchPlan) -> None:
        tmp = self._plan_path.with_suffix(".tmp")
        with tmp.open("w") as f:
            f.write(f"{plan.start} {plan.end}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._plan_path)
        fd = os.open(self._plan_path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _dead_letter(self, records: list[Record], reason: str) -> None:
        directory: Path = self.wal.directory / "dead-letter"
        directory.mkdir(exist_ok=True)
        for record in records:
            name = f"{record.start.segment}-{record.start.offset}"
            (directory / f"{name}.pb").write_bytes(record.payload)
            (directory / f"{name}.reason").write_text(reason)
        self.stats.dead_letters += len(records)
        log.error("%d WAL record(s) moved to %s: %s", len(records), directory, reason)
