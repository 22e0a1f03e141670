"""One stand-in for the OpenAI-compatible providers teams call through the ``openai`` SDK.

Each provider answers ``POST /<host>/<its base path>/chat/completions`` (tests reach it with
``testsupport.stand_ins.routing``, so the SDK keeps the provider's real base URL) with the response
*shape* that provider documents and returns — the usage fields are where the recordings under
/work/shared and each provider's API reference put them:

- DeepSeek: ``prompt_cache_hit_tokens`` + ``prompt_cache_miss_tokens`` = ``prompt_tokens``, the
  hit also as ``prompt_tokens_details.cached_tokens``; a repeated prefix hits in 64-token units;
  ``deepseek-reasoner`` reports ``completion_tokens_details.reasoning_tokens`` inside completion.
  Streaming: usage on the chunk that carries ``finish_reason``.
- Groq: ``queue_time``/``prompt_time``/... inside ``usage`` and an ``x_groq`` object.
- Together: ``"prompt": []`` and ``finish_reason: "eos"``.
- Fireworks: the model as ``accounts/fireworks/models/<id>``.
- xAI: ``completion_tokens`` *excludes* ``completion_tokens_details.reasoning_tokens``
  (``total_tokens`` = prompt + completion + reasoning), ``num_sources_used``.
- Mistral: plain OpenAI usage.
- OpenRouter: ``usage.cost`` (USD, a JSON number: what OpenRouter bills), ``cost_details``,
  ``is_byok`` and the upstream ``provider``; the model as ``<vendor>/<model>``.
- Cerebras: ``time_info`` next to ``usage``.
- Perplexity: ``usage.cost`` as an *object* (``input_tokens_cost``, ..., ``total_cost``),
  ``search_context_size``, ``citations``/``search_results``.
- vLLM and Ollama (self-hosted, reached directly on loopback at ``/vllm/v1`` and
  ``/ollama/v1``): plain usage; Ollama's ``system_fingerprint`` is ``fp_ollama``.

Token counts are a function of the request (``common``): tests compare what the
collector stored with what this stand-in served (``served``), never with numbers they wrote.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from testsupport.stand_ins.common import completion, count_tokens, digest, sse, text_of

# OpenRouter bills its list price for the routed model; these are openrouter.ai's published
# per-token prices for the models the tests use (USD per million tokens: input, output).
OPENROUTER_PRICES = {"openai/gpt-4o-mini": (Decimal("0.15"), Decimal("0.60"))}
OPENROUTER_UPSTREAM = {"openai/gpt-4o-mini": "OpenAI"}
# Perplexity's Sonar: $1 / $1 per million tokens plus a per-request search fee by context size.
PERPLEXITY_REQUEST_FEE = {"low": Decimal("0.005"), "medium": Decimal("0.008"), "high": Decimal("0.012")}
DEEPSEEK_CACHE_UNIT = 64


class CompatibleStandIn:
    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []  # {"host", "model", "usage", "stream", "body"}
        self._seen_prompts: set[tuple[str, str]] = set()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{host}/{rest:path}", self.chat_completions, methods=["POST"])])

    # --- one chat completion, shaped per provider ---
    async def chat_completions(self, request: Request) -> Response:
        host, rest = request.path_params["host"], request.path_params["rest"]
        if not rest.endswith("chat/completions"):
            return JSONResponse({"error": {"message": f"no route {rest}", "type": "invalid_request_error"}}, 404)
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"error": {"message": "missing api key", "type": "invalid_request_error"}}, 401)
        body = await request.json()
        model = str(body.get("model", ""))
        prompt = "\n".join(text_of(m.get("content")) for m in body.get("messages", []))
        prompt_tokens = count_tokens(prompt) + 4 * len(body.get("messages", []))
        words, truncated = completion(digest(host, model, prompt), body.get("max_tokens"))
        text = " ".join(words)
        shape = _SHAPES.get(host)
        if shape is None:
            return JSONResponse({"error": {"message": f"unknown provider {host}", "type": "not_found"}}, 404)
        seen = (host + model, prompt) in self._seen_prompts
        self._seen_prompts.add((host + model, prompt))
        response = shape(model, prompt_tokens, len(words), seen)
        response.setdefault("id", f"chatcmpl-{uuid.uuid4().hex[:24]}")
        response.setdefault("object", "chat.completion")
        response.setdefault("created", int(time.time()))
        finish = "length" if truncated else response.pop("_finish", "stop")
        message = {"role": "assistant", "content": text}
        response["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
        stream = bool(body.get("stream"))
        self.served.append({"host": host, "model": response["model"], "usage": response["usage"], "stream": stream})
        if not stream:
            return JSONResponse(response)
        return _stream(response, text, finish, bool((body.get("stream_options") or {}).get("include_usage")))


def _stream(response: dict[str, Any], text: str, finish: str, include_usage: bool) -> Response:
    """``chat.completion.chunk`` events: usage on the finishing chunk (DeepSeek, Groq, vLLM do
    this) and, when asked with ``include_usage``, again on a last chunk with empty choices."""
    head = {k: v for k, v in response.items() if k not in ("choices", "usage", "object")}
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], reason: str | None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return sse({**head, "choices": [choice], **extra})

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""}, None)
        for piece in text.split(" "):
            yield chunk({"content": piece + " "}, None)
        yield chunk({"content": ""}, finish, usage=response["usage"])
        if include_usage:
            yield sse({**head, "choices": [], "usage": response["usage"]})
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def _deepseek(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    hit = (prompt // DEEPSEEK_CACHE_UNIT) * DEEPSEEK_CACHE_UNIT if seen else 0
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": hit},
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": prompt - hit,
    }
    if model == "deepseek-reasoner":
        usage["completion_tokens_details"] = {"reasoning_tokens": completion_tokens // 2}
    return {
        "id": str(uuid.uuid4()),
        "model": model,
        "system_fingerprint": "fp_8802369eaa_prod0623_fp8_kvcache",
        "usage": usage,
    }


def _groq(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    usage = {
        "queue_time": 0.016676449,
        "prompt_tokens": prompt,
        "prompt_time": 0.00178721,
        "completion_tokens": completion_tokens,
        "completion_time": 0.035833333,
        "total_tokens": prompt + completion_tokens,
        "total_time": 0.037620543,
    }
    return {
        "model": model,
        "system_fingerprint": "fp_af05557ca2",
        "usage": usage,
        "x_groq": {"id": f"req_{uuid.uuid4().hex[:26]}"},
    }


def _together(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    return {"id": f"{uuid.uuid4().hex[:16]}-MXP", "model": model, "prompt": [], "usage": usage, "_finish": "eos"}


def _plain(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    return {"model": model, "usage": usage}


def _fireworks(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    response = _plain(model, prompt, completion_tokens, seen)
    response["usage"]["prompt_tokens_details"] = {"cached_tokens": 0}
    return response


def _xai(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    reasoning = 3 * completion_tokens if "mini" in model else 0
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens + reasoning,
        "prompt_tokens_details": {"text_tokens": prompt, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
        "num_sources_used": 0,
    }
    return {"model": model, "system_fingerprint": "fp_6ed4e6e1f9", "usage": usage}


def _openrouter(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    input_price, output_price = OPENROUTER_PRICES[model]
    prompt_cost = prompt * input_price / 1_000_000
    completion_cost = completion_tokens * output_price / 1_000_000
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "cost": float(prompt_cost + completion_cost),  # a JSON number, as OpenRouter sends it
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": None,
            "upstream_inference_prompt_cost": float(prompt_cost),
            "upstream_inference_completions_cost": float(completion_cost),
        },
        "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
    }
    return {
        "id": f"gen-{int(time.time())}-{uuid.uuid4().hex[:20]}",
        "provider": OPENROUTER_UPSTREAM[model],
        "model": model,
        "system_fingerprint": "fp_34a54ae93c",
        "usage": usage,
    }


def _cerebras(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    response = _plain(model, prompt, completion_tokens, seen)
    response["usage"]["prompt_tokens_details"] = {"cached_tokens": 0}
    response["time_info"] = {"queue_time": 0.0001, "prompt_time": 0.002, "completion_time": 0.01, "total_time": 0.02}
    response["system_fingerprint"] = "fp_d7c70c58fb"
    return response


def _perplexity(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    context = "low"
    input_cost = Decimal(prompt) / 1_000_000
    output_cost = Decimal(completion_tokens) / 1_000_000
    fee = PERPLEXITY_REQUEST_FEE[context]
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "search_context_size": context,
        "cost": {
            "input_tokens_cost": float(input_cost),
            "output_tokens_cost": float(output_cost),
            "request_cost": float(fee),
            "total_cost": float(input_cost + output_cost + fee),
        },
    }
    return {
        "id": str(uuid.uuid4()),
        "model": model,
        "usage": usage,
        "citations": ["https://example.org/a"],
        "search_results": [{"title": "a", "url": "https://example.org/a", "date": None}],
    }


def _ollama(model: str, prompt: int, completion_tokens: int, seen: bool) -> dict[str, Any]:
    response = _plain(model, prompt, completion_tokens, seen)
    response["system_fingerprint"] = "fp_ollama"
    return response


_SHAPES = {
    "api.deepseek.com": _deepseek,
    "api.groq.com": _groq,
    "api.together.xyz": _together,
    "api.fireworks.ai": _fireworks,
    "api.x.ai": _xai,
    "api.mistral.ai": _plain,
    "openrouter.ai": _openrouter,
    "api.cerebras.ai": _cerebras,
    "api.perplexity.ai": _perplexity,
    "vllm": _plain,
    "ollama": _ollama,
}
