"""Cache opportunity on real chDB: repeats of a keyed prompt-prefix fingerprint within the
cache lifetime, priced by hand from published prices (USD per million tokens):
claude-sonnet-4-6 3 in / 0.30 cache read / 3.75 cache write; gpt-4o-mini 0.15 / 0.075 / —
(OpenAI's automatic caching charges no write premium: cache write = input)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.reports import ReportOptions, Source, Window, run_report
from featurecost.collector.reports.cache_opportunity import cache_opportunity
from featurecost.collector.storage.client import Storage
from tests.collector.reports.seed import ratio

D = Decimal
DAY = datetime(2026, 11, 3, tzinfo=UTC)
WINDOW = Window(DAY - timedelta(days=1), DAY + timedelta(days=6))  # seven days: per week = the window
SONNET = ("anthropic", "claude-sonnet-4-6")
MINI = ("openai", "gpt-4o-mini")


def call(n: int, at: str, feature: str, model: tuple[str, str], prefix: str, chars: str, *, inp: int = 3000,
         read: int = 0, write: int = 0) -> CallRecord:  # fmt: skip
    hour, minute, second = (int(x) for x in at.split(":"))
    when = DAY.replace(hour=hour, minute=minute, second=second)
    return CallRecord(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=when, end_time=when, environment="production",
        service_name="app", feature=feature, tenant="acme", user_id="", plan="", root_id=f"r{n}",
        session_id=f"r{n}", version="", operation="chat", provider=model[0], request_model=model[1],
        response_model=model[1], input_tokens=inp, output_tokens=100, cache_read_tokens=read,
        cache_write_tokens=write, reasoning_tokens=0, usage_source="reported", status="ok", cost_usd=D("0.01"),
        attributes={"featurecost.prompt.prefix_hash": prefix, "featurecost.prompt.prefix_class": chars}
        if prefix else {},
    )  # fmt: skip


CALLS = [
    # support-bot: an 8192-character prefix = 2048 tokens (4 characters a token)
    call(1, "10:00:00", "support-bot", SONNET, "h1", "8192"),  # first of a run: a cache write
    call(2, "10:02:00", "support-bot", SONNET, "h1", "8192"),  # repeat after 2 min: a cache read
    call(3, "10:07:00", "support-bot", SONNET, "h1", "8192"),  # repeat after exactly 5 min: still cached
    call(4, "10:20:00", "support-bot", SONNET, "h1", "8192", write=2048),  # caching is on here already
    call(5, "10:21:00", "support-bot", SONNET, "h1", "8192", read=2048),
    call(6, "10:01:00", "support-bot", MINI, "h1", "8192"),  # same prefix, other model: its own cache
    call(7, "12:00:00", "support-bot", SONNET, "", ""),  # no fingerprint (opted out)
    # draft: 16384 characters = 4096 tokens, three calls 4 min apart
    call(8, "11:00:00", "draft", MINI, "h3", "16384", inp=5000),
    call(9, "11:04:00", "draft", MINI, "h3", "16384", inp=5000),
    call(10, "11:08:00", "draft", MINI, "h3", "16384", inp=5000),
    # classify: a 1024-character prefix (256 tokens) is under the minimum cacheable prompt
    call(11, "09:00:00", "classify", MINI, "h2", "1024"),
    call(12, "09:01:00", "classify", MINI, "h2", "1024"),
    # a repeat 5 min 1 s later is past the cache lifetime
    call(13, "13:00:00", "classify", MINI, "h4", "8192"),
    call(14, "13:05:01", "classify", MINI, "h4", "8192"),
    # another instrumentation's span of call 13, 4 min later by its clock: not a repeat, not a call
    replace(call(15, "13:04:00", "classify", MINI, "h4", "8192"), superseded_by=f"{13:016x}", rollup_sign=0),
]


@pytest.fixture(scope="module")
def storage(chdb_storage: Storage) -> Storage:
    store = chdb_storage
    store.insert_calls(CALLS, dedup_token="a")
    store.insert_calls(CALLS, dedup_token="a")  # a collector restart replays the WAL: counted once
    return store


@pytest.mark.parametrize("source", [Source.rollup, Source.raw])
def test_saving_from_repeated_prefixes(storage: Storage, source: Source) -> None:
    rows = {r.feature: r for r in cache_opportunity(storage, WINDOW, source=source)}
    bot = rows["support-bot"]
    # 2 repeats x 2048 tokens read instead of input, 1 write of 2048 at the write premium
    assert (bot.repeated_prefix_calls, bot.cacheable_tokens) == (2, 4096)
    assert bot.saving_usd == D(4096) * D("2.70") / 1_000_000 - D(2048) * D("0.75") / 1_000_000
    assert bot.saving_usd == D("0.0095232")
    assert bot.saving_per_week_usd == D("0.0095232")
    assert bot.fingerprinted_calls == 6
    assert (bot.input_tokens, bot.cache_read_tokens) == (7 * 3000, 2048)
    assert bot.uncached_input_share == ratio(7 * 3000 - 2048, 7 * 3000)
    assert bot.cache_prices == [
        "anthropic/claude-sonnet-4-6: input 3, cache read 0.3, cache write 3.75 /MTok",
        "openai/gpt-4o-mini: input 0.15, cache read 0.075, cache write 0.15 /MTok",
    ]
    draft = rows["draft"]
    assert (draft.repeated_prefix_calls, draft.cacheable_tokens) == (2, 8192)
    assert draft.saving_usd == D("0.0006144")  # 8192 x (0.15 - 0.075), no write premium
    classify = rows["classify"]
    assert (classify.repeated_prefix_calls, classify.saving_usd, classify.fingerprinted_calls) == (0, 0, 4)
    assert [r.feature for r in cache_opportunity(storage, WINDOW)] == ["support-bot", "draft", "classify"]


def test_cache_opportunities_join_the_top_savings(storage: Storage) -> None:
    found = run_report("weekly", storage, WINDOW, ReportOptions())["opportunities"]
    assert [(o["kind"], o["feature"], D(o["saving_per_week_usd"])) for o in found] == [
        ("cache", "support-bot", D("0.0095232")),
        ("cache", "draft", D("0.0006144")),
    ]
    assert "prompt caching" in found[0]["action"]
    assert "2 calls repeated a ~2,048-token prompt prefix" in found[0]["action"]
