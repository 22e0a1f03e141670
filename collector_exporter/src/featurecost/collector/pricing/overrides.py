"""The prices file: contract prices, discounts and self-hosted models that beat the public list.

A YAML file (``--prices-file`` / ``FEATURECOST_PRICES_FILE``) validated with pydantic, so a
typo fails at start-up with the line at fault instead of mispricing calls for a month.
docs/pricing.md shows the format. Dates are UTC days: ``effective_from`` inclusive,
``effective_to`` exclusive — prices change at day boundaries, which is also what lets the
pricer cache one resolution per day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from featurecost.collector.pipeline.endpoints import Endpoint

Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
PRICE_FIELDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok")


class PricesFileError(ValueError):
    """The prices file cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deployment(_Strict):
    """A deployment name (Azure OpenAI, a gateway route, ...) that stands for a real model."""

    deployment: str = Field(min_length=1)
    model: str = Field(min_length=1)
    provider: str | None = None

    def matches(self, provider: str, name: str) -> bool:
        return name.lower() == self.deployment.lower() and (self.provider is None or self.provider == provider)


class EndpointEntry(_Strict):
    """An endpoint genai-prices' URL patterns cannot place, and how to price calls to it.

    ``price_as``: a provider name (a private gateway that forwards to that provider),
    ``span`` (a pass-through proxy: the provider the span names) or ``self-hosted`` (priced
    from this file only). ``address`` is ``host``, ``host:port`` or ``host[:port]/base/path``.
    """

    address: str = Field(min_length=1)
    price_as: str = Field(min_length=1)
    note: str = ""

    def matches(self, host: str, port: int, path: str) -> bool:
        own = Endpoint.parse(self.address)
        if own.host != host or (own.port and own.port != port):
            return False
        return not own.path or path == own.path or path.startswith(f"{own.path}/")


class PriceOverride(_Strict):
    """One price entry: absolute prices per million tokens, or a discount on the next layer's price.

    ``model`` matches the normalized model name exactly, or as a prefix when it ends in ``*``.
    """

    id: str | None = None
    model: str = Field(min_length=1)
    provider: str | None = None
    tenant: str | None = None
    service_tier: str | None = None
    effective_from: date | None = None
    effective_to: date | None = None
    input_mtok: Money | None = None
    output_mtok: Money | None = None
    cache_read_mtok: Money | None = None
    cache_write_mtok: Money | None = None
    cache_write_1h_mtok: Money | None = None
    discount: Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    note: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> PriceOverride:
        has_prices = any(getattr(self, f) is not None for f in PRICE_FIELDS)
        if has_prices == (self.discount is not None):
            raise ValueError("give either prices (input_mtok, output_mtok, ...) or a discount, not both or neither")
        if has_prices and (self.input_mtok is None or self.output_mtok is None):
            raise ValueError("an absolute price needs at least input_mtok and output_mtok")
        if self.effective_from and self.effective_to and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        return self

    @property
    def is_discount(self) -> bool:
        return self.discount is not None

    @property
    def label(self) -> str:
        if self.id:
            return self.id
        scope = self.tenant or "*"
        tier = f"[{self.service_tier}]" if self.service_tier else ""
        since = f"@{self.effective_from}" if self.effective_from else ""
        return f"override:{scope}:{self.provider or '*'}/{self.model}{tier}{since}"

    def prices(self) -> dict[str, Decimal]:
        values = {f: getattr(self, f) for f in PRICE_FIELDS}
        return {k: v for k, v in values.items() if v is not None}

    def matches(self, provider: str, model: str, tenant: str, tier: str, day: date) -> bool:
        if self.tenant is not None and self.tenant != tenant:
            return False
        if self.provider is not None and self.provider != provider:
            return False
        if self.service_tier is not None and self.service_tier != tier:
            return False
        if self.effective_from is not None and day < self.effective_from:
            return False
        if self.effective_to is not None and day >= self.effective_to:
            return False
        pattern = self.model.lower()
        return model.startswith(pattern[:-1]) if pattern.endswith("*") else model == pattern


class PricesFile(_Strict):
    version: int = 1
    deployments: list[Deployment] = Field(default_factory=list)
    endpoints: list[EndpointEntry] = Field(default_factory=list)
    prices: list[PriceOverride] = Field(default_factory=list)


class Overrides:
    """A validated prices file, indexed for the pricer."""

    def __init__(self, spec: PricesFile, data_version: str) -> None:
        self.spec = spec
        self.data_version = data_version
        self.tenants = frozenset(p.tenant for p in spec.prices if p.tenant is not None)

    @classmethod
    def empty(cls) -> Overrides:
        return cls(PricesFile(), "")

    @classmethod
    def parse(cls, text: str, source: str = "<prices>") -> Overrides:
        try:
            data: Any = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise PricesFileError(f"{source}: not valid YAML: {exc}") from exc
        try:
            spec = PricesFile.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in exc.errors()
            )
            raise PricesFileError(f"{source}: {problems}") from exc
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return cls(spec, f"prices-file@{digest}")

    @classmethod
    def load(cls, path: Path) -> Overrides:
        try:
            text = path.read_text()
        except OSError as exc:
            raise PricesFileError(f"cannot read prices file {path}: {exc}") from exc
        return cls.parse(text, str(path))

    def endpoint_price_as(self, endpoint: Endpoint) -> str | None:
        """How the file says to price calls to ``endpoint`` (first matching entry), if it lists it."""
        for entry in self.spec.endpoints:
            if entry.matches(endpoint.host, endpoint.port, endpoint.path):
                return entry.price_as
        return None

    def deployment_model(self, provider: str, name: str) -> str | None:
        for deployment in self.spec.deployments:
            if deployment.matches(provider, name):
                return deployment.model
        return None

    def _candidates(self, provider: str, model: str, tenant: str, tier: str, day: date) -> Iterable[PriceOverride]:
        return (p for p in self.spec.prices if p.matches(provider, model, tenant, tier, day))

    def find(
        self, provider: str, model: str, tenant: str, tier: str, day: date, *, discount: bool, tenant_scoped: bool
    ) -> PriceOverride | None:
        """The most specific matching entry of one kind and scope (a tier-specific entry beats a general one)."""
        best: PriceOverride | None = None
        for entry in self._candidates(provider, model, tenant, tier, day):
            if entry.is_discount != discount or (entry.tenant is not None) != tenant_scoped:
                continue
            if best is None or (entry.service_tier is not None and best.service_tier is None):
                best = entry
        return best
