"""Fixtures for the instrumentation tests: instrumented real SDKs against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from featurecost.instrumentation import attribution
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Spans


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[Spans]:
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    AnthropicInstrumentor().instrument(tracer_provider=spans.provider)
    yield spans
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()


@pytest.fixture(autouse=True)
def default_attribution_settings() -> Iterator[None]:
    """Tests that change ``featurecost.configure`` must not leak into the next test."""
    saved = (attribution.settings.strict, attribution.settings.extra_keys)
    saved_caps = (attribution.settings.max_value_length, attribution.settings.max_extra_keys)
    yield
    attribution.settings.strict, attribution.settings.extra_keys = saved
    attribution.settings.max_value_length, attribution.settings.max_extra_keys = saved_caps
