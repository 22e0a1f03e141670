"""A local stand-in for the Mistral AI API (``api.mistral.ai``).

Shaped like the real API so the real ``mistralai`` SDK parses it unchanged:
``POST /v1/chat/completions`` (JSON, or with ``"stream": true`` an SSE stream of
``chat.completion.chunk`` objects, usage on the last chunk, then ``data: [DONE]``),
``POST /v1/embeddings``, bearer auth (401 ``{"message": "Unauthorized"}``) and the
``{"object": "error", "type": "invalid_model", …}`` envelope for an unknown model.

Usage follows Mistral's (OpenAI-like) semantics: a system prompt of ≥1024 tokens seen
before for the same model is reported as ``prompt_tokens_details.cached_tokens``,
*included* in ``prompt_tokens``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from testsupport.stand_ins.common import chunks, completion, count_tokens, digest, sse, text_of

MIN_CACHE = 1024
CHAT_MODELS = ("mistral-small-latest", "mistral-large-latest", "magistral-medium-latest")
EMBED_MODELS = ("mistral-embed",)


class MistralStandIn:
    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self._cache: set[tuple[str, str]] = set()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )

    @staticmethod
    def _check(request: Request, model: Any, known: tuple[str, ...]) -> Response | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"message": "Unauthorized", "request_id": uuid.uuid4().hex}, status_code=401)
        if model not in known:
            error = {
                "object": "error",
                "message": f"Invalid model: {model}",
                "type": "invalid_model",
                "param": None,
                "code": "1500",
            }
            return JSONResponse(error, status_code=400)
        return None

    def _usage(self, model: str, messages: list[dict[str, Any]], output: int) -> dict[str, Any]:
        system = "".join(text_of(m.get("content")) for m in messages if m.get("role") == "system")
        prompt = sum(count_tokens(text_of(m.get("content"))) + 4 for m in messages)
        cached = 0
        if system and count_tokens(system) >= MIN_CACHE:
            if (model, system) in self._cache:
                cached = count_tokens(system)
            self._cache.add((model, system))
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}
        if cached:
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
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
        finish = "length" if truncated else "stop"
        head = {"id": uuid.uuid4().hex, "created": int(time.time()), "model": model}
        if not body.get("stream"):
            response = {
                **head,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words), "tool_calls": None},
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
            }
            self.served.append(response)
            return JSONResponse(response)
        events: list[dict[str, Any]] = [
            {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
            }
        ]
        parts = chunks(words, 3)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            choice = {"index": 0, "delta": {"content": " ".join(part)}, "finish_reason": finish if last else None}
            event: dict[str, Any] = {**head, "object": "chat.completion.chunk", "choices": [choice]}
            if last:
                event["usage"] = usage
            events.append(event)
        self.served.append({**head, "usage": usage, "finish_reason": finish, "events": events})

        async def send() -> AsyncIterator[bytes]:
            for item in events:
                yield sse(item)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(send(), media_type="text/event-stream")

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        model = body.get("model")
        rejected = self._check(request, model, EMBED_MODELS)
        if rejected is not None:
            return rejected
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        tokens = sum(count_tokens(t) for t in texts)
        response = {
            "id": uuid.uuid4().hex,
            "object": "list",
            "model": model,
            "data": [
                {"object": "embedding", "index": i, "embedding": [((digest(t) >> b) % 1000) / 1000 for b in range(8)]}
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
        }
        self.served.append(response)
        return JSONResponse(response)
