"""A local stand-in for the OpenAI and Anthropic HTTP APIs.

Responses are shaped like the real APIs — bodies, usage fields, headers, error
envelopes — so the real SDKs parse them unchanged. Token counts are deterministic
functions of the request (about four characters a token, per-message overhead), and
prompt caching follows the providers' rules closely enough to exercise cost:

* OpenAI caches automatically: a prompt of ≥1024 tokens whose system prefix was
  seen before reports that prefix (rounded down to 128 tokens) as
  ``prompt_tokens_details.cached_tokens``, *included* in ``prompt_tokens``.
* Anthropic caches up to the last ``cache_control`` block of ``system``: the first
  request writes it (``cache_creation_input_tokens``), later ones read it
  (``cache_read_input_tokens``); both are *excluded* from ``input_tokens``.

Streaming follows the providers' framing: OpenAI chat and legacy completions send
``data: {chunk}`` events, a final usage chunk (empty ``choices``) only when the request
asked for ``stream_options.include_usage``, then ``data: [DONE]``; the Responses API
sends named events ending with ``response.completed`` carrying usage; Anthropic sends
``message_start`` (input and cache usage, ``output_tokens`` 1), content block events,
``ping``, ``message_delta`` with *cumulative* usage and ``message_stop``.

Test knobs travel as request headers, so the real SDKs need no changes:
``x-stand-in-stream-error-after: N`` fails a stream with the provider's in-stream error
event after N content events; ``x-stand-in-usage-style: gateway`` makes Anthropic
streams report cache tokens in ``message_delta`` only, as some gateways do.

Every response served is logged, and ``GET /_stand_in/served`` returns the log so a
test can compute expected costs from what was actually served. ``GET
/_stand_in/requests`` returns the path and headers of every request received.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import struct
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# Aliases resolve to the dated snapshot the real API reports back in `model`.
SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "gpt-3.5-turbo-instruct": "gpt-3.5-turbo-instruct",
    "text-embedding-3-small": "text-embedding-3-small",
    # the serving names OpenAI answers these with today
    "text-embedding-ada-002": "text-embedding-ada-002-v2",
    "davinci-002": "davinci:2023-07-21-v2",
    "babbage-002": "babbage:2023-07-21-v2",
    "o4-mini": "o4-mini-2025-04-16",
}
EMBEDDING_DIMENSIONS = 8
SSE_HEADERS = {"cache-control": "no-cache", "connection": "keep-alive"}
OPENAI_MIN_CACHE = 1024
ANTHROPIC_MIN_CACHE = 1024

WORDS = tuple(
    "the customer asked about billing and the plan includes priority support so we can escalate "
    "the ticket summarize key points draft a reply with next steps and a clear timeline for the fix".split()
)


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of blocks with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def completion_words(seed: int, max_tokens: int | None, base: int = 40, spread: int = 360) -> tuple[list[str], bool]:
    """The words of a completion (one token each) and whether max_tokens cut it short."""
    wanted = base + seed % spread
    truncated = max_tokens is not None and wanted > max_tokens
    n = min(wanted, max_tokens) if max_tokens is not None else wanted
    return [WORDS[(seed >> (i % 48)) % len(WORDS)] for i in range(n)], truncated


def _completion(seed: int, max_tokens: int | None) -> tuple[str, int, bool]:
    words, truncated = completion_words(seed, max_tokens)
    return " ".join(words), len(words), truncated


def _is_reasoning_model(model: str) -> bool:
    return model.startswith(("o1", "o3", "o4", "gpt-5"))


def sse(data: Any, event: str | None = None, separator: str = "\n\n") -> bytes:
    """One server-sent event carrying ``data`` as compact JSON."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}{separator}".encode()


def _pieces(text: str, n: int = 4) -> list[str]:
    """``text`` cut into ``n`` deltas, as a provider streams a completion."""
    words = text.split(" ")
    size = max(1, math.ceil(len(words) / n))
    return [" ".join(words[i : i + size]) + (" " if i + size < len(words) else "") for i in range(0, len(words), size)]


def _structured(response_format: Any, text: str) -> str:
    """Structured outputs: a JSON object for a schema of string properties, as the model would write."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return text
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    properties = schema.get("properties") or {}
    return json.dumps({name: text[:40] for name, spec in properties.items() if spec.get("type") == "string"})


def _audio(n: int, transcript: str) -> dict[str, Any]:
    return {
        "id": f"audio_standin{n:08d}",
        "data": base64.b64encode(b"RIFF\x00\x00\x00\x00WAVE").decode(),
        "expires_at": int(time.time()) + 3600,
        "transcript": transcript,
    }


def _fail_after(request: Request) -> int | None:
    value = request.headers.get("x-stand-in-stream-error-after")
    return int(value) if value is not None and value.isdigit() else None


class StandIn:
    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._openai_prefixes: set[tuple[str, str]] = set()
        self._anthropic_prefixes: set[tuple[str, str]] = set()
        self._counter = 0

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    async def _body(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        return body

    def _serve(self, provider: str, model: str, usage: dict[str, Any], system: str, prompt: str, **extra: Any) -> None:
        self.served.append(
            {
                "provider": provider,
                "model": model,
                "usage": usage,
                "system": system[:60],
                "prompt": prompt[:60],
                **extra,
            }
        )

    # --- OpenAI ---
    def _openai_usage(
        self, model: str, system: str, texts: list[str], limit: int | None
    ) -> tuple[dict[str, Any], str, bool]:
        prompt_tokens = 3 + sum(3 + count_tokens(t) for t in texts)
        cached = 0
        key = (model, hashlib.sha256(system.encode()).hexdigest())
        if system and prompt_tokens >= OPENAI_MIN_CACHE:
            prefix = count_tokens(system)
            if key in self._openai_prefixes and prefix >= OPENAI_MIN_CACHE:
                cached = min(prefix, prompt_tokens) // 128 * 128
            self._openai_prefixes.add(key)
        text, completion_tokens, truncated = _completion(digest(model, *texts), limit)
        # reasoning models think before they answer: billed as output, reported as a subset
        reasoning = 64 + digest("reasoning", model, *texts) % 192 if _is_reasoning_model(model) else 0
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens + reasoning,
            "total_tokens": prompt_tokens + completion_tokens + reasoning,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        return usage, text, truncated

    def _openai_headers(self, n: int) -> dict[str, str]:
        return {
            "x-request-id": f"req_standin{n:08d}",
            "openai-processing-ms": "42",
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
        }

    async def chat_completions(self, request: Request) -> Response:
        body = await self._body(request)
        model = body.get("model") or request.path_params.get("deployment")
        messages = body.get("messages")
        if not model or not isinstance(messages, list) or not messages:
            return _openai_error(400, "you must provide a model parameter and messages", "messages")
        texts = [text_of(m.get("content")) for m in messages]
        system = "".join(t for m, t in zip(messages, texts, strict=True) if m.get("role") in ("system", "developer"))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        usage, text, truncated = self._openai_usage(model, system, texts, limit)
        text = _structured(body.get("response_format"), text)
        spoken = "audio" in (body.get("modalities") or []) and not body.get("stream")
        if spoken:
            # audio output is billed as output tokens, reported as a subset of them
            audio_tokens = 4 * usage["completion_tokens"]
            usage["completion_tokens"] += audio_tokens
            usage["total_tokens"] += audio_tokens
            usage["completion_tokens_details"]["audio_tokens"] = audio_tokens
        n = self._next_id()
        response_model = SNAPSHOTS.get(model, model)
        # the tier that served the request: the one asked for when it is a paid tier, else default
        tier = body.get("service_tier") if body.get("service_tier") in ("priority", "flex") else "default"
        stream = bool(body.get("stream"))
        include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
        self._serve("openai", response_model, usage, system, texts[-1], endpoint="chat", stream=stream)
        finish = "length" if truncated else "stop"
        completion_id = f"chatcmpl-standin{n:08d}"
        created = int(time.time())
        if not stream:
            payload = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": response_model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None if spoken else text,
                            "refusal": None,
                            "annotations": [],
                            **({"audio": _audio(n, text)} if spoken else {}),
                        },
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
                "service_tier": tier,
                "system_fingerprint": "fp_standin01",
            }
            return JSONResponse(payload, headers=self._openai_headers(n))

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": response_model,
                "service_tier": tier,
                "system_fingerprint": "fp_standin01",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                data["usage"] = None
            return data

        def events() -> Iterable[bytes]:
            yield sse(chunk({"role": "assistant", "content": "", "refusal": None}, None))
            for i, piece in enumerate(_pieces(text)):
                if _fail_after(request) == i:
                    yield sse(
                        {
                            "error": {
                                "message": "The server had an error",
                                "type": "server_error",
                                "param": None,
                                "code": None,
                            }
                        }
                    )
                    return
                yield sse(chunk({"content": piece}, None))
            yield sse(chunk({}, finish))
            if include_usage:
                final = chunk({}, None)
                final["choices"] = []
                final["usage"] = usage
                yield sse(final)
            yield b"data: [DONE]\n\n"

        return _event_stream(events(), self._openai_headers(n))

    async def completions(self, request: Request) -> Response:
        body = await self._body(request)
        model = body.get("model")
        prompt = body.get("prompt")
        if not model or not isinstance(prompt, str):
            return _openai_error(400, "you must provide a model parameter and a prompt", "prompt")
        usage, text, truncated = self._openai_usage(model, "", [prompt], body.get("max_tokens") or 16)
        del usage["completion_tokens_details"]["accepted_prediction_tokens"]
        n = self._next_id()
        stream = bool(body.get("stream"))
        include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
        served_model = SNAPSHOTS.get(model, model)
        self._serve("openai", served_model, usage, "", prompt, endpoint="completions", stream=stream)
        finish = "length" if truncated else "stop"
        created = int(time.time())
        base = {"id": f"cmpl-standin{n:08d}", "object": "text_completion", "created": created, "model": served_model}
        if not stream:
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
            return JSONResponse({**base, "choices": [choice], "usage": usage}, headers=self._openai_headers(n))

        def events() -> Iterable[bytes]:
            pieces = _pieces(text)
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish if last else None}
                yield sse({**base, "choices": [choice], **({"usage": None} if include_usage else {})})
            if include_usage:
                yield sse({**base, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return _event_stream(events(), self._openai_headers(n))

    async def embeddings(self, request: Request) -> Response:
        body = await self._body(request)
        model = body.get("model")
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not model or not isinstance(inputs, list) or not inputs:
            return _openai_error(400, "you must provide a model parameter and input", "input")
        texts = [str(i) for i in inputs]
        tokens = sum(count_tokens(t) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        n = self._next_id()
        served_model = SNAPSHOTS.get(model, model)
        self._serve("openai", served_model, usage, "", texts[-1], endpoint="embeddings", stream=False)
        data = []
        for index, text in enumerate(texts):
            seed = digest(model, text)
            vector = [((seed >> (i * 4)) % 97) / 97.0 - 0.5 for i in range(EMBEDDING_DIMENSIONS)]
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        payload = {"object": "list", "data": data, "model": served_model, "usage": usage}
        return JSONResponse(payload, headers=self._openai_headers(n))

    async def responses(self, request: Request) -> Response:
        body = await self._body(request)
        model = body.get("model")
        raw_input = body.get("input")
        if not model or raw_input is None:
            return _openai_error(400, "you must provide a model parameter and input", "input")
        items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else list(raw_input)
        texts = [text_of(item.get("content")) for item in items if isinstance(item, dict)]
        system = str(body.get("instructions") or "")
        if system:
            texts.insert(0, system)
        chat_usage, text, truncated = self._openai_usage(model, system, texts, body.get("max_output_tokens"))
        usage = {
            "input_tokens": chat_usage["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": chat_usage["prompt_tokens_details"]["cached_tokens"]},
            "output_tokens": chat_usage["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": chat_usage["completion_tokens_details"]["reasoning_tokens"]},
            "total_tokens": chat_usage["total_tokens"],
        }
        n = self._next_id()
        response_model = SNAPSHOTS.get(model, model)
        stream = bool(body.get("stream"))
        self._serve(
            "openai", response_model, usage, system, texts[-1] if texts else "", endpoint="responses", stream=stream
        )
        message_id = f"msg_standin{n:08d}"
        created = int(time.time())

        def response_object(status: str, output: list[Any], with_usage: bool) -> dict[str, Any]:
            return {
                "id": f"resp_standin{n:08d}",
                "object": "response",
                "created_at": created,
                "status": status,
                "background": False,
                "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if truncated and status == "incomplete" else None,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "model": response_model,
                "output": output,
                "parallel_tool_calls": True,
                "previous_response_id": None,
                "reasoning": {"effort": None, "summary": None},
                "service_tier": "default",
                "store": True,
                "temperature": 1.0,
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": "auto",
                "tools": [],
                "top_p": 1.0,
                "truncation": "disabled",
                "usage": usage if with_usage else None,
                "user": None,
                "metadata": {},
            }

        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message = {"id": message_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
        final_status = "incomplete" if truncated else "completed"
        if not stream:
            return JSONResponse(response_object(final_status, [message], True), headers=self._openai_headers(n))

        def events() -> Iterable[bytes]:
            seq = 0

            def event(kind: str, **fields: Any) -> bytes:
                nonlocal seq
                data = {"type": kind, "sequence_number": seq, **fields}
                seq += 1
                return sse(data, kind)

            yield event("response.created", response=response_object("in_progress", [], False))
            yield event("response.in_progress", response=response_object("in_progress", [], False))
            empty_message = {**message, "status": "in_progress", "content": []}
            yield event("response.output_item.added", output_index=0, item=empty_message)
            empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield event(
                "response.content_part.added", item_id=message_id, output_index=0, content_index=0, part=empty_part
            )
            for i, piece in enumerate(_pieces(text)):
                if _fail_after(request) == i:
                    yield event("error", code="server_error", message="The server had an error", param=None)
                    return
                yield event(
                    "response.output_text.delta",
                    item_id=message_id,
                    output_index=0,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            yield event(
                "response.output_text.done", item_id=message_id, output_index=0, content_index=0, text=text, logprobs=[]
            )
            yield event("response.content_part.done", item_id=message_id, output_index=0, content_index=0, part=part)
            yield event("response.output_item.done", output_index=0, item=message)
            yield event(f"response.{final_status}", response=response_object(final_status, [message], True))

        return _event_stream(events(), self._openai_headers(n))

    # --- Anthropic ---
    async def messages(self, request: Request) -> Response:
        body = await self._body(request)
        return self._anthropic_message(request, body, body.get("model"))

    async def vertex_predict(self, request: Request) -> Response:
        body = await self._body(request)
        model, _, specifier = request.path_params["target"].partition(":")
        if specifier not in ("rawPredict", "streamRawPredict") or "anthropic_version" not in body:
            return _anthropic_error(400, "unsupported vertex request")
        return self._anthropic_message(request, body, model)

    async def bedrock_invoke(self, request: Request) -> Response:
        """Anthropic on Bedrock (``AnthropicBedrock``): the model is in the path, the body is
        Anthropic's with ``anthropic_version``. Served under a prefix of its own
        (``/anthropic-bedrock``) so that it cannot shadow a bedrock-runtime stand-in."""
        body = await self._body(request)
        if "anthropic_version" not in body:
            return _anthropic_error(400, "anthropic_version is required on Bedrock")
        return self._anthropic_message(request, body, request.path_params["model"])

    def _anthropic_message(self, request: Request, body: dict[str, Any], model: Any) -> Response:
        messages = body.get("messages")
        max_tokens = body.get("max_tokens")
        if not model or not isinstance(messages, list) or not messages or not isinstance(max_tokens, int):
            return _anthropic_error(400, "model, messages and max_tokens are required")
        system = body.get("system") or []
        blocks: list[dict[str, Any]] = [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
        cached_upto = max((i for i, b in enumerate(blocks) if b.get("cache_control")), default=-1)
        ttl_1h = cached_upto >= 0 and (blocks[cached_upto].get("cache_control") or {}).get("ttl") == "1h"
        prefix_text = "".join(b.get("text", "") for b in blocks[: cached_upto + 1])
        rest_text = "".join(b.get("text", "") for b in blocks[cached_upto + 1 :])
        message_texts = [text_of(m.get("content")) for m in messages]
        prefix_tokens = count_tokens(prefix_text) if prefix_text else 0
        other_tokens = (count_tokens(rest_text) if rest_text else 0) + sum(3 + count_tokens(t) for t in message_texts)
        cache_read = cache_write = 0
        if cached_upto >= 0 and prefix_tokens >= ANTHROPIC_MIN_CACHE:
            key = (model, hashlib.sha256(prefix_text.encode()).hexdigest())
            if key in self._anthropic_prefixes:
                cache_read = prefix_tokens
            else:
                cache_write = prefix_tokens
                self._anthropic_prefixes.add(key)
            input_tokens = other_tokens
        else:
            input_tokens = other_tokens + prefix_tokens
        text, output_tokens, truncated = _completion(digest(model, prefix_text, rest_text, *message_texts), max_tokens)
        output_format = (body.get("output_config") or {}).get("format")
        if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
            text = _structured({"type": "json_schema", "json_schema": {"schema": output_format.get("schema")}}, text)
        usage = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 0 if ttl_1h else cache_write,
                "ephemeral_1h_input_tokens": cache_write if ttl_1h else 0,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }
        n = self._next_id()
        response_model = SNAPSHOTS.get(model, model)
        stream = bool(body.get("stream"))
        self._serve(
            "anthropic",
            response_model,
            usage,
            prefix_text + rest_text,
            message_texts[-1],
            endpoint="messages",
            stream=stream,
        )
        stop_reason = "max_tokens" if truncated else "end_turn"
        headers = {"request-id": f"req_standin{n:08d}", "anthropic-organization-id": "org-standin"}
        message: dict[str, Any] = {
            "id": f"msg_standin{n:08d}",
            "type": "message",
            "role": "assistant",
            "model": response_model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        if not stream:
            return JSONResponse(message, headers=headers)
        gateway = request.headers.get("x-stand-in-usage-style") == "gateway"

        def events() -> Iterable[bytes]:
            start_usage = {**usage, "output_tokens": 1}
            if gateway:
                # some gateways only know the cache counts once the upstream stream is done
                start_usage.update(cache_creation_input_tokens=0, cache_read_input_tokens=0)
                start_usage.pop("cache_creation")
            started = {**message, "content": [], "stop_reason": None, "usage": start_usage}
            yield sse({"type": "message_start", "message": started}, "message_start")
            yield sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            )
            yield sse({"type": "ping"}, "ping")
            for i, piece in enumerate(_pieces(text)):
                if _fail_after(request) == i:
                    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    yield sse(error, "error")
                    return
                delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
                yield sse(delta, "content_block_delta")
            yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            # message_delta usage is cumulative: the totals so far, not an increment
            delta_usage: dict[str, Any] = {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": cache_write,
                "cache_read_input_tokens": cache_read,
                "output_tokens": output_tokens,
            }
            if gateway:
                delta_usage["cache_creation"] = usage["cache_creation"]
            yield sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": delta_usage,
                },
                "message_delta",
            )
            yield sse({"type": "message_stop"}, "message_stop")

        return _event_stream(events(), headers)

    async def served_log(self, request: Request) -> Response:
        return JSONResponse(self.served)

    async def request_log(self, request: Request) -> Response:
        return JSONResponse(self.requests)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/openai/deployments/{deployment}/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route(
                    "/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{target}",
                    self.vertex_predict,
                    methods=["POST"],
                ),
                Route("/anthropic-bedrock/model/{model}/invoke", self.bedrock_invoke, methods=["POST"]),
                Route("/_stand_in/served", self.served_log),
                Route("/_stand_in/requests", self.request_log),
                Route("/_stand_in/health", self.health),
            ]
        )


def _event_stream(events: Iterable[bytes], headers: dict[str, str]) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for event in events:
            yield event

    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8", headers={**SSE_HEADERS, **headers})


def _openai_error(status: int, message: str, param: str | None) -> Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return JSONResponse({"error": error}, status_code=status)


def _anthropic_error(status: int, message: str) -> Response:
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return JSONResponse(error, status_code=status)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local stand-in for the OpenAI and Anthropic APIs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    uvicorn.run(StandIn().app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
