"""A local stand-in for the Gemini API (``generativelanguage.googleapis.com``, v1 and v1beta).

Shaped like the real API so the real ``google-genai`` SDK parses it unchanged (and Vertex
AI's express-mode paths, ``/v1beta1/publishers/google/models/…``, with ``:predict`` for
text-embedding models):
``POST /v1/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``
(``data: {json}`` events separated by CRLF CRLF, cumulative ``usageMetadata`` on every
chunk, ``finishReason`` on the last), ``:batchEmbedContents``, and the Google error
envelope (``{"error": {"code", "message", "status"}}``).

Usage follows Gemini's semantics, which are not the semconv ones:

* ``promptTokenCount`` includes ``cachedContentTokenCount``: a system instruction of
  ≥1024 tokens seen before for the same model is an implicit-cache hit.
* ``thoughtsTokenCount`` is reported *beside* ``candidatesTokenCount`` (2.5 models think
  unless ``thinkingBudget`` is 0).
* a request with the ``googleSearch`` tool reports ``toolUsePromptTokenCount``.
* with function declarations, the model first calls the first declared function, then
  answers once the request carries the ``functionResponse`` (what the SDK's automatic
  function calling does in a second request).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from testsupport.stand_ins.common import chunks, completion, count_tokens, digest, sse

MIN_IMPLICIT_CACHE = 1024
EMBEDDING_MODEL = "gemini-embedding-001"
VERTEX_EMBEDDING_MODEL = "text-embedding-005"
VERSIONS = {"gemini-2.5-flash": "gemini-2.5-flash", "gemini-2.0-flash": "gemini-2.0-flash-001"}


def _texts(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "".join(str(part.get("text", "")) for part in content.get("parts", []) if isinstance(part, dict))


def _error(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, status_code=code)


class GeminiStandIn:
    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self._cached_prefixes: set[tuple[str, str]] = set()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{version:str}/models/{target:path}", self._dispatch, methods=["POST"]),
                # Vertex AI (express mode, API key): the same generateContent, and predict for embeddings
                Route("/{version:str}/publishers/google/models/{target:path}", self._dispatch, methods=["POST"]),
            ]
        )

    async def _dispatch(self, request: Request) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        if not request.headers.get("x-goog-api-key"):
            return _error(401, "UNAUTHENTICATED", "Method doesn't allow unregistered callers.")
        if model not in VERSIONS and model not in (EMBEDDING_MODEL, VERTEX_EMBEDDING_MODEL):
            version = request.path_params["version"]
            return _error(404, "NOT_FOUND", f"models/{model} is not found for API version {version}")
        body = await request.json()
        if method == "generateContent":
            return self._generate(model, body)
        if method == "streamGenerateContent":
            if request.query_params.get("alt") != "sse":
                return _error(400, "INVALID_ARGUMENT", "this stand-in streams SSE only")
            return self._stream(model, body)
        if method == "batchEmbedContents":
            return self._embed(body)
        if method == "predict":
            return self._predict(body)
        return _error(404, "NOT_FOUND", f"Method {method} not found")

    def _usage(self, model: str, body: dict[str, Any], output: int) -> dict[str, Any]:
        system = _texts(body.get("systemInstruction"))
        contents = body.get("contents") or []
        system_tokens = count_tokens(system) if system else 0
        prompt = system_tokens + sum(count_tokens(_texts(c)) for c in contents)
        usage: dict[str, Any] = {"promptTokenCount": prompt}
        key = (model, system)
        if system_tokens >= MIN_IMPLICIT_CACHE:
            if key in self._cached_prefixes:
                usage["cachedContentTokenCount"] = system_tokens
                usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": system_tokens}]
            self._cached_prefixes.add(key)
        usage["candidatesTokenCount"] = output
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        # proto3 JSON accepts both spellings, and the SDK sends the snake_case one
        budget = thinking.get("thinkingBudget", thinking.get("thinking_budget"))
        thoughts = 0
        if model.startswith("gemini-2.5") and budget != 0:
            thoughts = 16 + digest(model, json.dumps(contents)) % 200
            usage["thoughtsTokenCount"] = thoughts
        tools = body.get("tools") or []
        tool_use = 0
        if any(isinstance(t, dict) and "googleSearch" in t for t in tools):
            tool_use = 64 + prompt % 50
            usage["toolUsePromptTokenCount"] = tool_use
        usage["totalTokenCount"] = prompt + output + thoughts + tool_use
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
        return usage

    def _words(self, model: str, body: dict[str, Any]) -> tuple[list[str], bool]:
        contents = body.get("contents") or []
        max_tokens = (body.get("generationConfig") or {}).get("maxOutputTokens")
        return completion(digest(model, json.dumps(contents)), max_tokens)

    def _generate(self, model: str, body: dict[str, Any]) -> Response:
        if not body.get("contents"):
            return _error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
        words, truncated = self._words(model, body)
        parts: list[dict[str, Any]] = [{"text": " ".join(words)}]
        call = self._function_call(body)
        if call is not None:
            words, truncated, parts = ["call"] * 6, False, [{"functionCall": call}]
        response = {
            "candidates": [
                {
                    "content": {"parts": parts, "role": "model"},
                    "finishReason": "MAX_TOKENS" if truncated else "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": self._usage(model, body, len(words)),
            "modelVersion": VERSIONS.get(model, model),
            "responseId": f"resp-{len(self.served)}",
        }
        self.served.append(response)
        return JSONResponse(response)

    @staticmethod
    def _function_call(body: dict[str, Any]) -> dict[str, Any] | None:
        """Call the first declared function, unless the last turn already answers a call."""
        declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
        last = (body.get("contents") or [{}])[-1]
        if not declarations or any("functionResponse" in p for p in last.get("parts") or []):
            return None
        declared = declarations[0]
        schema = declared.get("parameters_json_schema") or declared.get("parametersJsonSchema") or {}
        return {"name": declared["name"], "args": {name: "Paris" for name in schema.get("required", [])}}

    def _stream(self, model: str, body: dict[str, Any]) -> Response:
        if not body.get("contents"):
            return _error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
        words, truncated = self._words(model, body)
        usage = self._usage(model, body, len(words))
        events: list[dict[str, Any]] = []
        done = 0
        parts = chunks(words, 3)
        for i, part in enumerate(parts):
            done += len(part)
            last = i == len(parts) - 1
            chunk_usage = dict(usage, candidatesTokenCount=done)
            chunk_usage["totalTokenCount"] = usage["totalTokenCount"] - len(words) + done
            candidate: dict[str, Any] = {"content": {"parts": [{"text": " ".join(part) + " "}], "role": "model"}}
            if last:
                candidate["finishReason"] = "MAX_TOKENS" if truncated else "STOP"
            events.append(
                {
                    "candidates": [candidate],
                    "usageMetadata": chunk_usage,
                    "modelVersion": VERSIONS.get(model, model),
                    "responseId": f"resp-{len(self.served)}",
                }
            )
        self.served.append({"stream": events, "usageMetadata": events[-1]["usageMetadata"]})

        async def frames() -> AsyncIterator[bytes]:
            for event in events:
                yield sse(event, separator="\r\n\r\n")

        return StreamingResponse(frames(), media_type="text/event-stream")

    def _embed(self, body: dict[str, Any]) -> Response:
        requests = body.get("requests") or []
        tokens = sum(count_tokens(_texts(r.get("content"))) for r in requests)
        response = {
            "embeddings": [
                {"values": [((digest(_texts(r.get("content"))) >> i) % 1000) / 1000 for i in range(8)]}
                for r in requests
            ],
            "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
        }
        self.served.append(response)
        return JSONResponse(response)

    def _predict(self, body: dict[str, Any]) -> Response:
        """Vertex AI text-embedding models: token counts per input, billable characters overall."""
        instances = body.get("instances") or []
        texts = [str(i.get("content", "")) for i in instances if isinstance(i, dict)]
        response = {
            "predictions": [
                {
                    "embeddings": {
                        "values": [((digest(t) >> i) % 1000) / 1000 for i in range(8)],
                        "statistics": {"truncated": False, "token_count": count_tokens(t)},
                    }
                }
                for t in texts
            ],
            "metadata": {"billableCharacterCount": sum(len(t.replace(" ", "")) for t in texts)},
        }
        self.served.append(response)
        return JSONResponse(response)
