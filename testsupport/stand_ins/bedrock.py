"""A local stand-in for the Amazon Bedrock Runtime API (``bedrock-runtime.<region>.amazonaws.com``).

Shaped like the real service so real boto3/botocore parses it unchanged:

* ``POST /model/{modelId}/converse`` — JSON with ``output``, ``stopReason``, ``usage``, ``metrics``.
* ``POST /model/{modelId}/converse-stream`` — ``application/vnd.amazon.eventstream``: AWS
  event-stream binary frames (prelude with total and header lengths and its CRC32,
  typed headers ``:event-type``/``:content-type``/``:message-type``, JSON payload, message
  CRC32), events ``messageStart``, ``contentBlockDelta``…, ``contentBlockStop``,
  ``messageStop``, ``metadata`` (usage); errors mid-stream as ``exception`` frames.
* ``POST /model/{modelId}/invoke`` — each model family's own body (Anthropic Messages,
  Meta Llama, Amazon Titan embeddings, Mistral) plus the ``X-Amzn-Bedrock-*`` headers.
* ``POST /model/{modelId}/invoke-with-response-stream`` — Anthropic events in ``chunk``
  frames (base64 ``bytes``), the last carrying ``amazon-bedrock-invocationMetrics``.
* Errors: status + ``x-amzn-ErrorType`` header + ``{"message": …}``.

Usage follows Bedrock's semantics: ``inputTokens`` exclude the cache; a system prompt of
≥1024 tokens followed by a ``cachePoint`` (Converse) or ``cache_control`` (Anthropic body)
is written to the cache by the first request and read by later ones.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from testsupport.stand_ins.common import chunks, completion, count_tokens, digest, text_of

MIN_CACHE = 1024
KNOWN_PREFIXES = ("anthropic.", "us.anthropic.", "meta.", "amazon.", "mistral.")
_STRING = 7  # event-stream header value type


def event_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (lengths + CRC), headers, payload, message CRC."""
    encoded = b"".join(
        struct.pack("!B", len(name.encode()))
        + name.encode()
        + struct.pack("!BH", _STRING, len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return event_frame(headers, json.dumps(payload).encode())


def exception(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return event_frame(headers, json.dumps({"message": message}).encode())


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    headers = {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return JSONResponse({"message": message}, status_code=status, headers=headers)


class BedrockStandIn:
    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self.fail_streams_after: int | None = None  # events sent before a modelStreamErrorException
        self._cache: set[tuple[str, str]] = set()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/model/{model_id:path}/{action}", self._dispatch, methods=["POST"])])

    async def _dispatch(self, request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return _error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        model_id = request.path_params["model_id"]
        if not model_id.startswith(KNOWN_PREFIXES):
            return _error(400, "ValidationException", "The provided model identifier is invalid.")
        body = await request.json()
        action = request.path_params["action"]
        if action == "converse":
            return self._converse(model_id, body)
        if action == "converse-stream":
            return self._converse_stream(model_id, body)
        if action == "invoke":
            return self._invoke(model_id, body)
        if action == "invoke-with-response-stream":
            return self._invoke_stream(model_id, body)
        return _error(404, "UnknownOperationException", action)

    # --- usage, Bedrock's semantics ---
    def _prompt(self, model_id: str, system_text: str, cacheable: bool, rest: str) -> dict[str, int]:
        system_tokens = count_tokens(system_text) if system_text else 0
        prompt = system_tokens + count_tokens(rest)
        read = write = 0
        if cacheable and system_tokens >= MIN_CACHE:
            key = (model_id, system_text)
            if key in self._cache:
                read = system_tokens
            else:
                write = system_tokens
                self._cache.add(key)
        return {"input": prompt - read - write, "read": read, "write": write}

    def _converse_usage(self, model_id: str, body: dict[str, Any], output: int) -> dict[str, int]:
        system = body.get("system") or []
        cacheable = any(isinstance(b, dict) and "cachePoint" in b for b in system)
        messages = "".join(text_of(m.get("content")) for m in body.get("messages") or [])
        p = self._prompt(model_id, text_of(system), cacheable, messages)
        usage = {"inputTokens": p["input"], "outputTokens": output}
        usage["totalTokens"] = p["input"] + output + p["read"] + p["write"]
        if cacheable:
            usage["cacheReadInputTokens"] = p["read"]
            usage["cacheWriteInputTokens"] = p["write"]
        return usage

    def _words(self, model_id: str, body: dict[str, Any], max_tokens: Any) -> tuple[list[str], bool]:
        return completion(digest(model_id, json.dumps(body.get("messages") or body)), max_tokens)

    # --- Converse ---
    def _converse(self, model_id: str, body: dict[str, Any]) -> Response:
        if not body.get("messages"):
            return _error(400, "ValidationException", "A conversation must start with a user message.")
        words, truncated = self._words(model_id, body, (body.get("inferenceConfig") or {}).get("maxTokens"))
        response = {
            "output": {"message": {"role": "assistant", "content": [{"text": " ".join(words)}]}},
            "stopReason": "max_tokens" if truncated else "end_turn",
            "usage": self._converse_usage(model_id, body, len(words)),
            "metrics": {"latencyMs": 300 + len(words)},
        }
        self.served.append(response)
        return JSONResponse(response, headers={"x-amzn-RequestId": str(uuid.uuid4())})

    def _converse_stream(self, model_id: str, body: dict[str, Any]) -> Response:
        if not body.get("messages"):
            return _error(400, "ValidationException", "A conversation must start with a user message.")
        words, truncated = self._words(model_id, body, (body.get("inferenceConfig") or {}).get("maxTokens"))
        usage = self._converse_usage(model_id, body, len(words))
        frames = [event("messageStart", {"p": "abcdefgh", "role": "assistant"})]
        for part in chunks(words, 3):
            frames.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " ".join(part) + " "}}))
        frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
        stop_reason = "max_tokens" if truncated else "end_turn"
        frames.append(event("messageStop", {"stopReason": stop_reason}))
        frames.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 400}}))
        if self.fail_streams_after is not None:
            frames = frames[: self.fail_streams_after]
            frames.append(exception("modelStreamErrorException", "The model stream failed."))
        self.served.append({"usage": usage, "stopReason": stop_reason, "events": len(frames)})
        return self._event_stream(frames, {})

    @staticmethod
    def _event_stream(frames: list[bytes], headers: dict[str, str]) -> Response:
        async def send() -> AsyncIterator[bytes]:
            for frame in frames:
                yield frame

        headers = {"x-amzn-RequestId": str(uuid.uuid4()), **headers}
        return StreamingResponse(send(), media_type="application/vnd.amazon.eventstream", headers=headers)

    # --- InvokeModel, per model family ---
    def _anthropic(self, model_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int], list[str]]:
        system = body.get("system") or ""
        cacheable = isinstance(system, list) and any(isinstance(b, dict) and "cache_control" in b for b in system)
        messages = "".join(text_of(m.get("content")) for m in body.get("messages") or [])
        p = self._prompt(model_id, text_of(system), cacheable, messages)
        words, truncated = self._words(model_id, body, body.get("max_tokens"))
        usage = {
            "input_tokens": p["input"],
            "cache_creation_input_tokens": p["write"],
            "cache_read_input_tokens": p["read"],
            "output_tokens": len(words),
        }
        message = {
            "id": f"msg_bdrk_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": " ".join(words)}],
            "stop_reason": "max_tokens" if truncated else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        return message, p, words

    def _invoke(self, model_id: str, body: dict[str, Any]) -> Response:
        family = model_id.removeprefix("us.").split(".", 1)[0]
        read = write = 0
        if family == "anthropic":
            response, p, words = self._anthropic(model_id, body)
            uncached, output, read, write = p["input"], len(words), p["read"], p["write"]
        elif family == "meta":
            words, truncated = self._words(model_id, body, body.get("max_gen_len"))
            uncached, output = count_tokens(str(body.get("prompt", ""))), len(words)
            response = {
                "generation": " ".join(words),
                "prompt_token_count": uncached,
                "generation_token_count": output,
                "stop_reason": "length" if truncated else "stop",
            }
        elif family == "amazon":
            uncached, output = count_tokens(str(body.get("inputText", ""))), 0
            vector = [((digest(str(body.get("inputText"))) >> i) % 1000) / 1000 for i in range(8)]
            response = {"embedding": vector, "inputTextTokenCount": uncached}
        else:  # mistral: the body reports no usage, only the headers do
            words, truncated = self._words(model_id, body, body.get("max_tokens"))
            uncached, output = count_tokens(str(body.get("prompt", ""))), len(words)
            response = {"outputs": [{"text": " ".join(words), "stop_reason": "length" if truncated else "stop"}]}
        headers = {
            "x-amzn-RequestId": str(uuid.uuid4()),
            "X-Amzn-Bedrock-Invocation-Latency": "512",
            "X-Amzn-Bedrock-Input-Token-Count": str(uncached),
            "X-Amzn-Bedrock-Output-Token-Count": str(output),
        }
        if read or write:
            headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(read)
            headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(write)
        self.served.append({"body": response, "headers": headers})
        return JSONResponse(response, headers=headers)

    def _invoke_stream(self, model_id: str, body: dict[str, Any]) -> Response:
        if "anthropic." not in model_id:
            return _error(400, "ValidationException", "This stand-in streams Anthropic models only.")
        message, p, words = self._anthropic(model_id, body)
        usage = message["usage"]
        start = dict(message, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
        payloads: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
        payloads.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        for part in chunks(words, 3):
            payloads.append(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " ".join(part)}}
            )
        payloads.append({"type": "content_block_stop", "index": 0})
        payloads.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            }
        )
        metrics = {
            "inputTokenCount": p["input"],
            "outputTokenCount": len(words),
            "invocationLatency": 640,
            "firstByteLatency": 210,
            "cacheReadInputTokenCount": p["read"],
            "cacheWriteInputTokenCount": p["write"],
        }
        payloads.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics})
        frames = [event("chunk", {"bytes": base64.b64encode(json.dumps(pl).encode()).decode()}) for pl in payloads]
        self.served.append({"usage": usage, "metrics": metrics, "id": message["id"]})
        return self._event_stream(frames, {"X-Amzn-Bedrock-Content-Type": "application/json"})
