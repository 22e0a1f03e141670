"""The pipeline's exactly-once rules against real storage (ClickHouse HTTP interface,
chDB behind it, its own process): replayed batches keep their bounds and token, re-sent
spans are dropped before the insert, rejected batches go to the dead-letter directory."""

from __future__ import annotations

from pathlib import Path

from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.pipeline.worker import Pipeline
from featurecost.collector.storage.client import Storage
from testsupport.collector import ClickHouseHttp, llm_spans, request_for, span_ids
from testsupport.harness import wait_until


def _append(wal: WriteAheadLog, count: int) -> set[tuple[str, str]]:
    spans = llm_spans(count)
    wal.append(request_for(spans).SerializeToString()).result(10)
    return span_ids(spans)


def _run_until_drained(wal: WriteAheadLog, storage: Storage) -> Pipeline:
    pipeline = Pipeline(wal, storage, batch_rows=100_000, flush_interval=0.05)
    pipeline.start()
    assert pipeline.stop(60)  # stop() drains what the log holds
    return pipeline


def test_a_crash_after_the_insert_replays_the_same_batch_and_counts_once(
    tmp_path: Path, storage: Storage, clickhouse: ClickHouseHttp
) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    expected = _append(wal, 50) | _append(wal, 50) | _append(wal, 50)
    start = wal.checkpoint
    _run_until_drained(wal, storage)
    # The crash: the insert landed, but neither the seen-span record nor the
    # checkpoint reached the disk. Then more data arrives before the restart.
    wal.commit(start)
    for path in (tmp_path / "wal" / "seen").iterdir():
        path.unlink()
    wal.close()
    wal = WriteAheadLog(tmp_path / "wal")
    expected |= _append(wal, 40)

    pipeline = _run_until_drained(wal, storage)
    counts = clickhouse.stored_span_counts()
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert pipeline.stats.batches == 2  # the replayed plan, then the new record
    wal.close()


def test_re_sent_spans_are_dropped_before_the_insert_even_after_a_restart(
    tmp_path: Path, storage: Storage, clickhouse: ClickHouseHttp
) -> None:
    spans = llm_spans(30)
    payload = request_for(spans).SerializeToString()
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append(payload).result(10)
    wal.append(payload).result(10)  # an SDK retry after a lost ack: same batch
    first = _run_until_drained(wal, storage)
    wal.append(payload).result(10)  # ...and another one, later
    wal.close()

    wal = WriteAheadLog(tmp_path / "wal")  # after a restart
    second = _run_until_drained(wal, storage)
    counts = clickhouse.stored_span_counts()
    assert set(counts) == span_ids(spans)
    assert set(counts.values()) == {1}
    assert first.stats.duplicate_calls == 30
    assert second.stats.duplicate_calls == 30
    wal.close()


def test_a_batch_storage_keeps_rejecting_goes_to_dead_letter(tmp_path: Path, clickhouse: ClickHouseHttp) -> None:
    # A real, permanent rejection: the calls table exists with an incompatible shape.
    broken = Storage(clickhouse.dsn)
    broken.client.command("CREATE DATABASE IF NOT EXISTS broken")
    broken.client.command(
        "CREATE TABLE IF NOT EXISTS broken.calls (trace_id UInt8) ENGINE = MergeTree ORDER BY tuple()"
    )
    broken.close()
    storage = Storage(f"{clickhouse.dsn}/broken")
    wal = WriteAheadLog(tmp_path / "wal")
    _append(wal, 5)
    pipeline = Pipeline(wal, storage, flush_interval=0.05, retry_seconds=0.01, max_retry_seconds=0.01, max_attempts=3)
    pipeline.start()
    wait_until(lambda: pipeline.stats.dead_letters > 0, 30, "the batch to be dead-lettered")
    assert pipeline.stop(30)
    dead = sorted(p.name for p in (tmp_path / "wal" / "dead-letter").iterdir())
    assert len(dead) == 2
    assert dead[0].endswith(".pb")
    assert dead[1].endswith(".reason")
    # 3 rejections of the whole batch, then both halves rejected: not bad data, the batch goes whole
    assert pipeline.stats.insert_failures == 5
    assert pipeline.stats.dead_letter_spans == 0
    assert wal.checkpoint == wal.end  # skipped, so the pipeline moves on
    storage.close()
    wal.close()


def test_every_table_fed_by_inserts_keeps_an_insert_deduplication_window(clickhouse: ClickHouseHttp) -> None:
    # A replayed batch reuses its insert_deduplication_token; a MergeTree table without
    # non_replicated_deduplication_window (calls, every rollup fed by a materialized view)
    # would store it again.
    client = clickhouse.client()
    try:
        tables = client.query(
            "SELECT name, create_table_query FROM system.tables "
            "WHERE database = currentDatabase() AND engine LIKE '%MergeTree' AND name != 'featurecost_migrations'"
        ).result_rows
    finally:
        client.close()
    assert "calls" in {name for name, _ in tables}
    missing = [name for name, ddl in tables if "non_replicated_deduplication_window" not in ddl]
    assert missing == [], f"tables without non_replicated_deduplication_window: {missing}"
