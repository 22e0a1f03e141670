"""The one record every pipeline stage passes along: an LLM call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# The environment of a call whose resource names none (``deployment.environment.name``),
# and so the one reports, budgets findings and the API read unless told otherwise.
DEFAULT_ENVIRONMENT = "production"


@dataclass(slots=True)
class CallRecord:
    """One billable LLM call, normalized from whatever instrumentation emitted it.

    Token counts follow GenAI semconv meaning: ``input_tokens`` includes cache reads
    and writes, ``reasoning_tokens`` is a subset of ``output_tokens``.
    """

    trace_id: str
    span_id: str
    start_time: datetime
    end_time: datetime
    environment: str
    service_name: str
    feature: str
    tenant: str
    user_id: str
    plan: str
    root_id: str
    session_id: str
    version: str
    operation: str
    provider: str
    request_model: str
    response_model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    usage_source: str
    status: str
    error_type: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    # normalization detail (defaults keep older producers of CallRecord working)
    cache_write_1h_tokens: int = 0  # subset of cache_write_tokens written with a 1-hour TTL
    input_audio_tokens: int = 0  # subset of input_tokens
    output_audio_tokens: int = 0  # subset of output_tokens
    raw_usage: dict[str, int] = field(default_factory=dict)  # counts exactly as the span reported them
    usage_convention: str = ""  # which attribute convention the usage came from (see aliases.py)
    usage_issues: list[str] = field(default_factory=list)  # impossible usage the normalizer noticed
    service_tier: str = ""  # "batch", "flex", "priority", ... or empty for the standard tier
    client_cost_usd: Decimal | None = None  # cost the instrumentation itself claimed, kept apart
    endpoint: str = ""  # where the call went, host[:port][/path] (endpoints.py places the provider from it)
    gateway_cost_usd: Decimal | None = None  # what a gateway (OpenRouter) reported it billed
    # set by the pricing stage
    cost_usd: Decimal | None = None
    input_cost_usd: Decimal | None = None
    output_cost_usd: Decimal | None = None
    price_source: str = ""
    price_entry: str = ""
    price_data_version: str = ""
    unpriced_reason: str = ""
    cost_delta_vs_client_usd: Decimal | None = None  # computed minus client-claimed, when both exist
    # one provider call, one bill (reconcile.py): spans of one trace with the same response id
    response_id: str = ""  # the provider's id for this response, '' when the span had none
    superseded_by: str = ""  # span id of the span billed for this call; '' while this one counts
    rollup_sign: int = 1  # what this row adds to the rollups: 1 counted, 0 superseded, -1 withdrawn

    @property
    def model(self) -> str:
        """The model that served the call: the response model when the provider said."""
        return self.response_model or self.request_model
