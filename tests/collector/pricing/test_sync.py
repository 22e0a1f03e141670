"""pricing/sync.py: collector processes sharing a data directory price alike (``--workers``).

Two pricers with a ``PricesSync`` each over one data directory stand for two worker processes:
the marker is a file, so what one process sees here another sees the same way
(tests/collector/test_workers.py runs it with real worker processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.pricing.sync import MARKER_FILE, PricesSync


def _contract(input_mtok: str) -> str:
    return f"""
prices:
  - model: gpt-4o-mini
    provider: openai
    input_mtok: "{input_mtok}"
    output_mtok: "0.60"
"""


def _input_rate(pricer: Pricer) -> str:
    (entry,) = pricer.overrides.spec.prices
    return str(entry.input_mtok)


def test_a_change_in_one_process_is_reloaded_by_the_other_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(_contract("0.10"))
    api, other = Pricer.from_file(prices), Pricer.from_file(prices)
    api_sync, other_sync = PricesSync(tmp_path, prices, api), PricesSync(tmp_path, prices, other)
    assert not other_sync.refresh()  # nothing changed yet

    prices.write_text(_contract("0.20"))
    api.use_overrides(Pricer.from_file(prices).overrides)  # what the reprice route does
    api_sync.changed()
    assert not api_sync.refresh(), "the process that changed its prices does not reload them"
    assert other_sync.refresh()
    assert _input_rate(other) == "0.20"
    assert not other_sync.refresh(), "reloaded once per change"

    # a prices file broken after the change: the other process keeps what it had
    prices.write_text("prices: [")
    api_sync.changed()
    assert not other_sync.refresh()
    assert _input_rate(other) == "0.20"
    assert "reloading them failed" in caplog.text


def test_a_marker_that_cannot_be_written_is_reported_not_swallowed(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(_contract("0.10"))
    (tmp_path / MARKER_FILE / "in-the-way").mkdir(parents=True)  # the rename over it fails
    api, other = Pricer.from_file(prices), Pricer.from_file(prices)
    api_sync, other_sync = PricesSync(tmp_path, prices, api), PricesSync(tmp_path, prices, other)
    problem = api_sync.changed()
    assert problem is not None
    assert "could not be told" in problem
    assert not other_sync.refresh()
