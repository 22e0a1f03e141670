"""The launcher (`opentelemetry-instrument`) finds the SDK instrumentors through entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

from featurecost.instrumentation.bedrock import BedrockInstrumentor
from featurecost.instrumentation.cohere import CohereInstrumentor
from featurecost.instrumentation.google_genai import GoogleGenAIInstrumentor
from featurecost.instrumentation.litellm import LiteLLMInstrumentor
from featurecost.instrumentation.mistralai import MistralAIInstrumentor

REGISTERED = {
    "featurecost_google_genai": GoogleGenAIInstrumentor,
    "featurecost_bedrock": BedrockInstrumentor,
    "featurecost_mistralai": MistralAIInstrumentor,
    "featurecost_cohere": CohereInstrumentor,
    "featurecost_litellm": LiteLLMInstrumentor,
}


@pytest.mark.parametrize(("name", "instrumentor"), REGISTERED.items())
def test_entry_point_loads_the_instrumentor_and_its_sdk_range_matches(name: str, instrumentor: type) -> None:
    found = {ep.name: ep for ep in entry_points(group="opentelemetry_instrumentor")}
    assert found[name].load() is instrumentor
    # the launcher skips an instrumentor whose SDK range the installed SDK does not satisfy
    assert get_dependency_conflicts(instrumentor().instrumentation_dependencies()) is None
