"""The prices file is validated before it can price anything."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from featurecost.collector.pricing.overrides import Overrides, PricesFileError


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prices: [{model: gpt-4o, input_mtok: 1, output_mtok: 2, discount: 0.1}]", "not both"),
        ("prices: [{model: gpt-4o}]", "not both or neither"),
        ("prices: [{model: gpt-4o, input_mtok: 1}]", "at least input_mtok and output_mtok"),
        ("prices: [{model: gpt-4o, input_mtok: -1, output_mtok: 2}]", "prices.0.input_mtok"),
        ("prices: [{model: gpt-4o, discount: 1.5}]", "prices.0.discount"),
        ("prices: [{model: gpt-4o, input_mtok: 1, output_mtok: 2, colour: red}]", "prices.0.colour"),
        (
            "prices: [{model: gpt-4o, input_mtok: 1, output_mtok: 2, effective_from: 2026-02-01, "
            "effective_to: 2026-01-01}]",
            "effective_to must be after effective_from",
        ),
        ("deployments: [{deployment: prod}]", "deployments.0.model"),
        ("prices: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_files_are_refused_with_where_and_why(text: str, message: str) -> None:
    with pytest.raises(PricesFileError, match=r"prices\.yaml") as caught:
        Overrides.parse(text, "prices.yaml")
    assert message in str(caught.value)


def test_money_is_decimal_exactly_as_written() -> None:
    overrides = Overrides.parse("prices: [{model: m, input_mtok: '0.1', output_mtok: 0.3}]")
    (entry,) = overrides.spec.prices
    assert entry.input_mtok == Decimal("0.1")
    assert entry.output_mtok == Decimal("0.3")  # a YAML float still lands as its decimal text


def test_effective_window_and_prefix_match() -> None:
    overrides = Overrides.parse(
        "prices: [{model: 'llama-*', provider: vllm, input_mtok: 1, output_mtok: 1, "
        "effective_from: 2026-01-01, effective_to: 2026-07-01}]"
    )
    (entry,) = overrides.spec.prices
    assert entry.matches("vllm", "llama-3-70b", "", "", date(2026, 1, 1))
    assert not entry.matches("vllm", "llama-3-70b", "", "", date(2026, 7, 1))  # effective_to is exclusive
    assert not entry.matches("vllm", "llama-3-70b", "", "", date(2025, 12, 31))
    assert not entry.matches("ollama", "llama-3-70b", "", "", date(2026, 3, 1))
    assert not entry.matches("vllm", "mistral-7b", "", "", date(2026, 3, 1))


def test_data_version_changes_with_the_file() -> None:
    a = Overrides.parse("prices: [{model: m, input_mtok: 1, output_mtok: 1}]")
    b = Overrides.parse("prices: [{model: m, input_mtok: 1, output_mtok: 2}]")
    assert a.data_version.startswith("prices-file@")
    assert a.data_version != b.data_version
