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

Every response served is logged, and ``GET /_stand_in/served`` returns the log so a
test can compute expected costs from what was actually served.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# Aliases resolve to the dated snapshot the real API reports back in `model`.
SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
}
OPENAI_MIN_CACHE = 1024
ANTHROPIC_MIN_CACHE = 1024

_WORDS = tuple(
    "the customer asked about billing and the plan includes priority support so we can escalate "
    "the ticket summarize key points draft a reply with next steps and a clear timeline for the fix".split()
)


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def _completion(seed: int, max_tokens: int | None) -> tuple[str, int, bool]:
    wanted = 40 + seed % 360
    truncated = max_tokens is not None and wanted > max_tokens
    n = min(wanted, max_tokens) if max_tokens is not None else wanted
    words = [_WORDS[(seed >> (i % 48)) % len(_WORDS)] for i in range(n)]
    return " ".join(words), n, truncated


class StandIn:
    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self._openai_prefixes: set[tuple[str, str]] = set()
        self._anthropic_prefixes: set[tuple[str, str]] = set()
        self._counter = 0

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    # --- OpenAI ---
    async def chat_completions(self, request: Request) -> Response:
        body = await request.json()
        if body.get("stream"):
            return _openai_error(400, "stream=true is not supported by this stand-in yet", "stream")
        model = body.get("model")
        messages = body.get("messages")
        if not model or not isinstance(messages, list) or not messages:
            return _openai_error(400, "you must provide a model parameter and messages", "messages")
        texts = [_text_of(m.get("content")) for m in messages]
        prompt_tokens = 3 + sum(3 + count_tokens(t) for t in texts)
        system = "".join(t for m, t in zip(messages, texts, strict=True) if m.get("role") in ("system", "developer"))
        cached = 0
        key = (model, hashlib.sha256(system.encode()).hexdigest())
        if system and prompt_tokens >= OPENAI_MIN_CACHE:
            prefix = count_tokens(system)
            if key in self._openai_prefixes and prefix >= OPENAI_MIN_CACHE:
                cached = min(prefix, prompt_tokens) // 128 * 128
            self._openai_prefixes.add(key)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        text, completion_tokens, truncated = _completion(_digest(model, *texts), limit)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        n = self._next_id()
        response_model = SNAPSHOTS.get(model, model)
        self.served.append(
            {
                "provider": "openai",
                "model": response_model,
                "usage": usage,
                "system": system[:60],
                "prompt": texts[-1][:60],
            }
        )
        payload = {
            "id": f"chatcmpl-standin{n:08d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": response_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "length" if truncated else "stop",
                }
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_standin01",
        }
        return JSONResponse(
            payload,
            headers={
                "x-request-id": f"req_standin{n:08d}",
                "openai-processing-ms": "42",
                "openai-version": "2020-10-01",
                "x-ratelimit-limit-requests": "10000",
                "x-ratelimit-remaining-requests": "9999",
            },
        )

    # --- Anthropic ---
    async def messages(self, request: Request) -> Response:
        body = await request.json()
        if body.get("stream"):
            return _anthropic_error(400, "stream=true is not supported by this stand-in yet")
        model = body.get("model")
        messages = body.get("messages")
        max_tokens = body.get("max_tokens")
        if not model or not isinstance(messages, list) or not messages or not isinstance(max_tokens, int):
            return _anthropic_error(400, "model, messages and max_tokens are required")
        system = body.get("system") or []
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
        cached_upto = max((i for i, b in enumerate(blocks) if b.get("cache_control")), default=-1)
        prefix_text = "".join(b.get("text", "") for b in blocks[: cached_upto + 1])
        rest_text = "".join(b.get("text", "") for b in blocks[cached_upto + 1 :])
        message_texts = [_text_of(m.get("content")) for m in messages]
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
        text, output_tokens, truncated = _completion(_digest(model, prefix_text, rest_text, *message_texts), max_tokens)
        usage = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }
        n = self._next_id()
        response_model = SNAPSHOTS.get(model, model)
        self.served.append(
            {
                "provider": "anthropic",
                "model": response_model,
                "usage": usage,
                "system": (prefix_text + rest_text)[:60],
                "prompt": message_texts[-1][:60],
            }
        )
        payload = {
            "id": f"msg_standin{n:08d}",
            "type": "message",
            "role": "assistant",
            "model": response_model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "max_tokens" if truncated else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        return JSONResponse(
            payload,
            headers={"request-id": f"req_standin{n:08d}", "anthropic-organization-id": "org-standin"},
        )

    async def served_log(self, request: Request) -> Response:
        return JSONResponse(self.served)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/_stand_in/served", self.served_log),
                Route("/_stand_in/health", self.health),
            ]
        )


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
