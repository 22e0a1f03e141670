"""``featurecost prices update``: newer genai-prices data in a running collector.

New models appear weekly; the pinned genai-prices package lags. The collector takes a newer
genai-prices data file (its ``data.json``) over its API, keeps it next to its data so a
restart prices the same way, and from then on stamps calls with that data's version. It
answers with the stored unpriced calls the new data would now price, so the operator knows
what ``featurecost prices reprice --price-data FILE`` will fix. Pinned data stays the default:
without an update (or after ``DELETE``), the bundled snapshot prices.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurecost.collector import attributes as attrs
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import PriceData, Pricer
from featurecost.collector.storage.client import Storage

_PACKAGE = "featurecost.collector.pricing"
PRICE_DATA_FILE = "price-data.json"  # in the collector's data directory
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PROBE_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class NewlyPriced:
    provider: str
    model: str
    calls: int
    was: str  # the unpriced reason stored
    entry: str  # what prices it now

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "calls": self.calls,
            "was": self.was,
            "entry": self.entry,
        }


def saved_price_data(data_dir: Path) -> PriceData | None:
    """The data an earlier ``prices update`` left, if any (loaded at start-up)."""
    path = data_dir / PRICE_DATA_FILE
    return PriceData.load(path) if path.exists() else None


def save_price_data(data_dir: Path, content: bytes) -> None:
    """Keep the file for restarts: written whole, then renamed into place."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{PRICE_DATA_FILE}.tmp"
    with open(tmp, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, data_dir / PRICE_DATA_FILE)


def forget_price_data(data_dir: Path) -> None:
    (data_dir / PRICE_DATA_FILE).unlink(missing_ok=True)


def newly_priced(storage: Storage, pricer: Pricer) -> list[NewlyPriced]:
    """Stored unpriced models (all time) that ``pricer`` prices: one probe call per model and reason."""
    until = datetime.now(UTC) + timedelta(seconds=1)
    rows = storage.query_named(
        _PACKAGE, "prices_unpriced", {"since": _EPOCH.replace(tzinfo=None), "until": until.replace(tzinfo=None)}
    )
    out: list[NewlyPriced] = []
    for row in rows:
        when = row["last_seen"] if row["last_seen"].tzinfo else row["last_seen"].replace(tzinfo=UTC)
        probe = CallRecord(
            trace_id="", span_id="", start_time=when, end_time=when, environment="", service_name="", feature="",
            tenant="", user_id="", plan="", root_id="", session_id="", version="", operation="chat",
            provider=row["provider"], request_model="", response_model=row["model"], input_tokens=_PROBE_TOKENS,
            output_tokens=_PROBE_TOKENS, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0,
            usage_source=attrs.USAGE_REPORTED, status="ok", endpoint=row["endpoint"],
        )  # fmt: skip
        priced = pricer.quote(probe)
        if priced.cost_usd is not None:
            out.append(NewlyPriced(row["provider"], row["model"], int(row["calls"]), row["reason"], priced.price_entry))
    return out
