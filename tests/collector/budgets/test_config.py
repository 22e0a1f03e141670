"""The budgets file: what it accepts, and how it says what is wrong."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from featurecost.collector.budgets.config import BudgetsFileError, load_budgets, parse_budgets
from featurecost.collector.budgets.periods import PeriodKind

EXAMPLE = """
timezone: Europe/Berlin
budgets:
  - name: support-bot-daily
    scope: {feature: support-bot, environment: production}
    period: day
    limit_usd: 12.5
    soft_threshold: 80%
  - name: tenant-monthly
    scope: {tenant: "*"}
    period: month
    timezone: America/New_York
    limit_usd: "200"
    soft_threshold: 0.9
    hard_threshold: 110%
    enforce: false
alerts:
  webhooks:
    - url: http://127.0.0.1:9/hook
      format: slack
"""


def test_example_parses_with_exact_money_and_fractions() -> None:
    config = parse_budgets(EXAMPLE)
    daily, monthly = config.budgets
    assert daily.limit_usd == Decimal("12.5")
    assert daily.soft_threshold == Decimal("0.8")
    assert daily.soft_usd == Decimal("10.0")
    assert daily.hard_usd == Decimal("12.5")
    assert daily.period is PeriodKind.day
    assert config.zone_of(daily) == "Europe/Berlin"
    assert daily.scope.fixed() == {"feature": "support-bot", "environment": "production"}
    assert monthly.scope.each() == ("tenant",)
    assert config.zone_of(monthly) == "America/New_York"
    assert monthly.hard_usd == Decimal("220")
    assert monthly.enforce is False
    assert config.alerts.webhooks[0].format.value == "slack"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("budgets: [{name: a, period: fortnight, limit_usd: 1}]", "budgets.0.period"),
        ("budgets: [{name: a, period: day, limit_usd: -1}]", "budgets.0.limit_usd"),
        ("budgets: [{name: a, period: day, limit_usd: 1, timezone: Mars/Olympus}]", "unknown IANA time zone"),
        (
            "budgets: [{name: a, period: day, limit_usd: 1, soft_threshold: 90%, hard_threshold: 80%}]",
            "must not exceed",
        ),
        ("budgets: [{name: a, period: day, limit_usd: 1, scope: {team: x}}]", "budgets.0.scope.team"),
        ("budgets: [{name: a, period: day, limit_usd: 1}, {name: a, period: week, limit_usd: 2}]", "used twice"),
        ("budgets: [{name: a, period: day, limit_usd: 1, soft_threshold: lots%}]", "not a percentage"),
        (
            "budgets: [{name: a, period: day, limit_usd: 1}]\nalerts: {webhooks: [{url: ftp://x}]}",
            "alerts.webhooks.0.url",
        ),
        ("budgets: [name: a", "not valid YAML"),
    ],
)
def test_bad_files_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(BudgetsFileError, match=message):
        parse_budgets(text, "budgets.yaml")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BudgetsFileError, match="cannot read budgets file"):
        load_budgets(tmp_path / "nope.yaml")


def test_empty_file_means_no_budgets(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("")
    assert load_budgets(path).budgets == []
