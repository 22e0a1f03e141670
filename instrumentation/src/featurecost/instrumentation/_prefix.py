"""Prompt-prefix fingerprint: which calls repeat the same leading instructions — no text.

Prompt caching pays off when many calls start with the same long block (a system prompt,
tool instructions). To tell a team how much caching would save, the collector needs to
know which calls share that block, never what it says. So each LLM span may carry:

* ``featurecost.prompt.prefix_hash``: HMAC-SHA256 of the leading system/instruction block
  under a key that stays in the app process, cut to 16 hex digits (64 bits);
* ``featurecost.prompt.prefix_class``: the block's length in characters rounded down to a
  power of two (``4096`` = 4,096 to 8,191 characters).

Why this is safe to send (docs/instrumentation.md has the full argument): the hash is
keyed, so whoever reads the spans (the collector, a tracing backend the spans are
forwarded to) cannot confirm a guess of the prompt by hashing it — without the key a
digest is an opaque label; equal labels only say "same block". The key is random per
process unless the app sets ``FEATURECOST_PREFIX_KEY`` (set it to the same secret on every
replica so repeats across replicas are seen; never reuse a key that is published). The
length class is coarse by design: one of ~20 values. Nothing else about the text is
emitted, and nothing at all with ``FEATURECOST_PREFIX_FINGERPRINT=false`` or
``configure_prefix_fingerprint(enabled=False)``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from opentelemetry.util.types import AttributeValue

from featurecost.instrumentation import attributes as attrs

log = logging.getLogger(__name__)

KEY_ENV = "FEATURECOST_PREFIX_KEY"
ENABLED_ENV = "FEATURECOST_PREFIX_FINGERPRINT"
HASH_HEX_DIGITS = 16
_OFF = ("0", "false", "no", "off")


class _State:
    def __init__(self) -> None:
        self.enabled = os.environ.get(ENABLED_ENV, "true").strip().lower() not in _OFF
        configured = os.environ.get(KEY_ENV)
        self.key = configured.encode() if configured else secrets.token_bytes(32)


_state = _State()


def configure_prefix_fingerprint(*, enabled: bool | None = None, key: str | bytes | None = None) -> None:
    """Turn the fingerprint off or on, or set the HMAC key (the same secret on every
    replica lets the collector see repeats across them)."""
    if enabled is not None:
        _state.enabled = enabled
    if key is not None:
        if not key:
            raise ValueError("the prefix fingerprint key must not be empty")
        _state.key = key.encode() if isinstance(key, str) else bytes(key)


def length_class(chars: int) -> int:
    """``chars`` rounded down to a power of two (0 for an empty block)."""
    return 1 << (chars.bit_length() - 1) if chars > 0 else 0


@lru_cache(maxsize=256)
def _digest(key: bytes, block: str) -> str:
    # An app sends the same few instruction blocks over and over, usually the same str
    # object, whose hash Python keeps: a hit costs a dict lookup instead of an HMAC.
    return hmac.new(key, block.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:HASH_HEX_DIGITS]


def prefix_attributes(block: str | None) -> dict[str, AttributeValue]:
    """The fingerprint attributes of a leading instruction block; none when off or empty."""
    if not _state.enabled or not block:
        return {}
    return {attrs.PROMPT_PREFIX_HASH: _digest(_state.key, block), attrs.PROMPT_PREFIX_CLASS: length_class(len(block))}


def text_of(content: Any) -> str:
    """The text of a message content: a string, or text parts (``{"type": "text", "text": ...}``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        parts = []
        for part in content:
            text = part.get("text") if isinstance(part, Mapping) else getattr(part, "text", None)
            if isinstance(text, str):
                parts.append(text)
        return "\n".join(parts)
    return ""


def leading_instructions(messages: Any, roles: tuple[str, ...] = ("system", "developer")) -> str:
    """The leading run of system/developer messages of a chat request, joined: the block a
    provider's prompt cache would match first."""
    # lists of dicts (what apps send) skip the ABC checks: this runs before every call
    if type(messages) is not list and (
        not isinstance(messages, Iterable) or isinstance(messages, (str, bytes, Mapping))
    ):
        return ""
    blocks = []
    for message in messages:
        is_mapping = type(message) is dict or isinstance(message, Mapping)
        role = message.get("role") if is_mapping else getattr(message, "role", None)
        if role not in roles:
            break
        content = message.get("content") if is_mapping else getattr(message, "content", None)
        blocks.append(text_of(content))
    return "\n".join(b for b in blocks if b)


def safe_prefix_block(block_of: Any, kwargs: Mapping[str, Any]) -> str | None:
    """``block_of(kwargs)``, the leading instruction block to fingerprint, that never fails the
    call it describes; None when the fingerprint is off (nothing is read then)."""
    if not _state.enabled:
        return None
    try:
        block = block_of(kwargs)
    except Exception:  # a request shape we do not know: no fingerprint, the call goes on
        log.debug("featurecost: no prompt prefix fingerprint for this request", exc_info=True)
        return None
    return block if isinstance(block, str) and block else None


def safe_prefix_attributes(block_of: Any, kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """``prefix_attributes(block_of(kwargs))`` that never fails the call it describes."""
    if not _state.enabled:
        return {}
    try:
        return prefix_attributes(block_of(kwargs))
    except Exception:  # a request shape we do not know: no fingerprint, the call goes on
        log.debug("featurecost: no prompt prefix fingerprint for this request", exc_info=True)
        return {}
