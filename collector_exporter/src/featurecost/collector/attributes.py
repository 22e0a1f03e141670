"""Names of the span and baggage attributes featurecost reads and writes.

GenAI names follow the OpenTelemetry GenAI semantic conventions. Where the conventions
have no name yet we use the ``featurecost.*`` prefix; docs/attributes.md lists them.
The collector carries a byte-identical copy (``featurecost/collector/attributes.py``) so that
``featurecost-collector`` installs without this distribution's runtime dependencies
(opentelemetry-instrumentation, wrapt); ``tests/test_packaging.py`` fails if the two differ,
so producer and consumer cannot drift apart.
"""

from typing import Final

# --- attribution (baggage keys == span attribute keys) ---
FEATURE: Final = "featurecost.feature"
TENANT: Final = "featurecost.tenant"
USER: Final = "user.id"
PLAN: Final = "featurecost.plan"
ROOT_ID: Final = "featurecost.root_id"
SESSION: Final = "session.id"
VERSION: Final = "featurecost.version"
EXTRA_PREFIX: Final = "featurecost."

ATTRIBUTION_KEYS: Final = (FEATURE, TENANT, USER, PLAN, ROOT_ID, SESSION, VERSION)
DEFAULT_FEATURE: Final = "unattributed"

# --- resource ---
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"
DEPLOYMENT_ENVIRONMENT_OLD: Final = "deployment.environment"
SERVICE_NAME: Final = "service.name"

# --- GenAI semantic conventions ---
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_SYSTEM: Final = "gen_ai.system"  # deprecated name of gen_ai.provider.name
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

# --- featurecost extensions (no semconv name yet) ---
USAGE_REASONING_TOKENS: Final = "featurecost.usage.reasoning_tokens"
USAGE_SOURCE: Final = "featurecost.usage.source"  # "reported" | "missing"
REQUEST_SERVICE_TIER: Final = "featurecost.request.service_tier"
RESPONSE_SERVICE_TIER: Final = "featurecost.response.service_tier"

USAGE_PARTIAL: Final = "featurecost.usage.partial"  # true: the stream ended before its final usage report
USAGE_CACHE_CREATION_5M_TOKENS: Final = "featurecost.usage.cache_creation.5m_input_tokens"
USAGE_CACHE_CREATION_1H_TOKENS: Final = "featurecost.usage.cache_creation.1h_input_tokens"
USAGE_INPUT_AUDIO_TOKENS: Final = "featurecost.usage.input_audio_tokens"
USAGE_OUTPUT_AUDIO_TOKENS: Final = "featurecost.usage.output_audio_tokens"
REQUEST_STREAM: Final = "featurecost.request.stream"
# Set on another instrumentation's LLM span (a framework's, OpenLLMetry's, OpenInference's)
# that encloses a featurecost span for the same call: the featurecost span bills it.
SUPERSEDED: Final = "featurecost.superseded"
# A cost the app computed itself; the collector keeps it apart from its own and reconciles.
CLIENT_COST_USD: Final = "featurecost.client.cost_usd"
# What a gateway (OpenRouter) reports it billed for the call, and which upstream provider served it.
GATEWAY_COST_USD: Final = "featurecost.gateway.cost_usd"
GATEWAY_UPSTREAM_PROVIDER: Final = "featurecost.gateway.upstream_provider"
REQUEST_UNATTRIBUTED: Final = "featurecost.request.unattributed"  # strict mode "flag": no feature was set

USAGE_REPORTED: Final = "reported"
USAGE_MISSING: Final = "missing"

# --- budget guard (featurecost.instrumentation.guard) ---
BUDGET_ESTIMATE_USD: Final = "featurecost.budget.estimate_usd"  # pre-flight estimate, a decimal string
BUDGET_DECISION: Final = "featurecost.budget.decision"  # allow | soft | deny, as the guard saw it
BUDGET_DEGRADED: Final = "featurecost.budget.degraded"  # true when the soft-limit callback changed the request

# --- savings finder (docs/attributes.md) ---
# Whether a user waits for the call: declared with featurecost.attribute(latency=...) (baggage,
# like the attribution keys) or inferred "background" when the call starts with no enclosing span.
LATENCY: Final = "featurecost.latency"
LATENCY_BATCH: Final = "batch"
LATENCY_INTERACTIVE: Final = "interactive"
LATENCY_BACKGROUND: Final = "background"
# Keyed fingerprint of the leading system/instruction block and its length class (no text).
PROMPT_PREFIX_HASH: Final = "featurecost.prompt.prefix_hash"
PROMPT_PREFIX_CLASS: Final = "featurecost.prompt.prefix_class"
