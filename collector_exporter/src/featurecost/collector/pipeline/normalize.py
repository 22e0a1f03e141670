"""Normalize: keep the LLM spans of an OTLP request and map each to a ``CallRecord``.

Non-LLM spans (HTTP, DB, framework spans) are dropped here; they carry no cost.
A span is an LLM call when it names a GenAI operation or provider, is an OpenInference
``LLM``/``EMBEDDING`` span, or is a Vercel AI SDK provider call (``doGenerate``/``doStream``).

Every convention in ``aliases.py`` maps to one record with GenAI semconv meaning
(input includes cache reads and writes, reasoning is inside output). The counts exactly
as the span reported them are kept in ``raw_usage`` so the mapping can be audited, and
usage that cannot be true (cache larger than input, totals that do not add up) is fixed
the one way the provider's semantics allow and flagged in ``usage_issues``.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from featurecost.collector import attributes as attrs
from featurecost.collector.pipeline import aliases, endpoints
from featurecost.collector.pipeline.records import DEFAULT_ENVIRONMENT, CallRecord

_LLM_MARKERS = (attrs.GEN_AI_OPERATION_NAME, attrs.GEN_AI_PROVIDER_NAME, attrs.GEN_AI_SYSTEM)
# Operations that bill tokens; tool executions and agent wrappers are not calls.
_BILLABLE_OPERATIONS = {"chat", "text_completion", "generate_content", "embeddings", "responses", "completion", ""}
_OPENINFERENCE_KIND = "openinference.span.kind"
_OPENINFERENCE_OPERATIONS = {"LLM": "chat", "EMBEDDING": "embeddings"}
# The AI SDK wraps each provider call (doGenerate/doStream/doEmbed) in an outer span that
# repeats the usage; only the inner span is the billable call.
_VERCEL_OPERATION_ID = "ai.operationId"
_VERCEL_CALL_SUFFIXES = (".doGenerate", ".doStream", ".doEmbed")
# A span without any of these keys cannot be an LLM call.
_CANDIDATE_KEYS = frozenset(aliases.LLM_SPAN_MARKERS)
# Everything the normalizer reads; other attributes (prompts, tool schemas...) are never decoded.
_KEYS_READ = aliases.keys_read() | {_OPENINFERENCE_KIND, _VERCEL_OPERATION_ID, attrs.ROOT_ID, attrs.ERROR_TYPE}
# featurecost.* keys that describe the call itself rather than attribute it
_NOT_EXTRAS = ("featurecost.usage.", "featurecost.request.", "featurecost.response.", "featurecost.client.")


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def attribute_map(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in key_values:
        value = kv.value
        kind = value.WhichOneof("value")
        # scalars inline: this runs for every attribute of every span the collector receives
        out[kv.key] = getattr(value, kind) if kind in _SCALARS else any_value(value)
    return out


def read_attributes(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    """The span attributes the normalizer reads, decoded; the rest are skipped undecoded."""
    out: dict[str, Any] = {}
    keys_read, scalars = _KEYS_READ, _SCALARS  # locals: this loop runs for every attribute received
    for kv in key_values:
        key = kv.key
        if key in keys_read or key.startswith("featurecost."):
            value = kv.value
            kind = value.WhichOneof("value")
            out[key] = getattr(value, kind) if kind in scalars else any_value(value)
    return out


def _as_str(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(unix_nano: int) -> datetime:
    return _EPOCH + timedelta(0, 0, unix_nano // 1000)  # positional: a keyword costs a quarter more


def is_llm_span(span_attributes: dict[str, Any]) -> bool:
    if span_attributes.get(attrs.SUPERSEDED) is True:
        # another instrumentation's span around a featurecost span: that one bills the call
        return False
    vercel_operation = span_attributes.get(_VERCEL_OPERATION_ID)
    if vercel_operation is not None:
        return _as_str(vercel_operation).endswith(_VERCEL_CALL_SUFFIXES)
    if _as_str(span_attributes.get(_OPENINFERENCE_KIND)) in _OPENINFERENCE_OPERATIONS:
        return True
    operation_name, provider_name, system = _LLM_MARKERS
    if operation_name not in span_attributes and provider_name not in span_attributes and system not in span_attributes:
        return False
    return _operation(span_attributes) in _BILLABLE_OPERATIONS


def _operation(a: dict[str, Any]) -> str:
    vercel_operation = _as_str(a.get(_VERCEL_OPERATION_ID))
    if vercel_operation:
        return "embeddings" if vercel_operation.endswith(".doEmbed") else "chat"
    for key in aliases.OPERATION_KEYS:
        if key in a:
            return _as_str(a[key])
    return _OPENINFERENCE_OPERATIONS.get(_as_str(a.get(_OPENINFERENCE_KIND)), "")


def _first(a: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = a.get(key)
        if value is not None and value != "":
            return value
    return None


def normalize_provider(value: str) -> str:
    """The GenAI semconv provider name for what an instrumentation called the provider."""
    name = value.strip().lower()
    if not name:
        return ""
    if name in aliases.PROVIDER_ALIASES:
        return aliases.PROVIDER_ALIASES[name]
    # Vercel AI SDK spells it "<provider>.<api>", e.g. "openai.chat", "anthropic.messages".
    head = name.split(".", 1)[0]
    return aliases.PROVIDER_ALIASES.get(head, name)


def _json_object(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, str) or not raw.startswith("{"):
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested past the parser's depth
        return None
    return value if isinstance(value, dict) else None


def _flatten_metadata(a: dict[str, Any]) -> None:
    """OpenInference's JSON-object attributes as the flat keys the alias table names."""
    metadata = _json_object(a.get(aliases.OPENINFERENCE_METADATA))
    if metadata is not None:
        for key, value in metadata.items():
            a.setdefault(f"metadata.{key}", value if isinstance(value, str) else json.dumps(value))
    for name in aliases.OPENINFERENCE_INVOCATION_PARAMETERS:
        parameters = _json_object(a.get(name))
        if parameters is None:
            continue
        for key in aliases.INVOCATION_PARAMETERS_READ:
            value = parameters.get(key)
            if isinstance(value, str) and value:
                a.setdefault(f"{name}.{key}", value)


def _needs_flattening(keys: Iterable[str]) -> bool:
    return any(
        key == aliases.OPENINFERENCE_METADATA or key in aliases.OPENINFERENCE_INVOCATION_PARAMETERS for key in keys
    )


class _Usage:
    """Token counts with GenAI semconv meaning, plus what was reported and what looked wrong."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "convention",
        "input",
        "input_audio",
        "issues",
        "output",
        "output_audio",
        "raw",
        "reasoning",
        "reported",
    )

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = self.cache_write_1h = 0
        self.reasoning = self.input_audio = self.output_audio = 0
        self.raw: dict[str, int] = {}
        self.issues: list[str] = []
        self.convention = ""
        self.reported = False


def _count(a: dict[str, Any], keys: tuple[str, ...], usage: _Usage) -> int | None:
    for key in keys:
        if key not in a:
            continue
        value = a[key]
        if type(value) is int and value >= 0:  # the usual case, first
            usage.raw[key] = value
            return value
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            usage.issues.append(f"{key}={value!r} is not a token count")
            continue
        try:
            number = float(value)
        except ValueError:
            usage.issues.append(f"{key}={value!r} is not a token count")
            continue
        if number < 0 or not number.is_integer():
            usage.issues.append(f"{key}={value!r} is not a token count")
            continue
        usage.raw[key] = int(number)
        return int(number)
    return None


def usage_convention(a: dict[str, Any]) -> aliases.UsageConvention | None:
    """The first convention whose names the span uses (presence of keys alone decides)."""
    return next((c for c in aliases.USAGE_CONVENTIONS if c.applies(a)), None)


def _read_usage(a: dict[str, Any], provider: str, convention: aliases.UsageConvention | None) -> _Usage:
    usage = _Usage()
    if convention is None:
        return usage
    usage.convention = convention.name
    input_raw = _count(a, convention.input, usage)
    output_raw = _count(a, convention.output, usage)
    usage.reported = input_raw is not None or output_raw is not None
    input_raw, output_raw = input_raw or 0, output_raw or 0
    cache_read = _count(a, convention.cache_read, usage) or 0
    cache_write = _count(a, convention.cache_write, usage) or 0
    if convention.name == "vercel-ai-sdk-v5" and not cache_write:
        cache_write = _vercel_cache_write(a, usage)
    cache_write_1h = _count(a, aliases.CACHE_WRITE_1H_KEYS, usage) or 0
    reasoning = _count(a, convention.reasoning, usage) or 0
    total = _count(a, convention.total, usage)
    usage.input_audio = _count(a, convention.input_audio, usage) or 0
    usage.output_audio = _count(a, convention.output_audio, usage) or 0

    # Cache: semconv counts it inside input; Anthropic/Bedrock report it outside.
    input_tokens = input_raw
    if convention.cache_semantics == "provider" and provider in aliases.CACHE_ADDITIVE_PROVIDERS:
        input_tokens = input_raw + cache_read + cache_write
    elif cache_read + cache_write > input_raw:
        usage.issues.append(
            f"cache tokens ({cache_read} read + {cache_write} write) exceed input tokens ({input_raw}); "
            "counted as additive to input"
        )
        input_tokens = input_raw + cache_read + cache_write
    if cache_write_1h > cache_write:
        usage.issues.append(f"1h cache writes ({cache_write_1h}) exceed cache writes ({cache_write}); capped")
        cache_write_1h = cache_write

    # Reasoning: semconv counts it inside output; Gemini's raw counts keep thoughts outside.
    output_tokens = output_raw
    if reasoning:
        thoughts_outside = (
            convention.cache_semantics == "provider" and provider in aliases.THOUGHTS_OUTSIDE_OUTPUT_PROVIDERS
        ) or provider in aliases.REASONING_OUTSIDE_COMPLETION_PROVIDERS
        if total is not None:
            # A reported total settles it: it adds thoughts to candidates or it does not.
            if total == input_raw + output_raw + reasoning:
                thoughts_outside = True
            elif total == input_raw + output_raw:
                thoughts_outside = False
        if thoughts_outside:
            output_tokens = output_raw + reasoning
        elif reasoning > output_raw:
            usage.issues.append(
                f"reasoning tokens ({reasoning}) exceed output tokens ({output_raw}); counted as additive to output"
            )
            output_tokens = output_raw + reasoning
    if usage.input_audio > input_tokens:
        usage.issues.append(f"input audio tokens ({usage.input_audio}) exceed input tokens ({input_tokens})")
    if usage.output_audio > output_tokens:
        usage.issues.append(f"output audio tokens ({usage.output_audio}) exceed output tokens ({output_tokens})")
    if total is not None and total not in (
        input_tokens + output_tokens,
        input_raw + output_raw,
        input_raw + output_raw + reasoning,
    ):
        usage.issues.append(f"total tokens ({total}) != input ({input_tokens}) + output ({output_tokens})")

    usage.input, usage.output = input_tokens, output_tokens
    usage.cache_read, usage.cache_write, usage.cache_write_1h = cache_read, cache_write, cache_write_1h
    usage.reasoning = reasoning
    return usage


def _vercel_cache_write(a: dict[str, Any], usage: _Usage) -> int:
    raw = a.get(aliases.VERCEL_PROVIDER_METADATA)
    if not isinstance(raw, str):
        return 0
    try:
        metadata = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested past the parser's depth
        return 0
    anthropic = metadata.get("anthropic") if isinstance(metadata, dict) else None
    value = anthropic.get("cacheCreationInputTokens") if isinstance(anthropic, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        usage.raw[f"{aliases.VERCEL_PROVIDER_METADATA}.anthropic.cacheCreationInputTokens"] = value
        return value
    return 0


@dataclass(frozen=True, slots=True)
class Lookups:
    """The alias lists the normalizer walks for one span.

    ``FULL_LOOKUPS`` is every alias (the general path). A span layout's lookups (``layout_lookups``)
    keep only the names that layout carries, in the same order, and its usage convention
    already chosen: ``_first`` skips absent names anyway, so the result is the same with
    a fraction of the dictionary probes.
    """

    # provider, request model, response model, feature, tenant, user, plan, session, version:
    # each read as _as_str(_first(a, names))
    texts: tuple[tuple[str, ...], ...]
    service_tier: tuple[str, ...]
    client_cost: tuple[str, ...]
    gateway_cost: tuple[str, ...]
    # server address, server port, base URL: where the call went
    endpoint: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    response_id: tuple[str, ...]
    # None: choose per span (general path); else the chosen convention, names cut to the layout
    convention: aliases.UsageConvention | None
    convention_known: bool
    # None: scan the attributes for extras (general path); else the extra keys, in order
    extras: tuple[str, ...] | None


def _cut(names: tuple[str, ...], present: set[str] | dict[str, Any]) -> tuple[str, ...]:
    return tuple(name for name in names if name in present)


def _lookups(present: set[str] | dict[str, Any] | None) -> Lookups:
    def cut(names: tuple[str, ...]) -> tuple[str, ...]:
        return names if present is None else _cut(names, present)

    attribution = aliases.ATTRIBUTION_ALIASES
    convention: aliases.UsageConvention | None = None
    extras: tuple[str, ...] | None = None
    if present is not None:
        chosen = usage_convention(dict.fromkeys(present))
        if chosen is not None:
            convention = replace(
                chosen,
                input=cut(chosen.input),
                output=cut(chosen.output),
                cache_read=cut(chosen.cache_read),
                cache_write=cut(chosen.cache_write),
                reasoning=cut(chosen.reasoning),
                input_audio=cut(chosen.input_audio),
                output_audio=cut(chosen.output_audio),
                total=cut(chosen.total),
            )
        extras = tuple(key for key in present if _is_extra(key))
    return Lookups(
        texts=(
            cut(aliases.PROVIDER_KEYS),
            cut(aliases.REQUEST_MODEL_KEYS),
            cut(aliases.RESPONSE_MODEL_KEYS),
            cut(attribution[attrs.FEATURE]),
            cut(attribution[attrs.TENANT]),
            cut(attribution[attrs.USER]),
            cut(attribution[attrs.PLAN]),
            cut(attribution[attrs.SESSION]),
            cut(attribution[attrs.VERSION]),
        ),
        service_tier=cut(aliases.SERVICE_TIER_KEYS),
        client_cost=cut(aliases.CLIENT_COST_KEYS),
        gateway_cost=cut(aliases.GATEWAY_COST_KEYS),
        endpoint=(cut(aliases.SERVER_ADDRESS_KEYS), cut(aliases.SERVER_PORT_KEYS), cut(aliases.BASE_URL_KEYS)),
        response_id=cut(aliases.RESPONSE_ID_KEYS),
        convention=convention,
        convention_known=present is not None,
        extras=extras,
    )


FULL_LOOKUPS: Final = _lookups(None)


def _is_extra(key: str) -> bool:
    return key.startswith(attrs.EXTRA_PREFIX) and key not in attrs.ATTRIBUTION_KEYS and not key.startswith(_NOT_EXTRAS)


def _service_tier(a: dict[str, Any], keys: tuple[str, ...] = aliases.SERVICE_TIER_KEYS) -> str:
    tier = _as_str(_first(a, keys)).strip().lower()
    return "" if tier in aliases.STANDARD_TIERS else tier


def _client_cost(a: dict[str, Any], keys: tuple[str, ...] = aliases.CLIENT_COST_KEYS) -> Decimal | None:
    value = _first(a, keys)
    if value is None or isinstance(value, bool):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None


@dataclass(frozen=True, slots=True)
class ResourceFacts:
    """What a call takes from its resource; the same for every span of a ResourceSpans."""

    environment: str
    service_name: str

    @classmethod
    def of(cls, resource: dict[str, Any]) -> ResourceFacts:
        environment = resource.get(attrs.DEPLOYMENT_ENVIRONMENT) or resource.get(attrs.DEPLOYMENT_ENVIRONMENT_OLD)
        return cls(_as_str(environment) or DEFAULT_ENVIRONMENT, _as_str(resource.get(attrs.SERVICE_NAME)))


def normalize_span(
    span: Span,
    resource: dict[str, Any] | ResourceFacts,
    span_attributes: dict[str, Any] | None = None,
    lookups: Lookups = FULL_LOOKUPS,
) -> CallRecord:
    """One LLM span as a ``CallRecord``. ``lookups`` other than ``FULL_LOOKUPS`` must be the
    ``layout_lookups`` of exactly these attributes' keys (after metadata flattening)."""
    a = read_attributes(span.attributes) if span_attributes is None else span_attributes
    if lookups is FULL_LOOKUPS:
        _flatten_metadata(a)
    facts = resource if isinstance(resource, ResourceFacts) else ResourceFacts.of(resource)
    # _as_str(_first(a, names)) for each text field, inlined: this runs for every call
    texts: list[str] = []
    get = a.get
    for names in lookups.texts:
        text = ""
        for name in names:
            value = get(name)
            if value is not None and value != "":
                text = value if type(value) is str else _as_str(value)
                break
        texts.append(text)
    provider_text, request_model, response_model, feature, tenant, user_id, plan, session_id, version = texts
    trace_id = span.trace_id.hex()
    root_id = _as_str(get(attrs.ROOT_ID)) or trace_id
    provider = normalize_provider(provider_text)
    address_keys, port_keys, url_keys = lookups.endpoint
    endpoint = ""
    if address_keys or url_keys:
        # the endpoint decides, not the SDK: an openai client at api.deepseek.com is DeepSeek
        endpoint, provider = endpoints.span_endpoint(
            _first(a, address_keys), _first(a, port_keys), _first(a, url_keys), provider
        )
    convention = lookups.convention if lookups.convention_known else usage_convention(a)
    usage = _read_usage(a, provider, convention)
    usage_source = attrs.USAGE_MISSING
    if usage.reported:
        usage_source = _as_str(get(attrs.USAGE_SOURCE)) or attrs.USAGE_REPORTED
    if lookups.extras is None:
        extras = {key: _as_str(value) for key, value in a.items() if _is_extra(key)}
    else:
        extras = {key: _as_str(a[key]) for key in lookups.extras}
    # the cost claims and the tier are absent from most layouts: no call for those
    client_cost = _client_cost(a, lookups.client_cost) if lookups.client_cost else None
    gateway_cost = _client_cost(a, lookups.gateway_cost) if lookups.gateway_cost else None
    service_tier = _service_tier(a, lookups.service_tier) if lookups.service_tier else ""
    # Positional, in _POSITIONAL_FIELDS order (checked at import): 36 keyword arguments cost
    # more than the rest of this function's bookkeeping (~1.2 µs a call).
    record = CallRecord(
        trace_id,
        span.span_id.hex(),
        _time(span.start_time_unix_nano),
        _time(span.end_time_unix_nano),
        facts.environment,
        facts.service_name,
        feature or attrs.DEFAULT_FEATURE,
        tenant,
        user_id,
        plan,
        root_id,
        session_id or root_id,
        version,
        _operation(a),
        provider,
        request_model,
        response_model,
        usage.input,
        usage.output,
        usage.cache_read,
        usage.cache_write,
        usage.reasoning,
        usage_source,
        "error" if span.status.code == Status.STATUS_CODE_ERROR else "ok",
        _as_str(get(attrs.ERROR_TYPE)),
        extras,
        usage.cache_write_1h,
        usage.input_audio,
        usage.output_audio,
        usage.raw,
        usage.convention,
        usage.issues,
        service_tier,
        client_cost,
        endpoint,
        gateway_cost,
    )
    response_id = _first(a, lookups.response_id) if lookups.response_id else None
    if response_id is not None:
        record.response_id = _as_str(response_id)
    return record


# The CallRecord fields normalize_span passes by position, in order; a reordered record fails here.
_POSITIONAL_FIELDS: Final = (
    "trace_id",
    "span_id",
    "start_time",
    "end_time",
    "environment",
    "service_name",
    "feature",
    "tenant",
    "user_id",
    "plan",
    "root_id",
    "session_id",
    "version",
    "operation",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage_source",
    "status",
    "error_type",
    "attributes",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "raw_usage",
    "usage_convention",
    "usage_issues",
    "service_tier",
    "client_cost_usd",
    "endpoint",
    "gateway_cost_usd",
)
if tuple(f.name for f in fields(CallRecord))[: len(_POSITIONAL_FIELDS)] != _POSITIONAL_FIELDS:
    raise ImportError("CallRecord's fields changed order: update normalize_span and _POSITIONAL_FIELDS")


# --- the fast path: per attribute-key layout ---
# Spans from one instrumentation carry the same attribute keys in the same order, so
# what to decode and which aliases can match is worked out once per layout and cached.
_MAX_LAYOUTS = 4096  # bounded: a layout explosion (random keys) evicts old layouts, not memory
# ... and so is each entry: a crafted span with thousands of long keys would make one layout
# megabytes (4096 of them: gigabytes). Such layouts are worked out per span, never cached.
_MAX_CACHED_KEYS = 96
_MAX_CACHED_KEY_CHARS = 4096


def _cacheable(keys: tuple[str, ...]) -> bool:
    return len(keys) <= _MAX_CACHED_KEYS and sum(map(len, keys)) <= _MAX_CACHED_KEY_CHARS


# The span layouts seen, by key tuple: looked up first, so the common case (a layout seen
# before) costs one dictionary probe; when full, the oldest entry makes room (insertion order).
_LAYOUTS: dict[tuple[str, ...], SpanLayout] = {}


def layout_of(keys: tuple[str, ...]) -> SpanLayout:
    """The layout of spans whose attribute keys are ``keys``, cached only when the layout is small."""
    layout = _LAYOUTS.get(keys)
    if layout is None:
        layout = _layout(keys)
        if _cacheable(keys):
            if len(_LAYOUTS) >= _MAX_LAYOUTS:
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread got there first
                    del _LAYOUTS[next(iter(_LAYOUTS))]
            _LAYOUTS[keys] = layout
    return layout


def lookups_of(keys: tuple[str, ...]) -> Lookups:
    """``layout_lookups``, cached only when the layout is small."""
    return layout_lookups(keys) if _cacheable(keys) else _lookups(dict.fromkeys(keys))


@dataclass(frozen=True, slots=True)
class SpanLayout:
    """What the normalizer does with spans whose attribute keys are exactly ``keys``, in order."""

    candidate: bool  # has a key that can make it an LLM span
    read: tuple[tuple[int, str], ...]  # (position, key) of every attribute to decode
    lookups: Lookups | None  # None when flattened metadata adds keys: resolved per span
    # per read position, the scalar kind its value had last time ("string_value" at first):
    # ``_decode`` tries it before asking which kind the value holds (see there)
    kinds: list[str] = field(default_factory=list, compare=False)


def _layout(keys: tuple[str, ...]) -> SpanLayout:
    candidate = not _CANDIDATE_KEYS.isdisjoint(keys)
    read = tuple((i, key) for i, key in enumerate(keys) if key in _KEYS_READ or key.startswith("featurecost."))
    present = dict.fromkeys(key for _, key in read)
    lookups = None if _needs_flattening(present) else lookups_of(tuple(present))
    return SpanLayout(candidate, read, lookups, ["string_value"] * len(read))


@functools.lru_cache(maxsize=_MAX_LAYOUTS)
def layout_lookups(keys: tuple[str, ...]) -> Lookups:
    """The lookups for attributes with exactly these keys (dict order), cached."""
    return _lookups(dict.fromkeys(keys))


_which = AnyValue.WhichOneof


def _decode(key_values: list[KeyValue], layout: SpanLayout) -> dict[str, Any]:
    """``read_attributes`` for the positions ``layout`` reads (same values, same key order).

    Each value is first read as the scalar kind that position held last time: a member of a
    oneof other than the one set reads as its default (``""``, ``0``, ``False``), so a value that
    is not the default can only be the set member, and is taken as is. A default (an empty string,
    a zero count) or another kind falls back to asking which member is set. One attribute read
    costs about a sixth less (~1 µs per LLM span)."""
    out: dict[str, Any] = {}
    scalars, which, kinds = _SCALARS, _which, layout.kinds  # locals: this loop runs for every attribute read
    for slot, (index, key) in enumerate(layout.read):
        value = key_values[index].value
        guessed = getattr(value, kinds[slot])
        if guessed:
            out[key] = guessed
            continue
        kind = which(value, "value")
        if kind in scalars:
            out[key] = getattr(value, kind)
            kinds[slot] = kind
        else:
            out[key] = any_value(value)
    return out


SpanFailure = Callable[[ResourceSpans, ScopeSpans, Span, Exception], None]


def normalize_request(request: ExportTraceServiceRequest, on_error: SpanFailure | None = None) -> Iterator[CallRecord]:
    """The LLM calls in ``request``, in the order they appear.

    With ``on_error``, a span that fails to normalize is handed to it and the rest of the
    request goes on: one bad span must not keep its neighbours (other clients' calls,
    batched into the same insert) out of storage."""
    for resource_spans in request.resource_spans:
        facts = ResourceFacts.of(attribute_map(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if on_error is None:
                    call = _normalize_one(span, facts)
                else:
                    try:
                        call = _normalize_one(span, facts)
                    except Exception as exc:
                        on_error(resource_spans, scope_spans, span, exc)
                        continue
                if call is not None:
                    yield call


def _normalize_one(span: Span, facts: ResourceFacts) -> CallRecord | None:
    key_values = list(span.attributes)  # one wrapper per attribute, reused by _decode
    layout = layout_of(tuple([kv.key for kv in key_values]))
    # decide on the keys alone; HTTP/DB/framework spans never get their values decoded
    if not layout.candidate:
        return None
    a = _decode(key_values, layout)
    if not is_llm_span(a):
        return None
    lookups = layout.lookups
    if lookups is None:
        _flatten_metadata(a)
        lookups = lookups_of(tuple(a))
    return normalize_span(span, facts, a, lookups)
