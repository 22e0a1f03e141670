"""The alias table: every attribute convention the collector understands, in one place.

Apps are instrumented by whatever they already use — our instrumentors, the official
OpenTelemetry GenAI instrumentations, OpenLLMetry (Traceloop), OpenInference (Arize),
OpenLIT or the Vercel AI SDK. Each names the same facts differently; the normalizer reads
them through these tables so a new convention is a new row, not new code.

Sources of the names (checked against the projects' own constant modules):
- GenAI semconv: open-telemetry/semantic-conventions ``docs/gen-ai/gen-ai-spans.md``
  (``gen_ai.system`` and ``gen_ai.usage.prompt_tokens``/``completion_tokens`` are its
  deprecated names).
- OpenLLMetry: ``opentelemetry.semconv_ai.SpanAttributes`` (package
  opentelemetry-semantic-conventions-ai): ``gen_ai.usage.cache_read_input_tokens``,
  ``llm.usage.total_tokens``, ``traceloop.association.properties.*``.
- OpenInference: ``openinference.semconv.trace.SpanAttributes``: ``llm.token_count.*``,
  ``llm.model_name``, ``llm.provider``/``llm.system``, ``session.id``, ``user.id``,
  ``metadata`` (a JSON object), ``llm.cost.total``.
- OpenLIT: GenAI semconv names plus ``gen_ai.usage.cost`` (its own cost estimate).
- Logfire (``logfire-sdk`` 5.4, ``llm_providers/semconv.py``): GenAI semconv names (cache folded into
  input), ``operation.cost`` (its genai-prices estimate), ``gen_ai.usage.raw`` (not read).
- The anthropic SDK's own tracing (``anthropic/_tracing.py``): GenAI semconv names plus
  ``anthropic.usage.cache_creation.ephemeral_1h_input_tokens`` and ``anthropic.*.service_tier``.
- Vercel AI SDK telemetry (ai-sdk.dev/docs/ai-sdk-core/telemetry): ``ai.model.id``,
  ``ai.model.provider``, ``ai.response.model``, ``ai.usage.promptTokens`` (v4) /
  ``ai.usage.inputTokens`` (v5), ``ai.telemetry.metadata.*``, ``ai.telemetry.functionId``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from featurecost.collector import attributes as attrs

# featurecost's own names, as the instrumentation emits them (one definition: attributes.py)
USAGE_CACHE_WRITE_1H_TOKENS: Final = attrs.USAGE_CACHE_CREATION_1H_TOKENS
USAGE_INPUT_AUDIO_TOKENS: Final = attrs.USAGE_INPUT_AUDIO_TOKENS
USAGE_OUTPUT_AUDIO_TOKENS: Final = attrs.USAGE_OUTPUT_AUDIO_TOKENS
CLIENT_COST_USD: Final = attrs.CLIENT_COST_USD

CacheSemantics = Literal["inclusive", "provider"]


@dataclass(frozen=True, slots=True)
class UsageConvention:
    """Where one convention keeps each usage count; the first name present wins.

    ``cache_semantics`` says whether the convention's counts have semconv meaning
    (``inclusive``: input includes cache reads and writes, output includes reasoning) or pass
    the provider's own numbers through (``provider``: Anthropic and Bedrock-Claude count cache
    *outside* input_tokens, Gemini counts thoughts *outside* candidates/output tokens).
    """

    name: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    cache_read: tuple[str, ...] = ()
    cache_write: tuple[str, ...] = ()
    reasoning: tuple[str, ...] = ()
    input_audio: tuple[str, ...] = ()
    output_audio: tuple[str, ...] = ()
    total: tuple[str, ...] = ()
    cache_semantics: CacheSemantics = "inclusive"
    requires: tuple[str, ...] = ()  # when set, the convention applies only if one of these is present
    markers: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "markers", self.requires or (*self.input, *self.output))

    def applies(self, span_attributes: dict[str, object]) -> bool:
        return any(map(span_attributes.__contains__, self.markers))


_REASONING_ANY = (
    "gen_ai.usage.reasoning.output_tokens",  # semconv 1.38+
    attrs.USAGE_REASONING_TOKENS,
    "gen_ai.usage.reasoning_tokens",  # OpenLLMetry
    "llm.usage.reasoning_tokens",
)

# Order matters: a span carrying several conventions is read through the first that matches.
# The AI SDK comes first: its provider-call spans also carry gen_ai.usage.* copies of the
# provider's raw counts, without the cache counts that only ai.usage.* has.
USAGE_CONVENTIONS: Final = (
    UsageConvention(
        # AI SDK 6 reports gross input (cache included, every provider) with a breakdown.
        name="vercel-ai-sdk",
        input=("ai.usage.inputTokens",),
        output=("ai.usage.outputTokens",),
        cache_read=("ai.usage.inputTokenDetails.cacheReadTokens", "ai.usage.cachedInputTokens"),
        cache_write=("ai.usage.inputTokenDetails.cacheWriteTokens",),
        reasoning=("ai.usage.outputTokenDetails.reasoningTokens", "ai.usage.reasoningTokens"),
        total=("ai.usage.totalTokens",),
        requires=(
            "ai.usage.inputTokenDetails.noCacheTokens",
            "ai.usage.inputTokenDetails.cacheReadTokens",
            "ai.usage.inputTokenDetails.cacheWriteTokens",
        ),
    ),
    UsageConvention(
        # AI SDK 4 and 5 pass each provider's own counts through: cache semantics follow the provider.
        name="vercel-ai-sdk-v5",
        input=("ai.usage.inputTokens", "ai.usage.promptTokens"),
        output=("ai.usage.outputTokens", "ai.usage.completionTokens"),
        cache_read=("ai.usage.cachedInputTokens",),
        reasoning=("ai.usage.reasoningTokens",),
        total=("ai.usage.totalTokens",),
        cache_semantics="provider",
    ),
    UsageConvention(
        name="genai-semconv",
        input=(attrs.GEN_AI_USAGE_INPUT_TOKENS,),
        output=(attrs.GEN_AI_USAGE_OUTPUT_TOKENS,),
        cache_read=(attrs.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, "gen_ai.usage.cache_read_input_tokens"),
        cache_write=(
            attrs.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            "gen_ai.usage.cache_write.input_tokens",  # opentelemetry-util-genai >= 1.3
            "gen_ai.usage.cache_creation_input_tokens",
        ),
        reasoning=_REASONING_ANY,
        input_audio=(USAGE_INPUT_AUDIO_TOKENS, "gen_ai.usage.audio.input_tokens"),
        output_audio=(USAGE_OUTPUT_AUDIO_TOKENS, "gen_ai.usage.audio.output_tokens"),
        total=("gen_ai.usage.total_tokens", "llm.usage.total_tokens"),
    ),
    UsageConvention(
        # deprecated semconv names, still emitted by OpenLLMetry < 0.40 and older OpenLIT
        name="genai-semconv-deprecated",
        input=("gen_ai.usage.prompt_tokens",),
        output=("gen_ai.usage.completion_tokens",),
        cache_read=("gen_ai.usage.cache_read_input_tokens", attrs.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        cache_write=("gen_ai.usage.cache_creation_input_tokens", attrs.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
        reasoning=_REASONING_ANY,
        total=("llm.usage.total_tokens", "gen_ai.usage.total_tokens"),
    ),
    UsageConvention(
        name="openinference",
        input=("llm.token_count.prompt",),
        output=("llm.token_count.completion",),
        cache_read=("llm.token_count.prompt_details.cache_read",),
        cache_write=("llm.token_count.prompt_details.cache_write",),
        reasoning=("llm.token_count.completion_details.reasoning",),
        input_audio=("llm.token_count.prompt_details.audio",),
        output_audio=("llm.token_count.completion_details.audio",),
        total=("llm.token_count.total",),
    ),
)

# --- which spans can be LLM calls ---
# A span with none of these keys is never an LLM call (normalize.is_llm_span decides among the
# rest). The OpenTelemetry Collector filter in deploy/otel-collector/config.yaml is generated
# from this tuple (otel_filter.py), so the two cannot disagree about what reaches us.
LLM_SPAN_MARKERS: Final = (
    attrs.GEN_AI_OPERATION_NAME,  # GenAI semconv, OpenLLMetry, OpenLIT, Logfire, the anthropic SDK
    attrs.GEN_AI_PROVIDER_NAME,
    attrs.GEN_AI_SYSTEM,  # deprecated semconv name, older OpenLLMetry/OpenLIT
    "openinference.span.kind",  # OpenInference: LLM / EMBEDDING spans carry no gen_ai.* key
    "ai.operationId",  # Vercel AI SDK: ai.generateText.doGenerate, ...
)

# --- which provider and model ---
PROVIDER_KEYS: Final = (
    attrs.GEN_AI_PROVIDER_NAME,
    attrs.GEN_AI_SYSTEM,
    "llm.provider",
    "llm.system",
    "ai.model.provider",
)
# OpenInference keeps request parameters as one JSON object; the normalizer flattens the
# ones it reads (the request model and the service tier) to ``llm.invocation_parameters.<key>``.
OPENINFERENCE_INVOCATION_PARAMETERS: Final = ("llm.invocation_parameters", "embedding.invocation_parameters")
INVOCATION_PARAMETERS_READ: Final = ("model", "service_tier")
REQUEST_MODEL_KEYS: Final = (
    attrs.GEN_AI_REQUEST_MODEL,
    "llm.request.model_name",
    "ai.model.id",
    "llm.invocation_parameters.model",
    "embedding.invocation_parameters.model",
)
RESPONSE_MODEL_KEYS: Final = (
    attrs.GEN_AI_RESPONSE_MODEL,
    "llm.response.model_name",
    "llm.model_name",
    "embedding.model_name",  # OpenInference EMBEDDING spans
    "ai.response.model",
)
OPERATION_KEYS: Final = (attrs.GEN_AI_OPERATION_NAME, "llm.request.type")
# the provider's response id: spans of one trace reporting the same one are one call
RESPONSE_ID_KEYS: Final = (attrs.GEN_AI_RESPONSE_ID, "ai.response.id")

# Provider names as instrumentations spell them → the GenAI semconv ``gen_ai.provider.name`` value.
PROVIDER_ALIASES: Final = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure.ai.openai": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "azure-openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "amazon-bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "google.generative-ai": "gcp.gemini",
    "gcp.gemini": "gcp.gemini",
    "vertexai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "google.vertex": "gcp.vertex_ai",
    "gcp.vertex_ai": "gcp.vertex_ai",
    "gcp.gen_ai": "gcp.gen_ai",
    "cohere": "cohere",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "mistral_ai": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "x_ai": "x_ai",
    "perplexity": "perplexity",
    # LiteLLM's provider names (featurecost's LiteLLM instrumentor records what LiteLLM resolved)
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "text-completion-openai": "openai",
    "azure_ai": "azure.ai.openai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "cohere_chat": "cohere",
    "bedrock_converse": "aws.bedrock",
}

# Our provider names whose genai-prices provider id differs (the rest are the same word).
GENAI_PRICES_PROVIDER_IDS: Final = {
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
}

# Providers whose APIs count cache reads/writes outside input_tokens (additive) and Google,
# whose thoughts tokens are outside candidates (output) tokens. Applied to conventions that pass
# raw provider counts through; semconv-following instrumentations already fold them in.
CACHE_ADDITIVE_PROVIDERS: Final = frozenset({"anthropic", "aws.bedrock"})
THOUGHTS_OUTSIDE_OUTPUT_PROVIDERS: Final = frozenset({"gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai"})
# xAI's OpenAI-compatible API reports ``completion_tokens`` without the reasoning tokens
# (``total_tokens`` = prompt + completion + reasoning; genai-prices' x-ai extractor adds them).
# Every convention passes those numbers through as the SDK returned them, so this applies to
# all of them; a reported total still settles it.
REASONING_OUTSIDE_COMPLETION_PROVIDERS: Final = frozenset({"x_ai"})

# --- service tier / batch ---
SERVICE_TIER_KEYS: Final = (
    attrs.RESPONSE_SERVICE_TIER,
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
    "anthropic.response.service_tier",  # the anthropic SDK's own spans
    attrs.REQUEST_SERVICE_TIER,
    "openai.request.service_tier",
    "gen_ai.openai.request.service_tier",
    "anthropic.request.service_tier",
    "llm.invocation_parameters.service_tier",  # OpenInference: only in the request parameters
)
# 1-hour-TTL cache writes (a part of the cache writes): ours, and the anthropic SDK's own spans'.
CACHE_WRITE_1H_KEYS: Final = (USAGE_CACHE_WRITE_1H_TOKENS, "anthropic.usage.cache_creation.ephemeral_1h_input_tokens")
# Tier values that mean "the standard price".
STANDARD_TIERS: Final = frozenset({"", "default", "auto", "standard", "on_demand", "standard_only"})

# --- cost the client computed itself (kept apart from ours, reconciled) ---
# OpenLIT: gen_ai.usage.cost; OpenInference: llm.cost.total; Logfire: operation.cost (genai-prices' price)
CLIENT_COST_KEYS: Final = (CLIENT_COST_USD, "gen_ai.usage.cost", "llm.cost.total", "operation.cost")

# --- where the call went: the provider is placed from the endpoint (endpoints.py) ---
SERVER_ADDRESS_KEYS: Final = (attrs.SERVER_ADDRESS,)
SERVER_PORT_KEYS: Final = (attrs.SERVER_PORT,)
# The whole base URL, where an instrumentation records it (OpenLLMetry: gen_ai.openai.api_base).
BASE_URL_KEYS: Final = ("gen_ai.openai.api_base", "url.full")

# --- cost a gateway reported for the call (OpenRouter's usage.cost): what the provider bills ---
GATEWAY_COST_KEYS: Final = (attrs.GATEWAY_COST_USD,)

# --- attribution: featurecost name → other conventions' names, first present wins ---
_TRACELOOP = "traceloop.association.properties."
_VERCEL = "ai.telemetry.metadata."
ATTRIBUTION_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    attrs.FEATURE: (
        attrs.FEATURE,
        f"{_TRACELOOP}feature",
        f"{_VERCEL}feature",
        "metadata.feature",
        "ai.telemetry.functionId",
        "traceloop.workflow.name",
    ),
    attrs.TENANT: (
        attrs.TENANT,
        f"{_TRACELOOP}tenant",
        f"{_TRACELOOP}tenant_id",
        f"{_VERCEL}tenant",
        f"{_VERCEL}tenantId",
        "metadata.tenant",
        "metadata.tenant_id",
    ),
    attrs.USER: (
        attrs.USER,
        f"{_TRACELOOP}user_id",
        f"{_VERCEL}userId",
        "langfuse.user.id",
        "enduser.id",
        "metadata.user_id",
    ),
    attrs.SESSION: (
        attrs.SESSION,
        f"{_TRACELOOP}session_id",
        f"{_VERCEL}sessionId",
        "langfuse.session.id",
        "gen_ai.conversation.id",
        "metadata.session_id",
    ),
    attrs.PLAN: (attrs.PLAN, f"{_TRACELOOP}plan", f"{_VERCEL}plan", "metadata.plan"),
    attrs.VERSION: (attrs.VERSION, f"{_TRACELOOP}version", f"{_VERCEL}version", "metadata.version"),
}
# The AI SDK reports Anthropic cache writes only in its provider metadata (a JSON object).
VERCEL_PROVIDER_METADATA: Final = "ai.response.providerMetadata"

# OpenInference keeps free-form metadata as one JSON object string under this key;
# the normalizer flattens it to ``metadata.<key>`` before reading the aliases above.
OPENINFERENCE_METADATA: Final = "metadata"


def keys_read() -> frozenset[str]:
    """Every span attribute name the normalizer reads (besides the ``featurecost.*`` prefix)."""
    keys: set[str] = set()
    for convention in USAGE_CONVENTIONS:
        for group in (
            convention.input,
            convention.output,
            convention.cache_read,
            convention.cache_write,
            convention.reasoning,
            convention.input_audio,
            convention.output_audio,
            convention.total,
            convention.requires,
        ):
            keys.update(group)
    for group in (PROVIDER_KEYS, REQUEST_MODEL_KEYS, RESPONSE_MODEL_KEYS, OPERATION_KEYS, SERVICE_TIER_KEYS):
        keys.update(group)
    keys.update(CLIENT_COST_KEYS)
    keys.update(RESPONSE_ID_KEYS)
    for group in (SERVER_ADDRESS_KEYS, SERVER_PORT_KEYS, BASE_URL_KEYS, GATEWAY_COST_KEYS):
        keys.update(group)
    for names in ATTRIBUTION_ALIASES.values():
        keys.update(names)
    keys.update((OPENINFERENCE_METADATA, VERCEL_PROVIDER_METADATA, *CACHE_WRITE_1H_KEYS))
    keys.update(OPENINFERENCE_INVOCATION_PARAMETERS)
    return frozenset(keys)
