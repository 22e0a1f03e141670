"""The worker that moves calls from the write-ahead log into storage.

WAL → normalize → price → de-duplicate → reconcile → insert → remember → checkpoint.

Exactly-once into storage, from at-least-once parts:

1. **The batch plan is durable before the insert.** A batch is a WAL range
   ``[start, end)``; its bounds (``batch.plan``) are fsynced before inserting, so a
   crash mid-batch replays exactly the same range, with the same insert
   deduplication token ``wal:<wal identity>:<start>-<end>`` — ClickHouse drops the replayed insert
   (and so do the rollup materialized views it feeds).
2. **Span ids are de-duplicated across batches** (``SeenSpans``): a span an SDK
   re-sends lands in another WAL record and another batch; it is dropped before the
   insert, so no rollup ever sees it twice.
3. **One provider call, one bill** (``reconcile.py``): spans of one trace reporting the
   same provider response id are one call; the others are stored superseded, and an
   earlier counted one is withdrawn, in the same insert (same token).
4. **The checkpoint advances only after the insert and the seen-span record are
   durable**, so nothing acknowledged is lost.

Failures, isolated so one bad span never holds back the others:

- a span that fails to normalize, price or encode (or claims implausible usage that
  cannot even be kept) is moved alone to ``dead-letter/`` with its reason; its batch goes on;
- a storage outage (network, 5xx, the codes in ``_TRANSIENT_CODES``) is retried forever
  with backoff — the WAL spools meanwhile and backpressure protects the disk;
- a batch ClickHouse rejects for another reason is retried ``max_attempts`` times (not
  at all when the error says the rows are bad, ``_is_bad_data``), then bisected: the spans
  it rejects alone are dead-lettered, the rest stored. When every part is rejected (a
  broken schema, not bad data) the whole batch is dead-lettered;
- anything unexpected in the worker is logged, shown in ``last_error`` and retried with
  backoff; the worker never dies, and while it cannot progress ``blocked`` says why
  (``/readyz`` and ingest answer 503 instead of acknowledging into a stuck log).

Inserts are split per month (the tables' partition), so no insert block touches more
partitions than ClickHouse allows; each part has its own deterministic token.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from featurecost.collector.durable import atomic_write
from featurecost.collector.ingest.seen_spans import SeenSpans
from featurecost.collector.ingest.wal import Position, Record, WriteAheadLog, trace_request
from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.reconcile import Reconciler
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.bounds import clamp_usage, cost_problem, unprice
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.pricing.restatement import RESTATEMENT_COLUMNS
from featurecost.collector.storage.client import Storage

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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
    dead_letters: int = 0  # WAL records moved to dead-letter whole
    dead_letter_spans: int = 0  # single spans moved to dead-letter, their batch stored
    implausible_calls: int = 0  # stored with zeroed usage and NULL cost (bounds.py)
    worker_errors: int = 0  # unexpected failures of the worker loop (retried)
    last_dead_letter_reason: str = ""
    last_insert_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class BatchPlan:
    wal: str  # the WAL's identity: positions alone repeat across WAL directories
    start: Position
    end: Position

    @property
    def token(self) -> str:
        return f"wal:{self.wal}:{self.start}-{self.end}"


@dataclass(slots=True)
class Batch:
    plan: BatchPlan
    records: list[Record]
    calls: list[CallRecord]


def _parse_position(text: str) -> Position:
    segment, offset = text.split(":")
    return Position(int(segment), int(offset))


def _month(call: CallRecord) -> int:
    return call.start_time.year * 100 + call.start_time.month


def _by_month(calls: list[CallRecord]) -> list[tuple[int, list[CallRecord]]]:
    """The calls grouped by the tables' partition (``toYYYYMM(start_time)``), in month order."""
    groups: dict[int, list[CallRecord]] = {}
    for call in calls:
        groups.setdefault(_month(call), []).append(call)
    return sorted(groups.items())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, OperationalError | OSError):
        return True
    if isinstance(exc, DatabaseError):
        message = str(exc)
        if "Too many partitions for single INSERT block" in message:
            return False  # code 252 too, but the block's data is the problem: no retry fixes it
        return any(f"Code: {code}." in message or f"code: {code}" in message for code in _TRANSIENT_CODES)
    return False


# ClickHouse error codes that mean "these rows are bad": retrying the same block cannot help,
# so the batch is bisected at once to store the rest (the spans to blame go to dead-letter).
_DATA_CODES = frozenset(
    {
        "6",  # CANNOT_PARSE_TEXT
        "27",  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        "41",  # CANNOT_PARSE_DATETIME
        "53",  # TYPE_MISMATCH
        "69",  # ARGUMENT_OUT_OF_BOUND
        "70",  # CANNOT_CONVERT_TYPE
        "72",  # CANNOT_PARSE_NUMBER
        "117",  # INCORRECT_DATA
        "321",  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        "407",  # DECIMAL_OVERFLOW
        "469",  # VIOLATED_CONSTRAINT
    }
)


def _is_bad_data(exc: Exception) -> bool:
    """The rows themselves are the problem: client-side encoding errors, or ClickHouse
    refusing their values."""
    if isinstance(exc, ValueError | TypeError | ArithmeticError | struct.error | DataError):
        return True
    if isinstance(exc, DatabaseError):
        message = str(exc)
        return any(f"Code: {code}." in message or f"code: {code}," in message for code in _DATA_CODES)
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
        before_pricing: Callable[[], object] | None = None,
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
        # e.g. PricesSync.refresh: prices another collector process changed, applied batch by batch
        self.before_pricing = before_pricing
        self.storage_ready = not prepare_storage
        self.stats = PipelineStats()
        self.seen = SeenSpans(wal.directory / "seen", window=seen_window)
        self.reconciler = Reconciler(storage, wal.directory / "seen-responses", window=seen_window)
        self._plan_path = wal.directory / _PLAN
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="featurecost-pipeline", daemon=True)
        self._position = wal.checkpoint
        self.last_error: str = ""
        # non-empty while the worker cannot make progress for a reason other than a
        # storage outage (those spool in the WAL): ingest and /readyz refuse meanwhile
        self.blocked: str = ""

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
        delay = self.retry_seconds
        while True:
            try:
                batch = self._next_batch()
                if batch is None:
                    return
                if not self._deliver(batch):
                    return  # stopping while storage is down: the batch stays in the log
                delay = self.retry_seconds
            except Exception as exc:
                # Never die: a dead worker would leave ingest acknowledging into a log
                # nobody drains. Say why, refuse new data while stuck, and try again.
                self.stats.worker_errors += 1
                self.last_error = self.blocked = f"pipeline worker failed: {_describe(exc)}"
                log.exception("pipeline worker failed; retrying in %.1fs, acknowledged data stays in the WAL", delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.max_retry_seconds)
                self._position = self.wal.checkpoint

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
        plan = BatchPlan(self.wal.identity, records[0].start, records[-1].end)
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
        failed: list[tuple[ResourceSpans, ScopeSpans, Span, Exception]] = []

        def on_error(resource_spans: ResourceSpans, scope_spans: ScopeSpans, span: Span, exc: Exception) -> None:
            failed.append((resource_spans, scope_spans, span, exc))

        for record in records:
            try:
                request = trace_request(record)  # parsed once, by the receiver, while the WAL holds it
            except DecodeError:
                # The receiver validated every payload before acking: this is disk corruption.
                self._dead_letter([record], "undecodable WAL record")
                continue
            calls.extend(normalize_request(request, on_error))
            for index, (resource_spans, scope_spans, span, exc) in enumerate(failed):
                self._dead_letter_span(record, index, resource_spans, scope_spans, span, exc)
            failed.clear()
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

    def _price(self, batch: Batch) -> list[CallRecord]:
        """Bound, price and check each fresh call; a call that fails is dead-lettered alone."""
        if self.before_pricing is not None:
            try:
                self.before_pricing()
            except Exception:  # the prices stay as they were; the batch is still priced
                log.exception("checking for changed prices failed")
        priced: list[CallRecord] = []
        for call in self._fresh(batch.calls):
            try:
                reason = clamp_usage(call)
                if reason:
                    self.stats.implausible_calls += 1
                    unprice(call, reason)
                    self.pricer.stats.count(call)
                else:
                    self.pricer.price(call)
                    problem = cost_problem(call)
                    if problem:
                        self.stats.implausible_calls += 1
                        unprice(call, problem)
                        call.usage_issues = [*call.usage_issues, problem]
            except Exception as exc:
                self._dead_letter_call(batch, call, f"pricing failed: {_describe(exc)}")
                continue
            priced.append(call)
        return priced

    def _deliver(self, batch: Batch) -> bool:
        calls = self._price(batch)
        started = time.perf_counter()
        # reconciling reads storage; the withdrawals it plans go into the same per-month inserts
        reconciled = self._retry_transient(lambda: self.reconciler.reconcile(calls), batch.plan.token)
        if reconciled is None:
            return False
        for month, group in _by_month(reconciled.rows):
            stored = self._store_group(batch, group, f"{batch.plan.token}:{month}")
            if stored is None:
                return False
            calls = [call for call in calls if id(call) not in stored] if stored else calls
        if reconciled.restatements:
            token = f"{batch.plan.token}:superseded"

            def restate() -> bool:
                self.storage.insert_rows("cost_restatements", reconciled.restatements, RESTATEMENT_COLUMNS, token)
                return True

            if self._retry_transient(restate, token) is None:
                return False
        elapsed = time.perf_counter() - started
        self.stats.last_insert_seconds = elapsed
        if self.observe_insert is not None and calls:
            self.observe_insert(elapsed)
        self.last_error = ""
        self.blocked = ""
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

    def _retry_transient(self, action: Callable[[], _T], token: str) -> _T | None:
        """Run a storage action, retrying outages with backoff; None when stopping first.
        Anything not transient propagates to the worker loop, which reports and retries it."""
        delay = self.retry_seconds
        while True:
            try:
                return action()
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                self.stats.insert_failures += 1
                self.last_error = _describe(exc)
                log.warning("storage unavailable (batch %s): %s", token, exc)
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, self.max_retry_seconds)

    def _store_group(self, batch: Batch, calls: list[CallRecord], token: str) -> set[int] | None:
        """Insert one partition's calls; the ids of calls dead-lettered instead (empty if
        none), or None when stopping before storage took them."""
        rejections = 0
        delay = self.retry_seconds
        while True:
            try:
                if rejections < self.max_attempts:
                    self.storage.insert_calls(calls, token)
                    return set()
                rejected = self._isolate(calls, token, top=True)  # raises transient errors only
            except Exception as exc:
                self.stats.insert_failures += 1
                self.last_error = _describe(exc)
                if not _is_transient(exc):
                    rejections = self.max_attempts if _is_bad_data(exc) else rejections + 1
                    self.blocked = f"storage rejects batch {token}: {self.last_error}"
                    if rejections >= self.max_attempts:
                        continue  # bisect now
                log.warning("inserting %d calls failed (batch %s): %s", len(calls), token, exc)
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, self.max_retry_seconds)
                continue
            if rejected is None:  # every part rejected: the data is not what is wrong
                reason = f"storage rejected the batch {rejections} times: {self.last_error}"
                if len(calls) == len(batch.calls):
                    self._dead_letter(batch.records, reason)  # as received: replayable
                else:
                    self._dead_letter_calls(f"{token.replace(':', '-')}.jsonl", calls, reason)
                return {id(call) for call in calls}
            for call in rejected:
                self._dead_letter_call(batch, call, f"storage rejected this call: {self.last_error}")
            return {id(call) for call in rejected}

    def _isolate(self, calls: list[CallRecord], token: str, *, top: bool = False) -> list[CallRecord] | None:
        """Bisect a rejected insert: the calls storage rejects alone. Each part has a
        token derived from the batch's, so a retry after a crash or a transient error
        does not insert a part twice. None (at the top) when both halves are rejected."""
        if len(calls) == 1:
            return calls
        middle = len(calls) // 2
        parts = ((token + "a", calls[:middle]), (token + "b", calls[middle:]))
        refused: list[tuple[str, list[CallRecord]]] = []
        for part_token, part in parts:
            try:
                self.storage.insert_calls(part, part_token)
            except Exception as exc:
                if _is_transient(exc):
                    raise
                self.stats.insert_failures += 1
                self.last_error = _describe(exc)
                refused.append((part_token, part))
        if top and len(refused) == 2:
            return None
        rejected: list[CallRecord] = []
        for part_token, part in refused:
            rejected.extend(self._isolate(part, part_token) or [])
        return rejected

    def _advance(self, position: Position) -> None:
        self.wal.commit(position)
        self._position = position

    # --- plan and dead letters ---
    def _load_plan(self) -> BatchPlan | None:
        try:
            start, end = self._plan_path.read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return BatchPlan(self.wal.identity, _parse_position(start), _parse_position(end))

    def _save_plan(self, plan: BatchPlan) -> None:
        atomic_write(self._plan_path, f"{plan.start} {plan.end}")

    def _dead_letter_dir(self) -> Path:
        directory = self.wal.directory / "dead-letter"
        directory.mkdir(exist_ok=True)
        return directory

    def _dead_letter_span(
        self,
        record: Record,
        index: int,
        resource_spans: ResourceSpans,
        scope_spans: ScopeSpans,
        span: Span,
        exc: Exception,
    ) -> None:
        """One span that failed to normalize, as an OTLP request of its own (replayable)."""
        single = ExportTraceServiceRequest()
        rs = single.resource_spans.add(resource=resource_spans.resource, schema_url=resource_spans.schema_url)
        ss = rs.scope_spans.add(scope=scope_spans.scope, schema_url=scope_spans.schema_url)
        ss.spans.append(span)
        name = f"{record.start.segment}-{record.start.offset}-span{index}"
        self._write_dead_letter(f"{name}.pb", single.SerializeToString(), f"normalize failed: {_describe(exc)}")

    def _dead_letter_call(self, batch: Batch, call: CallRecord, reason: str) -> None:
        """One normalized call storage or pricing could not take, as JSON."""
        name = f"{batch.plan.start.segment}-{batch.plan.start.offset}-call-{call.trace_id}-{call.span_id}.jsonl"
        self._dead_letter_calls(name, [call], reason)

    def _dead_letter_calls(self, name: str, calls: list[CallRecord], reason: str) -> None:
        lines = (json.dumps(asdict(call), default=str, sort_keys=True) + "\n" for call in calls)
        self._write_dead_letter(name, "".join(lines).encode(), reason, len(calls))

    def _write_dead_letter(self, name: str, body: bytes, reason: str, spans: int = 1) -> None:
        directory = self._dead_letter_dir()
        (directory / name).write_bytes(body)
        (directory / f"{Path(name).stem}.reason").write_text(reason)
        self.stats.dead_letter_spans += spans
        self.stats.last_dead_letter_reason = reason
        log.error("%d span(s) moved to %s: %s", spans, directory / name, reason)

    def _dead_letter(self, records: list[Record], reason: str) -> None:
        directory = self._dead_letter_dir()
        for record in records:
            name = f"{record.start.segment}-{record.start.offset}"
            (directory / f"{name}.pb").write_bytes(record.payload)
            (directory / f"{name}.reason").write_text(reason)
        self.stats.dead_letters += len(records)
        self.stats.last_dead_letter_reason = reason
        log.error("%d WAL record(s) moved to %s: %s", len(records), directory, reason)
