"""The worker that moves calls from the write-ahead log into storage.

WAL → normalize → price → insert → checkpoint. The checkpoint only advances after
the insert succeeded, so a crash at any point replays the batch; the insert's
deduplication token (the batch's WAL range) and the table's span identity make the
replay count once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from featurecost.collector.normalize import normalize_request
from featurecost.collector.pricing import Pricer
from featurecost.collector.records import CallRecord
from featurecost.collector.storage import Storage
from featurecost.collector.wal import Position, Record, WriteAheadLog

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PipelineStats:
    batches: int = 0
    calls_stored: int = 0
    calls_unpriced: int = 0
    insert_failures: int = 0
    dead_letters: int = 0


class Pipeline:
    def __init__(
        self,
        wal: WriteAheadLog,
        storage: Storage,
        pricer: Pricer | None = None,
        *,
        max_batch_records: int = 2000,
        max_batch_bytes: int = 32 * 1024 * 1024,
        retry_seconds: float = 1.0,
    ) -> None:
        self.wal = wal
        self.storage = storage
        self.pricer = pricer or Pricer()
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self.retry_seconds = retry_seconds
        self.stats = PipelineStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="featurecost-pipeline", daemon=True)
        self._position = wal.checkpoint

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> bool:
        """Drain what the log holds into storage, then stop; False if it could not drain in time."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            records = self.wal.read(self._position, self.max_batch_records, self.max_batch_bytes)
            if not records:
                if self._stop.is_set():
                    return
                self.wal.wait_for_data(self._position, timeout=0.5)
                continue
            while not self._process(records):
                if self._stop.wait(self.retry_seconds):
                    # stopping while storage is down: the batch stays in the log for the next start
                    return

    def _process(self, records: list[Record]) -> bool:
        calls: list[CallRecord] = []
        for record in records:
            try:
                request = ExportTraceServiceRequest.FromString(record.payload)
            except DecodeError:
                self._dead_letter(record)
                continue
            calls.extend(self.pricer.price(call) for call in normalize_request(request))
        token = f"wal:{records[0].start}-{records[-1].end}"
        try:
            self.storage.insert_calls(calls, token)
        except Exception:
            self.stats.insert_failures += 1
            log.exception("inserting %d calls failed; will retry (batch %s)", len(calls), token)
            return False
        self._advance(records[-1].end)
        self.stats.batches += 1
        self.stats.calls_stored += len(calls)
        self.stats.calls_unpriced += sum(1 for c in calls if c.cost_usd is None)
        return True

    def _advance(self, position: Position) -> None:
        self.wal.commit(position)
        self._position = position

    def _dead_letter(self, record: Record) -> None:
        # The receiver validated every payload before acking, so this means disk corruption.
        directory = self.wal.directory / "dead-letter"
        directory.mkdir(exist_ok=True)
        (directory / f"{record.start.segment}-{record.start.offset}.pb").write_bytes(record.payload)
        self.stats.dead_letters += 1
        log.error("undecodable WAL record at %s moved to %s", record.start, directory)
