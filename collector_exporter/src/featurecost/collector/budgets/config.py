"""The budgets file: YAML, validated with pydantic, loaded once when the collector starts.

Example (docs/budgets.md has the full reference)::

    timezone: Europe/Berlin
    budgets:
      - name: support-bot-daily
        scope: {feature: support-bot, environment: production}
        period: day
        limit_usd: "50"
        soft_threshold: 80%
      - name: tenant-monthly
        scope: {tenant: "*"}          # every tenant on its own
        period: month
        limit_usd: "200"
    alerts:
      webhooks:
        - url: https://hooks.slack.com/services/...
          format: slack
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from featurecost.collector.budgets.periods import PeriodKind

EACH = "*"  # a scope value meaning "every value of this dimension, each on its own"
SCOPE_DIMENSIONS = ("feature", "tenant", "user", "environment")


class BudgetsFileError(ValueError):
    """The budgets file cannot be used; the message says where and why."""


def _fraction(value: Any) -> Any:
    # "80%" and 0.8 mean the same; floats go through str so 0.1 stays exactly 0.1.
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return Decimal(value.strip()[:-1].strip()) / 100
        except InvalidOperation as exc:
            raise ValueError(f"not a percentage: {value!r}") from exc
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def _money(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    return value


Fraction = Annotated[Decimal, BeforeValidator(_fraction), Field(gt=0)]
Money = Annotated[Decimal, BeforeValidator(_money), Field(gt=0)]


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


class Scope(BaseModel):
    """Which calls count. Unset = any value; ``"*"`` = each value separately."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str | None = None
    tenant: str | None = None
    user: str | None = None
    environment: str | None = None

    def fixed(self) -> dict[str, str]:
        return {d: v for d in SCOPE_DIMENSIONS if (v := getattr(self, d)) is not None and v != EACH}

    def each(self) -> tuple[str, ...]:
        return tuple(d for d in SCOPE_DIMENSIONS if getattr(self, d) == EACH)

    def describe(self) -> str:
        parts = [f"{d}={getattr(self, d)}" for d in SCOPE_DIMENSIONS if getattr(self, d) is not None]
        return ", ".join(parts) or "all calls"


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    scope: Scope = Scope()
    period: PeriodKind
    limit_usd: Money
    soft_threshold: Fraction = Decimal("0.8")
    hard_threshold: Fraction = Decimal(1)
    # At the hard level: deny (the guard raises) or only alert and answer "soft".
    enforce: bool = True
    timezone: str | None = None  # falls back to the file's timezone
    week_start: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "monday"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @model_validator(mode="after")
    def _thresholds(self) -> Budget:
        if self.soft_threshold > self.hard_threshold:
            raise ValueError(
                f"soft_threshold ({self.soft_threshold:%}) must not exceed hard_threshold ({self.hard_threshold:%})"
            )
        return self

    @property
    def soft_usd(self) -> Decimal:
        return self.limit_usd * self.soft_threshold

    @property
    def hard_usd(self) -> Decimal:
        return self.limit_usd * self.hard_threshold


class WebhookFormat(StrEnum):
    json = "json"
    slack = "slack"


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    format: WebhookFormat = WebhookFormat.json
    headers: dict[str, str] = Field(default_factory=dict)


class RuleSwitches(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    budgets: bool = True
    regressions: bool = True
    anomalous_sessions: bool = True


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: list[Webhook] = Field(default_factory=list)
    rules: RuleSwitches = RuleSwitches()
    max_attempts: int = Field(default=5, ge=1)


class BudgetsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    budgets: list[Budget] = Field(default_factory=list)
    alerts: AlertsConfig = AlertsConfig()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)

    @model_validator(mode="after")
    def _unique_names(self) -> BudgetsConfig:
        seen: set[str] = set()
        for budget in self.budgets:
            if budget.name in seen:
                raise ValueError(f"budget name {budget.name!r} is used twice")
            seen.add(budget.name)
        return self

    def zone_of(self, budget: Budget) -> str:
        return budget.timezone or self.timezone


def parse_budgets(text: str, source: str = "<budgets>") -> BudgetsConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BudgetsFileError(f"{source}: not valid YAML: {exc}") from exc
    try:
        return BudgetsConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise BudgetsFileError(f"{source}: {problems}") from exc


def load_budgets(path: Path) -> BudgetsConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise BudgetsFileError(f"cannot read budgets file {path}: {exc.strerror or exc}") from exc
    return parse_budgets(text, str(path))
