"""The prompt-prefix fingerprint: a keyed hash and a coarse length class, never the text."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from featurecost.instrumentation import _prefix
from featurecost.instrumentation._prefix import (
    configure_prefix_fingerprint,
    leading_instructions,
    length_class,
    prefix_attributes,
    safe_prefix_attributes,
)

HASH = "featurecost.prompt.prefix_hash"
CLASS = "featurecost.prompt.prefix_class"
SYSTEM = "You are the support bot of ACME. Answer from the knowledge base only. " * 60  # 4,200 characters


@pytest.fixture(autouse=True)
def known_key() -> Iterator[None]:
    enabled, key = _prefix._state.enabled, _prefix._state.key
    configure_prefix_fingerprint(enabled=True, key="test-key")
    try:
        yield
    finally:
        _prefix._state.enabled, _prefix._state.key = enabled, key


def test_keyed_hash_and_length_class() -> None:
    found = prefix_attributes(SYSTEM)
    assert found == {
        HASH: hmac.new(b"test-key", SYSTEM.encode(), hashlib.sha256).hexdigest()[:16],
        CLASS: 4096,
    }
    assert prefix_attributes(SYSTEM) == found  # equal blocks, equal fingerprint
    assert prefix_attributes(SYSTEM + ".")[HASH] != found[HASH]
    # without the key the digest is not the plain hash anyone could compute from a guess
    assert found[HASH] != hashlib.sha256(SYSTEM.encode()).hexdigest()[:16]
    configure_prefix_fingerprint(key="another-key")
    assert prefix_attributes(SYSTEM)[HASH] != found[HASH]
    assert all("ACME" not in str(v) for v in found.values())


@pytest.mark.parametrize(("chars", "expected"), [(0, 0), (1, 1), (1023, 512), (1024, 1024), (8191, 4096), (8192, 8192)])
def test_length_class(chars: int, expected: int) -> None:
    assert length_class(chars) == expected


def test_opt_out_and_empty_blocks_emit_nothing() -> None:
    assert prefix_attributes("") == {}
    assert prefix_attributes(None) == {}
    configure_prefix_fingerprint(enabled=False)
    assert prefix_attributes(SYSTEM) == {}
    with pytest.raises(ValueError, match="empty"):
        configure_prefix_fingerprint(key="")


def test_leading_instructions_of_chat_requests() -> None:
    messages = [
        {"role": "system", "content": "rules"},
        {"role": "developer", "content": [{"type": "text", "text": "tools"}, {"type": "image_url", "image_url": {}}]},
        {"role": "user", "content": "hello"},
        {"role": "system", "content": "late system message: not part of the cached prefix"},
    ]
    assert leading_instructions(messages) == "rules\ntools"
    assert leading_instructions([SimpleNamespace(role="system", content="typed")]) == "typed"
    assert leading_instructions([{"role": "user", "content": "hi"}]) == ""
    assert leading_instructions(None) == ""
    assert leading_instructions("not a list") == ""


def test_an_unknown_request_shape_never_fails_the_call() -> None:
    def explode(kwargs: object) -> str:
        raise TypeError("unexpected shape")

    assert safe_prefix_attributes(explode, {}) == {}
    assert safe_prefix_attributes(lambda kwargs: kwargs["system"], {"system": "abc"})[CLASS] == 2
