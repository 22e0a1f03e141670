"""A local stand-in for the Cohere v2 API (``api.cohere.com``).

Shaped like the real API so the real ``cohere`` SDK parses it unchanged:
``POST /v2/chat`` (JSON, or with ``"stream": true`` named SSE events ``message-start``,
``content-start``, ``content-delta``…, ``content-end``, ``message-end`` — usage and
``finish_reason`` in the last one's ``delta``), ``POST /v2/embed`` (``meta.billed_units``),
bearer auth (401 ``{"message": "invalid api token"}``) and 404 for an unknown model.

Usage follows Cohere's semantics: ``usage.tokens`` counts what the model processed,
including the prompt template Cohere adds around the messages; ``usage.billed_units``
counts what is charged. Counts are JSON numbers the SDK types as floats. A system message
of ≥1024 tokens seen before for the same model is reported as ``cached_tokens``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from testsupport.stand_ins.common import chunks, completion, count_tokens, digest, sse, text_of

MIN_CACHE = 1024
TEMPLATE_TOKENS = 487  # the prompt template Cohere wraps around a chat: processed, not billed
CHAT_MODELS = ("command-a-03-2025", "command-r7b-12-2024")
EMBED_MODELS = ("embed-v4.0",)


class CohereStandIn:
    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self._cache: set[tuple[str, str]] = set()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v2/chat", self._chat, methods=["POST"]),
                Route("/v2/embed", self._embed, methods=["POST"]),
            ]
        )

    @staticmethod
    def _check(request: Request, model: Any, known: tuple[str, ...]) -> Response | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"id": uuid.uuid4().hex, "message": "invalid api token"}, status_code=401)
        if model not in known:
            message = f"model '{model}' not found, make sure the correct model ID was used and that you have access"
            return JSONResponse({"id": uuid.uuid4().hex, "message": message}, status_code=404)
        return None

    def _usage(self, model: str, messages: list[dict[str, Any]], output: int) -> dict[str, Any]:
        billed_input = sum(count_tokens(text_of(m.get("content"))) for m in messages)
        system = "".join(text_of(m.get("content")) for m in messages if m.get("role") == "system")
        usage: dict[str, Any] = {
            "billed_units": {"input_tokens": billed_input, "output_tokens": output},
            "tokens": {"input_tokens": billed_input + TEMPLATE_TOKENS, "output_tokens": output + 2},
        }
        if system and count_tokens(system) >= MIN_CACHE:
            usage["cached_tokens"] = count_tokens(system) if (model, system) in self._cache else 0
            self._cache.add((model, system))
        return usage

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        model = body.get("model")
        rejected = self._check(request, model, CHAT_MODELS)
        if rejected is not None:
            return rejected
        messages = body.get("messages") or []
        words, truncated = completion(digest(model, json.dumps(messages)), body.get("max_tokens"))
        usage = self._usage(model, messages, len(words))
        finish = "MAX_TOKENS" if truncated else "COMPLETE"
        response_id = str(uuid.uuid4())
        if not body.get("stream"):
            response = {
                "id": response_id,
                "message": {"role": "assistant", "content": [{"type": "text", "text": " ".join(words)}]},
                "finish_reason": finish,
                "usage": usage,
            }
            self.served.append(response)
            return JSONResponse(response)
        start_message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message-start", {"id": response_id, "type": "message-start", "delta": {"message": start_message}}),
            (
                "content-start",
                {
                    "type": "content-start",
                    "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}},
                },
            ),
        ]
        for part in chunks(words, 3):
            delta = {"message": {"content": {"text": " ".join(part) + " "}}}
            events.append(("content-delta", {"type": "content-delta", "index": 0, "delta": delta}))
        events.append(("content-end", {"type": "content-end", "index": 0}))
        events.append(("message-end", {"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}))
        self.served.append({"id": response_id, "finish_reason": finish, "usage": usage})

        async def send() -> AsyncIterator[bytes]:
            for name, data in events:
                yield sse(data, event=name)

        return StreamingResponse(send(), media_type="text/event-stream")

    async def _embed(self, request: Request) -> Response:
        body = await request.json()
        model = body.get("model")
        rejected = self._check(request, model, EMBED_MODELS)
        if rejected is not None:
            return rejected
        texts = list(body.get("texts") or [])
        response = {
            "id": str(uuid.uuid4()),
            "embeddings": {"float": [[((digest(t) >> b) % 1000) / 1000 for b in range(8)] for t in texts]},
            "texts": texts,
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"input_tokens": sum(count_tokens(t) for t in texts)},
            },
            "response_type": "embeddings_by_type",
        }
        self.served.append(response)
        return JSONResponse(response)
