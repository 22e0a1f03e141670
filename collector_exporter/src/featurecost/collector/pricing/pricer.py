"""Price: the cost of each call at the price of its day.

Lookup order, first match wins: tenant override → global override (the prices file,
``overrides.py``) → the pinned ``genai-prices`` package (its bundled data snapshot; we never
ask it to fetch updates) → unpriced. A discount entry in the prices file applies to the
price a *less specific* layer found. A call we cannot price keeps ``cost_usd = None`` and
says why in ``unpriced_reason`` — an unknown model must never look free.

Speed: resolving a model and its price of the day through genai-prices costs tens of
microseconds, far over the collector's per-span budget, so a resolution is cached per
(provider, model, tenant scope, tier, UTC day) as a ``RateCard``, and the arithmetic for the
token prices every chat model has (input, output, cache read/write) is ``TokenRates.cost`` on
the card's rates — the one arithmetic path, which the per-call price, the gateway split and
the estimates (guard prices, cache savings, batch) all use. Anything else (audio,
per-request, per-page prices) goes through genai-prices' own calculation.
tests/collector/pricing/test_genai_prices_parity.py checks both agree on every model.

Prices are values: ``Pricer.quote`` returns a frozen ``Price`` and the caller applies it to
the call (``Pricer.price`` does both and counts it, for the pipeline).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

from genai_prices import Usage, data_snapshot
from genai_prices.types import ModelInfo, ModelPrice, Provider, TieredPrices, TimeOfDateConstraint

from featurecost.collector import attributes as attrs
from featurecost.collector.pipeline import aliases, endpoints
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides, PriceOverride

GENAI_PRICES_SOURCE = "genai-prices"
OVERRIDE_SOURCE = "override"
NOT_BILLED_SOURCE = "not-billed"
DATA_VERSION = f"genai-prices=={version('genai-prices')}"
_MTOK = Decimal(1_000_000)
_MONEY_QUANTUM = Decimal("1e-18")  # the Decimal(38, 18) scale of the money columns

GATEWAY_SOURCE = "gateway-reported"
_PROVIDER_IDS = aliases.GENAI_PRICES_PROVIDER_IDS

# Price keys the fast path computes; keys whose usage we never report count zero either way.
_FAST_KEYS = frozenset({"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok"})
_NEVER_REPORTED_KEYS = frozenset(
    {
        "web_searches_kcount",
        "storage_searches_kcount",
        "input_image_mtok",
        "cache_image_read_mtok",
        "output_image_mtok",
        "input_video_mtok",
        "output_video_mtok",
        "output_citation_mtok",
    }
)
_AUDIO_KEYS = frozenset({"input_audio_mtok", "output_audio_mtok", "cache_audio_read_mtok"})
_REASONING_KEYS = frozenset({"output_reasoning_mtok"})

_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|ap|ca|jp|au|us-gov|global)\.")
_DATE_SUFFIX = re.compile(r"(?:[-@]\d{4}-?\d{2}-?\d{2}|-\d{3})$")
# OpenAI's serving names for legacy base models: "<base>:<yyyy-mm-dd>-v<n>" is "<base>-00<n>".
_LEGACY_SNAPSHOT = re.compile(r"^(?P<base>[a-z]+):\d{4}-\d{2}-\d{2}-v(?P<version>\d+)$")
# OpenAI's serving revision of a numbered model ("text-embedding-ada-002-v2"); only after a
# "-NNN" version, so names where "-v2" is a different model ("deepseek-v2") are left alone.
_VERSION_SUFFIX = re.compile(r"(?<=-\d{3})-v\d+$")


def model_candidates(model: str) -> list[str]:
    """Spellings of ``model`` to try, most faithful first.

    Handles Gemini's ``models/`` and Vertex's ``publishers/<p>/models/`` prefixes, Bedrock's
    regional inference-profile prefixes (``us.``, ``eu.``, ``global.``...), router-style
    ``provider/model`` names, and dated snapshot or version suffixes (``-2024-08-06``,
    ``@20241022``, ``-001``) when the exact snapshot has no price of its own.
    """
    name = model.strip().lower()
    out = [name]

    def add(candidate: str) -> None:
        if candidate and candidate not in out:
            out.append(candidate)

    if "/models/" in name:
        name = name.rsplit("/models/", 1)[1]
        add(name)
    if name.startswith("models/"):
        name = name.removeprefix("models/")
        add(name)
    if _BEDROCK_REGION.match(name):
        name = _BEDROCK_REGION.sub("", name)
        add(name)
    if "/" in name:
        name = name.rsplit("/", 1)[1]
        add(name)
    legacy = _LEGACY_SNAPSHOT.match(name)
    if legacy:
        # OpenAI answers a davinci-002 request with "davinci:2023-07-21-v2"
        add(f"{legacy['base']}-{int(legacy['version']):03d}")
    if not legacy:
        add(_VERSION_SUFFIX.sub("", name))
    undated = _DATE_SUFFIX.sub("", name)
    add(undated)
    return out


def price_context(tier: str) -> dict[str, str] | None:
    """genai-prices' request context for a service tier: batch is a processing mode, the rest tiers."""
    if not tier:
        return None
    if tier == "batch":
        return {"processing": "batch"}
    return {"service_tier": tier}


class PriceDataError(ValueError):
    """A genai-prices data file that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class PriceData:
    """The genai-prices provider data the pricer reads, and the version calls are stamped with.

    The package's bundled snapshot is the default (pinned, never fetched). ``featurecost prices
    update`` loads a newer data file — genai-prices' own ``data.json`` (the provider array its
    updater downloads) — without upgrading the package.
    """

    snapshot: data_snapshot.DataSnapshot
    version: str

    @classmethod
    def bundled(cls) -> PriceData:
        return cls(data_snapshot._bundled_snapshot(), DATA_VERSION)  # never the auto-updated one

    @classmethod
    def parse(cls, content: bytes, source: str = "price data") -> PriceData:
        from genai_prices.types import _providers_from_raw

        try:
            raw = json.loads(content)
        except ValueError as exc:
            raise PriceDataError(f"{source}: not JSON: {exc}") from exc
        if not isinstance(raw, list) or not raw:
            raise PriceDataError(f"{source}: expected genai-prices' provider array (its data.json)")
        try:
            providers = _providers_from_raw(raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise PriceDataError(f"{source}: not genai-prices provider data: {str(exc)[:500]}") from exc
        digest = hashlib.sha256(content).hexdigest()[:12]
        return cls(data_snapshot.DataSnapshot(providers, from_auto_update=False), f"genai-prices-data@{digest}")

    @classmethod
    def load(cls, path: Path) -> PriceData:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise PriceDataError(f"cannot read price data {path}: {exc}") from exc
        return cls.parse(content, str(path))


_MAX_UNPRICED_KEYS = 200
# Resolutions are cached per day; a long-running collector starts over rather than grow forever.
_MAX_CACHED_CARDS = 50_000  # bound the metric's cardinality; the calls table keeps every reason


@dataclass(slots=True)
class PricingStats:
    """Counters for the status API: how calls were priced, and which models had no price."""

    priced: int = 0
    not_billed: int = 0
    unpriced: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    unpriced_models: dict[str, int] = field(default_factory=dict)  # "provider/model: reason" → calls

    def count(self, record: CallRecord) -> None:
        if record.cost_usd is None:
            self.unpriced += 1
            key = f"{record.provider or '?'}/{record.model or '?'}: {record.unpriced_reason}"
            if key in self.unpriced_models or len(self.unpriced_models) < _MAX_UNPRICED_KEYS:
                self.unpriced_models[key] = self.unpriced_models.get(key, 0) + 1
            return
        if record.price_source == NOT_BILLED_SOURCE:
            self.not_billed += 1
        else:
            self.priced += 1
        self.by_source[record.price_source] = self.by_source.get(record.price_source, 0) + 1

    def to_json(self) -> dict[str, object]:
        return {
            "priced": self.priced,
            "not_billed": self.not_billed,
            "unpriced": self.unpriced,
            "by_source": dict(self.by_source),
            "unpriced_models": dict(self.unpriced_models),
        }


@dataclass(frozen=True, slots=True)
class TokenRates:
    """USD per million tokens of each kind a chat call reports, at one input-size tier, before
    any discount. A kind the model has no price for is charged as genai-prices charges it:
    cache reads and writes as plain input, 1-hour cache writes as 5-minute ones."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    output: Decimal

    @classmethod
    def of(cls, model_price: ModelPrice, total_input: int = 0) -> TokenRates:
        """The rates of ``model_price`` for a call with ``total_input`` input tokens (cliff
        tiers on total input, as genai-prices); 0: the base tier."""
        p = model_price.__dict__
        input_rate = _rate(p.get("input_mtok"), total_input) or Decimal(0)
        write_rate = _rate(p.get("cache_write_mtok"), total_input)
        write_rate = input_rate if write_rate is None else write_rate
        read_rate = _rate(p.get("cache_read_mtok"), total_input)
        write_1h_rate = _rate(p.get("cache_write_1h_mtok"), total_input)
        return cls(
            input=input_rate,
            cache_read=input_rate if read_rate is None else read_rate,
            cache_write=write_rate,
            cache_write_1h=write_rate if write_1h_rate is None else write_1h_rate,
            output=_rate(p.get("output_mtok"), total_input) or Decimal(0),
        )

    def cost(
        self, input_tokens: int, cache_read_tokens: int, cache_write_tokens: int, cache_write_1h_tokens: int,
        output_tokens: int,
    ) -> tuple[Decimal, Decimal]:  # fmt: skip
        """Input and output cost in USD: cache reads and writes are inside ``input_tokens``,
        1-hour writes inside ``cache_write_tokens`` (GenAI semconv, as genai-prices)."""
        cost = (input_tokens - cache_read_tokens - cache_write_tokens) * self.input
        if cache_read_tokens:
            cost += cache_read_tokens * self.cache_read
        if cache_write_tokens:
            cost += (cache_write_tokens - cache_write_1h_tokens) * self.cache_write
            if cache_write_1h_tokens:
                cost += cache_write_1h_tokens * self.cache_write_1h
        return cost / _MTOK, (output_tokens * self.output) / _MTOK


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """USD per token (not per million, discount applied) for one model on one day at the base
    tier: what the estimates (guard prices, cache savings, batch) multiply token counts by."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    # what they were read from: ``cost`` prices usage with the per-call arithmetic
    rates: TokenRates = field(compare=False, repr=False)
    discount: Decimal | None = field(default=None, compare=False, repr=False)

    def cost(self, input_tokens: int, cache_read_tokens: int, cache_write_tokens: int, output_tokens: int) -> Decimal:
        """What that usage costs at the base tier: the pricer's own arithmetic (``TokenRates.cost``)."""
        input_cost, output_cost = self.rates.cost(input_tokens, cache_read_tokens, cache_write_tokens, 0, output_tokens)
        cost = input_cost + output_cost
        return cost if self.discount is None else cost * (1 - self.discount)


@dataclass(frozen=True, slots=True)
class RateCard:
    """How one call is priced: the resolved prices plus the stamp that says where they came from."""

    source: str
    entry: str
    data_version: str
    model_price: ModelPrice | None = None  # None: unpriced
    discount: Decimal | None = None
    discount_entry: str = ""
    unpriced_reason: str = ""
    fast: bool = True  # every price key is one TokenRates prices
    time_of_day: bool = False  # the price changes within a day (off-peak pricing)
    # the base tier's rates, read once; None when unpriced
    base_rates: TokenRates | None = field(default=None, init=False, compare=False)
    tiered: bool = field(default=False, init=False, compare=False)  # a rate depends on the input size
    # Tiered cards: every tier start of every price, sorted; a call's rates depend only on how many
    # of them its input exceeds (``_rate`` takes the last tier whose start it exceeds), so the rates
    # are built once per count (``_tier_rates``) instead of per call.
    tier_starts: tuple[int, ...] = field(default=(), init=False, compare=False)
    _tier_rates: dict[int, TokenRates] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.model_price is not None:
            # derived from model_price: a value like the rest, computed once per resolution
            object.__setattr__(self, "base_rates", TokenRates.of(self.model_price))
            tiered = [v for v in self.model_price.__dict__.values() if isinstance(v, TieredPrices)]
            object.__setattr__(self, "tiered", bool(tiered))
            starts = sorted({tier.start for prices in tiered for tier in prices.tiers})
            object.__setattr__(self, "tier_starts", tuple(starts))

    @property
    def priced(self) -> bool:
        return self.model_price is not None

    def rates(self, total_input: int) -> TokenRates:
        """The rates for a call with ``total_input`` input tokens (a priced card only)."""
        assert self.model_price is not None
        assert self.base_rates is not None
        if not self.tiered:
            return self.base_rates
        exceeded = bisect.bisect_left(self.tier_starts, total_input)  # starts below total_input
        rates = self._tier_rates.get(exceeded)
        if rates is None:
            rates = self._tier_rates[exceeded] = TokenRates.of(self.model_price, total_input)
        return rates

    def token_cost(self, r: CallRecord) -> tuple[Decimal, Decimal]:
        """Input and output cost of ``r``'s token usage at these rates, before any discount."""
        rates = self.rates(r.input_tokens) if self.tiered else self.base_rates  # per call: no call when untiered
        assert rates is not None
        return rates.cost(
            r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, r.cache_write_1h_tokens, r.output_tokens
        )

    def token_prices(self) -> TokenPrices:
        """USD per token at the base tier, discount applied (a priced card only)."""
        assert self.base_rates is not None
        rates = self.base_rates
        keep = None if self.discount is None else 1 - self.discount

        def per_token(rate: Decimal) -> Decimal:
            return rate / _MTOK if keep is None else rate / _MTOK * keep

        return TokenPrices(
            per_token(rates.input),
            per_token(rates.cache_read),
            per_token(rates.cache_write),
            per_token(rates.output),
            rates,
            self.discount,
        )


class Price(NamedTuple):
    """What pricing says about one call: its cost columns and the stamp of where the price came
    from. A value (a tuple: cheap to make on the hot path); ``apply`` writes it on the call."""

    provider: str  # the provider the call is priced as (its endpoint may place it elsewhere)
    cost_usd: Decimal | None
    input_cost_usd: Decimal | None
    output_cost_usd: Decimal | None
    price_source: str
    price_entry: str
    price_data_version: str
    unpriced_reason: str
    cost_delta_vs_client_usd: Decimal | None  # ours minus the client's claim, when both exist

    def apply(self, record: CallRecord) -> CallRecord:
        record.provider = self.provider
        record.cost_usd, record.input_cost_usd, record.output_cost_usd = (
            self.cost_usd, self.input_cost_usd, self.output_cost_usd
        )  # fmt: skip
        record.price_source, record.price_entry = self.price_source, self.price_entry
        record.price_data_version, record.unpriced_reason = self.price_data_version, self.unpriced_reason
        record.cost_delta_vs_client_usd = self.cost_delta_vs_client_usd
        return record


def _model_price_keys(model_price: ModelPrice) -> set[str]:
    return {k for k, v in model_price.__dict__.items() if v is not None and not k.startswith("_")}


def _rate(price: Decimal | TieredPrices | None, total_input: int) -> Decimal | None:
    if price is None or isinstance(price, Decimal):
        return price
    applicable = price.base
    for tier in reversed(price.tiers):
        if total_input > tier.start:
            applicable = tier.price
            break
    return applicable


def _fast_cost(model_price: ModelPrice, r: CallRecord) -> tuple[Decimal, Decimal]:
    """Input and output cost of ``r`` at ``model_price`` through ``TokenRates`` (what the parity test pins)."""
    return RateCard("", "", "", model_price).token_cost(r)


def _usage(r: CallRecord) -> Usage:
    values = {
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cache_read_tokens": r.cache_read_tokens,
        "cache_write_tokens": r.cache_write_tokens,
        "cache_write_1h_tokens": r.cache_write_1h_tokens,
        "input_audio_tokens": r.input_audio_tokens,
        "output_audio_tokens": r.output_audio_tokens,
        "output_reasoning_tokens": r.reasoning_tokens,
    }
    return Usage(**{k: v for k, v in values.items() if v})


def _delta(cost: Decimal | None, record: CallRecord) -> Decimal | None:
    """Keep the client's own cost claim apart, and say how far it is from ours."""
    if record.client_cost_usd is not None and cost is not None:
        return cost - record.client_cost_usd
    return None


class Pricer:
    """Prices ``CallRecord``s: ``quote`` a ``Price``, or ``price`` a call (quote, apply, count).
    ``Pricer()`` uses genai-prices alone."""

    def __init__(self, overrides: Overrides | None = None, data: PriceData | None = None) -> None:
        self.overrides = overrides or Overrides.empty()
        self._data = data or PriceData.bundled()
        self._snapshot = self._data.snapshot
        self._lock = threading.Lock()  # use_data against pricing in the pipeline's thread
        self._models: dict[tuple[str, str], tuple[Provider, ModelInfo] | str] = {}
        self._placements: dict[tuple[str, str], endpoints.Placement] = {}
        self.stats = PricingStats()
        self._cards: dict[tuple[str, str, str, str, str, date, tuple[int, int] | None], RateCard] = {}

    @classmethod
    def from_file(cls, path: Path | None, data: PriceData | None = None) -> Pricer:
        return cls(Overrides.load(path) if path else None, data)

    @property
    def data(self) -> PriceData:
        """The genai-prices data this pricer prices with."""
        return self._data

    @property
    def data_version(self) -> str:
        """The genai-prices data priced calls are stamped with."""
        return self._data.version

    def use_overrides(self, overrides: Overrides) -> None:
        """Price with a re-read prices file from now on (``featurecost prices reprice`` through
        the API), in place: every holder of this pricer (pipeline, budgets) sees the change."""
        with self._lock:
            self.overrides = overrides
            self._cards = {}
            self._models = {}
            self._placements = {}

    def use_data(self, data: PriceData) -> None:
        """Price with ``data`` from now on (``featurecost prices update``), without a restart.

        The pipeline prices under the same lock, so a call is priced wholly by the old or the
        new data and no resolution of the old data survives in the caches.
        """
        with self._lock:
            self._data, self._snapshot = data, data.snapshot
            self._cards = {}
            self._models = {}

    # --- the pipeline stage ---
    def price(self, record: CallRecord) -> CallRecord:
        """Price ``record`` and count it in the stats: ``quote`` applied to the call."""
        with self._lock:
            self._price(record).apply(record)
        self.stats.count(record)
        return record

    def quote(self, record: CallRecord) -> Price:
        """The price of ``record``, without changing it or counting it (estimates, probes)."""
        with self._lock:
            return self._price(record)

    def _price(self, record: CallRecord) -> Price:
        provider = record.provider
        if record.usage_source != attrs.USAGE_REPORTED:
            if record.status == "error":
                # A failed request reports no usage and providers do not bill it.
                zero = Decimal(0)
                entry = f"failed call ({record.error_type or 'error'})"
                return Price(
                    provider, zero, zero, zero, NOT_BILLED_SOURCE, entry, self.data_version, "", _delta(zero, record)
                )
            return _unpriced(provider, "usage not reported", self.data_version)
        self_hosted = False
        if record.endpoint:
            placement = self._place(record)
            provider, self_hosted = placement.provider, placement.self_hosted
            if placement.unplaced_reason:
                reason = f"{placement.unplaced_reason} (model {record.model or '?'})"
                return _unpriced(provider, reason, self._version())
        if record.gateway_cost_usd is not None:
            return self._gateway_priced(record, provider)
        if not record.model:
            return _unpriced(provider, "model not reported", self.data_version)
        card = self.rate_card(record, provider)
        if self_hosted and not card.source.startswith(OVERRIDE_SOURCE):
            # a self-hosted server's model has no public price, whatever it is called
            where = f"endpoint {record.endpoint}, " if record.endpoint else ""
            reason = f"self-hosted endpoint: add a prices-file entry ({where}model {record.model})"
            return _unpriced(provider, reason, self._version())
        if not card.priced:
            reason = card.unpriced_reason
            if provider == endpoints.SELF_HOSTED:
                reason = f"self-hosted endpoint: add a prices-file entry (model {record.model})"
            return _unpriced(provider, reason, card.data_version)
        assert card.model_price is not None
        if card.fast and not (record.input_audio_tokens or record.output_audio_tokens):
            input_cost, output_cost = card.token_cost(record)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                calc = card.model_price.calc_price(_usage(record))
            input_cost, output_cost = calc["input_price"], calc["output_price"]
        if card.discount is not None:
            keep = 1 - card.discount
            input_cost, output_cost = input_cost * keep, output_cost * keep
        cost = input_cost + output_cost
        entry = card.entry + (f" - {card.discount_entry}" if card.discount_entry else "")
        return Price(
            provider, cost, input_cost, output_cost, card.source, entry, card.data_version, "", _delta(cost, record)
        )

    def _place(self, record: CallRecord) -> endpoints.Placement:
        """The provider the call's endpoint says (cached per endpoint and stated provider)."""
        key = (record.endpoint, record.provider)
        placement = self._placements.get(key)
        if placement is None:
            if len(self._placements) >= _MAX_CACHED_CARDS:
                self._placements.clear()
            endpoint = endpoints.Endpoint.parse(record.endpoint)
            configured = self.overrides.endpoint_price_as(endpoint)
            placement = self._placements[key] = endpoints.place(endpoint, record.provider, configured)
        return placement

    def _gateway_priced(self, record: CallRecord, provider: str) -> Price:
        """The cost the gateway reported is what it bills: use it, split like our own estimate."""
        reported = record.gateway_cost_usd
        assert reported is not None
        estimate = self.rate_card(record, provider) if record.model else None
        input_cost, output_cost = reported, Decimal(0)
        split = "all on input: no list price to split by"
        if estimate is not None and estimate.priced and estimate.fast:
            est_input, est_output = estimate.token_cost(record)
            if est_input + est_output > 0:
                # at the stored scale, so input + output is exactly the reported cost
                input_cost = (reported * est_input / (est_input + est_output)).quantize(_MONEY_QUANTUM)
                output_cost = reported - input_cost
                split = f"split as {estimate.entry}"
        entry = f"{provider or 'gateway'} reported cost ({split})"
        return Price(
            provider, reported, input_cost, output_cost, GATEWAY_SOURCE, entry, self.data_version, "",
            _delta(reported, record),
        )  # fmt: skip

    # --- resolution (cached) ---
    def rate_card(self, record: CallRecord, provider: str | None = None) -> RateCard:
        """The cached resolution for this call's provider (``provider`` when its endpoint placed it
        elsewhere), model, tenant scope, tier and UTC day."""
        return self._card(
            record.provider if provider is None else provider,
            record.model,
            record.request_model,
            record.tenant,
            record.service_tier,
            record.start_time,
        )

    def token_prices(
        self, provider: str, model: str, day: date, tenant: str = "", service_tier: str = ""
    ) -> TokenPrices | None:
        """Per-token prices of ``model`` on ``day`` (at noon UTC), read from the same rate card as
        the calls (overrides, name normalization, genai-prices), so estimates and savings never use
        a second price source. None when the model has no price. ``service_tier``: that tier's
        prices (``batch``: the Batch API's), the standard ones where the model has none."""
        with self._lock:
            card = self._card(provider, model, model, tenant, service_tier, datetime.combine(day, time(12), UTC))
        return card.token_prices() if card.priced else None

    def _card(self, provider: str, model: str, request_model: str, tenant: str, tier: str, start: datetime) -> RateCard:
        tenant = tenant if tenant in self.overrides.tenants else ""
        key = (provider, model, request_model, tenant, tier, start.date(), None)
        card = self._cards.get(key)
        if card is None:
            if len(self._cards) >= _MAX_CACHED_CARDS:
                self._cards.clear()
            card = self._cards[key] = self._resolve(provider, model, request_model, tenant, tier, start)
        if card.time_of_day:
            # Off-peak prices change within a day: those models resolve per minute.
            minute_key = (*key[:-1], (start.hour, start.minute))
            minute_card = self._cards.get(minute_key)
            if minute_card is None:
                minute_card = self._cards[minute_key] = self._resolve(
                    provider, model, request_model, tenant, tier, start
                )
            card = minute_card
        return card

    def _resolve(
        self, provider: str, model: str, request_model: str, tenant: str, tier: str, when: datetime
    ) -> RateCard:
        day = when.date()
        names = [model] if not request_model or request_model == model else [model, request_model]
        names = [self.overrides.deployment_model(provider, n) or n for n in names]
        candidates = list(dict.fromkeys(c for n in names for c in model_candidates(n)))
        override = self._from_overrides(provider, candidates, tenant, tier, day)
        if override is not None:
            return override
        if provider == endpoints.SELF_HOSTED:
            # a self-hosted server's model has no public price, whatever it is called
            return RateCard(source="", entry="", data_version=self._version(), unpriced_reason="self-hosted")
        resolved = self._genai_model(provider, names)
        if isinstance(resolved, str):
            return RateCard(
                source="", entry="", data_version=self._version(), unpriced_reason=resolved, model_price=None
            )
        gp_provider, gp_model = resolved
        context = price_context(tier)
        # genai-prices ignores request variants for models borrowed from a fallback provider.
        own = any(m is gp_model for m in gp_provider.models)
        model_price = gp_model.get_prices(when, context if own else None)
        entry = f"{gp_provider.id}/{gp_model.id}"
        if tier:
            matched = own and any(
                context is not None
                and all(context.get(k) == v for k, v in variant.when.items())
                and (variant.constraint is None or variant.constraint.active(when))
                for variant in gp_model.price_variants or ()
            )
            entry += f" [{tier}]" if matched else f" [standard: no {tier} price]"
        card = RateCard(
            source=GENAI_PRICES_SOURCE,
            entry=entry,
            data_version=self.data_version,
            model_price=model_price,
            fast=self._fast(model_price),
            time_of_day=_time_of_day(gp_model),
        )
        candidates = list(dict.fromkeys([gp_model.id.lower(), *candidates]))
        return self._with_discount(card, provider, candidates, tenant, tier, day, tenant_only=False)

    def _from_overrides(
        self, provider: str, candidates: list[str], tenant: str, tier: str, day: date
    ) -> RateCard | None:
        """The prices-file layers: every spelling of the model for the tenant first, then globally."""
        for scoped in (True, False) if tenant else (False,):
            for model in candidates:
                entry = self.overrides.find(provider, model, tenant, tier, day, discount=False, tenant_scoped=scoped)
                if entry is None:
                    continue
                card = RateCard(
                    source=OVERRIDE_SOURCE,
                    entry=entry.label,
                    data_version=self.overrides.data_version,
                    model_price=ModelPrice(**entry.prices()),
                )
                if scoped:
                    return card
                return self._with_discount(card, provider, candidates, tenant, tier, day, tenant_only=True)
        return None

    def _with_discount(
        self,
        card: RateCard,
        provider: str,
        candidates: list[str],
        tenant: str,
        tier: str,
        day: date,
        *,
        tenant_only: bool,
    ) -> RateCard:
        """Apply the most specific discount from a layer more specific than the one that priced.

        A global override can only be discounted for a tenant; genai-prices by either.
        """
        scopes = [True] if tenant else []
        if not tenant_only:
            scopes.append(False)
        for scoped in scopes:
            for name in candidates:
                found: PriceOverride | None = self.overrides.find(
                    provider, name, tenant, tier, day, discount=True, tenant_scoped=scoped
                )
                if found is not None and found.discount is not None:
                    percent = (found.discount * Decimal(100)).normalize()
                    return RateCard(
                        source=f"{card.source}+discount",
                        entry=card.entry,
                        data_version=f"{card.data_version};{self.overrides.data_version}",
                        model_price=card.model_price,
                        discount=found.discount,
                        discount_entry=f"{percent:f}% off ({found.label})",
                        fast=card.fast,
                        time_of_day=card.time_of_day,
                    )
        return card

    def _genai_model(self, provider: str, names: list[str]) -> tuple[Provider, ModelInfo] | str:
        key = (provider, "\0".join(names))
        cached = self._models.get(key)
        if cached is not None:
            return cached
        if len(self._models) >= _MAX_CACHED_CARDS:
            self._models.clear()
        provider_id = _PROVIDER_IDS.get(provider, provider) or None
        result: tuple[Provider, ModelInfo] | str = ""
        for name in names:
            for candidate in model_candidates(name):
                try:
                    result = self._snapshot.find_provider_model(candidate, None, provider_id, None)
                except LookupError:
                    continue
                self._models[key] = result
                return result
        known_provider = provider_id is None or data_snapshot.find_provider_by_id(self._snapshot.providers, provider_id)
        where = f"{provider or 'unknown provider'}/{names[0]}"
        if not known_provider:
            result = f"no price for {where}: provider not in {self.data_version} and no prices-file entry"
        else:
            result = f"no price for {where}: model not in {self.data_version} and no prices-file entry"
        self._models[key] = result
        return result

    @staticmethod
    def _fast(model_price: ModelPrice) -> bool:
        keys = _model_price_keys(model_price)
        return keys <= _FAST_KEYS | _NEVER_REPORTED_KEYS | _AUDIO_KEYS and not keys & _REASONING_KEYS

    def _version(self) -> str:
        data_version = self.data_version
        return f"{data_version};{self.overrides.data_version}" if self.overrides.data_version else data_version


def _unpriced(provider: str, reason: str, data_version: str) -> Price:
    return Price(provider, None, None, None, "", "", data_version, reason, None)


def _time_of_day(model: ModelInfo) -> bool:
    """Whether the model's price depends on the time of day (off-peak pricing)."""
    if isinstance(model.prices, ModelPrice):
        return False
    return any(isinstance(p.constraint, TimeOfDateConstraint) for p in model.prices)


class TokenPriceLookup:
    """``Pricer.token_prices`` by (provider, model, day, tenant scope, tier), each resolved once: what a
    report needs for many calls of few models."""

    def __init__(self, pricer: Pricer) -> None:
        self.pricer = pricer
        self._found: dict[tuple[str, str, date, str, str], TokenPrices | None] = {}

    def get(self, provider: str, model: str, day: date, tenant: str, tier: str = "") -> TokenPrices | None:
        # a tenant without prices-file entries of its own pays what everyone pays: one lookup
        scope = tenant if tenant in self.pricer.overrides.tenants else ""
        key = (provider, model, day, scope, tier)
        if key not in self._found:
            self._found[key] = self.pricer.token_prices(provider, model, day, scope, tier)
        return self._found[key]


def explain_lines(record: CallRecord, card: RateCard) -> Mapping[str, str]:
    """What ``featurecost prices explain`` prints for one call."""
    lines = {
        "model": record.model,
        "provider": record.provider,
        "tenant": record.tenant or "-",
        "service tier": record.service_tier or "standard",
        "priced at": record.start_time.isoformat(),
        "source": card.source or "unpriced",
        "entry": card.entry or "-",
        "data version": card.data_version,
    }
    if card.model_price is not None:
        lines["prices (USD/MTok)"] = str(card.model_price)
    if card.discount is not None:
        lines["discount"] = f"{card.discount} ({card.discount_entry})"
    if card.unpriced_reason:
        lines["unpriced because"] = card.unpriced_reason
    return lines
