"""The pricer's fast path agrees with genai-prices' own calculation on every bundled model.

The pricer does the token arithmetic itself on a cached rate card (genai-prices' per-call
calculation is too slow for the collector's budget); this pins that shortcut to the
library's semantics — cache inside input, 1-hour writes inside cache writes, cliff tiers
on total input — for every model and date-resolved price in the pinned data.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
from genai_prices import Usage, data_snapshot
from genai_prices.types import ModelPrice

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer

WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
USAGES = [
    {"input_tokens": 1_000, "output_tokens": 200},
    {"input_tokens": 9_000, "cache_read_tokens": 4_000, "output_tokens": 700},
    {"input_tokens": 9_000, "cache_read_tokens": 1_000, "cache_write_tokens": 3_000, "output_tokens": 50},
    {
        "input_tokens": 9_000,
        "cache_read_tokens": 1_000,
        "cache_write_tokens": 3_000,
        "cache_write_1h_tokens": 2_000,
        "output_tokens": 50,
    },
    {"input_tokens": 300_000, "cache_read_tokens": 100_000, "output_tokens": 5_000},
]


def _record(usage: dict[str, int]) -> CallRecord:
    return CallRecord(
        trace_id="t", span_id="s", start_time=WHEN, end_time=WHEN, environment="e", service_name="s",
        feature="f", tenant="", user_id="", plan="", root_id="r", session_id="r", version="",
        operation="chat", provider="p", request_model="m", response_model="m",
        input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"],
        cache_read_tokens=usage.get("cache_read_tokens", 0), cache_write_tokens=usage.get("cache_write_tokens", 0),
        cache_write_1h_tokens=usage.get("cache_write_1h_tokens", 0), reasoning_tokens=0,
        usage_source="reported", status="ok",
    )  # fmt: skip


def test_fast_path_matches_genai_prices_on_every_model() -> None:
    from featurecost.collector.pricing.pricer import _fast_cost

    snapshot = data_snapshot.get_snapshot()
    compared = 0
    for provider in snapshot.providers:
        for model in provider.models:
            model_price = model.get_prices(WHEN)
            if not Pricer._fast(model_price):
                continue
            for usage in USAGES:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        expected = model_price.calc_price(Usage(**usage))
                    except ValueError:
                        continue  # genai-prices refuses this usage for this model; so does the library path
                input_cost, output_cost = _fast_cost(model_price, _record(usage))
                assert (input_cost, output_cost) == (expected["input_price"], expected["output_price"]), (
                    provider.id,
                    model.id,
                    usage,
                )
                compared += 1
    assert compared > 5_000


def test_models_outside_the_fast_path_use_the_library() -> None:
    # audio-priced model (gpt-audio: $2.50 text / $32 audio input per MTok) with audio usage: the pricer
    # must hand the call to genai-prices' calculation, which prices the audio part at the audio rate
    pricer = Pricer()
    record = _record({"input_tokens": 1_000, "output_tokens": 100})
    record.provider, record.request_model, record.response_model = "openai", "gpt-audio", ""
    record.input_audio_tokens = 400
    priced = pricer.price(record)
    card = pricer.rate_card(record)
    assert isinstance(card.model_price, ModelPrice)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = card.model_price.calc_price(Usage(input_tokens=1_000, input_audio_tokens=400, output_tokens=100))
    assert priced.cost_usd == expected["total_price"]
    assert priced.cost_usd != _fast_cost_total(card.model_price, record)
    assert priced.input_cost_usd == (600 * Decimal("2.5") + 400 * Decimal("32")) / Decimal(1_000_000)


def _fast_cost_total(model_price: ModelPrice, record: CallRecord) -> object:
    from featurecost.collector.pricing.pricer import _fast_cost

    i, o = _fast_cost(model_price, record)
    return i + o


def test_off_peak_prices_are_resolved_within_the_day() -> None:
    # DeepSeek prices some hours of the day differently: a per-day cache would price every call of
    # the day like the first one. Compare with genai-prices' own per-call resolution.
    pricer = Pricer()
    costs = []
    for hour in (0, 2, 5, 7, 12):
        record = _record({"input_tokens": 1_000_000, "output_tokens": 1_000_000})
        record.provider, record.request_model, record.response_model = "deepseek", "deepseek-v4-pro", ""
        record.start_time = record.end_time = WHEN.replace(hour=hour)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = genai_prices.calc_price(
                Usage(input_tokens=1_000_000, output_tokens=1_000_000),
                "deepseek-v4-pro",
                provider_id="deepseek",
                genai_request_timestamp=record.start_time,
            ).total_price
        assert pricer.price(record).cost_usd == expected
        costs.append(expected)
    assert len(set(costs)) == 2  # peak and off-peak


def test_one_tiered_rate_card_prices_every_size_as_the_library_does_in_any_order() -> None:
    # A rate card keeps the rates of each tier bracket it has met: calls crossing tier starts
    # (and landing exactly on one) in any order must still be priced at their own tier.
    from featurecost.collector.pricing.pricer import RateCard

    snapshot = data_snapshot.get_snapshot()
    cards = 0
    for provider in snapshot.providers:
        for model in provider.models:
            model_price = model.get_prices(WHEN)
            card = RateCard("", "", "", model_price)
            if not Pricer._fast(model_price) or not card.tier_starts:
                continue
            sizes = [s + d for s in card.tier_starts for d in (-1, 0, 1)]
            for total in [*sizes, *reversed(sizes)]:
                usage = {"input_tokens": total, "output_tokens": 100}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    expected = model_price.calc_price(Usage(**usage))
                assert card.token_cost(_record(usage)) == (expected["input_price"], expected["output_price"]), (
                    provider.id,
                    model.id,
                    total,
                )
            cards += 1
    assert cards > 3
