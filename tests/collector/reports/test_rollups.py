"""The rollups never double count: replayed batches are dropped, unpriced calls stay
visible, restatements add, and a span stored twice in different batches is detected
(rollup_drift) and repaired (rebuild_rollups); the raw source is exact throughout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from featurecost.collector.reports import (
    OpenMonthError,
    Source,
    Window,
    feature_costs,
    rebuild_rollups,
    rollup_drift,
    weekly_features,
)
from featurecost.collector.reports.rollups import open_month_problem
from featurecost.collector.storage.client import Storage
from tests.collector.reports.seed import RESTATEMENT_COLUMNS, Restatement, Seed, _call, restatement_rows

T0 = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)  # a Monday
WINDOW = Window(T0 - timedelta(hours=10), T0 + timedelta(days=7))


def calls() -> list:  # type: ignore[type-arg]
    return [
        _call(1, T0, "support-bot", "acme", "u1", "s1", "r1", Decimal("0.125")),
        _call(2, T0 + timedelta(minutes=1), "support-bot", "acme", "u1", "s1", "r1", Decimal("0.25")),
        _call(3, T0 + timedelta(hours=2), "support-bot", "globex", "u2", "s2", "r2", None),
    ]


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    return f"chdb://{tmp_path / 'clickhouse'}"


@pytest.fixture
def storage(dsn: str) -> Iterator[Storage]:
    store = Storage(dsn)
    try:
        store.migrate()
        yield store
    finally:
        store.close()


def only_row(storage: Storage, source: Source) -> tuple[Decimal, int, int]:
    (row,) = weekly_features(storage, WINDOW, source)
    return row.spend_usd, row.calls, row.unpriced_calls


def test_replayed_batch_counts_once_and_unpriced_stays_visible(storage: Storage) -> None:
    storage.insert_calls(calls(), dedup_token="wal-0-100")
    storage.insert_calls(calls(), dedup_token="wal-0-100")  # the collector replays a WAL range
    assert only_row(storage, Source.rollup) == (Decimal("0.375"), 3, 1)
    assert only_row(storage, Source.raw) == (Decimal("0.375"), 3, 1)
    assert [d.drift for d in rollup_drift(storage)] == [0]


def test_restatement_deltas_add_to_rollups(storage: Storage) -> None:
    storage.insert_calls(calls(), dedup_token="wal-0-100")
    data = Seed(calls(), [Restatement(calls()[0], Decimal("-0.025"), "r1"), Restatement(calls()[2], Decimal(1), "r1")])
    storage.insert_rows("cost_restatements", restatement_rows(data), RESTATEMENT_COLUMNS)
    (row,) = weekly_features(storage, WINDOW)
    assert (row.spend_usd, row.restated_usd) == (Decimal("1.35"), Decimal("0.975"))
    assert row.unpriced_calls == 1  # it was unpriced when it happened; the delta says what it cost later


def test_span_stored_twice_in_different_batches_is_detected_and_repaired(storage: Storage, dsn: str) -> None:
    storage.insert_calls(calls(), dedup_token="wal-0-100")
    storage.insert_calls(calls()[:1], dedup_token="wal-100-200")  # an SDK retry of a delivered span
    assert only_row(storage, Source.raw) == (Decimal("0.375"), 3, 1)  # calls FINAL: exact
    assert only_row(storage, Source.rollup) == (Decimal("0.5"), 4, 1)  # the views saw it twice
    assert [(d.month, d.drift) for d in rollup_drift(storage)] == [(202603, 1)]
    rebuild_rollups(storage, 202603)
    assert [(d.month, d.drift) for d in rollup_drift(storage)] == [(202603, 0)]
    assert only_row(storage, Source.rollup) == (Decimal("0.375"), 3, 1)
    storage.close()
    # and the CLI, reading storage directly, prints the repaired numbers
    result = CliRunner().invoke(
        app,
        ["report", "weekly", "--storage", dsn, "--since", WINDOW.since.isoformat(), "--until",
         WINDOW.until.isoformat(), "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["rows"]
    assert (row["spend_usd"], row["calls"], row["unpriced_calls"]) == ("0.375", 3, 1)  # full precision, plain


def test_cli_drift_finds_and_rebuild_repairs(storage: Storage, dsn: str) -> None:
    storage.insert_calls(calls(), dedup_token="wal-0-100")
    storage.insert_calls(calls()[1:2], dedup_token="wal-100-200")
    storage.close()

    def drift(*extra: str) -> list[tuple[int, int]]:
        result = CliRunner().invoke(app, ["report", "drift", "--storage", dsn, "--format", "json", *extra])
        assert result.exit_code == 0, result.output
        return [(r["month"], r["drift"]) for r in json.loads(result.stdout)["rows"]]

    assert drift() == [(202603, 1)]
    assert drift("--rebuild", "202603") == [(202603, 0)]


def test_a_feature_with_only_unpriced_calls_is_not_free(storage: Storage) -> None:
    unknown = _call(9, T0, "private-model", "acme", "u1", "s9", "r9", None)
    storage.insert_calls([*calls(), unknown], dedup_token="wal-0-100")
    rows = {r.feature: r for r in feature_costs(storage, WINDOW)}
    assert rows["private-model"].cost_usd is None
    assert rows["private-model"].unpriced_calls == 1
    weekly = {r.feature: r for r in weekly_features(storage, WINDOW)}
    assert weekly["private-model"].unpriced_calls == 1
    assert weekly["private-model"].session_p50_usd is None  # no priced session to take a median of


def test_open_months_are_not_rebuilt(storage: Storage, dsn: str) -> None:
    # calls inserted while a month is rebuilt are missed: a month that still takes calls
    # (the current one, and the last one for two days) is refused, through every path
    assert open_month_problem(202611, datetime(2026, 12, 2, 23, tzinfo=UTC)) is not None
    assert open_month_problem(202611, datetime(2026, 12, 3, 0, tzinfo=UTC)) is None
    assert open_month_problem(202612, datetime(2026, 12, 31, tzinfo=UTC)) is not None
    assert open_month_problem(202701, datetime(2026, 12, 31, tzinfo=UTC)) is not None
    current = int(datetime.now(UTC).strftime("%Y%m"))
    with pytest.raises(OpenMonthError, match="still open"):
        rebuild_rollups(storage, current)
    storage.close()
    result = CliRunner().invoke(app, ["report", "drift", "--storage", dsn, "--rebuild", str(current)])
    assert result.exit_code != 0
    assert "still open" in result.output
